//! Knowledge gaps without noise and Microsoft 365 controls for the licence the organisation has,
//! over the sample incidents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hindsight::attack::store;
use hindsight::controls::{Controls, Licence};
use hindsight::model::Incident;
use hindsight::review::{Engine, History, KnowledgeGap, Review, Settings, Subject, render};
use serde_json::Value;

const EXAMPLES: [&str; 10] = [
    "phishing-credential-theft",
    "human-operated-ransomware",
    "business-email-compromise",
    "false-positive-admin-tool",
    "identity-only-intrusion",
    "legacy-technique-ids",
    "no-techniques",
    "ransomware-unattended-alert",
    "recurring-phishing-1",
    "recurring-phishing-2",
];

const NO_HISTORY: &str = "No history of earlier reviews: what is new to the team is not assessed (offline review).";

fn example(name: &str) -> Incident {
    let path = format!("{}/examples/incidents/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Incident::from_graph(&raw).unwrap()
}

fn engine(licence: Option<Licence>) -> Engine {
    let catalog = store::embedded().unwrap();
    let controls = Controls::embedded(&catalog).unwrap();
    let settings = Settings { licence, ..Settings::default() };
    Engine::new(Arc::new(catalog), None, Some(Arc::new(controls)), settings)
}

fn review(engine: &Engine, incident: &Incident, history: &History) -> Review {
    engine.review(&Subject { incident, source: "examples", revision: 1, transitions: &[] }, history)
}

fn first_seen(r: &Review) -> Vec<&str> {
    r.knowledge_gaps
        .iter()
        .filter_map(|g| match g {
            KnowledgeGap::FirstSeen { technique, .. } => Some(technique.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_offline_review_lists_nothing_as_first_seen_and_says_it_has_no_history() {
    let engine = engine(None);
    let r = review(&engine, &example("human-operated-ransomware"), &History::default());
    assert!(first_seen(&r).is_empty(), "{:?}", r.knowledge_gaps);
    assert!(!r.basis.history_recorded);
    for text in [render::text(&r), render::markdown(&r), render::html(&r)] {
        assert_eq!(text.matches(NO_HISTORY).count(), 1, "{text}");
        assert!(!text.contains("First time for this organisation"), "{text}");
    }
}

#[test]
fn with_a_recorded_history_a_technique_seen_before_is_not_listed_and_a_new_one_is() {
    let engine = engine(None);
    let incident = example("phishing-credential-theft");
    let history = History { techniques_seen: ["T1557".to_owned()].into(), recorded: true, ..History::default() };
    let r = review(&engine, &incident, &history);
    assert!(r.basis.history_recorded);
    let new = first_seen(&r);
    assert!(!new.contains(&"T1557"), "{new:?}");
    assert!(new.contains(&"T1566.002"), "{new:?}");
    let text = render::text(&r);
    assert!(!text.contains(NO_HISTORY), "{text}");
    assert!(text.contains("First time for this organisation: T1566.002"), "{text}");
    assert!(!text.contains("First time for this organisation: T1557 "), "{text}");
}

#[test]
fn no_sample_review_has_a_no_mitigation_or_no_detection_data_line() {
    let engine = engine(None);
    for name in EXAMPLES {
        let r = review(&engine, &example(name), &History { recorded: true, ..History::default() });
        assert!(
            !r.knowledge_gaps
                .iter()
                .any(|g| matches!(g, KnowledgeGap::NoMitigation { .. } | KnowledgeGap::NoDetectionData { .. })),
            "{name}: {:?}",
            r.knowledge_gaps
        );
        let text = render::text(&r);
        assert!(!text.contains("lists no mitigation") && !text.contains("no detection data"), "{name}: {text}");
    }
}

#[test]
fn a_deprecated_id_is_reported_as_deprecated_and_a_revoked_one_with_its_replacement() {
    let r = review(&engine(None), &example("legacy-technique-ids"), &History::default());
    let text = render::text(&r);
    assert!(text.contains("Deprecated technique ID T1064 (ATT&CK no longer maintains it; no replacement)"), "{text}");
    assert!(!text.contains("now T1064"), "{text}");
    assert!(text.contains("Outdated technique ID T1086 (now T1059.001)"), "{text}");
    // A review stored before deprecated IDs were told apart named T1064 as its own current ID.
    let mut stored = r.clone();
    for g in &mut stored.knowledge_gaps {
        if let KnowledgeGap::OutdatedId { received, current, .. } = g
            && received == "T1064"
        {
            *current = Some("T1064".into());
        }
    }
    let text = render::text(&stored);
    assert!(text.contains("Deprecated technique ID T1064") && !text.contains("now T1064"), "{text}");
}

/// No heading is followed by nothing: in the Markdown, every heading has content before the
/// next heading of its level or above (a `###` under a `##` is content of the `##`).
#[test]
fn no_sample_review_has_an_empty_section() {
    for (engine, history) in [
        (engine(None), History::default()),
        (engine(Some(Licence::E3)), History { recorded: true, ..History::default() }),
    ] {
        for name in EXAMPLES {
            let md = render::markdown(&review(&engine, &example(name), &history));
            let lines: Vec<&str> = md.lines().filter(|l| !l.trim().is_empty()).collect();
            let level = |l: &str| l.starts_with('#').then(|| l.chars().take_while(|&c| c == '#').count());
            for (i, l) in lines.iter().enumerate() {
                let Some(n) = level(l) else { continue };
                let next = lines.get(i + 1).map(|x| level(x));
                assert!(
                    matches!(next, Some(None)) || matches!(next, Some(Some(m)) if m > n),
                    "{name}: empty section {l:?}\n{md}"
                );
            }
        }
    }
}

#[test]
fn with_licence_e3_no_e5_control_is_listed_and_the_review_says_so() {
    let incident = example("human-operated-ransomware");
    let all = review(&engine(None), &incident, &History::default());
    assert!(all.controls.iter().any(|c| c.licence.as_deref() == Some("E5")), "the sample has E5 controls to filter");
    assert_eq!(all.basis.licence, None);

    let e3 = review(&engine(Some(Licence::E3)), &incident, &History::default());
    assert!(!e3.controls.is_empty());
    assert!(e3.controls.iter().all(|c| c.licence.as_deref() == Some("E3")), "{:?}", e3.controls);
    assert_eq!(e3.basis.licence.as_deref(), Some("E3"));
    let text = render::text(&e3);
    assert!(text.contains("Microsoft 365 controls available with E3"), "{text}");
    assert!(text.contains("Microsoft 365 control mappings for ATT&CK 16.1 (CTID), filtered for licence E3"), "{text}");
    for c in all.controls.iter().filter(|c| c.licence.as_deref() == Some("E5")) {
        assert!(!text.contains(&c.capability_id), "{} listed at E3: {text}", c.capability_id);
    }

    // E5 includes E3: the same controls as without a filter (every mapped control is E3 or E5).
    let e5 = review(&engine(Some(Licence::E5)), &incident, &History::default());
    assert_eq!(e5.controls, all.controls);
    assert_eq!(e5.basis.licence.as_deref(), Some("E5"));
}

#[test]
fn the_mappings_attack_version_is_shown_beside_the_catalogs_in_every_format() {
    let r = review(&engine(None), &example("phishing-credential-theft"), &History::default());
    let catalog = r.basis.attack_version.clone().unwrap();
    for text in [render::text(&r), render::markdown(&r), render::html(&r).replace("&amp;", "&")] {
        assert!(text.contains(&format!("Made against ATT&CK enterprise-attack {catalog}")), "{text}");
        assert!(text.contains("Microsoft 365 control mappings for ATT&CK 16.1 (CTID)"), "{text}");
    }
}
