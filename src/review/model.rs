//! The review as published: a JSON contract (`schemas/review.v1.json`) that webhook consumers
//! and Power Automate flows parse. Field names are fixed: fields may be added, never renamed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub schema_version: u32,
    pub incident: IncidentSummary,
    pub metrics: Metrics,
    /// The catalog and inventory the review was made against.
    pub basis: Basis,
    pub techniques: Vec<TechniqueFinding>,
    pub tactics: Vec<TacticState>,
    pub gaps: Gaps,
    pub mitigations: Vec<MitigationFinding>,
    pub controls: Vec<ControlFinding>,
    /// Groups and campaigns ranked by similarity: a hypothesis, never a verdict.
    pub attribution: Vec<Candidate>,
    pub attribution_note: String,
    pub knowledge_gaps: Vec<KnowledgeGap>,
    pub follow_ups: Vec<FollowUp>,
    /// ATT&CK Navigator layer (format 4.5) of the incident.
    pub layer: super::navigator::Layer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSummary {
    pub id: String,
    pub source: String,
    /// 1 for the first resolution, 2 after a re-open and a second resolution, ...
    pub revision: u32,
    pub title: String,
    pub severity: String,
    pub classification: String,
    pub determination: String,
    pub status: String,
    pub owner: Option<String>,
    pub tenant_id: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub resolved: Option<DateTime<Utc>>,
    pub url: Option<String>,
    pub tags: Vec<String>,
    pub resolving_comment: Option<String>,
    /// The incident's alerts, as received.
    pub alerts: usize,
    /// Present only when fewer than `alerts` were reviewed: the incident had more than
    /// `review.max_alerts`, and the review was made from its first alerts in the order
    /// received. Absent otherwise, so that the reviews of most incidents are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts_reviewed: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub first_activity: Option<DateTime<Utc>>,
    pub first_alert: Option<DateTime<Utc>>,
    /// First activity → first alert.
    pub time_to_detect_s: Option<i64>,
    /// Incident created → resolved.
    pub time_to_resolve_s: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Basis {
    pub attack_domain: String,
    pub attack_version: Option<String>,
    /// `None` when no detection inventory is configured: coverage was not assessed.
    pub inventory: Option<InventoryBasis>,
    pub controls_attack_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryBasis {
    pub sources: usize,
    pub techniques: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TechniqueStatus {
    Active,
    Revoked,
    Deprecated,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TechniqueFinding {
    /// Current ATT&CK ID; for unknown techniques, the ID as received (normalized if possible).
    pub id: String,
    pub name: Option<String>,
    pub status: TechniqueStatus,
    /// The IDs exactly as the alerts carried them.
    pub received_ids: Vec<String>,
    /// Tactic shortnames in kill-chain order.
    pub tactics: Vec<String>,
    pub alerts: Vec<String>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// Whether the detection inventory covers it; `None` without an inventory.
    pub covered: Option<bool>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageState {
    Observed,
    /// No alert, but between the first and the last observed stage.
    Blind,
    Outside,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TacticState {
    pub shortname: String,
    pub name: String,
    pub state: StageState,
    pub techniques: Vec<String>,
    pub alerts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gaps {
    /// Observed techniques no rule of the inventory covers (empty without an inventory).
    pub uncovered: Vec<UncoveredTechnique>,
    pub blind_stages: Vec<BlindStage>,
    pub late_detections: Vec<LateDetection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataComponentRef {
    pub id: Option<String>,
    pub name: String,
    pub data_source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UncoveredTechnique {
    pub id: String,
    pub name: String,
    pub alerts: Vec<String>,
    pub data_components: Vec<DataComponentRef>,
    pub detection_strategies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlindStage {
    pub tactic: String,
    pub name: String,
    /// Techniques most likely used there, best first.
    pub likely: Vec<LikelyTechnique>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LikelyTechnique {
    pub id: String,
    pub name: String,
    /// Share of the similarity-weighted groups and campaigns that use it (0–1).
    pub likelihood: f64,
    /// The best-matching groups or campaigns that use it.
    pub used_by: Vec<String>,
    pub covered: Option<bool>,
    pub data_components: Vec<DataComponentRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LateDetection {
    pub alert: String,
    pub title: String,
    pub first_activity: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub delay_s: i64,
    pub techniques: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MitigationFinding {
    pub id: String,
    pub name: String,
    pub techniques: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlFinding {
    pub capability_id: String,
    pub description: String,
    pub group: String,
    pub licence: Option<String>,
    /// Per technique: what the capability does against it.
    pub techniques: Vec<ControlUse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlUse {
    pub technique: String,
    pub category: String,
    pub score: String,
    /// Observed in the incident, or only likely in a blind stage.
    pub observed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CandidateKind {
    Group,
    Campaign,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub kind: CandidateKind,
    /// Weighted similarity of technique sets, 0–1.
    pub score: f64,
    pub shared_techniques: Vec<String>,
    /// An alert's `actorDisplayName` matches the group's name or one of its aliases.
    pub actor_match: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KnowledgeGap {
    /// The organisation meets this technique for the first time (no earlier review has it).
    FirstSeen {
        technique: String,
        name: String,
    },
    /// An alert with no technique Hindsight could map.
    UnmappedAlert {
        alert: String,
        title: String,
        category: Option<String>,
    },
    /// A technique ID the catalog does not know.
    UnknownTechnique {
        received: String,
        alerts: Vec<String>,
    },
    /// An alert still carries a revoked or deprecated ID: its detection content is out of date.
    OutdatedId {
        received: String,
        current: Option<String>,
        alerts: Vec<String>,
    },
    NoMitigation {
        technique: String,
        name: String,
    },
    NoDetectionData {
        technique: String,
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    Medium,
    Low,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    /// Stable across revisions of the same finding, so a tracker can de-duplicate.
    pub id: String,
    pub kind: String,
    pub priority: Priority,
    pub title: String,
    pub detail: String,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tactics: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_components: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitigations: Vec<String>,
}
