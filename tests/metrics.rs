//! Delivery outcomes are counted as metrics (exported by the daemon's /metrics): here through
//! a debugging recorder installed for this test binary alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::Utc;
use hindsight::model::Incident;
use hindsight::notify::webhook::{WebhookConfig, WebhookSink};
use hindsight::notify::{Destination, Sink, Subscription, entries_for};
use hindsight::outbox::{RetryPolicy, with_review};
use hindsight::review::{Engine, History, Settings, Subject};
use hindsight::stages::deliver::deliver_due;
use hindsight::store::{ResolutionKey, Store};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_and_dead_letters_are_counted() {
    hindsight::install_crypto_provider();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let app = Router::new().route(
        "/hook",
        post(move |_: axum::body::Bytes| {
            let n = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { if n == 0 { StatusCode::BAD_REQUEST } else { StatusCode::OK } }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let raw = serde_json::json!({"id": "1", "status": "resolved", "lastUpdateDateTime": "2026-11-20T10:00:00Z", "alerts": []});
    let incident = Incident::from_graph(&raw).unwrap();
    let catalog = hindsight::attack::store::embedded().unwrap();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    let review = engine
        .review(&Subject { incident: &incident, source: "s", revision: 1, transitions: &[] }, &History::default());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now = Utc::now();
    for n in 0..3 {
        for e in
            entries_for(&ResolutionKey::new("s", &n.to_string(), 1), &review, &[Subscription::everything("hook")], now)
        {
            store.update_outbox(&with_review(e, &review)).unwrap();
        }
    }
    // A notification whose review is not in the store can never be sent: it is a dead letter
    // and is counted as one (it once went uncounted).
    for e in entries_for(&ResolutionKey::new("s", "gone", 1), &review, &[Subscription::everything("hook")], now) {
        store.update_outbox(&e).unwrap();
    }
    let cfg: WebhookConfig =
        serde_json::from_value(serde_json::json!({"url": url, "insecure_loopback": true})).unwrap();
    let dest =
        [Destination { name: "hook".into(), sink: Arc::new(Sink::Webhook(Box::new(WebhookSink::new(&cfg).unwrap()))) }];
    deliver_due(&store, &dest, &RetryPolicy::default(), 1, now).await.unwrap();

    let counters: Vec<(String, Vec<String>, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(k, _, _, v)| match v {
            DebugValue::Counter(n) => {
                let key = k.key();
                Some((key.name().to_owned(), key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect(), n))
            }
            _ => None,
        })
        .collect();
    let find = |name: &str, label: &str| {
        counters.iter().find(|(n, l, _)| n == name && l.iter().any(|x| x == label)).map(|c| c.2)
    };
    assert_eq!(find("hindsight_dead_letters_total", "destination=hook"), Some(2), "{counters:?}");
    assert_eq!(find("hindsight_deliveries_total", "outcome=delivered"), Some(2), "{counters:?}");
}
