//! Retention on a real sled store: reviews, delivered notifications and dead letters age out
//! after their keep and not before, pending work never does, the outbox counts follow, an
//! incident seen again after its review aged out gets the next revision, a store of schema 2
//! gets the indexes retention reads, and the incident history is kept 180 days.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use hindsight::clock::{Clock, ManualClock};
use hindsight::notify::Subscription;
use hindsight::outbox::EntryState;
use hindsight::review::Engine;
use hindsight::store::{Observed, Pruned, ResolutionKey, Retention, Store};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const DAY: Duration = Duration::from_secs(86_400);

fn everything(keep_reviews: Duration) -> Retention {
    Retention { reviews: Some(keep_reviews), notifications: Some(DAY), dead_letters: Some(7 * DAY) }
}

/// The sample incidents, reviewed at the clock's time with one subscribed destination.
async fn reviewed_store(path: &std::path::Path, clock: &ManualClock) -> (Store, Vec<ResolutionKey>) {
    let store = Store::open(path).unwrap();
    common::ingest_examples(&store, clock).await;
    let catalog = std::sync::Arc::new(hindsight::attack::store::embedded().unwrap());
    let engine = Engine::new(catalog.clone(), None, None, hindsight::review::Settings::default());
    let subs = vec![Subscription::everything("soc")];
    let n = hindsight::stages::review::review_pending(&store, &engine, &subs, 100, clock.now()).unwrap();
    assert!(n.reviewed > 0, "the examples give reviews");
    let keys = store
        .resolutions()
        .map(|r| {
            let r = r.unwrap();
            ResolutionKey::new(&r.source, &r.incident_id, r.revision)
        })
        .collect();
    (store, keys)
}

/// Prunes until nothing is left, in small batches.
fn prune_all(store: &Store, policy: &Retention, now: DateTime<Utc>) -> Pruned {
    let mut total = Pruned::default();
    loop {
        let p = store.prune(policy, now, 2).unwrap();
        total.add(&p);
        if !p.more {
            return total;
        }
    }
}

fn all_summaries(store: &Store) -> usize {
    store.summaries_between(t("2000-01-01T00:00:00Z"), t("2100-01-01T00:00:00Z")).unwrap().len()
}

/// The follow-up IDs the stored summaries name.
fn follow_up_ids(store: &Store) -> Vec<String> {
    let all = store.summaries_between(t("2000-01-01T00:00:00Z"), t("2100-01-01T00:00:00Z")).unwrap();
    let mut ids: Vec<String> = all.into_iter().flat_map(|s| s.follow_ups.into_iter().map(|(id, _)| id)).collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test]
async fn reviews_age_out_with_their_snapshots_and_leave_a_compact_incident() {
    let dir = tempfile::tempdir().unwrap();
    let reviewed_at = t("2026-11-20T12:00:00Z");
    let clock = ManualClock::new(reviewed_at);
    let (store, keys) = reviewed_store(&dir.path().join("store"), &clock).await;
    let n = keys.len();
    assert_eq!(store.review_count(), n);
    let texts = follow_up_ids(&store);
    assert!(!texts.is_empty() && texts.iter().all(|id| store.follow_up(id).unwrap().is_some()));
    let keep = Retention { reviews: Some(30 * DAY), ..Retention::default() };

    let at = reviewed_at + chrono::Duration::days(30) - chrono::Duration::seconds(1);
    let aged = aged_history(&store, at);
    let early = prune_all(&store, &keep, at);
    // The incident history keeps 180 days from each incident's creation, whatever the reviews'
    // keep: a sample from June has aged out of it by December.
    assert_eq!(early.history, aged, "history older than 180 days goes");
    assert_eq!(early.total() - early.history, 0, "nothing before its keep is up");
    assert_eq!(store.review_count(), n);

    let late = prune_all(&store, &keep, reviewed_at + chrono::Duration::days(30) + chrono::Duration::seconds(1));
    assert_eq!(late.reviews, n);
    assert_eq!(store.review_count(), 0);
    assert_eq!(all_summaries(&store), 0, "the digest's summaries go with their reviews");
    assert_eq!(store.resolutions().count(), 0, "and the snapshots they were made from");
    assert!(texts.iter().all(|id| store.follow_up(id).unwrap().is_none()), "and the follow-ups only they raised");
    assert_eq!(prune_all(&store, &keep, reviewed_at + chrono::Duration::days(60)).total(), 0, "each goes once");

    // What stays of the incident is what ingesting a later update needs.
    let k = &keys[0];
    let r = String::from_utf8_lossy(&k.0).into_owned();
    let id = r.split('\0').nth(1).unwrap().to_owned();
    let record = store.incident("examples", &id).unwrap().unwrap();
    assert!(record.raw.get() == "null" && record.header.alerts.is_empty() && record.header.comments.is_empty());
    assert!(record.header.title.is_empty() && record.header.status == hindsight::model::IncidentStatus::Resolved);
    assert_eq!(record.resolutions, 1);

    // Updated while still resolved: a newer snapshot, no new review. Then re-opened and
    // resolved again: revision 2, not a second revision 1 (whose idempotency keys were used).
    let later = |status: &str, at: &str| {
        let raw = serde_json::json!({"id": id, "status": status, "lastUpdateDateTime": at, "alerts": []});
        Observed::from_value(&raw).unwrap()
    };
    let now = reviewed_at + chrono::Duration::days(61);
    let out = store.ingest("examples", &[later("resolved", "2027-01-25T00:00:00Z")], None, None, now).unwrap();
    assert_eq!((out.stored, out.resolutions.len()), (1, 0));
    // The pruned resolution stays gone: the newer snapshot is not taken for it.
    assert!(store.resolution(k).unwrap().is_none());
    assert_eq!(store.resolutions().count(), 0);
    let out = store
        .ingest(
            "examples",
            &[later("active", "2027-01-26T00:00:00Z"), later("resolved", "2027-01-27T00:00:00Z")],
            None,
            None,
            now,
        )
        .unwrap();
    assert_eq!(out.resolutions, [ResolutionKey::new("examples", &id, 2)]);
}

#[tokio::test]
async fn a_store_pruned_and_reopened_reads_the_same() {
    // Retention writes many small transactions; what it left must be what a reopen reads.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let reviewed_at = t("2026-11-20T12:00:00Z");
    let clock = ManualClock::new(reviewed_at);
    let (store, keys) = reviewed_store(&path, &clock).await;
    let keep = Retention { reviews: Some(30 * DAY), ..Retention::default() };
    // Half of the reviews made later: only the older half ages out.
    let later = reviewed_at + chrono::Duration::days(10);
    let catalog = std::sync::Arc::new(hindsight::attack::store::embedded().unwrap());
    let engine = Engine::new(catalog.clone(), None, None, hindsight::review::Settings::default());
    let sample = store.resolution(&keys[0]).unwrap().unwrap();
    let mut fresh = Vec::new();
    for i in 0..3 {
        let mut raw: serde_json::Value = serde_json::from_str(sample.raw.get()).unwrap();
        raw["id"] = serde_json::json!(format!("later-{i}"));
        fresh.push(Observed::from_value(&raw).unwrap());
    }
    store.ingest("examples", &fresh, None, None, later).unwrap();
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, later).unwrap();
    let removed = prune_all(&store, &keep, reviewed_at + chrono::Duration::days(31));
    assert_eq!(removed.reviews, keys.len());
    store.flush().unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.review_count(), 3);
    assert_eq!(all_summaries(&store), 3);
    // Follow-ups the later reviews raised too (the same detections to add) keep their text.
    let left = follow_up_ids(&store);
    assert!(!left.is_empty());
    for id in &left {
        assert!(store.follow_up(id).unwrap().is_some(), "the text of {id}, raised by a review still kept");
    }
    assert!(store.review(&ResolutionKey::new("examples", "later-0", 1)).unwrap().is_some());
    assert_eq!(prune_all(&store, &keep, later + chrono::Duration::days(31)).reviews, 3);
}

#[tokio::test]
async fn delivered_and_dead_notifications_age_out_pending_ones_never() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let at = t("2026-11-20T12:00:00Z");
    let clock = ManualClock::new(at);
    let (store, _) = reviewed_store(&path, &clock).await;
    let mut entries = store.outbox_entries().unwrap();
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    assert!(entries.len() >= 3, "one notification per review");
    // One dead-lettered, one still pending, the rest delivered, each at `at`.
    let mut dead = entries[0].clone();
    dead.state = EntryState::Dead { at, reason: "410 Gone".into() };
    store.update_outbox(&dead).unwrap();
    let pending = entries[1].id.clone();
    for e in &entries[2..] {
        let mut d = e.clone();
        d.state = EntryState::Delivered { at };
        store.update_outbox(&d).unwrap();
    }
    let delivered = entries.len() - 2;
    let policy = Retention { reviews: None, ..everything(DAY) };
    let hour = chrono::Duration::hours(1);

    assert_eq!(prune_all(&store, &policy, at + chrono::Duration::days(1) - hour).total(), 0);
    let p = prune_all(&store, &policy, at + chrono::Duration::days(1) + hour);
    assert_eq!((p.notifications, p.dead_letters), (delivered, 0));
    let p = prune_all(&store, &policy, at + chrono::Duration::days(7) + hour);
    assert_eq!((p.notifications, p.dead_letters), (0, 1));
    let p = prune_all(&store, &policy, at + chrono::Duration::days(365));
    // A year on, only the incident history (kept 180 days whatever the policy) goes.
    assert_eq!((p.reviews, p.notifications, p.dead_letters), (0, 0, 0));
    assert_eq!(p.total(), p.history);
    let left: Vec<String> = store.outbox_entries().unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(left, vec![pending.clone()], "the pending notification stays, however old");
    let counts: Vec<_> = store.outbox_counts().unwrap().into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(counts, vec![(("soc".to_owned(), "pending"), 1)]);
    store.flush().unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let counts: Vec<_> = store.outbox_counts().unwrap().into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(counts, vec![(("soc".to_owned(), "pending"), 1)], "the counts agree with a fresh read");
}

#[tokio::test]
async fn a_dead_letter_retried_is_not_pruned_by_its_old_time() {
    let dir = tempfile::tempdir().unwrap();
    let at = t("2026-11-20T12:00:00Z");
    let clock = ManualClock::new(at);
    let (store, _) = reviewed_store(&dir.path().join("store"), &clock).await;
    let mut e = store.outbox_entries().unwrap().remove(0);
    e.state = EntryState::Dead { at, reason: "timeout".into() };
    store.update_outbox(&e).unwrap();
    // `hindsight outbox retry`: pending again, then delivered much later.
    e.state = EntryState::Pending;
    store.update_outbox(&e).unwrap();
    let delivered_at = at + chrono::Duration::days(20);
    e.state = EntryState::Delivered { at: delivered_at };
    store.update_outbox(&e).unwrap();
    let policy = Retention { reviews: None, ..everything(DAY) };
    let p = prune_all(&store, &policy, at + chrono::Duration::days(10));
    assert_eq!(p.dead_letters, 0);
    assert!(store.outbox_entry(&e.id).unwrap().is_some());
    let p = prune_all(&store, &policy, delivered_at + chrono::Duration::days(2));
    assert!(p.notifications >= 1);
    assert!(store.outbox_entry(&e.id).unwrap().is_none());
}

#[tokio::test]
async fn a_store_of_schema_2_gets_the_indexes_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let at = t("2026-11-20T12:00:00Z");
    let clock = ManualClock::new(at);
    let n;
    {
        let (store, keys) = reviewed_store(&path, &clock).await;
        n = keys.len();
        for e in store.outbox_entries().unwrap() {
            let mut d = e.clone();
            d.state = EntryState::Delivered { at };
            store.update_outbox(&d).unwrap();
        }
        store.flush().unwrap();
    }
    {
        // sled lets go of its lock from its flusher thread, a moment after the last handle.
        let db = (0..50)
            .find_map(|_| {
                sled::open(&path).ok().or_else(|| {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    None
                })
            })
            .expect("the store's lock is released");
        db.open_tree("meta").unwrap().insert("schema_version", &2u32.to_be_bytes()).unwrap();
        db.drop_tree("reviewed").unwrap();
        db.drop_tree("settled").unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(&path).unwrap();
    // Reviews of schema 2 are aged from their incidents' resolution (earlier than the review).
    let p = prune_all(&store, &everything(DAY), at + chrono::Duration::days(2));
    assert_eq!((p.reviews, p.notifications), (n, n));
    assert_eq!(store.review_count(), 0);
    assert!(store.outbox_entries().unwrap().is_empty());
}

#[tokio::test]
async fn the_incident_history_is_written_with_the_review_and_ages_out_after_180_days() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let reviewed_at = t("2026-11-20T12:00:00Z");
    let clock = ManualClock::new(reviewed_at);
    let (store, keys) = reviewed_store(&path, &clock).await;
    let mut ids: Vec<String> =
        keys.iter().map(|k| String::from_utf8_lossy(&k.0).split('\0').nth(1).unwrap().to_owned()).collect();
    ids.sort();
    ids.dedup();
    let history = store.history("examples").unwrap();
    let mut stored: Vec<String> = history.incidents.iter().map(|p| p.id.clone()).collect();
    stored.sort();
    assert_eq!(stored, ids, "one compact record per reviewed incident");
    let times: Vec<_> = history.incidents.iter().map(|p| p.created.unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    assert!(store.history("elsewhere").unwrap().incidents.is_empty(), "each source its own");

    // The reviews' shorter keep leaves it: recurrence is judged over six months.
    let keep = Retention { reviews: Some(30 * DAY), ..Retention::default() };
    let at = reviewed_at + chrono::Duration::days(31);
    let aged = aged_history(&store, at);
    let history: Vec<_> = history
        .incidents
        .into_iter()
        .filter(|p| p.created.is_none_or(|c| c >= at - chrono::Duration::days(180)))
        .collect();
    let p = prune_all(&store, &keep, at);
    assert_eq!((p.reviews, p.history), (keys.len(), aged), "only incidents older than 180 days leave the history");
    store.flush().unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.history("examples").unwrap().incidents, history, "as stored, after a reopen");

    let oldest = *times.last().unwrap();
    let newest = times[0];
    assert_eq!(prune_all(&store, &keep, oldest + chrono::Duration::days(179)).history, 0);
    let p = prune_all(&store, &keep, newest + chrono::Duration::days(181));
    assert_eq!(p.history, ids.len() - aged, "the rest, which the earlier prune left");
    assert!(store.history("examples").unwrap().incidents.is_empty());
}

/// Incidents of the stored history created more than 180 days before `at`.
fn aged_history(store: &Store, at: chrono::DateTime<chrono::Utc>) -> usize {
    let horizon = at - chrono::Duration::days(180);
    store.history("examples").unwrap().incidents.iter().filter(|p| p.created.is_some_and(|c| c < horizon)).count()
}
