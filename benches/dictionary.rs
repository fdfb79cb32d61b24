//! The zstd dictionary the store compresses its large records with (`src/store/codec.rs`): what
//! it saves, and how it is made.
//!
//!     cargo bench --bench dictionary                                  # bytes with and without it
//!     cargo bench --bench dictionary -- train src/store/zstd-1.dict   # train one
//!
//! Training samples are generated, never taken from a real tenant: incidents of 1–15 alerts
//! drawn from the techniques ATT&CK's groups use (`support/incidents.rs`, seed 1), each as the
//! store keeps its snapshot, and its review as the engine makes it. The measurement uses other
//! generated incidents (seed 2) and the reviews of `examples/incidents`, which were not trained
//! on and do not look like the generated ones (evidence, devices, users, real titles). Changing
//! the embedded dictionary needs a new file beside the old one (`codec.rs` says why).

use hindsight::model::Incident;
use hindsight::review::{Engine, History, Settings, Subject};
use rand::{Rng, SeedableRng};

#[path = "support/incidents.rs"]
mod support;

/// The dictionary's size: 64 KB kept 3 % more than 110 KB (zstd's default) on the reviews.
const SIZE: usize = 64 * 1024;

/// A snapshot as the store keeps it (`IncidentRecord`: the raw JSON and the incident's own
/// fields, without alerts). The dictionary was trained on schema 5's records, which held the
/// whole normalized incident; it is not trained again, since stored frames name it.
fn snapshot(source: &str, raw: &serde_json::Value, incident: &Incident) -> Vec<u8> {
    let header =
        Incident { alerts: vec![], alerts_omitted: 0, evidence_omitted: 0, warnings: vec![], ..incident.clone() };
    let record = serde_json::json!({
        "source": source, "last_update": incident.last_update, "status": "resolved", "resolutions": 1,
        "received_at": incident.last_update, "raw": raw, "incident": header,
    });
    serde_json::to_vec(&record).unwrap_or_default()
}

/// `n` generated incidents' snapshots and reviews.
fn generated(engine: &Engine, pool: &[String], seed: u64, n: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-02T08:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
    let (mut snapshots, mut reviews) = (Vec::new(), Vec::new());
    for id in 0..n {
        let alerts = rng.random_range(1..=15);
        let raw = support::raw(&mut rng, pool, id, alerts, base);
        let Ok(incident) = Incident::from_graph(&raw) else { continue };
        let source = format!("tenant-{}", id % 10);
        snapshots.push(snapshot(&source, &raw, &incident));
        let subject = Subject { incident: &incident, source: &source, revision: 1, transitions: &[] };
        reviews.push(serde_json::to_vec(&engine.review(&subject, &History::default())).unwrap_or_default());
    }
    (snapshots, reviews)
}

/// The sample incidents' snapshots and reviews.
fn examples(engine: &Engine) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/incidents");
    let mut files: Vec<_> = std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    files.sort();
    let (mut snapshots, mut reviews) = (Vec::new(), Vec::new());
    for path in files {
        let Ok(text) = std::fs::read(&path) else { continue };
        let Ok(raw) = serde_json::from_slice::<serde_json::Value>(&text) else { continue };
        let Ok(incident) = Incident::from_graph(&raw) else { continue };
        snapshots.push(snapshot("examples", &raw, &incident));
        let subject = Subject { incident: &incident, source: "examples", revision: 1, transitions: &[] };
        reviews.push(serde_json::to_vec(&engine.review(&subject, &History::default())).unwrap_or_default());
    }
    (snapshots, reviews)
}

/// Total bytes of `records` compressed one frame each, at level 3, with `dictionary` (or none).
fn compressed(records: &[Vec<u8>], dictionary: &[u8]) -> usize {
    let mut c = match zstd::bulk::Compressor::with_dictionary(3, dictionary) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    records.iter().map(|r| c.compress(r).map_or(r.len(), |z| z.len())).sum()
}

fn report(what: &str, records: &[Vec<u8>], dictionary: &[u8]) {
    let n = records.len().max(1);
    let plain: usize = records.iter().map(Vec::len).sum();
    let without = compressed(records, &[]);
    let with = compressed(records, dictionary);
    println!(
        "{what}: {} records, {} bytes of JSON each on average; zstd -3 alone {} bytes, with the dictionary {} ({:.0} % less)",
        records.len(),
        plain / n,
        without / n,
        with / n,
        100.0 * (1.0 - with as f64 / without.max(1) as f64)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let catalog = match hindsight::attack::store::embedded() {
        Ok(c) => std::sync::Arc::new(c),
        Err(e) => panic!("{e}"),
    };
    let pool = support::pool(&catalog);
    let engine = Engine::new(catalog, None, None, Settings::default());
    if args.first().map(String::as_str) == Some("train") {
        let Some(out) = args.get(1) else { panic!("train needs the file to write") };
        let (snapshots, reviews) = generated(&engine, &pool, 1, 2000);
        let samples: Vec<Vec<u8>> = snapshots.into_iter().chain(reviews).collect();
        let dictionary = match zstd::dict::from_samples(&samples, SIZE) {
            Ok(d) => d,
            Err(e) => panic!("training: {e}"),
        };
        if let Err(e) = std::fs::write(out, &dictionary) {
            panic!("{out}: {e}");
        }
        println!("{out}: {} bytes from {} samples", dictionary.len(), samples.len());
        return;
    }
    let dictionary = include_bytes!("../src/store/zstd-1.dict");
    let (snapshots, reviews) = generated(&engine, &pool, 2, 500);
    report("generated reviews", &reviews, dictionary);
    report("generated snapshots", &snapshots, dictionary);
    let (snapshots, reviews) = examples(&engine);
    report("reviews of examples/incidents", &reviews, dictionary);
    report("snapshots of examples/incidents", &snapshots, dictionary);
}
