//! Reviews to a webhook receiver on 127.0.0.1 through the durable outbox: signatures checked by
//! the standardwebhooks crate (not our signing code), retries, Retry-After, dead letters, and
//! nothing lost across a store reopen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hindsight::attack::store as catalog_store;
use hindsight::clock::ManualClock;
use hindsight::notify::webhook::{WebhookConfig, WebhookSink};
use hindsight::notify::{Destination, Sink};
use hindsight::outbox::{EntryState, RetryPolicy};
use hindsight::review::{Engine, Settings};
use hindsight::stages::deliver::deliver_due;
use hindsight::stages::review::review_pending;
use hindsight::store::Store;

mod common;
mod fakes;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

use fakes::receiver::{Answer, Shared, start as receiver};

fn destination(url: &str, timeout: Duration) -> Destination {
    let cfg = WebhookConfig {
        url: url.to_owned().into(),
        signing_secret: Some(SECRET.to_owned().into()),
        timeout,
        insecure_loopback: true,
        allow_private: false,
        format: hindsight::notify::webhook::Format::Generic,
        oauth: None,
        portal_hosts: hindsight::notify::presets::default_portal_hosts(),
    };
    Destination { name: "soc-hook".into(), sink: Arc::new(Sink::Webhook(Box::new(WebhookSink::new(&cfg).unwrap()))) }
}

/// How many sample incidents there are (examples/incidents): one review, and one outbox entry
/// for "soc-hook", each.
fn samples() -> usize {
    std::fs::read_dir(common::repo().join("examples/incidents")).unwrap().count()
}

/// A receiver, and a store in which the sample incidents were reviewed for "soc-hook".
async fn reviewed_with_receiver() -> (Shared, String, tempfile::TempDir, Store, DateTime<Utc>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (state, url) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now = Utc::now();
    reviewed(&store, now).await;
    (state, url, dir, store, now)
}

async fn reviewed(store: &Store, now: DateTime<Utc>) {
    let clock = ManualClock::new(now);
    common::ingest_examples(store, &clock).await;
    let catalog = catalog_store::embedded().unwrap();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    assert_eq!(
        review_pending(store, &engine, &[hindsight::notify::Subscription::everything("soc-hook")], 100, now)
            .unwrap()
            .reviewed,
        samples()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_review_arrives_signed_with_a_stable_id() {
    let (state, url, _dir, store, now) = reviewed_with_receiver().await;
    let n = samples();
    assert_eq!(store.outbox_entries().unwrap().len(), n);

    state.lock().unwrap().answers.extend([Answer::RetryAfter(503, "120"), Answer::Status(500)]);
    let dest = [destination(&url, Duration::from_secs(5))];
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 16, now).await.unwrap();
    assert_eq!((pass.delivered, pass.retried, pass.dead), (n - 2, 2, 0));
    // Not due yet: nothing is sent again before the delay (Retry-After: 120 s at least).
    assert_eq!(deliver_due(&store, &dest, &RetryPolicy::default(), 16, now).await.unwrap(), Default::default());
    let later = now + chrono::Duration::seconds(200);
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 16, later).await.unwrap();
    assert_eq!(pass.delivered, 2);

    let received = state.lock().unwrap().received.clone();
    assert_eq!(received.len(), n + 2);
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    let schema: serde_json::Value = serde_json::from_str(include_str!("../schemas/webhook-event.v2.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut ids = std::collections::BTreeMap::<String, usize>::new();
    for (headers, body) in &received {
        verifier.verify(body, headers).expect("a valid Standard Webhooks signature");
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        let event: serde_json::Value = serde_json::from_slice(body).unwrap();
        let errors: Vec<String> = validator.iter_errors(&event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(event["id"], id.as_str(), "the body's id is the webhook-id");
        assert_eq!(event["event"], "review.created");
        assert_eq!(event["schema_version"], 2);
        *ids.entry(id).or_default() += 1;
    }
    // One per review; the two retried ones arrived twice with the same id.
    assert_eq!(ids.len(), n);
    assert_eq!(ids.values().filter(|&&n| n == 2).count(), 2);
    assert!(store.outbox_entries().unwrap().iter().all(|e| matches!(e.state, EntryState::Delivered { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_and_spent_budgets_are_dead_lettered() {
    let (state, url, _dir, store, now) = reviewed_with_receiver().await;
    state.lock().unwrap().answers.extend([
        Answer::Status(400),
        Answer::Status(410),
        Answer::Status(301),
        Answer::Hang(Duration::from_secs(3)),
        Answer::Status(503),
        Answer::Status(202),
    ]);
    let dest = [destination(&url, Duration::from_millis(300))];
    let short = RetryPolicy { schedule: vec![Duration::from_secs(1)], budget: Duration::from_secs(3600) };
    let pass = deliver_due(&store, &dest, &short, 1, now).await.unwrap();
    // Three dead, two retried, the rest delivered (the receiver answers 202 once its list is spent).
    assert_eq!((pass.delivered, pass.retried, pass.dead), (samples() - 5, 2, 3));
    let reasons: Vec<String> = store
        .outbox_entries()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.state {
            EntryState::Dead { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(reasons.iter().any(|r| r == "HTTP 400 Bad Request"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("HTTP 410 Gone")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("redirects are not followed")), "{reasons:?}");

    // The schedule has one retry: the two entries that failed again are dead-lettered, saying why.
    state.lock().unwrap().answers.extend([Answer::Status(500), Answer::Status(502)]);
    let pass = deliver_due(&store, &dest, &short, 4, now + chrono::Duration::seconds(10)).await.unwrap();
    assert_eq!((pass.delivered, pass.dead), (0, 2));
    let entries = store.outbox_entries().unwrap();
    let dead = entries.iter().filter(|e| matches!(e.state, EntryState::Dead { .. })).count();
    let delivered = entries.iter().filter(|e| matches!(e.state, EntryState::Delivered { .. })).count();
    assert_eq!((dead, delivered), (5, samples() - 5), "created = delivered + pending + dead");
    assert!(
        entries
            .iter()
            .any(|e| e.last_error.as_deref().is_some_and(|r| r.starts_with("retry budget spent after 2 attempts")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (state, url) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    {
        let store = Store::open(dir.path()).unwrap();
        reviewed(&store, now).await;
        // The receiver is down: nothing is delivered.
        state.lock().unwrap().answers.extend(std::iter::repeat_n(Answer::Status(503), samples()));
        let dest = [destination(&url, Duration::from_secs(5))];
        assert_eq!(deliver_due(&store, &dest, &RetryPolicy::default(), 16, now).await.unwrap().retried, samples());
    }
    let store = Store::open(dir.path()).unwrap();
    let later = now + chrono::Duration::minutes(1);
    // A destination that is no longer configured leaves its entries pending, and says so.
    let other = [Destination { name: "elsewhere".into(), ..destination(&url, Duration::from_secs(1)) }];
    assert_eq!(deliver_due(&store, &other, &RetryPolicy::default(), 1, later).await.unwrap().orphaned, samples());
    let dest = [destination(&url, Duration::from_secs(5))];
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 16, later).await.unwrap();
    assert_eq!(pass.delivered, samples());
    // The reviews are not made (or enqueued) again after the restart.
    let catalog = catalog_store::embedded().unwrap();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    assert_eq!(
        review_pending(&store, &engine, &[hindsight::notify::Subscription::everything("soc-hook")], 100, now)
            .unwrap()
            .reviewed,
        0
    );
    assert_eq!(store.outbox_entries().unwrap().len(), samples());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_automate_flow_restricted_to_a_tenant_gets_a_bearer_token() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let login = fakes::graph::FakeGraph::start(fakes::graph::Credentials {
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: "flow-caller".into(),
        client_secret: "flow-secret".into(),
        ..Default::default()
    })
    .await;
    let (state, url) = receiver().await;
    let cfg: WebhookConfig = serde_json::from_value(serde_json::json!({
        "url": url, "insecure_loopback": true, "format": "power-automate",
        "oauth": {"tenant_id": "contoso.onmicrosoft.com", "client_id": "flow-caller", "client_secret": "flow-secret",
                  "login_url": login.login_url(), "insecure_loopback": true}
    }))
    .unwrap();
    let dest = [Destination {
        name: "soc-hook".into(),
        sink: Arc::new(Sink::Webhook(Box::new(WebhookSink::new(&cfg).unwrap()))),
    }];
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now = Utc::now();
    reviewed(&store, now).await;
    // The first answer refuses the token: a new one is fetched for the next attempt.
    state.lock().unwrap().answers.push_back(Answer::Status(401));
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 1, now).await.unwrap();
    assert_eq!((pass.delivered, pass.retried), (samples() - 1, 1));
    let pass =
        deliver_due(&store, &dest, &RetryPolicy::default(), 1, now + chrono::Duration::minutes(1)).await.unwrap();
    assert_eq!(pass.delivered, 1);
    assert_eq!(login.token_requests(), 2, "one token cached for all deliveries, one after the refusal");
    let received = state.lock().unwrap().received.clone();
    for (headers, body) in &received {
        assert!(headers["authorization"].to_str().unwrap().starts_with("Bearer eyJ"));
        let flat: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert!(flat["severity"].is_string() && flat["review"].is_null(), "the compact Power Automate body");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_and_closed_connections_are_retried() {
    let (state, url, _dir, store, now) = reviewed_with_receiver().await;
    state.lock().unwrap().answers.push_back(Answer::RetryAfter(429, "3600"));
    let pass = deliver_due(&store, &[destination(&url, Duration::from_secs(5))], &RetryPolicy::default(), 1, now)
        .await
        .unwrap();
    assert_eq!((pass.delivered, pass.retried), (samples() - 1, 1));
    let waiting = store.outbox_entries().unwrap().into_iter().find(|e| e.state == EntryState::Pending).unwrap();
    assert!(waiting.next_attempt_at >= now + chrono::Duration::seconds(3600), "Retry-After: 3600 was honoured");

    // A receiver that accepts the connection and closes it without answering.
    let closer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closer_url = format!("http://{}/hook", closer.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((sock, _)) = closer.accept().await {
            drop(sock);
        }
    });
    let later = now + chrono::Duration::hours(2);
    let pass =
        deliver_due(&store, &[destination(&closer_url, Duration::from_secs(5))], &RetryPolicy::default(), 1, later)
            .await
            .unwrap();
    assert_eq!(pass.retried, 1);
    let e = store.outbox_entry(&waiting.id).unwrap().unwrap();
    assert_eq!(e.attempts, 2);
    assert!(e.last_error.as_deref().unwrap().contains("error sending request"), "{:?}", e.last_error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_whose_certificate_is_not_trusted_is_retried_with_the_reason_and_never_sent_in_clear() {
    let (_state, _url, _dir, store, now) = reviewed_with_receiver().await;
    // An HTTPS receiver whose certificate comes from a CA nobody trusts (as with a proxy's
    // self-signed certificate, or an expired chain): the handshake must fail, and the body
    // must never reach it.
    let (acceptor, _ca) = fakes::smtp::tls_acceptor();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hook?sig=Sas5ignatureValue_xyz987", listener.local_addr().unwrap());
    let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let plain_bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (h, p) = (handshakes.clone(), plain_bytes.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (acceptor, h, p) = (acceptor.clone(), h.clone(), p.clone());
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                if let Ok(mut tls) = acceptor.accept(sock).await {
                    h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut buf = [0u8; 1024];
                    let n = tls.read(&mut buf).await.unwrap_or(0);
                    p.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    let cfg = WebhookConfig {
        url: url.clone().into(),
        signing_secret: Some(SECRET.to_owned().into()),
        timeout: Duration::from_secs(5),
        insecure_loopback: false,
        allow_private: false,
        format: hindsight::notify::webhook::Format::Generic,
        oauth: None,
        portal_hosts: hindsight::notify::presets::default_portal_hosts(),
    };
    let dest = [Destination {
        name: "soc-hook".into(),
        sink: Arc::new(Sink::Webhook(Box::new(WebhookSink::new(&cfg).unwrap()))),
    }];
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 4, now).await.unwrap();
    assert_eq!((pass.delivered, pass.retried, pass.dead), (0, samples(), 0), "a TLS failure is retried, not dropped");
    let reason = pass.outcomes["soc-hook"].clone().expect("the destination is reported failing");
    assert!(reason.to_lowercase().contains("certificate"), "the reason names the certificate: {reason}");
    assert!(!reason.contains("Sas5ignatureValue_xyz987"), "{reason}");
    for e in store.outbox_entries().unwrap() {
        assert_eq!(e.state, EntryState::Pending);
        let err = e.last_error.unwrap();
        assert!(err.to_lowercase().contains("certificate") && !err.contains("Sas5ignature"), "{err}");
    }
    assert_eq!(handshakes.load(std::sync::atomic::Ordering::SeqCst), 0, "no handshake completed");
    assert_eq!(plain_bytes.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A receiver named `localhost` is reached at what the name resolves to (loopback, checked by
/// the daemon's resolver), not trusted by its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_named_localhost_is_resolved_and_reached_on_loopback() {
    let (state, url, _dir, store, now) = reviewed_with_receiver().await;
    let by_name = url.replace("127.0.0.1", "localhost");
    assert!(by_name.starts_with("http://localhost:"), "{by_name}");
    let pass = deliver_due(&store, &[destination(&by_name, Duration::from_secs(5))], &RetryPolicy::default(), 4, now)
        .await
        .unwrap();
    assert_eq!(pass.delivered, samples());
    assert_eq!(state.lock().unwrap().received.len(), samples());
}
