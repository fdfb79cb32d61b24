//! Microsoft Sentinel analytics rules as Azure Resource Manager lists them
//! (`GET …/providers/Microsoft.SecurityInsights/alertRules?api-version=2025-09-01`, or
//! `az sentinel alert-rule list`): `{"value": [...]}`, a bare array or one rule, each with
//! `kind` and `properties`. Techniques are `properties.techniques` (`T####`) and, in preview
//! API versions, `properties.subTechniques`; a rule with `enabled: false` covers nothing and is
//! named as such. Any `kind` is accepted (Scheduled, NRT, Fusion, Microsoft security incident
//! creation, …); a rule naming no technique is reported as unmapped.

use serde_json::Value;

use super::{Found, State, listed as rules};

/// Whether `v` looks like ARM alert rules: a rule has `kind` and a `properties` object.
pub(crate) fn recognises(v: &Value) -> bool {
    rules(v).into_iter().next().is_some_and(|r| r["kind"].is_string() && r["properties"].is_object())
}

pub(crate) fn read(text: &str, _file: &str) -> Result<(Vec<Found>, Vec<String>), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    if !recognises(&v) {
        return Err("not Microsoft Sentinel analytics rules (no rule with kind and properties)".into());
    }
    Ok(read_value(&v))
}

/// The rules of a listing already parsed (an ARM page, an array of rules, one rule).
pub(crate) fn read_value(v: &Value) -> (Vec<Found>, Vec<String>) {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for rule in rules(v) {
        let p = &rule["properties"];
        let name = p["displayName"].as_str().or(rule["name"].as_str()).unwrap_or("unnamed rule");
        let label = format!("Sentinel analytics rule \"{name}\"");
        let strings = |k: &str| p[k].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned);
        let ids: Vec<String> = strings("techniques").chain(strings("subTechniques")).collect();
        if ids.is_empty() {
            notes.push(format!("{label} names no ATT&CK technique (unmapped: it may cover something)"));
            continue;
        }
        // `enabled` is absent on some kinds (Fusion lists it; MSIC rules too): absent is on.
        let state = if p["enabled"].as_bool() == Some(false) { State::Disabled } else { State::Enabled };
        found.push(Found { rule: label, ids, state });
    }
    (found, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_and_disabled_rules_of_any_kind() {
        let page = serde_json::json!({"value": [
            {"id": "/subscriptions/s/…/alertRules/1", "name": "1", "kind": "Scheduled", "etag": "\"e\"",
             "properties": {"displayName": "Rare RDP logon", "enabled": true, "severity": "Medium", "query": "SigninLogs",
                            "tactics": ["LateralMovement"], "techniques": ["T1021"], "subTechniques": ["T1021.001"]}},
            {"name": "2", "kind": "NRT", "properties": {"displayName": "LSASS access", "enabled": false, "techniques": ["T1003"]}},
            {"name": "3", "kind": "Fusion", "properties": {"displayName": "Advanced multistage attack detection", "enabled": true}}
        ], "nextLink": "https://management.azure.com/next"});
        let (found, notes) = read(&page.to_string(), "rules.json").unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].rule, "Sentinel analytics rule \"Rare RDP logon\"");
        assert_eq!(found[0].ids, ["T1021", "T1021.001"]);
        assert_eq!(found[1].state, State::Disabled);
        assert!(notes[0].contains("Advanced multistage attack detection"), "{notes:?}");
        assert!(!recognises(&serde_json::json!({"value": [{"queryCondition": {}}]})));
    }
}
