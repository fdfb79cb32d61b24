//! Hostile input to the real daemon binary: what is put in its drop folder and what connects to
//! its HTTP port must not stop it answering /healthz, polling, delivering, or stopping on
//! SIGTERM.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod fakes;
mod rig;

use std::path::Path;
use std::time::{Duration, Instant};

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
    let config = dir.path().join("hindsight.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n\n[daemon]\nshutdown_timeout = \"3s\"\n\n\
             [[sources]]\ntype = \"directory\"\nname = \"drop\"\npath = \"{}\"\npoll_interval = \"1s\"\n",
            incoming.display()
        ),
    )
    .unwrap();
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
