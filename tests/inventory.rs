//! Loading a realistic detection inventory folder (Navigator layers 4.5 and 3.0, Sigma rules in
//! nested folders, Elastic rules, a CSV list) against the embedded catalog.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use hindsight::attack::store;
use hindsight::inventory::{Coverage, Inventory};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventory")
}

#[test]
fn a_folder_of_every_format() {
    let catalog = store::embedded().unwrap();
    let inv = Inventory::load(&[dir()], &catalog).unwrap();
    let covered: Vec<&str> = inv.covered_ids().collect();
    // Layer 4.5: T1566.002, T1078 (T1486 has score 0, T1490 is disabled); layer 3.0: T1086 →
    // T1059.001, T1047; Sigma: T1003.001, T1070, T1490, T1086 → T1059.001 (the deprecated rule's
    // T1003 is not counted); Elastic: T1021, T1543, T1543.003, T1567, T1567.002; CSV: T1110.003,
    // T1557 (T9999 is unknown).
    assert_eq!(
        covered,
        [
            "T1003.001",
            "T1021",
            "T1047",
            "T1059.001",
            "T1070",
            "T1078",
            "T1110.003",
            "T1490",
            "T1543",
            "T1543.003",
            "T1557",
            "T1566.002",
            "T1567",
            "T1567.002"
        ]
    );
    assert_eq!(inv.sources().len(), 8, "{:#?}", inv.sources());
    let problems = inv.problems().join("\n");
    assert!(problems.contains("broken.yml: skipped: not valid YAML"), "{problems}");
    assert!(
        problems.contains(
            "T1086 in \"Suspicious Encoded PowerShell Command Line (old tags)\" is revoked; counted as T1059.001"
        ),
        "{problems}"
    );
    assert!(problems.contains("T9999 in \"coverage.csv:5\" is not a current ATT&CK technique"), "{problems}");
    assert!(problems.contains("rule \"Old Mimikatz Command Line\" is deprecated"), "{problems}");
}

#[test]
fn a_sub_technique_rule_covers_its_parent_not_the_reverse() {
    let catalog = store::embedded().unwrap();
    let inv = Inventory::load(&[dir()], &catalog).unwrap();
    // T1003.001 has a rule: it and its parent T1003 are covered, its sibling T1003.002 is not.
    assert!(matches!(inv.coverage(&catalog, "T1003.001"), Coverage::Covered { .. }));
    assert_eq!(
        inv.coverage(&catalog, "T1003"),
        Coverage::Covered { by: vec!["Lsass Memory Dump via Comsvcs DLL".into()] }
    );
    assert_eq!(inv.coverage(&catalog, "T1003.002"), Coverage::NotCovered);
    // T1021 has a rule of its own: that says nothing about T1021.002 specifically.
    assert_eq!(inv.coverage(&catalog, "T1021.002"), Coverage::NotCovered);
    assert_eq!(inv.coverage(&catalog, "T1486"), Coverage::NotCovered);
}

#[test]
fn an_explicit_file_must_be_readable_and_no_inventory_is_no_error() {
    let catalog = store::embedded().unwrap();
    let err = Inventory::load(&[dir().join("sigma/broken.yml")], &catalog).unwrap_err().to_string();
    assert!(err.contains("broken.yml is not a detection inventory Hindsight can read: not valid YAML"), "{err}");
    let err = Inventory::load(&[dir().join("missing.json")], &catalog).unwrap_err().to_string();
    assert!(err.contains("cannot read the detection inventory"), "{err}");
    assert!(Inventory::load(&[], &catalog).unwrap().is_empty());
}

/// The deployed rules as Microsoft's APIs list them: an enabled Defender custom detection
/// covers, a disabled one and an auto-disabled one do not and are named, a disabled Sentinel
/// rule likewise; the review says which rule would have covered the technique and the
/// follow-up asks to turn it back on instead of writing a new rule.
#[test]
fn deployed_rules_from_graph_and_arm_count_only_when_they_run() {
    use hindsight::review::{Engine, History, Settings, Subject};
    let catalog = std::sync::Arc::new(store::embedded().unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("defender.json"),
        serde_json::json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#security/rules/detectionRules",
          "value": [
            {"id": "ps", "displayName": "Encoded PowerShell", "status": "enabled", "queryCondition": {"queryText": "x"},
             "detectionAction": {"alertTemplate": {"tactics": [{"tactic": "Execution", "techniques": [{"technique": "T1059", "subTechniques": ["T1059.001"]}]}]}}},
            {"id": "dcsync", "displayName": "DCSync from a workstation", "status": "disabled", "queryCondition": {"queryText": "x"},
             "detectionAction": {"alertTemplate": {"tactics": [{"tactic": "CredentialAccess", "techniques": [{"technique": "T1003.006"}]}]}}},
            {"id": "7506", "displayName": "NTDS copy", "isEnabled": true, "queryCondition": {"queryText": "x"},
             "detectionAction": {"alertTemplate": {"mitreTechniques": ["T1003.003"]}}},
            {"id": "broken", "displayName": "Scheduled task from temp", "status": "autoDisabled", "queryCondition": {"queryText": "x"},
             "detectionAction": {"alertTemplate": {"tactics": [{"tactic": "Persistence", "techniques": [{"technique": "T1053.005"}]}]}}}
        ]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sentinel.json"),
        serde_json::json!({"value": [
            {"name": "1", "kind": "Scheduled", "properties": {"displayName": "Beacon to rare domain", "enabled": false, "techniques": ["T1071"], "subTechniques": ["T1071.001"]}}
        ]})
        .to_string(),
    )
    .unwrap();
    let inv = Inventory::load(&[dir.path().to_owned()], &catalog).unwrap();
    let kinds: Vec<&str> = inv.sources().iter().map(|s| s.kind).collect();
    assert_eq!(kinds, ["defender-detection-rules", "sentinel-analytics-rules"]);
    assert!(matches!(inv.coverage(&catalog, "T1003.003"), Coverage::Covered { .. }), "the old schema's enabled rule");
    assert_eq!(inv.coverage(&catalog, "T1003.006"), Coverage::NotCovered, "disabled");
    assert_eq!(inv.coverage(&catalog, "T1053.005"), Coverage::NotCovered, "auto-disabled");
    assert_eq!(inv.coverage(&catalog, "T1071.001"), Coverage::NotCovered, "disabled in Sentinel");

    // The DCSync and the scheduled task of the sample raised by hand only: nothing detected them.
    let path = format!("{}/examples/incidents/ransomware-unattended-alert.json", env!("CARGO_MANIFEST_DIR"));
    let mut raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for a in raw["alerts"].as_array_mut().unwrap() {
        let names = a["mitreTechniques"]
            .as_array()
            .map(|t| t.iter().map(|x| x.as_str().unwrap_or("")).collect::<Vec<_>>())
            .unwrap_or_default();
        if names.contains(&"T1003.006") || names.contains(&"T1053.005") {
            a["detectionSource"] = "manual".into();
        }
    }
    let incident = hindsight::model::Incident::from_graph(&raw).unwrap();
    let engine = Engine::new(catalog.clone(), Some(std::sync::Arc::new(inv)), None, Settings::default());
    let r = engine
        .review(&Subject { incident: &incident, source: "t", revision: 1, transitions: &[] }, &History::default());
    let cov = |t: &str| {
        r.gaps.coverage.iter().find(|c| c.technique == t).unwrap_or_else(|| panic!("{t}: {:#?}", r.gaps.coverage))
    };
    let dcsync = cov("T1003.006");
    assert_eq!(dcsync.state, hindsight::review::CoverageState::None, "{dcsync:#?}");
    assert_eq!(dcsync.disabled_rules, ["Defender custom detection \"DCSync from a workstation\" (disabled)"]);
    assert!(dcsync.note.as_deref().unwrap().ends_with("would cover T1003.006 but does not run"), "{dcsync:#?}");
    assert!(cov("T1053.005").disabled_rules[0].contains("auto-disabled by Defender"), "{:#?}", cov("T1053.005"));
    let f = r.follow_ups.iter().find(|f| f.evidence.techniques == ["T1003.006"] && f.kind == "add_detection").unwrap();
    assert!(f.title.starts_with("Turn the rule for T1003.006"), "{}", f.title);
    assert!(f.detail.contains("DCSync from a workstation"), "{}", f.detail);
    let text = hindsight::review::render::text(&r);
    assert!(text.contains("would cover T1003.006 but does not run"), "{text}");
}
