//! Inputs that must never make a parser panic, overflow its stack or run away: the four input
//! parsers the fuzz targets in `fuzz/` exercise (Graph incident JSON and the directory source's
//! files, STIX bundles, Navigator layers, Sigma rules), fed hostile inputs (deep nesting, a 1 MB
//! string, invalid UTF-8, NUL bytes, out-of-range numbers) and whatever the fuzzers found.
//! Each parser must answer Ok or a clean error, and which of the two is decided by the input: what
//! is not what the parser reads is refused with an error that names the problem, what is valid
//! is read. A panic fails the test too.
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
    assert!(incident(objects.as_bytes()).unwrap_err().contains("recursion limit"));
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
    assert!(incident(b"\0").unwrap_err().starts_with("not valid JSON"));
    let e = incident(b"{\"id\": \"1\0\", \"lastUpdateDateTime\": \"2026-11-01T10:00:00Z\"}").unwrap_err();
    assert!(e.contains("control character"), "{e}");
    // An escaped NUL is a valid JSON string.
    assert_eq!(incident(br#"{"id": "1\u0000", "lastUpdateDateTime": "2026-11-01T10:00:00Z"}"#), Ok(1));
    assert!(incident(b"\n\n\0\n").unwrap_err().starts_with("line 3"));
    // A lone surrogate escape.
    let e = incident(br#"{"id": "\udc00", "lastUpdateDateTime": "2026-11-01T10:00:00Z"}"#).unwrap_err();
    assert!(e.contains("lone leading surrogate"), "{e}");
}

#[test]
fn incident_out_of_range_numbers() {
    assert!(incident(b"1e999").unwrap_err().contains("number out of range"));
    let doc = br#"{"id": 1e999, "lastUpdateDateTime": "2026-11-01T10:00:00Z"}"#;
    assert!(incident(doc).unwrap_err().contains("number out of range"));
    // Numbers where strings or scores belong: kept or ignored, never a panic.
    let doc = br#"{"id": 18446744073709551615, "priorityScore": 18446744073709551615, "severity": -1e308, "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": [{"id": -0.0, "createdDateTime": 1e300}]}"#;
    assert_eq!(incident(doc), Ok(1));
    // A year past 9999 is not an RFC 3339 date-time.
    let doc = br#"{"id": "1", "priorityScore": -5, "lastUpdateDateTime": "+275760-09-13T00:00:00Z"}"#;
    assert!(incident(doc).unwrap_err().contains("is a valid date-time"));
}

#[test]
fn incident_odd_shapes() {
    // Nothing in the file, or nothing that is an incident: refused, saying what it is not.
    for (doc, why) in [
        (&b""[..], "not valid JSON"),
        (b"   \n\t  ", "not valid JSON"),
        (b"null", "not an incident, a list of incidents or NDJSON"),
        (b"{}", "incident without an \"id\""),
        (b"{\"id\": \"\", \"lastUpdateDateTime\": \"2026-11-01T10:00:00Z\"}", "incident without an \"id\""),
        (b"[null, 1, \"x\", [], {}]", "incident 0: not a JSON object; incident 1: not a JSON object"),
    ] {
        let e = incident(doc).expect_err(&String::from_utf8_lossy(doc));
        assert!(e.contains(why), "{:?}: {e}", String::from_utf8_lossy(doc));
    }
    // Valid shapes: an empty list (bare or as Graph pages it), a leap second in year 9999 at the
    // largest offset RFC 3339 allows, an incident dated by its creation with evidence of no
    // known type, and a file that starts with a UTF-8 byte order mark (as Windows PowerShell's
    // `Out-File -Encoding utf8` writes it).
    for (doc, n) in [
        (&b"[]"[..], 0),
        (b"{\"value\": []}", 0),
        (b"{\"id\": \"1\", \"lastUpdateDateTime\": \"9999-12-31T23:59:60.999999999+23:59\"}", 1),
        (b"{\"id\": \"1\", \"createdDateTime\": \"2026-11-01T10:00:00Z\", \"alerts\": [{\"evidence\": [{\"@odata.type\": \"\", \"roles\": [1, null]}]}]}", 1),
        (b"\xef\xbb\xbf{\"id\": \"1\", \"lastUpdateDateTime\": \"2026-11-01T10:00:00Z\"}", 1),
    ] {
        assert_eq!(incident(doc), Ok(n), "{:?}", String::from_utf8_lossy(doc));
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
    // (A long member name is valid JSON: refused only for what the bundle lacks.)
    let doc = format!(r#"{{"{big}": 1, "type": "bundle", "objects": []}}"#);
    assert!(stix(doc.as_bytes()).unwrap_err().contains("no active x-mitre-matrix"));
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
    assert!(
        stix(b"{\"\xff\": 1, \"type\": \"bundle\", \"objects\": []}")
            .unwrap_err()
            .contains("invalid unicode code point")
    );
    assert!(stix(b"\0").unwrap_err().contains("byte 0x00"));
    assert!(stix(b"{\"type\": \"bundle\",\0 \"objects\": []}").unwrap_err().contains("is not valid JSON"));
    let e = stix(b"{\"type\": \"bundle\", \"objects\": [{\"type\": \"tool\", \"id\": \"a\0\"}]}").unwrap_err();
    assert!(e.contains("objects[0].id: control character"), "{e}");
    assert!(stix(b"{\"type\": \"bundle\", \"objects\": []}\0").unwrap_err().contains("after the end of the bundle"));
    // MITRE's bundles carry no byte order mark; one is refused, by name.
    assert!(stix(b"\xef\xbb\xbf{\"type\": \"bundle\", \"objects\": []}").unwrap_err().contains("unexpected byte 0xef"));
}

#[test]
fn stix_out_of_range_numbers() {
    assert!(stix(b"1e999").unwrap_err().contains("not a STIX bundle"));
    assert!(stix(br#"{"type": 1e999, "objects": []}"#).unwrap_err().contains("\"type\""));
    let doc = br#"{"type": "bundle", "objects": [1e999, {"type": "tool", "id": "tool--1", "x": -1e999}]}"#;
    assert!(stix(doc).unwrap_err().contains("objects[0]"));
    let doc = br#"{"type": "bundle", "n": 1e999, "objects": [{"type": "tool", "id": "tool--1", "revoked": 1e999}]}"#;
    assert!(stix(doc).unwrap_err().contains("objects[0].revoked: number out of range"));
}

#[test]
fn stix_odd_shapes() {
    // None of these is an ATT&CK bundle: each is refused, naming what is wrong.
    for (doc, why) in [
        (&b""[..], "(it is empty)"),
        (b"{", "ends before the JSON is complete"),
        (b"{}", "no \"type\", expected \"bundle\""),
        (b"{\"objects\": 5}", "no \"type\", expected \"bundle\""),
        // Valid JSON bundles, but with no matrix (the self-revoking relationship must not loop).
        (b"{\"objects\": [], \"objects\": [], \"type\": \"bundle\"}", "no active x-mitre-matrix"),
        (b"{\"type\": \"bundle\", \"objects\": [{\"type\": \"relationship\", \"id\": \"r\", \"source_ref\": \"a\", \"target_ref\": \"a\", \"relationship_type\": \"revoked-by\"}]}", "no active x-mitre-matrix"),
        (b"{\"type\": \"bundle\", \"objects\": [1, \"s\", null, true, [], {}]}", "objects[0]: invalid type"),
        (b"{\"type\": \"bundle\", \"objects\": [1 2]}", "objects[0]: invalid type"),
        (b"{\"type\": \"bundle\", \"objects\": [1,]}", "objects[0]: invalid type"),
        (b"{\"type\": \"bundle\" \"objects\": []}", "expected ',' or '}' between the bundle's members"),
        (b"{1: 2}", "expected a member name"),
        (b"{\"a\"}", "expected ':' after a member name"),
        // Refused, but for lacking "type": the scanner does not check the value of a member it
        // skips, so `"a":` with no value is not itself named (a known gap).
        (b"{\"a\":}", "not a STIX bundle"),
        (b"{\"type\": \"bundle\", \"objects\": []}}", "after the end of the bundle"),
    ] {
        let e = stix(doc).expect_err(&String::from_utf8_lossy(doc));
        assert!(e.contains(why), "{:?}: {e}", String::from_utf8_lossy(doc));
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
    assert!(navigator_layer("{\"techniques\": [\0]}", "x.json").unwrap_err().starts_with("not valid JSON"));
    assert_eq!(navigator_layer(r#"{"name": "\u0000", "techniques": [{"techniqueID": "\u0000"}]}"#, "x").unwrap().0, 1);
    assert!(navigator_layer("1e999", "x.json").unwrap_err().contains("number out of range"));
    let doc = r#"{"techniques": [{"techniqueID": "T1", "score": 1e308}, {"techniqueID": "T2", "score": -1e308},
        {"techniqueID": "T3", "score": 18446744073709551616}, {"techniqueID": "T4", "score": "NaN"}, {"techniqueID": "T5", "score": -0.0}]}"#;
    assert_eq!(navigator_layer(doc, "x.json").unwrap().0, 3);
    assert!(
        navigator_layer(r#"{"techniques": [{"score": 1e999}]}"#, "x.json").unwrap_err().contains("number out of range")
    );
    // Not a layer: refused, saying so.
    for (doc, why) in [
        ("", "not valid JSON"),
        ("null", "not a Navigator layer"),
        ("[[]]", "no \"techniques\" array"),
        ("{}", "no \"techniques\" array"),
        ("[{\"techniques\": 1}]", "no \"techniques\" array"),
    ] {
        let e = navigator_layer(doc, "x.json").expect_err(doc);
        assert!(e.contains(why), "{doc:?}: {e}");
    }
    // A layer is read entry by entry: an empty list of layers, and a layer whose entries are
    // not techniques, give no coverage.
    assert_eq!(navigator_layer("[]", "x.json").unwrap().0, 0);
    assert_eq!(navigator_layer("{\"techniques\": [1, null, {\"techniqueID\": 5}]}", "x.json").unwrap().0, 0);
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
    assert!(sigma_rules(&block, "rules/x.yml").unwrap_err().contains("recursion limit exceeded"));
    let tags = format!("title: deep\ntags: {}\n", nested("[", "]", 100_000));
    assert!(sigma_rules(&tags, "rules/x.yml").unwrap_err().contains("nested more than 64 levels deep"));
}

/// libyaml's scanner is quadratic in flow nesting: 100,000 `[` took 29 s and a 10 MB file (the
/// inventory's limit) would never finish. Deep nesting is now refused before YAML is parsed.
#[test]
fn sigma_deep_flow_nesting_is_refused_before_parsing() {
    let started = std::time::Instant::now();
    let e = sigma_rules(&format!("title: x\n\ntags: {}", "[".repeat(1_000_000)), "rules/x.yml").unwrap_err();
    assert_eq!(e, "not valid YAML: '[' and '{' nested more than 64 levels deep at line 3");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    // Brackets in strings count too, so a rule may hold many, as long as they are not 64 deep.
    let rule = format!(
        "title: '{}'\ndetection: {{sel: {{a: '{}'}}}}\ntags: [attack.t1059]\n",
        "[".repeat(60),
        "]".repeat(5000)
    );
    assert_eq!(sigma_rules(&rule, "rules/x.yml").unwrap().0, 1);
    // Nesting past the guard is refused before serde_yaml_ng (which stops at 128 levels) sees it.
    let e = sigma_rules(&nested("[", "]", 500), "rules/x.yml").unwrap_err();
    assert!(e.contains("nested more than 64 levels deep"), "{e}");
}

#[test]
fn sigma_alias_bombs_are_refused() {
    // "Billion laughs": each alias doubles; expanded it would be 2^40 nodes.
    let mut doc = String::from("a0: &a0 [x, x]\n");
    for i in 1..40 {
        doc.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1));
    }
    doc.push_str("tags: *a39\n");
    assert!(sigma_rules(&doc, "rules/bomb.yml").unwrap_err().contains("repetition limit exceeded"));
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
    assert!(sigma_rules("\0", "rules/x.yml").unwrap_err().contains("control characters are not allowed"));
    // Numbers out of range are floats (inf) or strings in YAML: no technique, no panic.
    assert_eq!(sigma_rules("title: 1e999\nstatus: 1e999\ntags: [1e999, -1e999, .nan]\n", "x.yml").unwrap().0, 0);
    // Valid YAML: read, and a rule counts only if its tags name a technique (empty files and
    // documents that are not mappings name none).
    for (doc, n) in [
        ("", 0),
        ("---", 0),
        ("--- \n...\n---\n", 0),
        ("- a\n- b\n", 0),
        ("42", 0),
        ("title: [a, b]\ntags: {a: b}\n", 0),
        ("tags: [attack.t1059, attack.T1059.001, attack.t1059/001, attack., ATTACK.t1]\n", 1),
        ("? [a, b]\n: c\n", 0),
        ("!!binary aGVsbG8=", 0),
        ("title: !!str\ntags: !custom [attack.t1059]\n", 1),
        ("%YAML 1.1\n---\ntitle: x\n", 0),
    ] {
        assert_eq!(sigma_rules(doc, "").map(|r| r.0), Ok(n), "{doc:?}");
    }
    // Not valid YAML: refused, naming the problem.
    for (doc, why) in [
        ("%YAML 9.9\n---\ntitle: x\n", "incompatible YAML document"),
        ("\ttitle: x", "cannot start any token"),
        ("a: b: c", "mapping values are not allowed"),
        ("&a [*a]", "recursion limit exceeded"),
        ("*undefined", "unknown anchor"),
    ] {
        let e = sigma_rules(doc, "").expect_err(doc);
        assert!(e.starts_with("not valid YAML") && e.contains(why), "{doc:?}: {e}");
    }
}
