//! Hostile input to the real daemon binary: what is put in its drop folder and what connects to
//! its HTTP port must not stop it answering /healthz, polling, delivering, or stopping on
//! SIGTERM.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fakes;
mod rig;

use std::path::Path;
use std::time::{Duration, Instant};

use common::DaemonConfig;
use rig::{Daemon, free_port, resolved};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One `GET /healthz` on a fresh connection, answered (200) within a second, or why not.
async fn healthz(port: u16) -> Result<Duration, String> {
    let started = Instant::now();
    let exchange = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| format!("connect: {e}"))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.map_err(|e| format!("read: {e}"))?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        if answer.starts_with("HTTP/1.1 200") { Ok(()) } else { Err(format!("answer: {answer:?}")) }
    };
    match tokio::time::timeout(Duration::from_secs(1), exchange).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no answer within 1 s".into()),
    }
}

/// Waits (up to 20 s) for /healthz to answer at all: the daemon has started.
async fn up(port: u16, daemon: &Daemon) {
    let started = Instant::now();
    while healthz(port).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "/healthz never answered; log:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks /healthz every 100 ms for `span`: each answer within a second. Returns the slowest.
async fn healthz_throughout(port: u16, span: Duration, daemon: &Daemon) -> Duration {
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    while started.elapsed() < span {
        match healthz(port).await {
            Ok(took) => slowest = slowest.max(took),
            Err(e) => panic!("/healthz after {:?}: {e}; log:\n{}", started.elapsed(), daemon.log()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    slowest
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A link to a named pipe in the drop folder once blocked a runtime worker in `open(2)` for good: the
/// daemon then ignored SIGTERM (only SIGKILL stopped it) and, under systemd, was restarted onto
/// the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_a_named_pipe_in_the_drop_folder_blocks_neither_healthz_nor_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let incoming = dir.path().join("incoming");
    std::fs::create_dir(&incoming).unwrap();
    std::fs::create_dir(dir.path().join("credentials")).unwrap();
    // A link to the pipe, as the directory source once followed it into `open(2)` (a bare pipe
    // named *.json is refused too: tests/directory_source.rs).
    mkfifo(&incoming.join("pipe"));
    std::os::unix::fs::symlink("pipe", incoming.join("stuck.json")).unwrap();
    std::fs::write(incoming.join("incident.json"), resolved("4242").to_string()).unwrap();
    let port = free_port();
    let config = drop_folder_config(port, &incoming).write_in(dir.path());
    let mut daemon = Daemon::start(&dir.path().join("state"), &config, dir.path(), &[]);
    up(port, &daemon).await;
    // Several poll passes (1 s apart), each meeting the pipe again.
    let slowest = healthz_throughout(port, Duration::from_secs(4), &daemon).await;
    eprintln!("/healthz with a named pipe in the drop folder: slowest answer {slowest:?}");

    daemon.signal("-TERM");
    // The shutdown timeout (3 s) bounds the stop, plus a margin for a loaded machine.
    let (status, took) = daemon.wait(Duration::from_secs(6)).await;
    eprintln!("SIGTERM → exit in {took:?}");
    assert!(status.success(), "exit {status:?}; log:\n{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("stuck.json") && log.contains("named pipe"), "the pipe is reported by name:\n{log}");
    assert_eq!(log.matches("not a regular file").count(), 1, "reported once, not each pass:\n{log}");
    // The incident beside the pipe was read and reviewed.
    let store = hindsight::store::Store::open(&dir.path().join("state/store")).unwrap();
    assert_eq!(store.review_count(), 1, "log:\n{log}");
}

/// A directory source polling `incoming` every second, the HTTP port, a 3 s shutdown bound.
fn drop_folder_config(port: u16, incoming: &Path) -> DaemonConfig {
    DaemonConfig::new()
        .listen(&format!("127.0.0.1:{port}"))
        .daemon("shutdown_timeout", "3s")
        .directory_source("drop", incoming)
        .set("poll_interval", "1s")
}

/// The daemon with a directory source and the HTTP port, under an open-file limit of `nofile`
/// (soft and hard, as a shell's `ulimit -n` sets both), with the `http` keys `http` adds.
fn start_limited(dir: &Path, port: u16, nofile: u32, http: impl FnOnce(DaemonConfig) -> DaemonConfig) -> Daemon {
    let incoming = dir.join("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::create_dir_all(dir.join("credentials")).unwrap();
    let config = http(drop_folder_config(port, &incoming)).write_in(dir);
    let log = dir.join("daemon.log");
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_hindsight"))
        .args(["run", "--config"])
        .arg(&config)
        .env("HINDSIGHT_STATE_DIR", dir.join("state"))
        .env("HINDSIGHT_LOG", "hindsight=debug")
        .env("CREDENTIALS_DIRECTORY", dir.join("credentials"))
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Daemon { child, log }
}

/// Opens `n` connections (a bounded loop, 5 s a connect) that send nothing, or for every other
/// one half a request header, and keeps them open.
///
/// The listen backlog is 128 (std's and mio's): a connect made while the daemon is behind on
/// accepting (a loaded machine) is dropped by the kernel and retried after 1 s and 3 s, hence
/// 5 s. What must stay fast is /healthz, checked separately.
async fn idle_connections(port: u16, n: usize, daemon: &Daemon) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(("127.0.0.1", port))).await;
        let mut s = match connect {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => panic!("connection {i} of {n}: {e}; log:\n{}", daemon.log()),
            Err(_) => panic!("connection {i} of {n}: not accepted within 5 s; log:\n{}", daemon.log()),
        };
        if i % 2 == 1 {
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
        }
        conns.push(s);
    }
    conns
}

/// Whether the server has closed `s` (end of file, or a reset) within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let started = Instant::now();
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            // An answer (408, say) before the close.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Idle connections once held a descriptor each for good: with the usual limit of 1,024 open
/// files, 1,100 of them left /healthz unanswered and every poll failing with "Too many open
/// files". Here 600 against a limit of 512.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_over_the_descriptor_limit_leave_healthz_and_polling_working() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut daemon = start_limited(dir.path(), port, 512, |c| c.section("http", "header_timeout", "2s"));
    up(port, &daemon).await;
    let opened = Instant::now();
    let mut conns = idle_connections(port, 600, &daemon).await;
    let all_open = Instant::now();
    eprintln!("600 idle connections opened in {:?}", opened.elapsed());
    // An incident dropped meanwhile is still polled and reviewed.
    std::fs::write(dir.path().join("incoming/incident.json"), resolved("4343").to_string()).unwrap();
    let slowest = healthz_throughout(port, Duration::from_millis(1500), &daemon).await;
    eprintln!("/healthz with 600 idle connections: slowest answer {slowest:?}");
    // Soon every idle connection is closed: shed for newer ones, or at the header timeout (2 s
    // after the last one opened), plus a margin for a loaded machine.
    let deadline = all_open + Duration::from_secs(2) + Duration::from_secs(3);
    let mut open = 0;
    for s in &mut conns {
        if !closed_within(s, deadline.saturating_duration_since(Instant::now())).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "{open} of 600 idle connections still open; log:\n{}", daemon.log());
    eprintln!("all 600 closed {:?} after the first was opened", opened.elapsed());
    healthz(port).await.unwrap();
    daemon.signal("-TERM");
    let (status, _) = daemon.wait(Duration::from_secs(6)).await;
    assert!(status.success(), "exit {status:?}; log:\n{}", daemon.log());
    let log = daemon.log();
    assert!(!log.contains("Too many open files"), "{log}");
    let store = hindsight::store::Store::open(&dir.path().join("state/store")).unwrap();
    assert_eq!(store.review_count(), 1, "the incident dropped during the flood is reviewed; log:\n{log}");
}

/// A kept-alive connection and one that sends half a header are closed at the header timeout,
/// not before; connections over the cap shed the oldest idle ones at once, and /healthz on a
/// fresh connection is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_at_the_timeout_and_the_cap_sheds_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut daemon = start_limited(dir.path(), port, 1024, |c| {
        c.section("http", "header_timeout", "1s").section("http", "max_connections", 50)
    });
    up(port, &daemon).await;

    let mut kept = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"ok\n") {
        let n = tokio::time::timeout(Duration::from_secs(1), kept.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    let mut slow = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
    let started = Instant::now();
    assert!(!closed_within(&mut kept, Duration::from_millis(500)).await, "kept-alive closed before the timeout");
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await, "kept-alive connection still open after 3.5 s");
    assert!(closed_within(&mut slow, Duration::from_secs(1)).await, "slow header still open");
    eprintln!("idle kept-alive and half-header connections closed after {:?} (timeout 1 s)", started.elapsed());

    // 150 connections against a cap of 50: the 100 oldest are closed as the newer ones come.
    let mut conns = idle_connections(port, 150, &daemon).await;
    let mut shed = 0;
    for s in conns.iter_mut().take(100) {
        if closed_within(s, Duration::from_millis(200)).await {
            shed += 1;
        }
    }
    assert_eq!(shed, 100, "of the 100 oldest; log:\n{}", daemon.log());
    let took = healthz(port).await.unwrap_or_else(|e| panic!("/healthz at the cap: {e}; log:\n{}", daemon.log()));
    eprintln!("/healthz at the cap of 50: {took:?}");
    daemon.signal("-TERM");
    let (status, _) = daemon.wait(Duration::from_secs(6)).await;
    assert!(status.success(), "exit {status:?}; log:\n{}", daemon.log());
}
