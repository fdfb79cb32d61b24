//! The incident as an ATT&CK Navigator layer: observed techniques, those the inventory does not
//! cover, and those likely in blind stages, each scored (so layers stay combinable with the
//! organisation's own) and commented, with a legend and links back to the incident.

use serde::{Deserialize, Serialize};

use super::model::*;

/// An ATT&CK Navigator layer, format 4.5 (shared/specs/navigator-layer-4.5.md), as Hindsight
/// writes it. Typed rather than a JSON value: a review builds one per incident, thousands of
/// times a second, and field names are spelled once, here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub name: String,
    pub versions: Versions,
    pub domain: String,
    pub description: String,
    /// 3: by score, descending.
    pub sorting: u8,
    pub layout: Layout,
    pub hide_disabled: bool,
    pub techniques: Vec<LayerTechnique>,
    pub legend_items: Vec<LegendItem>,
    pub metadata: Vec<NameValue>,
    pub links: Vec<Link>,
    /// Colours for scores (heat maps); incident layers colour each technique themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient: Option<Gradient>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gradient {
    pub colors: Vec<String>,
    pub min_value: f64,
    pub max_value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub layer: String,
    pub navigator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layout {
    pub layout: String,
    #[serde(rename = "showID")]
    pub show_id: bool,
    pub show_name: bool,
    pub expanded_subtechniques: String,
}

/// Every technique carries a score: the Navigator drops unannotated entries on re-export, and
/// scores keep our layers combinable with the organisation's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerTechnique {
    #[serde(rename = "techniqueID")]
    pub technique_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tactic: Option<String>,
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    pub comment: String,
    pub enabled: bool,
    pub metadata: Vec<NameValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegendItem {
    pub label: String,
    pub color: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}

impl Default for Versions {
    fn default() -> Self {
        Versions { layer: "4.5".into(), navigator: "5.1.0".into(), attack: None }
    }
}

impl Default for Layout {
    /// Side layout with IDs and names, sub-techniques expanded where annotated.
    fn default() -> Self {
        Layout { layout: "side".into(), show_id: true, show_name: true, expanded_subtechniques: "annotated".into() }
    }
}

fn nv(name: &str, value: impl Into<String>) -> NameValue {
    NameValue { name: name.to_owned(), value: value.into() }
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

/// "Observed in 2 alert(s): a1, a2.", written into one string.
fn observed_comment(t: &TechniqueFinding, uncovered: bool) -> String {
    use std::fmt::Write as _;
    let mut c = String::with_capacity(64);
    let _ = write!(c, "Observed in {} alert(s): ", t.alerts.len());
    push_joined(&mut c, &t.alerts);
    c.push('.');
    if uncovered {
        c += " Not covered by the detection inventory.";
    }
    if t.status != TechniqueStatus::Active {
        c += " Received as ";
        push_joined(&mut c, &t.received_ids);
        c.push('.');
    }
    c
}

fn push_joined(out: &mut String, items: &[String]) {
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(s);
    }
}

pub(crate) fn for_review(r: &Review) -> Layer {
    // Sized once: a layer entry is large, and growing the list by doubling copies it each time.
    let observed: usize = r.techniques.iter().filter(|t| t.name.is_some()).map(|t| t.tactics.len()).sum();
    let likely: usize = r.gaps.blind_stages.iter().map(|s| s.likely.len()).sum();
    let mut techniques = Vec::with_capacity(observed + likely);
    for t in r.techniques.iter().filter(|t| t.name.is_some()) {
        let uncovered = t.covered == Some(false);
        let mut comment = observed_comment(t, uncovered);
        for (k, tactic) in t.tactics.iter().enumerate() {
            techniques.push(LayerTechnique {
                technique_id: t.id.clone(),
                tactic: Some(tactic.clone()),
                score: if uncovered { 3.0 } else { 2.0 },
                color: Some(if uncovered { UNCOVERED } else { OBSERVED }.to_owned()),
                // The last tactic's entry takes the comment itself rather than a copy.
                comment: if k + 1 == t.tactics.len() { std::mem::take(&mut comment) } else { comment.clone() },
                enabled: true,
                metadata: vec![nv("status", status_name(t.status))],
            });
        }
    }
    for stage in &r.gaps.blind_stages {
        for l in &stage.likely {
            techniques.push(LayerTechnique {
                technique_id: l.id.clone(),
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
    techniques.sort_by(|a, b| a.technique_id.cmp(&b.technique_id).then_with(|| a.tactic.cmp(&b.tactic)));
    let i = &r.incident;
    let links = i
        .url
        .iter()
        .filter(|u| u.starts_with("https://"))
        .map(|u| Link { label: "Incident in Microsoft Defender".into(), url: u.clone() })
        .collect();
    Layer {
        name: format!("Incident {}: {}", i.id, i.title),
        versions: Versions {
            attack: r.basis.attack_version.as_deref().and_then(|v| v.split('.').next()).map(str::to_owned),
            ..Versions::default()
        },
        domain: r.basis.attack_domain.clone(),
        description: format!(
            "Post-incident review by Hindsight of incident {} (source {}, resolution {}). Severity {}, classification {}.",
            i.id, i.source, i.revision, i.severity, i.classification
        ),
        sorting: 3,
        layout: Layout::default(),
        hide_disabled: false,
        techniques,
        legend_items: vec![
            LegendItem { label: "Observed (alerted)".into(), color: OBSERVED.into() },
            LegendItem { label: "Observed, not covered by the detection inventory".into(), color: UNCOVERED.into() },
            LegendItem { label: "Likely in a blind stage".into(), color: LIKELY.into() },
        ],
        metadata: vec![
            nv("incident", i.id.clone()),
            nv("source", i.source.clone()),
            nv("revision", i.revision.to_string()),
            nv("severity", i.severity.clone()),
            nv("classification", i.classification.clone()),
        ],
        links,
        gradient: None,
    }
}

impl Layer {
    /// A placeholder while the rest of a review is assembled; never published.
    pub(crate) fn empty() -> Layer {
        Layer {
            name: String::new(),
            versions: Versions::default(),
            domain: String::new(),
            description: String::new(),
            sorting: 3,
            layout: Layout::default(),
            hide_disabled: false,
            techniques: vec![],
            legend_items: vec![],
            metadata: vec![],
            links: vec![],
            gradient: None,
        }
    }
}
