//! The hunt library, filled as a review fills it, checked as data (every run) and by
//! Microsoft's own KQL parser against the advanced hunting tables' columns (ignored here: it
//! needs Node.js and `tools/kql-check`'s npm package; `.ci/run` installs them and runs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use hindsight::hunts::fill::{Placeholder, fill};
use hindsight::hunts::{Entities, Library, Scope, Window};

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every list filled, with values that would break an unescaped literal.
fn hostile_entities() -> Entities {
    let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Entities {
        device_ids: v(&["335b3ef544f5d3690b6c75c776dc3e52bb3485c4"]),
        device_names: v(&["fs-02", "fs-02.corp.contoso.com", r#"odd"name\"#]),
        account_upns: v(&["svc-backup@contoso.com", r#"x"@contoso.com"#]),
        account_object_ids: v(&["9f1c2a3b-0000-4000-8000-00000000abcd"]),
        account_sids: v(&["S-1-5-21-1004336348-1177238915-682003330-1105"]),
        account_names: v(&[r#"CONTOSO\svc"x"#, "svc-backup"]),
        ips: v(&["45.141.87.12", "2001:db8::1"]),
        mailboxes: v(&["kim@contoso.com"]),
        sha256s: v(&["ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12"]),
        sha1s: v(&["ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12"]),
        file_names: v(&["locker.exe", "a\tb.exe"]),
        urls: v(&["https://evil.example/x?a=\"1\"&b=\\2"]),
        domains: v(&["evil.example"]),
        app_ids: v(&["d3590ed6-52b3-4102-aeff-aad2292ab01c", "00000003-0000-0000-c000-000000000000"]),
    }
}

fn window() -> Window {
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
    Window::around(at("2026-11-02T09:00:00Z"), at("2026-11-03T12:30:00Z"))
}

fn filled(lib: &Library) -> Vec<(String, String)> {
    let (e, w) = (hostile_entities(), window());
    lib.templates()
        .iter()
        .map(|t| {
            let kql = fill(t, &e, (t.scope == Scope::Incident).then_some(&w))
                .unwrap_or_else(|| panic!("{}: not filled with every list given", t.id));
            (t.id.clone(), kql)
        })
        .collect()
}

fn tables() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(root().join("data/hunting/tables.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["tables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, t)| {
            let cols = t["columns"].as_array().unwrap().iter().map(|c| c[0].as_str().unwrap().to_owned()).collect();
            (name.clone(), cols)
        })
        .collect()
}

/// The query's operators after the first line, as `| name …` lines (the library writes one
/// operator per line).
fn last_operators(kql: &str) -> Vec<String> {
    kql.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('|'))
        .map(|l| l.trim_start_matches('|').split_whitespace().next().unwrap_or("").to_lowercase())
        .collect()
}

#[test]
fn the_library_covers_the_techniques_groups_use_most_across_windows_identity_email_and_cloud() {
    let lib = Library::embedded();
    let catalog = hindsight::attack::store::embedded().unwrap();
    let covered = lib.techniques();
    assert!(covered.len() >= 80, "{} techniques have a hunt", covered.len());
    for id in &covered {
        let ix = catalog.technique_ix(id).unwrap_or_else(|| panic!("{id} is not in ATT&CK"));
        assert!(catalog.techniques()[ix].lifecycle.is_active(), "{id} is revoked or deprecated");
    }
    // The ways in and the identity, e-mail and cloud techniques an XDR incident shows.
    for id in [
        "T1078.004",
        "T1110.003",
        "T1566.001",
        "T1566.002",
        "T1114.003",
        "T1564.008",
        "T1528",
        "T1021.001",
        "T1053.005",
        "T1105",
        "T1570",
    ] {
        assert!(covered.contains(&id), "no hunt for {id}");
    }
    assert!(lib.sweeps().count() >= 3, "indicator sweeps: hashes, IPs, URLs");
}

#[test]
fn every_template_fills_completely_and_reads_a_known_table_and_ends_in_take_or_summarize() {
    let lib = Library::embedded();
    let tables = tables();
    for (t, (id, kql)) in lib.templates().iter().zip(filled(&lib)) {
        assert!(!kql.contains("{{") && !kql.contains("}}"), "{id}: a placeholder is left: {kql}");
        assert!(tables.contains_key(&t.table), "{id}: table {} is not an advanced hunting table", t.table);
        // After the values' declarations, the query starts with the table it names.
        let body = kql.lines().skip_while(|l| l.starts_with("let incident_")).collect::<Vec<_>>().join("\n");
        let first = body.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').find(|w| !w.is_empty()).unwrap();
        assert_eq!(first, t.table, "{id}: reads {first} first, says {}", t.table);
        assert!(
            first == t.table || kql.trim_start().starts_with("let "),
            "{id}: reads {first} first, says {}",
            t.table
        );
        let ops = last_operators(&kql);
        let last_shaping = ops.iter().rposition(|o| matches!(o.as_str(), "take" | "limit" | "summarize" | "top"));
        let after_ok = |o: &String| {
            matches!(
                o.as_str(),
                "where" | "order" | "sort" | "project" | "project-reorder" | "extend" | "take" | "limit" | "top"
            )
        };
        assert!(
            last_shaping.is_some_and(|i| ops[i + 1..].iter().all(after_ok)),
            "{id}: does not end in take or summarize: {ops:?}"
        );
        if t.scope == Scope::Estate {
            assert!(kql.contains("ago(30d)"), "{id}: an estate hunt looks back 30 days");
        }
        for p in t.placeholders() {
            if p.is_list() {
                let literal = hostile_entities()
                    .list(p)
                    .iter()
                    .map(|v| hindsight::hunts::fill::kql_string(v))
                    .collect::<Vec<_>>();
                assert!(kql.contains(&literal.join(", ")), "{id}: {} not filled with escaped literals", p.name());
            }
        }
        assert!(Placeholder::all().count() == 16);
    }
}

/// Runs tools/kql-check on the queries and returns one result per query.
fn kql_check(queries: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let dir = root().join("tools/kql-check");
    assert!(dir.join("node_modules/@kusto/language-service-next").is_dir(), "run `npm ci` in tools/kql-check first");
    let mut child = Command::new("node")
        .arg("check.js")
        .arg(root().join("data/hunting/tables.json"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child.stdin.take().unwrap().write_all(serde_json::to_string(queries).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "check.js failed: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), queries.len(), "one result per query");
    results
}

#[test]
#[ignore = "needs Node.js and tools/kql-check's npm package (`npm ci` there); .ci/run installs it and runs this"]
fn every_filled_template_has_no_diagnostic_from_microsofts_kql_parser() {
    let lib = Library::embedded();
    let queries: Vec<serde_json::Value> =
        filled(&lib).into_iter().map(|(id, kql)| serde_json::json!({"id": id, "kql": kql})).collect();
    let results = kql_check(&queries);
    let bad: Vec<String> = results
        .iter()
        .filter(|r| !r["diagnostics"].as_array().unwrap().is_empty())
        .map(|r| format!("{}: {}", r["id"], r["diagnostics"]))
        .collect();
    assert!(bad.is_empty(), "{} of {} queries have diagnostics:\n{}", bad.len(), results.len(), bad.join("\n"));
    // The checker itself must catch a wrong column, or a clean result means nothing.
    let r = kql_check(&[serde_json::json!({"id": "bad", "kql": "DeviceProcessEvents | where Nope == 1 | take 1"})]);
    assert_eq!(r[0]["diagnostics"].as_array().unwrap().len(), 1, "{r:?}");
}
