//! The upgrade of a store of schema 3 (every record plain JSON) to the current schema (the
//! snapshots and reviews compressed, schema 4; the digest's summaries in a binary layout,
//! schema 5): in place, nothing lost, and a SIGKILL part-way leaves a store that the next start
//! finishes. The old store is made the way Hindsight 3 left it: the sample incidents reviewed,
//! their records and summaries written back as plain JSON, the schema set to 3.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hindsight::clock::{Clock, ManualClock};
use hindsight::digest::Summary;
use hindsight::notify::Subscription;
use hindsight::review::Engine;
use hindsight::store::{ResolutionKey, SCHEMA_VERSION, Store};

const TREES: [&str; 3] = ["incidents", "resolutions", "reviews"];
const ZSTD: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// A follow-up marked done in a comment of the old store's first incident.
const MARKED: &str = "FU-0123456789";

fn raw(path: &Path) -> sled::Db {
    common::raw_sled(path)
}

/// The JSON of a stored value, compressed (with the store's dictionary or, as schema 4 did,
/// without) or not.
fn json(v: &[u8]) -> Vec<u8> {
    hindsight::store::stored_json(v).unwrap()
}

/// Every record of the three trees as JSON, by tree and key (a review in the review log read
/// from there).
type Contents = BTreeMap<(String, Vec<u8>), Vec<u8>>;

/// Whether a `reviews` value is a pointer into the review log (schema 8).
fn is_pointer(v: &[u8]) -> bool {
    v.len() == 21 && v[0] == 1
}

/// A record's bytes as stored: for a review the upgrade moved into the review log, its value
/// there, read from the segment file where the pointer says (segment u32, offset u64, length
/// u32; the entry is a header of 8 bytes, the key's length and the key, then the value).
fn stored(path: &Path, t: &str, k: &[u8], v: &[u8]) -> Vec<u8> {
    if t != "reviews" || !is_pointer(v) {
        return v.to_vec();
    }
    let segment = u32::from_be_bytes(v[1..5].try_into().unwrap());
    let offset = u64::from_be_bytes(v[5..13].try_into().unwrap()) as usize;
    let len = u32::from_be_bytes(v[13..17].try_into().unwrap()) as usize;
    let bytes = std::fs::read(path.join("reviews").join(format!("{segment:08}.log"))).unwrap();
    bytes[offset + 8 + 2 + k.len()..offset + 8 + len].to_vec()
}

/// A record as JSON: for a review in the review log, read from there.
fn stored_json(path: &Path, t: &str, k: &[u8], v: &[u8]) -> Vec<u8> {
    if t != "reviews" {
        return json(v);
    }
    hindsight::store::stored_review_json(path, k, v).unwrap()
}

fn contents(db: &sled::Db, path: &Path) -> Contents {
    let mut out = BTreeMap::new();
    for t in TREES {
        for kv in db.open_tree(t).unwrap().iter() {
            let (k, v) = kv.unwrap();
            out.insert((t.to_owned(), k.to_vec()), stored_json(path, t, &k, &v));
        }
    }
    out
}

/// (compressed, plain) records of the three trees, and how many reviews are in the review log.
fn forms(db: &sled::Db, path: &Path) -> (usize, usize, usize) {
    let mut packed = (0, 0, 0);
    for t in TREES {
        for kv in db.open_tree(t).unwrap().iter() {
            let (k, v) = kv.unwrap();
            if stored(path, t, &k, &v).starts_with(&ZSTD) {
                packed.0 += 1
            } else {
                packed.1 += 1
            }
            packed.2 += usize::from(t == "reviews" && is_pointer(&v));
        }
    }
    packed
}

/// Every stored summary, decoded, by key; and how many are stored as JSON.
fn summaries(db: &sled::Db) -> (BTreeMap<Vec<u8>, Summary>, usize) {
    let mut json = 0;
    let all = db
        .open_tree("summaries")
        .unwrap()
        .iter()
        .map(|kv| {
            let (k, v) = kv.unwrap();
            json += usize::from(v.starts_with(b"{"));
            (k.to_vec(), hindsight::digest::summary::from_stored(&v).unwrap().owned())
        })
        .collect();
    (all, json)
}

/// An upgrade is under way: one of its marks is in `meta`.
fn marked(db: &sled::Db) -> bool {
    let meta = db.open_tree("meta").unwrap();
    ["compressing", "upgrading_to_5", "moving_reviews_to_log"].iter().any(|m| meta.get(m).unwrap().is_some())
}

fn schema(db: &sled::Db) -> u32 {
    u32::from_be_bytes(
        db.open_tree("meta").unwrap().get("schema_version").unwrap().unwrap().as_ref().try_into().unwrap(),
    )
}

/// A store as Hindsight at schema 3 left it: the samples reviewed, each record `copies` times
/// under its own key (to make the upgrade long enough to interrupt), all plain JSON.
async fn old_store(path: &Path, copies: usize) -> (Contents, Vec<ResolutionKey>) {
    let clock = ManualClock::new("2026-11-20T12:00:00Z".parse().unwrap());
    let full = {
        let store = Store::open(path).unwrap();
        common::ingest_examples(&store, &clock).await;
        let catalog = std::sync::Arc::new(hindsight::attack::store::embedded().unwrap());
        let engine = Engine::new(catalog, None, None, hindsight::review::Settings::default());
        let subs = vec![Subscription::everything("soc")];
        hindsight::stages::review::review_pending(&store, &engine, &subs, 100, clock.now()).unwrap();
        // Hindsight 3 stored each resolution in full (now it refers to the incident's record).
        let full: BTreeMap<Vec<u8>, Vec<u8>> = store
            .resolutions()
            .map(|r| {
                let r = r.unwrap();
                (ResolutionKey::new(&r.source, &r.incident_id, r.revision).0, serde_json::to_vec(&r).unwrap())
            })
            .collect();
        store.flush().unwrap();
        full
    };
    let keys: Vec<ResolutionKey> = full.keys().map(|k| ResolutionKey(k.clone())).collect();
    let db = raw(path);
    for t in TREES {
        let tree = db.open_tree(t).unwrap();
        let records: Vec<_> = tree.iter().map(Result::unwrap).collect();
        for (i, (k, v)) in records.into_iter().enumerate() {
            let mut plain = if t == "resolutions" { full[k.as_ref()].clone() } else { stored_json(path, t, &k, &v) };
            if t == "incidents" && i == 0 {
                // An analyst marked a follow-up done on the first incident: the upgrade indexes it.
                let mut record: serde_json::Value = serde_json::from_slice(&plain).unwrap();
                record["incident"]["comments"] = serde_json::json!([
                    {"comment": format!("Done: {MARKED} (rule on)"), "author": "analyst", "created": "2026-11-21T09:00:00Z"}
                ]);
                plain = serde_json::to_vec(&record).unwrap();
            }
            for c in 1..copies {
                let mut copy = k.to_vec();
                copy.extend(format!("~copy{c}").as_bytes());
                tree.insert(copy, plain.as_slice()).unwrap();
            }
            tree.insert(k, plain).unwrap();
        }
    }
    // Summaries as Hindsight 4 and before wrote them: JSON (copied as well).
    let tree = db.open_tree("summaries").unwrap();
    let records: Vec<_> = tree.iter().map(Result::unwrap).collect();
    for (k, v) in records {
        let summary = serde_json::to_vec(&hindsight::digest::summary::from_stored(&v).unwrap().owned()).unwrap();
        for c in 1..copies {
            let mut copy = k.to_vec();
            copy.extend(format!("~copy{c}").as_bytes());
            tree.insert(copy, summary.as_slice()).unwrap();
        }
        tree.insert(k, summary).unwrap();
    }
    db.open_tree("meta").unwrap().insert("schema_version", &3u32.to_be_bytes()).unwrap();
    db.flush().unwrap();
    // Hindsight 3 had no review log: every review is back in its tree.
    std::fs::remove_dir_all(path.join("reviews")).unwrap();
    let (_, json) = summaries(&db);
    assert!(json > 0 && json == tree.len(), "the old store's summaries are JSON");
    assert_eq!(forms(&db, path).0, 0, "the old store holds plain JSON only");
    (contents(&db, path), keys)
}

#[tokio::test]
async fn an_old_store_is_compressed_in_place_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let (before, keys) = old_store(&path, 1).await;
    let (summaries_before, _) = summaries(&raw(&path));
    let plain_bytes: usize = before.values().map(Vec::len).sum();
    {
        let store = Store::open(&path).unwrap();
        let marks = store.done_marks(MARKED).unwrap();
        assert_eq!(marks.len(), 1, "the mark in the old store's comments is indexed: {marks:?}");
        assert_eq!(marks[0].at, "2026-11-21T09:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap());
        for k in &keys {
            let review = store.review(k).unwrap().expect("every review reads after the upgrade");
            assert_eq!(serde_json::to_vec(&review).unwrap(), before[&("reviews".to_owned(), k.0.clone())]);
            assert!(store.resolution(k).unwrap().is_some());
        }
    }
    let db = raw(&path);
    assert_eq!(schema(&db), SCHEMA_VERSION);
    assert!(!marked(&db), "the marks are gone once done");
    assert_eq!(summaries(&db), (summaries_before, 0), "every summary rewritten, reading the same");
    let (packed, plain, logged) = forms(&db, &path);
    assert!(packed > 0 && packed == before.len() - plain, "{packed} compressed, {plain} left plain");
    assert_eq!(logged, keys.len(), "every review moved to the review log");
    assert_eq!(contents(&db, &path), before, "every record holds the same JSON");
    let stored: usize = TREES
        .iter()
        .flat_map(|t| {
            let records = db.open_tree(t).unwrap().iter().map(Result::unwrap);
            records.map(|(k, v)| stored(&path, t, &k, &v).len()).collect::<Vec<_>>()
        })
        .sum();
    assert!(stored * 4 < plain_bytes, "{plain_bytes} bytes of JSON stored in {stored}");
}

/// `hindsight check --offline` opens the store (and so upgrades it); killed at growing delays
/// until one kill lands part-way, then run to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_during_the_upgrade_leaves_a_store_the_next_start_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let path = state.join("store");
    std::fs::create_dir_all(&state).unwrap();
    let (before, _) = old_store(&path, 60).await;
    let (summaries_before, _) = summaries(&raw(&path));
    let config = common::DaemonConfig::new().write_in(dir.path());
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_hindsight"))
            .args(["check", "--offline", "--config"])
            .arg(&config)
            .env("HINDSIGHT_STATE_DIR", &state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut interrupted = 0;
    // Up to 10 s: under a loaded CI machine the catalog loads before the store opens slowly.
    for delay_ms in (1..200).map(|i| i * 50) {
        let mut child = check();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(delay_ms) && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        let db = raw(&path);
        let (packed, plain, logged) = forms(&db, &path);
        assert_eq!(contents(&db, &path), before, "after a kill at {delay_ms} ms every record holds its JSON");
        assert_eq!(summaries(&db).0, summaries_before, "after a kill at {delay_ms} ms every summary reads the same");
        let marked = marked(&db);
        if packed > 0 && marked {
            interrupted += 1;
            assert_eq!(schema(&db), SCHEMA_VERSION, "an older Hindsight refuses a part-upgraded store");
        }
        drop(db);
        if finished || (!marked && schema(&raw(&path)) == SCHEMA_VERSION) {
            break;
        }
        eprintln!("killed at {delay_ms} ms: {packed} compressed, {plain} plain, {logged} reviews in the log");
    }
    assert!(interrupted > 0, "no kill landed while the upgrade ran");
    // The next start finishes it.
    let status = check().wait().unwrap();
    assert!(status.success());
    let db = raw(&path);
    assert_eq!(schema(&db), SCHEMA_VERSION);
    assert!(!marked(&db));
    let (packed, plain, logged) = forms(&db, &path);
    assert!(packed > 0 && plain * 20 < packed, "{packed} compressed, {plain} plain at the end");
    assert_eq!(logged, db.open_tree("reviews").unwrap().len(), "every review in the review log");
    assert_eq!(contents(&db, &path), before);
    assert_eq!(summaries(&db), (summaries_before, 0));
}

/// Every incident record of a store as schema `version` (5 or 6) wrote it: a resolution the
/// record holds marked `=` in `resolutions` instead of in the record, and (5) the whole
/// normalized incident (alerts, evidence) beside the snapshot's text; plain JSON. Returns how
/// many records and how many marks.
fn as_schema(path: &Path, version: u32) -> (usize, usize) {
    let db = raw(path);
    let tree = db.open_tree("incidents").unwrap();
    let resolutions = db.open_tree("resolutions").unwrap();
    let records: Vec<_> = tree.iter().map(Result::unwrap).collect();
    let mut marks = 0;
    for (k, v) in &records {
        let mut record: serde_json::Value = serde_json::from_slice(&json(v)).unwrap();
        assert!(
            record["incident"]["alerts"].as_array().unwrap().is_empty(),
            "schema 6 on keeps no alerts beside the text"
        );
        if record.as_object_mut().unwrap().remove("holds_resolution") == Some(serde_json::Value::Bool(true)) {
            let revision = u32::try_from(record["resolutions"].as_u64().unwrap()).unwrap();
            let rk = ResolutionKey::new(
                record["source"].as_str().unwrap(),
                record["incident"]["id"].as_str().unwrap(),
                revision,
            );
            assert!(resolutions.insert(&rk.0, &b"="[..]).unwrap().is_none(), "held by the record only");
            marks += 1;
        }
        if version == 5 {
            let whole = hindsight::model::Incident::from_graph(&record["raw"]).unwrap();
            assert!(!whole.alerts.is_empty());
            record["incident"] = serde_json::to_value(&whole).unwrap();
        }
        tree.insert(k, serde_json::to_vec(&record).unwrap()).unwrap();
    }
    db.open_tree("meta").unwrap().insert("schema_version", &version.to_be_bytes()).unwrap();
    db.flush().unwrap();
    (records.len(), marks)
}

/// Schema 5 stored the normalized incident beside each snapshot; 6 stores its own fields only
/// and the review reads the alerts from the text. Both marked a resolution held by its record
/// with `=` in `resolutions`; 7 says so in the record. A schema-5 or 6 store's queued
/// resolutions are reviewed as a new store's are, and the upgrade sets the version an older
/// Hindsight refuses.
#[tokio::test]
async fn schema_5_and_6_stores_review_what_they_queued_as_a_new_one_does() {
    let clock = ManualClock::new("2026-11-20T12:00:00Z".parse().unwrap());
    let catalog = std::sync::Arc::new(hindsight::attack::store::embedded().unwrap());
    let engine = Engine::new(catalog, None, None, hindsight::review::Settings::default());
    let subs = vec![Subscription::everything("soc")];
    let reviews = |path: &Path, upgrade: Option<u32>| {
        let path = path.to_owned();
        let (engine, subs, clock) = (&engine, &subs, &clock);
        async move {
            {
                let store = Store::open(&path).unwrap();
                assert!(common::ingest_examples(&store, clock).await > 0);
                store.flush().unwrap();
            }
            if let Some(version) = upgrade {
                let (records, marks) = as_schema(&path, version);
                assert!(records > 0 && marks > 0, "{records} records, {marks} held a resolution");
            }
            let store = Store::open(&path).unwrap();
            let done = hindsight::stages::review::review_pending(&store, engine, subs, 100, clock.now()).unwrap();
            assert!(done.reviewed > 0 && done.failed.is_empty(), "{:?}", done.failed);
            let all: BTreeMap<Vec<u8>, serde_json::Value> = store
                .resolutions()
                .map(|r| {
                    let r = r.unwrap();
                    let k = ResolutionKey::new(&r.source, &r.incident_id, r.revision);
                    (k.0.clone(), serde_json::to_value(store.review(&k).unwrap().unwrap()).unwrap())
                })
                .collect();
            drop(store);
            (all, schema(&raw(&path)))
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let (new, new_schema) = reviews(&dir.path().join("new"), None).await;
    assert_eq!((new_schema, SCHEMA_VERSION), (9, 9));
    assert!(new.len() >= 5);
    let alerts = |r: &serde_json::Value| r["alerts"].as_array().map_or(0, Vec::len);
    assert!(new.values().all(|r| alerts(r) > 0), "the reviews are made from the alerts in the text");
    for version in [5, 6] {
        let (old, old_schema) = reviews(&dir.path().join(format!("v{version}")), Some(version)).await;
        assert_eq!(old_schema, SCHEMA_VERSION);
        assert_eq!(old, new, "schema {version}");
    }
}
