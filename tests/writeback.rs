//! Write-back: a review written onto its Defender incident (one comment with a marker, tags
//! merged into `customTags`) against the Graph fake's incident write endpoints, kept to
//! shared/specs/graph-hunting-rules-writeback.md §3 — retried writes that post nothing twice,
//! another writer's tags kept, incidents reopened or carrying a later review left alone, each
//! failure classed as worth retrying or not — and end to end through the real daemon, where
//! the write's own `lastUpdateDateTime` bump must not start a new review.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fakes;
mod rig;

use std::time::Duration;

use fakes::graph::{FakeGraph, Fault};
use hindsight::notify::DeliveryError;
use hindsight::source::graph::GraphConfig;
use hindsight::source::graph::writeback::{IncidentWriter, Writing};
use rig::{Rig, SECRET, creds, hook_events, ready, resolved, until};
use serde_json::json;

fn writer(graph: &FakeGraph) -> IncidentWriter {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg: GraphConfig = serde_json::from_value(json!({
        "name": "contoso", "tenant_id": "contoso.onmicrosoft.com", "client_id": "app-1", "client_secret": SECRET,
        "graph_url": graph.graph_url(), "login_url": graph.login_url(), "insecure_loopback": true,
        "retry_base": "10ms", "retry_max": "200ms", "request_timeout": "2s", "max_attempts": 3, "write_back": true
    }))
    .unwrap();
    IncidentWriter::new(&cfg).unwrap()
}

fn tags() -> Vec<String> {
    vec!["hindsight:reviewed".into(), "hindsight:blind-initial-access".into()]
}

fn writing<'a>(id: &'a str, revision: u32, comment: &'a str, tags: &'a [String]) -> Writing<'a> {
    Writing { incident_id: id, revision, comment, tags }
}

fn comments(graph: &FakeGraph, id: &str) -> Vec<String> {
    let i = graph.incident(id).unwrap();
    i["comments"]
        .as_array()
        .map(|a| a.iter().map(|c| c["comment"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Webhook deliveries received, repeats included.
fn received(hook: &fakes::receiver::Shared) -> usize {
    hook.lock().unwrap().received.len()
}

fn custom_tags(graph: &FakeGraph, id: &str) -> Vec<String> {
    serde_json::from_value(graph.incident(id).unwrap()["customTags"].clone()).unwrap_or_default()
}

#[tokio::test]
async fn a_review_is_written_once_however_often_it_is_retried() {
    let graph = FakeGraph::start(creds()).await;
    graph.upsert(resolved("7001"));
    let w = writer(&graph);
    let tags = tags();
    let text = "[Hindsight review r1]\nTrue positive";
    let done = w.write(&writing("7001", 1, text, &tags)).await.unwrap();
    assert!(done.commented && done.tagged && done.skipped.is_none(), "{done:?}");
    assert!(done.last_update.is_some(), "the PATCH's lastUpdateDateTime is kept");
    assert_eq!(comments(&graph, "7001"), [text]);
    assert_eq!(custom_tags(&graph, "7001"), tags);

    // The same write again (a delivery retried after a crash): nothing posted, nothing patched.
    let again = w.write(&writing("7001", 1, text, &tags)).await.unwrap();
    assert!(!again.commented && !again.tagged, "{again:?}");
    assert_eq!(graph.writes().len(), 2, "{:?}", graph.writes());

    // Revision 2's comment is applied but its answer is lost: the write fails as retryable, and
    // the retry finds the comment by its marker instead of posting it again.
    graph.lose_next_write_answer();
    let text2 = "[Hindsight review r2]\nTrue positive, again";
    let lost = w.write(&writing("7001", 2, text2, &tags)).await.unwrap_err();
    assert!(matches!(lost, hindsight::source::graph::GraphError::Transient { .. }), "{lost}");
    let retried = w.write(&writing("7001", 2, text2, &tags)).await.unwrap();
    assert!(!retried.commented, "{retried:?}");
    assert_eq!(comments(&graph, "7001"), [text, text2]);
}

#[tokio::test]
async fn the_tags_are_merged_and_another_writers_tags_are_kept() {
    let graph = FakeGraph::start(creds()).await;
    let mut incident = resolved("7002");
    incident["customTags"] = json!(["Ransomware", "hindsight:blind-execution"]);
    graph.upsert(incident);
    // An analyst adds a tag between our first read and our tag write.
    graph.interleave_tags(&["Ransomware", "hindsight:blind-execution", "vip"]);
    let tags = tags();
    writer(&graph).write(&writing("7002", 1, "[Hindsight review r1]\n", &tags)).await.unwrap();
    assert_eq!(
        custom_tags(&graph, "7002"),
        ["Ransomware", "vip", "hindsight:reviewed", "hindsight:blind-initial-access"],
        "the analyst's tags kept in their order; an earlier review's blind-stage tag replaced"
    );
}

#[tokio::test]
async fn nothing_is_written_to_a_reopened_incident_or_over_a_later_review() {
    let graph = FakeGraph::start(creds()).await;
    let mut active = resolved("7003");
    active["status"] = json!("active");
    graph.upsert(active);
    let tags = tags();
    let w = writer(&graph);
    let r = w.write(&writing("7003", 1, "[Hindsight review r1]\n", &tags)).await.unwrap();
    assert!(r.skipped.as_deref().unwrap().contains("is active now"), "{r:?}");

    let mut later = resolved("7004");
    later["comments"] = json!([{"comment": "[Hindsight review r3]\nthird", "createdByDisplayName": "Hindsight"}]);
    graph.upsert(later);
    let r = w.write(&writing("7004", 2, "[Hindsight review r2]\n", &tags)).await.unwrap();
    assert!(r.skipped.as_deref().unwrap().contains("revision 3"), "{r:?}");
    assert!(graph.writes().is_empty(), "{:?}", graph.writes());
}

/// What the deliver stage is told: throttling is retried when Graph says, a missing permission
/// or incident is not retried, and the permission is named.
#[tokio::test]
async fn failures_say_whether_another_attempt_can_help() {
    let graph = FakeGraph::start(creds()).await;
    graph.upsert(resolved("7005"));
    let tags = tags();
    let w = writer(&graph);
    let sink = |e: hindsight::source::graph::GraphError| hindsight::notify::defender::classify(e);

    graph.push_write_fault(Fault::TooManyRequests { retry_after: Some("2".into()) });
    let e = sink(w.write(&writing("7005", 1, "[Hindsight review r1]\n", &tags)).await.unwrap_err());
    assert!(matches!(e, DeliveryError::Retry { after: Some(d), .. } if d == Duration::from_secs(2)), "{e:?}");

    graph.push_write_fault(Fault::Status(500));
    let e = sink(w.write(&writing("7005", 1, "[Hindsight review r1]\n", &tags)).await.unwrap_err());
    assert!(matches!(e, DeliveryError::Retry { .. }), "{e:?}");

    graph.allow_incident_writes(false);
    let e = sink(w.write(&writing("7005", 1, "[Hindsight review r1]\n", &tags)).await.unwrap_err());
    match e {
        DeliveryError::Permanent { reason } => {
            assert!(reason.contains("SecurityIncident.ReadWrite.All") && reason.contains("posting"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    graph.allow_incident_writes(true);

    let e = sink(w.write(&writing("no-such", 1, "[Hindsight review r1]\n", &tags)).await.unwrap_err());
    assert!(matches!(&e, DeliveryError::Permanent { reason } if reason.contains("404")), "{e:?}");
    assert!(graph.writes().is_empty(), "{:?}", graph.writes());
}

/// The daemon, end to end: the review reaches the webhook and the incident (one comment, the
/// tags), and the write's own `lastUpdateDateTime` bump — or its absence — starts nothing new.
async fn written_back_once(bump: bool) {
    let graph = FakeGraph::start(creds()).await;
    graph.bump_on_write(bump);
    let (hook, url) = fakes::receiver::start().await;
    let config = rig::config(&graph, &url, None).set_in("contoso", "write_back", true);
    let rig = Rig::with(config);
    let daemon = rig.start(&[]);
    ready(rig.http, &daemon).await;
    graph.upsert(resolved("7100"));
    until(Duration::from_secs(20), "the review on the incident and at the webhook", &daemon, || {
        !comments(&graph, "7100").is_empty()
            && custom_tags(&graph, "7100").len() >= 2
            && hook_events(&hook).0.len() == 1
    })
    .await;
    let comment = &comments(&graph, "7100")[0];
    assert!(comment.starts_with("[Hindsight review r1]\n"), "{comment}");
    assert!(comment.chars().count() <= 2000);
    assert!(custom_tags(&graph, "7100").contains(&"hindsight:reviewed".to_owned()));

    // Three more polls (2 s apart) read the incident our writes touched.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(comments(&graph, "7100").len(), 1);
    let writes = graph.writes();
    assert_eq!(writes.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(), ["POST", "PATCH"], "{writes:?}");
    let (_, ids) = hook_events(&hook);
    assert_eq!((received(&hook), ids.len()), (1, 1), "no second revision, no second event: {ids:?}");
    let log = daemon.log();
    assert!(log.contains("review written back to the incident"), "{log}");
    assert!(!log.contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_writes_back_once_when_writes_move_last_update() {
    written_back_once(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_writes_back_once_when_writes_leave_last_update() {
    written_back_once(false).await;
}

/// All three tenant features at once, end to end through the daemon: the deployed rules are
/// read, the resolved incident is reviewed against them, its blind stages are hunted, the amended
/// review reaches the webhook that asked for `review.hunted`, one comment and the tags land on
/// the incident, and later polls create nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployed_rules_hunts_and_write_back_together_through_the_daemon() {
    let graph = FakeGraph::start(creds()).await;
    graph.set_detection_rules(vec![json!({
        "id": "dcsync", "displayName": "DCSync from a workstation", "status": "disabled",
        "queryCondition": {"queryText": "IdentityDirectoryEvents"},
        "detectionAction": {"alertTemplate": {"tactics": [{"tactic": "CredentialAccess", "techniques": [{"technique": "T1003.006"}]}]}}
    })]);
    graph.set_hunt_result(
        "DeviceProcessEvents",
        &[("DeviceName", "string")],
        vec![json!({"DeviceName": "fab-app-03"})],
    );
    let (hook, url) = fakes::receiver::start().await;
    let config = rig::config(&graph, &url, None)
        .route("events", json!(["review.created", "review.revised", "review.hunted"]))
        .set_in("contoso", "write_back", true)
        .set_in("contoso", "detection_rules", true)
        .set_in("contoso", "hunts", true)
        .set_in("contoso", "hunts_per_incident", 3);
    let rig = Rig::with(config);
    let daemon = rig.start(&[]);
    ready(rig.http, &daemon).await;
    graph.upsert(rig::recent_sample("ransomware-unattended-alert", "7200"));
    until(Duration::from_secs(30), "the review, its hunted amendment, the comment and the tags", &daemon, || {
        received(&hook) == 2
            && comments(&graph, "7200").iter().any(|c| c.starts_with("[Hindsight review r1]"))
            && custom_tags(&graph, "7200").len() > 2
    })
    .await;
    let bodies: Vec<serde_json::Value> =
        hook.lock().unwrap().received.iter().map(|(_, b)| serde_json::from_slice(b).unwrap()).collect();
    let by_event = |e: &str| bodies.iter().find(|b| b["event"] == e).unwrap_or_else(|| panic!("no {e}: {bodies:#?}"));
    let created = by_event("review.created");
    assert_eq!(
        created["review"]["basis"]["inventory"]["deployed"]["switched_off"], 1,
        "{}",
        created["review"]["basis"]
    );
    let hunted = by_event("review.hunted");
    assert_eq!(hunted["review"]["incident"]["revision"], 1, "the same review, amended");
    let results = hunted["review"]["retro_hunts"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "hunts_per_incident");
    assert!(results.iter().any(|r| r["status"] == "hits"), "{results:#?}");
    assert_eq!(hunted["review"]["follow_ups"][0]["kind"], "retro_hunt_hits");
    assert_eq!(graph.hunt_calls().len(), 3);

    tokio::time::sleep(Duration::from_secs(5)).await;
    let ours: Vec<String> =
        comments(&graph, "7200").into_iter().filter(|c| c.starts_with("[Hindsight review")).collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!((received(&hook), hook_events(&hook).1.len()), (2, 2), "no second revision");
    assert_eq!(graph.hunt_calls().len(), 3, "nothing hunted twice");
    let writes = graph.writes();
    assert_eq!(writes.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(), ["POST", "PATCH"], "{writes:?}");
    assert!(!daemon.log().contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_hunting_permission_and_says_write_back_is_not_tried() {
    let graph = FakeGraph::start(creds()).await;
    let (_hook, url) = fakes::receiver::start().await;
    let config = rig::config(&graph, &url, None).set_in("contoso", "write_back", true).set_in("contoso", "hunts", true);
    let rig = Rig::with(config);
    let out = rig.check().await;
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{stdout}{}", common::stderr(&out));
    assert!(stdout.contains("advanced hunting answers (ThreatHunting.Read.All)"), "{stdout}");
    assert!(
        stdout.contains("destination defender:contoso") && stdout.contains("SecurityIncident.ReadWrite.All"),
        "{stdout}"
    );
    graph.allow_hunting(false);
    let out = rig.check().await;
    let stdout = common::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("failed  source contoso") && stdout.contains("ThreatHunting.Read.All"), "{stdout}");
}

#[test]
fn a_destination_may_not_take_a_write_back_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::DaemonConfig::new().webhook("defender:contoso", "https://example.com/hook").write_in(dir.path());
    let err = hindsight::config::Config::load(Some(&path), &[]).unwrap_err().to_string();
    assert!(err.contains("destinations[0].name") && err.contains("write_back"), "{err}");
}
