//! The Graph source against an HTTP fake of Graph and of the token endpoint on 127.0.0.1
//! (tests/fakes/graph.rs, kept to the documented contract), with a real sled store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fakes;

use std::time::Duration;

use chrono::{DateTime, Utc};
use fakes::graph::{Credentials, FakeGraph, Fault};
use hindsight::clock::ManualClock;
use hindsight::source::graph::{GraphConfig, GraphSource};
use hindsight::source::{Source, SourceError};
use hindsight::store::Store;
use serde_json::{Value, json};

const SECRET: &str = "s3cr3t-Value~with.chars";

fn creds() -> Credentials {
    Credentials {
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: "app-1".into(),
        client_secret: SECRET.into(),
        ..Default::default()
    }
}

fn t0() -> DateTime<Utc> {
    "2026-11-24T12:00:00Z".parse().unwrap()
}

fn at(minutes: i64) -> String {
    (t0() + chrono::Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn incident(id: &str, status: &str, minutes: i64) -> Value {
    json!({
        "id": id, "tenantId": "t", "displayName": format!("Incident {id}"), "status": status,
        "severity": "medium", "classification": "truePositive", "determination": "malware",
        "createdDateTime": at(minutes - 60), "lastUpdateDateTime": at(minutes),
        "alerts": [{
            "id": format!("a-{id}"), "title": "Suspicious PowerShell command line", "category": "Execution",
            "mitreTechniques": ["T1059.001"], "createdDateTime": at(minutes - 59),
            "firstActivityDateTime": at(minutes - 70), "lastActivityDateTime": at(minutes - 65), "evidence": []
        }]
    })
}

fn config(fake: &FakeGraph, extra: Value) -> GraphConfig {
    let mut cfg = json!({
        "name": "contoso", "tenant_id": "contoso.onmicrosoft.com", "client_id": "app-1", "client_secret": SECRET,
        "graph_url": fake.graph_url(), "login_url": fake.login_url(), "insecure_loopback": true, "page_size": 25,
        "retry_base": "10ms", "retry_max": "500ms", "request_timeout": "2s", "max_attempts": 4
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    serde_json::from_value(cfg).unwrap()
}

struct Rig {
    fake: FakeGraph,
    dir: tempfile::TempDir,
    store: Store,
    clock: ManualClock,
}

impl Rig {
    async fn new() -> Rig {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let fake = FakeGraph::start(creds()).await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        Rig { fake, dir, store, clock: ManualClock::new(t0()) }
    }
    fn source(&self, extra: Value) -> Source {
        Source::Graph(Box::new(GraphSource::new(config(&self.fake, extra)).unwrap()))
    }
    async fn poll(&self, source: &mut Source) -> Result<hindsight::source::PollReport, SourceError> {
        source.poll(&self.store, &self.clock).await
    }
    fn cursor_last(&self) -> Option<DateTime<Utc>> {
        self.store.cursor("contoso").unwrap().and_then(|c| c.last_update)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resolved_incident_across_pages_once() {
    let rig = Rig::new().await;
    for n in 0..120 {
        let status = if n % 3 == 0 { "active" } else { "resolved" };
        rig.fake.upsert(incident(&n.to_string(), status, 1 + n));
    }
    let mut src = rig.source(json!({}));
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!((r.fetched, r.stored, r.resolutions), (120, 120, 80));
    // One token, then one request per page of 25: the floor is ceil(120 / 25) = 5 pages.
    assert_eq!(r.requests, 6);
    assert_eq!(rig.fake.token_requests(), 1);
    assert_eq!(rig.store.pending_count(), 80);
    // Every incident is stamped after the clock (t0): the cursor stays at the clock, not beyond.
    assert_eq!(rig.cursor_last(), Some(t0()));
    // Once the clock has passed them, the cursor follows the newest update.
    rig.clock.set(t0() + chrono::Duration::hours(3));
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!((r.stored, r.resolutions), (0, 0));
    assert_eq!(rig.cursor_last(), Some(t0() + chrono::Duration::minutes(120)));
    let prefer: Vec<_> = rig.fake.requests().into_iter().filter_map(|r| r.prefer).collect();
    assert!(prefer.iter().all(|p| p == "include-unknown-enum-members") && !prefer.is_empty());

    // The next pass reads the overlap again: nothing new is stored, nothing reviewed twice.
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!((r.stored, r.resolutions), (0, 0));
    assert!(r.unchanged > 0, "the overlap window re-reads recent incidents");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_neither_miss_nor_repeat_resolutions() {
    let rig = Rig::new().await;
    rig.fake.upsert(incident("1", "resolved", 1));
    {
        let mut src = rig.source(json!({}));
        assert_eq!(rig.poll(&mut src).await.unwrap().resolutions, 1);
    }
    // "Restart": a new source and a reopened store.
    let Rig { fake, dir, store, clock } = rig;
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let rig = Rig { fake, dir, store, clock };
    rig.fake.upsert(incident("2", "resolved", 2));
    let mut src = rig.source(json!({}));
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!(r.resolutions, 1, "only incident 2 is new");
    assert_eq!(rig.store.pending_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_incident_resolved_again_is_a_new_revision() {
    let rig = Rig::new().await;
    let mut src = rig.source(json!({}));
    rig.fake.upsert(incident("7", "resolved", 1));
    assert_eq!(rig.poll(&mut src).await.unwrap().resolutions, 1);
    rig.fake.upsert(incident("7", "active", 20));
    assert_eq!(rig.poll(&mut src).await.unwrap().resolutions, 0);
    rig.fake.upsert(incident("7", "resolved", 40));
    assert_eq!(rig.poll(&mut src).await.unwrap().resolutions, 1);
    let revisions: Vec<u32> = rig.store.resolutions().map(|r| r.unwrap().revision).collect();
    assert_eq!(revisions, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_incidents_updated_after_the_first_start_unless_a_backfill_is_set() {
    let rig = Rig::new().await;
    rig.fake.upsert(incident("old", "resolved", -90));
    rig.fake.upsert(incident("recent", "resolved", -30));
    rig.fake.upsert(incident("new", "resolved", 5));
    let mut src = rig.source(json!({}));
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!(r.resolutions, 1, "default backfill: none");

    let rig = Rig::new().await;
    rig.fake.upsert(incident("old", "resolved", -90));
    rig.fake.upsert(incident("recent", "resolved", -30));
    let mut src = rig.source(json!({"backfill": "1h"}));
    assert_eq!(rig.poll(&mut src).await.unwrap().resolutions, 1, "a one-hour backfill takes only 'recent'");
    // The floor stays at the first start minus the backfill, however time moves on.
    rig.clock.advance(chrono::Duration::days(2));
    rig.fake.upsert(incident("old2", "resolved", -80));
    assert_eq!(rig.poll(&mut src).await.unwrap().resolutions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_server_errors_and_broken_bodies_are_retried() {
    let rig = Rig::new().await;
    for n in 0..30 {
        rig.fake.upsert(incident(&n.to_string(), "resolved", 1 + n));
    }
    rig.fake.push_fault(Fault::TooManyRequests { retry_after: Some("0.3".into()) });
    rig.fake.push_fault(Fault::Unavailable { retry_after: None });
    rig.fake.push_fault(Fault::Status(500));
    rig.fake.push_token_fault(Fault::Status(503));
    let mut src = rig.source(json!({"max_attempts": 6}));
    let started = std::time::Instant::now();
    let r = rig.poll(&mut src).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "Retry-After: 0.3 was honoured");
    assert_eq!(r.resolutions, 30);

    rig.fake.upsert(incident("late", "resolved", 100));
    rig.fake.push_fault(Fault::TruncatedBody);
    rig.fake.push_fault(Fault::Malformed);
    rig.fake.push_fault(Fault::Status(502));
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!(r.resolutions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_times_out_and_is_retried() {
    let rig = Rig::new().await;
    rig.fake.upsert(incident("1", "resolved", 1));
    rig.fake.push_fault(Fault::Delay(Duration::from_secs(5)));
    let mut src = rig.source(json!({"request_timeout": "300ms"}));
    let started = std::time::Instant::now();
    assert_eq!(rig.poll(&mut src).await.unwrap().resolutions, 1);
    assert!(started.elapsed() < Duration::from_secs(4), "the client gave up on the slow answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_gets_exactly_one_renewal() {
    let rig = Rig::new().await;
    rig.fake.upsert(incident("1", "resolved", 1));
    let mut src = rig.source(json!({}));
    rig.poll(&mut src).await.unwrap();
    rig.fake.expire_tokens();
    rig.fake.upsert(incident("2", "resolved", 2));
    assert_eq!(rig.poll(&mut src).await.unwrap().resolutions, 1);
    assert_eq!(rig.fake.token_requests(), 2);

    // A service that keeps refusing fresh tokens is reported, not looped on.
    rig.fake.push_fault(Fault::ExpiredToken);
    rig.fake.push_fault(Fault::ExpiredToken);
    let err = rig.poll(&mut src).await.unwrap_err().to_string();
    assert!(err.contains("again after a new one was issued"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pass_leaves_the_cursor_and_the_next_pass_recovers() {
    let rig = Rig::new().await;
    rig.fake.upsert(incident("1", "resolved", 1));
    let mut src = rig.source(json!({"max_attempts": 2, "page_size": 1}));
    rig.poll(&mut src).await.unwrap();
    let before = rig.cursor_last();

    for n in 2..6 {
        rig.fake.upsert(incident(&n.to_string(), "resolved", n));
    }
    // The first page comes through, then the service fails on every attempt at the second.
    rig.fake.push_fault(Fault::Delay(Duration::ZERO));
    rig.fake.push_fault(Fault::Status(500));
    rig.fake.push_fault(Fault::Status(500));
    let err = rig.poll(&mut src).await.unwrap_err().to_string();
    assert!(err.contains("failed 2 times; last: HTTP 500"), "{err}");
    assert_eq!(rig.cursor_last(), before, "the cursor did not move on a failed pass");

    rig.clock.set(t0() + chrono::Duration::hours(1));
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!(rig.store.pending_count(), 5, "{r:?}");
    assert_eq!(rig.cursor_last(), Some(t0() + chrono::Duration::minutes(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_and_sign_in_problems_say_what_to_fix_without_the_secret() {
    let rig = Rig::new().await;
    rig.fake.push_fault(Fault::Status(403));
    let mut src = rig.source(json!({}));
    let err = rig.poll(&mut src).await.unwrap_err().to_string();
    assert!(err.contains("SecurityIncident.Read.All"), "{err}");
    assert_eq!(rig.fake.incident_requests(), 1, "a 403 is not retried");

    let mut src = rig.source(json!({"client_secret": "wrong-secret-value"}));
    let err = rig.poll(&mut src).await.unwrap_err().to_string();
    assert!(err.contains("sign-in failed (HTTP 401)") && err.contains("AADSTS"), "{err}");
    assert!(!err.contains("wrong-secret-value") && !err.contains(SECRET), "{err}");
    let debug = format!("{:?}", config(&rig.fake, json!({})));
    assert!(!debug.contains(SECRET), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_page_size_is_halved() {
    let rig = Rig::new().await;
    for n in 0..30 {
        rig.fake.upsert(incident(&n.to_string(), "resolved", 1 + n));
    }
    rig.fake.set_max_top(Some(10));
    let mut src = rig.source(json!({"page_size": 40}));
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!(r.resolutions, 30);
    let tops: Vec<String> = rig.fake.requests().iter().filter_map(|r| top_of(&r.query)).collect();
    assert_eq!(tops[..3], ["40", "20", "10"]);
}

fn top_of(query: &str) -> Option<String> {
    query.split('&').find_map(|kv| kv.strip_prefix("$top=")).map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_incidents_are_kept_or_set_aside_without_stopping_the_pass() {
    let rig = Rig::new().await;
    let mut odd = incident("odd", "someFutureStatus", 1);
    odd["severity"] = json!("Critical");
    rig.fake.upsert(odd);
    let mut shouty = incident("shouty", "Resolved", 2);
    shouty["classification"] = json!("TruePositive");
    rig.fake.upsert(shouty);
    let mut src = rig.source(json!({}));
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!((r.stored, r.resolutions), (2, 1));
    let odd = rig.store.incident("contoso", "odd").unwrap().unwrap();
    assert_eq!(odd.header.status.as_str(), "someFutureStatus");
    assert_eq!(odd.header.severity.as_str(), "Critical");
    let raw: serde_json::Value = serde_json::from_str(odd.raw.get()).unwrap();
    assert_eq!(raw["severity"], "Critical", "the raw snapshot is kept as received");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_going_through_a_storm_of_faults() {
    let rig = Rig::new().await;
    let mut src = rig.source(json!({"page_size": 7, "max_attempts": 3}));
    let faults = [
        Fault::TooManyRequests { retry_after: Some("0.01".into()) },
        Fault::Unavailable { retry_after: Some("0".into()) },
        Fault::Status(500),
        Fault::Status(504),
        Fault::TruncatedBody,
        Fault::Malformed,
        Fault::ExpiredToken,
        Fault::Delay(Duration::from_millis(50)),
    ];
    let mut expected = 0;
    let mut failures = 0;
    for round in 0..12i64 {
        for k in 0..5 {
            let id = format!("{round}-{k}");
            rig.fake.upsert(incident(&id, "resolved", round * 10 + k));
            expected += 1;
        }
        for f in faults.iter().cycle().skip(round as usize).take(4) {
            rig.fake.push_fault(f.clone());
        }
        if rig.poll(&mut src).await.is_err() {
            failures += 1;
        }
    }
    // Passes may fail under the storm; none loses anything, and a quiet pass catches up.
    while rig.poll(&mut src).await.is_err() {}
    let ids: std::collections::BTreeSet<String> = rig.store.resolutions().map(|r| r.unwrap().incident_id).collect();
    assert_eq!(ids.len(), expected, "every incident resolved exactly once ({failures} passes failed)");
    assert_eq!(rig.store.resolutions().count(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_while_paging_is_caught_by_the_next_pass() {
    // The hazard the contract describes: an item updated while the pages are read moves to the
    // front (most recent first) and shifts the rest, so one item falls between two pages.
    let rig = Rig::new().await;
    for n in 0..6 {
        rig.fake.upsert(incident(&n.to_string(), "resolved", 1 + n));
    }
    let mut src = rig.source(json!({"page_size": 2}));
    rig.fake.push_fault(Fault::Delay(Duration::ZERO));
    rig.fake.push_fault(Fault::Delay(Duration::from_millis(1500)));
    let poll = async { rig.poll(&mut src).await };
    let update = async {
        // While the second page waits, incident 0 (the oldest) is updated and moves to the front.
        tokio::time::sleep(Duration::from_millis(400)).await;
        rig.fake.upsert(incident("0", "resolved", 30));
    };
    let (first, ()) = tokio::join!(poll, update);
    let first = first.unwrap();
    let seen_first: std::collections::BTreeSet<String> =
        rig.store.resolutions().map(|r| r.unwrap().incident_id).collect();
    // Pages [5 4] [3 2] [1 0] became [5 4] [4 3] [2 1]: incident 0 was missed, 4 seen twice.
    assert_eq!(first.resolutions, 5);
    assert!(!seen_first.contains("0"), "{seen_first:?}");
    // The next pass starts from the last update stored minus the overlap: it finds incident 0.
    rig.poll(&mut src).await.unwrap();
    let ids: std::collections::BTreeSet<String> = rig.store.resolutions().map(|r| r.unwrap().incident_id).collect();
    assert_eq!(ids.len(), 6, "first pass saw {seen_first:?}");
    assert_eq!(rig.store.resolutions().count(), 6, "no resolution twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_stamped_ahead_of_the_clock_does_not_carry_the_cursor_past_later_ones() {
    // Defender's clock (or one bad record) a day ahead of ours. Were the cursor taken from that
    // stamp, the next pass would ask only for updates after tomorrow and miss every incident
    // resolved in between with a right stamp.
    let rig = Rig::new().await;
    rig.clock.set(t0() + chrono::Duration::minutes(10));
    let mut src = rig.source(json!({}));
    rig.poll(&mut src).await.unwrap();
    rig.clock.set(t0() + chrono::Duration::minutes(30));
    rig.fake.upsert(incident("ahead", "resolved", 24 * 60));
    rig.fake.upsert(incident("right", "resolved", 25));
    assert_eq!(rig.poll(&mut src).await.unwrap().resolutions, 2);
    assert_eq!(rig.cursor_last(), Some(t0() + chrono::Duration::minutes(30)), "the cursor stops at the clock");

    rig.clock.set(t0() + chrono::Duration::minutes(40));
    rig.fake.upsert(incident("later", "resolved", 35));
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!(r.resolutions, 1, "{r:?}");
    let ids: std::collections::BTreeSet<String> = rig.store.resolutions().map(|r| r.unwrap().incident_id).collect();
    assert_eq!(ids, ["ahead", "later", "right"].map(String::from).into(), "no resolution twice");
    assert_eq!(rig.store.resolutions().count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_too_large_for_any_page_is_refused_by_name_and_the_rest_are_read() {
    // An incident with 100,000 alerts (26.7 MB as JSON) among ordinary ones, with
    // the default max_page_bytes (16 MiB): the pass reads smaller pages past it, refuses it by
    // id without holding it in memory, and reviews every other incident.
    let rig = Rig::new().await;
    for n in 0..10 {
        rig.fake.upsert(incident(&n.to_string(), "resolved", 1 + n));
    }
    let mut big = incident("big", "resolved", 2);
    let alert = big["alerts"][0].clone();
    big["alerts"] = Value::Array(
        (0..100_000)
            .map(|i| {
                let mut a = alert.clone();
                a["id"] = Value::from(format!("big-{i}"));
                a
            })
            .collect(),
    );
    let size = big.to_string().len();
    eprintln!("the large incident: {size} bytes as JSON");
    assert!(size > 16 << 20, "the incident is larger than the default limit");
    rig.fake.upsert(big);
    // The fake takes seconds to write 27 MB in a debug build.
    let mut src = rig.source(json!({"page_size": 8, "request_timeout": "60s"}));
    // First started at t0 (its floor), polled an hour later, every stamp in the past.
    src.start(&rig.store, &rig.clock).await.unwrap();
    rig.clock.set(t0() + chrono::Duration::hours(1));
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!(r.resolutions, 10, "{r:?}");
    assert_eq!(r.rejected.len(), 1, "{r:?}");
    let why = &r.rejected[0];
    assert!(
        why.starts_with("incident big (updated ") && why.contains("larger than max_page_bytes (16777216 bytes)"),
        "{why}"
    );
    assert!(why.contains("Raise max_page_bytes"), "{why}");
    let ids: std::collections::BTreeSet<String> = rig.store.resolutions().map(|r| r.unwrap().incident_id).collect();
    assert!(!ids.contains("big") && ids.len() == 10, "{ids:?}");
    assert_eq!(rig.cursor_last(), Some(t0() + chrono::Duration::minutes(10)));

    // The next pass starts with the configured page size again and reads only what is new.
    rig.fake.upsert(incident("11", "resolved", 40));
    let r = rig.poll(&mut src).await.unwrap();
    assert_eq!((r.resolutions, r.rejected.len()), (1, 0), "{r:?}");
    let last = rig.fake.requests().last().map(|r| r.query.clone()).unwrap_or_default();
    assert!(last.contains("$top=8") || last.contains("%24top=8"), "{last}");
}

/// The tenant's custom detection rules, read whole across pages, both schemas as stored, and
/// a 403 that names the permission to grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_detection_rules_are_read_across_pages_and_a_403_names_the_permission() {
    let fake = FakeGraph::start(creds()).await;
    let mut rules: Vec<Value> = (0..230)
        .map(|k| {
            json!({"id": format!("rule-{k}"), "displayName": format!("Rule {k}"), "status": if k % 10 == 0 { "disabled" } else { "enabled" },
                   "queryCondition": {"queryText": "DeviceProcessEvents"}, "schedule": {"frequency": "PT1H"},
                   "detectionAction": {"alertTemplate": {"tactics": [{"tactic": "Execution", "techniques": [{"technique": "T1059", "subTechniques": ["T1059.001"]}]}]}}})
        })
        .collect();
    // One rule still in the old beta schema.
    rules
        .push(json!({"id": "7506", "displayName": "Old rule", "isEnabled": true, "queryCondition": {"queryText": "x"},
                      "detectionAction": {"alertTemplate": {"mitreTechniques": ["T1003.006"]}}}));
    fake.set_detection_rules(rules);
    let mut source = GraphSource::new(config(&fake, json!({}))).unwrap();
    let read = source.detection_rules().await.unwrap();
    assert_eq!(read.len(), 231);
    assert_eq!(read[230]["id"], "7506");
    let pages = fake.requests().iter().filter(|r| r.path.ends_with("/detectionRules")).count();
    assert_eq!(pages, 3, "100 a page, following @odata.nextLink");

    // What `hindsight inventory fetch` writes is an inventory file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("contoso.defender-detection-rules.json"), json!({"value": read}).to_string())
        .unwrap();
    let catalog = hindsight::attack::store::embedded().unwrap();
    let inv = hindsight::inventory::Inventory::load(&[dir.path().to_owned()], &catalog).unwrap();
    assert!(matches!(inv.coverage(&catalog, "T1003.006"), hindsight::inventory::Coverage::Covered { .. }));
    assert_eq!(inv.sources()[0].kind, "defender-detection-rules");

    fake.allow_detection_rules(false);
    let e = source.detection_rules().await.unwrap_err().to_string();
    assert!(e.contains("HTTP 403") && e.contains("CustomDetection.Read.All"), "{e}");
}

/// With `detection_rules` on, the source reads the tenant's rules at start and once a refresh
/// interval, stores them with when, and the review stage reviews the source's incidents against
/// them: an enabled rule covers, a disabled one is named; a 403 keeps polling and is not asked
/// again at every poll; turned off, the stored rules are forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployed_rules_are_refreshed_stored_and_reviewed_against() {
    let rig = Rig::new().await;
    let mut raw = incident("42", "resolved", 1);
    // Raised by hand: only a rule can count as coverage.
    raw["alerts"][0]["detectionSource"] = json!("manual");
    rig.fake.upsert(raw);
    let rule = |id: &str, name: &str, status: &str, technique: &str| {
        json!({"id": id, "displayName": name, "status": status, "queryCondition": {"queryText": "x"},
               "detectionAction": {"alertTemplate": {"tactics": [{"tactic": "Execution", "techniques": [{"technique": technique}]}]}}})
    };
    rig.fake.set_detection_rules(vec![
        rule("ps", "Encoded PowerShell", "enabled", "T1059.001"),
        rule("wmi", "WMI process creation", "disabled", "T1047"),
    ]);
    let rules_requests = || rig.fake.requests().iter().filter(|r| r.path.ends_with("/detectionRules")).count();
    let mut src = rig.source(json!({"detection_rules": true}));
    rig.poll(&mut src).await.unwrap();
    assert_eq!(rules_requests(), 1, "read at start");
    let stored = rig.store.deployed_rules("contoso").unwrap().expect("stored");
    assert_eq!((stored.read_at, stored.rules.len()), (t0(), 2));

    let catalog = std::sync::Arc::new(hindsight::attack::store::embedded().unwrap());
    let engine = hindsight::review::Engine::new(catalog, None, None, hindsight::review::Settings::default());
    let pass = hindsight::stages::review::review_pending(&rig.store, &engine, &[], 10, t0()).unwrap();
    assert_eq!(pass.reviewed, 1, "{pass:?}");
    let review =
        rig.store.review(&hindsight::store::ResolutionKey::new("contoso", "42", 1)).unwrap().expect("reviewed");
    let deployed = review.basis.inventory.as_ref().and_then(|i| i.deployed.clone()).expect("basis says which rules");
    assert_eq!((deployed.rules, deployed.switched_off, deployed.read_at), (2, 1, t0()));
    let c = review.gaps.coverage.iter().find(|c| c.technique == "T1059.001").unwrap();
    assert_eq!(c.state, hindsight::review::CoverageState::Inventory, "{c:#?}");
    assert!(c.rules[0].contains("Encoded PowerShell"), "{c:#?}");
    let text = hindsight::review::render::text(&review);
    assert!(text.contains("Counted against the tenant's 2 custom detection rules as read"), "{text}");

    // Within the refresh interval the rules are not read again; past it they are.
    rig.clock.set(t0() + chrono::Duration::hours(2));
    rig.poll(&mut src).await.unwrap();
    assert_eq!(rules_requests(), 1);
    rig.clock.set(t0() + chrono::Duration::hours(25));
    rig.poll(&mut src).await.unwrap();
    assert_eq!(rules_requests(), 2);
    assert_eq!(rig.store.deployed_rules("contoso").unwrap().unwrap().read_at, t0() + chrono::Duration::hours(25));

    // Without the permission: the incidents are still polled, the last rules kept, and the
    // rules not asked for again before an hour has passed.
    rig.fake.allow_detection_rules(false);
    let mut src = rig.source(json!({"detection_rules": true}));
    rig.poll(&mut src).await.unwrap();
    rig.clock.set(t0() + chrono::Duration::hours(25) + chrono::Duration::minutes(10));
    rig.poll(&mut src).await.unwrap();
    assert_eq!(rules_requests(), 3, "one refused read, not one a poll");
    assert_eq!(rig.store.deployed_rules("contoso").unwrap().unwrap().read_at, t0() + chrono::Duration::hours(25));

    // Turned off: forgotten, so reviews are not made against rules no longer read.
    let mut src = rig.source(json!({}));
    rig.poll(&mut src).await.unwrap();
    assert!(rig.store.deployed_rules("contoso").unwrap().is_none());
}

/// `hindsight check`'s probe tries the rules' permission when `detection_rules` is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_names_a_missing_detection_rules_permission() {
    let rig = Rig::new().await;
    let mut src = GraphSource::new(config(&rig.fake, json!({"detection_rules": true}))).unwrap();
    let ok = src.probe(t0()).await.unwrap();
    assert!(ok.contains("0 custom detection rules readable"), "{ok}");
    rig.fake.allow_detection_rules(false);
    let e = src.probe(t0()).await.unwrap_err().to_string();
    assert!(e.contains("CustomDetection.Read.All"), "{e}");
    // Off, the permission is not asked for.
    let mut src = GraphSource::new(config(&rig.fake, json!({}))).unwrap();
    assert!(!src.probe(t0()).await.unwrap().contains("custom detection"));
}

/// Sentinel analytics rules through Azure Resource Manager, with the Defender rules: a token
/// for ARM's own audience, every page by nextLink, a 429 waited out, and the rules counted in
/// the review (an enabled one covers, a disabled one is named); a 403 names the role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_analytics_rules_are_read_through_arm_and_reviewed_against() {
    let rig = Rig::new().await;
    let ws =
        "/subscriptions/0000-1111/resourceGroups/soc-rg/providers/Microsoft.OperationalInsights/workspaces/soc-law";
    let arm_rule = |n: usize, name: &str, enabled: bool, technique: &str| {
        json!({"id": format!("{ws}/providers/Microsoft.SecurityInsights/alertRules/{n}"), "name": n.to_string(),
               "kind": if n.is_multiple_of(2) { "Scheduled" } else { "NRT" }, "etag": "\"0\"",
               "properties": {"displayName": name, "enabled": enabled, "query": "SecurityEvent", "techniques": [technique]}})
    };
    let mut rules =
        vec![arm_rule(0, "Encoded PowerShell (Sentinel)", true, "T1059"), arm_rule(1, "LSASS access", false, "T1003")];
    rules.extend((2..5).map(|n| arm_rule(n, &format!("Rule {n}"), true, "T1021")));
    rig.fake.set_sentinel_rules(ws, rules);
    rig.fake.push_arm_fault(Fault::TooManyRequests { retry_after: Some("1".into()) });
    let mut raw = incident("43", "resolved", 1);
    raw["alerts"][0]["detectionSource"] = json!("manual");
    // Stable ARM rules name parent techniques only: a parent rule covers the parent.
    raw["alerts"][0]["mitreTechniques"] = json!(["T1059", "T1003"]);
    rig.fake.upsert(raw);
    let arm_url = format!("{}/arm", rig.fake.graph_url());
    let mut src = rig.source(json!({"sentinel_workspaces": [ws], "arm_url": arm_url}));
    rig.poll(&mut src).await.unwrap();
    let stored = rig.store.deployed_rules("contoso").unwrap().expect("stored");
    assert_eq!((stored.rules.len(), stored.sentinel.len()), (0, 5));
    assert_eq!(rig.fake.arm_requests(), 1 + 3, "a 429, then 3 pages of 2");

    let catalog = std::sync::Arc::new(hindsight::attack::store::embedded().unwrap());
    let engine = hindsight::review::Engine::new(catalog, None, None, hindsight::review::Settings::default());
    hindsight::stages::review::review_pending(&rig.store, &engine, &[], 10, t0()).unwrap();
    let review = rig.store.review(&hindsight::store::ResolutionKey::new("contoso", "43", 1)).unwrap().unwrap();
    let deployed = review.basis.inventory.as_ref().and_then(|i| i.deployed.clone()).unwrap();
    assert_eq!((deployed.kind.as_str(), deployed.rules, deployed.switched_off), ("sentinel-analytics-rules", 5, 1));
    let covered = review.gaps.coverage.iter().find(|c| c.technique == "T1059").unwrap();
    assert!(covered.rules.iter().any(|r| r.contains("Encoded PowerShell (Sentinel)")), "{covered:#?}");
    let off = review.gaps.coverage.iter().find(|c| c.technique == "T1003").unwrap();
    assert!(off.rules.is_empty() && off.disabled_rules[0].contains("LSASS access"), "{off:#?}");
    let text = hindsight::review::render::text(&review);
    assert!(text.contains("Counted against the tenant's 5 Sentinel analytics rules as read"), "{text}");

    rig.fake.allow_sentinel(false);
    let mut src = GraphSource::new(config(
        &rig.fake,
        json!({"sentinel_workspaces": [ws], "arm_url": format!("{}/arm", rig.fake.graph_url())}),
    ))
    .unwrap();
    let e = src.sentinel_rules(ws).await.unwrap_err().to_string();
    assert!(e.contains("HTTP 403") && e.contains("Microsoft Sentinel Reader") && e.contains("soc-law"), "{e}");
    // A workspace given as anything but its resource ID is refused with the key.
    let bad: Result<GraphConfig, _> = serde_json::from_value(json!({
        "name": "x", "tenant_id": "t", "client_id": "c", "client_secret": "s", "sentinel_workspaces": ["soc-law"]
    }));
    let problems = bad.unwrap().validate();
    assert!(problems.iter().any(|p| p.key == "sentinel_workspaces[0]"), "{problems:?}");
}
