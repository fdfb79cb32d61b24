//! Tests on MITRE's full bundles in ../shared/attack, which a clone does not carry: they are
//! ignored by a plain `cargo test` (and listed as ignored, not passed) and run with
//! `cargo test --test catalog_full -- --ignored`, as `.ci/run` does when ../shared is there.
//! Expected figures were counted independently from the bundles' JSON with Python, not taken
//! from this code's output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use hindsight::attack::{Catalog, Status, diff::diff, from_bundle, store};

fn load(name: &str) -> Catalog {
    from_bundle(&shared_attack(name)).unwrap().0
}

#[test]
#[ignore = "needs ../shared/attack (the full ATT&CK bundles); .ci/run runs it"]
fn the_embedded_catalog_is_exactly_what_export_makes_of_enterprise_18_1() {
    // Guards against a hand-edited or stale data/attack/ file: regenerate it with
    // `hindsight catalog export ../shared/attack/enterprise-attack-18.1.json -o data/attack/enterprise-attack.catalog.json`.
    let path = shared_attack("enterprise-attack-18.1.json");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("catalog.json");
    ok(dir.path(), &["catalog", "export", path.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let exported = std::fs::read(&out).unwrap();
    let embedded = std::fs::read(repo().join("data/attack/enterprise-attack.catalog.json")).unwrap();
    assert!(exported == embedded, "data/attack/enterprise-attack.catalog.json is stale; regenerate it (see this test)");
    assert_eq!(store::embedded().unwrap().data(), from_bundle(&path).unwrap().0.data());
}

#[test]
#[ignore = "needs ../shared/attack (the full ATT&CK bundles); .ci/run runs it"]
fn enterprise_18_1_counts_and_v18_detection_model() {
    let c = load("enterprise-attack-18.1.json");
    let n = c.counts();
    // shared/attack/README.md: 835 attack-patterns, 691 active = 216 + 475; 132 revoked, 12 deprecated.
    assert_eq!(c.techniques().len(), 835);
    assert_eq!((n.techniques, n.subtechniques, n.revoked_techniques, n.deprecated_techniques), (216, 475, 132, 12));
    assert_eq!((n.detection_strategies, n.analytics), (691, 1739));
    // Every active technique has a detection strategy in v18 (691 `detects` relationships).
    let without: Vec<&str> = c
        .techniques()
        .iter()
        .enumerate()
        .filter(|(i, t)| t.lifecycle.is_active() && c.detection_strategies_of(*i).next().is_none())
        .map(|(_, t)| t.id.as_str())
        .collect();
    assert!(without.is_empty(), "{without:?}");
    let r = c.resolve("T1073");
    assert_eq!(r.revoked_chain, ["T1073", "T1574.002"]);
    assert_eq!(c.techniques()[r.technique.unwrap()].id, "T1574.001");
    // APT29's set: 119 techniques with those of the SolarWinds Compromise and its other
    // campaigns (mitreattack-python's get_techniques_used_by_group gives the same number).
    assert_eq!(c.group_techniques("G0016").count(), 119);
}

#[test]
#[ignore = "needs ../shared/attack (the full ATT&CK bundles); .ci/run runs it"]
fn enterprise_17_1_uses_the_data_component_detection_model() {
    let c = load("enterprise-attack-17.1.json");
    let n = c.counts();
    assert_eq!(c.meta().attack_version.as_deref(), Some("17.1"));
    assert_eq!((n.techniques, n.subtechniques), (211, 468));
    assert_eq!((n.detection_strategies, n.detects_relationships), (0, 2116));
    let t = c.technique_ix("T1059.001").unwrap();
    let mut names: Vec<&str> = c.data_components_for(t).map(|d| d.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Command Execution", "Module Load", "Process Creation", "Process Metadata", "Script Execution"]);
}

#[test]
#[ignore = "needs ../shared/attack (the full ATT&CK bundles); .ci/run runs it"]
fn diff_from_17_1_to_18_1() {
    let (old, new) = (load("enterprise-attack-17.1.json"), load("enterprise-attack-18.1.json"));
    let d = diff(&old, &new);
    let ids = |v: &[hindsight::attack::diff::Item]| v.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&d.added),
        [
            "T1036.012",
            "T1059.013",
            "T1204.005",
            "T1213.006",
            "T1518.002",
            "T1546.018",
            "T1562.013",
            "T1677",
            "T1678",
            "T1679",
            "T1680",
            "T1681"
        ]
    );
    assert!(d.revoked.is_empty() && d.deprecated.is_empty() && d.removed.is_empty());
    let renamed: Vec<(&str, &str, &str)> =
        d.renamed.iter().map(|r| (r.id.as_str(), r.old_name.as_str(), r.new_name.as_str())).collect();
    assert_eq!(
        renamed,
        [("T1497.003", "Time Based Evasion", "Time Based Checks"), ("T1552.003", "Bash History", "Shell History")]
    );
    assert_eq!(ids(&d.groups_added), ["G1048", "G1049", "G1050", "G1051", "G1052", "G1053"]);
    assert_eq!(ids(&d.campaigns_added), ["C0055", "C0056", "C0057", "C0058", "C0059"]);
}

#[test]
#[ignore = "needs ../shared/attack (the full ATT&CK bundles); .ci/run runs it"]
fn mobile_and_ics_bundles_import_with_their_own_matrices() {
    {
        let c = load("mobile-attack-18.1.json");
        assert_eq!(c.meta().domain, "mobile-attack");
        // The bundle also has the deprecated "Network-Based Effects" matrix; the active one wins.
        assert_eq!(c.meta().matrix, "Mobile ATT&CK");
        let t: Vec<&str> = c.tactics().iter().map(|t| t.shortname.as_str()).collect();
        assert_eq!(t.len(), 12);
        assert_eq!((t[0], t[11]), ("initial-access", "impact"));
        assert_eq!(c.resolve("T1603").status, Status::Active);
    }
    {
        let c = load("ics-attack-18.1.json");
        assert_eq!(c.meta().domain, "ics-attack");
        let t: Vec<&str> = c.tactics().iter().map(|t| t.shortname.as_str()).collect();
        assert_eq!(
            t,
            [
                "initial-access",
                "execution",
                "persistence",
                "privilege-escalation",
                "evasion",
                "discovery",
                "lateral-movement",
                "collection",
                "command-and-control",
                "inhibit-response-function",
                "impair-process-control",
                "impact"
            ]
        );
        assert_eq!(c.technique("T0803").unwrap().tactics, ["inhibit-response-function"]);
    }
}
