//! Checks an ATT&CK Navigator layer against the format 4.5 rules (shared/specs/
//! navigator-layer-4.5.md). There is no official JSON Schema for layers; the Navigator checks in
//! code, and so do we: every layer Hindsight writes passes this before anyone imports it.

use serde_json::Value;

fn is_color(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_technique_id(s: &str) -> bool {
    crate::attack::resolve::normalize(s).is_some_and(|n| n == s)
}

/// Every problem found, each with the JSON path where it is; empty when the layer is valid.
pub fn validate(layer: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let Some(obj) = layer.as_object() else {
        return vec!["$: a layer is a JSON object".into()];
    };
    for key in ["name", "domain"] {
        if !obj.get(key).is_some_and(Value::is_string) {
            p.push(format!("$.{key}: required string"));
        }
    }
    if let Some(d) = obj.get("domain").and_then(Value::as_str)
        && !matches!(d, "enterprise-attack" | "mobile-attack" | "ics-attack")
    {
        p.push(format!("$.domain: {d:?} is not enterprise-attack, mobile-attack or ics-attack"));
    }
    match obj.get("versions") {
        Some(v) => {
            if v.get("layer").and_then(Value::as_str) != Some("4.5") {
                p.push("$.versions.layer: must be \"4.5\"".into());
            }
            if !v.get("navigator").is_some_and(Value::is_string) {
                p.push("$.versions.navigator: required string".into());
            }
        }
        None => p.push("$.versions: required".into()),
    }
    for (i, t) in obj.get("techniques").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let at = format!("$.techniques[{i}]");
        match t.get("techniqueID").and_then(Value::as_str) {
            Some(id) if is_technique_id(id) => {}
            other => p.push(format!("{at}.techniqueID: {other:?} is not T#### or T####.###")),
        }
        if let Some(c) = t.get("color")
            && !is_color(c)
        {
            p.push(format!("{at}.color: {c} is not #rrggbb"));
        }
        if t.get("score").is_some_and(|s| !s.is_number()) {
            p.push(format!("{at}.score: must be a number"));
        }
        if t.get("score").is_none() && t.get("color").is_none() && t.get("comment").is_none() {
            p.push(format!("{at}: no score, colour or comment; the Navigator drops it on export"));
        }
    }
    for (i, l) in obj.get("legendItems").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if !l.get("label").is_some_and(Value::is_string) || !l.get("color").is_some_and(is_color) {
            p.push(format!("$.legendItems[{i}]: needs a label and a #rrggbb color"));
        }
    }
    for (i, l) in obj.get("links").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if l.get("divider").is_some() {
            continue;
        }
        let url = l.get("url").and_then(Value::as_str).unwrap_or_default();
        if !l.get("label").is_some_and(Value::is_string) || !url.contains("://") {
            p.push(format!("$.links[{i}]: needs a label and a URL with a scheme"));
        }
    }
    for (i, m) in obj.get("metadata").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let named = m.get("name").is_some_and(Value::is_string) && m.get("value").is_some_and(Value::is_string);
        if m.get("divider").is_none() && !named {
            p.push(format!("$.metadata[{i}]: needs a name and a value (strings)"));
        }
    }
    if let Some(g) = obj.get("gradient") {
        let colors = g.get("colors").and_then(Value::as_array);
        if !colors.is_some_and(|c| c.len() >= 2 && c.iter().all(is_color)) {
            p.push("$.gradient.colors: at least two #rrggbb colours".into());
        }
        match (g.get("minValue").and_then(Value::as_f64), g.get("maxValue").and_then(Value::as_f64)) {
            (Some(a), Some(b)) if b > a => {}
            _ => p.push("$.gradient: minValue and maxValue required, maxValue > minValue".into()),
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_each_kind_of_problem() {
        let good = json!({"name": "x", "domain": "enterprise-attack", "versions": {"layer": "4.5", "navigator": "5.1.0"},
            "techniques": [{"techniqueID": "T1059.001", "score": 1}], "legendItems": [{"label": "a", "color": "#ff0000"}],
            "links": [{"label": "Defender", "url": "https://security.microsoft.com"}, {"divider": true}],
            "gradient": {"colors": ["#ffffff", "#ff0000"], "minValue": 0, "maxValue": 3}});
        assert!(validate(&good).is_empty(), "{:?}", validate(&good));
        let bad = json!({"domain": "pre-attack", "versions": {"layer": "4.4"},
            "techniques": [{"techniqueID": "t1059"}, {"techniqueID": "T1059", "color": "red", "score": "high"}],
            "legendItems": [{"label": "a"}], "links": [{"label": "x", "url": "security.microsoft.com"}],
            "metadata": [{"name": "n"}], "gradient": {"colors": ["#fff"], "minValue": 3, "maxValue": 1}});
        let problems = validate(&bad);
        for expected in [
            "$.name",
            "$.domain",
            "$.versions.layer",
            "$.versions.navigator",
            "$.techniques[0].techniqueID",
            "$.techniques[0]: no score",
            "$.techniques[1].color",
            "$.techniques[1].score",
            "$.legendItems[0]",
            "$.links[0]",
            "$.metadata[0]",
            "$.gradient.colors",
            "$.gradient: minValue",
        ] {
            assert!(problems.iter().any(|p| p.starts_with(expected)), "{expected} not in {problems:#?}");
        }
    }
}
