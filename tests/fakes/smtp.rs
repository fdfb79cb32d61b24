//! A small SMTP server on 127.0.0.1 (RFC 5321 commands EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT) that records what it receives and answers DATA as told: accept, a 4xx,
//! a 5xx, or drop the connection. Enough to check what Hindsight sends, as sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub enum DataAnswer {
    Accept,
    Reply(&'static str),
    Drop,
}

#[derive(Default, Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
    pub auth: Option<(String, String)>,
}

#[derive(Default)]
struct State {
    answers: VecDeque<DataAnswer>,
    messages: Vec<Received>,
}

pub struct FakeSmtp {
    pub port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeSmtp {
    pub async fn start() -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let state: Arc<Mutex<State>> = Arc::default();
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = session(sock, st).await;
                });
            }
        });
        FakeSmtp { port, state, task }
    }

    pub fn answer(&self, a: DataAnswer) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).answers.push_back(a);
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).messages.clone()
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

async fn session(sock: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut cur = Received::default();
    w.write_all(b"220 fake.smtp.test ESMTP\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            w.write_all(b"250-fake.smtp.test\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n").await?;
        } else if let Some(rest) = upper.strip_prefix("AUTH PLAIN") {
            let payload = if rest.trim().is_empty() {
                w.write_all(b"334 \r\n").await?;
                lines.next_line().await?.unwrap_or_default()
            } else {
                line[10..].trim().to_owned()
            };
            let decoded = b64(&payload);
            let mut parts = decoded.split('\0').skip(1);
            cur.auth = Some((parts.next().unwrap_or_default().into(), parts.next().unwrap_or_default().into()));
            w.write_all(b"235 2.7.0 Authentication successful\r\n").await?;
        } else if upper.starts_with("AUTH LOGIN") {
            w.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            let user = b64(&lines.next_line().await?.unwrap_or_default());
            w.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            let pass = b64(&lines.next_line().await?.unwrap_or_default());
            cur.auth = Some((user, pass));
            w.write_all(b"235 2.7.0 Authentication successful\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            cur.mail_from = line[10..].trim().into();
            w.write_all(b"250 2.1.0 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            cur.rcpt_to.push(line[8..].trim().into());
            w.write_all(b"250 2.1.5 OK\r\n").await?;
        } else if upper == "DATA" {
            w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push('\n');
            }
            let answer =
                state.lock().unwrap_or_else(|p| p.into_inner()).answers.pop_front().unwrap_or(DataAnswer::Accept);
            match answer {
                DataAnswer::Accept => {
                    cur.data = data;
                    state.lock().unwrap_or_else(|p| p.into_inner()).messages.push(std::mem::take(&mut cur));
                    w.write_all(b"250 2.0.0 Queued\r\n").await?;
                }
                DataAnswer::Reply(r) => w.write_all(format!("{r}\r\n").as_bytes()).await?,
                DataAnswer::Drop => return Ok(()),
            }
        } else if upper == "QUIT" {
            w.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            cur = Received { auth: cur.auth.take(), ..Received::default() };
            w.write_all(b"250 2.0.0 OK\r\n").await?;
        } else {
            w.write_all(b"502 5.5.2 Command not recognized\r\n").await?;
        }
    }
    Ok(())
}
