//! The real binary through the faults Graph, webhooks and SMTP servers show in production: for
//! each, the daemon stays up, `/readyz` tells the truth, nothing is lost and recovery needs no
//! one. Logs are at trace level throughout, and at the end no configured secret (the Graph
//! client secret, the bearer tokens Graph issued, the Standard Webhooks key, a Power Automate
//! SAS `sig`) appears in them, as is, base64- or URL-encoded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fakes;
mod rig;

use std::time::{Duration, Instant};

use fakes::graph::{FakeGraph, Fault};
use fakes::receiver::Answer;
use fakes::smtp::{DataAnswer, FakeSmtp};
use rig::{Daemon, Rig, SECRET, SIGNING, creds, get, hook_ids, resolved_ago};
use serde_json::Value;

const SAS_SIG: &str = "Sas5ignatureValue_xyz987";

/// The incident ids the receiver got a review for (any destination on it).
fn notified(hook: &fakes::receiver::Shared) -> std::collections::BTreeSet<String> {
    let r = hook.lock().unwrap();
    r.received
        .iter()
        .filter_map(|(_, body)| {
            let v: Value = serde_json::from_slice(body).ok()?;
            // The generic event carries the review; the Power Automate preset flat fields.
            v["review"]["incident"]["id"].as_str().or(v["incident_id"].as_str()).map(str::to_owned)
        })
        .collect()
}

async fn readyz(port: u16) -> (u16, Value) {
    let (status, body) = get(port, "/readyz").await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn check<'a>(ready: &'a Value, name: &str) -> &'a Value {
    ready["checks"].as_array().and_then(|c| c.iter().find(|c| c["name"] == name)).unwrap_or(&Value::Null)
}

/// Resolves `ids` in the fake and waits until each has reached every destination.
async fn round(
    what: &str,
    graph: &FakeGraph,
    hook: &fakes::receiver::Shared,
    smtp: &FakeSmtp,
    daemon: &mut Daemon,
    ids: &[String],
) -> Duration {
    for id in ids {
        graph.upsert(resolved_ago(id, 0, 2));
    }
    arrived(what, hook, smtp, daemon, ids).await
}

/// Waits until each of `ids` has reached the webhook receiver and the SMTP server.
async fn arrived(
    what: &str,
    hook: &fakes::receiver::Shared,
    smtp: &FakeSmtp,
    daemon: &mut Daemon,
    ids: &[String],
) -> Duration {
    let started = Instant::now();
    let took = rig::until(Duration::from_secs(90), what, daemon, || {
        let n = notified(hook);
        let subjects = smtp.subjects().join("\n");
        ids.iter().all(|id| n.contains(id) && subjects.contains(&format!("incident {id}:")))
    })
    .await;
    assert!(daemon.child.try_wait().unwrap().is_none(), "{what}: the daemon exited; log:\n{}", daemon.log());
    eprintln!("{what}: every notification in {:.1?}", started.elapsed());
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_webhook_and_smtp_faults_are_ridden_out_with_nothing_lost_and_no_secret_logged() {
    let graph = FakeGraph::start(creds()).await;
    let (hook, url) = fakes::receiver::start().await;
    let smtp = FakeSmtp::start().await;
    let flow = format!(
        "{}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SAS_SIG}",
        url.replace("127.0.0.1", "localhost")
    );
    let rig = Rig::with(
        rig::config(&graph, &url, Some(&smtp))
            .set_in("contoso", "max_attempts", 3)
            .webhook("flow", &flow)
            .set("format", "power-automate")
            .daemon("delivery_grace", "1s")
            .daemon("outbox_interval", "1s"),
    );
    // Every crate at trace level (reqwest, hyper, rustls, lettre too), as when someone debugs.
    let mut daemon = rig.start(&[("HINDSIGHT_LOG", "trace")]);
    rig::ready(rig.http, &daemon).await;
    let ids = |p: &str| (0..3).map(|n| format!("{p}-{n}")).collect::<Vec<_>>();

    round("no fault", &graph, &hook, &smtp, &mut daemon, &ids("f1")).await;

    // Graph: a storm of 429s with Retry-After, then 5xx bursts.
    for _ in 0..7 {
        graph.push_fault(Fault::TooManyRequests { retry_after: Some("0.2".into()) });
    }
    round("Graph 429 storm (7 in a row)", &graph, &hook, &smtp, &mut daemon, &ids("f2")).await;
    for n in [500, 502, 503, 504, 500, 502] {
        graph.push_fault(Fault::Status(n));
    }
    round("Graph 5xx burst (6 in a row)", &graph, &hook, &smtp, &mut daemon, &ids("f3")).await;

    // A connection that hangs past the request timeout (5 s), then answers.
    graph.push_fault(Fault::Delay(Duration::from_secs(7)));
    round("Graph hanging past the timeout", &graph, &hook, &smtp, &mut daemon, &ids("f4")).await;

    // The token endpoint down while the token in hand has expired; /readyz names the failure.
    graph.expire_tokens();
    for _ in 0..9 {
        graph.push_token_fault(Fault::Unavailable { retry_after: None });
    }
    graph.upsert(resolved_ago("f5-x", 0, 1));
    rig::until(Duration::from_secs(30), "/readyz reporting the failing source", &daemon, || {
        futures_lite(readyz(rig.http)).is_some_and(|(_, r)| {
            check(&r, "source contoso")["detail"].as_str().is_some_and(|d| d.contains("failed poll(s) in a row"))
        })
    })
    .await;
    round("token endpoint down, token expired", &graph, &hook, &smtp, &mut daemon, &ids("f5")).await;

    // Expired tokens on the incidents endpoint, cut and non-JSON bodies.
    graph.push_fault(Fault::ExpiredToken);
    graph.push_fault(Fault::TruncatedBody);
    graph.push_fault(Fault::Malformed);
    round("expired token, truncated and malformed pages", &graph, &hook, &smtp, &mut daemon, &ids("f6")).await;

    // Pages that repeat and skip items while a backlog is paged (50 a page).
    let backlog: Vec<String> = (0..120).map(|n| format!("fb-{n:03}")).collect();
    for id in &backlog {
        graph.upsert(resolved_ago(id, 0, 1));
    }
    graph.push_fault(Fault::ShiftPage(0));
    graph.push_fault(Fault::ShiftPage(-10));
    graph.push_fault(Fault::ShiftPage(15));
    arrived("pages repeating and skipping items", &hook, &smtp, &mut daemon, &backlog).await;

    // Defender's clock ten minutes ahead of ours for one incident: the next, stamped with the
    // right time, is not passed over.
    let mut ahead = resolved_ago("f8-1", 0, 1);
    ahead["lastUpdateDateTime"] = Value::from(
        (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    graph.upsert(ahead);
    arrived("an incident stamped 10 minutes ahead", &hook, &smtp, &mut daemon, &["f8-1".to_owned()]).await;
    round("the next, stamped right", &graph, &hook, &smtp, &mut daemon, &["f8-2".to_owned()]).await;

    // The receiver refusing with 503 and the SMTP server with 451: /readyz turns not ready once
    // every attempt has failed for longer than the grace, and ready again when they recover.
    {
        let mut h = hook.lock().unwrap();
        h.answers.extend(std::iter::repeat_n(Answer::Status(503), 6));
    }
    for _ in 0..3 {
        smtp.answer(DataAnswer::Reply("451 4.3.0 Mail server temporarily rejected message"));
    }
    for id in ["f9-1", "f9-2", "f9-3"] {
        graph.upsert(resolved_ago(id, 0, 1));
    }
    let mut saw_not_ready = None;
    rig::until(Duration::from_secs(30), "/readyz reporting the failing destinations", &daemon, || {
        let Some((status, r)) = futures_lite(readyz(rig.http)) else { return false };
        let failing = ["destination soc-hook", "destination soc-mail"]
            .iter()
            .all(|n| check(&r, n)["detail"].as_str().is_some_and(|d| d.starts_with("every attempt failing")));
        if failing && status == 503 {
            saw_not_ready = Some(r);
        }
        saw_not_ready.is_some()
    })
    .await;
    let r = saw_not_ready.unwrap();
    eprintln!("/readyz while the receiver and the SMTP server refuse: {}", serde_json::to_string_pretty(&r).unwrap());
    assert_eq!(r["ready"], false);
    assert!(check(&r, "destination soc-mail")["detail"].as_str().unwrap().contains("451"), "{r}");
    // Retried after ~5 s and delivered; ready again.
    arrived(
        "receiver 503 and SMTP 451, recovered",
        &hook,
        &smtp,
        &mut daemon,
        &["f9-1".into(), "f9-2".into(), "f9-3".into()],
    )
    .await;
    // Ready again, and every destination's retries done: an incident counts as arrived once
    // one of the two webhooks on the receiver delivered it, and a retry still pending on the
    // other would take the 400 below in the new incident's place.
    rig::until(Duration::from_secs(30), "/readyz ready again, nothing pending", &daemon, || {
        futures_lite(readyz(rig.http)).is_some_and(|(s, r)| {
            s == 200
                && ["destination soc-hook", "destination flow", "destination soc-mail"].iter().all(|n| {
                    check(&r, n)["detail"].as_str().is_some_and(|d| d.starts_with("0 pending, 0 dead-lettered"))
                })
        })
    })
    .await;

    // A 4xx is not retried: dead-lettered, kept, and counted in /readyz; the other webhook on
    // the receiver delivers the incident.
    hook.lock().unwrap().answers.push_back(Answer::Status(400));
    graph.upsert(resolved_ago("f9-400", 0, 1));
    rig::until(Duration::from_secs(30), "the 400 dead-lettered", &daemon, || {
        notified(&hook).contains("f9-400")
            && futures_lite(readyz(rig.http)).is_some_and(|(_, r)| {
                ["destination soc-hook", "destination flow"]
                    .iter()
                    .any(|n| check(&r, n)["detail"].as_str().is_some_and(|d| d.contains(", 1 dead-lettered")))
            })
    })
    .await;

    // Stopped cleanly; the store holds every review once, nothing pending.
    daemon.signal("-TERM");
    let (status, _) = daemon.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status:?}; log:\n{}", daemon.log());
    let store = hindsight::store::Store::open(&rig.state().join("store")).unwrap();
    let reviews = store.review_count();
    assert_eq!(reviews, store.resolutions().count(), "one review per resolution");
    let expected = 3 * 6 + 1 + 120 + 2 + 3 + 1;
    let reviewed: std::collections::BTreeSet<String> = store.resolutions().map(|r| r.unwrap().incident_id).collect();
    let sent = notified(&hook);
    let lacking: Vec<&String> = sent.iter().filter(|id| !reviewed.contains(*id)).collect();
    assert!(lacking.is_empty(), "notified but without a stored resolution: {lacking:?}");
    let unsent: Vec<&String> = reviewed.iter().filter(|id| !sent.contains(*id)).collect();
    assert!(unsent.is_empty(), "reviewed but never notified: {unsent:?}");
    assert_eq!(reviews, expected, "reviews; the receiver got {:?}", sent);
    assert_eq!(store.pending_count(), 0);
    let entries = store.outbox_entries().unwrap();
    let dead = entries.iter().filter(|e| e.state.label() == "dead").count();
    let pending = entries.iter().filter(|e| e.state.label() == "pending").count();
    assert_eq!((dead, pending), (1, 0), "one dead letter (the 400), nothing pending");
    assert_eq!(notified(&hook).len(), expected, "every incident reached the receiver");
    assert!(hook_ids(&hook).len() >= expected, "distinct webhook-ids");
    assert!(graph.token_requests() >= 2);

    // No secret in any line, at trace level, in any form.
    let logs: String =
        (0..10).filter_map(|n| std::fs::read_to_string(rig.dir.path().join(format!("daemon-{n}.log"))).ok()).collect();
    assert!(logs.lines().count() > 500, "a trace-level log: {} lines", logs.lines().count());
    let mut secrets = vec![SECRET.to_owned(), SIGNING.to_owned(), SAS_SIG.to_owned()];
    secrets.extend(graph.issued_tokens());
    let mut hits = Vec::new();
    for secret in &secrets {
        for form in common::secret_forms(secret) {
            for line in logs.lines().filter(|l| l.contains(&form)) {
                hits.push(format!("{form:?} in: {line}"));
            }
        }
    }
    eprintln!(
        "{} log lines at trace level searched for {} secrets ({} tokens) in 3 forms each: {} hits",
        logs.lines().count(),
        secrets.len(),
        graph.issued_tokens().len(),
        hits.len()
    );
    assert!(hits.is_empty(), "secrets in the log:\n{}", hits.join("\n"));
}

/// Runs a future to completion from inside a synchronous `until` condition.
fn futures_lite<F: std::future::Future>(f: F) -> Option<F::Output> {
    let handle = tokio::runtime::Handle::current();
    Some(tokio::task::block_in_place(|| handle.block_on(f)))
}
