//! Review throughput: typical incidents (5–30 alerts) reviewed with attribution over every
//! group and campaign, on one thread; and one 1,000-alert incident.
//!
//!     cargo bench --bench review
//!
//! Incidents are generated from the embedded catalog with a fixed seed: each alert carries one
//! to three technique IDs drawn from the techniques groups actually use (as Defender alerts do),
//! a few of them revoked or unknown IDs, and a category.

use std::hint::black_box;
use std::time::Instant;

use hindsight::attack::store;
use hindsight::model::Incident;
use hindsight::review::{Engine, History, Settings, Subject};
use rand::{Rng, SeedableRng};

#[path = "support/incidents.rs"]
mod support;
use support::incident;

/// The daemon's allocator (src/main.rs), so that the figure is the daemon's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // As the daemon does (src/main.rs).
    hindsight::memory::configure();
    let catalog = match store::embedded() {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let pool = support::pool(&catalog);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let incidents: Vec<Incident> = (0..2000)
        .map(|i| {
            let n = rng.random_range(5..=30);
            incident(&mut rng, &pool, i, n)
        })
        .collect();
    let t = Instant::now();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    println!("engine set-up (attribution index): {:.1} ms", t.elapsed().as_secs_f64() * 1000.0);
    let history = History::default();

    // Warm-up, then five timed rounds, all reported: the noise on a shared machine is part of
    // the figure.
    for i in incidents.iter().take(200) {
        black_box(engine.review(&Subject { incident: i, source: "bench", revision: 1, transitions: &[] }, &history));
    }
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for i in &incidents {
            black_box(
                engine.review(&Subject { incident: i, source: "bench", revision: 1, transitions: &[] }, &history),
            );
        }
        rounds.push(t.elapsed().as_secs_f64());
    }
    rounds.sort_by(f64::total_cmp);
    let alerts: usize = incidents.iter().map(|i| i.alerts.len()).sum();
    let rate = |secs: f64| incidents.len() as f64 / secs;
    println!(
        "typical incidents ({} incidents, {:.1} alerts on average), 5 rounds on one thread: {:.0} / {:.0} / {:.0} reviews/s (slowest / median / fastest round; median {:.1} µs per review)",
        incidents.len(),
        alerts as f64 / incidents.len() as f64,
        rate(rounds[4]),
        rate(rounds[2]),
        rate(rounds[0]),
        rounds[2] * 1e6 / incidents.len() as f64
    );

    let big = incident(&mut rng, &pool, 999_999, 1000);
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        black_box(engine.review(&Subject { incident: &big, source: "bench", revision: 1, transitions: &[] }, &history));
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("1,000-alert incident: median {:.1} ms, max {:.1} ms (10 runs)", times[5], times[9]);
}
