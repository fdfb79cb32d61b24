//! Sigma rules (YAML; a file may hold several documents). Techniques come from tags like
//! `attack.t1059.001`; tactic tags (`attack.execution`, `attack.credential_access`) and other
//! tags are not techniques. Deprecated rules do not count.

use serde_yaml_ng::Value;

use super::{Found, State, technique_like};

/// How deep `[` / `{` may nest before a file is refused unparsed. serde_yaml_ng refuses anything
/// deeper than 128 levels anyway, but only after libyaml has scanned the whole document, and its
/// scanner is quadratic in flow nesting: 100 KB of `[` took 29 s (found by
/// tests/fuzz_regressions.rs). Real Sigma rules nest flow collections a level or two (a list
/// of values under a field, `tags: [...]`); 64 is far beyond any of them and well under
/// libyaml's 128, so nothing a rule needs is refused and nothing deep reaches the scanner. The
/// count is of raw brackets, quoted or not (a regex value with brackets counts), which 64
/// leaves ample room for. (RELIABILITY.md: a reported 2.16 GB / 9 s at 120 levels did not
/// reproduce; the guard was 1,000.)
const MAX_FLOW_DEPTH: usize = 64;

pub(crate) fn read(text: &str, file: &str) -> Result<(Vec<Found>, Vec<String>), String> {
    if let Some(line) = crate::input::flow_depth_over(text, MAX_FLOW_DEPTH) {
        return Err(format!(
            "not valid YAML: '[' and '{{' nested more than {MAX_FLOW_DEPTH} levels deep at line {line}"
        ));
    }
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for (n, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let v: Value = serde::Deserialize::deserialize(doc).map_err(|e| format!("not valid YAML: {e}"))?;
        if v.is_null() {
            continue;
        }
        let title = v.get("title").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| {
            let base = file.rsplit('/').next().unwrap_or(file);
            if n == 0 { base.to_owned() } else { format!("{base} #{}", n + 1) }
        });
        if v.get("status").and_then(Value::as_str) == Some("deprecated") {
            notes.push(format!("rule \"{title}\" is deprecated; not counted"));
            continue;
        }
        let ids: Vec<String> = v
            .get("tags")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|tag| {
                let rest = tag.strip_prefix("attack.").or_else(|| tag.strip_prefix("ATTACK."))?;
                technique_like(rest)
            })
            .collect();
        if !ids.is_empty() {
            found.push(Found { rule: title, ids, state: State::Enabled });
        }
    }
    Ok((found, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_tags_only() {
        let rules = "title: LSASS dump\nstatus: test\ntags:\n  - attack.credential_access\n  - attack.t1003.001\n  - attack.T1003\n  - cve.2021-1234\n---\ntitle: Old rule\nstatus: deprecated\ntags: [attack.t1086]\n---\ntitle: No tags\n";
        let (found, notes) = read(rules, "rules/lsass.yml").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, "LSASS dump");
        assert_eq!(found[0].ids, ["T1003.001", "T1003"]);
        assert_eq!(notes, ["rule \"Old rule\" is deprecated; not counted"]);
        assert!(read("title: [unclosed", "x.yml").unwrap_err().starts_with("not valid YAML"));
    }
}
