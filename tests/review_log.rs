//! The review log beside sled (schema 8): reviews read back from it after a restart, a review
//! whose entry the machine lost with its power is made again rather than lost, and retention's
//! dead segments are freed with the live reviews in them moved first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::store::{dir_bytes, engine, log_files, resolution_keys as keys};

use std::time::Duration;

use chrono::{DateTime, Utc};
use hindsight::clock::{Clock, ManualClock};
use hindsight::notify::Subscription;
use hindsight::outbox::EntryState;
use hindsight::store::{Observed, ResolutionKey, Retention, Store};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Every review of the store as JSON, by key.
fn reviews(store: &Store, keys: &[ResolutionKey]) -> Vec<Option<serde_json::Value>> {
    keys.iter().map(|k| store.review(k).unwrap().map(|r| serde_json::to_value(r).unwrap())).collect()
}

#[tokio::test]
async fn a_review_lost_with_the_power_is_made_again_and_its_notification_still_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let clock = ManualClock::new(t("2026-11-20T12:00:00Z"));
    let subs = vec![Subscription::everything("soc")];
    let (all, before) = {
        let store = Store::open(&path).unwrap();
        common::ingest_examples(&store, &clock).await;
        hindsight::stages::review::review_pending(&store, &engine(), &subs, 100, clock.now()).unwrap();
        let all = keys(&store);
        (all.clone(), reviews(&store, &all))
    };
    assert!(before.iter().all(Option::is_some) && before.len() >= 5);
    // The last review's entry never reached the disk, while sled's transaction did: the file
    // ends where the entry began.
    let segment = std::fs::read_dir(path.join("reviews")).unwrap().map(|e| e.unwrap().path()).max().unwrap();
    let last = {
        let db = raw(&path);
        let tree = db.open_tree("reviews").unwrap();
        let (k, v) = tree
            .iter()
            .map(Result::unwrap)
            .max_by_key(|(_, v)| u64::from_be_bytes(v[5..13].try_into().unwrap()))
            .unwrap();
        let offset = u64::from_be_bytes(v[5..13].try_into().unwrap());
        std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(offset).unwrap();
        ResolutionKey(k.to_vec())
    };
    let store = Store::open(&path).unwrap();
    assert!(store.review(&last).unwrap().is_none(), "the lost review is not read as damage");
    assert!(store.pending().map(Result::unwrap).any(|k| k == last), "its resolution is queued again");
    let unsent = |store: &Store| {
        let entries = store.outbox_entries().unwrap();
        let of_last =
            |e: &&hindsight::outbox::OutboxEntry| ResolutionKey::new(&e.source, &e.incident_id, e.revision) == last;
        entries.iter().filter(of_last).filter(|e| e.state == EntryState::Pending).count()
    };
    assert_eq!(unsent(&store), 0, "its notification waits for the review, not dead-lettered without it");
    let others: Vec<_> = all.iter().filter(|k| **k != last).cloned().collect();
    let kept: Vec<_> = before.iter().zip(&all).filter(|(_, k)| **k != last).map(|(r, _)| r.clone()).collect();
    assert_eq!(reviews(&store, &others), kept, "the other reviews read as before");
    let pass = hindsight::stages::review::review_pending(&store, &engine(), &subs, 100, clock.now()).unwrap();
    assert_eq!(pass.reviewed, 1);
    assert!(store.review(&last).unwrap().is_some());
    assert_eq!(unsent(&store), 1, "the notification is back, to go out under its idempotency key");
}

#[tokio::test]
async fn retention_frees_the_log_segments_it_emptied_and_moves_what_is_still_live() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let t0 = t("2026-11-20T12:00:00Z");
    let later = t0 + chrono::Duration::days(10);
    let clock = ManualClock::new(t0);
    let engine = engine();
    // Segments of 64 KiB: about ten reviews each.
    let store = Store::open(&path).unwrap().with_review_log_segments(64 << 10);
    common::ingest_examples(&store, &clock).await;
    let sample = store.resolution(&keys(&store)[0]).unwrap().unwrap();
    let copy = |id: String| {
        let mut raw: serde_json::Value = serde_json::from_str(sample.raw.get()).unwrap();
        raw["id"] = serde_json::json!(id);
        Observed::from_value(&raw).unwrap()
    };
    // Reviews made at t0, one ten days later in the middle of them, then more at t0: the one
    // made later shares a segment with reviews that age out before it.
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, t0).unwrap();
    store.ingest("examples", &[copy("kept".into())], None, None, later).unwrap();
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, later).unwrap();
    let old: Vec<Observed> = (0..30).map(|i| copy(format!("old-{i}"))).collect();
    store.ingest("examples", &old, None, None, t0).unwrap();
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, t0).unwrap();
    let all = keys(&store);
    let kept = ResolutionKey::new("examples", "kept", 1);
    let kept_review = store.review(&kept).unwrap().unwrap();
    let files = log_files(&store);
    assert!(files.len() >= 3, "{files:?}");
    let bytes_before = dir_bytes(&store.review_log_dir());

    // Nothing aged out: nothing to free, nothing moved.
    assert_eq!(store.compact_review_log().unwrap(), Default::default());
    let keep = Retention { reviews: Some(Duration::from_secs(30 * 86_400)), ..Retention::default() };
    let removed = store.prune(&keep, t0 + chrono::Duration::days(31), 1000).unwrap();
    assert_eq!(removed.reviews, all.len() - 1);
    let c = store.compact_review_log().unwrap();
    assert_eq!(c.moved, 1, "the review made later moved out of its segment: {c:?}");
    assert_eq!(c.segments, files.len() - 1, "every sealed segment freed: {c:?}");
    assert!(dir_bytes(&store.review_log_dir()) < bytes_before / 2);
    assert_eq!(
        serde_json::to_value(store.review(&kept).unwrap().unwrap()).unwrap(),
        serde_json::to_value(&kept_review).unwrap()
    );
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.review_count(), 1);
    assert_eq!(
        serde_json::to_value(store.review(&kept).unwrap().unwrap()).unwrap(),
        serde_json::to_value(&kept_review).unwrap()
    );
    assert_eq!(store.compact_review_log().unwrap(), Default::default(), "nothing left to free");
}

#[tokio::test]
async fn a_segment_with_a_damaged_live_review_is_kept_and_the_others_are_freed() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = t("2026-11-20T12:00:00Z");
    let later = t0 + chrono::Duration::days(10);
    let clock = ManualClock::new(t0);
    let engine = engine();
    let store = Store::open(&dir.path().join("store")).unwrap().with_review_log_segments(64 << 10);
    common::ingest_examples(&store, &clock).await;
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, t0).unwrap();
    let sample = store.resolution(&keys(&store)[0]).unwrap().unwrap();
    let mut raw: serde_json::Value = serde_json::from_str(sample.raw.get()).unwrap();
    raw["id"] = serde_json::json!("kept");
    store.ingest("examples", &[Observed::from_value(&raw).unwrap()], None, None, later).unwrap();
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, later).unwrap();
    let old: Vec<Observed> = (0..30)
        .map(|i| {
            raw["id"] = serde_json::json!(format!("old-{i}"));
            Observed::from_value(&raw).unwrap()
        })
        .collect();
    store.ingest("examples", &old, None, None, t0).unwrap();
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, t0).unwrap();
    // A byte of the review made later flipped on disk, in the segment that holds it.
    let kept = ResolutionKey::new("examples", "kept", 1);
    let damaged = log_files(&store)
        .into_iter()
        .find_map(|name| {
            let path = store.review_log_dir().join(&name);
            let mut bytes = std::fs::read(&path).unwrap();
            let at = bytes.windows(kept.0.len()).position(|w| w == kept.0.as_slice())?;
            bytes[at + kept.0.len() + 40] ^= 0xFF;
            std::fs::write(&path, bytes).unwrap();
            Some(name)
        })
        .unwrap();
    let before = log_files(&store);
    assert_ne!(before.last(), Some(&damaged), "the damaged segment is a sealed one: {before:?}");
    let keep = Retention { reviews: Some(Duration::from_secs(30 * 86_400)), ..Retention::default() };
    store.prune(&keep, t0 + chrono::Duration::days(31), 1000).unwrap();
    let c = store.compact_review_log().unwrap();
    assert_eq!(c.segments, before.len() - 2, "all but the damaged one and the newest: {c:?}");
    let after = log_files(&store);
    assert!(after.contains(&damaged), "{after:?}");
    let e = store.review(&kept).unwrap_err().to_string();
    assert!(e.contains("review log") && e.contains(&damaged), "the damage is named where it is: {e}");
    // Packing leaves it as well, and says which (`hindsight_review_log_unpacked_segments`).
    let packing = store.pack_review_log().unwrap();
    let id: u32 = damaged.trim_end_matches(".log").parse().unwrap();
    assert_eq!(packing.left, [id], "{packing:?}");
    assert!(log_files(&store).contains(&damaged));
}

#[tokio::test]
async fn a_store_copied_without_its_review_log_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let clock = ManualClock::new(t("2026-11-20T12:00:00Z"));
    {
        let store = Store::open(&path).unwrap();
        common::ingest_examples(&store, &clock).await;
        hindsight::stages::review::review_pending(&store, &engine(), &[], 100, clock.now()).unwrap();
    }
    std::fs::remove_dir_all(path.join("reviews")).unwrap();
    let e = (0..50)
        .find_map(|_| match Store::open(&path) {
            Err(hindsight::store::StoreError::Locked { .. }) => {
                std::thread::sleep(Duration::from_millis(100));
                None
            }
            other => Some(other.unwrap_err().to_string()),
        })
        .unwrap();
    assert!(e.contains("00000001.log") && e.contains("restore the whole store directory"), "{e}");
    // Nothing was made again from it: the reviews are still pointed to, none queued.
    let db = raw(&path);
    assert!(db.open_tree("reviews").unwrap().len() >= 5);
    assert_eq!(db.open_tree("pending").unwrap().len(), 0);
}

fn raw(path: &std::path::Path) -> sled::Db {
    common::raw_sled(path)
}
