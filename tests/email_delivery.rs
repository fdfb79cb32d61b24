//! Reviews by e-mail to an SMTP server on 127.0.0.1 (tests/fakes/smtp.rs), checked as received:
//! envelope, authentication, headers, both parts, the attachment, escaping, retries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fakes;

use std::sync::Arc;

use base64::Engine as _;
use chrono::Utc;
use fakes::smtp::{DataAnswer, FakeSmtp};
use hindsight::attack::store as catalog_store;
use hindsight::model::Incident;
use hindsight::notify::email::{EmailConfig, EmailSink};
use hindsight::notify::{Destination, Sink, Subscription, entries_for};
use hindsight::outbox::{EntryState, RetryPolicy, with_review};
use hindsight::review::{Engine, History, Settings, Subject};
use hindsight::stages::deliver::deliver_due;
use hindsight::store::{ResolutionKey, Store};
use serde_json::json;

const PASSWORD: &str = "Pa55-smtp-secret!";

fn config(port: u16) -> EmailConfig {
    serde_json::from_value(json!({
        "host": "127.0.0.1", "port": port, "security": "plain",
        "username": "hindsight@contoso.com", "password": PASSWORD,
        "from": "Hindsight <hindsight@contoso.com>", "to": ["soc@contoso.com", "Lead <lead@contoso.com>"],
        "timeout": "5s"
    }))
    .unwrap()
}

/// A store holding one queued notification of a review whose incident title is hostile.
fn store_with_entry(dir: &std::path::Path) -> (Store, String) {
    let (entry, id) = entry_titled("Invoice <script>alert('x')</script> & more");
    let store = Store::open(dir).unwrap();
    store.update_outbox(&entry).unwrap();
    (store, id)
}

/// The notification of a review of incident 2001 titled `title`.
fn entry_titled(title: &str) -> (hindsight::outbox::OutboxEntry, String) {
    let raw = json!({"id": "2001", "status": "resolved", "severity": "high", "classification": "truePositive",
        "displayName": title, "lastUpdateDateTime": "2026-11-20T10:00:00Z",
        "incidentWebUrl": "https://security.microsoft.com/incident2/2001/overview",
        "alerts": [{"id": "a1", "title": "<img src=x onerror=alert(1)>", "category": "Execution",
            "mitreTechniques": ["T1059.001"], "createdDateTime": "2026-11-20T09:00:00Z", "firstActivityDateTime": "2026-11-20T08:58:00Z"}]});
    let incident = Incident::from_graph(&raw).unwrap();
    let catalog = catalog_store::embedded().unwrap();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    let review = engine.review(
        &Subject { incident: &incident, source: "contoso", revision: 1, transitions: &[] },
        &History::default(),
    );
    let key = ResolutionKey::new("contoso", "2001", 1);
    let entry =
        with_review(entries_for(&key, &review, &[Subscription::everything("mail")], Utc::now()).remove(0), &review);
    let id = entry.id.clone();
    (entry, id)
}

fn mail_destination(port: u16) -> [Destination; 1] {
    [Destination { name: "mail".into(), sink: Arc::new(Sink::Email(Box::new(EmailSink::new(&config(port)).unwrap()))) }]
}

fn part(data: &str, content_type: &str) -> String {
    let start = data
        .find(&format!("Content-Type: {content_type}"))
        .unwrap_or_else(|| panic!("no {content_type} part:\n{data}"));
    let rest = &data[start..];
    let body_start = rest.find("\n\n").unwrap() + 2;
    let encoded: String = rest[body_start..].lines().take_while(|l| !l.starts_with("--")).collect();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded.trim()).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_arrives_as_a_multipart_message_with_the_layer() {
    let smtp = FakeSmtp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (store, id) = store_with_entry(dir.path());
    let dest = mail_destination(smtp.port);
    // A temporary refusal first: the resend must be the same message.
    smtp.answer(DataAnswer::Reply("451 4.3.0 Try again later"));
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 4, Utc::now()).await.unwrap();
    assert_eq!((pass.delivered, pass.retried), (0, 1));
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 4, Utc::now() + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(pass.delivered, 1);

    let m = smtp.messages().remove(0);
    assert_eq!(m.mail_from, "<hindsight@contoso.com>");
    assert_eq!(m.rcpt_to, ["<soc@contoso.com>", "<lead@contoso.com>"]);
    assert_eq!(m.auth, Some(("hindsight@contoso.com".into(), PASSWORD.into())));
    // Headers may be folded over several lines (RFC 5322): unfold them before reading.
    let unfolded = m.data.replace("\n ", " ");
    let d = &unfolded;
    assert!(d.contains(&format!("Message-ID: <{id}@contoso.com>")), "{d}");
    assert!(
        d.contains(
            "Subject: [Hindsight] high - truePositive - incident 2001: Invoice <script>alert('x')</script> & more"
        ),
        "{d}"
    );
    assert!(d.contains("Content-Type: multipart/alternative") && d.contains("Content-Type: multipart/mixed"));
    assert!(d.contains("Content-Disposition: attachment; filename=\"layer.json\""), "{d}");
    assert!(
        d.contains("Content-Disposition: attachment; filename=\"review.json\""),
        "the whole review travels with it"
    );

    let d = &m.data;
    let text = part(d, "text/plain");
    assert!(text.starts_with("Post-incident review: Invoice <script>"), "plain text carries the title as is");
    let html = part(d, "text/html");
    assert!(html.contains("Invoice &lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt; &amp; more"), "{html}");
    assert!(!html.contains("<script>") && !html.contains("<img"), "{html}");
    let layer: serde_json::Value = serde_json::from_str(&part(d, "application/json")).unwrap();
    assert_eq!(layer["versions"]["layer"], "4.5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_dropped_connections() {
    let smtp = FakeSmtp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (store, id) = store_with_entry(dir.path());
    let dest = mail_destination(smtp.port);
    smtp.answer(DataAnswer::Drop);
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 1, Utc::now()).await.unwrap();
    assert_eq!(pass.retried, 1, "a connection dropped after DATA is retried");
    smtp.answer(DataAnswer::Reply("550 5.7.1 Relaying denied"));
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 1, Utc::now() + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(pass.dead, 1, "a 5xx is permanent");
    let entry = store.outbox_entry(&id).unwrap().unwrap();
    let EntryState::Dead { reason, .. } = entry.state else { panic!("{entry:?}") };
    assert!(reason.contains("550") && !reason.contains(PASSWORD), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_is_waited_for_and_one_past_the_timeout_is_retried_with_the_same_message_id() {
    let smtp = FakeSmtp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (store, id) = store_with_entry(dir.path());
    let mut cfg = config(smtp.port);
    cfg.timeout = std::time::Duration::from_secs(1);
    let dest =
        [Destination { name: "mail".into(), sink: Arc::new(Sink::Email(Box::new(EmailSink::new(&cfg).unwrap()))) }];
    // Past the 1 s timeout: the server has the message, Hindsight cannot know it, so it is an
    // attempt to make again (at least once), not a loss and not a dead letter.
    smtp.answer(DataAnswer::Slow(std::time::Duration::from_secs(3)));
    let started = std::time::Instant::now();
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 1, Utc::now()).await.unwrap();
    assert_eq!((pass.delivered, pass.retried, pass.dead), (0, 1, 0), "{pass:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(2500),
        "gave up at the timeout: {:?}",
        started.elapsed()
    );
    let reason = store.outbox_entry(&id).unwrap().unwrap().last_error.unwrap();
    assert!(reason.to_lowercase().contains("timed out") || reason.to_lowercase().contains("timeout"), "{reason}");
    // Slow but inside the timeout: waited for, delivered once.
    smtp.answer(DataAnswer::Slow(std::time::Duration::from_millis(600)));
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 1, Utc::now() + chrono::Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!((pass.delivered, pass.retried, pass.dead), (1, 0, 0), "{pass:?}");
    assert!(matches!(store.outbox_entry(&id).unwrap().unwrap().state, EntryState::Delivered { .. }));
    // The server took it twice: the repeat carries the same Message-ID, so mail clients and
    // ticketing tools that thread by it show one message.
    let ids = smtp.message_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids.values().copied().collect::<Vec<_>>(), [2]);
    assert!(ids.keys().next().unwrap().contains(&id));
}

#[test]
fn unencrypted_smtp_is_refused_unless_loopback_or_explicit() {
    let mut cfg = config(25);
    cfg.host = "smtp.contoso.com".into();
    let err = EmailSink::new(&cfg).unwrap_err();
    assert!(err.starts_with("security: plain SMTP to smtp.contoso.com"), "{err}");
    cfg.allow_plain = true;
    assert!(EmailSink::new(&cfg).is_ok());
    let starttls: EmailConfig =
        serde_json::from_value(json!({"host": "smtp.office365.com", "from": "a@b.c", "to": ["d@e.f"]})).unwrap();
    assert!(EmailSink::new(&starttls).is_ok(), "STARTTLS on 587 is the default");
    let mut bad = config(25);
    bad.to = vec![];
    assert_eq!(EmailSink::new(&bad).unwrap_err(), "to: at least one recipient");
    assert!(!format!("{:?}", config(25)).contains(PASSWORD), "the password is redacted in Debug output");
}

/// The same message over an encrypted connection: STARTTLS or implicit TLS to a server whose
/// certificate comes from a private CA named in `ca_file`.
async fn deliver_over_tls(
    mode: fakes::smtp::TlsMode,
    security: &str,
) -> (FakeSmtp, hindsight::stages::deliver::DeliveryPass, Store, tempfile::TempDir) {
    let smtp = FakeSmtp::start_with(mode).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &smtp.ca_pem).unwrap();
    let mut cfg = config(smtp.port);
    cfg.security = serde_json::from_value(json!(security)).unwrap();
    cfg.ca_file = Some(ca);
    let (store, _) = store_with_entry(&dir.path().join("store"));
    let dest =
        [Destination { name: "mail".into(), sink: Arc::new(Sink::Email(Box::new(EmailSink::new(&cfg).unwrap()))) }];
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 1, Utc::now()).await.unwrap();
    (smtp, pass, store, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_implicit_tls_with_a_private_ca() {
    let (smtp, pass, _, _dir) = deliver_over_tls(fakes::smtp::TlsMode::Starttls, "starttls").await;
    assert_eq!(pass.delivered, 1, "{pass:?}");
    assert_eq!(smtp.messages()[0].auth, Some(("hindsight@contoso.com".into(), PASSWORD.into())), "AUTH after STARTTLS");
    let (smtp, pass, _, _dir2) = deliver_over_tls(fakes::smtp::TlsMode::Implicit, "tls").await;
    assert_eq!(pass.delivered, 1, "{pass:?}");
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_silent_fall_back_to_plain_text() {
    // STARTTLS required, but the server does not offer it: nothing is sent in the clear.
    let (smtp, pass, store, _dir) = deliver_over_tls(fakes::smtp::TlsMode::Plain, "starttls").await;
    assert_eq!((pass.delivered, pass.retried), (0, 1));
    assert!(smtp.messages().is_empty());
    let e = store.outbox_entries().unwrap().remove(0);
    assert!(e.last_error.unwrap().starts_with("SMTP"), "the reason is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_not_trusted_is_retried_and_nothing_is_sent() {
    // STARTTLS offered, but the certificate's CA is not named in ca_file (nor in the system's
    // roots): the handshake fails, no password and no message go over the connection.
    let smtp = FakeSmtp::start_with(fakes::smtp::TlsMode::Starttls).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(smtp.port);
    cfg.security = serde_json::from_value(json!("starttls")).unwrap();
    let (store, id) = store_with_entry(&dir.path().join("store"));
    let dest =
        [Destination { name: "mail".into(), sink: Arc::new(Sink::Email(Box::new(EmailSink::new(&cfg).unwrap()))) }];
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 1, Utc::now()).await.unwrap();
    assert_eq!((pass.delivered, pass.retried, pass.dead), (0, 1, 0), "{pass:?}");
    assert!(smtp.messages().is_empty());
    let e = store.outbox_entry(&id).unwrap().unwrap();
    let reason = e.last_error.unwrap();
    assert!(reason.to_lowercase().contains("certificate"), "the reason names the certificate: {reason}");
    assert!(!reason.contains(PASSWORD), "{reason}");
}

/// `ca_file` as a configuration file gives it: a path, read when the sink is built (not a
/// secret file to inline), whose CA makes the private relay's certificate trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_file_from_the_configuration_file_trusts_a_private_relay() {
    let smtp = FakeSmtp::start_with(fakes::smtp::TlsMode::Starttls).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("relay-ca.pem");
    std::fs::write(&ca, &smtp.ca_pem).unwrap();
    std::fs::write(dir.path().join("smtp-password"), format!("{PASSWORD}\n")).unwrap();
    let toml = format!(
        "[[destinations]]\ntype = \"email\"\nname = \"mail\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"starttls\"\n\
         username = \"hindsight@contoso.com\"\npassword_file = \"smtp-password\"\nfrom = \"hindsight@contoso.com\"\n\
         to = [\"soc@contoso.com\"]\ntimeout = \"5s\"\nca_file = {:?}\n",
        smtp.port,
        ca.display().to_string()
    );
    let path = dir.path().join("hindsight.toml");
    std::fs::write(&path, toml).unwrap();
    let env = [("CREDENTIALS_DIRECTORY".to_owned(), dir.path().display().to_string())];
    let cfg = hindsight::config::Config::load(Some(&path), &env).unwrap();
    let hindsight::config::SinkKind::Email(email) = &cfg.destinations[0].sink else { panic!("an e-mail destination") };
    assert_eq!(email.ca_file.as_deref(), Some(ca.as_path()));
    let (store, id) = store_with_entry(&dir.path().join("store"));
    // Built as the daemon builds it.
    let dest = [Destination { name: "mail".into(), sink: Arc::new(cfg.destinations[0].sink.build().unwrap()) }];
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 1, Utc::now()).await.unwrap();
    assert_eq!((pass.delivered, pass.retried, pass.dead), (1, 0, 0), "{pass:?}");
    assert!(matches!(store.outbox_entry(&id).unwrap().unwrap().state, EntryState::Delivered { .. }));
    assert_eq!(smtp.messages().len(), 1);

    // A ca_file that cannot be read is named by its key when the sink is built.
    let mut missing = email.clone();
    missing.ca_file = Some(dir.path().join("no-such-ca.pem"));
    let problems = hindsight::config::SinkKind::Email(missing).build().err().unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].key, "ca_file");
    assert!(problems[0].message.contains("no-such-ca.pem"), "{:?}", problems[0]);
}

/// A title with terminal escapes and a bell, 100 KB long: the Subject keeps neither, stays
/// within RFC 5322's line limit, and ends in an ellipsis.
#[test]
fn a_hostile_title_makes_a_short_clean_subject() {
    let title = format!("\u{1b}[31mRansom\u{7} note\r\n\u{9b}X {}", "A".repeat(100 * 1024));
    let (entry, _) = entry_titled(&title);
    let sink = EmailSink::new(&config(2525)).unwrap();
    let payload = hindsight::outbox::Payload::in_body(&entry).unwrap().unwrap();
    let message = sink.message(&entry, &payload).unwrap();
    let subject = message.headers().get_raw("Subject").unwrap().to_owned();
    assert!(!subject.chars().any(char::is_control), "{:?}", &subject[..subject.len().min(80)]);
    assert!(subject.chars().count() <= 200, "{} characters", subject.chars().count());
    assert!(subject.ends_with('…'), "{subject}");
    assert!(subject.contains("[31mRansom note X AAA"), "{subject}");
    let formatted = String::from_utf8(message.formatted()).unwrap();
    for line in formatted.lines() {
        assert!(line.len() <= 998, "a line of {} characters", line.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_plain_smtp_is_plain() {
    let smtp = FakeSmtp::start().await;
    let sink = EmailSink::new(&config(smtp.port)).unwrap();
    let said = sink.probe().await.unwrap();
    assert!(said.contains("plain") && said.contains("unencrypted"), "{said}");
    assert!(!said.contains("TLS and sign-in"), "{said}");
}
