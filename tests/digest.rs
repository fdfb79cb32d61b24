//! The digest: figures checked by hand on made-up summaries, and a simulated week (and a
//! simulated outage) driven through the injected clock on a real sled store, with the digest
//! delivered through the outbox to a folder sink and checked against the published schema.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use hindsight::clock::{Clock, ManualClock};
use hindsight::digest::schedule::Schedule;
use hindsight::digest::summary::FollowUpInfo;
use hindsight::digest::{Names, Period, Settings, Summary, compute};
use hindsight::notify::folder::{FolderConfig, FolderSink};
use hindsight::notify::{Destination, Sink, Subscription};
use hindsight::outbox::RetryPolicy;
use hindsight::review::{Engine, Priority};
use hindsight::stages::digest::{Against, Tick, tick};
use hindsight::store::{Observed, Store};
use serde_json::Value;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn settings() -> Settings {
    Settings { top: 10, attack_domain: "enterprise-attack".into(), attack_version: Some("18.1".into()), shard: None }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Names as a catalog and a store would give them.
struct TestNames;

impl Names for TestNames {
    fn technique(&self, id: &str) -> Option<String> {
        Some(format!("name of {id}"))
    }
    fn tactic(&self, shortname: &str) -> Option<String> {
        Some(shortname.to_uppercase())
    }
    fn candidate(&self, id: &str) -> Option<(String, &'static str)> {
        Some((format!("group {id}"), "group"))
    }
    fn follow_up(&self, id: &str) -> Option<FollowUpInfo> {
        // The priority here is the text's; the digest ranks by the reviews' own.
        Some(FollowUpInfo {
            // FU-b asks for a detection of T1003, which a deployed rule covers (below).
            kind: if id == "FU-b" { "add_detection" } else { "detect" }.into(),
            techniques: if id == "FU-b" { vec!["T1003".into()] } else { vec![] },
            priority: Priority::Low,
            title: format!("do {id}"),
            // FU-a: first raised three weeks before the period ends, due before it ends.
            owner: (id == "FU-a").then(|| "iam-team@contoso.com".to_owned()),
            due: (id == "FU-a").then(|| chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()),
            first_raised: (id == "FU-a").then(|| t("2026-10-19T07:00:00Z")),
        })
    }
    fn detection(&self, source: &str, technique: &str) -> Option<hindsight::digest::RuleSeen> {
        (source == "contoso" && technique == "T1003").then(|| hindsight::digest::RuleSeen {
            rule: "LSASS memory access (custom detection)".into(),
            seen_at: Some(t("2026-11-08T06:00:00Z")),
        })
    }
}

fn summary(id: &str, rev: u32, resolved: &str, ttd: i64, techniques: &[&str]) -> Summary {
    Summary {
        source: "contoso".into(),
        incident_id: id.into(),
        revision: rev,
        severity: "high".into(),
        classification: "truePositive".into(),
        determination: "malware".into(),
        resolved: t(resolved),
        time_to_detect_s: Some(ttd),
        time_to_resolve_s: Some(ttd * 10),
        time_to_acknowledge_s: Some(ttd * 2),
        benign: false,
        techniques: ids(techniques),
        tactics: ids(&["execution"]),
        uncovered: vec![],
        blind_stages: vec![],
        late_detections: 0,
        first_seen: vec![],
        attribution: vec![],
        follow_ups: vec![],
    }
}

#[test]
fn figures_checked_by_hand() {
    let period = Period::ending(t("2026-11-09T07:00:00Z"), Duration::days(7));
    let mut s = vec![
        // The period before: T1059 twice, T1566 once.
        summary("1", 1, "2026-10-27T10:00:00Z", 60, &["T1059", "T1566"]),
        summary("2", 1, "2026-10-28T10:00:00Z", 120, &["T1059"]),
        // This period: T1059 once, T1003 three times.
        summary("3", 1, "2026-11-03T10:00:00Z", 100, &["T1059", "T1003"]),
        summary("4", 1, "2026-11-04T10:00:00Z", 200, &["T1003"]),
        summary("5", 1, "2026-11-05T10:00:00Z", 300, &["T1003"]),
        // Incident 5 re-opened and resolved again in the period: it counts once, as revision 2.
        summary("5", 2, "2026-11-06T10:00:00Z", 400, &["T1003", "T1021"]),
        // Outside both periods.
        summary("6", 1, "2026-11-09T07:00:00Z", 5, &["T1486"]),
    ];
    let mut fp = summary("7", 1, "2026-11-07T10:00:00Z", 50, &["T1072"]);
    fp.benign = true;
    fp.classification = "falsePositive".into();
    s.push(fp);
    s[2].uncovered = ids(&["T1003"]);
    s[3].uncovered = ids(&["T1003"]);
    s[3].blind_stages = ids(&["discovery"]);
    s[2].first_seen = ids(&["T1003"]);
    let fu = |id: &str, p: Priority| (id.to_string(), p);
    s[2].follow_ups = vec![fu("FU-a", Priority::Medium), fu("FU-b", Priority::High)];
    s[3].follow_ups = vec![fu("FU-a", Priority::Medium)];
    s[0].follow_ups = vec![fu("FU-a", Priority::Medium)];
    let cand = |id: &str, score: f64| (id.to_string(), score);
    s[2].attribution = vec![cand("G1", 0.4), cand("G2", 0.3)];
    s[3].attribution = vec![cand("G2", 0.5), cand("G1", 0.2)];
    s[4].attribution = vec![cand("G2", 0.1)];

    let views: Vec<_> = s.iter().map(Summary::view).collect();
    let d = compute(&views, period, &[], &settings(), &TestNames);
    // 3, 4, 5 (as r2) and the false positive 7.
    assert_eq!((d.incidents.total, d.incidents.benign), (4, 1));
    assert_eq!(d.previous_incidents.total, 2);
    assert_eq!(d.incidents.by_classification.get("falsePositive"), Some(&1));
    // TTD of 3, 4, 5r2, 7: 50, 100, 200, 400 → median 150, p90 at rank 2.7: 200 + 0.7 × 200 = 340.
    assert_eq!(
        (d.time_to_detect.samples, d.time_to_detect.median_s, d.time_to_detect.p90_s),
        (4, Some(150), Some(340))
    );
    let top: Vec<(&str, usize, usize)> =
        d.top_techniques.iter().map(|r| (r.id.as_str(), r.incidents, r.previous)).collect();
    // The false positive's T1072 is not among them; incident 5's revision 1 is not counted twice.
    assert_eq!(top, vec![("T1003", 3, 0), ("T1021", 1, 0), ("T1059", 1, 2)]);
    assert_eq!(d.rising.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["T1003", "T1021"]);
    assert_eq!(
        d.falling.iter().map(|r| (r.id.as_str(), r.incidents, r.previous)).collect::<Vec<_>>(),
        vec![("T1059", 1, 2), ("T1566", 0, 1)]
    );
    // T1003 uncovered in two incidents: recurring; the blind stage only once and not before: not.
    assert_eq!(d.recurring_gaps.len(), 1);
    assert_eq!((d.recurring_gaps[0].id.as_str(), d.recurring_gaps[0].incidents), ("T1003", 2));
    assert_eq!(d.recurring_gaps[0].name, "name of T1003");
    assert_eq!(d.recurring_gaps[0].examples, vec!["contoso/3", "contoso/4"]);
    assert_eq!(d.new_techniques.len(), 1);
    // High first, then by incidents; FU-a was raised the period before too.
    let f: Vec<(&str, usize, bool)> = d.follow_ups.iter().map(|f| (f.id.as_str(), f.incidents, f.recurring)).collect();
    assert_eq!(f, vec![("FU-b", 1, false), ("FU-a", 2, true)]);
    assert_eq!(d.follow_ups[1].title, "do FU-a");
    // FU-b asked for a detection that an enabled deployed rule now gives; FU-a is past its due
    // date.
    let states: Vec<(&str, &str)> = d.follow_ups.iter().map(|f| (f.id.as_str(), f.state.as_str())).collect();
    assert_eq!(states, [("FU-b", "verified"), ("FU-a", "overdue")]);
    let by = d.follow_ups[0].verified_by.as_ref().unwrap();
    assert_eq!(
        (by.rule.as_str(), by.seen_at),
        ("LSASS memory access (custom detection)", Some(t("2026-11-08T06:00:00Z")))
    );
    // Its age at the period's end, its owner, and that it is past due.
    let text = hindsight::digest::render::text(&d);
    assert!(
        text.contains("do FU-a — 2 incident(s), raised the period before too, open 21 days, owner iam-team@contoso.com, OVERDUE since 2026-11-01"),
        "{text}"
    );
    assert_eq!(d.top_tactics[0].name, "EXECUTION");
    // G2: best match of incident 4 (and 5r2 had none); among the closest of 3 and 4.
    assert_eq!(d.attribution[0].id, "G2");
    assert_eq!((d.attribution[0].first, d.attribution[0].incidents), (1, 2));
    assert!((d.attribution[0].best_score - 0.5).abs() < 1e-9);
    // The heat map: one entry per technique, scored by incidents, with a gradient up to the max.
    let scores: Vec<(&str, f64)> = d.layer.techniques.iter().map(|t| (t.technique_id.as_str(), t.score)).collect();
    assert_eq!(scores, vec![("T1003", 3.0), ("T1021", 1.0), ("T1059", 1.0)]);
    assert_eq!(d.layer.gradient.as_ref().unwrap().max_value, 3.0);

    // A scope keeps to its sources.
    assert_eq!(compute(&views, period, &["fabrikam".into()], &settings(), &TestNames).incidents.total, 0);
}

/// A copy of a sample incident, renumbered, with every timestamp moved so that it was
/// resolved at `resolved`.
fn incident_resolved_at(sample: &Value, id: &str, resolved: DateTime<Utc>) -> Observed {
    let last = t(sample["lastUpdateDateTime"].as_str().unwrap());
    let shift = resolved - last;
    fn walk(v: &mut Value, shift: Duration) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k.ends_with("DateTime")
                        && let Some(s) = x.as_str()
                        && let Ok(d) = DateTime::parse_from_rfc3339(s)
                    {
                        *x = Value::String((d.with_timezone(&Utc) + shift).to_rfc3339());
                    } else {
                        walk(x, shift);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, shift)),
            _ => {}
        }
    }
    let mut raw = sample.clone();
    walk(&mut raw, shift);
    raw["id"] = Value::String(id.into());
    Observed::from_value(&raw).unwrap()
}

fn folder_destination(dir: &Path) -> Destination {
    let cfg: FolderConfig = serde_json::from_value(serde_json::json!({"path": dir, "print": false})).unwrap();
    Destination { name: "soc".into(), sink: Arc::new(Sink::Folder(Box::new(FolderSink::new(&cfg).unwrap()))) }
}

#[tokio::test]
async fn a_simulated_week_sends_one_digest_on_monday_morning_and_an_outage_one_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let catalog = hindsight::attack::store::embedded().unwrap();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, hindsight::review::Settings::default());
    let subscriptions = vec![Subscription::everything("soc")];
    let destinations = vec![folder_destination(&out)];
    let schedule = Schedule::parse("0 8 * * Mon", "Europe/Berlin").unwrap();
    let samples: Vec<Value> =
        ["phishing-credential-theft.json", "human-operated-ransomware.json", "business-email-compromise.json"]
            .iter()
            .map(|f| common::json(&std::fs::read_to_string(common::repo().join("examples/incidents").join(f)).unwrap()))
            .collect();

    // Monday 2 November 2026, 09:00 in Berlin (CET, UTC+1): the daemon's first start.
    let clock = ManualClock::new(t("2026-11-02T08:00:00Z"));
    let mut store = Store::open(&dir.path().join("store")).unwrap();
    let mut ticks = Vec::new();
    let mut resolved = 0;
    // A week and a few hours, an hour at a time; an incident resolved every 7 hours.
    for hour in 0..(7 * 24 + 4) {
        let now = clock.now();
        if hour % 7 == 3 {
            let o = incident_resolved_at(&samples[resolved % 3], &format!("9{hour:03}"), now - Duration::minutes(10));
            store.ingest("contoso", &[o], None, None, now).unwrap();
            resolved += 1;
        }
        hindsight::stages::review::review_pending(&store, &engine, &subscriptions, 100, now).unwrap();
        let tk = tick(&store, Against::from(&*catalog), &schedule, &subscriptions, Duration::days(7), &settings(), now)
            .unwrap();
        if !matches!(tk, Tick::Waiting { .. }) {
            ticks.push((now, tk));
        }
        if hour == 100 {
            // A restart in the middle of the week changes nothing.
            drop(store);
            store = Store::open(&dir.path().join("store")).unwrap();
        }
        clock.advance(Duration::hours(1));
    }
    assert_eq!(ticks.len(), 2, "{ticks:?}");
    assert!(matches!(ticks[0].1, Tick::Started { next: Some(n) } if n == t("2026-11-09T07:00:00Z")), "{ticks:?}");
    assert_eq!(ticks[1].0, t("2026-11-09T07:00:00Z"));
    assert_eq!(ticks[1].1, Tick::Sent { occurrence: t("2026-11-09T07:00:00Z"), digests: 1, notifications: 1 });

    let pass = hindsight::stages::deliver::deliver_due(&store, &destinations, &RetryPolicy::default(), 4, clock.now())
        .await
        .unwrap();
    // Every review of the week, and the digest.
    assert_eq!(pass.delivered, resolved + 1);
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("digest-"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let json = files.iter().find(|p| p.extension().is_some_and(|e| e == "json")).expect("the digest's .json");
    let event = common::json(&std::fs::read_to_string(json).unwrap());
    let schema: Value = serde_json::from_str(include_str!("../schemas/webhook-event.v2.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(&event).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(event["event"], "digest.weekly");
    let d = &event["digest"];
    // The incidents resolved from Mon 07:00 UTC to the next Mon 07:00 UTC: hours 3, 10, …, 164
    // of the loop, each resolved ten minutes before its hour.
    let expected = (0..(7 * 24 + 4)).filter(|h| h % 7 == 3).filter(|h| *h >= 1 && *h <= 167).count();
    assert_eq!(d["incidents"]["total"].as_u64().unwrap() as usize, expected);
    assert_eq!(d["period"]["end"], "2026-11-09T07:00:00Z");
    let eml = files.iter().find(|p| p.extension().is_some_and(|e| e == "eml")).expect("the digest's .eml");
    let eml = std::fs::read_to_string(eml).unwrap();
    assert!(eml.contains("Subject: [Hindsight] Digest 2026-11-02 to 2026-11-09:"), "{eml}");
    assert!(eml.contains("layer.json"));

    // Down from Monday 9 until Wednesday 25 November: two Mondays missed, one digest at start.
    clock.set(t("2026-11-25T10:00:00Z"));
    let tk =
        tick(&store, Against::from(&*catalog), &schedule, &subscriptions, Duration::days(7), &settings(), clock.now())
            .unwrap();
    assert_eq!(tk, Tick::Sent { occurrence: t("2026-11-23T07:00:00Z"), digests: 1, notifications: 1 });
    let tk =
        tick(&store, Against::from(&*catalog), &schedule, &subscriptions, Duration::days(7), &settings(), clock.now())
            .unwrap();
    assert_eq!(tk, Tick::Waiting { next: Some(t("2026-11-30T07:00:00Z")) });
    assert_eq!(store.digest_count(), 2);
}

#[tokio::test]
async fn a_store_of_schema_1_gets_summaries_and_due_notifications_indexed() {
    // A store written before digests existed: reviews, no summaries, schema_version 1.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let clock = ManualClock::new(t("2026-11-20T12:00:00Z"));
    {
        let store = Store::open(&path).unwrap();
        common::ingest_examples(&store, &clock).await;
        let catalog = hindsight::attack::store::embedded().unwrap();
        let catalog = std::sync::Arc::new(catalog);
        let engine = Engine::new(catalog.clone(), None, None, hindsight::review::Settings::default());
        let subs = vec![Subscription::everything("soc")];
        hindsight::stages::review::review_pending(&store, &engine, &subs, 100, clock.now()).unwrap();
        store.flush().unwrap();
    }
    {
        let db = common::raw_sled(&path);
        db.open_tree("meta").unwrap().insert("schema_version", &1u32.to_be_bytes()).unwrap();
        db.drop_tree("summaries").unwrap();
        db.drop_tree("follow_ups").unwrap();
        db.drop_tree("due").unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(&path).unwrap();
    // The pending notifications of the old store are due: none is left out of the new index.
    let samples = std::fs::read_dir(common::repo().join("examples/incidents")).unwrap().count();
    assert_eq!(store.outbox_due(clock.now()).unwrap().len(), samples);
    let all = store.summaries_between(t("2000-01-01T00:00:00Z"), t("2100-01-01T00:00:00Z")).unwrap();
    assert_eq!(all.len(), samples);
    assert!(all.iter().any(|s| s.incident_id == "1077" && s.severity == "high"));
}

#[tokio::test]
async fn ids_that_json_must_escape_are_read_back_too() {
    // Summaries are read borrowing their bytes; a string with escapes cannot be borrowed.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let catalog = hindsight::attack::store::embedded().unwrap();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, hindsight::review::Settings::default());
    let sample = common::json(
        &std::fs::read_to_string(common::repo().join("examples/incidents/human-operated-ransomware.json")).unwrap(),
    );
    let now = t("2026-11-20T12:00:00Z");
    let o = incident_resolved_at(&sample, "odd \"id\" \\ with ünïcode", now - Duration::hours(1));
    store.ingest("tenant \"q\"", &[o], None, None, now).unwrap();
    hindsight::stages::review::review_pending(&store, &engine, &[], 10, now).unwrap();
    let period = Period::ending(now, Duration::days(7));
    let d = hindsight::stages::digest::for_period(&store, &catalog, &[vec![]], period, &settings()).unwrap().remove(0);
    assert_eq!(d.incidents.total, 1);
    assert_eq!(d.incidents.by_source.keys().collect::<Vec<_>>(), vec!["tenant \"q\""]);
    assert!(
        d.follow_ups.iter().any(|f| f.examples == vec!["tenant \"q\"/odd \"id\" \\ with ünïcode".to_string()]),
        "{:?}",
        d.follow_ups
    );
}

/// A shard's digest of "all sources" is its own: named for the shard in every rendering and
/// in the layer, and not the same id as another shard's of the same period.
#[test]
fn a_shards_digest_says_whose_sources_it_covers() {
    let period = Period::ending(t("2026-11-09T07:00:00Z"), Duration::days(7));
    let s = [summary("3", 1, "2026-11-03T10:00:00Z", 100, &["T1059", "T1003"])];
    let views: Vec<_> = s.iter().map(Summary::view).collect();
    let shard = |i: &str| Settings { shard: Some(i.into()), ..settings() };
    let whole = compute(&views, period, &[], &settings(), &TestNames);
    let (one, two) = (
        compute(&views, period, &[], &shard("1/3"), &TestNames),
        compute(&views, period, &[], &shard("2/3"), &TestNames),
    );
    assert!(whole.id != one.id && one.id != two.id && whole.id != two.id);
    assert_eq!(one.shard.as_deref(), Some("1/3"));
    assert!(whole.shard.is_none() && !serde_json::to_string(&whole).unwrap().contains("shard"));
    use hindsight::digest::render;
    // HTML escapes the slash.
    let html = render::html(&one).replace("&#x2f;", "/");
    for text in [render::text(&one), render::markdown(&one), html, one.layer.name.clone()] {
        assert!(text.contains("all sources of shard 1/3"), "{text}");
    }
    assert!(render::text(&whole).contains("(all sources)"));
}

#[test]
fn hindsight_digest_prints_and_sends_from_the_stored_reviews() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let config = common::DaemonConfig::new()
        .listen("")
        .directory_source("examples", &common::repo().join("examples/incidents"))
        .folder("soc", &out)
        .set("print", false)
        .route("events", ["digest.weekly"])
        .write_in(dir.path());
    let cfg = config.to_str().unwrap();
    common::ok(dir.path(), &["run", "--once", "--config", cfg]);
    // The route takes digests only: no review was sent.
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().count() == 0);
    let until = ["--until", "2026-11-30T00:00:00Z", "--since", "60d"];
    let text = common::ok(dir.path(), &[&["digest"][..], &until].concat());
    // Resolved from 1 October to 30 November: 8 samples; in the 60 days before, the first
    // phishing incident of August (the ransomware of June is older still).
    assert!(text.contains("8 incident(s) resolved (1 the period before, +7); 1 false positive(s)"), "{text}");
    assert!(text.contains("Open follow-ups"), "{text}");
    let layer = dir.path().join("layer.json");
    let json = common::json(&common::ok(
        dir.path(),
        &[&["digest", "--format", "json", "--layer", layer.to_str().unwrap()][..], &until].concat(),
    ));
    assert_eq!(json["incidents"]["by_source"]["examples"], 8);
    assert_eq!(common::json(&std::fs::read_to_string(&layer).unwrap())["versions"]["layer"], "4.5");
    let md = common::ok(dir.path(), &[&["digest", "--format", "markdown"][..], &until].concat());
    assert!(md.starts_with("# Hindsight digest: 2026-10-01 to 2026-11-30"), "{md}");

    let sent = common::ok(dir.path(), &[&["digest", "--send", "--config", cfg][..], &until].concat());
    assert!(sent.contains("1 digest(s), 1 notification(s): 1 delivered"), "{sent}");
    let files: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files.iter().filter(|f| f.starts_with("digest-")).count(), 2, "{files:?}");
    // Sending the same period again is the same digest, and the same notification.
    common::ok(dir.path(), &[&["digest", "--send", "--config", cfg][..], &until].concat());
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
}

/// Closing the loop: a follow-up that asked for a detection is verified in the digest once the
/// tenant's deployed rules cover its technique with an enabled rule — named, with when the rules
/// were read — and not while the rule is switched off.
#[tokio::test]
async fn a_detection_follow_up_is_verified_once_an_enabled_deployed_rule_covers_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t("2026-11-20T12:00:00Z"));
    let store = Store::open(&dir.path().join("store")).unwrap();
    // An alert an analyst raised by hand: no rule found the credential dumping.
    let raw = serde_json::json!({
        "id": "501", "tenantId": "t", "displayName": "LSASS dumped on fs-02", "status": "resolved",
        "severity": "high", "classification": "truePositive", "determination": "malware",
        "createdDateTime": "2026-11-18T09:00:00Z", "lastUpdateDateTime": "2026-11-19T09:00:00Z",
        "alerts": [{
            "id": "a-501", "title": "LSASS memory read by procdump", "category": "CredentialAccess",
            "detectionSource": "manual", "serviceSource": "microsoftDefenderForEndpoint",
            "mitreTechniques": ["T1003.001"], "createdDateTime": "2026-11-18T09:00:00Z",
            "firstActivityDateTime": "2026-11-18T08:00:00Z", "lastActivityDateTime": "2026-11-18T08:10:00Z", "evidence": []
        }]
    });
    let observed = Observed::from_value(&raw).unwrap();
    store.ingest("examples", &[observed], None, None, clock.now()).unwrap();
    let catalog = Arc::new(hindsight::attack::store::embedded().unwrap());
    // An inventory that covers one unrelated technique: coverage is known, and T1003.001 is not
    // covered.
    let list = dir.path().join("rules.txt");
    std::fs::write(&list, "T1134\n").unwrap();
    let files = hindsight::inventory::Inventory::load(&[list], &catalog).unwrap();
    let engine = Engine::new(catalog.clone(), Some(Arc::new(files)), None, hindsight::review::Settings::default());
    hindsight::stages::review::review_pending(&store, &engine, &[], 100, clock.now()).unwrap();
    let period = Period::ending(t("2026-12-31T00:00:00Z"), Duration::days(365));
    let wide = Settings { top: 100, ..settings() };
    let digest =
        || hindsight::stages::digest::for_period(&store, &catalog, &[vec![]], period, &wide).unwrap().remove(0);
    let before = digest();
    let asked = before.follow_ups.iter().find(|f| f.kind == "add_detection").expect("a detection follow-up");
    assert_eq!(asked.state, "overdue", "due within days of the incident, and the period ends at the year's end");
    let technique = store.follow_up(&asked.id).unwrap().unwrap().techniques[0].clone();
    let rule = |status: &str| {
        serde_json::json!({
            "id": "r1", "displayName": format!("Hunt for {technique}"), "status": status,
            "queryCondition": {"queryText": "DeviceProcessEvents"},
            "detectionAction": {"alertTemplate": {"tactics": [{"tactic": "Execution", "techniques": [{"technique": technique}]}]}}
        })
    };
    let read_at = t("2026-11-25T06:00:00Z");
    let record =
        |status: &str| hindsight::store::DeployedRecord { read_at, rules: vec![rule(status)], sentinel: vec![] };

    store.set_deployed_rules("examples", &record("disabled")).await.unwrap();
    let off = digest();
    let same = off.follow_ups.iter().find(|f| f.id == asked.id).unwrap();
    assert_eq!((same.state.as_str(), &same.verified_by), ("overdue", &None), "a disabled rule verifies nothing");

    // An analyst marks it done on the incident (Defender comment): done, not yet verified.
    let mut marked = raw.clone();
    marked["lastUpdateDateTime"] = serde_json::json!("2026-11-26T10:00:00Z");
    marked["comments"] = serde_json::json!([{
        "comment": format!("Done: {} — rule written and switched on", asked.id),
        "createdByDisplayName": "det-eng@contoso.com", "createdDateTime": "2026-11-26T09:30:00Z"
    }]);
    let observed = Observed::from_value(&marked).unwrap();
    store.ingest("examples", &[observed], None, None, t("2026-11-26T10:05:00Z")).unwrap();
    let marked_done = digest();
    let f = marked_done.follow_ups.iter().find(|f| f.id == asked.id).unwrap();
    assert_eq!((f.state.as_str(), f.done_at), ("done", Some(t("2026-11-26T09:30:00Z"))));
    let text = hindsight::digest::render::text(&marked_done);
    assert!(
        text.contains("DONE 2026-11-26 (marked on the incident), not verified: no enabled rule covers it yet"),
        "{text}"
    );
    assert!(text.contains("1 marked done but not verified"), "{text}");

    store.set_deployed_rules("examples", &record("enabled")).await.unwrap();
    let on = digest();
    let done = on.follow_ups.iter().find(|f| f.id == asked.id).unwrap();
    assert_eq!(done.state, "verified");
    let by = done.verified_by.as_ref().unwrap();
    let label = format!("Defender custom detection \"Hunt for {technique}\"");
    assert_eq!((by.rule.as_str(), by.seen_at), (label.as_str(), Some(read_at)));
    let text = hindsight::digest::render::text(&on);
    assert!(
        text.contains(&format!("VERIFIED: {label} covers it (read from the tenant 2026-11-25 06:00 UTC)")),
        "{text}"
    );
}
