//! The real `hindsight run` binary against the fakes, as the end-to-end suites drive it: a
//! configuration with the Graph fake as source (its secret in a credentials directory, as
//! systemd's LoadCredential= passes it), a signed webhook and optionally an SMTP destination;
//! start, signal, kill and wait for the process; read what the fakes received.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};

use crate::common::DaemonConfig;
use crate::fakes;
use crate::fakes::graph::{Credentials, FakeGraph};
use crate::fakes::smtp::FakeSmtp;

pub const SECRET: &str = "graph-Secret~e2e.value";
pub const SIGNING: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn creds() -> Credentials {
    Credentials {
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: "app-1".into(),
        client_secret: SECRET.into(),
        ..Default::default()
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A resolved incident last updated now (the daemon's first start sets its floor to its start
/// time: anything older would be backfill).
pub fn resolved(id: &str) -> Value {
    let now = Utc::now();
    let at = |m: i64| (now - chrono::Duration::minutes(m)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "id": id, "tenantId": "t", "displayName": format!("Incident {id}"), "status": "resolved",
        "severity": "high", "classification": "truePositive", "determination": "malware",
        "createdDateTime": at(60), "lastUpdateDateTime": at(0),
        "alerts": [{
            "id": format!("a-{id}"), "title": "Suspicious PowerShell command line", "category": "Execution",
            "mitreTechniques": ["T1059.001", "T1003.001"], "createdDateTime": at(59), "resolvedDateTime": at(0),
            "firstActivityDateTime": at(70), "lastActivityDateTime": at(65), "evidence": []
        }]
    })
}

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub http: u16,
}

/// The configuration the end-to-end suites start from: the Graph fake as source "contoso" (its
/// secret in a credentials directory, as systemd's LoadCredential= passes it; short retries), a
/// signed webhook "soc-hook" and, with `smtp`, an e-mail destination "soc-mail"; HTTP on a
/// free loopback port. Tests add to it, then hand it to [`Rig::with`].
pub fn config(graph: &FakeGraph, hook: &str, smtp: Option<&FakeSmtp>) -> DaemonConfig {
    let c = DaemonConfig::new()
        .listen(&format!("127.0.0.1:{}", free_port()))
        .graph_source("contoso", "contoso.onmicrosoft.com", "app-1", &graph.graph_url(), &graph.login_url())
        .set("client_secret_file", "graph-secret")
        .set("poll_interval", "2s")
        .set("retry_base", "50ms")
        .set("retry_max", "1s")
        .set("request_timeout", "5s")
        .set("page_size", 50)
        .webhook("soc-hook", hook)
        .set("signing_secret", SIGNING)
        .set("timeout", "5s");
    match smtp {
        Some(s) => c.email("soc-mail", s.port),
        None => c,
    }
}

impl Rig {
    /// [`config`] as it is.
    pub fn new(graph: &FakeGraph, hook: &str, smtp: Option<&FakeSmtp>) -> Rig {
        Rig::with(config(graph, hook, smtp))
    }

    /// A configuration (usually [`config`] with more) written to a fresh directory, with the
    /// Graph secret in its credentials directory.
    pub fn with(config: DaemonConfig) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("credentials")).unwrap();
        std::fs::write(dir.path().join("credentials/graph-secret"), format!("{SECRET}\n")).unwrap();
        let http = config.http_port().expect("the rig's configuration listens on a port");
        let path = config.write_in(dir.path());
        Rig { config: path, http, dir }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `hindsight check` on the rig's configuration, state and credentials directory, off the
    /// async runtime (the fakes it talks to run on it).
    pub async fn check(&self) -> std::process::Output {
        self.command(&["check"]).await
    }

    /// `hindsight <args> --config <the rig's>` with its state and credentials directory, off
    /// the async runtime.
    pub async fn command(&self, args: &[&str]) -> std::process::Output {
        let (config, state, credentials) = (self.config.clone(), self.state(), self.dir.path().join("credentials"));
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_hindsight"))
                .args(args)
                .arg("--config")
                .arg(config)
                .env("HINDSIGHT_STATE_DIR", state)
                .env("CREDENTIALS_DIRECTORY", credentials)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }

    pub fn start(&self, extra_env: &[(&str, &str)]) -> Daemon {
        Daemon::start(&self.state(), &self.config, self.dir.path(), extra_env)
    }
}

pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(state: &Path, config: &Path, dir: &Path, extra_env: &[(&str, &str)]) -> Daemon {
        let n = std::fs::read_dir(dir).unwrap().count();
        let log = dir.join(format!("daemon-{n}.log"));
        // HINDSIGHT_RIG_WRAPPER runs the daemon under a profiler (e.g. "heaptrack -o /tmp/ht");
        // the RSS then read is the wrapper's, so figures are taken without it.
        let mut cmd = match std::env::var("HINDSIGHT_RIG_WRAPPER") {
            Ok(w) if !w.trim().is_empty() => {
                let mut words = w.split_whitespace();
                let mut c = Command::new(words.next().unwrap_or_default());
                c.args(words).arg(env!("CARGO_BIN_EXE_hindsight"));
                c
            }
            _ => Command::new(env!("CARGO_BIN_EXE_hindsight")),
        };
        cmd.args(["run", "--config"])
            .arg(config)
            .env("HINDSIGHT_STATE_DIR", state)
            .env("HINDSIGHT_LOG", "hindsight=trace")
            .env("CREDENTIALS_DIRECTORY", dir.join("credentials"))
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Daemon { child: cmd.spawn().expect("the hindsight binary starts"), log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig}");
    }

    /// Waits for the process to exit; returns its status and how long that took.
    pub async fn wait(&mut self, limit: Duration) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(started.elapsed() < limit, "the daemon did not exit within {limit:?}; its log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 20 ms until it holds; panics with `what` (and the log) after `limit`.
pub async fn until(limit: Duration, what: &str, daemon: &Daemon, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}; the daemon's log:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

pub async fn get(port: u16, path: &str) -> (u16, String) {
    hindsight::install_crypto_provider();
    match reqwest::get(format!("http://127.0.0.1:{port}{path}")).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// The incident ids of the webhook events received, with how often each event id came.
pub fn hook_events(state: &fakes::receiver::Shared) -> (BTreeSet<String>, BTreeMap<String, usize>) {
    let mut incidents = BTreeSet::new();
    let mut ids = BTreeMap::new();
    for (headers, body) in &state.lock().unwrap().received {
        let v: Value = serde_json::from_slice(body).unwrap();
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        assert_eq!(v["id"], id.as_str(), "the body's id is the webhook-id");
        *ids.entry(id).or_default() += 1;
        if let Some(i) = v["review"]["incident"]["id"].as_str() {
            incidents.insert(i.to_owned());
        }
    }
    (incidents, ids)
}
/// Waits until `/readyz` answers 200.
pub async fn ready(port: u16, daemon: &Daemon) {
    let started = Instant::now();
    while get(port, "/readyz").await.0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "not ready within 20 s; log:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no flush, as when the machine loses power or the OOM killer strikes.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// (current, peak) resident set size in KiB, from /proc; `None` once the process is gone.
    pub fn rss_kib(&self) -> Option<(u64, u64)> {
        rss_kib(self.pid())
    }
}

/// (VmRSS, VmHWM) of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// A resolved incident whose last update was `minutes_ago`, with `alerts` alerts (the first
/// two techniques differ by incident, so that reviews differ too).
pub fn resolved_ago(id: &str, minutes_ago: i64, alerts: usize) -> Value {
    let last = Utc::now() - chrono::Duration::minutes(minutes_ago);
    let at = |m: i64| (last - chrono::Duration::minutes(m)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    const TECHNIQUES: [&str; 6] = ["T1059.001", "T1003.001", "T1566.001", "T1021.002", "T1486", "T1047"];
    let n: usize = id.bytes().map(usize::from).sum();
    let alerts: Vec<Value> = (0..alerts.max(1))
        .map(|a| {
            json!({
                "id": format!("a-{id}-{a}"), "title": "Suspicious PowerShell command line", "category": "Execution",
                "mitreTechniques": [TECHNIQUES[(n + a) % 6], TECHNIQUES[(n + a + 1) % 6]],
                "createdDateTime": at(59), "resolvedDateTime": at(0),
                "firstActivityDateTime": at(70), "lastActivityDateTime": at(65), "evidence": []
            })
        })
        .collect();
    json!({
        "id": id, "tenantId": "t", "displayName": format!("Incident {id}"), "status": "resolved",
        "severity": "high", "classification": "truePositive", "determination": "malware",
        "createdDateTime": at(60), "lastUpdateDateTime": at(0), "alerts": alerts
    })
}

/// The distinct webhook-ids received, from the headers only (cheap enough to poll).
pub fn hook_ids(state: &fakes::receiver::Shared) -> BTreeSet<String> {
    let r = state.lock().unwrap();
    r.received.iter().filter_map(|(h, _)| h.get("webhook-id")?.to_str().ok().map(str::to_owned)).collect()
}

/// A sample incident from `examples/incidents/<name>.json` under another id, every time in it
/// moved so that it was last updated now (what advanced hunting still holds, and after the
/// daemon's floor).
pub fn recent_sample(name: &str, id: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/incidents").join(format!("{name}.json"));
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let last: chrono::DateTime<Utc> = v["lastUpdateDateTime"].as_str().unwrap().parse().unwrap();
    let delta = Utc::now() - last;
    fn shift(v: &mut Value, delta: chrono::Duration) {
        match v {
            Value::String(s) => {
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                    *s = (t.with_timezone(&Utc) + delta).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| shift(x, delta)),
            Value::Object(o) => o.values_mut().for_each(|x| shift(x, delta)),
            _ => {}
        }
    }
    shift(&mut v, delta);
    v["id"] = json!(id);
    v
}
