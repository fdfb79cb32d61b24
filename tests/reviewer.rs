//! The review stage over a real store: the sample incidents come in through the directory
//! source, are reviewed once each, and build the organisation's history as they go.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::ingest_examples;

use hindsight::attack::store as catalog_store;
use hindsight::clock::{Clock, ManualClock};
use hindsight::review::{Engine, KnowledgeGap, Settings};
use hindsight::stages::review::review_pending;
use hindsight::store::{ResolutionKey, Store};

fn first_seen(r: &hindsight::review::Review) -> Vec<String> {
    r.knowledge_gaps
        .iter()
        .filter_map(|g| match g {
            KnowledgeGap::FirstSeen { technique, .. } => Some(technique.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn each_resolution_is_reviewed_once_and_teaches_the_next() {
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let clock = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap());
    assert_eq!(ingest_examples(&store, &clock).await, 10);

    let catalog = catalog_store::embedded().unwrap();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    let pass = review_pending(&store, &engine, &[], 100, clock.now()).unwrap();
    assert_eq!((pass.reviewed, pass.failed.len()), (10, 0));
    assert_eq!((store.pending_count(), store.review_count()), (0, 10));
    // Nothing is reviewed twice.
    assert_eq!(review_pending(&store, &engine, &[], 100, clock.now()).unwrap().reviewed, 0);

    // Reviews run in key order (incident 1042 first). By incident 1130, T1003.001 had been met
    // in incident 1077; the other five techniques of 1130 are new to the organisation.
    let r = store.review(&ResolutionKey::new("examples", "1130", 1)).unwrap().unwrap();
    let mut new = first_seen(&r);
    new.sort();
    assert_eq!(new, ["T1059.001", "T1064", "T1204.002", "T1566.001", "T1647"]);
    let first = store.review(&ResolutionKey::new("examples", "1042", 1)).unwrap().unwrap();
    assert_eq!(first_seen(&first).len(), 7, "the first review meets everything for the first time");
    let history = store.history("examples").unwrap();
    assert_eq!(store.review_count(), 10);
    assert!(history.techniques_seen.contains("T1486"));
    // Another source (another tenant) has a history of its own.
    assert!(store.history("other-tenant").unwrap().techniques_seen.is_empty());
    // Recording a review that is no longer queued changes nothing.
    assert!(
        !store
            .record_review(
                &ResolutionKey::new("examples", "1042", 1),
                &hindsight::stages::review::record_of("examples", &first, Vec::new(), clock.now())
            )
            .unwrap()
    );
}

#[tokio::test]
async fn routes_decide_which_reviews_go_where() {
    use hindsight::notify::{Route, Subscription};
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let clock = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap());
    ingest_examples(&store, &clock).await;
    let catalog = catalog_store::embedded().unwrap();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    let high_tp =
        Route { min_severity: Some("high".into()), classifications: vec!["truePositive".into()], ..Route::default() };
    let ransomware = Route { tags: vec!["ransomware".into()], ..Route::default() };
    assert!(
        !Route { min_severity: Some("urgent".into()), ..Route::default() }.validate().is_empty(),
        "an unknown severity is refused"
    );
    let subs = [
        Subscription { destination: "soc-lead".into(), route: high_tp },
        Subscription { destination: "ir-team".into(), route: ransomware },
        Subscription::everything("archive"),
    ];
    review_pending(&store, &engine, &subs, 100, clock.now()).unwrap();
    let count = |d: &str| store.outbox_entries().unwrap().iter().filter(|e| e.destination == d).count();
    // High true positives among the samples: phishing 1042, ransomware 1077, BEC 1103, kiosk 1145,
    // identity 1162, ransomware 2214, phishing 2388 and 2517.
    assert_eq!(count("soc-lead"), 8);
    // Tagged "Ransomware" (case does not matter): 1077 and 2214.
    assert_eq!(count("ir-team"), 2);
    assert_eq!(count("archive"), 10);
}

/// Writes straight into the store's sled trees (closed), as a bug or a damaged disk might leave
/// them: Hindsight's own code never queues a key without its record.
fn tamper(dir: &std::path::Path, tree: &str, key: &[u8], value: &[u8]) {
    // sled lets go of its lock from its flusher thread a moment after the last handle is
    // dropped: on a loaded machine the store closed just before may still hold it.
    let db = (0..100)
        .find_map(|_| {
            sled::open(dir).ok().or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(100));
                None
            })
        })
        .expect("the store's lock is released");
    db.open_tree(tree).unwrap().insert(key, value).unwrap();
    db.flush().unwrap();
}

/// A queued resolution that can never be reviewed leaves the queue with its reason, and the
/// queue moves on even one at a time (it used to stay first in the queue for ever).
#[tokio::test]
async fn a_resolution_that_cannot_be_reviewed_leaves_the_queue_and_is_kept_with_why() {
    let state = tempfile::tempdir().unwrap();
    let clock = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap());
    {
        let store = Store::open(state.path()).unwrap();
        assert_eq!(ingest_examples(&store, &clock).await, 10);
    }
    // Both sort before "examples…", so a batch of one meets them first.
    let missing = ResolutionKey::new("aaa-gone", "1", 1);
    let corrupt = ResolutionKey::new("bbb-corrupt", "2", 1);
    tamper(state.path(), "pending", &missing.0, b"");
    tamper(state.path(), "pending", &corrupt.0, b"");
    tamper(state.path(), "resolutions", &corrupt.0, b"{not json");

    let store = Store::open(state.path()).unwrap();
    let catalog = catalog_store::embedded().unwrap();
    let engine = Engine::new(std::sync::Arc::new(catalog), None, None, Settings::default());
    let mut reviewed = 0;
    for _ in 0..12 {
        reviewed += review_pending(&store, &engine, &[], 1, clock.now()).unwrap().reviewed;
    }
    assert_eq!(reviewed, 10, "every real resolution is reviewed in twelve batches of one");
    assert_eq!((store.pending_count(), store.failed_count()), (0, 2));
    let failed = store.failed_reviews().unwrap();
    assert_eq!(failed[0].0, missing);
    assert_eq!(
        (failed[0].1.source.as_str(), failed[0].1.incident_id.as_str(), failed[0].1.revision),
        ("aaa-gone", "1", 1)
    );
    assert!(failed[0].1.reason.contains("without a resolution record"), "{}", failed[0].1.reason);
    assert_eq!(failed[1].0, corrupt);
    assert!(failed[1].1.reason.contains("corrupt record"), "{}", failed[1].1.reason);
    drop(store);

    // The operator sees them, through the binary, with why (the store sits in <state>/store).
    let dir = tempfile::tempdir().unwrap();
    std::fs::rename(state.path(), dir.path().join("store")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(["queue", "list", "--failed", "--format", "json", "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    assert_eq!(rows[0]["resolution"], "aaa-gone/1/1");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(["queue", "retry", "--all-failed", "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let store = Store::open(&dir.path().join("store")).unwrap();
    assert_eq!((store.pending_count(), store.failed_count()), (2, 0));
}

/// A later incident of the same tenant that raises a follow-up already raised says so, keeps
/// its ID, and the store keeps when it was first raised (the digest's age): when the first
/// incident that raised it was resolved, the day its due date counts from, not when Hindsight
/// happened to review it.
#[tokio::test]
async fn a_follow_up_raised_again_keeps_its_id_and_its_first_time() {
    use hindsight::source::Source;
    use hindsight::source::directory::{DirectoryConfig, DirectorySource};
    let state = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let mut source = Source::Directory(DirectorySource::new(DirectoryConfig {
        name: "contoso".into(),
        path: inbox.path().to_owned(),
        max_file_bytes: 1 << 20,
    }));
    let engine = Engine::new(std::sync::Arc::new(catalog_store::embedded().unwrap()), None, None, Settings::default());
    let sample = std::fs::read_to_string(common::repo().join("examples/incidents/recurring-phishing-1.json")).unwrap();
    let mut incident: serde_json::Value = serde_json::from_str(&sample).unwrap();
    let id = incident["id"].as_str().unwrap().to_owned();

    let t1 = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap());
    std::fs::write(inbox.path().join("first.json"), serde_json::to_vec(&incident).unwrap()).unwrap();
    assert_eq!(source.poll(&store, &t1).await.unwrap().resolutions, 1);
    review_pending(&store, &engine, &[], 100, t1.now()).unwrap();
    let first = store.review(&ResolutionKey::new("contoso", &id, 1)).unwrap().unwrap();
    let mfa = first.follow_ups.iter().find(|f| f.kind == "phishing_resistant_mfa").unwrap().clone();
    assert_eq!(mfa.raised_before, 0);

    // The same account phished again three weeks later: another incident.
    incident["id"] = "9001".into();
    incident["resolvedDateTime"] = "2026-09-09T13:05:00Z".into();
    incident["lastUpdateDateTime"] = "2026-09-09T13:05:00Z".into();
    let t2 = ManualClock::new("2026-12-15T12:00:00Z".parse().unwrap());
    std::fs::write(inbox.path().join("second.json"), serde_json::to_vec(&incident).unwrap()).unwrap();
    assert_eq!(source.poll(&store, &t2).await.unwrap().resolutions, 1);
    review_pending(&store, &engine, &[], 100, t2.now()).unwrap();
    let second = store.review(&ResolutionKey::new("contoso", "9001", 1)).unwrap().unwrap();
    let again = second.follow_ups.iter().find(|f| f.kind == "phishing_resistant_mfa").unwrap();
    assert_eq!(again.id, mfa.id, "the same follow-up");
    assert_eq!(again.raised_before, 1);
    assert!(again.title.ends_with("(raised again: 1)"), "{}", again.title);
    let stored = store.follow_up(&mfa.id).unwrap().unwrap();
    let first_resolved: chrono::DateTime<chrono::Utc> = "2026-08-19T13:05:00Z".parse().unwrap();
    assert_eq!(stored.first_raised, Some(first_resolved), "first raised by the first incident, resolved then");
}
