//! Packs of the review log (schema 9): sealed segments rewritten with their live reviews and
//! the snapshots of the resolutions they were made from compressed together; every review and
//! resolution reads the same afterwards, after a reopen, after a crash part-way, after
//! retention freed the packs, and after a retro-hunt amended a packed review.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::store::{dir_bytes, engine, log_files, resolution_keys as keys};

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hindsight::clock::ManualClock;
use hindsight::review::{History, Subject};
use hindsight::store::{Observed, ResolutionKey, Retention, Store};
use serde_json::Value;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Every review and every resolution (its snapshot, the fields ingest read from it, its
/// transitions), as JSON, by key.
fn contents(store: &Store, keys: &[ResolutionKey]) -> Vec<(Option<Value>, Value)> {
    keys.iter()
        .map(|k| {
            let review = store.review(k).unwrap().map(|r| serde_json::to_value(r).unwrap());
            let resolution = store.resolution(k).unwrap().unwrap();
            let mut resolution = serde_json::to_value(&resolution).unwrap();
            let raw: Value = serde_json::from_str(resolution["raw"].to_string().as_str()).unwrap();
            resolution["raw"] = raw;
            (review, resolution)
        })
        .collect()
}

/// The sample incidents and `copies` more of the first, under other ids, resolved at `at`.
async fn ingest(store: &Store, copies: usize, at: DateTime<Utc>) {
    common::ingest_examples(store, &ManualClock::new(at)).await;
    let sample = store.resolution(&keys(store)[0]).unwrap().unwrap();
    let mut raw: Value = serde_json::from_str(sample.raw.get()).unwrap();
    let more: Vec<Observed> = (0..copies)
        .map(|i| {
            raw["id"] = serde_json::json!(format!("copy-{i}"));
            Observed::from_value(&raw).unwrap()
        })
        .collect();
    store.ingest("examples", &more, None, None, at).unwrap();
}

/// How many incident records still keep their snapshot.
fn records_with_snapshot(store: &Store, keys: &[ResolutionKey]) -> usize {
    keys.iter()
        .filter_map(|k| {
            let r = store.resolution(k).unwrap().unwrap();
            store.incident(&r.source, &r.incident_id).unwrap()
        })
        .filter(|r| r.raw.get() != "null")
        .count()
}

#[tokio::test]
async fn sealed_segments_are_packed_and_every_review_and_snapshot_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let t0 = t("2026-11-20T12:00:00Z");
    // Segments of 64 KiB: a few reviews each.
    let store = Store::open(&path).unwrap().with_review_log_segments(64 << 10);
    ingest(&store, 30, t0).await;
    hindsight::stages::review::review_pending(&store, &engine(), &[], 100, t0).unwrap();
    let all = keys(&store);
    let before = contents(&store, &all);
    let logs = log_files(&store);
    assert!(logs.len() >= 4 && logs.iter().all(|f| f.ends_with(".log")), "{logs:?}");
    let bytes_before = dir_bytes(&store.review_log_dir());
    assert_eq!(records_with_snapshot(&store, &all), all.len());

    let done = store.pack_review_log().unwrap();
    assert_eq!(done.segments, logs.len() - 1, "every sealed segment: {done:?}");
    assert!(done.reviews > 0 && done.after < done.before, "{done:?}");
    let after = log_files(&store);
    assert_eq!(after.iter().filter(|f| f.ends_with(".log")).collect::<Vec<_>>(), [logs.last().unwrap()]);
    assert_eq!(after.iter().filter(|f| f.ends_with(".pack")).count(), logs.len() - 1, "{after:?}");
    let bytes_after = dir_bytes(&store.review_log_dir());
    assert!(bytes_after * 10 < bytes_before * 7, "{bytes_before} bytes before, {bytes_after} after");
    // What /metrics reports (`hindsight_store_bytes`): the files, by part.
    let usage = store.disk_usage().unwrap();
    let file = |name: &str| std::fs::metadata(store.review_log_dir().join(name)).unwrap().len();
    let of = |ext: &str| after.iter().filter(|f| f.ends_with(ext)).map(|f| file(f)).sum::<u64>();
    assert_eq!((usage.segments, usage.packs), (of(".log"), of(".pack")), "{usage:?}");
    assert!(usage.packs > 0 && usage.segments > 0, "{usage:?}");
    assert!(usage.trees >= std::fs::metadata(path.join("db")).unwrap().len(), "{usage:?}");
    assert_eq!(contents(&store, &all), before, "every review and snapshot reads the same");
    // The records no longer keep the snapshots the packs hold.
    assert_eq!(records_with_snapshot(&store, &all), all.len() - done.snapshots);
    assert!(done.snapshots == done.reviews, "{done:?}");
    assert_eq!(store.pack_review_log().unwrap(), Default::default(), "nothing left to pack");
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(contents(&store, &all), before, "and after a reopen");

    // `hindsight check` says what the store takes on disk, though a daemon holds it.
    let config = common::DaemonConfig::new().write_in(dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(["check", "--offline", "--config"])
        .arg(&config)
        .env("HINDSIGHT_STATE_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = common::stdout(&out);
    let line = stdout.lines().find(|l| l.contains(" store ")).unwrap_or_else(|| panic!("{stdout}"));
    let usage = hindsight::store::disk_usage_at(&path).unwrap();
    let said = format!("in use by a running Hindsight; {} on disk", bytesize::ByteSize(usage.total()));
    assert!(line.contains(&said), "{said:?} in {line}");
    assert!(line.contains(&format!("of which {} packed", bytesize::ByteSize(usage.packs))), "{line}");
    drop(store);
}

/// Copies a store directory (closed) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[tokio::test]
async fn a_pack_written_before_a_crash_is_finished_at_the_next_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let t0 = t("2026-11-20T12:00:00Z");
    let (all, before) = {
        let store = Store::open(&a).unwrap().with_review_log_segments(64 << 10);
        ingest(&store, 20, t0).await;
        hindsight::stages::review::review_pending(&store, &engine(), &[], 100, t0).unwrap();
        let all = keys(&store);
        (all.clone(), contents(&store, &all))
    };
    copy_dir(&a, &b);
    // In `a` the packs are made; `b` is the same store killed right after writing them (and
    // while writing another): its pointers and records are as they were before.
    let packs: Vec<String> = {
        let store = Store::open(&a).unwrap();
        assert!(store.pack_review_log().unwrap().segments >= 2);
        log_files(&store).into_iter().filter(|f| f.ends_with(".pack")).collect()
    };
    for pack in &packs {
        std::fs::copy(a.join("reviews").join(pack), b.join("reviews").join(pack)).unwrap();
    }
    std::fs::write(b.join("reviews").join("00000099.pack.tmp"), b"written in part").unwrap();
    let store = Store::open(&b).unwrap();
    assert!(!log_files(&store).iter().any(|f| f.ends_with(".tmp")), "the part-written pack is gone");
    assert_eq!(contents(&store, &all), before, "read from the segments meanwhile");
    let done = store.pack_review_log().unwrap();
    assert_eq!(done.segments, packs.len(), "finished from the packs already there: {done:?}");
    assert_eq!(log_files(&store).iter().filter(|f| f.ends_with(".log")).count(), 1);
    assert_eq!(contents(&store, &all), before);
    assert_eq!(records_with_snapshot(&store, &all), all.len() - done.snapshots);
}

#[tokio::test]
async fn retention_frees_packs_and_a_live_review_keeps_its_snapshot_when_moved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let t0 = t("2026-11-20T12:00:00Z");
    let later = t0 + chrono::Duration::days(10);
    let engine = engine();
    let store = Store::open(&path).unwrap().with_review_log_segments(64 << 10);
    ingest(&store, 10, t0).await;
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, t0).unwrap();
    // One reviewed ten days later among reviews that age out before it.
    let sample = store.resolution(&keys(&store)[0]).unwrap().unwrap();
    let mut raw: Value = serde_json::from_str(sample.raw.get()).unwrap();
    raw["id"] = serde_json::json!("kept");
    store.ingest("examples", &[Observed::from_value(&raw).unwrap()], None, None, later).unwrap();
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, later).unwrap();
    ingest(&store, 20, t0).await;
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, t0).unwrap();
    let kept = ResolutionKey::new("examples", "kept", 1);
    let kept_before = contents(&store, std::slice::from_ref(&kept));
    let packed = store.pack_review_log().unwrap();
    assert!(packed.segments >= 2, "{packed:?}");

    let keep = Retention { reviews: Some(Duration::from_secs(30 * 86_400)), ..Retention::default() };
    store.prune(&keep, t0 + chrono::Duration::days(31), 1000).unwrap();
    assert_eq!(store.review_count(), 1);
    assert_eq!(keys(&store), std::slice::from_ref(&kept), "no record holds a resolution whose review is gone");
    let c = store.compact_review_log().unwrap();
    assert_eq!(c.moved, 1, "the live review moved out of its pack: {c:?}");
    assert_eq!(c.segments, packed.segments, "every pack freed: {c:?}");
    assert!(!log_files(&store).iter().any(|f| f.ends_with(".pack")), "{:?}", log_files(&store));
    assert_eq!(contents(&store, std::slice::from_ref(&kept)), kept_before, "review and snapshot moved together");
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(contents(&store, std::slice::from_ref(&kept)), kept_before);
}

#[tokio::test]
async fn a_packed_review_amended_by_a_retro_hunt_keeps_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = t("2026-11-20T12:00:00Z");
    let engine = engine();
    let store = Store::open(&dir.path().join("store")).unwrap().with_review_log_segments(64 << 10);
    ingest(&store, 12, t0).await;
    // The first resolution reviewed by hand, queued for retro-hunts; the rest by the stage.
    let k = keys(&store)[0].clone();
    let resolution = store.resolution(&k).unwrap().unwrap();
    let incident = resolution.incident(&Default::default()).unwrap();
    let subject = Subject { incident: &incident, source: "examples", revision: 1, transitions: &[] };
    let review = engine.review(&subject, &History::default());
    let mut record = hindsight::stages::review::record_of("examples", &review, Vec::new(), t0);
    record.hunt = true;
    record.snapshot = Some(&resolution.raw);
    assert!(store.record_review(&k, &record).unwrap());
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, t0).unwrap();
    let before = contents(&store, std::slice::from_ref(&k));
    store.pack_review_log().unwrap();
    let record = store.incident("examples", &resolution.incident_id).unwrap().unwrap();
    assert_eq!(record.raw.get(), "null", "the pack holds the snapshot now");
    assert!(
        record.header.title.is_empty() && record.header.id == resolution.incident_id,
        "and the fields read from it"
    );
    let read = store.resolution(&k).unwrap().unwrap();
    assert_eq!(read.header.title, resolution.header.title, "read again from the snapshot");
    assert!(!read.header.title.is_empty());

    let mut amended = store.review(&k).unwrap().unwrap();
    amended.follow_ups.truncate(1);
    assert!(store.record_hunted(&k, &amended, &[]).unwrap());
    let after = contents(&store, std::slice::from_ref(&k));
    assert_eq!(after[0].1, before[0].1, "the snapshot went on with the amended review");
    assert_eq!(after[0].0, Some(serde_json::to_value(&amended).unwrap()));
}

#[tokio::test]
async fn an_incident_reopened_after_its_review_was_packed_keeps_its_first_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = t("2026-11-20T12:00:00Z");
    let store = Store::open(&dir.path().join("store")).unwrap().with_review_log_segments(64 << 10);
    ingest(&store, 12, t0).await;
    hindsight::stages::review::review_pending(&store, &engine(), &[], 100, t0).unwrap();
    let k = keys(&store)[0].clone();
    let before = contents(&store, std::slice::from_ref(&k));
    store.pack_review_log().unwrap();
    let first = store.resolution(&k).unwrap().unwrap();
    assert_eq!(store.incident("examples", &first.incident_id).unwrap().unwrap().raw.get(), "null");

    // Re-opened in Defender a day later: the record takes the new snapshot, and the first
    // resolution is written out on its own (its snapshot in the pack).
    let mut raw: Value = serde_json::from_str(first.raw.get()).unwrap();
    let later = t0 + chrono::Duration::days(1);
    raw["status"] = serde_json::json!("active");
    raw["lastUpdateDateTime"] = serde_json::json!(later.to_rfc3339());
    let out = store.ingest("examples", &[Observed::from_value(&raw).unwrap()], None, None, later).unwrap();
    assert_eq!((out.stored, out.resolutions.len()), (1, 0));
    assert_ne!(store.incident("examples", &first.incident_id).unwrap().unwrap().raw.get(), "null");
    assert_eq!(contents(&store, std::slice::from_ref(&k)), before, "the first resolution reads as it was");
}
