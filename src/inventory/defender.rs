//! Microsoft Defender XDR custom detection rules as Graph returns them
//! (`GET /security/rules/detectionRules`, v1.0 or beta): a list response (`{"value": [...]}`), a
//! bare array or one rule. Both schemas are read, since exports made before the beta fields
//! were removed (2026-10-01) linger: the current one (`status`, techniques under
//! `detectionAction.alertTemplate.tactics[].techniques[]` with `subTechniques`) and the old one
//! (`isEnabled`, `alertTemplate.mitreTechniques`). A rule that is disabled, or that Defender
//! switched off because its query kept failing (`autoDisabled`), covers nothing and is named as
//! such; a rule naming no technique is "unmapped", not "covers nothing", and is reported.

use serde_json::Value;

use super::{Found, State, listed as rules};

/// Whether `v` looks like detection rules: a rule has a `queryCondition` or a `detectionAction`.
pub(crate) fn recognises(v: &Value) -> bool {
    let first = rules(v).into_iter().next();
    first.is_some_and(|r| r.get("queryCondition").is_some() || r.get("detectionAction").is_some())
}

fn state(rule: &Value) -> State {
    match (rule["status"].as_str(), rule["isEnabled"].as_bool()) {
        (Some("enabled"), _) | (None, Some(true)) => State::Enabled,
        (Some("autoDisabled"), _) => State::AutoDisabled,
        (Some("disabled"), _) | (None, Some(false)) => State::Disabled,
        // `unknownFutureValue` or a status this version does not know: not counted as coverage
        // on a guess, but said.
        (Some(_), _) => State::Unknown,
        (None, None) => State::Enabled,
    }
}

/// The techniques a rule names, in both schemas: `tactics[].techniques[]` with `technique` (a
/// technique, or in some examples a sub-technique) and `subTechniques[]`, and the old
/// `mitreTechniques[]`.
fn techniques(rule: &Value) -> Vec<String> {
    let template = &rule["detectionAction"]["alertTemplate"];
    let mut ids = Vec::new();
    for tactic in template["tactics"].as_array().into_iter().flatten() {
        for t in tactic["techniques"].as_array().into_iter().flatten() {
            ids.extend(t["technique"].as_str().map(str::to_owned));
            ids.extend(
                t["subTechniques"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned),
            );
        }
    }
    ids.extend(
        template["mitreTechniques"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned),
    );
    ids.dedup();
    ids
}

pub(crate) fn read(text: &str, _file: &str) -> Result<(Vec<Found>, Vec<String>), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    if !recognises(&v) {
        return Err("not Defender custom detection rules (no rule with a queryCondition or detectionAction)".into());
    }
    Ok(read_value(&v))
}

/// The rules of a list response, an array or one rule, already parsed.
pub(crate) fn read_value(v: &Value) -> (Vec<Found>, Vec<String>) {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for (k, rule) in rules(v).into_iter().enumerate() {
        let name = rule["displayName"].as_str().map_or_else(|| format!("rule {}", k + 1), str::to_owned);
        let label = format!("Defender custom detection \"{name}\"");
        let ids = techniques(rule);
        if ids.is_empty() {
            notes.push(format!("{label} names no ATT&CK technique (unmapped: it may cover something)"));
            continue;
        }
        let state = state(rule);
        if state == State::Unknown {
            notes.push(format!(
                "{label} has status {:?}, which this version does not know: not counted as coverage",
                rule["status"].as_str().unwrap_or_default()
            ));
        }
        found.push(Found { rule: label, ids, state });
    }
    (found, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_schemas_every_status_and_unmapped_rules() {
        let list = serde_json::json!({"value": [
            {"id": "office-encoded-powershell", "displayName": "Encoded PowerShell from Office", "status": "enabled",
             "queryCondition": {"queryText": "DeviceProcessEvents"}, "schedule": {"frequency": "PT1H"},
             "detectionAction": {"alertTemplate": {"title": "x", "severity": "high", "tactics": [
                {"tactic": "Execution", "techniques": [{"technique": "T1059", "subTechniques": ["T1059.001"]}]},
                {"tactic": "DefenseEvasion", "techniques": [{"technique": "T1027.010", "subTechniques": []}]}]}}},
            {"id": "7506", "displayName": "DCSync from a workstation", "isEnabled": false,
             "queryCondition": {"queryText": "x"}, "detectionAction": {"alertTemplate": {"mitreTechniques": ["T1003.006"]}}},
            {"id": "a", "displayName": "Failing rule", "status": "autoDisabled", "queryCondition": {"queryText": "x"},
             "detectionAction": {"alertTemplate": {"tactics": [{"tactic": "Discovery", "techniques": [{"technique": "T1087.002"}]}]}}},
            {"id": "b", "displayName": "Old unmapped rule", "isEnabled": true, "queryCondition": {"queryText": "x"},
             "detectionAction": {"alertTemplate": {"mitreTechniques": []}}}
        ]});
        let (found, notes) = read(&list.to_string(), "rules.json").unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].rule, "Defender custom detection \"Encoded PowerShell from Office\"");
        assert_eq!(found[0].ids, ["T1059", "T1059.001", "T1027.010"]);
        assert_eq!(found[0].state, State::Enabled);
        assert_eq!((found[1].ids.as_slice(), found[1].state), (["T1003.006".to_owned()].as_slice(), State::Disabled));
        assert_eq!(found[2].state, State::AutoDisabled);
        assert!(notes.iter().any(|n| n.contains("Old unmapped rule") && n.contains("unmapped")), "{notes:?}");
        // A navigator layer is not mistaken for rules.
        assert!(!recognises(&serde_json::json!({"name": "layer", "techniques": []})));
        assert!(read("{\"name\": \"layer\"}", "x.json").unwrap_err().contains("not Defender custom detection rules"));
    }
}
