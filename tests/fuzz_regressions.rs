//! Inputs that must never make a parser panic, overflow its stack or run away: the four input
//! parsers the fuzz targets in `fuzz/` exercise (Graph incident JSON and the directory source's
//! files, STIX bundles, Navigator layers, Sigma rules), fed hostile inputs (deep nesting, a 1 MB
//! string, invalid UTF-8, NUL bytes, out-of-range numbers) and whatever the fuzzers found.
//! Each parser must answer Ok or a clean error; a panic fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use hindsight::attack::stix::import_bytes;
use hindsight::fuzzing::{navigator_layer, sigma_rules};
use hindsight::model::Incident;
use hindsight::source::directory::parse_file;

/// `depth` opening brackets, then as many closing ones.
fn nested(open: &str, close: &str, depth: usize) -> String {
    let mut s = String::with_capacity((open.len() + close.len()) * depth);
    for _ in 0..depth {
        s.push_str(open);
    }
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

fn big_string() -> String {
    "A".repeat(1024 * 1024)
}

const INVALID_UTF8: &[u8] = b"{\"id\": \"\xff\xfe\xc3\x28\", \"lastUpdateDateTime\": \"2026-11-01T10:00:00Z\"}";

/// Graph's incident JSON both ways in: `from_graph` after `serde_json`, and a directory file.
fn incident(bytes: &[u8]) -> Result<usize, String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let _ = Incident::from_graph(&v);
    }
    parse_file(bytes).map(|(ok, _)| ok.len())
}

fn stix(bytes: &[u8]) -> Result<usize, String> {
    import_bytes(bytes, Path::new("fuzz.json"), Some("enterprise-attack-18.1.json"))
        .map(|(data, _)| data.techniques.len())
        .map_err(|e| e.to_string())
}

// ---- incident JSON and directory files ----------------------------------------------------------

#[test]
fn incident_deeply_nested_arrays_are_refused() {
    let deep = nested("[", "]", 100_000);
    let e = incident(deep.as_bytes()).unwrap_err();
    assert!(e.contains("recursion limit"), "{e}");
    // The same, nested inside a field of an otherwise good incident.
    let doc = format!(r#"{{"id": "1", "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": {deep}}}"#);
    assert!(incident(doc.as_bytes()).unwrap_err().contains("recursion limit"));
    // And as NDJSON lines: the line is named.
    let nd = format!("{{\"id\": \"1\", \"lastUpdateDateTime\": \"2026-11-01T10:00:00Z\"}}\n{deep}\n\n");
    let e = incident(nd.as_bytes()).unwrap_err();
    assert!(e.starts_with("line 2: "), "{e}");
    let objects = nested("{\"a\":", "}", 100_000);
    assert!(incident(objects.as_bytes()).is_err());
}

#[test]
fn incident_with_a_one_megabyte_string_is_read() {
    let doc = format!(
        r#"{{"id": "1", "lastUpdateDateTime": "2026-11-01T10:00:00Z", "displayName": "{0}", "alerts": [{{"id": "{0}", "mitreTechniques": ["{0}"]}}]}}"#,
        big_string()
    );
    assert_eq!(incident(doc.as_bytes()), Ok(1));
    // A 1 MB id, and a 1 MB date-time that is not one.
    let doc = format!(r#"{{"id": "{0}", "lastUpdateDateTime": "{0}"}}"#, big_string());
    assert!(incident(doc.as_bytes()).unwrap_err().contains("is a valid date-time"));
}

#[test]
fn incident_invalid_utf8_and_nul_bytes_are_refused() {
    let e = incident(INVALID_UTF8).unwrap_err();
    assert!(e.contains("invalid unicode code point") || e.contains("UTF-8"), "{e}");
    assert!(incident(b"\0").is_err());
    assert!(incident(b"{\"id\": \"1\0\", \"lastUpdateDateTime\": \"2026-11-01T10:00:00Z\"}").is_err());
    // An escaped NUL is a valid JSON string.
    assert_eq!(incident(br#"{"id": "1\u0000", "lastUpdateDateTime": "2026-11-01T10:00:00Z"}"#), Ok(1));
    assert!(incident(b"\n\n\0\n").unwrap_err().starts_with("line 3"));
    // A lone surrogate escape.
    assert!(incident(br#"{"id": "\udc00", "lastUpdateDateTime": "2026-11-01T10:00:00Z"}"#).is_err());
}

#[test]
fn incident_out_of_range_numbers() {
    assert!(incident(b"1e999").unwrap_err().contains("number out of range"));
    let doc = br#"{"id": 1e999, "lastUpdateDateTime": "2026-11-01T10:00:00Z"}"#;
    assert!(incident(doc).is_err());
    // Numbers where strings or scores belong: kept or ignored, never a panic.
    let doc = br#"{"id": 18446744073709551615, "priorityScore": 18446744073709551615, "severity": -1e308, "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": [{"id": -0.0, "createdDateTime": 1e300}]}"#;
    assert_eq!(incident(doc), Ok(1));
    let doc = br#"{"id": "1", "priorityScore": -5, "lastUpdateDateTime": "+275760-09-13T00:00:00Z"}"#;
    assert!(incident(doc).is_err());
}

#[test]
fn incident_odd_shapes() {
    for doc in [
        &b""[..],
        b"   \n\t  ",
        b"null",
        b"[]",
        b"{}",
        b"{\"value\": []}",
        b"[null, 1, \"x\", [], {}]",
        b"{\"id\": \"\", \"lastUpdateDateTime\": \"2026-11-01T10:00:00Z\"}",
        b"{\"id\": \"1\", \"lastUpdateDateTime\": \"9999-12-31T23:59:60.999999999+23:59\"}",
        b"{\"id\": \"1\", \"createdDateTime\": \"2026-11-01T10:00:00Z\", \"alerts\": [{\"evidence\": [{\"@odata.type\": \"\", \"roles\": [1, null]}]}]}",
        b"\xef\xbb\xbf{\"id\": \"1\", \"lastUpdateDateTime\": \"2026-11-01T10:00:00Z\"}",
    ] {
        let _ = incident(doc);
    }
}

// ---- STIX bundles -------------------------------------------------------------------------------

#[test]
fn stix_deeply_nested_arrays_are_refused() {
    let deep = nested("[", "]", 100_000);
    let e = stix(deep.as_bytes()).unwrap_err();
    assert!(e.contains("not a STIX bundle"), "{e}");
    let doc = format!(r#"{{"type": "bundle", "objects": [{deep}]}}"#);
    // serde reads a struct from an array too: the first element is taken for "type".
    let e = stix(doc.as_bytes()).unwrap_err();
    assert!(e.contains("objects[0].[0]: invalid type: sequence, expected a string"), "{e}");
    // In a member the importer skips, and as a member it reads.
    let doc = format!(r#"{{"type": "bundle", "x_skipped": {deep}, "objects": []}}"#);
    assert!(stix(doc.as_bytes()).unwrap_err().contains("lacks what an ATT&CK catalog needs"));
    let doc = format!(r#"{{"spec_version": {deep}, "type": "bundle", "objects": []}}"#);
    assert!(stix(doc.as_bytes()).unwrap_err().contains("\"spec_version\""));
    let doc = format!(r#"{{"type": "bundle", "objects": [{}]}}"#, nested("{\"a\":", "}", 100_000));
    assert!(stix(doc.as_bytes()).unwrap_err().contains("objects[0]"));
    // Deep nesting cut short: truncated, not a hang or a panic.
    let doc = format!(r#"{{"type": "bundle", "objects": [{}"#, "[".repeat(100_000));
    assert!(stix(doc.as_bytes()).unwrap_err().contains("ends before the JSON is complete"));
}

#[test]
fn stix_one_megabyte_strings() {
    let big = big_string();
    let doc = format!(
        r#"{{"type": "bundle", "id": "{big}", "objects": [{{"type": "attack-pattern", "id": "{big}", "name": "{big}", "description": "{big}"}}]}}"#
    );
    assert!(stix(doc.as_bytes()).unwrap_err().contains("no active x-mitre-matrix"));
    // A 1 MB member name, and a string that never ends.
    let doc = format!(r#"{{"{big}": 1, "type": "bundle", "objects": []}}"#);
    assert!(stix(doc.as_bytes()).is_err());
    let doc = format!(r#"{{"type": "bundle", "objects": ["{big}"#);
    assert!(stix(doc.as_bytes()).unwrap_err().contains("ends before the JSON is complete"));
    let doc = format!("{{\"type\": \"bundle\", \"objects\": [\"{}", "\\".repeat(1024 * 1024 + 1));
    assert!(stix(doc.as_bytes()).unwrap_err().contains("ends before the JSON is complete"));
}

#[test]
fn stix_invalid_utf8_and_nul_bytes_are_refused() {
    let e = stix(b"{\"type\": \"bundle\", \"objects\": [{\"type\": \"tool\", \"id\": \"\xff\xfe\"}]}").unwrap_err();
    assert!(e.contains("objects[0]"), "{e}");
    assert!(stix(b"{\"type\": \"bund\xc3\x28le\", \"objects\": []}").unwrap_err().contains("\"type\""));
    assert!(stix(b"{\"\xff\": 1, \"type\": \"bundle\", \"objects\": []}").is_err());
    assert!(stix(b"\0").unwrap_err().contains("byte 0x00"));
    assert!(stix(b"{\"type\": \"bundle\",\0 \"objects\": []}").is_err());
    assert!(stix(b"{\"type\": \"bundle\", \"objects\": [{\"type\": \"tool\", \"id\": \"a\0\"}]}").is_err());
    assert!(stix(b"{\"type\": \"bundle\", \"objects\": []}\0").unwrap_err().contains("after the end of the bundle"));
    assert!(stix(b"\xef\xbb\xbf{\"type\": \"bundle\", \"objects\": []}").is_err());
}

#[test]
fn stix_out_of_range_numbers() {
    assert!(stix(b"1e999").unwrap_err().contains("not a STIX bundle"));
    assert!(stix(br#"{"type": 1e999, "objects": []}"#).unwrap_err().contains("\"type\""));
    let doc = br#"{"type": "bundle", "objects": [1e999, {"type": "tool", "id": "tool--1", "x": -1e999}]}"#;
    assert!(stix(doc).unwrap_err().contains("objects[0]"));
    let doc = br#"{"type": "bundle", "n": 1e999, "objects": [{"type": "tool", "id": "tool--1", "revoked": 1e999}]}"#;
    assert!(stix(doc).is_err());
}

#[test]
fn stix_odd_shapes() {
    for doc in [
        &b""[..],
        b"{",
        b"{}",
        b"{\"objects\": 5}",
        b"{\"objects\": [], \"objects\": [], \"type\": \"bundle\"}",
        b"{\"type\": \"bundle\", \"objects\": [1, \"s\", null, true, [], {}]}",
        b"{\"type\": \"bundle\", \"objects\": [{\"type\": \"relationship\", \"id\": \"r\", \"source_ref\": \"a\", \"target_ref\": \"a\", \"relationship_type\": \"revoked-by\"}]}",
        b"{\"type\": \"bundle\", \"objects\": [1 2]}",
        b"{\"type\": \"bundle\", \"objects\": [1,]}",
        b"{\"type\": \"bundle\" \"objects\": []}",
        b"{1: 2}",
        b"{\"a\"}",
        b"{\"a\":}",
        b"{\"type\": \"bundle\", \"objects\": []}}",
    ] {
        let _ = stix(doc);
    }
}

// ---- Navigator layers ---------------------------------------------------------------------------

#[test]
fn navigator_hostile_inputs() {
    let deep = nested("[", "]", 100_000);
    assert!(navigator_layer(&deep, "x.json").unwrap_err().contains("recursion limit"));
    let doc = format!(r#"{{"name": "x", "techniques": [{{"techniqueID": "T1059", "score": {deep}}}]}}"#);
    assert!(navigator_layer(&doc, "x.json").unwrap_err().starts_with("not valid JSON"));
    let big = big_string();
    let doc = format!(r#"{{"name": "{big}", "domain": "{big}", "techniques": [{{"techniqueID": "{big}"}}]}}"#);
    assert_eq!(navigator_layer(&doc, "x.json").unwrap().0, 1);
    // The inventory reads files as UTF-8 (read_to_string), so a reader only ever sees valid text;
    // what a lossy conversion of invalid bytes would hand it must still be harmless.
    let lossy =
        String::from_utf8_lossy(b"{\"name\": \"\xff\xfe\", \"techniques\": [{\"techniqueID\": \"T\xc3\x28\"}]}");
    assert_eq!(navigator_layer(&lossy, "x.json").unwrap().0, 1);
    assert!(navigator_layer("\0", "x.json").unwrap_err().starts_with("not valid JSON"));
    assert!(navigator_layer("{\"techniques\": [\0]}", "x.json").is_err());
    assert_eq!(navigator_layer(r#"{"name": "\u0000", "techniques": [{"techniqueID": "\u0000"}]}"#, "x").unwrap().0, 1);
    assert!(navigator_layer("1e999", "x.json").unwrap_err().contains("number out of range"));
    let doc = r#"{"techniques": [{"techniqueID": "T1", "score": 1e308}, {"techniqueID": "T2", "score": -1e308},
        {"techniqueID": "T3", "score": 18446744073709551616}, {"techniqueID": "T4", "score": "NaN"}, {"techniqueID": "T5", "score": -0.0}]}"#;
    assert_eq!(navigator_layer(doc, "x.json").unwrap().0, 3);
    assert!(navigator_layer(r#"{"techniques": [{"score": 1e999}]}"#, "x.json").is_err());
    for doc in
        ["", "null", "[]", "[[]]", "{}", "[{\"techniques\": 1}]", "{\"techniques\": [1, null, {\"techniqueID\": 5}]}"]
    {
        let _ = navigator_layer(doc, "x.json");
    }
}

// ---- Sigma rules ----------------------------------------------------------------------------------

#[test]
fn sigma_deeply_nested_yaml_is_refused() {
    let e = sigma_rules(&nested("[", "]", 100_000), "rules/x.yml").unwrap_err();
    assert!(e.starts_with("not valid YAML"), "{e}");
    let e = sigma_rules(&nested("{a: ", "}", 100_000), "rules/x.yml").unwrap_err();
    assert!(e.starts_with("not valid YAML"), "{e}");
    // Block style: each level indented one more space (2,000 levels are 2 MB).
    let mut block = String::new();
    for i in 0..2_000 {
        block.push_str(&" ".repeat(i));
        block.push_str("a:\n");
    }
    assert!(sigma_rules(&block, "rules/x.yml").is_err());
    let tags = format!("title: deep\ntags: {}\n", nested("[", "]", 100_000));
    assert!(sigma_rules(&tags, "rules/x.yml").is_err());
}

/// libyaml's scanner is quadratic in flow nesting: 100,000 `[` took 29 s and a 10 MB file (the
/// inventory's limit) would never finish. Deep nesting is now refused before YAML is parsed.
#[test]
fn sigma_deep_flow_nesting_is_refused_before_parsing() {
    let started = std::time::Instant::now();
    let e = sigma_rules(&format!("title: x\n\ntags: {}", "[".repeat(1_000_000)), "rules/x.yml").unwrap_err();
    assert_eq!(e, "not valid YAML: '[' and '{' nested more than 1000 levels deep at line 3");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    // Brackets in strings count too, so a rule may hold many, as long as they are not 1000 deep.
    let rule = format!(
        "title: '{}'\ndetection: {{sel: {{a: '{}'}}}}\ntags: [attack.t1059]\n",
        "[".repeat(900),
        "]".repeat(5000)
    );
    assert_eq!(sigma_rules(&rule, "rules/x.yml").unwrap().0, 1);
    // Nesting that libyaml reads but serde_yaml_ng refuses (over 128 levels) stays a YAML error.
    let e = sigma_rules(&nested("[", "]", 500), "rules/x.yml").unwrap_err();
    assert!(e.contains("recursion limit exceeded"), "{e}");
}

#[test]
fn sigma_alias_bombs_are_refused() {
    // "Billion laughs": each alias doubles; expanded it would be 2^40 nodes.
    let mut doc = String::from("a0: &a0 [x, x]\n");
    for i in 1..40 {
        doc.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1));
    }
    doc.push_str("tags: *a39\n");
    assert!(sigma_rules(&doc, "rules/bomb.yml").is_err());
}

#[test]
fn sigma_hostile_inputs() {
    let big = big_string();
    let doc = format!("title: {big}\ntags:\n  - attack.t1059\n  - {big}\n");
    assert_eq!(sigma_rules(&doc, "rules/x.yml").unwrap().0, 1);
    let lossy = String::from_utf8_lossy(b"title: \xff\xfe\ntags: [attack.t1059, attack.\xc3\x28]\n");
    assert_eq!(sigma_rules(&lossy, "rules/x.yml").unwrap().0, 1);
    assert!(
        sigma_rules("title: a\0b\ntags: [attack.t1059]\n", "rules/x.yml").unwrap_err().starts_with("not valid YAML")
    );
    assert!(sigma_rules("\0", "rules/x.yml").is_err());
    // Numbers out of range are floats (inf) or strings in YAML: no technique, no panic.
    assert_eq!(sigma_rules("title: 1e999\nstatus: 1e999\ntags: [1e999, -1e999, .nan]\n", "x.yml").unwrap().0, 0);
    for doc in [
        "",
        "---",
        "--- \n...\n---\n",
        "- a\n- b\n",
        "42",
        "title: [a, b]\ntags: {a: b}\n",
        "tags: [attack.t1059, attack.T1059.001, attack.t1059/001, attack., ATTACK.t1]\n",
        "? [a, b]\n: c\n",
        "!!binary aGVsbG8=",
        "title: !!str\ntags: !custom [attack.t1059]\n",
        "%YAML 1.1\n---\ntitle: x\n",
        "%YAML 9.9\n---\ntitle: x\n",
        "\ttitle: x",
        "a: b: c",
        "&a [*a]",
        "*undefined",
    ] {
        let _ = sigma_rules(doc, "");
    }
}
