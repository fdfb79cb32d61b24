//! The gap analysis on the samples, held to issue 22's "done when": platform-aware candidates,
//! blind stages only where the activity implies them (with hunts scoped to the incident), vendor
//! detections counted as coverage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hindsight::attack::store;
use hindsight::inventory::Inventory;
use hindsight::model::Incident;
use hindsight::review::{CoverageState, DetectionInventory, Engine, History, Review, Settings, StageState, Subject};
use serde_json::Value;

fn raw(name: &str) -> Value {
    let path = format!("{}/examples/incidents/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A sample without the alerts whose title `drop` matches: the same incident had those alerts
/// not fired.
fn without(name: &str, drop: &[&str]) -> Incident {
    let mut v = raw(name);
    let alerts = v["alerts"].as_array_mut().unwrap();
    let before = alerts.len();
    alerts.retain(|a| !drop.iter().any(|d| a["title"].as_str().unwrap().contains(d)));
    assert_eq!(alerts.len() + drop.len(), before, "each title named drops one alert");
    Incident::from_graph(&v).unwrap()
}

fn review_with(incident: &Incident, inventory: Option<Arc<dyn DetectionInventory>>) -> Review {
    let catalog = Arc::new(store::embedded().unwrap());
    let engine = Engine::new(catalog, inventory, None, Settings::default());
    engine.review(&Subject { incident, source: "examples", revision: 1, transitions: &[] }, &History::default())
}

fn review(incident: &Incident) -> Review {
    review_with(incident, None)
}

const SAMPLES: &[&str] = &[
    "business-email-compromise",
    "false-positive-admin-tool",
    "human-operated-ransomware",
    "identity-only-intrusion",
    "legacy-technique-ids",
    "no-techniques",
    "phishing-credential-theft",
    "ransomware-unattended-alert",
    "recurring-phishing-1",
    "recurring-phishing-2",
];

fn blind(r: &Review) -> Vec<&str> {
    r.gaps.blind_stages.iter().map(|s| s.tactic.as_str()).collect()
}

#[test]
fn collection_exfiltration_and_impact_are_never_blind_only_observed() {
    for name in SAMPLES {
        let r = review(&Incident::from_graph(&raw(name)).unwrap());
        for s in &r.tactics {
            if matches!(s.shortname.as_str(), "collection" | "exfiltration" | "impact") {
                assert_ne!(s.state, StageState::Blind, "{name}: {} blind", s.shortname);
            }
            if s.state == StageState::Blind {
                assert!(s.reason.as_deref().is_some_and(|r| !r.is_empty()), "{name}: {} without a reason", s.shortname);
            }
        }
        for b in &r.gaps.blind_stages {
            assert!(!b.reason.is_empty(), "{name}: {} without a reason", b.tactic);
        }
    }
}

#[test]
fn a_business_email_compromise_gets_only_identity_mailbox_and_cloud_candidates() {
    let catalog = store::embedded().unwrap();
    // Without the fraud alert, nothing shows the way in: Initial Access is blind.
    let r = review(&without("business-email-compromise", &["BEC financial fraud"]));
    assert_eq!(blind(&r).first(), Some(&"initial-access"), "{:?}", blind(&r));
    let candidates: Vec<&str> = r.gaps.blind_stages.iter().flat_map(|s| &s.likely).map(|l| l.id.as_str()).collect();
    assert!(!candidates.is_empty());
    for id in &candidates {
        let t = catalog.technique(id).unwrap();
        assert!(
            t.platforms
                .iter()
                .any(|p| matches!(p.as_str(), "Identity Provider" | "Office Suite" | "Office 365" | "SaaS" | "IaaS")),
            "{id} ({:?}) for a cloud-only incident",
            t.platforms
        );
    }
    for h in r.gaps.blind_stages.iter().flat_map(|s| &s.likely).flat_map(|l| &l.hunts) {
        assert!(!h.table.starts_with("Device"), "{}: an endpoint table for a cloud-only incident", h.id);
    }
    assert!(!blind(&r).contains(&"execution"), "no endpoint activity: Execution is not implied");
}

#[test]
fn an_endpoint_ransomware_gets_windows_candidates_with_hunts_scoped_to_its_hosts() {
    let catalog = store::embedded().unwrap();
    let r = review(&Incident::from_graph(&raw("ransomware-unattended-alert")).unwrap());
    assert_eq!(blind(&r), ["initial-access", "execution"]);
    let execution = &r.gaps.blind_stages[1];
    assert!(execution.reason.contains("endpoint alerts"), "{}", execution.reason);
    for l in &execution.likely {
        assert!(catalog.technique(&l.id).unwrap().platforms.iter().any(|p| p == "Windows"), "{}", l.id);
    }
    let scoped: Vec<_> = execution.likely.iter().flat_map(|l| &l.hunts).filter(|h| h.scope == "incident").collect();
    assert!(!scoped.is_empty(), "Execution candidates have scoped hunts");
    for h in scoped {
        assert!(
            h.kql.contains("\"fab-app-03\"") || h.kql.contains("fab-app-03."),
            "{}: not scoped to the hosts: {}",
            h.id,
            h.kql
        );
        assert!(
            h.kql.contains("datetime(2026-06-01T03:18:00Z)"),
            "{}: window starts a day before the first activity",
            h.id
        );
    }
    let w = r.gaps.hunt_window.as_ref().unwrap();
    assert_eq!(w.run_before.to_rfc3339(), "2026-07-01T03:18:00+00:00");
    // Hands on a keyboard over RDP: the session is the channel, C2 is not called blind.
    let hor = review(&Incident::from_graph(&raw("human-operated-ransomware")).unwrap());
    let c2 = hor.tactics.iter().find(|t| t.shortname == "command-and-control").unwrap();
    assert_ne!(c2.state, StageState::Blind);
}

#[test]
fn an_identity_only_intrusion_with_an_unalerted_sign_in_starts_blind_at_initial_access_with_a_sign_in_hunt() {
    let r = review(&without("identity-only-intrusion", &["Unfamiliar sign-in properties", "Atypical travel"]));
    let first = r.gaps.blind_stages.first().expect("a blind stage");
    assert_eq!(first.tactic, "initial-access");
    assert!(first.reason.contains("Suspicious OAuth app consent"), "{}", first.reason);
    let sign_in = first
        .likely
        .iter()
        .flat_map(|l| &l.hunts)
        .find(|h| h.table.contains("SignIn") || h.table == "IdentityLogonEvents")
        .unwrap_or_else(|| {
            panic!("no sign-in hunt among {:?}", first.likely.iter().map(|l| (&l.id, &l.hunt_note)).collect::<Vec<_>>())
        });
    assert_eq!(sign_in.scope, "incident");
    assert!(sign_in.kql.contains("@"), "scoped to the account: {}", sign_in.kql);
}

#[test]
fn with_an_inventory_a_technique_defender_alerted_on_is_vendor_or_both_never_add_a_detection() {
    let catalog = store::embedded().unwrap();
    let dir = std::env::temp_dir().join(format!("hindsight-gaps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A Sigma rule for one of the observed techniques, a Navigator layer with a parent only.
    std::fs::write(
        dir.join("ntds.yml"),
        "title: NTDS.dit copied with ntdsutil\nid: 2afafd61-6aae-4df4-baed-139fa1f4c345\nstatus: test\ntags:\n  - attack.credential-access\n  - attack.t1003.003\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n  selection:\n    Image|endswith: '\\ntdsutil.exe'\n  condition: selection\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("layer.json"),
        r#"{"name": "SOC rules", "versions": {"layer": "4.5", "navigator": "5.1.0", "attack": "18"}, "domain": "enterprise-attack",
            "techniques": [{"techniqueID": "T1071", "score": 1, "enabled": true, "comment": "Proxy beaconing rule"}]}"#,
    )
    .unwrap();
    let inv = Inventory::load(std::slice::from_ref(&dir), &catalog).unwrap();
    let r = review_with(&Incident::from_graph(&raw("ransomware-unattended-alert")).unwrap(), Some(Arc::new(inv)));
    std::fs::remove_dir_all(&dir).unwrap();
    for c in &r.gaps.coverage {
        assert!(matches!(c.state, CoverageState::Vendor | CoverageState::Both), "{}: {:?}", c.technique, c.state);
    }
    let ntds = r.gaps.coverage.iter().find(|c| c.technique == "T1003.003").unwrap();
    assert_eq!(ntds.state, CoverageState::Both);
    assert_eq!(ntds.rules, ["NTDS.dit copied with ntdsutil"]);
    let web = r.gaps.coverage.iter().find(|c| c.technique == "T1071.001").unwrap();
    assert_eq!(web.state, CoverageState::Vendor);
    assert_eq!(web.note.as_deref(), Some("T1071 rule exists; not specific to T1071.001"));
    assert!(r.gaps.uncovered.is_empty(), "{:?}", r.gaps.uncovered);
    for f in &r.follow_ups {
        let observed = r.techniques.iter().any(|t| f.title.contains(&t.id));
        assert!(
            !(observed && f.title.to_lowercase().contains("add a detection")),
            "asks to add a detection Defender already has: {}",
            f.title
        );
    }
}
