//! A backlog of 10,000 resolved incidents fetched from the Graph fake (tests/fakes/graph.rs, on
//! 127.0.0.1) and stored in a real sled store: requests per resolved incident and wall time, for
//! the default page size and for the largest one the source accepts.
//!
//! With pages of 1,000 it also measures, in the same run, what the source's time is made of:
//! - transport: the same pages fetched with a plain HTTP client and thrown away (the fake's
//!   work and HTTP, which a real tenant does on its side and on the wire);
//! - the floor: those page bodies parsed with serde (each incident kept as raw JSON) and written
//!   raw twice (the snapshot and the resolution) to a fresh sled store, one transaction per
//!   page, one flush at the end;
//!
//! and reports Hindsight's own cost per incident (its poll minus transport) against the floor.
//!
//!     cargo bench --bench backlog

// The fake is test code: it may panic on set-up failures, like the tests that use it.
#[path = "../tests/fakes/graph.rs"]
#[allow(dead_code, clippy::expect_used, clippy::unwrap_used)]
mod graph;

use std::time::Instant;

use sled::Transactional;

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

/// The daemon's allocator (src/main.rs): what Hindsight's own steps cost depends on it (a page
/// of incidents is parsed into thousands of small allocations).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    // As the daemon does (src/main.rs).
    hindsight::memory::configure();
    let _ = rustls::crypto::ring::default_provider().install_default();
    for page_size in [50u32, 1000] {
        let creds =
            Credentials { tenant: "t".into(), client_id: "c".into(), client_secret: "s".into(), ..Default::default() };
        let fake = FakeGraph::start(creds).await;
        for n in 0..BACKLOG {
            fake.upsert(incident(n));
        }
        let (_dir, store) = fresh_store();
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
        if page_size == 1000 {
            let transport = Instant::now();
            let bodies = fetch_pages(&fake, page_size).await;
            let transport = transport.elapsed().as_secs_f64();
            let floor = floor(&bodies);
            breakdown(&bodies);
            let own = (secs - transport) / BACKLOG as f64;
            println!(
                "  of which transport (the same {} pages fetched and thrown away) {transport:.2} s; Hindsight's own cost {:.1} µs per incident; the floor (serde parse, raw JSON written twice to sled, one flush) {:.1} µs per incident: {:.2}× the floor",
                bodies.len(),
                own * 1e6,
                floor * 1e6,
                own / floor
            );
        }
    }
}

/// The pages the source read, fetched as they are: a token, then each page's nextLink.
async fn fetch_pages(fake: &FakeGraph, top: u32) -> Vec<Vec<u8>> {
    let http = reqwest::Client::new();
    let token: serde_json::Value = match http
        .post(format!("{}/t/oauth2/v2.0/token", fake.login_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "c"),
            ("client_secret", "s"),
            ("scope", &format!("{}/.default", fake.graph_url())),
        ])
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(e) => panic!("token: {e}"),
    };
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap_or_default());
    let mut next = Some(format!(
        "{}/v1.0/security/incidents?$filter=lastUpdateDateTime%20ge%202026-11-23T12:00:00.000000Z&$top={top}&$expand=alerts",
        fake.graph_url()
    ));
    let mut bodies = Vec::new();
    while let Some(url) = next.take() {
        let body = match http.get(&url).header("Authorization", &bearer).send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            Ok(r) => panic!("{url}: {}", r.status()),
            Err(e) => panic!("{url}: {e}"),
        };
        #[derive(serde::Deserialize)]
        struct Link {
            #[serde(rename = "@odata.nextLink")]
            next: Option<String>,
        }
        next = serde_json::from_slice::<Link>(&body).ok().and_then(|l| l.next);
        bodies.push(body);
    }
    let incidents: usize = bodies.iter().map(|b| page(b).len()).sum();
    assert_eq!(incidents, BACKLOG, "the transport fetch read the whole backlog");
    bodies
}

/// The source's steps on the same pages without HTTP, each timed on its own: the page split
/// into its incidents' texts, each incident's own fields read from its text, and the pages
/// stored in a fresh store (the snapshot and the resolution, compressed) with one flush.
fn breakdown(bodies: &[Vec<u8>]) {
    let t = Instant::now();
    let pages: Vec<Vec<Box<serde_json::value::RawValue>>> = bodies.iter().map(|b| page(b)).collect();
    let split = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut observed = Vec::new();
    for page in pages {
        let mut read = Vec::with_capacity(page.len());
        for raw in page {
            match hindsight::store::Observed::read(raw) {
                Ok(o) => read.push(o),
                Err(e) => panic!("{e}"),
            }
        }
        observed.push(read);
    }
    let header = t.elapsed().as_secs_f64();
    // Not the source's cost: what the review stage pays once per resolution to read the alerts
    // from the stored text (shown so that the cost moved out of ingest stays in sight).
    let t = Instant::now();
    for o in observed.iter().flatten() {
        if let Err(e) = hindsight::model::Incident::from_graph_str(o.raw.get(), &hindsight::model::Limits::DEFAULT) {
            panic!("{e}");
        }
    }
    let whole = t.elapsed().as_secs_f64();
    let stored = store_all(&observed, hindsight::store::CACHE_BYTES);
    // The floor's sled keeps its default page cache (1 GiB); the daemon's is bounded for the
    // soak's memory target (`daemon.store_cache`). The same writes with the floor's cache show
    // what that bound costs.
    let stored_big = store_all(&observed, 1 << 30);
    let per = |s: f64| s / BACKLOG as f64 * 1e6;
    println!(
        "  the source's steps without HTTP, per incident: page split into incident texts {:.1} µs, each incident's own fields read {:.1} µs, stored (the snapshot compressed, the resolution referring to it, one flush) {:.1} µs ({:.1} µs with the floor's sled cache instead of the daemon's {} MiB); the review stage's reading of the whole incident, later and for resolutions only: {:.1} µs",
        per(split),
        per(header),
        per(stored),
        per(stored_big),
        hindsight::store::CACHE_BYTES >> 20,
        per(whole)
    );
}

/// Seconds to store `observed` in a fresh store with a page cache of `cache` bytes, with one
/// flush at the end.
fn store_all(observed: &[Vec<hindsight::store::Observed>], cache: u64) -> f64 {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let store = match Store::open_with_cache(dir.path(), cache) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let now = "2026-11-24T12:00:00Z".parse().unwrap_or_default();
    let t = Instant::now();
    for page in observed {
        if let Err(e) = store.ingest("bench", page, None, None, now) {
            panic!("{e}");
        }
    }
    if let Err(e) = store.flush() {
        panic!("{e}");
    }
    t.elapsed().as_secs_f64()
}

/// An empty store in a directory of its own, removed when the directory is dropped.
fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    match Store::open(dir.path()) {
        Ok(s) => (dir, s),
        Err(e) => panic!("{e}"),
    }
}

/// A page's incidents, each as the raw JSON it is.
fn page(body: &[u8]) -> Vec<Box<serde_json::value::RawValue>> {
    #[derive(serde::Deserialize)]
    struct Page {
        value: Vec<Box<serde_json::value::RawValue>>,
    }
    match serde_json::from_slice::<Page>(body) {
        Ok(p) => p.value,
        Err(e) => panic!("a page: {e}"),
    }
}

/// Seconds per incident to parse the pages and write each incident raw twice, one transaction
/// per page and one flush: what storing a backlog cannot go below.
fn floor(bodies: &[Vec<u8>]) -> f64 {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let db = match sled::open(dir.path()) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let (a, b) = match (db.open_tree("snapshots"), db.open_tree("resolutions")) {
        (Ok(a), Ok(b)) => (a, b),
        _ => panic!("sled trees"),
    };
    let t = Instant::now();
    let mut n = 0;
    for body in bodies {
        let incidents = page(body);
        n += incidents.len();
        let r: sled::transaction::TransactionResult<(), ()> = (&a, &b).transaction(|(a, b)| {
            for raw in &incidents {
                let id = serde_json::from_str::<Id>(raw.get()).map(|i| i.id.into_owned()).unwrap_or_default();
                a.insert(id.as_bytes(), raw.get().as_bytes())?;
                b.insert(id.as_bytes(), raw.get().as_bytes())?;
            }
            Ok(())
        });
        if let Err(e) = r {
            panic!("{e:?}");
        }
    }
    if let Err(e) = db.flush() {
        panic!("{e}");
    }
    t.elapsed().as_secs_f64() / n.max(1) as f64
}
