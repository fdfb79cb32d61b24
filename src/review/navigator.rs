//! The incident as an ATT&CK Navigator layer: observed techniques, those the inventory does not
//! cover, and those likely in blind stages, each scored (so layers stay combinable with the
//! organisation's own) and commented, with a legend and links back to the incident.

use serde_json::{Map, Value, json};

use super::model::*;

struct LayerTechnique {
    id: String,
    tactic: Option<String>,
    score: f64,
    color: Option<String>,
    comment: String,
    enabled: bool,
    metadata: Vec<(String, String)>,
}

struct LayerSpec {
    name: String,
    description: String,
    domain: String,
    attack_version: Option<String>,
    techniques: Vec<LayerTechnique>,
    legend: Vec<(String, String)>,
    metadata: Vec<(String, String)>,
    links: Vec<(String, String)>,
}

fn pairs(items: &[(String, String)], key: &str, value: &str) -> Value {
    Value::Array(items.iter().map(|(k, v)| json!({ key: k, value: v })).collect())
}

/// A format 4.5 layer (shared/specs/navigator-layer-4.5.md). Every technique carries a score,
/// since the Navigator drops unannotated entries on re-export and scores keep layers combinable.
/// Built as `Value`s moved into place: `json!` would serialize (copy) every nested array again.
fn build(spec: LayerSpec) -> Value {
    let mut techniques = spec.techniques;
    techniques.sort_by(|a, b| (&a.id, &a.tactic).cmp(&(&b.id, &b.tactic)));
    let mut versions = json!({"layer": "4.5", "navigator": "5.1.0"});
    if let Some(major) = spec.attack_version.as_deref().and_then(|v| v.split('.').next()) {
        versions["attack"] = Value::String(major.to_owned());
    }
    let techniques: Vec<Value> = techniques
        .into_iter()
        .map(|t| {
            let mut m = Map::new();
            m.insert("techniqueID".into(), Value::String(t.id));
            if let Some(tactic) = t.tactic {
                m.insert("tactic".into(), Value::String(tactic));
            }
            m.insert("score".into(), json!(t.score));
            if let Some(color) = t.color {
                m.insert("color".into(), Value::String(color));
            }
            m.insert("comment".into(), Value::String(t.comment));
            m.insert("enabled".into(), Value::Bool(t.enabled));
            m.insert("metadata".into(), pairs(&t.metadata, "name", "value"));
            Value::Object(m)
        })
        .collect();
    let mut layer = Map::new();
    layer.insert("name".into(), Value::String(spec.name));
    layer.insert("versions".into(), versions);
    layer.insert("domain".into(), Value::String(spec.domain));
    layer.insert("description".into(), Value::String(spec.description));
    layer.insert("sorting".into(), json!(3));
    layer.insert(
        "layout".into(),
        json!({"layout": "side", "showID": true, "showName": true, "expandedSubtechniques": "annotated"}),
    );
    layer.insert("hideDisabled".into(), Value::Bool(false));
    layer.insert("techniques".into(), Value::Array(techniques));
    layer.insert(
        "legendItems".into(),
        Value::Array(spec.legend.iter().map(|(l, c)| json!({"label": l, "color": c})).collect()),
    );
    layer.insert("metadata".into(), pairs(&spec.metadata, "name", "value"));
    layer.insert("links".into(), pairs(&spec.links, "label", "url"));
    Value::Object(layer)
}

pub const OBSERVED: &str = "#fd8d3c";
pub const UNCOVERED: &str = "#d62728";
pub const LIKELY: &str = "#9e9ac8";

fn status_name(s: TechniqueStatus) -> &'static str {
    match s {
        TechniqueStatus::Active => "active",
        TechniqueStatus::Revoked => "revoked",
        TechniqueStatus::Deprecated => "deprecated",
        TechniqueStatus::Unknown => "unknown",
    }
}

pub(crate) fn for_review(r: &Review) -> Value {
    let mut techniques = Vec::new();
    for t in r.techniques.iter().filter(|t| t.name.is_some()) {
        let uncovered = t.covered == Some(false);
        let mut comment = format!("Observed in {} alert(s): {}.", t.alerts.len(), t.alerts.join(", "));
        if uncovered {
            comment += " Not covered by the detection inventory.";
        }
        if t.status != TechniqueStatus::Active {
            comment += &format!(" Received as {}.", t.received_ids.join(", "));
        }
        for tactic in &t.tactics {
            techniques.push(LayerTechnique {
                id: t.id.clone(),
                tactic: Some(tactic.clone()),
                score: if uncovered { 3.0 } else { 2.0 },
                color: Some(if uncovered { UNCOVERED } else { OBSERVED }.to_owned()),
                comment: comment.clone(),
                enabled: true,
                metadata: vec![("status".into(), status_name(t.status).into())],
            });
        }
    }
    for stage in &r.gaps.blind_stages {
        for l in &stage.likely {
            techniques.push(LayerTechnique {
                id: l.id.clone(),
                tactic: Some(stage.tactic.clone()),
                score: 1.0,
                color: Some(LIKELY.to_owned()),
                comment: format!(
                    "Likely in the blind stage {} (likelihood {:.2}){}.",
                    stage.name,
                    l.likelihood,
                    if l.used_by.is_empty() { String::new() } else { format!("; used by {}", l.used_by.join(", ")) }
                ),
                enabled: true,
                metadata: vec![],
            });
        }
    }
    let i = &r.incident;
    let mut links = Vec::new();
    if let Some(url) = i.url.as_ref().filter(|u| u.starts_with("https://")) {
        links.push(("Incident in Microsoft Defender".to_owned(), url.clone()));
    }
    build(LayerSpec {
        name: format!("Incident {}: {}", i.id, i.title),
        description: format!(
            "Post-incident review by Hindsight of incident {} (source {}, resolution {}). Severity {}, classification {}.",
            i.id, i.source, i.revision, i.severity, i.classification
        ),
        domain: r.basis.attack_domain.clone(),
        attack_version: r.basis.attack_version.clone(),
        techniques,
        legend: vec![
            ("Observed (alerted)".into(), OBSERVED.into()),
            ("Observed, not covered by the detection inventory".into(), UNCOVERED.into()),
            ("Likely in a blind stage".into(), LIKELY.into()),
        ],
        metadata: vec![
            ("incident".into(), i.id.clone()),
            ("source".into(), i.source.clone()),
            ("revision".into(), i.revision.to_string()),
            ("severity".into(), i.severity.clone()),
            ("classification".into(), i.classification.clone()),
        ],
        links,
    })
}
