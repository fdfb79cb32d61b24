//! `hindsight run`, the real binary, end to end: against the Graph fake, an SMTP server and a
//! webhook receiver on 127.0.0.1; stopped with SIGTERM in the middle of a backlog and started
//! again; under a fake systemd notify socket; and `hindsight check` against the same endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fakes;
mod rig;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::DaemonConfig;
use fakes::graph::FakeGraph;
use fakes::smtp::FakeSmtp;
use rig::{Daemon, Rig, SECRET, creds, get, hook_events, ready, resolved, until};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_incidents_reach_mail_and_webhook_within_one_poll_interval() {
    let graph = FakeGraph::start(creds()).await;
    let (hook, url) = fakes::receiver::start().await;
    let smtp = FakeSmtp::start().await;
    let rig = Rig::new(&graph, &url, Some(&smtp));
    let daemon = rig.start(&[]);
    ready(rig.http, &daemon).await;
    // Transparent huge pages off for the process: mimalloc's arenas in 2 MiB pages doubled the
    // resident memory of an idle daemon with many sources (docs/decisions/0002).
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    if let Some(thp) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert_eq!(thp.split_whitespace().nth(1), Some("0"), "{thp}");
    }

    // The daemon is polling; resolve two incidents in Defender.
    graph.upsert(resolved("5001"));
    graph.upsert(resolved("5002"));
    let poll_interval = Duration::from_secs(2);
    let took = until(Duration::from_secs(15), "both reviews by webhook and by e-mail", &daemon, || {
        hook_events(&hook).0.len() == 2 && smtp.messages().len() == 2
    })
    .await;
    eprintln!("resolved → e-mail and webhook received in {took:?} (poll interval {poll_interval:?})");
    // One interval (±10 % jitter) for the next poll to come round, plus the review and the sends.
    assert!(took <= poll_interval.mul_f64(1.1) + Duration::from_millis(1500), "took {took:?}");

    let (_, body) = {
        let r = hook.lock().unwrap();
        r.received[0].clone()
    };
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["event"], "review.created");
    assert_eq!(event["source"], "contoso");
    let mail = &smtp.messages()[0];
    assert!(mail.data.contains("Subject: [Hindsight] high"), "{}", mail.data);

    let (status, ready) = get(rig.http, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    // The receiver has the messages a moment before the daemon has recorded their delivery.
    let needles = [
        "hindsight_reviews_total{source=\"contoso\"} 2",
        "hindsight_deliveries_total{destination=\"soc-hook\",outcome=\"delivered\"} 2",
        "hindsight_deliveries_total{destination=\"soc-mail\",outcome=\"delivered\"} 2",
        "hindsight_poll_duration_seconds_count{source=\"contoso\"}",
        "hindsight_outbox_entries{destination=\"soc-hook\",state=\"delivered\"} 2",
        // Set before the metrics recorder was installed, this never appeared.
        "hindsight_build_info{version=\"",
        // Counters of what has not happened are there at 0 from the start, for rate() rules.
        "hindsight_dead_letters_total{destination=\"soc-hook\"} 0",
        "hindsight_polls_total{source=\"contoso\",outcome=\"error\"} 0",
        "hindsight_review_failures_total 0",
        "hindsight_review_log_packed_segments_total 0",
        "hindsight_review_log_unpacked_segments 0",
        "hindsight_store_bytes{part=\"packs\"} 0",
    ];
    let started = Instant::now();
    loop {
        let (_, metrics) = get(rig.http, "/metrics").await;
        let missing: Vec<&str> = needles.iter().copied().filter(|n| !metrics.contains(n)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "/metrics lacks {missing:?}:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The store's size on disk, as its files are: sled's, and the review log segment the two
    // reviews are in (measured every 5 s: the first measurement, at start, had none).
    let gauge = |metrics: &str, part: &str| -> u64 {
        let line = format!("hindsight_store_bytes{{part=\"{part}\"}} ");
        let value =
            metrics.lines().find_map(|l| l.strip_prefix(line.as_str())).unwrap_or_else(|| panic!("{line}in {metrics}"));
        value.parse::<f64>().unwrap() as u64
    };
    let store = rig.state().join("store");
    let metrics = loop {
        let (_, metrics) = get(rig.http, "/metrics").await;
        if gauge(&metrics, "review_log") > 0 {
            break metrics;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the review log's size is not reported:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // sled's files: measured seconds ago, its log has grown since and its snapshot changed.
    assert!(gauge(&metrics, "trees") > 0, "{metrics}");
    let log: u64 =
        std::fs::read_dir(store.join("reviews")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    let segments = gauge(&metrics, "review_log");
    assert!(segments <= log, "review log {segments} against {log}");
    let log = daemon.log();
    assert!(!log.contains(SECRET), "the client secret is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_the_middle_of_a_backlog_loses_nothing() {
    let graph = FakeGraph::start(creds()).await;
    let (hook, url) = fakes::receiver::start().await;
    // A slow receiver: the backlog takes seconds to deliver, so the signal lands mid-work.
    hook.lock().unwrap().delay = Some(Duration::from_millis(40));
    let rig = Rig::with(rig::config(&graph, &url, None).delivery("concurrency", 2).daemon("shutdown_timeout", "5s"));
    let mut daemon = rig.start(&[]);
    ready(rig.http, &daemon).await;
    let total = 150;
    for n in 0..total {
        graph.upsert(resolved(&format!("7{n:03}")));
    }
    until(Duration::from_secs(30), "the first deliveries", &daemon, || hook.lock().unwrap().received.len() >= 10).await;
    daemon.signal("-TERM");
    let (status, took) = daemon.wait(Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status:?}; log:\n{}", daemon.log());
    let before = hook_events(&hook).0.len();
    eprintln!("SIGTERM after {before} of {total} webhooks; exited in {took:?}");
    if std::env::var_os("SHOW_LOG").is_some() {
        eprintln!("{}", daemon.log());
    }
    assert!(before < total, "the signal should have come mid-work");
    assert!(daemon.log().contains("stopped; the store is flushed"), "{}", daemon.log());

    let daemon = rig.start(&[]);
    until(Duration::from_secs(60), "every incident's webhook after the restart", &daemon, || {
        hook_events(&hook).0.len() == total
    })
    .await;
    drop(daemon);
    let (incidents, ids) = hook_events(&hook);
    assert_eq!(incidents.len(), total);
    let repeats: usize = ids.values().map(|n| n - 1).sum();
    eprintln!("{} events, {} distinct, {repeats} repeated (same webhook-id)", ids.values().sum::<usize>(), ids.len());
    assert_eq!(ids.len(), total, "one event id per resolution");

    // In the store: exactly one review per resolution, every notification delivered.
    let store = hindsight::store::Store::open(&rig.state().join("store")).unwrap();
    assert_eq!(store.review_count(), total);
    assert_eq!(store.pending_count(), 0);
    let entries = store.outbox_entries().unwrap();
    assert_eq!(entries.len(), total);
    assert!(entries.iter().all(|e| matches!(e.state, hindsight::outbox::EntryState::Delivered { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_systemd_ready_status_watchdog_and_stopping_and_logs_for_journald() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    std::fs::create_dir(dir.path().join("incoming")).unwrap();
    std::fs::create_dir(dir.path().join("credentials")).unwrap();
    let config = DaemonConfig::new()
        .listen("")
        .directory_source("drop", &dir.path().join("incoming"))
        .set("poll_interval", "1s")
        .write_in(dir.path());
    let mut daemon = Daemon::start(
        &dir.path().join("state"),
        &config,
        dir.path(),
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
            ("JOURNAL_STREAM", "8:12345"),
            ("HINDSIGHT_LOG", "info"),
        ],
    );
    let mut messages = Vec::new();
    let mut buf = [0u8; 4096];
    while messages.iter().filter(|m: &&String| m.contains("WATCHDOG=1")).count() < 2 {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no notification ({e}); got {messages:?}; log:\n{}", daemon.log()));
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let ready = messages.iter().find(|m| m.contains("READY=1")).expect("READY=1");
    assert!(ready.contains("STATUS=1 source(s); 0 review(s) since start"), "{ready}");
    let ready_at = messages.iter().position(|m| m.contains("READY=1")).unwrap();
    let first_ping = messages.iter().position(|m| m.contains("WATCHDOG=1")).unwrap();
    assert!(ready_at <= first_ping + 1, "{messages:?}");
    daemon.signal("-TERM");
    loop {
        let n = socket.recv(&mut buf).expect("STOPPING=1");
        if String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1") {
            break;
        }
    }
    let (status, _) = daemon.wait(Duration::from_secs(10)).await;
    assert!(status.success());
    // Journald's format: a syslog priority, no timestamp, no colours.
    let log = daemon.log();
    let first = log.lines().next().unwrap_or_default();
    assert!(first.starts_with("<6>hindsight::daemon: "), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in the journal: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tries_every_endpoint_and_names_what_fails() {
    let graph = FakeGraph::start(creds()).await;
    let (hook, url) = fakes::receiver::start().await;
    let smtp = FakeSmtp::start().await;
    let rig = Rig::new(&graph, &url, Some(&smtp));
    let creds_dir = rig.dir.path().join("credentials");
    let out = rig.check().await;
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{stdout}{}", common::stderr(&out));
    for line in [
        "ok      source contoso",
        "ok      destination soc-hook",
        "ok      destination soc-mail",
        "ok      store",
        "ok      digest",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    // Nothing was delivered, nothing stored.
    assert!(hook.lock().unwrap().received.is_empty());
    assert!(smtp.messages().is_empty());
    assert_eq!(graph.incident_count(), 0);

    // A wrong client secret and an SMTP server that is gone.
    std::fs::write(creds_dir.join("graph-secret"), "wrong-Secret-value").unwrap();
    drop(smtp);
    let out = rig.check().await;
    let stdout = common::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("failed  source contoso") && stdout.contains("sign-in failed"), "{stdout}");
    assert!(stdout.contains("failed  destination soc-mail"), "{stdout}");
    assert!(stdout.contains("ok      destination soc-hook"), "{stdout}");
    assert!(!stdout.contains("wrong-Secret-value") && !stdout.contains(SECRET), "{stdout}");
}

#[test]
fn a_bad_configuration_stops_start_up_and_names_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hindsight.toml");
    std::fs::write(&config, "[digest]\nschedule = \"every monday\"\n").unwrap();
    let err = common::fails(dir.path(), &["run", "--config", config.to_str().unwrap()]);
    assert!(err.contains("configuration key digest.schedule") && err.contains("not a cron expression"), "{err}");

    std::fs::write(&config, "[digest]\nshedule = \"0 8 * * Mon\"\n").unwrap();
    let err = common::fails(dir.path(), &["run", "--config", config.to_str().unwrap()]);
    assert!(err.contains("shedule"), "{err}");

    std::fs::write(
        &config,
        "[[destinations]]\ntype = \"webhook\"\nname = \"a\"\nurl = \"http://example.com/x?sig=SECRETSIG\"\n\n[[destinations]]\ntype = \"email\"\nname = \"b\"\nhost = \"smtp.example.com\"\nfrom = \"not an address\"\nto = [\"x@example.com\"]\n",
    )
    .unwrap();
    let err = common::fails(dir.path(), &["run", "--config", config.to_str().unwrap()]);
    assert!(err.contains("destinations[0]") && err.contains("must be https://"), "{err}");
    assert!(err.contains("destinations[1]") && err.contains("from:"), "both problems at once: {err}");
    assert!(!err.contains("SECRETSIG"), "{err}");

    let err = common::fails(dir.path(), &["run", "--config", dir.path().join("missing.toml").to_str().unwrap()]);
    assert!(err.contains("no configuration file at"), "{err}");
}

#[test]
fn the_demo_configuration_reviews_the_samples_with_no_tenant_and_no_server() {
    // Run as the README says, from a folder that has the repository's examples/ (the demo's
    // paths are relative to where it runs).
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(common::repo().join("examples"), dir.path().join("examples")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(["run", "--once", "--config"])
        .arg(common::repo().join("config/demo.toml"))
        .current_dir(dir.path())
        .env_remove("HINDSIGHT_STATE_DIR")
        .env_remove("STATE_DIRECTORY")
        .output()
        .unwrap();
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let samples = std::fs::read_dir(common::repo().join("examples/incidents")).unwrap().count();
    // One line per e-mail written (the webhook destination does not print).
    assert_eq!(stdout.lines().filter(|l| l.starts_with("review.created examples/")).count(), samples, "{stdout}");
    let outbox = dir.path().join("target/hindsight-demo/outbox");
    let files: Vec<String> =
        std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files.iter().filter(|f| f.ends_with(".eml")).count(), samples, "{files:?}");
    assert_eq!(files.iter().filter(|f| f.ends_with(".json")).count(), samples, "{files:?}");
    let json = files.iter().find(|f| f.contains("-1077-") && f.ends_with(".json")).unwrap();
    let body = common::json(&std::fs::read_to_string(outbox.join(json)).unwrap());
    assert_eq!(body["incident_id"], "1077", "the Power Automate preset's flat fields");
    assert!(dir.path().join("target/hindsight-demo/state/store").is_dir());

    // A second run finds nothing new: no file is written twice.
    let again = Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(["run", "--once", "--config"])
        .arg(common::repo().join("config/demo.toml"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(common::stdout(&again), "");
}

/// `hindsight inventory fetch`, the real binary, against the Graph fake: the tenant's custom
/// detection rules land in a private inventory file; without the permission it fails and says
/// which permission, never the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_fetch_writes_the_tenants_detection_rules_as_an_inventory_file() {
    let graph = FakeGraph::start(creds()).await;
    let (_hook, url) = fakes::receiver::start().await;
    let rig = Rig::new(&graph, &url, None);
    graph.set_detection_rules(vec![serde_json::json!({
        "id": "dcsync", "displayName": "DCSync from a workstation", "status": "autoDisabled",
        "queryCondition": {"queryText": "IdentityDirectoryEvents"},
        "detectionAction": {"alertTemplate": {"tactics": [{"tactic": "CredentialAccess", "techniques": [{"technique": "T1003.006"}]}]}}
    })]);
    let out_dir = rig.dir.path().join("deployed");
    let fetch = |config: PathBuf, out: PathBuf, creds: PathBuf| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_hindsight"))
                .args(["inventory", "fetch", "--config"])
                .arg(config)
                .arg("--out")
                .arg(out)
                .env("CREDENTIALS_DIRECTORY", creds)
                .output()
                .unwrap()
        })
    };
    let creds_dir = rig.dir.path().join("credentials");
    let out = fetch(rig.config.clone(), out_dir.clone(), creds_dir.clone()).await.unwrap();
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{stdout}{}", common::stderr(&out));
    assert!(stdout.contains("source contoso: 1 custom detection rules (1 switched off)"), "{stdout}");
    let file = out_dir.join("contoso.defender-detection-rules.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o077, 0, "readable by this user only");
    }
    let catalog = hindsight::attack::store::embedded().unwrap();
    let inv = hindsight::inventory::Inventory::load(std::slice::from_ref(&out_dir), &catalog).unwrap();
    assert_eq!(inv.coverage(&catalog, "T1003.006"), hindsight::inventory::Coverage::NotCovered, "auto-disabled");

    graph.allow_detection_rules(false);
    let out = fetch(rig.config.clone(), out_dir, creds_dir).await.unwrap();
    let stderr = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("source contoso") && stderr.contains("CustomDetection.Read.All"), "{stderr}");
    assert!(!stderr.contains(SECRET) && !common::stdout(&out).contains(SECRET));
}
