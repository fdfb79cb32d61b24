//! The compact form of an ATT&CK catalog: what Hindsight keeps of a STIX bundle.
//!
//! This is the form that is built into the binary, written by `catalog import` and read at
//! start-up. Objects refer to each other by ATT&CK ID (e.g. `T1059.001`, `G0016`), not by array
//! position, so the checked-in file stays readable and its diffs between ATT&CK releases say
//! something. The indexes that make look-ups fast are rebuilt from it at load time
//! (see [`super::catalog::Catalog`]).
//!
//! Descriptions are left out on purpose: they are most of a bundle's size and the review links
//! to attack.mitre.org instead.

use serde::{Deserialize, Serialize};

/// Bumped when a change to these structs would make an older Hindsight misread a newer file.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogData {
    pub format: u32,
    pub meta: Meta,
    /// The matrix's tactics in kill-chain order.
    pub tactics: Vec<Tactic>,
    pub techniques: Vec<Technique>,
    pub groups: Vec<Group>,
    pub campaigns: Vec<Campaign>,
    pub software: Vec<Software>,
    pub mitigations: Vec<Mitigation>,
    pub data_components: Vec<DataComponent>,
    /// v18+ detection model: strategy → analytics → log sources (data components).
    pub detection_strategies: Vec<DetectionStrategy>,
    /// Pre-v18 detection model: `detects` relationships from data components to techniques.
    pub detects: Vec<Detects>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// `enterprise-attack`, `mobile-attack`, `ics-attack`, ...
    pub domain: String,
    /// e.g. `18.1`; `None` when neither the bundle nor its file name says.
    pub attack_version: Option<String>,
    /// Name of the matrix the tactic order was taken from.
    pub matrix: String,
    /// STIX version of the bundle (`2.0`, `2.1`).
    pub stix_version: Option<String>,
    /// File name and SHA-256 of the bundle it was derived from.
    pub source_file: Option<String>,
    pub source_sha256: Option<String>,
    /// MITRE's copyright designation, which must travel with every copy of the data.
    pub notice: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tactic {
    pub id: String,
    pub shortname: String,
    pub name: String,
}

/// Shared by every kind of object: ATT&CK never deletes, it revokes or deprecates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    #[default]
    Active,
    Revoked,
    Deprecated,
}

impl Lifecycle {
    pub fn is_active(self) -> bool {
        self == Lifecycle::Active
    }
    fn is_active_ref(&self) -> bool {
        self.is_active()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Technique {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Lifecycle::is_active_ref")]
    pub lifecycle: Lifecycle,
    /// Tactic shortnames in kill-chain order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tactics: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// ATT&CK ID of the parent technique, for sub-techniques.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// For revoked techniques: the ID that replaces it (which may itself be revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Lifecycle::is_active_ref")]
    pub lifecycle: Lifecycle,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Techniques the group uses directly (its campaigns' techniques are added at load time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Lifecycle::is_active_ref")]
    pub lifecycle: Lifecycle,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// Groups the campaign is attributed to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SoftwareKind {
    Malware,
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Software {
    pub id: String,
    pub name: String,
    pub kind: SoftwareKind,
    #[serde(default, skip_serializing_if = "Lifecycle::is_active_ref")]
    pub lifecycle: Lifecycle,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mitigation {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Lifecycle::is_active_ref")]
    pub lifecycle: Lifecycle,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
}

/// A data component. Before v18 data components had no ATT&CK ID of their own, so `key` is the
/// ID where there is one (`DC0084`) and `Data source: Component` otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataComponent {
    pub key: String,
    /// ATT&CK ID (`DC0084`); data components had none before v18.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<String>,
    #[serde(default, skip_serializing_if = "Lifecycle::is_active_ref")]
    pub lifecycle: Lifecycle,
    /// v18 log sources listed on the component itself (e.g. `WinEventLog:Security` /
    /// `EventCode=4768`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_sources: Vec<LogSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSource {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Key of the data component this log source belongs to, on analytics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_component: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionStrategy {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Lifecycle::is_active_ref")]
    pub lifecycle: Lifecycle,
    pub techniques: Vec<String>,
    pub analytics: Vec<Analytic>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analytic {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_sources: Vec<LogSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detects {
    pub data_component: String,
    pub technique: String,
}
