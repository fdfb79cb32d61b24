//! Catalog benchmarks: embedded load, ID resolution, and STIX import of the full enterprise
//! bundle (when ../shared/attack is present). Prints the figures BENCHMARKS.md records.
//!
//!     cargo bench --bench catalog
//!
//! A plain timing loop rather than criterion: the figures to check are orders of magnitude
//! (milliseconds against a 20 ms budget, microseconds per look-up), and this keeps the build
//! light for CI, which compiles benches under `cargo clippy --all-targets`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hindsight::attack::{from_bundle, store};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    let min = samples.iter().min().copied().unwrap_or_default();
    (min, median(samples))
}

fn main() {
    // `cargo bench` passes --bench; anything else we ignore.
    let (min, med) = time(50, || store::embedded().map(|c| c.techniques().len()));
    println!("embedded catalog load: median {:.2} ms, min {:.2} ms (50 runs)", ms(med), ms(min));

    let Ok(catalog) = store::embedded() else {
        eprintln!("the embedded catalog does not load");
        std::process::exit(1);
    };
    // What alerts carry: current IDs, lower case, revoked and unknown ones.
    let queries = ["T1059.001", "t1566.001", "T1086", " T1003.001 ", "T1150", "T9999", "T1078", "T1021.002"];
    let n = 1_000_000;
    let t = Instant::now();
    for i in 0..n {
        black_box(catalog.resolve(black_box(queries[i % queries.len()])));
    }
    let per = t.elapsed() / n as u32;
    println!(
        "resolve: {:.3} µs per look-up ({n} look-ups over {} mixed IDs)",
        per.as_nanos() as f64 / 1000.0,
        queries.len()
    );

    // Canonical IDs that exist, as the review asks after resolving: every query does the work
    // (an earlier version alternated with a lower-case ID the exact index never finds).
    let known = ["T1059.001", "T1566.001", "T1078", "T1021.002", "T1003.001"];
    assert!(known.iter().all(|id| catalog.technique_ix(id).is_some()), "every ID of the query exists");
    let t = Instant::now();
    let mut found = 0usize;
    for i in 0..n {
        if let Some(ix) = catalog.technique_ix(black_box(known[i % known.len()])) {
            found += catalog.groups_using(ix).count();
        }
    }
    black_box(found);
    assert!(found >= n, "each query found its technique's groups");
    println!(
        "technique → groups: {:.3} µs per query ({n} queries over {} existing IDs, {:.1} groups each)",
        (t.elapsed() / n as u32).as_nanos() as f64 / 1000.0,
        known.len(),
        found as f64 / n as f64
    );

    let bundle = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/attack/enterprise-attack-18.1.json");
    if bundle.is_file() {
        let (min, med) = time(7, || from_bundle(&bundle).map(|(c, _)| c.techniques().len()));
        println!(
            "STIX import of enterprise-attack-18.1.json (37 MB): median {:.0} ms, min {:.0} ms (7 runs)",
            ms(med),
            ms(min)
        );
    } else {
        println!("STIX import: skipped ({} is not present)", bundle.display());
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
