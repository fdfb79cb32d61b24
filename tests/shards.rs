//! Several replicas splitting an MSSP's tenants (`daemon.shard`): the real binary twice, each
//! with its own store, the same configuration of six Graph sources on one Graph fake and one
//! webhook. Together they review each tenant's incident exactly once, each only its own
//! sources; their digests are each their shard's and do not share an id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fakes;
mod rig;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hindsight::daemon::shard::shard_of;
use serde_json::Value;

use fakes::graph::FakeGraph;
use rig::{Rig, creds};

const TENANTS: usize = 6;

fn name(i: usize) -> String {
    format!("tenant-{i:04}")
}

/// The same six sources and webhook; only the shard and the HTTP port differ.
fn shard_config(graph: &FakeGraph, hook: &str, shard: &str, port: u16) -> common::DaemonConfig {
    let mut c = common::DaemonConfig::new().listen(&format!("127.0.0.1:{port}")).daemon("shard", shard);
    for i in 0..TENANTS {
        c = c
            .graph_source(
                &name(i),
                &format!("{}.onmicrosoft.com", name(i)),
                "app-1",
                &graph.graph_url(),
                &graph.login_url(),
            )
            .set("client_secret_file", "graph-secret")
            .set("poll_interval", "1s")
            .set("request_timeout", "5s");
    }
    c.webhook("soc-hook", hook).set("signing_secret", rig::SIGNING).set("timeout", "5s")
}

/// (source, incident id) of every review event received, with how often each came.
fn reviews_received(hook: &fakes::receiver::Shared) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for (_, body) in &hook.lock().unwrap().received {
        let v: Value = serde_json::from_slice(body).unwrap();
        if let Some(id) = v["review"]["incident"]["id"].as_str() {
            *out.entry((v["source"].as_str().unwrap_or_default().to_owned(), id.to_owned())).or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_review_each_tenants_incident_exactly_once() {
    let graph = FakeGraph::start(fakes::graph::Credentials { tenant: "*".into(), ..creds() }).await;
    let (hook, url) = fakes::receiver::start().await;
    let shards = [
        Rig::with(shard_config(&graph, &url, "0/2", rig::free_port())),
        Rig::with(shard_config(&graph, &url, "1/2", rig::free_port())),
    ];
    let owner = |i: usize| shard_of(&name(i), 2) as usize;
    // The split is the hash's: both shards must have tenants, or this would test one daemon.
    assert!((0..2).all(|s| (0..TENANTS).any(|i| owner(i) == s)), "the six names all hash to one shard");

    let daemons: Vec<_> = shards.iter().map(|r| r.start(&[])).collect();
    for (r, d) in shards.iter().zip(&daemons) {
        rig::ready(r.http, d).await;
    }
    // Every tenant of the multi-tenant app sees this incident: six reviews to make, one each.
    graph.upsert(rig::resolved("9100"));
    let started = Instant::now();
    while reviews_received(&hook).len() < TENANTS {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?} received in 30 s; logs:\n{}\n---\n{}",
            reviews_received(&hook),
            daemons[0].log(),
            daemons[1].log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several more polls of every source: a source polled by both shards would send again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = reviews_received(&hook);
    let want: BTreeMap<(String, String), usize> = (0..TENANTS).map(|i| ((name(i), "9100".to_owned()), 1)).collect();
    assert_eq!(got, want, "each tenant's incident reviewed and sent exactly once");

    // Each shard polled and reviewed its own tenants only.
    for (s, r) in shards.iter().enumerate() {
        let (_, metrics) = rig::get(r.http, "/metrics").await;
        for i in 0..TENANTS {
            let line = format!("hindsight_reviews_total{{source=\"{}\"}} 1", name(i));
            assert_eq!(metrics.contains(&line), owner(i) == s, "shard {s}, {}:\n{metrics}", name(i));
        }
        let here = (0..TENANTS).filter(|&i| owner(i) == s).count();
        assert!(metrics.contains(&format!("hindsight_sources{{shard=\"{s}/2\"}} {here}")), "{metrics}");
        assert!(metrics.contains(&format!("hindsight_sources_configured {TENANTS}")), "{metrics}");
        let log = daemons[s].log();
        assert!(log.contains(&format!("polling this shard's {here} of {TENANTS} sources")), "{log}");
    }

    // `check` says which sources the shard polls and probes only those.
    let out = shards[0].check().await;
    let text = String::from_utf8_lossy(&out.stdout);
    let mine: Vec<String> = (0..TENANTS).filter(|&i| owner(i) == 0).map(name).collect();
    assert!(
        text.contains(&format!("0/2: this replica polls {} of {TENANTS} sources ({})", mine.len(), mine.join(", "))),
        "{text}"
    );
    let probed = |source: String| text.lines().any(|l| !l.starts_with("warning") && l.contains(&source));
    for i in 0..TENANTS {
        assert_eq!(probed(format!("source {}", name(i))), owner(i) == 0, "{text}");
    }

    for mut d in daemons {
        d.signal("-TERM");
        d.wait(Duration::from_secs(30)).await;
    }
    // Each shard's digest of "all sources" is its own: named for its shard, with its own id, so
    // that a receiver de-duplicating on the id keeps both.
    for r in &shards {
        let out = r.command(&["digest", "--send"]).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let digests: Vec<Value> = hook
        .lock()
        .unwrap()
        .received
        .iter()
        .map(|(_, b)| serde_json::from_slice::<Value>(b).unwrap())
        .filter(|v| v["digest"].is_object())
        .collect();
    assert_eq!(digests.len(), 2, "{digests:?}");
    assert_ne!(digests[0]["digest"]["id"], digests[1]["digest"]["id"]);
    for (s, d) in digests.iter().enumerate() {
        assert_eq!(d["digest"]["shard"], format!("{s}/2"));
        let here = (0..TENANTS).filter(|&i| owner(i) == s).count() as u64;
        assert_eq!(d["digest"]["incidents"]["total"], here, "{d}");
    }

    // The shard count changed under a store: its sources now belong to another shard, which
    // reads them from their backfill window. The log says so, naming them.
    shard_config(&graph, &url, "1/2", shards[0].http).write(&shards[0].config);
    let mut moved = shards[0].start(&[]);
    rig::ready(shards[0].http, &moved).await;
    let log = moved.log();
    let warning = log.lines().find(|l| l.contains("now belong to another shard")).unwrap_or_else(|| panic!("{log}"));
    for i in 0..TENANTS {
        assert_eq!(warning.contains(&name(i)), owner(i) == 0, "{warning}");
    }
    moved.signal("-TERM");
    moved.wait(Duration::from_secs(30)).await;
}
