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
