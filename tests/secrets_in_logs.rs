//! No secret in any log line at trace level, across a run with faults: the Graph client secret
//! and bearer tokens, a Power Automate SAS `sig`, the Standard Webhooks key, the SMTP password,
//! and configuration errors on lines that hold them. Each is looked for as is, base64-encoded
//! and URL-encoded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fakes;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use fakes::graph::{Credentials, FakeGraph, Fault};
use fakes::smtp::{DataAnswer, FakeSmtp};
use hindsight::clock::ManualClock;
use hindsight::notify::email::{EmailConfig, EmailSink};
use hindsight::notify::webhook::{WebhookConfig, WebhookSink};
use hindsight::notify::{Destination, Sink, Subscription};
use hindsight::outbox::RetryPolicy;
use hindsight::review::{Engine, Settings};
use hindsight::source::Source;
use hindsight::source::graph::{GraphConfig, GraphSource};
use hindsight::stages::deliver::deliver_due;
use hindsight::stages::review::review_pending;
use hindsight::store::Store;
use serde_json::json;

const PRIVATE_KEY: &str = include_str!("fixtures/entra/other-key.pem");
const CLIENT_SECRET: &str = "gr4ph~Client.Secret_value-123";
const SAS_SIG: &str = "S4sSignatureValue123xyz";
const HMAC_KEY: &str = "whsec_c2VjcmV0LWhtYWMta2V5LWJ5dGVzLTAxMjM0NQ==";
const SMTP_PASSWORD: &str = "smtp-P@ssw0rd-987";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_log_line() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // Configuration errors, as `hindsight run` logs them: a syntax error on the secret's line,
    // a SAS URL with a syntax error, a secret of the wrong type.
    let config_dir = tempfile::tempdir().unwrap();
    let graph_table = "[[sources]]\ntype = \"graph\"\nname = \"a\"\ntenant_id = \"t\"\nclient_id = \"c\"\n";
    for (n, text) in [
        format!("{graph_table}client_secret = \"{CLIENT_SECRET}\" x\n"),
        format!("[[destinations]]\ntype = \"webhook\"\nname = \"w\"\nurl = \"https://x/y?sig={SAS_SIG}\n"),
        format!("[[destinations]]\ntype = \"email\"\nname = \"m\"\nhost = \"h\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\nusername = \"u\"\npassword = [\"{SMTP_PASSWORD}\"]\n"),
    ]
    .into_iter()
    .enumerate()
    {
        let path = config_dir.path().join(format!("{n}.toml"));
        std::fs::write(&path, text).unwrap();
        let e = hindsight::config::Config::load(Some(&path), &[]).unwrap_err();
        tracing::error!("{e}");
    }

    // Graph: throttling, an expired token, a failing token endpoint.
    let graph = FakeGraph::start(Credentials {
        tenant: "t".into(),
        client_id: "c".into(),
        client_secret: CLIENT_SECRET.into(),
        ..Default::default()
    })
    .await;
    for n in 0..3 {
        graph.upsert(json!({"id": n.to_string(), "status": "resolved", "severity": "high", "classification": "truePositive",
            "lastUpdateDateTime": "2026-11-24T12:05:00Z", "alerts": [{"id": format!("a{n}"), "title": "x", "mitreTechniques": ["T1059.001"]}]}));
    }
    graph.push_token_fault(Fault::Status(500));
    graph.push_fault(Fault::TooManyRequests { retry_after: Some("0.01".into()) });
    graph.push_fault(Fault::ExpiredToken);
    let cfg: GraphConfig = serde_json::from_value(json!({"name": "contoso", "tenant_id": "t", "client_id": "c",
        "client_secret": CLIENT_SECRET, "graph_url": graph.graph_url(), "login_url": graph.login_url(), "insecure_loopback": true,
        "retry_base": "5ms", "backfill": "1d"}))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clock = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap());
    let mut source = Source::Graph(Box::new(GraphSource::new(cfg).unwrap()));
    source.poll(&store, &clock).await.unwrap();
    // A wrong secret: the sign-in error is logged and returned.
    let bad: GraphConfig = serde_json::from_value(json!({"name": "other", "tenant_id": "t", "client_id": "c",
        "client_secret": format!("{CLIENT_SECRET}-wrong"), "graph_url": graph.graph_url(), "login_url": graph.login_url(), "insecure_loopback": true})).unwrap();
    let err = Source::Graph(Box::new(GraphSource::new(bad).unwrap())).poll(&store, &clock).await.unwrap_err();
    tracing::error!("{err}");
    // A certificate the app does not hold: the refusal is logged, the key never.
    let cert = rcgen::CertificateParams::new(vec!["hindsight".into()])
        .unwrap()
        .self_signed(&rcgen::KeyPair::from_pem(PRIVATE_KEY).unwrap())
        .unwrap()
        .pem();
    let unregistered: GraphConfig = serde_json::from_value(json!({"name": "cert", "tenant_id": "t", "client_id": "c",
        "credential": "certificate", "certificate": cert, "private_key": PRIVATE_KEY,
        "graph_url": graph.graph_url(), "login_url": graph.login_url(), "insecure_loopback": true}))
    .unwrap();
    let err = Source::Graph(Box::new(GraphSource::new(unregistered).unwrap())).poll(&store, &clock).await.unwrap_err();
    tracing::error!("{err}");

    // Reviews to a webhook with a SAS sig and a signing key, and by e-mail, with failures.
    let catalog = hindsight::attack::store::embedded().unwrap();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    let subs = [Subscription::everything("flow"), Subscription::everything("mail")];
    review_pending(&store, &engine, &subs, 100, Utc::now()).unwrap();
    let smtp = FakeSmtp::start().await;
    smtp.answer(DataAnswer::Reply("451 4.3.0 Try again later"));
    let flow_url = format!(
        "http://127.0.0.1:{}/workflows/1/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers&sv=1.0&sig={SAS_SIG}",
        smtp.port + 1
    );
    let hook: WebhookConfig = serde_json::from_value(json!({"url": flow_url, "signing_secret": HMAC_KEY,
        "insecure_loopback": true, "timeout": "500ms"}))
    .unwrap();
    let mail: EmailConfig = serde_json::from_value(json!({"host": "127.0.0.1", "port": smtp.port, "security": "plain",
        "username": "hindsight", "password": SMTP_PASSWORD, "from": "h@contoso.com", "to": ["soc@contoso.com"]}))
    .unwrap();
    let dests = [
        Destination { name: "flow".into(), sink: Arc::new(Sink::Webhook(Box::new(WebhookSink::new(&hook).unwrap()))) },
        Destination { name: "mail".into(), sink: Arc::new(Sink::Email(Box::new(EmailSink::new(&mail).unwrap()))) },
    ];
    // The flow URL points at a closed port: every webhook attempt fails with a connection error.
    deliver_due(&store, &dests, &RetryPolicy::default(), 4, Utc::now()).await.unwrap();
    deliver_due(&store, &dests, &RetryPolicy::default(), 4, Utc::now() + chrono::Duration::minutes(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() > 20, "the run logged something: {logs}");
    assert!(logs.contains("retrying") && logs.contains("sign-in failed"), "{logs}");
    assert!(
        logs.contains("destination=flow") && logs.contains("destination=mail"),
        "both sinks failed and logged: {logs}"
    );
    assert!(logs.contains("AADSTS700027"), "the certificate refusal was logged: {logs}");
    for token in graph.issued_tokens() {
        assert!(!logs.contains(&token), "a bearer token appears in the logs");
    }
    // No JWT at all: neither a token nor a client assertion.
    assert!(!logs.contains("eyJ"), "a JWT appears in the logs:\n{logs}");
    for line in PRIVATE_KEY.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!logs.contains(line), "a line of the private key appears in the logs");
    }
    for secret in [CLIENT_SECRET, SAS_SIG, HMAC_KEY, SMTP_PASSWORD] {
        for form in common::secret_forms(secret) {
            assert!(!logs.contains(&form), "{form:?} (a form of a secret) appears in the logs:\n{logs}");
        }
    }
    assert!(!smtp.messages().is_empty(), "the e-mail went through after the 451");
}
