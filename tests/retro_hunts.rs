//! Retro-hunts against the Graph fake's advanced hunting (shared/specs/graph-hunting-rules-writeback.md
//! §1, §7), with a real store and the real pipeline pieces: a Graph source with `hunts = true`
//! polls a resolved incident, the review stage queues its review, and the hunt stage runs the
//! blind stages' hunts within the budgets, names every hunt that could not run, waits out a
//! quota, and amends the review once (event `review.hunted`, only where a route names it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fakes;
mod rig;

use std::time::Duration;

use fakes::graph::{FakeGraph, Fault};
use hindsight::clock::SystemClock;
use hindsight::config::Config;
use hindsight::daemon::pipeline::Pipeline;
use hindsight::notify::{Route, Subscription};
use hindsight::stages::hunt::{HuntPass, hunt_queued};
use hindsight::store::{ResolutionKey, Store};
use rig::{SECRET, creds, recent_sample};
use serde_json::json;

struct Setup {
    graph: FakeGraph,
    _dir: tempfile::TempDir,
    store: Store,
    pipeline: Pipeline,
    subscriptions: Vec<Subscription>,
}

/// A Graph source on the fake with `hunts = true` and `extra` settings, and two subscriptions:
/// "hook" names review.hunted, "mail" takes every event by default.
async fn setup(extra: &[(&str, serde_json::Value)]) -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let graph = FakeGraph::start(creds()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut source = json!({
        "type": "graph", "name": "contoso", "tenant_id": "contoso.onmicrosoft.com", "client_id": "app-1",
        "client_secret": SECRET, "graph_url": graph.graph_url(), "login_url": graph.login_url(),
        "insecure_loopback": true, "retry_base": "10ms", "retry_max": "200ms", "backfill": "3650d",
        "hunts": true, "hunts_per_incident": 4
    });
    for (k, v) in extra {
        source[*k] = v.clone();
    }
    let toml = format!("[[sources]]\n{}", toml_table(&source));
    let path = dir.path().join("hindsight.toml");
    std::fs::write(&path, toml).unwrap();
    let cfg = Config::load(Some(&path), &[]).unwrap();
    let state = dir.path().join("state");
    let store = Store::open(&state.join("store")).unwrap();
    let pipeline = Pipeline::build(&cfg, &state).unwrap();
    let subscriptions = vec![
        Subscription {
            destination: "hook".into(),
            route: Route { events: vec!["review.hunted".into()], ..Default::default() },
        },
        Subscription::everything("mail"),
    ];
    Setup { graph, _dir: dir, store, pipeline, subscriptions }
}

fn toml_table(v: &serde_json::Value) -> String {
    v.as_object().unwrap().iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
}

impl Setup {
    /// Polls the source and reviews what it read; the key of incident `id`'s first resolution.
    async fn poll_and_review(&mut self, id: &str) -> ResolutionKey {
        let (source, _) = &mut self.pipeline.sources[0];
        source.poll(&self.store, &SystemClock).await.unwrap();
        let pass = hindsight::stages::review::review_pending(
            &self.store,
            &self.pipeline.engine,
            &self.subscriptions,
            100,
            chrono::Utc::now(),
        )
        .unwrap();
        assert_eq!(pass.reviewed, 1, "{pass:?}");
        ResolutionKey::new("contoso", id, 1)
    }

    async fn hunt(&self) -> HuntPass {
        hunt_queued(&self.store, &self.pipeline.hunters, &self.subscriptions, &SystemClock).await.unwrap()
    }

    fn events(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            self.store.outbox_entries().unwrap().into_iter().map(|e| (e.destination, e.event)).collect();
        out.sort();
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blind_stages_are_hunted_within_budget_and_the_review_amended_once() {
    let mut s = setup(&[]).await;
    s.graph.set_hunt_result(
        "DeviceProcessEvents",
        &[("DeviceName", "string"), ("FileName", "string")],
        vec![json!({"DeviceName": "fab-app-03", "FileName": "cmd.exe"}); 3],
    );
    s.graph.upsert(recent_sample("ransomware-unattended-alert", "9001"));
    let k = s.poll_and_review("9001").await;
    assert_eq!(s.store.hunts_queued().unwrap(), vec![k.clone()]);

    let pass = s.hunt().await;
    assert_eq!(pass, HuntPass { queries: 4, amended: 1 });
    let calls = s.graph.hunt_calls();
    assert_eq!(calls.len(), 4, "hunts_per_incident");
    for (query, timespan) in &calls {
        assert!(query.contains("incident_start"), "scoped to the incident's window: {query}");
        let ts = timespan.as_deref().unwrap();
        assert!(ts.contains('/') && ts.ends_with('Z'), "{ts}");
    }
    let review = s.store.review(&k).unwrap().unwrap();
    let hunts = review.retro_hunts.as_ref().unwrap();
    assert_eq!(hunts.results.len(), 4);
    let stages: std::collections::BTreeSet<&str> = hunts.results.iter().map(|r| r.stage.as_str()).collect();
    assert_eq!(stages.len(), 2, "both blind stages looked at: {stages:?}");
    let hits: Vec<_> = hunts.results.iter().filter(|r| r.status == "hits").collect();
    assert!(!hits.is_empty() && hits.iter().all(|h| h.rows == 3 && h.first_rows.len() == 3));
    assert_eq!(hunts.with_hits, hits.len());
    assert!(hunts.results.iter().all(|r| r.status != "not_run"), "{hunts:#?}");
    let first = &review.follow_ups[0];
    assert_eq!((first.kind.as_str(), first.priority), ("retro_hunt_hits", hindsight::review::model::Priority::High));
    assert!(first.detail.contains("fab-app-03"), "the rows are named: {}", first.detail);
    let scope = review.follow_ups.iter().find(|f| f.kind == "hunt_blind_stages").unwrap();
    assert!(
        scope.detail.contains("Hindsight already ran 4 of them in the tenant (3 returned rows)"),
        "{}",
        scope.detail
    );
    assert!(s.store.hunts_queued().unwrap().is_empty());
    // Every format says what the hunts found.
    let text = hindsight::review::render::text(&review);
    assert!(
        text.contains("Retro-hunts in the tenant") && text.contains("3 row(s)") && text.contains("FileName: cmd.exe"),
        "{text}"
    );
    let mail = hindsight::notify::templates::Templates::builtin().unwrap().review(&review, "hs_test").unwrap();
    assert!(mail.html.contains("Retro-hunts in the tenant") && mail.html.contains("fab-app-03"));
    if std::env::var_os("HINDSIGHT_PRINT").is_some() {
        std::fs::write("/tmp/hunted.txt", &text).unwrap();
        std::fs::write("/tmp/hunted.html", &mail.html).unwrap();
    }
    // The hunted event goes where a route names it, and only there.
    let events = s.events();
    assert!(events.contains(&("hook".into(), "review.hunted".into())), "{events:?}");
    assert!(!events.contains(&("mail".into(), "review.hunted".into())), "{events:?}");

    // Nothing is hunted twice.
    assert_eq!(s.hunt().await, HuntPass::default());
    assert_eq!(s.graph.hunt_calls().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_quota_pauses_the_hunts_and_the_rest_run_later() {
    let mut s = setup(&[]).await;
    s.graph.upsert(recent_sample("ransomware-unattended-alert", "9002"));
    let k = s.poll_and_review("9002").await;
    s.graph.spend_hunting_cpu("00:00:01");
    let pass = s.hunt().await;
    assert_eq!(pass, HuntPass { queries: 0, amended: 0 }, "the CPU allowance is spent: nothing recorded yet");
    assert_eq!(s.store.hunts_queued().unwrap(), vec![k.clone()], "still queued");
    // Paused: the next pass sends nothing before the time the service named.
    s.hunt().await;
    assert_eq!(s.graph.hunt_calls().len(), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.graph.push_hunt_fault(Fault::TooManyRequests { retry_after: Some("1".into()) });
    let pass = s.hunt().await;
    assert_eq!(pass.amended, 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pass = s.hunt().await;
    assert_eq!(pass, HuntPass { queries: 4, amended: 1 });
    let hunts = s.store.review(&k).unwrap().unwrap().retro_hunts.unwrap();
    assert!(hunts.results.iter().all(|r| r.status == "no_rows"), "{hunts:#?}");
}

/// Every way a hunt can fail is named; none is reported as clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hunts_that_cannot_run_say_why() {
    let mut s = setup(&[("hunt_timeout", json!("1s")), ("hunts_per_hour", json!(5))]).await;
    s.graph.upsert(recent_sample("ransomware-unattended-alert", "9003"));
    let k = s.poll_and_review("9003").await;
    s.graph.capital_hunting_schema(true);
    s.graph.push_hunt_fault(Fault::Status(504));
    s.graph.push_hunt_fault(Fault::Status(504)); // twice: failed
    s.graph.push_hunt_fault(Fault::Delay(Duration::from_secs(3))); // past hunt_timeout
    s.graph.push_hunt_fault(Fault::Status(400));
    s.graph.push_hunt_fault(Fault::Status(500)); // tried once more, and then it runs
    let pass = s.hunt().await;
    assert_eq!(pass, HuntPass { queries: 4, amended: 1 });
    let r = s.store.review(&k).unwrap().unwrap().retro_hunts.unwrap();
    let outcomes: Vec<(&str, Option<&str>)> =
        r.results.iter().map(|h| (h.status.as_str(), h.reason.as_deref())).collect();
    assert_eq!(
        outcomes,
        [("not_run", Some("failed")), ("not_run", Some("timeout")), ("not_run", Some("rejected")), ("no_rows", None)]
    );
    assert_eq!(r.ran, 1);
    assert!(r.results[0].detail.as_deref().unwrap().contains("504"), "{:?}", r.results[0]);
    assert_eq!(s.graph.hunt_calls().len(), 6, "a 500 or 504 is tried once more");

    // Without ThreatHunting.Read.All, and past the hourly budget (5: one left), the permission
    // is named and the rest wait.
    s.graph.allow_hunting(false);
    s.graph.upsert(recent_sample("ransomware-unattended-alert", "9004"));
    let k2 = s.poll_and_review("9004").await;
    let pass = s.hunt().await;
    assert_eq!(pass, HuntPass { queries: 1, amended: 0 }, "one query left in the hour");
    let progress = s.store.hunt_progress(&k2).unwrap();
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].reason.as_deref(), Some("permission"));
    assert!(progress[0].detail.as_deref().unwrap().contains("ThreatHunting.Read.All"), "{progress:?}");
    assert_eq!(s.store.hunts_queued().unwrap(), vec![k2], "the rest wait for the next hour");
}

/// An incident whose window is past the 30 days advanced hunting keeps is not hunted at all:
/// each hunt says so, and no query is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_past_retention_is_named_and_costs_no_query() {
    let mut s = setup(&[]).await;
    let mut old = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/incidents/ransomware-unattended-alert.json"
        ))
        .unwrap(),
    )
    .unwrap();
    old["id"] = json!("9005");
    s.graph.upsert(old);
    let k = s.poll_and_review("9005").await;
    let pass = s.hunt().await;
    assert_eq!(pass, HuntPass { queries: 0, amended: 1 });
    let r = s.store.review(&k).unwrap().unwrap().retro_hunts.unwrap();
    assert!(r.results.iter().all(|h| h.reason.as_deref() == Some("retention")), "{r:#?}");
    assert!(r.results[0].detail.as_deref().unwrap().contains("30 days"));
    assert!(s.graph.hunt_calls().is_empty());
    assert_eq!(r.with_hits, 0);
}
