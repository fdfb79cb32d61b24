//! Elastic detection-rules TOML: `[rule]` with `name`, and `[[rule.threat]]` entries whose
//! `technique` and `subtechnique` tables carry ATT&CK IDs.

use toml::Value;

use super::{Found, State};

pub(crate) fn read(text: &str, _file: &str) -> Result<(Vec<Found>, Vec<String>), String> {
    let v: Value = toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))?;
    let rule = v.get("rule").ok_or("not an Elastic detection rule: no [rule] table")?;
    let name = rule.get("name").and_then(Value::as_str).unwrap_or("unnamed rule").to_owned();
    let mut ids = Vec::new();
    let tables = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    for threat in tables(rule.get("threat")) {
        for technique in tables(threat.get("technique")) {
            ids.extend(technique.get("id").and_then(Value::as_str).map(str::to_owned));
            for sub in tables(technique.get("subtechnique")) {
                ids.extend(sub.get("id").and_then(Value::as_str).map(str::to_owned));
            }
        }
    }
    if ids.is_empty() {
        return Ok((vec![], vec![format!("rule \"{name}\" names no ATT&CK technique")]));
    }
    Ok((vec![Found { rule: name, ids, state: State::Enabled }], vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn techniques_and_subtechniques() {
        let rule = r#"
[metadata]
creation_date = "2020/08/18"
[rule]
name = "Encoded PowerShell"
type = "eql"
[[rule.threat]]
framework = "MITRE ATT&CK"
[[rule.threat.technique]]
id = "T1059"
name = "Command and Scripting Interpreter"
[[rule.threat.technique.subtechnique]]
id = "T1059.001"
name = "PowerShell"
[rule.threat.tactic]
id = "TA0002"
name = "Execution"
"#;
        let (found, _) = read(rule, "x.toml").unwrap();
        assert_eq!(found[0].rule, "Encoded PowerShell");
        assert_eq!(found[0].ids, ["T1059", "T1059.001"]);
        assert!(read("[metadata]\nx = 1\n", "x.toml").unwrap_err().contains("no [rule] table"));
    }
}
