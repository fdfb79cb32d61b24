//! Many sources finishing their passes at once: every pass ends with a flush, and a daemon with
//! 1,000 tenants starts hundreds of them together. sled 0.34's own `flush_async` runs each flush
//! on sled's thread pool, whose flushes then wait for log writes queued on that same pool (the
//! pool never grows past its first threads: its count of idle threads wraps): with enough of them
//! at once nothing completes and every transaction waits behind them (sled issues #1241, #1308).
//! The store's flushes must all complete, whatever their number.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::Duration;

use chrono::Utc;
use hindsight::store::{Cursor, Store};

/// Runs `concurrent` sources' pass ends (a cursor written, then a flush) on a 2-worker runtime,
/// `rounds` times; a watchdog on its own thread notices a runtime that stopped.
fn passes_complete(concurrent: usize, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            for round in 0..rounds {
                let mut tasks = tokio::task::JoinSet::new();
                for i in 0..concurrent {
                    let store = store.clone();
                    tasks.spawn(async move {
                        let cursor = Cursor {
                            floor: Utc::now(),
                            last_update: Some(Utc::now()),
                            passes: round as u64,
                            updated_at: Utc::now(),
                        };
                        store.advance_cursor(&format!("tenant-{i}"), &cursor).await
                    });
                }
                while let Some(r) = tasks.join_next().await {
                    r.unwrap().unwrap();
                }
            }
        });
        done.send(()).unwrap();
    });
    match finished.recv_timeout(Duration::from_secs(120)) {
        Ok(()) => worker.join().unwrap(),
        Err(_) => panic!("{concurrent} concurrent flushes did not complete in 120 s: the store is deadlocked"),
    }
}

#[test]
fn a_thousand_sources_ending_their_passes_together_all_complete() {
    passes_complete(1000, 20);
}
