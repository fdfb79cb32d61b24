//! Deliveries per second from the outbox to a webhook receiver on 127.0.0.1 (16 in flight,
//! signed), and what the outbox adds to storing a review.
//!
//!     cargo bench --bench delivery

use std::sync::Arc;
use std::time::Instant;

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

const N: usize = 2000;

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("{e}");
    std::process::exit(1)
}

#[tokio::main]
async fn main() {
    hindsight::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| fail(e));
    let url = format!("http://{}/hook", listener.local_addr().unwrap_or_else(|e| fail(e)));
    // The receiver reads the whole body, as a real one does; one that answers before reading
    // makes hyper close the connection under the next request (seen: 15 % retries).
    let app = Router::new()
        .route("/hook", post(|body: axum::body::Bytes| async move { (StatusCode::ACCEPTED, body.len().to_string()) }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let path = format!("{}/examples/incidents/human-operated-ransomware.json", env!("CARGO_MANIFEST_DIR"));
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| fail(e))).unwrap_or_else(|e| fail(e));
    let incident = Incident::from_graph(&raw).unwrap_or_else(|e| fail(e));
    let catalog = hindsight::attack::store::embedded().unwrap_or_else(|e| fail(e));
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    let review = engine
        .review(&Subject { incident: &incident, source: "bench", revision: 1, transitions: &[] }, &History::default());
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail(e));
    let store = Store::open(dir.path()).unwrap_or_else(|e| fail(e));
    let now = Utc::now();
    for n in 0..N {
        let key = ResolutionKey::new("bench", &n.to_string(), 1);
        for e in entries_for(&key, &review, &[Subscription::everything("hook")], now) {
            store.update_outbox(&with_review(e, &review)).unwrap_or_else(|e| fail(e));
        }
    }
    let cfg: WebhookConfig = serde_json::from_value(serde_json::json!({"url": url, "insecure_loopback": true,
        "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))
    .unwrap_or_else(|e| fail(e));
    let dest = [Destination {
        name: "hook".into(),
        sink: Arc::new(Sink::Webhook(Box::new(WebhookSink::new(&cfg).unwrap_or_else(|e| fail(e))))),
    }];
    let sample = with_review(
        entries_for(&ResolutionKey::new("b", "x", 1), &review, &[Subscription::everything("hook")], now).remove(0),
        &review,
    );
    let body = serde_json::to_vec(&sample.body).map(|b| b.len()).unwrap_or(0);
    let t = Instant::now();
    let pass = deliver_due(&store, &dest, &RetryPolicy::default(), 16, now).await.unwrap_or_else(|e| fail(e));
    let secs = t.elapsed().as_secs_f64();
    if pass.delivered != N {
        eprintln!("not all delivered: {pass:?}");
    }
    println!(
        "{} deliveries (signed, {body} bytes each) in {secs:.2} s with 16 in flight: {:.0} deliveries/s",
        pass.delivered,
        pass.delivered as f64 / secs
    );

    // What the outbox adds to recording a review: the same reviews stored with and without one
    // destination (one outbox entry each, written in the same transaction).
    for destinations in [0usize, 1] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| fail(e));
        let store = Store::open(dir.path()).unwrap_or_else(|e| fail(e));
        let subs: Vec<Subscription> = (0..destinations).map(|i| Subscription::everything(&format!("d{i}"))).collect();
        let mut keys = Vec::new();
        for n in 0..N {
            let mut raw = raw.clone();
            raw["id"] = n.to_string().into();
            let obs = hindsight::store::Observed::from_value(&raw).unwrap_or_else(|e| fail(e));
            let out = store.ingest("bench", &[obs], None, None, now).unwrap_or_else(|e| fail(e));
            keys.extend(out.resolutions);
        }
        let t = Instant::now();
        for k in &keys {
            let outbox = entries_for(k, &review, &subs, now);
            let record = hindsight::stages::review::record_of("bench", &review, outbox, now);
            store.record_review(k, &record).unwrap_or_else(|e| fail(e));
        }
        store.flush().unwrap_or_else(|e| fail(e));
        let per = t.elapsed().as_secs_f64() * 1e6 / N as f64;
        println!("record_review with {destinations} destination(s): {per:.0} µs per review ({N} reviews, one flush)");
    }
}
