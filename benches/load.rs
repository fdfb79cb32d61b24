//! The real `hindsight run` binary (built with the bench profile) end to end against the Graph
//! fake and a webhook receiver on 127.0.0.1, measured from the outside:
//!
//!     cargo bench --bench load -- backlog 10000   # a backlog of resolved incidents: time,
//!                                                 # incidents/s, peak and idle RSS
//!     cargo bench --bench load -- idle            # RSS of an idle daemon with the catalog loaded
//!     cargo bench --bench load -- soak 3600       # seconds of steady traffic with faults: RSS
//!                                                 # sampled every 30 s
//!     cargo bench --bench load -- tenants 1000    # an MSSP: N Graph sources (one tenant each,
//!                                                 # 60 s poll) on one fake: idle RSS, RSS after
//!                                                 # each tenant reviewed an incident, CPU
//!
//! HINDSIGHT_BACKLOG_SAMPLES=1 makes the backlog's (and the soak's) incidents of the sample
//! incidents in turn instead of generated 1–3 alert ones. HINDSIGHT_SOAK_EVERY_MS sets the
//! soak's pace; HINDSIGHT_SOAK_KEEP how long the soak's daemon keeps reviews
//! (`retention.reviews`, 15m by default, "forever" for none; delivered notifications are kept
//! a third of it; the soak ends with the store's size per review, once caught up and stopped);
//! HINDSIGHT_RIG_WRAPPER (e.g. "heaptrack -o /tmp/ht") runs the daemon under a profiler;
//! HINDSIGHT_BACKLOG_KEEP=DIR keeps a copy of the backlog's stopped store there, to look into
//! with sled itself.
//!
//! RSS is read from /proc/PID/status (VmRSS now, VmHWM the peak).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/disk.rs"]
mod disk;
use disk::dir_size;
#[path = "../tests/fakes/mod.rs"]
mod fakes;
#[path = "../tests/rig/mod.rs"]
mod rig;

use std::time::{Duration, Instant};

use fakes::graph::{FakeGraph, Fault};
use fakes::receiver::Answer;
use rig::{Daemon, Rig, creds, hook_ids, resolved_ago};

const QUIET: [(&str, &str); 1] = [("HINDSIGHT_LOG", "hindsight=info")];

#[tokio::main]
async fn main() {
    hindsight::install_crypto_provider();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let number = |default: u64| args.get(1).and_then(|v| v.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("backlog") | None => backlog(number(10_000) as usize).await,
        Some("idle") => idle().await,
        Some("soak") => soak(Duration::from_secs(number(3600))).await,
        Some("tenants") => tenants(number(1000) as usize).await,
        Some(other) => panic!("unknown mode {other:?}: backlog [N] | idle | soak [SECONDS] | tenants [N]"),
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn wait_ready(rig: &Rig, daemon: &Daemon) {
    rig::ready(rig.http, daemon).await;
}

/// The generated incidents have 1–3 alerts without evidence; HINDSIGHT_BACKLOG_SAMPLES=1
/// takes the ten sample incidents in turn instead (2–12 alerts, 5.4 on average, with their
/// evidence): the size of a typical incident's records. Empty without it.
fn sample_names() -> Vec<String> {
    if std::env::var_os("HINDSIGHT_BACKLOG_SAMPLES").is_none() {
        return Vec::new();
    }
    let dir = common::repo().join("examples/incidents");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// N resolved incidents already in Defender at the first start (backfill), each reviewed and
/// sent to one webhook.
async fn backlog(total: usize) {
    let graph = FakeGraph::start(creds()).await;
    let samples = sample_names();
    for n in 0..total {
        let id = format!("8{n:06}");
        graph.upsert(if !samples.is_empty() {
            rig::recent_sample(&samples[n % samples.len()], &id)
        } else {
            resolved_ago(&id, (n % 1400) as i64, 1 + n % 3)
        });
    }
    let (hook, url) = fakes::receiver::start().await;
    let rig = Rig::with(rig::config(&graph, &url, None).set_in("contoso", "backfill", "1d"));
    let started = Instant::now();
    let mut daemon = rig.start(&QUIET);
    let mut peak = 0;
    let mut reviewed_at = None;
    let mut marks = Vec::new();
    loop {
        let received = hook_ids(&hook).len();
        if let Some((_, hwm)) = daemon.rss_kib() {
            peak = peak.max(hwm);
        }
        if reviewed_at.is_none() && marks.len() < 10 && received >= (marks.len() + 1) * total / 10 {
            marks.push((received, started.elapsed()));
        }
        if received == total {
            reviewed_at = Some(started.elapsed());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3600), "not done within an hour: {received} of {total}");
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("the daemon exited ({status}); its log:\n{}", daemon.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = reviewed_at.unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (idle_after, hwm) = daemon.rss_kib().unwrap_or_default();
    peak = peak.max(hwm);
    daemon.signal("-TERM");
    let _ = daemon.wait(Duration::from_secs(30)).await;
    let store_bytes = dir_size(&rig.state().join("store"));
    println!("backlog of {total} resolved incidents → {total} webhooks received: {took:.1?}");
    println!("  {:.0} incidents/s end to end (fetch, store, review, deliver)", total as f64 / took.as_secs_f64());
    for (n, at) in marks {
        println!("  {n:>6} delivered at {at:>8.1?}");
    }
    println!("  peak RSS {:.1} MiB; RSS 15 s after the backlog {:.1} MiB", mib(peak), mib(idle_after));
    println!(
        "  store on disk: {:.0} MiB ({:.1} KiB per review)",
        store_bytes as f64 / 1048576.0,
        store_bytes as f64 / 1024.0 / total as f64
    );
    print_tree_sizes(&rig.state().join("store"), total);
    if let Some(to) = std::env::var_os("HINDSIGHT_BACKLOG_KEEP") {
        let copied = std::process::Command::new("cp").arg("-a").arg(rig.state().join("store")).arg(&to).status();
        println!("  store copied to {}: {copied:?}", to.to_string_lossy());
    }
}

/// What the store holds per tree (keys and values as stored), per reviewed incident.
fn print_tree_sizes(path: &std::path::Path, per: usize) {
    let store = hindsight::store::Store::open(path).expect("the stopped daemon's store opens");
    let mut sizes = store.tree_sizes().expect("the store reads");
    sizes.sort_by_key(|t| std::cmp::Reverse(t.key_bytes + t.value_bytes));
    let total: u64 = sizes.iter().map(|t| t.key_bytes + t.value_bytes).sum();
    println!("  held in the trees: {:.1} KiB per review, before sled's overhead", total as f64 / 1024.0 / per as f64);
    for t in sizes.iter().filter(|t| t.records > 0) {
        println!(
            "    {:<12} {:>7} records {:>9.1} KiB keys {:>9.1} KiB values  {:>6.2} KiB per review",
            t.name,
            t.records,
            t.key_bytes as f64 / 1024.0,
            t.value_bytes as f64 / 1024.0,
            (t.key_bytes + t.value_bytes) as f64 / 1024.0 / per as f64
        );
    }
}

/// A daemon with nothing to do: the catalog loaded, the store open, polling an empty tenant.
async fn idle() {
    let graph = FakeGraph::start(creds()).await;
    let (_hook, url) = fakes::receiver::start().await;
    let rig = Rig::new(&graph, &url, None);
    let daemon = rig.start(&QUIET);
    wait_ready(&rig, &daemon).await;
    for s in [5u64, 30, 60] {
        let at = Instant::now();
        while at.elapsed() < Duration::from_secs(if s == 5 { 5 } else { s / 2 }) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (rss, hwm) = daemon.rss_kib().unwrap_or_default();
        println!(
            "idle daemon (embedded catalog, empty tenant, 2 s polls): RSS {:.1} MiB, peak {:.1} MiB",
            mib(rss),
            mib(hwm)
        );
    }
}

/// Steady traffic for `length`: a resolved incident every 2 s, and every 5 minutes a round of
/// faults (Graph throttling, 503s, an expired token, a cut page; the receiver failing with 500
/// and 429). RSS every 30 s; memory should be flat once the caches are warm.
async fn soak(length: Duration) {
    let graph = FakeGraph::start(creds()).await;
    let (hook, url) = fakes::receiver::start().await;
    let rig = Rig::new(&graph, &url, None);
    // Retention scaled down to the soak's length, so that the store reaches the size it keeps
    // within the run and what memory does after that shows.
    let keep = std::env::var("HINDSIGHT_SOAK_KEEP").unwrap_or_else(|_| "15m".into());
    let notifications = match humantime::parse_duration(&keep) {
        Ok(d) => humantime::format_duration(Duration::from_secs((d.as_secs() / 3).max(1))).to_string(),
        Err(_) => keep.clone(),
    };
    let env = [
        QUIET[0],
        ("HINDSIGHT__RETENTION__REVIEWS", keep.as_str()),
        ("HINDSIGHT__RETENTION__NOTIFICATIONS", notifications.as_str()),
        ("HINDSIGHT__RETENTION__INTERVAL", "1m"),
        ("HINDSIGHT__DELIVERY__RETRY_BUDGET", "2m"),
        ("HINDSIGHT__DIGEST__ENABLED", "false"),
    ];
    println!("soak: retention.reviews = {keep}, retention.notifications = {notifications}");
    let mut daemon = rig.start(&env);
    wait_ready(&rig, &daemon).await;
    // HINDSIGHT_SOAK_EVERY_MS: the pace of new incidents (2 s by default), faster to look for
    // growth per incident in less time.
    let every = Duration::from_millis(
        std::env::var("HINDSIGHT_SOAK_EVERY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
    );
    let started = Instant::now();
    let mut n = 0usize;
    let mut samples: Vec<(u64, u64, usize)> = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut next_faults = Duration::from_secs(60);
    let kinds = sample_names();
    while started.elapsed() < length {
        let id = format!("6{n:06}");
        graph.upsert(if kinds.is_empty() {
            resolved_ago(&id, 0, 1 + n % 3)
        } else {
            rig::recent_sample(&kinds[n % kinds.len()], &id)
        });
        n += 1;
        let at = started.elapsed();
        if at >= next_faults {
            for f in [
                Fault::TooManyRequests { retry_after: Some("1".into()) },
                Fault::Unavailable { retry_after: None },
                Fault::Status(502),
                Fault::ExpiredToken,
                Fault::TruncatedBody,
                Fault::Malformed,
            ] {
                graph.push_fault(f);
            }
            let mut h = hook.lock().unwrap();
            h.answers.extend([
                Answer::Status(500),
                Answer::Status(500),
                Answer::RetryAfter(429, "1"),
                Answer::Status(503),
            ]);
            // The receiver keeps every body; a soak only needs the headers' count.
            h.received.clear();
            next_faults += Duration::from_secs(300);
        }
        if at >= next_sample {
            let (rss, hwm) = daemon.rss_kib().expect("the daemon is running");
            samples.push((rss, hwm, n));
            println!(
                "{:>6.0} s  {:>5} incidents  RSS {:>6.1} MiB  peak {:>6.1} MiB  store {:>5.0} MiB",
                at.as_secs_f64(),
                n,
                mib(rss),
                mib(hwm),
                dir_size(&rig.state().join("store")) as f64 / 1048576.0
            );
            next_sample += Duration::from_secs(30);
        }
        tokio::time::sleep(every).await;
    }
    // What the store takes per reviewed incident, the figure the backlog prints, for incidents
    // that arrived over time: 30 s to catch up, then stopped.
    tokio::time::sleep(Duration::from_secs(30)).await;
    daemon.signal("-TERM");
    let _ = daemon.wait(Duration::from_secs(30)).await;
    let store = rig.state().join("store");
    let bytes = dir_size(&store);
    let reviewed = hindsight::store::Store::open(&store).expect("the stopped daemon's store opens").review_count();
    println!(
        "  {reviewed} of {n} incidents reviewed; store on disk after the stop: {:.0} MiB ({:.1} KiB per review)",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1024.0 / reviewed.max(1) as f64
    );
    print_tree_sizes(&store, reviewed.max(1));
    let tenth = (samples.len() / 6).max(1);
    let early = samples.iter().skip(tenth).take(tenth).map(|s| s.0).max().unwrap_or_default();
    let late = samples.iter().rev().take(tenth).map(|s| s.0).max().unwrap_or_default();
    println!(
        "soak {length:?}: {n} incidents; RSS {:.1} MiB early (max of samples {}..{}), {:.1} MiB at the end (max of the last {}); store {:.0} MiB",
        mib(early),
        tenth,
        2 * tenth,
        mib(late),
        tenth,
        bytes as f64 / 1048576.0
    );
    drop(daemon);
}

/// CPU time (user + system) the process has used, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the state letter (3).
    let field = |i: usize| rest.split_whitespace().nth(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// An MSSP's daemon: `n` Graph sources, each its own tenant of one multi-tenant app (its own
/// token), polled every 60 s, on one fake Graph; one webhook for all.
async fn tenants(n: usize) {
    let graph = FakeGraph::start(fakes::graph::Credentials { tenant: "*".into(), ..creds() }).await;
    let (hook, url) = fakes::receiver::start().await;
    let mut config = common::DaemonConfig::new().listen(&format!("127.0.0.1:{}", rig::free_port()));
    for i in 0..n {
        config = config
            .graph_source(
                &format!("tenant-{i:04}"),
                &format!("tenant-{i:04}.onmicrosoft.com"),
                "app-1",
                &graph.graph_url(),
                &graph.login_url(),
            )
            .set("client_secret_file", "graph-secret")
            .set("poll_interval", "60s")
            .set("request_timeout", "30s");
    }
    let config = config.webhook("soc-hook", &url).set("signing_secret", rig::SIGNING).set("timeout", "10s");
    let rig = Rig::with(config);
    let started = Instant::now();
    let daemon = rig.start(&QUIET);
    // Ready once every source has polled: a thousand first sign-ins take longer than the
    // rig's 20 s.
    while rig::get(rig.http, "/readyz").await.0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(600), "not ready in 10 min; log:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{n} Graph sources: ready (every source polled once) after {:.1?}", started.elapsed());
    // Two poll rounds after start-up, then a minute of steady polling measured.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (cpu0, at0) = (cpu_time(daemon.pid()), Instant::now());
    tokio::time::sleep(Duration::from_secs(60)).await;
    let cpu = cpu_time(daemon.pid()) - cpu0;
    let share = cpu.as_secs_f64() / at0.elapsed().as_secs_f64() * 100.0;
    let (idle, hwm) = daemon.rss_kib().unwrap_or_default();
    println!(
        "  idle: RSS {:.1} MiB (peak so far {:.1} MiB); steady polling {share:.2} % of a core ({cpu:.2?} CPU in {:.0?})",
        mib(idle),
        mib(hwm),
        at0.elapsed()
    );
    println!("  {} token requests, {} incident requests so far", graph.token_requests(), graph.incident_requests());
    let warnings = daemon.log().lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).count();
    println!("  {warnings} warning or error lines in the log so far");
    // One resolved incident, seen by every tenant: each reviews and sends it.
    graph.upsert(rig::resolved("9100"));
    let at = Instant::now();
    while hook_ids(&hook).len() < n {
        assert!(
            at.elapsed() < Duration::from_secs(300),
            "{} of {n} reviews delivered in 5 min; the log ends:\n{}",
            hook_ids(&hook).len(),
            daemon.log().lines().rev().take(40).collect::<Vec<_>>().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered = at.elapsed();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (after, hwm) = daemon.rss_kib().unwrap_or_default();
    println!(
        "  every tenant reviewed one incident within {delivered:.1?}: RSS {:.1} MiB 15 s later, peak {:.1} MiB",
        mib(after),
        mib(hwm)
    );
    let mut daemon = daemon;
    daemon.signal("-TERM");
    let _ = daemon.wait(Duration::from_secs(30)).await;
}
