//! Generated incidents for the benchmarks, from the embedded catalog with a fixed seed: each
//! alert carries one to three technique IDs drawn from the techniques groups actually use (as
//! Defender alerts do), a few of them revoked or unknown IDs, and a category.
#![allow(dead_code)]

use hindsight::attack::Catalog;
use hindsight::model::Incident;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

/// Technique IDs as groups use them (with repeats), so that attribution has real work to do.
pub fn pool(catalog: &Catalog) -> Vec<String> {
    let mut pool: Vec<String> = catalog
        .data()
        .groups
        .iter()
        .flat_map(|g| catalog.group_techniques(&g.id).map(|t| t.id.clone()).collect::<Vec<_>>())
        .collect();
    pool.sort();
    pool
}

/// An incident in Graph's JSON with `alerts` alerts, created at `base` and resolved a day later.
pub fn raw(
    rng: &mut impl Rng,
    pool: &[String],
    id: usize,
    alerts: usize,
    base: chrono::DateTime<chrono::Utc>,
) -> Value {
    let alerts: Vec<Value> = (0..alerts)
        .map(|a| {
            let n = rng.random_range(1..=3);
            let mut ids: Vec<String> = (0..n).filter_map(|_| pool.choose(rng).cloned()).collect();
            if rng.random_bool(0.05) {
                ids.push("T1086".into());
            }
            if rng.random_bool(0.02) {
                ids.push("T1999".into());
            }
            let at = |m: i64| (base + chrono::Duration::minutes(m)).to_rfc3339();
            let start = (a as i64) * 7;
            json!({
                "id": format!("a{id}-{a}"), "title": "Suspicious activity", "category": "Execution",
                "mitreTechniques": ids, "createdDateTime": at(start + rng.random_range(1..90)),
                "firstActivityDateTime": at(start), "lastActivityDateTime": at(start + 3), "evidence": []
            })
        })
        .collect();
    json!({
        "id": id.to_string(), "displayName": "Generated incident", "status": "resolved", "severity": "high",
        "classification": "truePositive", "createdDateTime": base.to_rfc3339(),
        "lastUpdateDateTime": (base + chrono::Duration::days(1)).to_rfc3339(), "alerts": alerts
    })
}

pub fn incident(rng: &mut impl Rng, pool: &[String], id: usize, alerts: usize) -> Incident {
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-02T08:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
    match Incident::from_graph(&raw(rng, pool, id, alerts, base)) {
        Ok(i) => i,
        Err(e) => panic!("generated incident does not parse: {e}"),
    }
}
