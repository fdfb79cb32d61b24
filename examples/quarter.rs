//! A quarter of reviews in a store, for looking at the digest (scripts/render-reports):
//!
//!     cargo run --release --example quarter -- STATE_DIR END
//!
//! Each of the thirteen weeks before END (RFC 3339) gets copies of the sample incidents in
//! `examples/incidents/` — a varying number per week, every time in a copy shifted so that it
//! was resolved that week, each copy its own incident ID — ingested and reviewed by the review
//! stage as the daemon would. Then `hindsight digest --state-dir STATE_DIR --until END` shows
//! a digest with a trend. Deterministic: the same END gives the same store.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use hindsight::review::Engine;
use hindsight::store::{Observed, Store};
use serde_json::Value;

/// Every RFC 3339 time in `v` moved by `by`.
fn shift(v: &mut Value, by: Duration) {
    match v {
        Value::String(s) => {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                *s = (t.to_utc() + by).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| shift(x, by)),
        Value::Object(o) => o.values_mut().for_each(|x| shift(x, by)),
        _ => {}
    }
}

fn resolved(v: &Value) -> Option<DateTime<Utc>> {
    ["resolvedDateTime", "lastUpdateDateTime"]
        .iter()
        .find_map(|k| v[*k].as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.to_utc()))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, end] = args.as_slice() else {
        anyhow::bail!("usage: quarter STATE_DIR END (RFC 3339)");
    };
    let end = DateTime::parse_from_rfc3339(end)?.to_utc();
    let mut samples = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir("examples/incidents")?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    for p in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let v: Value = serde_json::from_slice(&std::fs::read(p)?)?;
        if resolved(&v).is_some() {
            samples.push(v);
        }
    }
    anyhow::ensure!(!samples.is_empty(), "no sample incidents in examples/incidents/");
    let catalog = std::sync::Arc::new(hindsight::attack::store::embedded()?);
    let engine = Engine::new(catalog, None, None, hindsight::review::Settings::default());
    let store = Store::open(&Path::new(dir).join("store"))?;
    let mut n = 0;
    let mut reviewed = 0;
    for week in 0..13i64 {
        // A trend with a shape: fewer incidents in the early weeks, a bad stretch in the middle.
        let count = [2, 3, 2, 4, 3, 5, 7, 6, 4, 5, 3, 4, 6][week as usize];
        for k in 0..count {
            let mut v = samples[(week as usize * 3 + k) % samples.len()].clone();
            let target = end - Duration::weeks(13 - week) + Duration::hours(20 + 26 * k as i64);
            let by = target - resolved(&v).unwrap_or(target);
            shift(&mut v, by);
            let id = format!("{}{:02}{:02}", v["id"].as_str().unwrap_or("0"), week, k);
            v["id"] = Value::String(id);
            store.ingest("contoso", &[Observed::from_value(&v)?], None, None, target)?;
            n += 1;
        }
        // Reviewed at the week's end, as the daemon would have: follow-ups get their ages.
        let at = end - Duration::weeks(12 - week);
        let pass = hindsight::stages::review::review_pending(&store, &engine, &[], 10_000, at)?;
        anyhow::ensure!(pass.failed.is_empty(), "reviews failed: {:?}", pass.failed);
        reviewed += pass.reviewed;
    }
    store.flush()?;
    println!("{n} incidents over 13 weeks ingested, {reviewed} reviewed, into {dir}");
    Ok(())
}
