//! ATT&CK Navigator layers, any version from 3.0 to 4.5; a file holds one layer or an array.
//! An entry counts as coverage when its score is above zero, or, without a score, when it is
//! not disabled: the two ways people mark "we detect this" in a layer.

use serde_json::Value;

use super::{Found, State};

pub(crate) fn read(text: &str, _file: &str) -> Result<(Vec<Found>, Vec<String>), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let layers: Vec<&Value> = match &v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![&v],
        _ => return Err("not a Navigator layer (expected an object or an array of layers)".into()),
    };
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for layer in layers {
        let Some(techniques) = layer.get("techniques").and_then(Value::as_array) else {
            return Err("not a Navigator layer: no \"techniques\" array".into());
        };
        let name = layer.get("name").and_then(Value::as_str).unwrap_or("layer");
        if let Some(domain) = layer.get("domain").and_then(Value::as_str)
            && !domain.contains("enterprise")
        {
            notes.push(format!("layer \"{name}\" is for {domain}; its IDs are read against the catalog in use"));
        }
        let mut ignored = 0;
        for t in techniques {
            let Some(id) = t.get("techniqueID").and_then(Value::as_str) else { continue };
            let enabled = t.get("enabled").and_then(Value::as_bool).unwrap_or(true);
            let covered = match t.get("score").and_then(Value::as_f64) {
                Some(score) => score > 0.0 && enabled,
                None => enabled,
            };
            if covered {
                found.push(Found {
                    rule: format!("layer \"{name}\" {id}"),
                    ids: vec![id.to_owned()],
                    state: State::Enabled,
                });
            } else {
                ignored += 1;
            }
        }
        if ignored > 0 {
            notes.push(format!(
                "layer \"{name}\": {ignored} entries with score 0 or disabled are not counted as coverage"
            ));
        }
    }
    Ok((found, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_and_enabled_decide() {
        let layer = r#"{"name": "SOC", "versions": {"layer": "4.5"}, "domain": "enterprise-attack", "techniques": [
            {"techniqueID": "T1059.001", "score": 1},
            {"techniqueID": "T1003", "score": 0},
            {"techniqueID": "T1566", "enabled": false},
            {"techniqueID": "T1078"},
            {"techniqueID": "T1021", "score": 5, "enabled": false},
            {"tactic": "execution"}]}"#;
        let (found, notes) = read(layer, "x").unwrap();
        let ids: Vec<&str> = found.iter().map(|f| f.ids[0].as_str()).collect();
        assert_eq!(ids, ["T1059.001", "T1078"]);
        assert_eq!(notes, ["layer \"SOC\": 3 entries with score 0 or disabled are not counted as coverage"]);
        // Layer 3.0 files and arrays of layers.
        let old = r#"[{"name": "a", "version": "3.0", "domain": "mitre-enterprise", "techniques": [{"techniqueID": "T1086", "tactic": "execution", "score": 2}]}]"#;
        assert_eq!(read(old, "x").unwrap().0[0].ids, ["T1086"]);
        assert!(read("[1]", "x").is_err());
        assert!(read("{\"name\": \"no techniques\"}", "x").unwrap_err().contains("no \"techniques\""));
    }
}
