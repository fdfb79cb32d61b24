//! The Power Automate, Teams and Slack bodies built from a sample review's event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hindsight::attack::store;
use hindsight::model::Incident;
use hindsight::notify::presets::{DEFAULT_PORTAL_HOSTS, TEAMS_MAX_BYTES, power_automate, slack, teams};
use hindsight::notify::{Subscription, entries_for};
use hindsight::outbox::{Payload, with_review};
use hindsight::review::{Engine, History, Settings, Subject};
use hindsight::store::ResolutionKey;
use serde_json::Value;

/// A sample review's notification: its envelope and the review it carries.
fn event(name: &str, inflate: usize) -> (Value, Payload) {
    let path = format!("{}/examples/incidents/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let incident = Incident::from_graph(&raw).unwrap();
    let catalog = store::embedded().unwrap();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    let mut review = engine.review(
        &Subject { incident: &incident, source: "contoso", revision: 1, transitions: &[] },
        &History::default(),
    );
    let template = review.follow_ups[0].clone();
    for n in 0..inflate {
        let mut f = template.clone();
        f.id = format!("FU-{n}");
        f.title = format!("{} <b>&</b> {}", "x".repeat(200), n);
        review.follow_ups.push(f);
    }
    let key = ResolutionKey::new("contoso", &incident.id, 1);
    let now = "2026-11-24T12:00:00Z".parse().unwrap();
    let entry = entries_for(&key, &review, &[Subscription::everything("d")], now).remove(0);
    // The generic event (what a webhook gets) holds the review the presets read, field for field.
    assert_eq!(with_review(entry.clone(), &review).body["review"], serde_json::to_value(&review).unwrap());
    (entry.body, Payload::Review(Box::new(review)))
}

#[test]
fn power_automate_gets_flat_fields_for_conditions() {
    let (envelope, review) = event("human-operated-ransomware", 0);
    let pa = power_automate(&envelope, &review);
    assert_eq!(pa["severity"], "high");
    assert_eq!(pa["classification"], "truePositive");
    assert_eq!(pa["incident_id"], "1077");
    assert!(pa["techniques"].as_array().unwrap().iter().any(|t| t == "T1486"));
    // Every stage its activity implies was alerted on; over RDP, the session was the channel.
    assert_eq!(pa["blind_stages"], serde_json::json!([]));
    assert_eq!(pa["top_attribution"], "G1015 Scattered Spider");
    insta::assert_json_snapshot!("power-automate", pa);
}

/// `event`'s review with a story as v2 reviews tell it: five summary lines, an outcome, times
/// to acknowledge and contain, unattended alerts and a recurrence.
fn with_story(event: (Value, Payload)) -> (Value, Payload, hindsight::review::Review) {
    use hindsight::review::{Recurring, UnattendedAlert};
    let Payload::Review(mut r) = event.1 else { panic!("a review") };
    r.story.summary = (1..=5).map(|n| format!("line {n}")).collect();
    r.story.outcome.headline = "true positive — multi-staged attack, resolved by ir.oncall@contoso.com".into();
    r.metrics.time_to_acknowledge_s = Some(600);
    r.metrics.time_to_contain_s = None;
    r.story.recurring = Some(Recurring {
        what: "T1566.002".into(),
        incidents: vec!["1001".into()],
        note: "twice in six months".into(),
    });
    let created = "2026-10-20T22:30:00Z".parse().unwrap();
    let unattended = UnattendedAlert {
        alert: "a1".into(),
        title: "t".into(),
        severity: "high".into(),
        created,
        acted_on: None,
        delay_s: 108_000,
    };
    r.unattended_alerts = vec![unattended.clone(), unattended];
    let review = (*r).clone();
    (event.0, Payload::Review(r), review)
}

#[test]
fn power_automate_carries_the_v2_story_as_plain_values() {
    let (envelope, payload, r) = with_story(event("human-operated-ransomware", 0));
    let pa = power_automate(&envelope, &payload);
    assert_eq!(pa["schema_version"], 2);
    assert_eq!(pa["outcome_headline"], r.story.outcome.headline.as_str());
    let names = hindsight::notify::presets::SUMMARY_FIELDS;
    for (n, name) in names.iter().enumerate() {
        assert_eq!(pa[*name], format!("line {}", n + 1), "{name}");
    }
    assert_eq!(pa["summary_text"], "line 1\nline 2\nline 3\nline 4\nline 5");
    assert_eq!(pa["entities"], r.incident.entities.len());
    assert_eq!(pa["unattended_alerts"], 2);
    assert_eq!(pa["time_to_acknowledge_s"], 600);
    assert!(pa["time_to_contain_s"].is_null(), "unknowable is null, not 0");
    assert_eq!(pa["recurring"], true);
    // Every value is plain: a flow's condition tests it without parsing JSON further.
    for key in ["outcome_headline", "summary_text", "entities", "unattended_alerts", "recurring"] {
        assert!(!pa[key].is_object() && !pa[key].is_array(), "{key}");
    }
}

#[test]
fn power_automate_without_a_story_says_so_plainly() {
    let (envelope, payload) = event("human-operated-ransomware", 0);
    let Payload::Review(mut r) = payload else { panic!("a review") };
    r.story = Default::default();
    r.metrics.time_to_acknowledge_s = None;
    let pa = power_automate(&envelope, &Payload::Review(r));
    // The headline falls back to Graph's classification, determination and status.
    assert_eq!(pa["outcome_headline"], "truePositive / multiStagedAttack (resolved)");
    assert!(pa["summary_what_happened"].is_null() && pa["summary_detection_response"].is_null());
    assert_eq!(pa["summary_text"], "");
    assert_eq!(pa["recurring"], false);
    assert!(pa["time_to_acknowledge_s"].is_null());
}

#[test]
fn teams_cards_begin_with_the_outcome_headline() {
    let (envelope, payload, r) = with_story(event("human-operated-ransomware", 0));
    let card = teams(&envelope, &payload, DEFAULT_PORTAL_HOSTS);
    let texts = teams_texts(&card);
    assert_eq!(texts[0], r.story.outcome.headline, "{texts:?}");
    assert!(texts[1].starts_with("Post-incident review:"), "{texts:?}");
    // The headline is incident text (an analyst's name): escaped like any other.
    let (envelope, payload, _) = with_story(event("human-operated-ransomware", 0));
    let Payload::Review(mut hostile) = payload else { panic!("a review") };
    hostile.story.outcome.headline = "resolved by [me](https://evil.example)\n- forged".into();
    let card = teams(&envelope, &Payload::Review(hostile), DEFAULT_PORTAL_HOSTS);
    let first = &teams_texts(&card)[0];
    assert!(!first.contains('\n') && first.contains("\\[me\\]"), "{first}");
}

#[test]
fn teams_gets_an_adaptive_card_within_its_size_limit() {
    let (envelope, review) = event("human-operated-ransomware", 0);
    let card = teams(&envelope, &review, DEFAULT_PORTAL_HOSTS);
    let content = &card["attachments"][0]["content"];
    assert_eq!(card["type"], "message");
    assert_eq!(card["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(content["type"], "AdaptiveCard");
    assert_eq!(content["actions"][0]["type"], "Action.OpenUrl");
    insta::assert_json_snapshot!("teams", card);
    // A review with 500 long follow-ups still fits.
    let (envelope, big) = event("human-operated-ransomware", 500);
    let big = teams(&envelope, &big, DEFAULT_PORTAL_HOSTS);
    assert!(serde_json::to_vec(&big).unwrap().len() <= TEAMS_MAX_BYTES);
}

#[test]
fn slack_gets_block_kit_within_its_limits_and_escaped() {
    let (envelope, review) = event("human-operated-ransomware", 500);
    let msg = slack(&envelope, &review, DEFAULT_PORTAL_HOSTS);
    let blocks = msg["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            assert!(t.chars().count() <= 3000, "{}", t.len());
            assert!(!t.contains("<b>"), "Slack control characters are escaped");
        }
    }
    assert!(msg["text"].as_str().unwrap().starts_with("Post-incident review:"));
}

/// A digest event of the samples, with as many follow-ups as a busy week brings.
fn digest_event() -> (Value, Payload) {
    let catalog = store::embedded().unwrap();
    let catalog = std::sync::Arc::new(catalog);
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    let mut summaries = Vec::new();
    for f in std::fs::read_dir(format!("{}/examples/incidents", env!("CARGO_MANIFEST_DIR"))).unwrap() {
        let raw: Value = serde_json::from_str(&std::fs::read_to_string(f.unwrap().path()).unwrap()).unwrap();
        let incident = Incident::from_graph(&raw).unwrap();
        let review = engine.review(
            &Subject { incident: &incident, source: "contoso", revision: 1, transitions: &[] },
            &History::default(),
        );
        summaries.push(hindsight::digest::Summary::of(&review, incident.last_update));
    }
    let views: Vec<_> = summaries.iter().map(hindsight::digest::Summary::view).collect();
    let end = "2026-11-30T00:00:00Z".parse().unwrap();
    let settings = hindsight::digest::Settings {
        top: 40,
        attack_domain: "enterprise-attack".into(),
        attack_version: None,
        shard: None,
    };
    let digest = hindsight::digest::compute(
        &views,
        hindsight::digest::Period::ending(end, chrono::Duration::days(90)),
        &[],
        &settings,
        &*catalog,
    );
    let entry = hindsight::notify::entries_for_digest(&digest, &[Subscription::everything("d")], end).remove(0);
    (entry.body, Payload::Digest(Box::new(digest)))
}

#[test]
fn digests_get_their_own_flat_fields_card_and_message() {
    let (event, digest) = digest_event();
    assert_eq!(event["event"], "digest.weekly");
    let pa = power_automate(&event, &digest);
    // The samples resolved in the 90 days to 30 November (8 of 10: the ransomware of June and
    // the first phishing of August are older), one of them a false positive.
    assert_eq!(pa["incidents"], 8);
    assert_eq!(pa["false_positives"], 1);
    assert_eq!(pa["period_end"], "2026-11-30T00:00:00Z");
    assert!(pa["follow_ups"].as_array().unwrap().len() > 10);
    assert!(pa["top_techniques"].as_array().unwrap().iter().any(|t| t == "T1003.001"));
    let card = teams(&event, &digest, DEFAULT_PORTAL_HOSTS);
    assert!(serde_json::to_vec(&card).unwrap().len() <= TEAMS_MAX_BYTES);
    let text = card.to_string();
    assert!(text.contains("Hindsight digest 2026-09-01 to 2026-11-30") && text.contains("Open follow-ups"), "{text}");
    let s = slack(&event, &digest, DEFAULT_PORTAL_HOSTS);
    assert!(s["blocks"].as_array().unwrap().len() <= 50);
    assert!(s["text"].as_str().unwrap().starts_with("Hindsight digest"));
}

/// The notification of a review of `raw` (a Graph incident): its envelope and the review.
fn event_of(raw: Value) -> (Value, Payload) {
    let incident = Incident::from_graph(&raw).unwrap();
    let catalog = std::sync::Arc::new(store::embedded().unwrap());
    let engine = Engine::new(catalog.clone(), None, None, Settings::default());
    let review = engine.review(
        &Subject { incident: &incident, source: "contoso", revision: 1, transitions: &[] },
        &History::default(),
    );
    let key = ResolutionKey::new("contoso", &incident.id, 1);
    let now = "2026-11-24T12:00:00Z".parse().unwrap();
    (
        entries_for(&key, &review, &[Subscription::everything("d")], now).remove(0).body,
        Payload::Review(Box::new(review)),
    )
}

/// The Teams card and the Slack message of a notification, linking to the Defender portals.
fn teams_of(event: &(Value, Payload)) -> Value {
    teams(&event.0, &event.1, DEFAULT_PORTAL_HOSTS)
}

fn slack_of(event: &(Value, Payload)) -> Value {
    slack(&event.0, &event.1, DEFAULT_PORTAL_HOSTS)
}

/// An incident whose title disguises a link and whose alert title forges follow-up lines in
/// Teams (`- `) and Slack (`• `), with a link to somewhere other than the Defender portal.
fn hostile(title: &str, url: &str) -> Value {
    serde_json::json!({"id": "3001", "status": "resolved", "severity": "high", "classification": "truePositive",
    "displayName": title, "lastUpdateDateTime": "2026-11-20T10:00:00Z", "incidentWebUrl": url,
    "alerts": [
        {"id": "a1", "title": "Encoded PowerShell", "category": "Execution", "mitreTechniques": ["T1059.001"],
         "createdDateTime": "2026-11-20T09:00:00Z", "firstActivityDateTime": "2026-11-20T08:58:00Z"},
        // The organisation's own rule: the follow-up that maps it quotes its title.
        {"id": "a2", "title": "Odd beacon\n- [high] Forged Teams follow-up\n• [high] Forged Slack follow-up",
         "category": "Unknown", "detectionSource": "customDetection", "createdDateTime": "2026-11-20T09:10:00Z"}
    ]})
}

/// Every text a Teams card shows: TextBlocks, facts and actions.
fn teams_texts(card: &Value) -> Vec<String> {
    let content = &card["attachments"][0]["content"];
    let mut out = Vec::new();
    for b in content["body"].as_array().unwrap() {
        if let Some(t) = b["text"].as_str() {
            out.push(t.to_owned());
        }
        for f in b["facts"].as_array().into_iter().flatten() {
            out.push(f["value"].as_str().unwrap().to_owned());
        }
    }
    out
}

#[test]
fn a_huge_title_is_clipped_and_the_card_stays_under_the_teams_cap() {
    let title = format!("Big {}", "ä".repeat(101 * 1024 / 2));
    let event = event_of(hostile(&title, "https://security.microsoft.com/incident2/3001/overview"));
    let card = teams_of(&event);
    let size = serde_json::to_vec(&card).unwrap().len();
    assert!(size <= TEAMS_MAX_BYTES, "{size} bytes");
    // The outcome headline is the first line; the title the second.
    let shown = &teams_texts(&card)[1];
    assert!(shown.ends_with('…') && shown.chars().count() < 400, "{}", shown.chars().count());
    let msg = slack_of(&event);
    let size = serde_json::to_vec(&msg).unwrap().len();
    assert!(size <= 16 * 1024, "{size} bytes");
}
const DISGUISED: &str = "Phish [Open in Microsoft Defender](https://evil.example/x) **urgent**\n- [high] Forged line";

#[test]
fn teams_cards_carry_no_forged_link_line_or_action() {
    let card = teams_of(&event_of(hostile(DISGUISED, "https://evil.example/incident2/3001")));
    let texts = teams_texts(&card);
    let title = &texts[1];
    assert!(!title.contains('\n'), "a single-line field keeps to one line: {title:?}");
    for t in &texts {
        // What markdown acts on once the backslash-escaped characters are taken out.
        let mut bare = String::new();
        let mut chars = t.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                chars.next();
            } else {
                bare.push(c);
            }
        }
        assert!(!bare.contains("](") && !bare.contains("**"), "link or emphasis markdown unescaped: {t:?}");
        for line in t.lines() {
            let line = line.trim_start();
            // The alert title stays inside its own follow-up ("Map your detection …").
            // The summary's first line tells what happened under the incident's title.
            let forged = line.contains("Forged")
                && !line.contains("Map your detection")
                && !line.starts_with("Post-incident")
                && !line.starts_with("What happened:");
            assert!(!forged, "a forged follow-up line: {t:?}");
        }
    }
    // The card lists the first three follow-ups; the hostile title reaches it through the
    // summary, escaped like every other field.
    assert!(texts.iter().any(|t| t.starts_with("What happened: Phish \\[Open in Microsoft Defender\\]")), "{texts:?}");
    assert!(title.contains("Open in Microsoft Defender"), "the text is kept, escaped: {title}");
    let actions = card["attachments"][0]["content"]["actions"].as_array().unwrap();
    assert!(actions.is_empty(), "an action to a host that is not the Defender portal: {actions:?}");
    // The portal hosts of the government clouds are links as well.
    for url in ["https://security.microsoft.us/incident2/1/overview", "https://security.apps.mil/incident2/1/overview"]
    {
        let card = teams_of(&event_of(hostile("t", url)));
        assert_eq!(card["attachments"][0]["content"]["actions"][0]["url"], url);
    }
    for url in ["https://security.microsoft.com.evil.example/x", "https://security.microsoft.com@evil.example/x"] {
        let card = teams_of(&event_of(hostile("t", url)));
        assert!(card["attachments"][0]["content"]["actions"].as_array().unwrap().is_empty(), "{url}");
    }
}

#[test]
fn slack_messages_carry_no_forged_bullet_or_link() {
    let msg = slack_of(&event_of(hostile(DISGUISED, "https://evil.example/incident2/3001")));
    let text = msg.to_string();
    assert!(!text.contains("<https://evil.example"), "a link to a host that is not the Defender portal: {text}");
    for b in msg["blocks"].as_array().unwrap() {
        for t in b["text"]["text"]
            .as_str()
            .into_iter()
            .chain(b["fields"].as_array().into_iter().flatten().filter_map(|f| f["text"].as_str()))
        {
            for line in t.lines() {
                assert!(!line.starts_with("• [high] Forged") && !line.starts_with("- [high] Forged"), "{t:?}");
            }
            if t.contains("Odd beacon") {
                assert!(t.contains("Odd beacon - [high] Forged Teams follow-up • [high] Forged Slack"), "{t:?}");
            }
        }
    }
}

/// `event`'s review amended by its retro-hunts (`review.hunted`): two hunts with rows (one
/// titled to forge a line and a link), one that found nothing, one that could not run.
fn hunted(event: (Value, Payload)) -> (Value, Payload) {
    use hindsight::review::{HuntResult, RetroHunts};
    let Payload::Review(mut r) = event.1 else { panic!("a review") };
    let stage = r.gaps.blind_stages.first().map(|b| (b.tactic.clone(), b.name.clone()));
    let (tactic, name) = stage.expect("the sample has a blind stage");
    let result = |title: &str, status: &str, rows: usize, reason: Option<&str>| HuntResult {
        id: format!("H-{title}"),
        title: title.into(),
        stage: tactic.clone(),
        technique: "T1021.002".into(),
        status: status.into(),
        reason: reason.map(Into::into),
        detail: None,
        timespan: None,
        rows,
        columns: vec![],
        first_rows: vec![],
    };
    r.retro_hunts = Some(RetroHunts {
        finished_at: "2026-11-24T13:00:00Z".parse().unwrap(),
        ran: 3,
        with_hits: 2,
        results: vec![
            result("SMB logons from the first host", "hits", 12, None),
            result("Sneaky [Open](https://evil.example) **x**\n- forged", "hits", 1, None),
            result("Scheduled tasks", "no_rows", 0, None),
            result("Old sign-ins", "not_run", 0, Some("retention")),
        ],
    });
    assert!(!name.is_empty());
    (event.0, Payload::Review(r))
}

/// A channel that takes `review.hunted` learns what the hunts found, before the summary it has
/// seen already; the first card says nothing of hunts.
#[test]
fn teams_and_slack_say_what_the_retro_hunts_found() {
    let first = event("ransomware-unattended-alert", 0);
    assert!(!teams_texts(&teams_of(&first)).iter().any(|t| t.contains("Retro-hunts")));
    assert!(!slack_of(&first).to_string().contains("Retro-hunts"));

    let event = hunted(event("ransomware-unattended-alert", 0));
    let Payload::Review(r) = &event.1 else { panic!("a review") };
    let stage = &r.gaps.blind_stages[0].name;
    let texts = teams_texts(&teams_of(&event));
    let heading = texts.iter().position(|t| t == "Retro-hunts: 2 of 4 returned rows, 1 could not run");
    let summary = texts.iter().position(|t| t == "Summary");
    assert!(heading.is_some() && (summary.is_none() || heading < summary), "{texts:#?}");
    let list = &texts[heading.unwrap() + 1];
    assert!(list.starts_with(&format!("- SMB logons from the first host — {stage}, T1021.002: 12 row(s)\n")), "{list}");
    assert_eq!(list.lines().count(), 2, "one line per hunt with rows, none forged: {list}");
    assert!(list.contains(r"Sneaky \[Open\](https://evil.example) \*\*x\*\* - forged"), "{list}");

    let msg = slack_of(&event);
    let blocks = msg["blocks"].as_array().unwrap();
    let hunts = blocks.iter().find_map(|b| b["text"]["text"].as_str().filter(|t| t.contains("Retro-hunts"))).unwrap();
    assert_eq!(hunts.lines().count(), 3, "{hunts}");
    assert!(hunts.starts_with("*Retro-hunts: 2 of 4 returned rows, 1 could not run*\n• SMB logons"), "{hunts}");
    assert!(hunts.contains("12 row(s)") && !hunts.contains("<https"), "{hunts}");
}
