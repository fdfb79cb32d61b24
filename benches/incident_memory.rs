//! Memory of one oversized incident through the real `hindsight run` binary (built with the
//! bench profile): a directory source holding one file, the review, the store, a folder
//! destination. Measured from the outside, in /proc/PID/status (VmHWM the peak, VmRSS now).
//!
//!     cargo bench --bench incident_memory                 # both files below
//!     cargo bench --bench incident_memory -- small 150000 # N small alerts (~16 MB for 150,000)
//!     cargo bench --bench incident_memory -- realistic 6500
//!
//! For each file: the daemon's peak RSS until the review's notification is written and RSS 10 s
//! later ("settled"), then the peak of `hindsight run --once` on a fresh store (/usr/bin/time's
//! "%M", when /usr/bin/time is installed). HINDSIGHT_BENCH_ENV="KEY=VALUE ..." adds variables to
//! the daemon's environment (e.g. `HINDSIGHT__REVIEW__MAX_ALERTS=200000`);
//! HINDSIGHT_BENCH_BIN=PATH measures another build of `hindsight` (an older commit's) on the
//! same files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/big_incident.rs"]
mod big_incident;
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/disk.rs"]
mod disk;
use disk::dir_size;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::DaemonConfig;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let number = |default: usize| args.get(1).and_then(|v| v.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        None => {
            measure("small", 150_000);
            measure("realistic", 6_500);
        }
        Some("small") => measure("small", number(150_000)),
        Some("realistic") => measure("realistic", number(6_500)),
        Some(other) => panic!("unknown mode {other:?}: small [ALERTS] | realistic [ALERTS]"),
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// (VmRSS, VmHWM) in KiB.
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field =
        |name: &str| status.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse::<u64>().ok();
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn extra_env() -> Vec<(String, String)> {
    std::env::var("HINDSIGHT_BENCH_ENV")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

fn daemon(dir: &Path, config: &Path, state: &str, once: bool) -> Command {
    let bin = std::env::var("HINDSIGHT_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_hindsight").to_owned());
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--config"])
        .arg(config)
        .env("HINDSIGHT_STATE_DIR", dir.join(state))
        .env("HINDSIGHT_LOG", "hindsight=info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .envs(extra_env())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{state}.log"))).unwrap());
    if once {
        cmd.arg("--once");
    }
    cmd
}

fn measure(kind: &str, alerts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (incoming, out) = (dir.path().join("incoming"), dir.path().join("out"));
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let file = incoming.join(format!("{kind}-{alerts}.json"));
    let size = match kind {
        "small" => big_incident::small(&file, alerts),
        _ => big_incident::realistic(&file, alerts),
    }
    .unwrap();
    let config = DaemonConfig::new()
        .listen("")
        .section("digest", "enabled", false)
        // Both default files are under the default 16 MiB; larger variants (more alerts) get in.
        .directory_source("drop", &incoming)
        .set("max_file_bytes", 64 * 1024 * 1024)
        .set("poll_interval", "1s")
        .folder("out", &out)
        .write_in(dir.path());
    println!("{kind}: one resolved incident of {alerts} alerts, {:.1} MB ({size} bytes)", size as f64 / 1e6);

    let started = Instant::now();
    let mut child = daemon(dir.path(), &config, "state", false).spawn().unwrap();
    let pid = child.id();
    let mut peak = 0;
    let done = loop {
        if let Some((_, hwm)) = rss_kib(pid) {
            peak = peak.max(hwm);
        }
        if std::fs::read_dir(&out).unwrap().next().is_some() {
            break started.elapsed();
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("state.log")).unwrap_or_default();
            panic!("the daemon exited ({status}); its log:\n{log}");
        }
        assert!(started.elapsed() < Duration::from_secs(600), "no notification within 10 minutes");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (at_done, _) = rss_kib(pid).unwrap_or_default();
    std::thread::sleep(Duration::from_secs(10));
    let (settled, hwm) = rss_kib(pid).unwrap_or_default();
    peak = peak.max(hwm);
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = child.wait();
    println!("  daemon: notification written after {done:.1?}; peak RSS {:.1} MiB", mib(peak));
    println!("  daemon: RSS {:.1} MiB when it was written, {:.1} MiB 10 s later", mib(at_done), mib(settled));

    if Path::new("/usr/bin/time").is_file() {
        let inner = daemon(dir.path(), &config, "once", true);
        let mut cmd = Command::new("/usr/bin/time");
        cmd.args(["-f", "%M", "-o"]).arg(dir.path().join("time.txt")).arg(inner.get_program()).args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.stdout(Stdio::null()).stderr(std::fs::File::create(dir.path().join("once.log")).unwrap());
        let at = Instant::now();
        let status = cmd.status().unwrap();
        let kib: u64 = std::fs::read_to_string(dir.path().join("time.txt"))
            .unwrap_or_default()
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_default();
        println!("  run --once ({status}, {:.1?}): peak RSS {:.1} MiB", at.elapsed(), mib(kib));
    }
    let store = dir_size(&dir.path().join("state"));
    println!("  store on disk after the daemon: {:.1} MiB", store as f64 / 1048576.0);
}
