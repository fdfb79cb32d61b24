//! The review as published: a JSON contract (`schemas/review.v2.json`; v1 beside it) that
//! webhook consumers and Power Automate flows parse. Field names are fixed: fields may be added,
//! never renamed. Version 2 only adds fields to version 1 (the story, the scope, the timeline,
//! the times); every v2 field has a default so that reviews stored as v1 still read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub schema_version: u32,
    /// What a reader must know before anything else: the incident is not resolved, resolved
    /// without a classification, alerts still active, only part of it reviewed.
    #[serde(default)]
    pub warnings: Vec<Warning>,
    pub incident: IncidentSummary,
    /// The incident told as a story: outcome, summary, impact, the way in, the response.
    #[serde(default)]
    pub story: Story,
    /// Every alert, by title, with which product raised it and when.
    #[serde(default)]
    pub alerts: Vec<AlertSummary>,
    /// The incident in time order.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// Timeline entries left out because their time is unknown (never placed at a guessed time).
    #[serde(default)]
    pub timeline_untimed: usize,
    /// Alerts raised and not acted on within the severity's threshold.
    #[serde(default)]
    pub unattended_alerts: Vec<UnattendedAlert>,
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
    /// The blind stages' hunts as run in the tenant after the review (a Graph source with
    /// `hunts = true`); absent until they ran, and in reviews of sources that do not hunt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retro_hunts: Option<RetroHunts>,
}

/// The hunts of the blind stages, run through advanced hunting once the review was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetroHunts {
    /// When the last of them finished (or was given up).
    pub finished_at: DateTime<Utc>,
    /// Queries that ran (whatever they returned).
    pub ran: usize,
    /// Queries that returned rows.
    pub with_hits: usize,
    /// Each hunt, in the order run.
    pub results: Vec<HuntResult>,
}

/// One hunt's outcome. A hunt that did not run says why; it is never "clean".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HuntResult {
    /// The hunt's ID (as in `gaps.blind_stages[].likely[].hunts[]`).
    pub id: String,
    pub title: String,
    /// The blind stage (tactic short name) and the likely technique it looks for.
    pub stage: String,
    pub technique: String,
    /// `hits` (rows came back), `no_rows` (it ran and found nothing in the window), `not_run`.
    pub status: String,
    /// Why it did not run: `retention` (data older than 30 days), `quota`, `timeout`,
    /// `rejected` (the service refused the query), `permission`, `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The service's own words, when it said more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The `Timespan` it ran over (start clamped to the 30 days kept); absent when not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timespan: Option<String>,
    /// Rows returned (the query's own `take` bounds them).
    pub rows: usize,
    /// The columns, in order.
    #[serde(default)]
    pub columns: Vec<String>,
    /// The first rows, each value cut to a few hundred characters.
    #[serde(default)]
    pub first_rows: Vec<serde_json::Map<String, serde_json::Value>>,
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
    /// Where the full review is published (`review.link`); null without one.
    #[serde(default)]
    pub review_url: Option<String>,
    pub tags: Vec<String>,
    pub resolving_comment: Option<String>,
    /// The incident's alerts, as received.
    pub alerts: usize,
    /// Present only when fewer than `alerts` were reviewed: the incident had more than
    /// `review.max_alerts`, and the review was made from its first alerts in the order
    /// received. Absent otherwise, so that the reviews of most incidents are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts_reviewed: Option<usize>,
    /// Every evidence entity of every alert, merged across alerts.
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// The products that raised the alerts, as Microsoft's portal names them.
    #[serde(default)]
    pub products: Vec<Product>,
    /// The incident's comments, oldest first.
    #[serde(default)]
    pub comments: Vec<CommentRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub first_activity: Option<DateTime<Utc>>,
    pub first_alert: Option<DateTime<Utc>>,
    /// First activity → first alert.
    pub time_to_detect_s: Option<i64>,
    /// Incident created → resolved.
    pub time_to_resolve_s: Option<i64>,
    /// First activity → full containment; `null` when its time is not recorded (then
    /// `dwell_time_at_most_s`).
    #[serde(default)]
    pub dwell_time_s: Option<i64>,
    /// First activity → the latest time full containment can have happened (e.g. the
    /// resolution, when only the resolving comment names it).
    #[serde(default)]
    pub dwell_time_at_most_s: Option<i64>,
    /// First alert → first recorded sign of a human (assigned, in progress, a comment).
    #[serde(default)]
    pub time_to_acknowledge_s: Option<i64>,
    /// First alert → first containment (partial or full).
    #[serde(default)]
    pub time_to_contain_s: Option<i64>,
    #[serde(default)]
    pub containment: Containment,
    /// Where each figure came from, or why it is `null`: keyed by the field's name
    /// (`time_to_acknowledge_s`: "observed: assigned, seen between … and …").
    #[serde(default)]
    pub basis: std::collections::BTreeMap<String, String>,
    /// How precisely observed transitions are timed: the longest gap between two polls that
    /// saw the incident; `null` when no transition was observed (an offline review).
    #[serde(default)]
    pub observation_precision_s: Option<i64>,
}

/// Containment has a scope: partial (some hosts or accounts) and full (the entry point and the
/// compromised accounts too). A partial isolation is never reported as containment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Containment {
    pub partial: Option<ContainmentPoint>,
    pub full: Option<ContainmentPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainmentPoint {
    /// When, if recorded.
    pub at: Option<DateTime<Utc>>,
    /// When `at` is not recorded: the latest it can have been (the resolution, the comment).
    pub at_latest: Option<DateTime<Utc>>,
    /// The hosts and accounts contained.
    pub entities: Vec<String>,
    /// observed / comments / resolving comment / evidence status / alert timestamps.
    pub basis: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Basis {
    pub attack_domain: String,
    pub attack_version: Option<String>,
    /// `None` when no detection inventory is configured: coverage was not assessed.
    pub inventory: Option<InventoryBasis>,
    pub controls_attack_version: Option<String>,
    /// The Microsoft 365 licence tier the controls were filtered for (`review.licence`: "E3"
    /// lists E3 controls only, "E5" E3 and E5 ones); `None`: not configured, every control
    /// listed whatever its tier.
    #[serde(default)]
    pub licence: Option<String>,
    /// The review had the organisation's recorded history (the daemon's store). `false`: an
    /// offline review, which cannot know what is new to the team, so `knowledge_gaps` has no
    /// `first_seen` entry. Reviews stored before this field were all made by the daemon.
    #[serde(default = "recorded_before_the_field")]
    pub history_recorded: bool,
}

fn recorded_before_the_field() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryBasis {
    pub sources: usize,
    pub techniques: usize,
    /// The source's rules as read from the tenant, layered over the inventory files; `None`
    /// when the tenant's rules are not read (`detection_rules` off) or not read yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed: Option<DeployedRules>,
}

/// The deployed rules a review counted: where and when they were read, how many run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployedRules {
    /// `defender-custom-detections` (Graph `security/rules/detectionRules`).
    pub kind: String,
    pub read_at: DateTime<Utc>,
    /// Rules read, and those of them switched off (disabled, auto-disabled, unknown status).
    pub rules: usize,
    pub switched_off: usize,
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
    /// Graph `serviceSource`s of the alerts naming it.
    #[serde(default)]
    pub service_sources: Vec<String>,
    /// Graph `detectionSource`s of the alerts naming it.
    #[serde(default)]
    pub detection_sources: Vec<String>,
    /// The detection sources as the portal names them.
    #[serde(default)]
    pub products: Vec<String>,
    /// The platforms ATT&CK lists for it (`x_mitre_platforms`); empty for an unknown technique.
    #[serde(default)]
    pub platforms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageState {
    Observed,
    /// No alert, but the observed activity implies it (REVIEW-V2 §3); `reason` says how.
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
    /// For a blind stage, what implies it; for a stage a reader might expect blind, why it is
    /// not ("the Remote Desktop session was the control channel"); else null.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gaps {
    /// Observed techniques nothing covers: no detection alerted on them (a manual alert only)
    /// and no rule of the inventory names them (empty without an inventory).
    pub uncovered: Vec<UncoveredTechnique>,
    /// What covered each observed technique.
    #[serde(default)]
    pub coverage: Vec<TechniqueCoverage>,
    pub blind_stages: Vec<BlindStage>,
    pub late_detections: Vec<LateDetection>,
    /// The incident's platforms as ATT&CK names them (Windows, Identity Provider, Office
    /// Suite, SaaS, IaaS, …), from its alerts' products and its evidence: the techniques
    /// suggested for blind stages run on one of them. Empty when nothing in the incident says.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// The window the incident-scoped hunts look at; null without any recorded activity.
    #[serde(default)]
    pub hunt_window: Option<HuntWindow>,
    /// Estate-wide sweeps for the incident's indicators (hashes, IPs, URLs, file names) over
    /// the last 30 days: did it happen elsewhere.
    #[serde(default)]
    pub estate_hunts: Vec<Hunt>,
}

/// What covered an observed technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoverageState {
    /// A Microsoft built-in detection alerted on it.
    Vendor,
    /// The organisation's own rules: its detection inventory, or a custom detection or
    /// Sentinel analytics rule that alerted.
    Inventory,
    Both,
    /// Nothing: no detection alerted (only a manual alert) and no rule covers it.
    None,
}

impl CoverageState {
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageState::Vendor => "vendor",
            CoverageState::Inventory => "inventory",
            CoverageState::Both => "both",
            CoverageState::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TechniqueCoverage {
    pub technique: String,
    pub name: Option<String>,
    pub state: CoverageState,
    /// The alerts that detected it.
    pub alerts: Vec<CoverageAlert>,
    /// Rules of the detection inventory that cover it.
    pub rules: Vec<String>,
    /// For a sub-technique no rule covers: rules on its parent technique.
    pub parent_rules: Vec<String>,
    /// Rules of the inventory that name it but do not run ("… (disabled)", "… (auto-disabled
    /// by Defender: …)"): not coverage, and the cheapest fix.
    #[serde(default)]
    pub disabled_rules: Vec<String>,
    /// "T1071 rule exists; not specific to T1071.001", or "… would cover T1003.006 but does
    /// not run".
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageAlert {
    pub id: String,
    pub title: String,
    /// Graph's `detectionSource`.
    pub detection_source: Option<String>,
    /// The detection source as the portal names it.
    pub product: String,
    /// One of the organisation's own rules (custom detection, Sentinel analytics rule), which
    /// it can tune and re-tag; otherwise a Microsoft built-in detection.
    pub own_rule: bool,
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
    /// What in the observed activity implies the stage.
    #[serde(default)]
    pub reason: String,
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
    /// Why it is listed when not only by likelihood: "software S0154 Cobalt Strike is known to
    /// use it" (software the incident names), or what a phishing page that came before the
    /// sign-in takes (Credential Access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub covered: Option<bool>,
    pub data_components: Vec<DataComponentRef>,
    /// Advanced hunting queries for it, scoped to this incident (and estate-wide where the
    /// library has them), filled and ready to run.
    #[serde(default)]
    pub hunts: Vec<Hunt>,
    /// Why it has no hunt, or whose hunts it borrows ("no hunt for T1059.005 in the library").
    #[serde(default)]
    pub hunt_note: Option<String>,
}

/// One hunting query, filled with the incident's entities and window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hunt {
    /// The template's ID in the hunt library (or the Sentinel YAML's `id`).
    pub id: String,
    pub title: String,
    /// The advanced hunting table it reads.
    pub table: String,
    /// `incident` (this incident's entities and window) or `estate` (every device and account,
    /// the last 30 days).
    pub scope: String,
    pub kql: String,
    /// "library", or the file a site's own hunt came from.
    pub origin: String,
    /// After this, advanced hunting (30 days) no longer holds the start of the incident's window.
    pub run_before: Option<DateTime<Utc>>,
}

/// The time scoped hunts look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HuntWindow {
    /// First activity − 1 day.
    pub start: DateTime<Utc>,
    /// Containment, else resolution, else last activity; + 1 hour.
    pub end: DateTime<Utc>,
    /// What `end` is: "full containment", "resolution", "last activity".
    pub end_basis: String,
    /// After this, advanced hunting no longer holds `start`.
    pub run_before: DateTime<Utc>,
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
    /// Strength of the technique evidence, 0–1: the incident's techniques the candidate is
    /// known to use, each weighted by its rarity among groups and campaigns (half for one known
    /// only through its software), slightly discounted for candidates known for very many
    /// techniques (below 0.2 for one common technique, about 0.8 for ten ordinary ones). Not the order: named and software evidence
    /// rank before it.
    pub score: f64,
    pub shared_techniques: Vec<String>,
    /// The incident's techniques the candidate is not known for itself but its known software
    /// is (ATT&CK's software → technique relationships), other than through software the
    /// incident names (weighed as software): each counts half in `score`.
    #[serde(default)]
    pub techniques_via_software: Vec<String>,
    /// An alert's `actorDisplayName` matches the group's name or one of its aliases.
    pub actor_match: Option<String>,
    /// The kinds of evidence behind it, strongest first: `named` (the actor name), `software`
    /// (software it uses was named by an alert or the evidence), `techniques` (similarity).
    #[serde(default)]
    pub basis: Vec<String>,
    /// The ATT&CK software it uses that the incident names, with the text that named it.
    #[serde(default)]
    pub software: Vec<SoftwareEvidence>,
    /// How far the evidence goes, the case against weighed in (see docs/review-v2.md).
    #[serde(default)]
    pub confidence: Confidence,
    /// The case against it, one sentence each: evidence that is one thing seen twice, software
    /// many others use, other groups sharing as many techniques, hallmarks absent.
    #[serde(default)]
    pub against: Vec<String>,
    /// Other candidates of the same kind that share at least as many of the incident's
    /// techniques.
    #[serde(default)]
    pub rivals: u32,
    /// Its most distinctive techniques (the rarest among groups and campaigns, up to five) that
    /// the incident does not show. Empty for a candidate known for fewer than eight techniques.
    #[serde(default)]
    pub hallmarks_missing: Vec<String>,
    /// A campaign's groups (ATT&CK `attributed-to`), by ID; empty for a group.
    #[serde(default)]
    pub attributed_to: Vec<String>,
}

/// How far an attribution candidate's evidence goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    #[default]
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftwareEvidence {
    /// ATT&CK software ID (S0154).
    pub id: String,
    pub name: String,
    /// `malware` or `tool`.
    pub kind: String,
    /// The threat name, file or process name as the alert or evidence had it.
    pub matched: String,
    /// The alerts that named it (their IDs), in the order received.
    #[serde(default)]
    pub alerts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KnowledgeGap {
    /// The organisation meets this technique for the first time (no earlier review has it).
    FirstSeen { technique: String, name: String },
    /// An alert with no technique Hindsight could map.
    UnmappedAlert { alert: String, title: String, category: Option<String> },
    /// A technique ID the catalog does not know.
    UnknownTechnique { received: String, alerts: Vec<String> },
    /// An alert still carries a revoked or deprecated ID: its detection content is out of date.
    OutdatedId {
        received: String,
        /// The revoked ID's replacement; `None` for a deprecated ID (no replacement). Reviews
        /// stored before this rule name a deprecated ID as its own current ID.
        current: Option<String>,
        alerts: Vec<String>,
    },
    /// No longer produced (boilerplate, the same for every incident); read from stored reviews.
    NoMitigation { technique: String, name: String },
    /// No longer produced (boilerplate, the same for every incident); read from stored reviews.
    NoDetectionData { technique: String, name: String },
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
    /// `now` (before evidence or the chance is gone: resets, the notification decision, the
    /// scope), `harden` (the fixes with the most leverage, from the incident's facts),
    /// `detect` (detection and response), `process`, `learn`, `mitigate` (ATT&CK's generic
    /// list) — the order they are listed in.
    #[serde(default)]
    pub category: String,
    /// The evidence that it is done: a hunt that returns nothing, a list of resets, a decision
    /// recorded — not an intention.
    #[serde(default)]
    pub done_when: String,
    /// Who owns it (`review.follow_ups.owners`, by area); null when not configured.
    #[serde(default)]
    pub owner: Option<String>,
    /// `identity`, `endpoint`, `email`, `cloud`, `detection`, `soc`, `legal`: what the owner
    /// map is keyed by.
    #[serde(default)]
    pub area: String,
    /// Due date: the incident's resolution (else creation) + `review.follow_ups.due_days` for
    /// its priority; null when the incident has neither time.
    #[serde(default)]
    pub due: Option<chrono::NaiveDate>,
    /// `open` when raised; trackers own what follows.
    #[serde(default = "open_status")]
    pub status: String,
    /// How many earlier incidents of the same tenant raised the same follow-up (same ID).
    #[serde(default)]
    pub raised_before: u32,
}

fn open_status() -> String {
    "open".into()
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
    /// Accounts, hosts or services the follow-up names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
    /// IDs of the review's hunts (or the library's) that show it done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hunts: Vec<String>,
}

/// Something a reader must know first, before the review's findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// `not_resolved`, `unclassified`, `alerts_active`, `partial_review`, `input`, …
    pub kind: String,
    pub message: String,
}

/// The incident as a story: what a CISO reads alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Story {
    /// Five short deterministic lines: what happened; impact; data exposed and notification;
    /// the way in; detection and response.
    pub summary: Vec<String>,
    pub outcome: Outcome,
    pub impact: Impact,
    /// Credentials known exposed (credential access observed): where and what.
    pub exposed_credentials: Vec<ExposedCredential>,
    pub what_worked: Vec<Note>,
    /// Gaps in the data turned into questions, each naming its evidence.
    pub open_questions: Vec<OpenQuestion>,
    /// What the analysts recorded as the cause, in their words; `null` when nothing was.
    pub root_cause: Option<RootCause>,
    pub initial_access: InitialAccess,
    /// What was done and by whom, as far as the data shows.
    pub response: Vec<ResponseAction>,
    /// The tenant's earlier incidents (180 days) that share entities, techniques or titles.
    pub similar_incidents: Vec<SimilarIncident>,
    /// The same way in or root cause seen twice or more within six months.
    pub recurring: Option<Recurring>,
}

/// How the incident ended: the headline of every format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: String,
    pub classification: String,
    pub determination: String,
    /// Who resolved it: the incident's assignee or the author of the last comment, when known.
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolving_comment: Option<String>,
    /// One line: "true positive — multi-staged attack, resolved 2026-10-22 22:05 UTC by …".
    pub headline: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    /// Hosts encrypted, wiped or otherwise impacted (Impact-tactic alerts' devices).
    pub hosts: Vec<String>,
    /// What the impact was, in words ("encryption", "shadow copies deleted", …).
    pub effects: Vec<String>,
    /// Impact start → restore recorded.
    pub outage: Option<Window>,
    pub data_exposed: DataExposure,
    /// Exfiltration alert → legal or notification recorded, in seconds.
    pub exfiltration_to_legal_s: Option<i64>,
    /// Ransom or extortion contact, when a comment records it.
    pub extortion: Option<String>,
    /// The facts above that are not recorded, by name ("outage", "data volume", …).
    pub not_recorded: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub duration_s: Option<i64>,
    pub basis: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataExposure {
    /// `confirmed` (an analyst says so), `alerted` (an exfiltration alert, not confirmed),
    /// `none_observed`.
    pub state: String,
    /// What left, as far as recorded (paths, URLs, mailboxes).
    pub what: Vec<String>,
    pub alerts: Vec<String>,
    pub volume: Option<String>,
    pub basis: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExposedCredential {
    /// Where: the host or the identity provider.
    pub host: Option<String>,
    /// How: "LSASS memory dump", "NTDS.dit copy", "token theft", …
    pub how: String,
    pub technique: String,
    /// The dump file or artefact, when the evidence names it.
    pub artefact: Option<String>,
    /// Accounts known to have been exposed (evidence users on the same alerts).
    pub accounts: Vec<String>,
    pub at: Option<DateTime<Utc>>,
    pub alerts: Vec<String>,
}

/// A fact with the evidence for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub text: String,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenQuestion {
    /// Which rule raised it (`activity_before_entry`, `lateral_account_unknown`, …).
    pub rule: String,
    pub question: String,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCause {
    /// The analysts' words, quoted.
    pub text: String,
    pub author: Option<String>,
    pub at: Option<DateTime<Utc>>,
    /// `resolving_comment`, `comment` or `classification`.
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InitialAccess {
    /// An alert maps to Initial Access.
    pub detected: bool,
    pub techniques: Vec<String>,
    pub first_activity: Option<DateTime<Utc>>,
    /// What points to the way in: the first alert's entities, the Initial Access alerts.
    pub evidence: Vec<String>,
    pub alerts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseAction {
    /// When, if recorded.
    pub at: Option<DateTime<Utc>>,
    /// When `at` is not recorded: the latest it can have been.
    pub at_latest: Option<DateTime<Utc>>,
    pub action: String,
    /// An analyst, "automatic", or "not recorded".
    pub by: String,
    /// comment / resolving comment / evidence status / alert / observed.
    pub basis: String,
    /// `partial` or `full` containment, `remediation`, `recovery`, `assignment`, `other`.
    pub kind: String,
    pub entities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarIncident {
    pub id: String,
    pub title: String,
    pub created: Option<DateTime<Utc>>,
    pub shared_entities: Vec<String>,
    pub shared_techniques: Vec<String>,
    pub shared_titles: Vec<String>,
    /// The same Initial Access technique or the same recorded root cause.
    pub same_way_in: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recurring {
    /// What returned: the Initial Access techniques or the root cause.
    pub what: String,
    /// The earlier incidents it returned from.
    pub incidents: Vec<String>,
    pub note: String,
}

/// One entity of the incident's evidence, merged across alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// device, user, mailbox, ip, url, file, process, cloud_app, oauth_app, registry_key,
    /// registry_value, analyzed_message, …; an unknown type is kept by its `@odata.type`.
    pub kind: String,
    pub name: String,
    /// Stable identifiers (mdeDeviceId, userPrincipalName, azureAdUserId, sha256, …).
    pub ids: std::collections::BTreeMap<String, String>,
    pub verdict: Option<String>,
    pub remediation_status: Option<String>,
    pub roles: Vec<String>,
    pub alerts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Graph's `serviceSource`.
    pub service_source: String,
    /// As Microsoft's portal names it.
    pub name: String,
    pub alerts: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentRecord {
    pub author: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSummary {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub category: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub first_activity: Option<DateTime<Utc>>,
    pub last_activity: Option<DateTime<Utc>>,
    pub resolved: Option<DateTime<Utc>>,
    pub service_source: Option<String>,
    pub detection_source: Option<String>,
    /// The detection source as Microsoft's portal names it ("Microsoft Defender for Endpoint",
    /// "Custom detection", "Antivirus", …).
    pub product: String,
    /// Canonical technique IDs.
    pub techniques: Vec<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// first_activity, alert, incident_created, transition, comment, response, resolution.
    pub kind: String,
    pub text: String,
    pub alert: Option<String>,
    pub entity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnattendedAlert {
    pub alert: String,
    pub title: String,
    pub severity: String,
    pub created: DateTime<Utc>,
    /// The first recorded action after it was raised; `null` when none before resolution.
    pub acted_on: Option<DateTime<Utc>>,
    /// Raised → acted on (or → resolved, when never acted on).
    pub delay_s: i64,
}
