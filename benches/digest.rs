//! The digest over 100,000 stored reviews (the target: under one second).
//!
//!     cargo bench --bench digest                 # 100,000 reviews, all in the last 14 days
//!     cargo bench --bench digest -- 100000 365   # 100,000 reviews over a year
//!
//! A sled store is filled the way the daemon fills it — generated incidents (5–15 alerts, ten
//! tenants, 5 % false positives) ingested and reviewed by the review stage, which stores each
//! review with its summary — resolved over the last N days (default 14: the two weeks the
//! digest compares, so every review is read: the worst case). Then the digest of the last 7 days (against the 7 before) is computed five
//! times for all tenants, and once per tenant; medians are printed.

use std::time::Instant;

use hindsight::attack::store as catalog_store;
use hindsight::digest::{Period, Settings};
use hindsight::review::Engine;
use hindsight::stages::digest as job;
use hindsight::store::{Observed, Store};
use rand::{Rng, SeedableRng};

/// The daemon's allocator (src/main.rs): the digest runs in the daemon, and what it costs
/// depends on the allocator (100,000 summaries decoded are some 800,000 small allocations).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/incidents.rs"]
mod support;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // As the daemon does (src/main.rs).
    hindsight::memory::configure();
    let numbers: Vec<i64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = numbers.first().map_or(100_000, |&n| n as usize);
    let days = numbers.get(1).copied().unwrap_or(14).max(2);
    let catalog = match catalog_store::embedded() {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let pool = support::pool(&catalog);
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, hindsight::review::Settings::default());
    // DIGEST_BENCH_STORE=DIR keeps the filled store there and reuses it on the next run
    // (filling 100,000 reviews takes minutes; profiling the digest needs only the reads).
    let kept = std::env::var_os("DIGEST_BENCH_STORE").map(std::path::PathBuf::from);
    let tmp = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let dir = kept.clone().unwrap_or_else(|| tmp.path().to_owned());
    let store = match Store::open(&dir.join("store")) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let end = chrono::DateTime::parse_from_rfc3339("2026-11-30T07:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let t = Instant::now();
    let batch = 1000;
    let filled = store.review_count();
    for start in (filled..n).step_by(batch) {
        let mut by_tenant: Vec<Vec<Observed>> = (0..10).map(|_| Vec::new()).collect();
        for id in start..(start + batch).min(n) {
            // Created so that the resolution (a day later) falls in the last `days` days.
            let created = end - chrono::Duration::minutes(rng.random_range(24 * 60 + 1..(days + 1) * 24 * 60));
            let alerts = rng.random_range(5..=15);
            let mut raw = support::raw(&mut rng, &pool, id, alerts, created);
            if rng.random_bool(0.05) {
                raw["classification"] = "falsePositive".into();
            }
            match Observed::from_value(&raw) {
                Ok(o) => by_tenant[id % 10].push(o),
                Err(e) => panic!("{e}"),
            }
        }
        for (tenant, observed) in by_tenant.iter().enumerate() {
            if let Err(e) = store.ingest(&format!("tenant-{tenant}"), observed, None, None, end) {
                panic!("{e}");
            }
        }
        if let Err(e) = hindsight::stages::review::review_pending(&store, &engine, &[], batch, end) {
            panic!("{e}");
        }
    }
    let fill = t.elapsed().as_secs_f64();
    let size: u64 = walk(&dir);
    if filled >= n {
        println!("store reused: {} reviews, {:.0} MiB on disk", store.review_count(), size as f64 / 1048576.0);
    } else {
        println!(
            "store filled: {} reviews in {fill:.1} s ({:.0} reviews/s ingested and reviewed), {:.0} MiB on disk",
            store.review_count(),
            (store.review_count() - filled) as f64 / fill,
            size as f64 / 1048576.0
        );
    }

    let settings = Settings {
        top: 10,
        attack_domain: "enterprise-attack".into(),
        attack_version: Some("18.1".into()),
        shard: None,
    };
    let period = Period::ending(end, chrono::Duration::days(7));
    let all = vec![Vec::<String>::new()];
    let t = Instant::now();
    let records = match store.summary_records_between(period.previous().start, period.end) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    println!(
        "reading the {} summaries of the two periods from the store: {:.0} ms ({:.0} bytes each)",
        records.len(),
        t.elapsed().as_secs_f64() * 1000.0,
        records.iter().map(|(_, v)| v.len()).sum::<usize>() as f64 / records.len().max(1) as f64
    );
    let t = Instant::now();
    let decoded: Vec<_> = records.iter().filter_map(|(_, v)| hindsight::digest::summary::from_stored(v).ok()).collect();
    println!("decoding them on one thread: {:.0} ms ({} read)", t.elapsed().as_secs_f64() * 1000.0, decoded.len());
    let t = Instant::now();
    let d = hindsight::digest::compute(&decoded, period, &[], &settings, &*catalog);
    println!(
        "computing the digest from them, names from the catalog only (no follow-up texts, no comments read): {:.0} ms ({} incidents)",
        t.elapsed().as_secs_f64() * 1000.0,
        d.incidents.total
    );
    drop(decoded);
    drop(records);
    let mut times = Vec::new();
    let mut incidents = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let d = match job::for_period(&store, &catalog, &all, period, &settings) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        times.push(t.elapsed().as_secs_f64());
        incidents = d[0].incidents.total + d[0].previous_incidents.total;
    }
    println!(
        "digest of all tenants: median {:.0} ms over 5 runs (min {:.0}, max {:.0}); {incidents} incidents in the two periods",
        median(times.clone()) * 1000.0,
        times.iter().cloned().fold(f64::MAX, f64::min) * 1000.0,
        times.iter().cloned().fold(0.0, f64::max) * 1000.0
    );
    let scopes: Vec<Vec<String>> = (0..10).map(|t| vec![format!("tenant-{t}")]).collect();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        if let Err(e) = job::for_period(&store, &catalog, &scopes, period, &settings) {
            panic!("{e}");
        }
        times.push(t.elapsed().as_secs_f64());
    }
    println!(
        "ten digests, one per tenant (one read of the store): median {:.0} ms over 5 runs",
        median(times) * 1000.0
    );
}

fn walk(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => walk(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
