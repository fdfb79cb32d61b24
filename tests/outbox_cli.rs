//! `hindsight outbox …` with the real binary on a real store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use chrono::Utc;
use hindsight::outbox::{EntryState, OutboxEntry};
use hindsight::store::Store;

fn entry(id: &str, state: EntryState, days_ago: i64) -> OutboxEntry {
    let at = Utc::now() - chrono::Duration::days(days_ago);
    OutboxEntry {
        id: id.into(),
        destination: "soc-hook".into(),
        event: "review.created".into(),
        source: "contoso".into(),
        incident_id: "1077".into(),
        revision: 1,
        created_at: at,
        attempts: 3,
        next_attempt_at: at,
        state,
        last_error: None,
        not_before: None,
        body: serde_json::json!({"id": id}),
        digest: None,
    }
}

#[test]
fn list_show_retry_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&dir.path().join("store")).unwrap();
        let old = Utc::now() - chrono::Duration::days(40);
        store.update_outbox(&entry("hs_pending", EntryState::Pending, 0)).unwrap();
        store
            .update_outbox(&entry("hs_dead", EntryState::Dead { at: old, reason: "HTTP 410 Gone".into() }, 40))
            .unwrap();
        store.update_outbox(&entry("hs_old", EntryState::Delivered { at: old }, 40)).unwrap();
        store.update_outbox(&entry("hs_new", EntryState::Delivered { at: Utc::now() }, 0)).unwrap();
        store.flush().unwrap();
    }
    let p = dir.path();
    let text = ok(p, &["outbox", "list"]);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("hs_dead  dead") && text.contains("HTTP 410 Gone"), "{text}");
    let dead = json(&ok(p, &["outbox", "list", "--state", "dead", "--format", "json"]));
    assert_eq!(dead.as_array().unwrap().len(), 1);
    assert_eq!(dead[0]["id"], "hs_dead");
    assert_eq!(json(&ok(p, &["outbox", "show", "hs_new"]))["body"]["id"], "hs_new");
    assert!(fails(p, &["outbox", "show", "hs_nope"]).contains("no notification hs_nope in the outbox"));
    assert!(fails(p, &["outbox", "retry", "hs_pending"]).contains("not dead-lettered"));

    assert!(ok(p, &["outbox", "retry", "--all-dead"]).contains("1 notification(s) queued again"));
    let retried = json(&ok(p, &["outbox", "show", "hs_dead"]));
    assert_eq!(retried["state"], "pending");
    assert_eq!(retried["id"], "hs_dead", "a retry keeps the id receivers de-duplicate on");

    assert!(ok(p, &["outbox", "purge"]).contains("1 notification(s) removed"));
    let left: Vec<String> = json(&ok(p, &["outbox", "list", "--format", "json"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left.len(), 3);
    assert!(!left.contains(&"hs_old".to_owned()));
}

#[test]
fn a_store_in_use_is_reported_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let _held = Store::open(&dir.path().join("store")).unwrap();
    let err = fails(dir.path(), &["outbox", "list"]);
    assert!(err.contains("in use by another Hindsight process"), "{err}");
}

#[test]
fn the_daemon_prunes_delivered_notifications_past_their_keep() {
    // `run --once` twice: the first reviews the samples and delivers them to a folder; the
    // second, past `retention.notifications`, removes what was delivered.
    let dir = tempfile::tempdir().unwrap();
    let config = DaemonConfig::new()
        .listen("")
        .directory_source("examples", &repo().join("examples/incidents"))
        .folder("flow", &dir.path().join("out"))
        .set("write", ["json"])
        .retention("notifications", "1s")
        .write_in(dir.path());
    let state = dir.path().join("state");
    let run = || ok(&state, &["run", "--once", "--config", config.to_str().unwrap()]);
    run();
    let delivered = json(&ok(&state, &["outbox", "list", "--state", "delivered", "--format", "json"]));
    let n = delivered.as_array().unwrap().len();
    assert!(n > 0, "the first pass delivers");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    run();
    let left = json(&ok(&state, &["outbox", "list", "--format", "json"]));
    assert_eq!(left.as_array().unwrap().len(), 0, "{left}");
    assert_eq!(std::fs::read_dir(dir.path().join("out")).unwrap().count(), n, "what was sent stays sent");
}
