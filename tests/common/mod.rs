//! Helpers shared by the integration tests: run the real `hindsight` binary, find the large
//! data in ../shared.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod config;
pub mod store;
// Not every test file that includes this module builds a configuration.
#[allow(unused_imports)]
pub use config::DaemonConfig;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// `../shared/attack/<name>`. Only the tests marked `#[ignore]` for needing ../shared call this,
/// and `cargo test -- --ignored` asks for them: a missing bundle is then a failure that says
/// what is missing, not a test that passes without having run.
pub fn shared_attack(name: &str) -> PathBuf {
    let p = repo().join("../shared/attack").join(name);
    assert!(
        p.is_file(),
        "{} is not present: the tests on the full ATT&CK bundles need ../shared beside the clone",
        p.display()
    );
    p
}

/// Runs the binary with its own state directory and no inherited Hindsight settings.
pub fn hindsight(state_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(args)
        .env_remove("HINDSIGHT_LOG")
        .env_remove("STATE_DIRECTORY")
        .env("HINDSIGHT_STATE_DIR", state_dir)
        .output()
        .expect("the hindsight binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects success; returns stdout.
pub fn ok(state_dir: &Path, args: &[&str]) -> String {
    let o = hindsight(state_dir, args);
    assert!(o.status.success(), "hindsight {args:?} failed: {}", stderr(&o));
    stdout(&o)
}

/// Runs and expects failure; returns stderr.
pub fn fails(state_dir: &Path, args: &[&str]) -> String {
    let o = hindsight(state_dir, args);
    assert!(!o.status.success(), "hindsight {args:?} should have failed; printed {}", stdout(&o));
    stderr(&o)
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Ingests the sample incidents (examples/incidents) into `store` through the directory source
/// named "examples"; returns the number of new resolutions.
pub async fn ingest_examples(store: &hindsight::store::Store, clock: &dyn hindsight::clock::Clock) -> usize {
    use hindsight::source::Source;
    use hindsight::source::directory::{DirectoryConfig, DirectorySource};
    let mut source = Source::Directory(DirectorySource::new(DirectoryConfig {
        name: "examples".into(),
        path: repo().join("examples/incidents"),
        max_file_bytes: 1 << 20,
    }));
    source.poll(store, clock).await.unwrap().resolutions
}

/// A secret as it could leak into a log line: as is, base64-encoded, URL-encoded, and for a
/// Standard Webhooks key (`whsec_…`) its key part alone.
pub fn secret_forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut v =
        vec![secret.to_owned(), b64.encode(secret), url::form_urlencoded::byte_serialize(secret.as_bytes()).collect()];
    if let Some(k) = secret.strip_prefix("whsec_") {
        v.push(k.to_owned());
    }
    v
}

/// Opens a store's sled directly, once the last `Store` handle's flusher let go of its lock
/// (a moment after the handle is dropped).
pub fn raw_sled(path: &std::path::Path) -> sled::Db {
    (0..100)
        .find_map(|_| {
            sled::open(path).ok().or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(100));
                None
            })
        })
        .expect("the store's lock is released")
}
