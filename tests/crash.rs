//! Crash safety of the real binary: a backlog of resolved incidents in the Graph fake, and the
//! daemon killed with SIGKILL at random moments (no shutdown, no flush) and started again on the
//! same store, over and over. At the end every incident has exactly one review per resolution,
//! the webhook receiver and the SMTP server have every notification at least once, and a repeat
//! always carries the idempotency key of the first (webhook-id, Message-ID).
//!
//! A second run kills the daemon while it hunts in the tenant and writes reviews back: each
//! incident must end with exactly one comment of Hindsight's and one amended review.
//!
//! `HINDSIGHT_CRASH_INCIDENTS` (default 1,000), `HINDSIGHT_CRASH_KILLS` (default 50) and
//! `HINDSIGHT_CRASH_SEED` (default: random, printed) size and replay a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fakes;
mod rig;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use fakes::graph::FakeGraph;
use fakes::smtp::FakeSmtp;
use hindsight::outbox::EntryState;
use rand::{Rng, SeedableRng};
use rig::{Rig, creds, hook_events, hook_ids, resolved_ago};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_no_review_and_no_notification() {
    let total = setting("HINDSIGHT_CRASH_INCIDENTS", 1000) as usize;
    let kills = setting("HINDSIGHT_CRASH_KILLS", 50) as usize;
    let seed = setting("HINDSIGHT_CRASH_SEED", rand::rng().random());
    eprintln!("crash run: {total} incidents, {kills} kills, HINDSIGHT_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let graph = FakeGraph::start(creds()).await;
    // Resolved over the last day, before the daemon's first start: a backfill.
    for n in 0..total {
        graph.upsert(resolved_ago(&format!("9{n:05}"), (n % 1200) as i64, 1 + n % 3));
    }
    let (hook, url) = fakes::receiver::start().await;
    // A receiver taking 100 ms an answer (4 at a time: at most 40 webhooks/s) keeps the work
    // going across the kills: without it the backlog was all delivered after about 40 of them,
    // and the rest would hit an idle daemon.
    hook.lock().unwrap().delay = Some(Duration::from_millis(100));
    let smtp = FakeSmtp::start().await;
    let rig = Rig::with(
        rig::config(&graph, &url, Some(&smtp)).set_in("contoso", "backfill", "1d").delivery("concurrency", 4),
    );

    // Counted from headers: parsing every body at each look would starve the daemon.
    let done = |hook: &fakes::receiver::Shared| {
        hook.lock().unwrap().received.len() >= total
            && smtp.count() >= total
            && hook_ids(hook).len() == total
            && smtp.message_ids().len() == total
    };
    let started = Instant::now();
    let mut progress = Vec::new();
    let mut killed = 0;
    while killed < kills {
        let mut daemon = rig.start(&[("HINDSIGHT_LOG", "hindsight=info")]);
        // A quarter of the kills land in start-up (opening the store, which replays sled's log,
        // and loading the catalog), the rest up to 2 s after it, while polling, reviewing and
        // delivering: start-up grows with the store, and a fixed window would end up hitting
        // nothing else.
        let in_start_up = rng.random_bool(0.25);
        let t0 = Instant::now();
        if in_start_up {
            tokio::time::sleep(Duration::from_millis(rng.random_range(5..800))).await;
        } else {
            rig::until(Duration::from_secs(120), "start-up", &daemon, || {
                daemon.log().contains("hindsight::daemon: ready")
            })
            .await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..2000))).await;
        }
        let alive = t0.elapsed();
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("the daemon exited by itself ({status}) before the kill; its log:\n{}", daemon.log());
        }
        daemon.kill9();
        killed += 1;
        let (webhooks, mails) = (hook_ids(&hook).len(), smtp.message_ids().len());
        progress.push((if in_start_up { "start-up" } else { "running" }, alive.as_millis(), webhooks, mails));
        if done(&hook) {
            // Everything arrived before every kill was spent: the later kills would only hit an
            // idle daemon, so stop here and say so.
            eprintln!("all delivered after {killed} kills");
            break;
        }
    }
    let kills_mid_work = progress.iter().filter(|(_, _, w, m)| *w < total || *m < total).count();
    eprintln!("kills (phase, alive ms, webhooks, mails so far): {progress:?}");

    // The last start runs to the end.
    let mut daemon = rig.start(&[("HINDSIGHT_LOG", "hindsight=info")]);
    rig::until(Duration::from_secs(600), "every notification after the last restart", &daemon, || done(&hook)).await;
    // Everything may have arrived before this start: the signal waits for the handler.
    rig::until(Duration::from_secs(120), "start-up", &daemon, || daemon.log().contains("hindsight::daemon: ready"))
        .await;
    daemon.signal("-TERM");
    let (status, _) = daemon.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status:?}; log:\n{}", daemon.log());
    let elapsed = started.elapsed();

    // Webhooks: every incident, one event id per resolution; a repeat is the same event id.
    let (incidents, ids) = hook_events(&hook);
    assert_eq!(incidents.len(), total, "incidents notified by webhook");
    assert_eq!(ids.len(), total, "one webhook-id per resolution");
    let mut ids_by_incident: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (headers, body) in &hook.lock().unwrap().received {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        let incident = v["review"]["incident"]["id"].as_str().unwrap().to_owned();
        ids_by_incident.entry(incident).or_default().insert(headers["webhook-id"].to_str().unwrap().to_owned());
    }
    let split: Vec<_> = ids_by_incident.iter().filter(|(_, ids)| ids.len() != 1).collect();
    assert!(split.is_empty(), "incidents notified under more than one webhook-id: {split:?}");
    let hook_sent: usize = ids.values().sum();

    // E-mail: one Message-ID per resolution; a repeat carries the same Message-ID.
    let mails = smtp.message_ids();
    assert_eq!(mails.len(), total, "distinct Message-IDs");
    assert!(!mails.contains_key("(none)"), "a message without a Message-ID");
    let mail_sent: usize = mails.values().sum();

    // The store: opens cleanly, one review per resolution, nothing pending, everything delivered.
    let store = hindsight::store::Store::open(&rig.state().join("store")).expect("the store opens after the kills");
    let resolutions: Vec<_> = store.resolutions().collect::<Result<_, _>>().unwrap();
    assert_eq!(resolutions.len(), total, "resolutions");
    let mut per_incident: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for r in &resolutions {
        per_incident.entry(&r.incident_id).or_default().push(r.revision);
        let key = hindsight::store::ResolutionKey::new(&r.source, &r.incident_id, r.revision);
        assert!(store.review(&key).unwrap().is_some(), "no review for {}#{}", r.incident_id, r.revision);
    }
    assert!(per_incident.values().all(|revs| revs == &[1]), "an incident resolved once got another revision");
    assert_eq!(store.review_count(), total, "reviews");
    assert_eq!(store.pending_count(), 0, "reviews still queued");
    let entries = store.outbox_entries().unwrap();
    assert_eq!(entries.len(), 2 * total, "outbox entries (webhook and e-mail per review)");
    let undelivered: Vec<_> = entries.iter().filter(|e| !matches!(e.state, EntryState::Delivered { .. })).collect();
    assert!(undelivered.is_empty(), "{} outbox entries not delivered: {:?}", undelivered.len(), undelivered.first());

    if std::env::var_os("HINDSIGHT_CRASH_KEEP").is_some() {
        // For a look at the daemons' logs and the store afterwards.
        eprintln!("kept: {}", rig.dir.path().display());
        std::mem::forget(rig);
    }
    let share = |sent: usize| 100.0 * (sent - total) as f64 / total as f64;
    eprintln!(
        "crash run done in {elapsed:.1?}: {killed} SIGKILLs ({kills_mid_work} with work outstanding); \
         {total} reviews; webhooks {hook_sent} sent for {total} ({:.1} % repeats, same webhook-id); \
         e-mails {mail_sent} for {total} ({:.1} % repeats, same Message-ID)",
        share(hook_sent),
        share(mail_sent),
    );
}

/// The tenant loop under SIGKILL: write-back, retro-hunts and the deployed rules all on, the
/// daemon killed at random moments while it reviews, hunts (each query takes 150 ms) and writes
/// back. At the end each incident carries exactly one comment of Hindsight's and its tags, each
/// review was amended with its hunts and announced once per event, nothing is left queued, and
/// no incident got a second revision from the daemon's own writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_hunts_and_write_back_posts_nothing_twice_and_loses_nothing() {
    let total = setting("HINDSIGHT_CRASH_TENANT_INCIDENTS", 30) as usize;
    let kills = setting("HINDSIGHT_CRASH_TENANT_KILLS", 15) as usize;
    let seed = setting("HINDSIGHT_CRASH_SEED", rand::rng().random());
    eprintln!("tenant-loop crash run: {total} incidents, {kills} kills, HINDSIGHT_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let graph = FakeGraph::start(creds()).await;
    graph.set_hunt_latency(Some(Duration::from_millis(150)));
    graph.set_hunts_per_minute(100_000);
    graph.set_hunt_result(
        "DeviceProcessEvents",
        &[("DeviceName", "string")],
        vec![serde_json::json!({"DeviceName": "fab-app-03"})],
    );
    let ids: Vec<String> = (0..total).map(|n| format!("8{n:04}")).collect();
    for id in &ids {
        graph.upsert(rig::recent_sample("ransomware-unattended-alert", id));
    }
    let (hook, url) = fakes::receiver::start().await;
    let rig = Rig::with(
        rig::config(&graph, &url, None)
            .route("events", serde_json::json!(["review.created", "review.hunted"]))
            .set_in("contoso", "backfill", "1d")
            .set_in("contoso", "write_back", true)
            .set_in("contoso", "detection_rules", true)
            .set_in("contoso", "hunts", true)
            .set_in("contoso", "hunts_per_incident", 3)
            .set_in("contoso", "hunts_per_hour", 100_000),
    );
    let ours = |id: &str| -> usize {
        let i = graph.incident(id).unwrap();
        i["comments"].as_array().map_or(0, |c| {
            c.iter().filter(|c| c["comment"].as_str().is_some_and(|t| t.starts_with("[Hindsight review"))).count()
        })
    };
    let done = || {
        hook_ids(&hook).len() == 2 * total
            && ids.iter().all(|id| ours(id) == 1)
            && ids.iter().all(|id| {
                graph.incident(id).unwrap()["customTags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "hindsight:reviewed"))
            })
    };
    let mut killed = 0;
    while killed < kills && !done() {
        let mut daemon = rig.start(&[("HINDSIGHT_LOG", "hindsight=info")]);
        rig::until(Duration::from_secs(120), "start-up", &daemon, || daemon.log().contains("hindsight::daemon: ready"))
            .await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("the daemon exited by itself ({status}) before the kill; its log:\n{}", daemon.log());
        }
        daemon.kill9();
        killed += 1;
    }
    let hunts_before_last = graph.hunt_calls().len();
    let mut daemon = rig.start(&[("HINDSIGHT_LOG", "hindsight=info")]);
    rig::until(Duration::from_secs(300), "every review hunted, announced and written back", &daemon, done).await;
    rig::until(Duration::from_secs(120), "start-up", &daemon, || daemon.log().contains("hindsight::daemon: ready"))
        .await;
    // A few more polls over incidents the daemon wrote to.
    tokio::time::sleep(Duration::from_secs(5)).await;
    daemon.signal("-TERM");
    let (status, _) = daemon.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status:?}; log:\n{}", daemon.log());

    for id in &ids {
        assert_eq!(ours(id), 1, "incident {id}: Hindsight's comments");
    }
    let (_, event_ids) = hook_events(&hook);
    assert_eq!(event_ids.len(), 2 * total, "one review.created and one review.hunted per incident");
    let store = hindsight::store::Store::open(&rig.state().join("store")).expect("the store opens after the kills");
    assert_eq!(store.review_count(), total);
    assert!(store.hunts_queued().unwrap().is_empty(), "hunts still queued");
    for r in store.resolutions() {
        let r = r.unwrap();
        assert_eq!(r.revision, 1, "incident {} got a second revision", r.incident_id);
        let key = hindsight::store::ResolutionKey::new(&r.source, &r.incident_id, r.revision);
        let hunted = store.review(&key).unwrap().unwrap().retro_hunts.expect("amended with its hunts");
        assert_eq!(hunted.results.len(), 3);
    }
    let undelivered: Vec<_> = store
        .outbox_entries()
        .unwrap()
        .into_iter()
        .filter(|e| !matches!(e.state, EntryState::Delivered { .. }))
        .collect();
    assert!(undelivered.is_empty(), "{} outbox entries not delivered: {:?}", undelivered.len(), undelivered.first());
    // A query cut off by a kill runs again; a finished one does not.
    let calls = graph.hunt_calls().len();
    assert!(
        calls >= 3 * total && calls <= 3 * total + killed,
        "{calls} hunting queries for {} hunts and {killed} kills",
        3 * total
    );
    eprintln!(
        "tenant-loop crash run: {killed} SIGKILLs; {calls} hunting queries for {} hunts ({hunts_before_last} before the last start); every incident written back once",
        3 * total
    );
}
