//! `hindsight hunts …` as a user runs it: the real binary, the embedded hunt library, and a
//! site's folder of Azure-Sentinel hunting YAML written here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

/// A hunting query as the Azure-Sentinel repository's `Hunting Queries/` folders write them.
const LSASS_YAML: &str = r#"id: 5e2b1c7a-0c4d-4b8e-9f1a-3d6e8a2b7c41
name: LSASS memory dumped with comsvcs.dll or procdump
description: |
  'Processes that dump the memory of lsass.exe with the MiniDump export of comsvcs.dll or with
  Sysinternals procdump, as credential theft tools do.'
requiredDataConnectors:
  - connectorId: MicrosoftThreatProtection
    dataTypes:
      - DeviceProcessEvents
tactics:
  - CredentialAccess
relevantTechniques:
  - T1003.001
query: |
  DeviceProcessEvents
  | where Timestamp > ago(30d)
  | where (ProcessCommandLine has "comsvcs.dll" and ProcessCommandLine has "MiniDump")
      or (FileName in~ ("procdump.exe", "procdump64.exe") and ProcessCommandLine has "lsass")
  | summarize Count = count(), FirstSeen = min(Timestamp) by DeviceName, AccountName, ProcessCommandLine
entityMappings:
  - entityType: Host
    fieldMappings:
      - identifier: HostName
        columnName: DeviceName
version: 1.0.0
kind: Scheduled
"#;

fn site_folder() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("Credential Access");
    std::fs::create_dir(&sub).unwrap();
    let file = sub.join("LsassDump.yaml");
    std::fs::write(&file, LSASS_YAML).unwrap();
    (dir, file)
}

fn rows(list: &str) -> Vec<&str> {
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines.len() >= 2, "a header, rows and a summary: {list}");
    assert!(lines[0].starts_with("ID ") && lines[0].contains("TECHNIQUES"), "{list}");
    lines[1..lines.len() - 1].to_vec()
}

/// "N hunts for M techniques (library: X, folders: Y)" → (N, X, Y).
fn summary(list: &str) -> (usize, usize, usize) {
    let last = list.lines().last().unwrap();
    let n: usize = last.split(' ').next().unwrap().parse().unwrap();
    let after = |key: &str| -> usize {
        let rest = &last[last.find(key).unwrap_or_else(|| panic!("{key} in {last}")) + key.len()..];
        rest.split([',', ')']).next().unwrap().trim().parse().unwrap()
    };
    assert!(last.contains(" for ") && last.contains(" technique"), "{last}");
    (n, after("library:"), after("folders:"))
}

#[test]
fn list_shows_the_embedded_library_with_a_summary_that_counts_its_rows() {
    let state = tempfile::tempdir().unwrap();
    let out = ok(state.path(), &["hunts", "list"]);
    let rows = rows(&out);
    let row = rows.iter().find(|r| r.starts_with("schtasks-created ")).unwrap_or_else(|| panic!("{out}"));
    for cell in ["T1053.005", "incident", "DeviceProcessEvents", "library"] {
        assert!(row.contains(cell), "{row}");
    }
    let (n, library, folders) = summary(&out);
    assert_eq!(n, rows.len(), "{out}");
    assert_eq!((library, folders), (rows.len(), 0), "{out}");

    let v = json(&ok(state.path(), &["hunts", "list", "--format", "json"]));
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), rows.len());
    let t = all.iter().find(|h| h["id"] == "schtasks-created").unwrap();
    assert!(t["techniques"].as_array().unwrap().contains(&serde_json::json!("T1053.005")), "{t}");
    assert_eq!(t["scope"], "incident");
    assert!(t.get("kql").is_none(), "the list leaves the queries to show");
}

#[test]
fn show_a_technique_prints_its_queries_with_placeholders_as_written() {
    let state = tempfile::tempdir().unwrap();
    let out = ok(state.path(), &["hunts", "show", "t1053.005"]);
    assert!(out.starts_with("schtasks-created"), "{out}");
    assert!(out.contains("\nDeviceProcessEvents\n| where Timestamp between ({{start}} .. {{end}})\n"), "{out}");
    assert!(out.contains("FileName =~ \"schtasks.exe\""), "{out}");
    let by_id = ok(state.path(), &["hunts", "show", "schtasks-created"]);
    assert!(out.starts_with(by_id.trim_end()), "by ID, the first hunt for the technique:\n{by_id}");

    let v = json(&ok(state.path(), &["hunts", "show", "T1053.005", "--format", "json"]));
    let t = v.as_array().unwrap().iter().find(|h| h["id"] == "schtasks-created").unwrap();
    assert!(t["kql"].as_str().unwrap().contains("{{device_ids}}"));
    assert!(t["placeholders"].as_array().unwrap().contains(&serde_json::json!("device_names")));
}

#[test]
fn show_a_technique_without_hunts_fails_and_says_so() {
    let state = tempfile::tempdir().unwrap();
    let o = hindsight(state.path(), &["hunts", "show", "T9999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty());
    assert!(stderr(&o).contains("no hunt for T9999 in the library"), "{}", stderr(&o));
    let err = fails(state.path(), &["hunts", "show", "not-a-hunt"]);
    assert!(err.contains("neither a hunt ID in the library nor an ATT&CK technique ID"), "{err}");
}

#[test]
fn a_sites_sentinel_folder_is_listed_and_shown() {
    let state = tempfile::tempdir().unwrap();
    let (dir, file) = site_folder();
    let folder = dir.path().to_str().unwrap();
    let o = hindsight(state.path(), &["hunts", "list", "--hunts", folder]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "nothing to warn about: {}", stderr(&o));
    let out = stdout(&o);
    let rows = rows(&out);
    let row =
        rows.iter().find(|r| r.starts_with("5e2b1c7a-0c4d-4b8e-9f1a-3d6e8a2b7c41 ")).unwrap_or_else(|| panic!("{out}"));
    for cell in ["T1003.001", "estate", "DeviceProcessEvents", "LSASS memory dumped with comsvcs.dll or procdump"] {
        assert!(row.contains(cell), "{row}");
    }
    assert!(row.ends_with(&file.display().to_string()), "the origin is the file: {row}");
    assert!(rows.iter().any(|r| r.starts_with("schtasks-created ")), "the library is still there");
    let (n, library, folders) = summary(&out);
    assert_eq!((n, folders), (rows.len(), 1), "{out}");
    assert_eq!(library + folders, n);

    let shown = ok(state.path(), &["hunts", "show", "T1003.001", "--hunts", folder]);
    assert!(shown.contains(&format!("origin:       {}", file.display())), "{shown}");
    assert!(
        shown.contains(
            "DeviceProcessEvents\n| where Timestamp > ago(30d)\n| where (ProcessCommandLine has \"comsvcs.dll\""
        ),
        "the query as written: {shown}"
    );
    // The site's hunt is only there with --hunts (the library may or may not have its own).
    let without = hindsight(state.path(), &["hunts", "show", "T1003.001"]);
    assert!(!stdout(&without).contains("5e2b1c7a"), "{}", stdout(&without));
}

#[test]
fn a_broken_file_is_a_warning_naming_it_and_the_good_ones_are_listed() {
    let state = tempfile::tempdir().unwrap();
    let (dir, _) = site_folder();
    let broken = dir.path().join("Broken.yaml");
    std::fs::write(&broken, "id: 1\nname: [unclosed\nquery: |\n  DeviceEvents\n").unwrap();
    let o = hindsight(state.path(), &["hunts", "list", "--hunts", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("warning") && err.contains(&broken.display().to_string()), "{err}");
    assert!(err.contains("not valid YAML"), "{err}");
    assert!(stdout(&o).contains("5e2b1c7a-0c4d-4b8e-9f1a-3d6e8a2b7c41"), "{}", stdout(&o));
}

#[test]
fn a_missing_folder_is_an_error_naming_it() {
    let state = tempfile::tempdir().unwrap();
    let missing = state.path().join("no-such-folder");
    let err = fails(state.path(), &["hunts", "list", "--hunts", missing.to_str().unwrap()]);
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[test]
fn review_takes_hunt_folders_like_inventories() {
    let state = tempfile::tempdir().unwrap();
    let input = repo().join("examples/incidents/human-operated-ransomware.json");
    let input = input.to_str().unwrap();
    let (dir, _) = site_folder();
    std::fs::write(dir.path().join("Broken.yml"), "query: [unclosed\n").unwrap();
    let o = hindsight(state.path(), &["review", "--input", input, "--hunts", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("Broken.yml"), "{}", stderr(&o));
    let missing = state.path().join("no-hunts-here");
    let err = fails(state.path(), &["review", "--input", input, "--hunts", missing.to_str().unwrap()]);
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[test]
fn the_daemon_reads_review_hunt_folders_and_refuses_a_missing_one() {
    use hindsight::config::Config;
    use hindsight::daemon::pipeline::Pipeline;
    let state = tempfile::tempdir().unwrap();
    let (dir, _) = site_folder();
    std::fs::write(dir.path().join("Broken.yml"), "query: [unclosed\n").unwrap();
    let mut cfg = Config::load(None, &[]).unwrap();
    cfg.review.hunt_folders = vec![dir.path().to_path_buf()];
    let pipeline = Pipeline::build(&cfg, state.path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(pipeline.engine.hunts().get("5e2b1c7a-0c4d-4b8e-9f1a-3d6e8a2b7c41").is_some());
    assert!(pipeline.engine.hunts().get("schtasks-created").is_some());
    assert!(
        pipeline.warnings.iter().any(|w| w.starts_with("review.hunt_folders: ") && w.contains("Broken.yml")),
        "{:?}",
        pipeline.warnings
    );

    let missing = state.path().join("no-hunts-here");
    cfg.review.hunt_folders = vec![missing.clone()];
    let err = Pipeline::build(&cfg, state.path()).err().expect("a missing folder stops the start").to_string();
    assert!(
        err.contains("configuration key review.hunt_folders") && err.contains(&missing.display().to_string()),
        "{err}"
    );
}
