//! The store on a disk that fills up, and on one that turns read-only: the real binary stops
//! with a clear error and a non-zero exit, and once there is room (or the disk is writable
//! again) it carries on from where it was, with no review lost or made twice.
//!
//! The disk is a small tmpfs mounted for the test, so the test needs to be allowed to mount
//! (root, or CAP_SYS_ADMIN): the tests are ignored by a plain `cargo test` (listed as ignored,
//! not passed) and run with `cargo test --test disk -- --ignored`, as `.ci/run` does as root.
//! Asked for and unable to mount, they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fakes;
mod rig;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::DaemonConfig;

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("`mount` runs");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs at {} (this test needs root or CAP_SYS_ADMIN): {}",
            at.display(),
            common::stderr(&out)
        );
        Mount(at.to_owned())
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,{options}")]).arg(&self.0).output().unwrap();
        assert!(out.status.success(), "remount {options}: {}", common::stderr(&out));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    /// `n` resolved incidents as files for the directory source; reviews written as .eml and
    /// .json files to an outbox folder outside the small disk.
    fn new(n: usize, daemon: impl FnOnce(DaemonConfig) -> DaemonConfig) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let incoming = dir.path().join("incoming");
        std::fs::create_dir(&incoming).unwrap();
        for i in 0..n {
            let incident = rig::resolved_ago(&format!("d{i:04}"), i as i64, 3);
            std::fs::write(incoming.join(format!("d{i:04}.json")), incident.to_string()).unwrap();
        }
        let config = daemon(DaemonConfig::new().listen(""))
            .directory_source("drop", &incoming)
            .set("poll_interval", "1s")
            .folder("out", &dir.path().join("outbox"))
            .set("write", ["json"])
            .set("print", false)
            .write_in(dir.path());
        Setup { dir, config }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs the binary to its end; (exit status, stderr). Stderr goes to a file: a pipe read
    /// only at the end would fill and block the daemon's logging.
    fn run(&self, args: &[&str], limit: Duration) -> (std::process::ExitStatus, String) {
        let log = self.dir.path().join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hindsight"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("HINDSIGHT_STATE_DIR", self.state())
            .env("HINDSIGHT_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                panic!(
                    "`hindsight {args:?}` still running after {limit:?}; stderr:\n{}",
                    last_lines(&std::fs::read_to_string(&log).unwrap_or_default(), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (status, std::fs::read_to_string(&log).unwrap_or_default())
    }

    fn outbox_files(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("outbox")).map(|d| d.count()).unwrap_or(0)
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// sled 0.34 does not fail a write that meets a full disk: its writers block for good (seen
// 2026-12-02 with no reserve: no error, no exit within 300 s). The store's free-space reserve
// stops the daemon before that; here 4 MiB of an 8 MiB disk, and small review batches so that
// one batch fits in what is left.
#[test]
#[ignore = "needs root (or CAP_SYS_ADMIN) to mount a tmpfs; .ci/run runs it as root"]
fn a_full_disk_stops_the_daemon_with_a_clear_error_and_loses_nothing() {
    // Enough that the store outgrows the 4 MiB left above the reserve: since reviews and
    // snapshots are compressed (about 26 KiB on disk each), 150 fitted and the daemon never
    // stopped; since the reviews are in their own log (about 7 KiB each), 500 did.
    let total = 2000;
    let setup = Setup::new(total, |c| c.daemon("store_reserve", "4 MiB").daemon("review_batch", 5));
    let disk = Mount::tmpfs(&setup.state(), "8m");
    let (status, stderr) = setup.run(&["run"], Duration::from_secs(300));
    eprintln!("on a full disk: exit {:?}; last lines:\n{}", status.code(), last_lines(&stderr, 4));
    assert!(!status.success(), "the daemon must not carry on without a store: {stderr}");
    assert!(stderr.contains("kept in reserve (daemon.store_reserve)"), "{stderr}");
    assert!(stderr.contains(&setup.state().join("store").display().to_string()), "the error names the store: {stderr}");
    let delivered_before = setup.outbox_files();
    assert!(delivered_before < total, "the disk should have filled before the end ({delivered_before} delivered)");

    // Room again: the same store opens, the rest is reviewed and delivered, nothing twice.
    disk.remount("size=256m");
    let (status, stderr) = setup.run(&["run", "--once"], Duration::from_secs(300));
    assert!(status.success(), "{stderr}");
    assert_eq!(setup.outbox_files(), total, "one notification file per incident");
    let store = hindsight::store::Store::open(&setup.state().join("store")).unwrap();
    assert_eq!(store.review_count(), total);
    assert_eq!(store.resolutions().count(), total);
    assert_eq!(store.pending_count(), 0);
    eprintln!(
        "after the disk was enlarged: {total} reviews, {total} notifications ({delivered_before} before the disk filled)"
    );
}

#[test]
#[ignore = "needs root (or CAP_SYS_ADMIN) to mount a tmpfs; .ci/run runs it as root"]
fn a_read_only_store_stops_the_daemon_with_a_clear_error() {
    let total = 20;
    let setup = Setup::new(total, |c| c.daemon("store_reserve", 0));
    let disk = Mount::tmpfs(&setup.state(), "64m");
    // A first run makes the store; then the disk turns read-only (as a failing disk is
    // remounted by the kernel) and more incidents arrive.
    let (status, stderr) = setup.run(&["run", "--once"], Duration::from_secs(120));
    assert!(status.success(), "{stderr}");
    for i in 0..5 {
        let incident = rig::resolved_ago(&format!("r{i}"), 0, 1);
        std::fs::write(setup.dir.path().join(format!("incoming/r{i}.json")), incident.to_string()).unwrap();
    }
    disk.remount("ro");
    let (status, stderr) = setup.run(&["run"], Duration::from_secs(60));
    eprintln!("on a read-only disk: exit {:?}; last lines:\n{}", status.code(), last_lines(&stderr, 3));
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(stderr.contains(&setup.state().join("store").display().to_string()), "the error names the store: {stderr}");

    disk.remount("rw");
    let (status, stderr) = setup.run(&["run", "--once"], Duration::from_secs(120));
    assert!(status.success(), "{stderr}");
    let store = hindsight::store::Store::open(&setup.state().join("store")).unwrap();
    assert_eq!(store.review_count(), total + 5);
    assert_eq!(setup.outbox_files(), total + 5);
}
