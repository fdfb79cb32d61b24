//! The webhook receiver and the SMTP server both down for an hour of simulated time, through
//! the daemon's own workers (in process, on a manual clock that the test moves a minute at a
//! time; the workers wait on that clock, so each jump wakes them as an elapsed minute would): nothing is lost, `/readyz` tells the truth all along, and when both are back the
//! waiting notifications go out on their own, each exactly once.
//!
//! "Down" is a closed port: the test holds each port bound but not listening (connections are
//! refused), then starts listening on the same port for the recovery.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fakes;
mod rig;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use fakes::smtp::{FakeSmtp, TlsMode};
use hindsight::clock::{Clock, ManualClock};
use serde_json::Value;

fn closed_port() -> tokio::net::TcpSocket {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    s
}

async fn readyz(port: u16) -> (u16, Value) {
    let (status, body) = rig::get(port, "/readyz").await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn detail(ready: &Value, name: &str) -> String {
    ready["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .map(|c| format!("{} {}", c["ok"], c["detail"]))
        .unwrap_or_default()
}

fn hook_incidents(hook: &fakes::receiver::Shared) -> Vec<String> {
    let r = hook.lock().unwrap();
    r.received
        .iter()
        .filter_map(|(_, b)| {
            serde_json::from_slice::<Value>(b).ok()?["review"]["incident"]["id"].as_str().map(String::from)
        })
        .collect()
}

fn drop_incident(dir: &std::path::Path, id: &str) {
    let tmp = dir.join(format!(".{id}.tmp"));
    std::fs::write(&tmp, rig::resolved_ago(id, 0, 2).to_string()).unwrap();
    std::fs::rename(tmp, dir.join(format!("{id}.json"))).unwrap();
}

/// How many delivery passes the daemon has made (its /metrics), the proof that a check of what
/// was *not* sent was made after passes ran, not before any could.
async fn passes(port: u16) -> u64 {
    let (status, text) = rig::get(port, "/metrics").await;
    assert_eq!(status, 200, "/metrics: {text}");
    text.lines()
        .find_map(|l| l.strip_prefix("hindsight_delivery_passes_total ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no hindsight_delivery_passes_total in /metrics:\n{text}"))
}

/// Waits until two more delivery passes began, so that at least one ran whole on the clock as
/// it is now.
async fn two_more_passes(port: u16) {
    let from = passes(port).await;
    let started = Instant::now();
    while passes(port).await < from + 2 {
        assert!(started.elapsed() < Duration::from_secs(30), "no delivery pass within 30 s (from {from})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many passes in a row every attempt to the destination failed, from /readyz's detail
/// ("every attempt failing since … (N pass(es))"); 0 when it is not failing.
fn failed_passes(ready: &Value, name: &str) -> u32 {
    let text = detail(ready, name);
    text.split_once(" (")
        .and_then(|(_, rest)| rest.split_once(" pass(es))"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0)
}

/// Polls `f` every 50 ms of real time for up to 30 s.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < Duration::from_secs(30), "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads /readyz every 50 ms of real time until `f` holds, for up to 30 s.
async fn readyz_until(port: u16, what: &str, f: impl Fn(u16, &Value) -> bool) {
    let started = Instant::now();
    loop {
        let (status, body) = readyz(port).await;
        if f(status, &body) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "timed out waiting for: {what}; last: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_without_webhook_and_smtp_loses_nothing_and_recovers_on_its_own() {
    hindsight::install_crypto_provider();
    let hook_sock = closed_port();
    let smtp_sock = closed_port();
    let hook_port = hook_sock.local_addr().unwrap().port();
    let smtp_port = smtp_sock.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let incoming = dir.path().join("incoming");
    std::fs::create_dir(&incoming).unwrap();
    let http = rig::free_port();
    let config = common::DaemonConfig::new()
        .listen(&format!("127.0.0.1:{http}"))
        .daemon("outbox_interval", "50ms")
        .daemon("delivery_grace", "10m")
        // The test's clock runs seven hours past the wall clock: started early on a Monday it
        // crossed the weekly digest's hour, and the digest was a seventh webhook.
        .section("digest", "enabled", false)
        .directory_source("drop", &incoming)
        .set("poll_interval", "100ms")
        .webhook("soc-hook", &format!("http://127.0.0.1:{hook_port}/hook"))
        .set("timeout", "2s")
        .email("soc-mail", smtp_port)
        .set("timeout", "2s")
        .write_in(dir.path());
    let cfg = hindsight::config::Config::load(Some(&config), &[]).unwrap();
    let t0 = Utc::now();
    let clock = Arc::new(ManualClock::new(t0));
    // The daemon's loops wait on its clock: between the test's jumps it runs at about real
    // speed, as a wall clock would, so polls and passes go on while the test waits.
    let ticking = clock.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ticking.advance(chrono::Duration::milliseconds(10));
        }
    });
    let mut opts = hindsight::daemon::Options::new(clock.clone());
    opts.signals = false;
    let stop = opts.stop.clone();
    let state = dir.path().join("state");
    let daemon = tokio::spawn(async move { hindsight::daemon::run(cfg, &state, opts).await });
    let ready_deadline = Instant::now() + Duration::from_secs(30);
    while readyz(http).await.0 == 0 {
        assert!(Instant::now() < ready_deadline, "the daemon did not start listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Five incidents resolved as the outage begins: reviewed, every attempt refused.
    let first: Vec<String> = (0..5).map(|n| format!("o{n}")).collect();
    for id in &first {
        drop_incident(&incoming, id);
    }
    readyz_until(http, "five notifications pending per destination", |_, body| {
        detail(body, "destination soc-hook").contains("5 pending")
            && detail(body, "destination soc-mail").contains("5 pending")
    })
    .await;

    // The hour, a minute at a time. /readyz stays ready within the grace (10 min) and turns
    // not ready after it, naming both destinations and the last failure.
    let mut not_ready_from = None;
    assert!(clock.now() < t0 + chrono::Duration::minutes(1), "the set-up took under a simulated minute");
    for minute in 1..=60 {
        clock.set(t0 + chrono::Duration::minutes(minute));
        tokio::time::sleep(Duration::from_millis(120)).await;
        let (status, body) = readyz(http).await;
        if minute <= 9 {
            // Ready only counts as "within the grace" if the attempts are failing by then.
            for d in ["destination soc-hook", "destination soc-mail"] {
                assert!(failed_passes(&body, d) > 0, "minute {minute}: {d} not failing yet: {body}");
            }
            assert_eq!(status, 200, "minute {minute}: within the grace: {body}");
        }
        if status == 503 && not_ready_from.is_none() {
            not_ready_from = Some(minute);
            for d in ["destination soc-hook", "destination soc-mail"] {
                let text = detail(&body, d);
                assert!(text.starts_with("false") && text.contains("every attempt failing since"), "{d}: {text}");
                assert!(text.contains("5 pending, 0 dead-lettered"), "{d}: {text}");
            }
        }
        if minute >= 12 {
            assert_eq!(status, 503, "minute {minute}: still down: {body}");
        }
    }
    assert!(not_ready_from.is_some_and(|m| (10..=11).contains(&m)), "not ready from minute {not_ready_from:?}");
    // Retries were attempted (and refused) during the hour, not only the first attempt.
    let (_, body) = readyz(http).await;
    for d in ["destination soc-hook", "destination soc-mail"] {
        assert!(failed_passes(&body, d) >= 2, "{d}: retries during the hour: {body}");
    }

    // Both come back at minute 60, on the same ports.
    let (hook, _) = fakes::receiver::serve(hook_sock.listen(64).unwrap());
    let smtp = FakeSmtp::serve(smtp_sock.listen(64).unwrap(), TlsMode::Plain);
    // The backoff schedule (5 s, 5 min, 30 min, 2 h, …) put each retry at about 2 h 35 min;
    // ten more minutes pass with nothing attempted, and /readyz still reports the last known.
    for minute in 61..=70 {
        clock.set(t0 + chrono::Duration::minutes(minute));
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    // Nothing arrived: but only worth saying once passes ran at minute 70 and both servers
    // take connections.
    two_more_passes(http).await;
    for port in [hook_port, smtp_port] {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("listening again");
    }
    assert!(hook_incidents(&hook).is_empty() && smtp.count() == 0, "nothing is due before its retry");
    assert_eq!(readyz(http).await.0, 503);

    // A new incident: its first attempt goes through, the destination counts as recovered,
    // and what waited goes out in the next pass instead of an hour and a half later.
    drop_incident(&incoming, "o5");
    let all: BTreeSet<String> = (0..6).map(|n| format!("o{n}")).collect();
    until("every incident at the receiver and the SMTP server", || {
        hook_incidents(&hook).into_iter().collect::<BTreeSet<_>>() == all && smtp.count() >= 6
    })
    .await;
    // Seconds after minute 70 (the clock ticks on), not the hour and a half the backoff had set.
    let waited = clock.now() - (t0 + chrono::Duration::minutes(70));
    assert!(waited < chrono::Duration::minutes(1), "delivered without waiting for the backoff ({waited})");
    readyz_until(http, "/readyz ready again", |status, _| status == 200).await;

    // Hours later (every old retry time passed): nothing is sent twice.
    for hours in 1..=6 {
        clock.set(t0 + chrono::Duration::hours(hours) + chrono::Duration::minutes(70));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Passes ran with every old retry time behind them, so a resend would have happened.
    two_more_passes(http).await;
    let got = hook_incidents(&hook);
    assert_eq!(got.len(), 6, "one webhook per incident: {got:?}");
    let ids = rig::hook_ids(&hook);
    assert_eq!(ids.len(), 6, "distinct idempotency keys");
    assert_eq!(smtp.count(), 6, "one message per incident: {:?}", smtp.subjects());
    assert_eq!(smtp.message_ids().len(), 6);
    let (status, body) = readyz(http).await;
    assert_eq!(status, 200, "{body}");
    assert!(detail(&body, "destination soc-hook").contains("0 pending, 0 dead-lettered"), "{body}");
    assert!(detail(&body, "destination soc-mail").contains("0 pending, 0 dead-lettered"), "{body}");

    stop.cancel();
    daemon.await.unwrap().unwrap();
    ticker.abort();
}
