//! A small SMTP server on 127.0.0.1 (RFC 5321 commands EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL,
//! RCPT, DATA, RSET, NOOP, QUIT), plain, with STARTTLS, or with implicit TLS (a certificate for
//! 127.0.0.1 issued by a throw-away CA), that records what it receives and answers DATA as told:
//! accept, accept slowly, a 4xx, a 5xx, or drop the connection. Enough to check what Hindsight sends, as sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Plain,
    Starttls,
    Implicit,
}

#[derive(Clone, Debug)]
pub enum DataAnswer {
    Accept,
    /// Takes the message (it counts as received, as at a real server that queues it), then
    /// waits this long before its 250: a slow server, or with a wait past the client's
    /// timeout, a client that gives up on a message the server went on to deliver.
    Slow(std::time::Duration),
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
    /// PEM of the CA that issued the server's certificate (TLS modes).
    pub ca_pem: String,
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
        Self::start_with(TlsMode::Plain).await
    }

    pub async fn start_with(mode: TlsMode) -> FakeSmtp {
        Self::serve(TcpListener::bind("127.0.0.1:0").await.expect("bind"), mode)
    }

    /// A server on a listener the caller made (a port held closed during an outage, then opened).
    pub fn serve(listener: TcpListener, mode: TlsMode) -> FakeSmtp {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = listener.local_addr().expect("address").port();
        let (acceptor, ca_pem) = tls_acceptor();
        let acceptor = (mode != TlsMode::Plain).then_some(acceptor);
        let state: Arc<Mutex<State>> = Arc::default();
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let st = st.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = match (mode, acceptor) {
                        (TlsMode::Implicit, Some(a)) => match a.accept(sock).await {
                            Ok(tls) => session(Box::new(tls), st, None, true).await,
                            Err(e) => Err(e),
                        },
                        (_, a) => session(Box::new(sock), st, a, true).await,
                    };
                });
            }
        });
        FakeSmtp { port, ca_pem, state, task }
    }

    pub fn answer(&self, a: DataAnswer) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).answers.push_back(a);
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).messages.clone()
    }

    /// The Subject header of every message taken (cheap to poll).
    pub fn subjects(&self) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .messages
            .iter()
            .filter_map(|m| m.data.lines().take_while(|l| !l.is_empty()).find_map(|l| l.strip_prefix("Subject: ")))
            .map(str::to_owned)
            .collect()
    }

    /// How many messages were taken, without copying them.
    pub fn count(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).messages.len()
    }

    /// The distinct Message-IDs taken, with how often each came (read without copying the
    /// messages: a test polling this while the daemon works must not starve it).
    pub fn message_ids(&self) -> std::collections::BTreeMap<String, usize> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids = std::collections::BTreeMap::new();
        for m in &state.messages {
            let id = m
                .data
                .lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix("Message-ID: ").or_else(|| l.strip_prefix("Message-Id: ")))
                .unwrap_or("(none)")
                .trim()
                .to_owned();
            *ids.entry(id).or_default() += 1;
        }
        ids
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// A TLS acceptor for 127.0.0.1 with a certificate from a throw-away CA, and that CA's PEM.
pub fn tls_acceptor() -> (TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &Issuer::from_params(&ca_params, &ca_key))
        .expect("leaf certificate");
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("key der");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("server config");
    (TlsAcceptor::from(Arc::new(config)), ca.pem())
}

/// A byte stream, plain or TLS: one type, so that a session can go on after STARTTLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One SMTP session; `acceptor` is set while STARTTLS is still to be offered.
async fn session(
    stream: Box<dyn Stream>,
    state: Arc<Mutex<State>>,
    acceptor: Option<TlsAcceptor>,
    greet: bool,
) -> std::io::Result<()> {
    let mut lines = BufReader::new(stream);
    let mut cur = Received::default();
    if greet {
        lines.get_mut().write_all(b"220 fake.smtp.test ESMTP\r\n").await?;
    }
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        let upper = line.to_ascii_uppercase();
        let w = lines.get_mut();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let starttls = if acceptor.is_some() { "250-STARTTLS\r\n" } else { "" };
            w.write_all(
                format!("250-fake.smtp.test\r\n{starttls}250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    .as_bytes(),
            )
            .await?;
        } else if upper == "STARTTLS" && acceptor.is_some() {
            w.write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
            let tls = acceptor.as_ref().expect("checked").accept(lines.into_inner()).await?;
            return Box::pin(session(Box::new(tls), state, None, false)).await;
        } else if let Some(rest) = upper.strip_prefix("AUTH PLAIN") {
            let payload = if rest.trim().is_empty() {
                w.write_all(b"334 \r\n").await?;
                next_line(&mut lines).await?
            } else {
                line[10..].trim().to_owned()
            };
            let decoded = b64(&payload);
            let mut parts = decoded.split('\0').skip(1);
            cur.auth = Some((parts.next().unwrap_or_default().into(), parts.next().unwrap_or_default().into()));
            lines.get_mut().write_all(b"235 2.7.0 Authentication successful\r\n").await?;
        } else if upper.starts_with("AUTH LOGIN") {
            w.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            let user = b64(&next_line(&mut lines).await?);
            lines.get_mut().write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            let pass = b64(&next_line(&mut lines).await?);
            cur.auth = Some((user, pass));
            lines.get_mut().write_all(b"235 2.7.0 Authentication successful\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            cur.mail_from = line[10..].trim().into();
            w.write_all(b"250 2.1.0 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            cur.rcpt_to.push(line[8..].trim().into());
            w.write_all(b"250 2.1.5 OK\r\n").await?;
        } else if upper == "DATA" {
            w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut data = String::new();
            loop {
                let l = next_line(&mut lines).await?;
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
                    lines.get_mut().write_all(b"250 2.0.0 Queued\r\n").await?;
                }
                DataAnswer::Slow(wait) => {
                    cur.data = data;
                    state.lock().unwrap_or_else(|p| p.into_inner()).messages.push(std::mem::take(&mut cur));
                    tokio::time::sleep(wait).await;
                    lines.get_mut().write_all(b"250 2.0.0 Queued\r\n").await?;
                }
                DataAnswer::Reply(r) => lines.get_mut().write_all(format!("{r}\r\n").as_bytes()).await?,
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
}

/// The next line without its line ending; an error at end of input (the client went away).
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
