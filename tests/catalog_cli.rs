//! `hindsight catalog …` as a user runs it: the real binary, a real state directory.
//! Expected figures for the embedded catalog (ATT&CK enterprise 18.1) were counted
//! independently with MITRE's mitreattack-python (`MitreAttackData`, revoked and deprecated
//! objects removed), not taken from this code's output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

fn state() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn info_describes_the_embedded_catalog() {
    let dir = state();
    let v = json(&ok(dir.path(), &["catalog", "info", "--format", "json"]));
    assert_eq!(v["domain"], "enterprise-attack");
    assert_eq!(v["attack_version"], "18.1");
    assert_eq!(v["techniques"], 216);
    assert_eq!(v["subtechniques"], 475);
    assert_eq!(v["groups"], 172);
    assert_eq!(v["campaigns"], 52);
    assert_eq!(v["software"], 784);
    assert_eq!(v["mitigations"], 44);
    assert_eq!(v["counts"]["revoked_techniques"], 132);
    assert_eq!(v["counts"]["deprecated_techniques"], 12);
    assert_eq!(v["detection_model"], "strategies");
    let tactics: Vec<&str> = v["tactics"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(tactics.len(), 14);
    assert_eq!(tactics.first(), Some(&"reconnaissance"));
    assert_eq!(tactics.last(), Some(&"impact"));
    assert!(v["origin"].as_str().unwrap().contains("embedded"));
    assert!(v["notice"].as_str().unwrap().contains("MITRE"));

    let text = ok(dir.path(), &["catalog", "info"]);
    assert!(text.starts_with("ATT&CK enterprise-attack 18.1 (embedded in the binary)"), "{text}");
    assert!(text.contains("216 + 475 sub-techniques active; 132 revoked, 12 deprecated"), "{text}");
}

#[test]
fn lookup_resolves_ids_as_alerts_carry_them() {
    let dir = state();
    let out = ok(
        dir.path(),
        &[
            "catalog",
            "lookup",
            "--format",
            "json",
            "T1086",
            "t1059.001",
            "T1566.001 ",
            "T1064",
            "T1073",
            "T9999",
            "nonsense",
        ],
    );
    let v = json(&out);
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 7);

    // Revoked in 2020 for PowerShell.
    assert_eq!(a[0]["query"], "T1086");
    assert_eq!(a[0]["status"], "revoked");
    assert_eq!(a[0]["id"], "T1059.001");
    assert_eq!(a[0]["name"], "PowerShell");

    let ps = &a[1];
    assert_eq!(ps["status"], "active");
    assert_eq!(ps["id"], "T1059.001");
    assert_eq!(ps["tactics"], serde_json::json!(["execution"]));
    assert_eq!(ps["platforms"], serde_json::json!(["Windows"]));
    assert_eq!(ps["is_subtechnique"], true);
    assert_eq!(ps["parent"], "T1059");
    assert_eq!(ps["groups"].as_array().unwrap().len(), 84);
    assert_eq!(ps["campaigns"].as_array().unwrap().len(), 16);
    assert_eq!(ps["mitigations"], serde_json::json!(["M1026", "M1038", "M1042", "M1045", "M1049"]));
    // Groups reach the technique through their campaigns too: APT29 (G0016) is listed.
    assert!(ps["groups"].as_array().unwrap().contains(&serde_json::json!("G0016")));

    assert_eq!(a[2]["query"], "T1566.001 ");
    assert_eq!(a[2]["id"], "T1566.001");
    assert_eq!(a[2]["tactics"], serde_json::json!(["initial-access"]));

    assert_eq!(a[3]["status"], "deprecated");
    assert_eq!(a[3]["id"], "T1064");

    // A two-step revocation chain.
    assert_eq!(a[4]["status"], "revoked");
    assert_eq!(a[4]["revoked_chain"], serde_json::json!(["T1073", "T1574.002"]));
    assert_eq!(a[4]["id"], "T1574.001");

    for unknown in &a[5..] {
        assert_eq!(unknown["status"], "unknown");
        assert!(unknown["id"].is_null());
        assert_eq!(unknown["groups"], serde_json::json!([]));
    }
}

#[test]
fn lookup_text_reads_like_a_reference_card() {
    let dir = state();
    let text = ok(dir.path(), &["catalog", "lookup", "T1086", "T9999"]);
    insta::assert_snapshot!(text);
}

#[test]
fn import_replaces_the_catalog_in_use_and_reset_restores_the_embedded_one() {
    let dir = state();
    let mini = fixture("attack/enterprise-attack-17.1-mini.json");
    let mini = mini.to_str().unwrap();

    let dry = ok(dir.path(), &["catalog", "import", "--dry-run", mini]);
    assert!(dry.contains("Would import ATT&CK enterprise-attack 17.1"), "{dry}");
    assert!(dry.contains("nothing was stored"), "{dry}");
    assert!(!dir.path().join("catalog").exists(), "a dry run stores nothing");

    let v = json(&ok(dir.path(), &["catalog", "import", "--format", "json", mini]));
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["catalog"]["attack_version"], "17.1");
    assert_eq!(v["previous"]["attack_version"], "18.1");
    // The mini bundle has 15 of the embedded catalog's 835 technique objects.
    assert_eq!(v["changes"]["removed"].as_array().unwrap().len(), 835 - 15);

    let info = json(&ok(dir.path(), &["catalog", "info", "--format", "json"]));
    assert_eq!(info["attack_version"], "17.1");
    assert_eq!(info["techniques"], 6);
    assert_eq!(info["detection_model"], "data_components");
    assert!(info["origin"].as_str().unwrap().starts_with("imported"));

    let out = ok(dir.path(), &["catalog", "reset"]);
    assert!(out.contains("embedded one is in use again"), "{out}");
    let info = json(&ok(dir.path(), &["catalog", "info", "--format", "json"]));
    assert_eq!(info["attack_version"], "18.1");
}

#[test]
fn a_bad_import_names_the_file_and_leaves_the_catalog_in_use_alone() {
    let dir = state();
    ok(dir.path(), &["catalog", "import", fixture("attack/enterprise-attack-17.1-mini.json").to_str().unwrap()]);
    let stored = std::fs::read(dir.path().join("catalog/catalog.json")).unwrap();

    let bad = tempfile::tempdir().unwrap();
    let full = std::fs::read(fixture("attack/enterprise-attack-18.1-mini.json")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("notes.txt", b"hello".to_vec(), "is not valid JSON"),
        ("truncated.json", full[..full.len() / 3].to_vec(), "truncated file?"),
        ("layer.json", br#"{"name":"x","versions":{"layer":"4.5"}}"#.to_vec(), "is not a STIX bundle"),
        ("empty-bundle.json", br#"{"type":"bundle","objects":[]}"#.to_vec(), "lacks what an ATT&CK catalog needs"),
    ];
    for (name, bytes, expected) in cases {
        let path = bad.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = fails(dir.path(), &["catalog", "import", path.to_str().unwrap()]);
        assert!(err.contains(name) && err.contains(expected), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let err = fails(dir.path(), &["catalog", "import", "/nonexistent/bundle.json"]);
    assert!(err.contains("cannot read /nonexistent/bundle.json"), "{err}");

    assert_eq!(std::fs::read(dir.path().join("catalog/catalog.json")).unwrap(), stored);
    let info = json(&ok(dir.path(), &["catalog", "info", "--format", "json"]));
    assert_eq!(info["attack_version"], "17.1");
}

#[test]
fn an_oversized_file_is_refused_without_being_read() {
    let dir = state();
    let path = dir.path().join("huge.json");
    // A sparse file: 400 MiB long, no disk used. Reading it would take seconds and memory.
    std::fs::File::create(&path).unwrap().set_len(400 << 20).unwrap();
    let err = fails(dir.path(), &["catalog", "import", "--dry-run", path.to_str().unwrap()]);
    assert!(err.contains("huge.json is 419430400 bytes, over the limit of"), "{err}");
}

#[test]
fn a_corrupt_stored_catalog_is_an_error_naming_it_not_a_silent_fallback() {
    let dir = state();
    std::fs::create_dir_all(dir.path().join("catalog")).unwrap();
    std::fs::write(dir.path().join("catalog/catalog.json"), b"{\"format\":1, \"meta\":").unwrap();
    let err = fails(dir.path(), &["catalog", "info"]);
    assert!(err.contains("catalog/catalog.json"), "{err}");
    assert!(err.contains("hindsight catalog reset") || err.contains("not a catalog"), "{err}");
    ok(dir.path(), &["catalog", "reset"]);
    ok(dir.path(), &["catalog", "info"]);
}

#[test]
fn import_refuses_another_domain_unless_asked() {
    let dir = state();
    // A minimal bundle of another domain: one matrix, one tactic, one technique.
    let bundle = serde_json::json!({
        "type": "bundle", "id": "bundle--1", "spec_version": "2.0",
        "objects": [
            {"type": "x-mitre-matrix", "id": "x-mitre-matrix--1", "name": "ATT&CK for ICS",
             "external_references": [{"source_name": "mitre-attack", "external_id": "ics-attack"}],
             "tactic_refs": ["x-mitre-tactic--1"]},
            {"type": "x-mitre-tactic", "id": "x-mitre-tactic--1", "name": "Impact", "x_mitre_shortname": "impact-ics",
             "external_references": [{"source_name": "mitre-attack", "external_id": "TA0105"}]},
            {"type": "attack-pattern", "id": "attack-pattern--1", "name": "Loss of View",
             "external_references": [{"source_name": "mitre-attack", "external_id": "T0829"}],
             "kill_chain_phases": [{"kill_chain_name": "mitre-ics-attack", "phase_name": "impact-ics"}]}
        ]
    });
    let path = dir.path().join("ics-attack-1.0.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    let p = path.to_str().unwrap();
    let err = fails(dir.path(), &["catalog", "import", p]);
    assert!(err.contains("is an ATT&CK ics-attack bundle but the catalog in use is enterprise-attack"), "{err}");
    assert!(!dir.path().join("catalog").exists());
    ok(dir.path(), &["catalog", "import", "--allow-domain-change", p]);
    let v = json(&ok(dir.path(), &["catalog", "lookup", "--format", "json", "T0829"]));
    assert_eq!(v[0]["name"], "Loss of View");
    assert_eq!(v[0]["tactics"], serde_json::json!(["impact-ics"]));
}

#[test]
fn diff_between_two_bundles() {
    let dir = state();
    let mini = fixture("attack/enterprise-attack-18.1-mini.json");
    let v = json(&ok(dir.path(), &["catalog", "diff", "--format", "json", "@embedded", mini.to_str().unwrap()]));
    assert_eq!(v["old"]["attack_version"], "18.1");
    assert_eq!(v["removed"].as_array().unwrap().len(), 835 - 15);
    assert_eq!(v["added"], serde_json::json!([]));
    assert_eq!(v["renamed"], serde_json::json!([]));
    let text = ok(dir.path(), &["catalog", "diff", "@embedded", "@in-use"]);
    assert!(text.contains("no technique, tactic, group or campaign changes"), "{text}");
}
