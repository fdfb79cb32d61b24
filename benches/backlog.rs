//! A backlog of 10,000 resolved incidents fetched from the Graph fake (tests/fakes/graph.rs, on
//! 127.0.0.1) and stored in a real sled store: requests per resolved incident and wall time, for
//! the default page size and for the largest one the source accepts.
//!
//!     cargo bench --bench backlog

// The fake is test code: it may panic on set-up failures, like the tests that use it.
#[path = "../tests/fakes/graph.rs"]
#[allow(dead_code, clippy::expect_used, clippy::unwrap_used)]
mod graph;

use std::time::Instant;

use graph::{Credentials, FakeGraph};
use hindsight::clock::ManualClock;
use hindsight::source::graph::{GraphConfig, GraphSource};
use hindsight::store::Store;
use serde_json::json;

const BACKLOG: usize = 10_000;

fn incident(n: usize) -> serde_json::Value {
    let at = |m: i64| {
        (chrono::DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z").map(|t| t.to_utc()).unwrap_or_default()
            + chrono::Duration::seconds(m))
        .to_rfc3339()
    };
    let alerts: Vec<serde_json::Value> = (0..3)
        .map(|a| {
            json!({"id": format!("a{n}-{a}"), "title": "Suspicious PowerShell command line", "category": "Execution",
                "mitreTechniques": ["T1059.001", "T1105"], "createdDateTime": at(n as i64),
                "firstActivityDateTime": at(n as i64 - 60), "lastActivityDateTime": at(n as i64 - 30),
                "evidence": [{"@odata.type": "#microsoft.graph.security.deviceEvidence", "deviceDnsName": format!("ws-{n}"), "verdict": "suspicious"}]})
        })
        .collect();
    json!({"id": n.to_string(), "tenantId": "t", "displayName": format!("Incident {n}"), "status": "resolved",
        "severity": "high", "classification": "truePositive", "determination": "malware",
        "createdDateTime": at(n as i64), "lastUpdateDateTime": at(n as i64 + 600), "alerts": alerts})
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for page_size in [50u32, 1000] {
        let creds =
            Credentials { tenant: "t".into(), client_id: "c".into(), client_secret: "s".into(), ..Default::default() };
        let fake = FakeGraph::start(creds).await;
        for n in 0..BACKLOG {
            fake.upsert(incident(n));
        }
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let store = match Store::open(dir.path()) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let cfg: GraphConfig = match serde_json::from_value(json!({
            "name": "bench", "tenant_id": "t", "client_id": "c", "client_secret": "s",
            "graph_url": fake.graph_url(), "login_url": fake.login_url(), "insecure_loopback": true, "page_size": page_size, "backfill": "1d"
        })) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let mut source = match GraphSource::new(cfg) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let clock = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap_or_default());
        let t = Instant::now();
        let report = match source.poll(&store, &clock).await {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let secs = t.elapsed().as_secs_f64();
        let pages = BACKLOG.div_ceil(page_size as usize);
        println!(
            "page size {page_size}: {} resolutions stored in {secs:.2} s ({:.0} incidents/s); {} requests = {} pages + 1 token ({:.4} requests per resolved incident; floor {:.4})",
            report.resolutions,
            report.resolutions as f64 / secs,
            report.requests,
            pages,
            report.requests as f64 / report.resolutions.max(1) as f64,
            pages as f64 / BACKLOG as f64,
        );
    }
}
