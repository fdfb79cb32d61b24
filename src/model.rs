//! Incidents and alerts in Hindsight's normalized form, and the lenient reading of Microsoft
//! Graph's JSON into it.
//!
//! Real Graph payloads are untidy: enums in camelCase and PascalCase, two spellings of some
//! determinations, `tags` for `customTags`, members the service added after we were written.
//! The rule here is that one odd field never costs the incident: enums keep unknown values as
//! they came, a field of the wrong type is left empty and noted in `warnings`, and only a missing
//! `id` or a missing update time (without which an incident cannot be tracked) refuses it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// How much of one incident is kept. A file or page is at most 16 MiB, but 16 MB of small
/// alerts is 150,000 of them, and every alert kept costs several hundred bytes in memory, again
/// in the store (the incident and its resolution) and again in the review: the first alerts are
/// kept, in the order received, and the rest only counted. The raw snapshot keeps them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Alerts kept per incident (`review.max_alerts`).
    pub max_alerts: usize,
    /// Evidence items kept per alert (`review.max_evidence`).
    pub max_evidence: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits { max_alerts: 5_000, max_evidence: 50 };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Declares a Graph enum: known members with their wire value (and accepted aliases), plus
/// `Other(String)` for anything the service adds later. Parsing ignores case.
macro_rules! graph_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $wire:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)+
            /// A value this version of Hindsight does not know, kept as received.
            Other(String),
        }

        impl $name {
            pub fn parse(s: &str) -> Self {
                $(
                    if s.eq_ignore_ascii_case($wire) $(|| s.eq_ignore_ascii_case($alias))* {
                        return $name::$variant;
                    }
                )+
                $name::Other(s.to_owned())
            }
            /// The Graph wire value (camelCase).
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

graph_enum!(
    /// Incident status.
    IncidentStatus { Active => "active", Resolved => "resolved", InProgress => "inProgress", Redirected => "redirected",
        AwaitingAction => "awaitingAction", UnknownFutureValue => "unknownFutureValue" }
);

graph_enum!(
    /// Severity of an incident or alert, in increasing order of the known members.
    Severity { Unknown => "unknown", Informational => "informational", Low => "low", Medium => "medium", High => "high",
        UnknownFutureValue => "unknownFutureValue" }
);

graph_enum!(
    Classification { Unknown => "unknown", FalsePositive => "falsePositive", TruePositive => "truePositive",
        InformationalExpectedActivity => "informationalExpectedActivity", UnknownFutureValue => "unknownFutureValue" }
);

graph_enum!(
    /// The enum table's wire values; the property tables' spellings are accepted as aliases.
    Determination { Unknown => "unknown", Apt => "apt", Malware => "malware", SecurityPersonnel => "securityPersonnel",
        SecurityTesting => "securityTesting", UnwantedSoftware => "unwantedSoftware", Other_ => "other",
        MultiStagedAttack => "multiStagedAttack", CompromisedAccount => "compromisedAccount" | "compromisedUser",
        Phishing => "phishing", MaliciousUserActivity => "maliciousUserActivity", NotMalicious => "notMalicious" | "clean",
        NotEnoughDataToValidate => "notEnoughDataToValidate" | "insufficientData",
        ConfirmedActivity => "confirmedActivity" | "confirmedUserActivity",
        LineOfBusinessApplication => "lineOfBusinessApplication", UnknownFutureValue => "unknownFutureValue" }
);

graph_enum!(
    AlertStatus { Unknown => "unknown", New => "new", InProgress => "inProgress", Resolved => "resolved",
        UnknownFutureValue => "unknownFutureValue" }
);

impl Severity {
    /// Rank for "at least this severe" comparisons; unknown values rank lowest.
    pub fn rank(&self) -> u8 {
        match self {
            Severity::High => 4,
            Severity::Medium => 3,
            Severity::Low => 2,
            Severity::Informational => 1,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub tenant_id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub status: IncidentStatus,
    pub severity: Severity,
    pub classification: Classification,
    pub determination: Determination,
    pub assigned_to: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub last_update: DateTime<Utc>,
    pub url: Option<String>,
    /// Set when the incident was merged into another one.
    pub redirect_incident_id: Option<String>,
    pub custom_tags: Vec<String>,
    pub system_tags: Vec<String>,
    pub resolving_comment: Option<String>,
    pub priority_score: Option<u32>,
    pub comments: Vec<Comment>,
    /// `lastModifiedBy`: who changed the incident last (the resolver, for a resolved one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_by: Option<String>,
    pub alerts: Vec<Alert>,
    /// Alerts past [`Limits::max_alerts`]: counted, not kept (the raw snapshot has them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub alerts_omitted: usize,
    /// Evidence items past [`Limits::max_evidence`] in the alerts kept: counted, not kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub evidence_omitted: usize,
    /// Fields that could not be read, with why; the rest of the incident is still used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub comment: String,
    pub author: Option<String>,
    pub created: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub status: AlertStatus,
    pub severity: Severity,
    /// Defender's category: tactic-like (`CredentialAccess`) or a product category (`Malware`).
    pub category: Option<String>,
    /// ATT&CK technique IDs exactly as received (possibly revoked, odd case, stray spaces).
    pub mitre_techniques: Vec<String>,
    pub service_source: Option<String>,
    pub detection_source: Option<String>,
    pub product_name: Option<String>,
    /// Microsoft's actor name for the activity (e.g. "Midnight Blizzard").
    pub actor: Option<String>,
    pub threat_display_name: Option<String>,
    pub threat_family_name: Option<String>,
    pub url: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub first_activity: Option<DateTime<Utc>>,
    pub last_activity: Option<DateTime<Utc>>,
    pub resolved: Option<DateTime<Utc>>,
    pub last_update: Option<DateTime<Utc>>,
    /// The alert's own comments (Graph `alert.comments`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<Comment>,
    /// `assignedTo` of the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<String>,
    pub evidence: Vec<Evidence>,
}

/// One evidence item, reduced to what a review shows; the full object stays in the raw snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The `@odata.type` without its namespace: `deviceEvidence`, `processEvidence`, ...
    pub kind: String,
    pub verdict: Option<String>,
    pub roles: Vec<String>,
    /// The identifying value of the entity (host name, UPN, file name, URL, IP address, ...).
    pub entity: Option<String>,
    /// `remediationStatus`: none, remediated, prevented, blocked, notFound, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation_status: Option<String>,
    /// `detailedRoles` (PrimaryDevice, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detailed_roles: Vec<String>,
    /// Identifiers and descriptive properties of the entity, flattened (`userAccount.userPrincipalName`
    /// becomes `userPrincipalName`): what merging entities across alerts and the story need.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub props: BTreeMap<String, String>,
    /// The evidence's own `createdDateTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("incident without an \"id\"")]
    MissingId,
    #[error("incident {id}: neither \"lastUpdateDateTime\" nor \"createdDateTime\" is a valid date-time")]
    MissingUpdateTime { id: String },
    #[error("not valid JSON: {0}")]
    Json(String),
}

/// An incident's alerts, either from a parsed tree or as the text of each.
enum AlertsIn<'a> {
    Tree(Vec<&'a serde_json::Map<String, Value>>),
    Text(Vec<&'a RawValue>),
}

/// Reads fields out of a JSON object, noting what had the wrong shape.
struct Reader<'a, 'w> {
    obj: &'a serde_json::Map<String, Value>,
    warnings: &'w mut Vec<String>,
    prefix: String,
}

impl<'a> Reader<'a, '_> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }
    fn warn(&mut self, key: &str, expected: &str) {
        self.warnings.push(format!("{}{key}: expected {expected}; ignored", self.prefix));
    }
    fn string(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => {
                self.warn(key, "a string");
                None
            }
        }
    }
    fn strings(&mut self, key: &str) -> Vec<String> {
        match self.get(key) {
            None => vec![],
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            Some(_) => {
                self.warn(key, "an array of strings");
                vec![]
            }
        }
    }
    fn time(&mut self, key: &str) -> Option<DateTime<Utc>> {
        let s = self.string(key)?;
        match DateTime::parse_from_rfc3339(&s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                self.warn(key, "an ISO-8601 date-time");
                None
            }
        }
    }
    fn array(&mut self, key: &str) -> Vec<&'a serde_json::Map<String, Value>> {
        match self.get(key) {
            None => vec![],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_object).collect(),
            Some(_) => {
                self.warn(key, "an array");
                vec![]
            }
        }
    }
}

impl Incident {
    /// Reads one incident as Graph returns it (with `alerts` when expanded), within the default
    /// [`Limits`].
    pub fn from_graph(v: &Value) -> Result<Incident, ParseError> {
        Incident::from_graph_limited(v, &Limits::DEFAULT)
    }

    /// [`Incident::from_graph`] within `limits`.
    pub fn from_graph_limited(v: &Value, limits: &Limits) -> Result<Incident, ParseError> {
        let obj = v.as_object().ok_or(ParseError::NotAnObject)?;
        Incident::read(obj, None, limits)
    }

    /// The same incident as [`Incident::from_graph_limited`] makes of the parsed `json`, read
    /// from its text without a tree of the whole incident: a JSON tree costs about ten times
    /// the text, and 16 MB of alerts became a gigabyte. The incident's own fields are parsed
    /// as before; its alerts are cut out of the text and parsed one at a time, only as many as
    /// are kept.
    pub fn from_graph_str(json: &str, limits: &Limits) -> Result<Incident, ParseError> {
        Incident::from_text(json, Some(limits))
    }

    /// The incident's own fields without its alerts (`alerts` empty, none counted as omitted):
    /// what ingest keeps beside the raw text, from which the review reads the whole incident
    /// ([`Incident::from_graph_str`]). An incident's alerts are read leniently (a bad one is a
    /// warning), so this fails on a text exactly when the whole reading would.
    pub fn header_from_graph_str(json: &str) -> Result<Incident, ParseError> {
        Incident::from_text(json, None)
    }

    /// [`Incident::from_graph_str`] within `limits`, or without alerts when `None`.
    fn from_text(json: &str, limits: Option<&Limits>) -> Result<Incident, ParseError> {
        if !json.trim_start().starts_with('{') {
            // Valid JSON or not, it is no incident; the same answer as for a parsed value.
            return match serde_json::from_str::<serde::de::IgnoredAny>(json) {
                Ok(_) => Err(ParseError::NotAnObject),
                Err(e) => Err(ParseError::Json(e.to_string())),
            };
        }
        let json_err = |e: serde_json::Error| ParseError::Json(e.to_string());
        // The last of duplicate keys wins, as in a parsed `Value`.
        let fields: BTreeMap<String, &RawValue> = serde_json::from_str(json).map_err(json_err)?;
        let mut obj = serde_json::Map::new();
        let mut alerts = None;
        for (k, v) in fields {
            if k == "alerts" && limits.is_none() {
                continue;
            }
            if k == "alerts" && v.get().starts_with('[') {
                alerts = Some(serde_json::from_str::<Vec<&RawValue>>(v.get()).map_err(json_err)?);
            } else {
                // Not an array (or not alerts): read leniently below, with a warning if need be.
                obj.insert(k, serde_json::from_str(v.get()).map_err(json_err)?);
            }
        }
        Incident::read(&obj, alerts, limits.unwrap_or(&Limits { max_alerts: 0, max_evidence: 0 }))
    }

    /// The reading itself: `obj` holds the incident's fields, with `alerts` unless they come as
    /// `text`.
    fn read(
        obj: &serde_json::Map<String, Value>,
        text: Option<Vec<&RawValue>>,
        limits: &Limits,
    ) -> Result<Incident, ParseError> {
        let mut warnings = Vec::new();
        let mut r = Reader { obj, warnings: &mut warnings, prefix: String::new() };
        let id = r.string("id").filter(|s| !s.trim().is_empty()).ok_or(ParseError::MissingId)?;
        let created = r.time("createdDateTime");
        let last_update =
            r.time("lastUpdateDateTime").or(created).ok_or_else(|| ParseError::MissingUpdateTime { id: id.clone() })?;
        let comments = read_comments(r.array("comments"));
        let alerts_in = match text {
            Some(t) => AlertsIn::Text(t),
            None => AlertsIn::Tree(r.array("alerts")),
        };
        let mut incident = Incident {
            tenant_id: r.string("tenantId"),
            title: r.string("displayName").unwrap_or_else(|| format!("Incident {id}")),
            description: r.string("description"),
            status: r.string("status").map_or(IncidentStatus::Other(String::new()), |s| IncidentStatus::parse(&s)),
            severity: r.string("severity").map_or(Severity::Unknown, |s| Severity::parse(&s)),
            classification: r.string("classification").map_or(Classification::Unknown, |s| Classification::parse(&s)),
            determination: r.string("determination").map_or(Determination::Unknown, |s| Determination::parse(&s)),
            assigned_to: r.string("assignedTo"),
            url: r.string("incidentWebUrl"),
            redirect_incident_id: r.string("redirectIncidentId"),
            custom_tags: if r.get("customTags").is_some() { r.strings("customTags") } else { r.strings("tags") },
            system_tags: r.strings("systemTags"),
            resolving_comment: r.string("resolvingComment"),
            priority_score: r.get("priorityScore").and_then(Value::as_u64).map(|n| n.min(100) as u32),
            comments,
            last_modified_by: r.string("lastModifiedBy"),
            created,
            last_update,
            alerts: vec![],
            alerts_omitted: 0,
            evidence_omitted: 0,
            warnings: vec![],
            id,
        };
        let mut evidence_omitted = 0;
        match alerts_in {
            AlertsIn::Tree(objs) => {
                incident.alerts_omitted = objs.len().saturating_sub(limits.max_alerts);
                incident.alerts = objs
                    .into_iter()
                    .take(limits.max_alerts)
                    .enumerate()
                    .map(|(i, a)| Alert::from_graph(a, i, limits, &mut warnings, &mut evidence_omitted))
                    .collect();
            }
            AlertsIn::Text(items) => {
                // As in a tree, only objects are alerts; the text of a value starts with its kind.
                let objs: Vec<&RawValue> = items.into_iter().filter(|a| a.get().starts_with('{')).collect();
                incident.alerts_omitted = objs.len().saturating_sub(limits.max_alerts);
                incident.alerts = Vec::with_capacity(objs.len().min(limits.max_alerts));
                for (i, a) in objs.into_iter().take(limits.max_alerts).enumerate() {
                    // Text cut out of a document already parsed whole: an object, and valid.
                    if let Ok(obj) = serde_json::from_str::<serde_json::Map<String, Value>>(a.get()) {
                        incident.alerts.push(Alert::from_graph(&obj, i, limits, &mut warnings, &mut evidence_omitted));
                    }
                }
            }
        }
        incident.evidence_omitted = evidence_omitted;
        incident.warnings = warnings;
        Ok(incident)
    }

    /// The incident with only its first `max` alerts (the others counted in `alerts_omitted`),
    /// or `None` if it has no more than that.
    pub fn first_alerts(&self, max: usize) -> Option<Incident> {
        if self.alerts.len() <= max {
            return None;
        }
        Some(Incident {
            id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            status: self.status.clone(),
            severity: self.severity.clone(),
            classification: self.classification.clone(),
            determination: self.determination.clone(),
            assigned_to: self.assigned_to.clone(),
            created: self.created,
            last_update: self.last_update,
            url: self.url.clone(),
            redirect_incident_id: self.redirect_incident_id.clone(),
            custom_tags: self.custom_tags.clone(),
            system_tags: self.system_tags.clone(),
            resolving_comment: self.resolving_comment.clone(),
            priority_score: self.priority_score,
            comments: self.comments.clone(),
            last_modified_by: self.last_modified_by.clone(),
            alerts: self.alerts[..max].to_vec(),
            alerts_omitted: self.alerts_omitted + (self.alerts.len() - max),
            evidence_omitted: self.evidence_omitted,
            warnings: self.warnings.clone(),
        })
    }

    /// Earliest activity of any alert, else the earliest alert, else the incident's creation.
    pub fn first_activity(&self) -> Option<DateTime<Utc>> {
        self.alerts.iter().filter_map(|a| a.first_activity.or(a.created)).min().or(self.created)
    }

    /// Earliest alert creation: when the organisation first knew.
    pub fn first_alert(&self) -> Option<DateTime<Utc>> {
        self.alerts.iter().filter_map(|a| a.created).min()
    }
}

/// Incident and alert comments (Graph `alertComment`): `comment`, `createdByDisplayName`,
/// `createdDateTime`; exports of the portal spell them `createdBy` and `createdTime`. A comment
/// without text is dropped: there is nothing to show or quote.
fn read_comments(items: Vec<&serde_json::Map<String, Value>>) -> Vec<Comment> {
    items
        .into_iter()
        .filter_map(|c| {
            Some(Comment {
                comment: c.get("comment")?.as_str()?.to_owned(),
                author: ["createdByDisplayName", "createdBy"]
                    .iter()
                    .find_map(|k| c.get(*k)?.as_str().map(str::to_owned)),
                created: ["createdDateTime", "createdTime"]
                    .iter()
                    .find_map(|k| DateTime::parse_from_rfc3339(c.get(*k)?.as_str()?).ok())
                    .map(|t| t.with_timezone(&Utc)),
            })
        })
        .collect()
}

impl Alert {
    fn from_graph(
        obj: &serde_json::Map<String, Value>,
        index: usize,
        limits: &Limits,
        warnings: &mut Vec<String>,
        evidence_omitted: &mut usize,
    ) -> Alert {
        let mut r = Reader { obj, warnings, prefix: format!("alerts[{index}].") };
        let id = r.string("id").unwrap_or_else(|| format!("alert-{index}"));
        let evidence = r.array("evidence");
        *evidence_omitted += evidence.len().saturating_sub(limits.max_evidence);
        let evidence = evidence.into_iter().take(limits.max_evidence).map(Evidence::from_graph).collect();
        Alert {
            title: r.string("title").unwrap_or_else(|| format!("Alert {id}")),
            description: r.string("description"),
            status: r.string("status").map_or(AlertStatus::Unknown, |s| AlertStatus::parse(&s)),
            severity: r.string("severity").map_or(Severity::Unknown, |s| Severity::parse(&s)),
            category: r.string("category"),
            mitre_techniques: r.strings("mitreTechniques"),
            service_source: r.string("serviceSource"),
            detection_source: r.string("detectionSource"),
            product_name: r.string("productName"),
            actor: r.string("actorDisplayName"),
            threat_display_name: r.string("threatDisplayName"),
            threat_family_name: r.string("threatFamilyName"),
            url: r.string("alertWebUrl"),
            created: r.time("createdDateTime"),
            first_activity: r.time("firstActivityDateTime"),
            last_activity: r.time("lastActivityDateTime"),
            resolved: r.time("resolvedDateTime"),
            last_update: r.time("lastUpdateDateTime"),
            comments: read_comments(r.array("comments")),
            assigned_to: r.string("assignedTo"),
            evidence,
            id,
        }
    }
}

/// At most this many properties are kept per evidence item, each value at most
/// [`MAX_PROP_CHARS`] characters: an incident keeps up to `max_alerts × max_evidence` items, in
/// memory, in the store and in the review, and the full objects stay in the raw snapshot.
const MAX_PROPS: usize = 12;
const MAX_PROP_CHARS: usize = 300;

/// The properties kept, as (path in the evidence, flat name). Identifiers come first, then what
/// a reader knows the entity by, then descriptions: when an item has more than [`MAX_PROPS`],
/// the first in this order are kept, and a flat name is taken by the first path that has a
/// value. A path through an array (`loggedOnUsers.accountName`) joins its elements' values.
const PROPS: &[(&str, &str)] = &[
    // Identifiers: what merging entities across alerts relies on.
    ("mdeDeviceId", "mdeDeviceId"),
    ("azureAdDeviceId", "azureAdDeviceId"),
    ("userAccount.userPrincipalName", "userPrincipalName"),
    ("userAccount.azureAdUserId", "azureAdUserId"),
    ("userAccount.userSid", "userSid"),
    ("account.userAccount.userPrincipalName", "userPrincipalName"),
    ("account.userAccount.azureAdUserId", "azureAdUserId"),
    ("upn", "userPrincipalName"),
    ("fileDetails.sha256", "sha256"),
    ("fileDetails.sha1", "sha1"),
    ("imageFile.sha256", "sha256"),
    ("imageFile.sha1", "sha1"),
    ("appId", "appId"),
    ("objectId", "objectId"),
    ("networkMessageId", "networkMessageId"),
    ("internetMessageId", "internetMessageId"),
    ("securityGroupId", "securityGroupId"),
    ("resourceId", "resourceId"),
    ("amazonResourceId", "amazonResourceId"),
    ("fullResourceName", "fullResourceName"),
    ("servicePrincipalObjectId", "servicePrincipalObjectId"),
    ("sessionId", "sessionId"),
    ("requestId", "requestId"),
    ("containerId", "containerId"),
    ("imageId", "imageId"),
    // What a reader knows the entity by.
    ("hostName", "hostName"),
    ("imageFile.fileName", "fileName"),
    ("fileDetails.fileName", "fileName"),
    ("imageFile.filePath", "filePath"),
    ("fileDetails.filePath", "filePath"),
    ("processId", "processId"),
    ("processCommandLine", "processCommandLine"),
    ("primaryAddress", "primaryAddress"),
    ("ipAddress", "ipAddress"),
    ("ipAddress.ipAddress", "ipAddress"),
    ("url", "url"),
    ("registryHive", "registryHive"),
    ("registryKey", "registryKey"),
    ("registryValueName", "registryValueName"),
    ("registryValue", "registryValue"),
    ("subject", "subject"),
    ("senderIp", "senderIp"),
    ("p1Sender.emailAddress", "p1Sender"),
    ("p2Sender.emailAddress", "p2Sender"),
    ("recipientEmailAddress", "recipientEmailAddress"),
    ("userAccount.accountName", "accountName"),
    ("userAccount.domainName", "domainName"),
    ("account.userAccount.accountName", "accountName"),
    ("displayName", "displayName"),
    ("userAccount.displayName", "displayName"),
    ("name", "name"),
    ("namespace.name", "namespace"),
    ("cluster.name", "cluster"),
    ("resourceName", "resourceName"),
    ("domainName", "domainName"),
    ("servicePrincipalName", "servicePrincipalName"),
    // Descriptions.
    ("countryLetterCode", "countryLetterCode"),
    ("location.city", "city"),
    ("parentProcessId", "parentProcessId"),
    ("parentProcessImageFile.fileName", "parentProcessFileName"),
    ("processCreationDateTime", "processCreationDateTime"),
    ("detectionStatus", "detectionStatus"),
    ("registryValueType", "registryValueType"),
    ("deliveryAction", "deliveryAction"),
    ("deliveryLocation", "deliveryLocation"),
    ("receivedDateTime", "receivedDateTime"),
    ("clusterBy", "clusterBy"),
    ("clusterByValue", "clusterByValue"),
    ("emailCount", "emailCount"),
    ("instanceName", "instanceName"),
    ("publisher", "publisher"),
    ("osPlatform", "osPlatform"),
    ("osBuild", "osBuild"),
    ("lastIpAddress", "lastIpAddress"),
    ("lastExternalIpAddress", "lastExternalIpAddress"),
    ("loggedOnUsers.accountName", "loggedOnUsers"),
    ("dnsDomain", "dnsDomain"),
    ("rbacGroupName", "rbacGroupName"),
    ("riskScore", "riskScore"),
    ("onboardingStatus", "onboardingStatus"),
    ("protocol", "protocol"),
    ("deviceName", "deviceName"),
    ("operatingSystem", "operatingSystem"),
    ("browser", "browser"),
    ("userAgent", "userAgent"),
    ("startUtcDateTime", "startUtcDateTime"),
    ("resourceType", "resourceType"),
    ("amazonAccountId", "amazonAccountId"),
    ("projectId", "projectId"),
    ("platform", "platform"),
    ("podIp.ipAddress", "podIp"),
    ("serviceAccount.name", "serviceAccount"),
    ("image.imageId", "image"),
    ("registry", "registry"),
    ("isPrivileged", "isPrivileged"),
    ("secretType", "secretType"),
    ("serviceType", "serviceType"),
    ("blobContainer.name", "blobContainer"),
    ("sourceAddress.ipAddress", "sourceAddress"),
    ("destinationAddress.ipAddress", "destinationAddress"),
    ("destinationPort", "destinationPort"),
    ("category", "category"),
];

/// The positions in [`PROPS`] of the paths that begin with each top-level key: an item has a
/// few of the hundred-odd keys PROPS knows, and looking each path up in it cost more than
/// anything else in reading an incident (5 of its 9 µs in `cargo bench --bench backlog`).
static PROPS_BY_KEY: std::sync::LazyLock<std::collections::HashMap<&'static str, Vec<usize>>> =
    std::sync::LazyLock::new(|| {
        let mut by_key: std::collections::HashMap<&'static str, Vec<usize>> = std::collections::HashMap::new();
        for (i, (path, _)) in PROPS.iter().enumerate() {
            let first = path.split_once('.').map_or(*path, |(first, _)| first);
            by_key.entry(first).or_default().push(i);
        }
        by_key
    });

/// An evidence item's properties: [`PROPS`] in their order, the first path with a value taking
/// a flat name, at most [`MAX_PROPS`]. Only the paths whose first key the item has are read:
/// the others have no value.
fn props_of(obj: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    let mut candidates: Vec<usize> =
        obj.keys().filter_map(|k| PROPS_BY_KEY.get(k.as_str())).flatten().copied().collect();
    candidates.sort_unstable();
    let mut props = BTreeMap::new();
    for (path, name) in candidates.into_iter().map(|i| PROPS[i]) {
        if props.len() == MAX_PROPS {
            break;
        }
        if props.contains_key(name) {
            continue;
        }
        if let Some(v) = text_at(obj, path) {
            props.insert(name.to_owned(), clip(v));
        }
    }
    props
}

/// The value at `path` (dot-separated, `""` for `v` itself) as text: strings (trimmed,
/// non-empty), numbers and booleans; through an array, its elements' values joined. Objects
/// and nulls are no value. Walked without allocating: it runs for each path an item has.
fn lookup(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::Object(o) if !path.is_empty() => {
            let (key, rest) = path.split_once('.').unwrap_or((path, ""));
            lookup(o.get(key)?, rest)
        }
        Value::Array(items) => {
            let mut parts: Vec<String> = items.iter().filter_map(|i| lookup(i, path)).collect();
            parts.dedup();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        Value::String(s) if path.is_empty() => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        Value::Number(n) if path.is_empty() => Some(n.to_string()),
        Value::Bool(b) if path.is_empty() => Some(b.to_string()),
        _ => None,
    }
}

/// At most [`MAX_PROP_CHARS`] characters, cut on a character boundary and marked with "…".
fn clip(mut s: String) -> String {
    if let Some((at, _)) = s.char_indices().nth(MAX_PROP_CHARS) {
        let keep = s.char_indices().nth(MAX_PROP_CHARS - 1).map_or(at, |(i, _)| i);
        s.truncate(keep);
        s.push('…');
    }
    s
}

/// The evidence's text at a dotted path.
fn text_at(obj: &serde_json::Map<String, Value>, path: &str) -> Option<String> {
    let (first, rest) = path.split_once('.').unwrap_or((path, ""));
    lookup(obj.get(first)?, rest)
}

/// How a user account is known: its UPN, else `DOMAIN\account`, else whatever names it.
fn account_name(obj: &serde_json::Map<String, Value>, prefix: &str) -> Option<String> {
    let t = |k: &str| text_at(obj, &format!("{prefix}{k}"));
    t("userPrincipalName")
        .or_else(|| match (t("domainName"), t("accountName")) {
            (Some(d), Some(a)) => Some(format!("{d}\\{a}")),
            (None, a) => a,
            (Some(_), None) => None,
        })
        .or_else(|| t("displayName"))
        .or_else(|| t("azureAdUserId"))
        .or_else(|| t("userSid"))
}

/// A registry key with its hive in front (as Windows abbreviates it: Graph sends the hive as an
/// enum, `hkeyLocalMachine`), unless the key already starts with a hive.
fn registry_key(obj: &serde_json::Map<String, Value>) -> Option<String> {
    let key = text_at(obj, "registryKey");
    let hive = text_at(obj, "registryHive").map(|h| hive_abbreviation(&h).map_or(h, str::to_owned));
    match (hive, key) {
        (Some(h), Some(k)) if !starts_with_hive(&k) => Some(format!("{h}\\{k}")),
        (h, k) => k.or(h),
    }
}

/// HKLM for `hkeyLocalMachine` and `HKEY_LOCAL_MACHINE`; `None` for a hive Windows does not name.
fn hive_abbreviation(hive: &str) -> Option<&'static str> {
    let h: String = hive.chars().filter(|c| *c != '_').collect::<String>().to_ascii_lowercase();
    Some(match h.as_str() {
        "hkeylocalmachine" | "hklm" => "HKLM",
        "hkeycurrentuser" | "hkcu" => "HKCU",
        "hkeyclassesroot" | "hkcr" => "HKCR",
        "hkeyusers" | "hku" => "HKU",
        "hkeycurrentconfig" | "hkcc" => "HKCC",
        _ => return None,
    })
}

fn starts_with_hive(key: &str) -> bool {
    key.split(['\\', '/']).next().is_some_and(|first| hive_abbreviation(first).is_some())
}

/// The name a reader knows an entity by, per evidence type; an unknown type by whichever
/// common naming property it has.
fn entity_name(kind: &str, obj: &serde_json::Map<String, Value>) -> Option<String> {
    let t = |p: &str| text_at(obj, p);
    let named = match kind {
        "deviceEvidence" => {
            t("deviceDnsName").or_else(|| t("hostName")).or_else(|| t("mdeDeviceId")).or_else(|| t("azureAdDeviceId"))
        }
        "userEvidence" => account_name(obj, "userAccount."),
        "mailboxEvidence" => t("primaryAddress").or_else(|| t("upn")).or_else(|| account_name(obj, "userAccount.")),
        "ipEvidence" => t("ipAddress"),
        "urlEvidence" => t("url"),
        "fileEvidence" => {
            t("fileDetails.fileName").or_else(|| t("fileDetails.sha256")).or_else(|| t("fileDetails.sha1"))
        }
        "processEvidence" => {
            let image = t("imageFile.fileName").or_else(|| t("processCommandLine"));
            match (image, t("processId")) {
                (Some(i), Some(pid)) => Some(format!("{i} (pid {pid})")),
                (Some(i), None) => Some(i),
                (None, pid) => pid.map(|p| format!("pid {p}")),
            }
        }
        "cloudApplicationEvidence" => t("displayName").or_else(|| t("instanceName")).or_else(|| t("appId")),
        "oauthApplicationEvidence" => t("displayName").or_else(|| t("appId")),
        "registryKeyEvidence" => registry_key(obj),
        "registryValueEvidence" => match (registry_key(obj), t("registryValueName")) {
            (Some(k), Some(v)) => Some(format!("{k}\\{v}")),
            (k, v) => v.or(k),
        },
        "analyzedMessageEvidence" | "submissionMailEvidence" => {
            t("subject").or_else(|| t("networkMessageId")).or_else(|| t("internetMessageId"))
        }
        "mailClusterEvidence" => t("name")
            .or_else(|| Some(format!("{}: {}", t("clusterBy")?, t("clusterByValue")?)))
            .or_else(|| t("query"))
            .or_else(|| t("urn")),
        "securityGroupEvidence" => t("displayName").or_else(|| t("securityGroupId")),
        "azureResourceEvidence" => t("resourceName").or_else(|| t("resourceId")),
        "amazonResourceEvidence" => t("resourceName").or_else(|| t("amazonResourceId")),
        "googleCloudResourceEvidence" => t("resourceName").or_else(|| t("fullResourceName")),
        "cloudLogonSessionEvidence" | "hostLogonSessionEvidence" => {
            match (account_name(obj, "account.userAccount."), t("sessionId")) {
                (Some(a), Some(s)) => Some(format!("{a} session {s}")),
                (a, s) => s.map(|s| format!("session {s}")).or(a),
            }
        }
        "cloudLogonRequestEvidence" => t("requestId"),
        "kubernetesPodEvidence"
        | "kubernetesServiceEvidence"
        | "kubernetesControllerEvidence"
        | "kubernetesSecretEvidence"
        | "kubernetesServiceAccountEvidence" => match (t("namespace.name"), t("name")) {
            (Some(ns), Some(n)) => Some(format!("{ns}/{n}")),
            (_, n) => n,
        },
        "containerEvidence" => t("name").or_else(|| t("containerId")),
        "containerImageEvidence" => t("imageId"),
        "containerRegistryEvidence" => t("registry"),
        "blobEvidence" | "blobContainerEvidence" => t("url").or_else(|| t("name")),
        "dnsEvidence" => t("domainName"),
        "servicePrincipalEvidence" => t("servicePrincipalName").or_else(|| t("appId")),
        _ => None,
    };
    named.or_else(|| {
        const COMMON: &[&str] = &[
            "displayName",
            "name",
            "url",
            "ipAddress",
            "domainName",
            "deviceName",
            "hostName",
            "primaryAddress",
            "subject",
            "fileDetails.fileName",
            "imageFile.fileName",
            "userAccount.userPrincipalName",
        ];
        COMMON.iter().find_map(|p| t(p))
    })
}

/// An array of strings, or nothing.
fn string_list(obj: &serde_json::Map<String, Value>, key: &str) -> Vec<String> {
    obj.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

impl Evidence {
    fn from_graph(obj: &serde_json::Map<String, Value>) -> Evidence {
        let kind = obj
            .get("@odata.type")
            .and_then(Value::as_str)
            .map(|t| t.rsplit('.').next().unwrap_or(t).trim_start_matches('#'))
            .filter(|t| !t.is_empty())
            .unwrap_or("evidence")
            .to_owned();
        Evidence {
            entity: entity_name(&kind, obj).map(clip),
            kind,
            verdict: obj.get("verdict").and_then(Value::as_str).map(str::to_owned),
            roles: string_list(obj, "roles"),
            remediation_status: obj.get("remediationStatus").and_then(Value::as_str).map(str::to_owned),
            detailed_roles: string_list(obj, "detailedRoles"),
            props: props_of(obj),
            created: obj
                .get("createdDateTime")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn enums_ignore_case_accept_both_spellings_and_keep_unknown_values() {
        assert_eq!(Severity::parse("High"), Severity::High);
        assert_eq!(Classification::parse("TruePositive"), Classification::TruePositive);
        assert_eq!(Determination::parse("compromisedUser"), Determination::CompromisedAccount);
        assert_eq!(Determination::parse("clean").as_str(), "notMalicious");
        assert_eq!(IncidentStatus::parse("awaitingAction"), IncidentStatus::AwaitingAction);
        let future = IncidentStatus::parse("escalatedToSomeone");
        assert_eq!(future, IncidentStatus::Other("escalatedToSomeone".into()));
        assert_eq!(serde_json::to_value(&future).unwrap(), json!("escalatedToSomeone"));
    }

    /// Every evidence item in the examples and the Graph fixtures, and items with more
    /// properties than are kept: the properties read through [`PROPS_BY_KEY`] are the ones the
    /// plain walk over all of [`PROPS`] finds.
    #[test]
    fn evidence_properties_are_those_of_the_walk_over_every_path() {
        fn walk_all(obj: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
            let mut props = BTreeMap::new();
            for (path, name) in PROPS {
                if props.len() == MAX_PROPS {
                    break;
                }
                if !props.contains_key(*name)
                    && let Some(v) = text_at(obj, path)
                {
                    props.insert((*name).to_owned(), clip(v));
                }
            }
            props
        }
        fn items<'a>(v: &'a Value, out: &mut Vec<&'a serde_json::Map<String, Value>>) {
            match v {
                Value::Object(o) => {
                    if o.get("@odata.type").and_then(Value::as_str).is_some_and(|t| t.ends_with("Evidence")) {
                        out.push(o);
                    }
                    o.values().for_each(|v| items(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| items(v, out)),
                _ => {}
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut docs = Vec::new();
        for dir in ["examples/incidents", "tests/fixtures/graph"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
                if entry.path().extension().is_some_and(|e| e == "json") {
                    docs.push(serde_json::from_slice::<Value>(&std::fs::read(entry.path()).unwrap()).unwrap());
                }
            }
        }
        // Every path of PROPS with a value, twice over (nested and flat): more than MAX_PROPS,
        // and names that several paths give.
        let mut everything = serde_json::Map::new();
        for (i, (path, _)) in PROPS.iter().enumerate() {
            let segments: Vec<&str> = path.split('.').collect();
            let mut v = json!(format!("value {i}"));
            for key in segments[1..].iter().rev() {
                v = json!({ *key: v });
            }
            let first = segments[0];
            let merged = match (everything.remove(first), v) {
                (Some(Value::Object(mut a)), Value::Object(b)) => {
                    a.extend(b);
                    Value::Object(a)
                }
                (_, v) => v,
            };
            everything.insert(first.to_owned(), merged);
        }
        docs.push(json!({"@odata.type": "#microsoft.graph.security.deviceEvidence", "all": Value::Object(everything.clone())}));
        docs.push(Value::Object(
            everything.into_iter().chain([("@odata.type".to_owned(), json!("x.unknownEvidence"))]).collect(),
        ));
        let mut found = Vec::new();
        docs.iter().for_each(|d| items(d, &mut found));
        assert!(found.len() > 50, "{} evidence items", found.len());
        assert!(found.iter().any(|o| walk_all(o).len() == MAX_PROPS), "an item with more than MAX_PROPS");
        for obj in found {
            assert_eq!(props_of(obj), walk_all(obj), "{}", Value::Object(obj.clone()));
        }
    }

    fn evidence(v: Value) -> Evidence {
        Evidence::from_graph(v.as_object().unwrap())
    }

    fn ev(t: &str, mut fields: Value) -> Evidence {
        fields["@odata.type"] = json!(format!("#microsoft.graph.security.{t}"));
        evidence(fields)
    }

    #[test]
    fn device_evidence_is_named_by_dns_name_with_its_ids_roles_and_time() {
        let e = ev(
            "deviceEvidence",
            json!({"createdDateTime": "2026-01-22T12:09:22.9566667Z", "verdict": "suspicious", "remediationStatus": "active",
                "roles": [], "detailedRoles": ["PrimaryDevice"], "tags": [], "firstSeenDateTime": "2025-08-18T11:09:18.5092327Z",
                "mdeDeviceId": "335b3ef544f5d3690b6c75c776dc3e52bb3485c4", "azureAdDeviceId": null,
                "deviceDnsName": "w11pro-test.corp.contoso.com", "hostName": "w11pro-test", "ntDomain": null, "dnsDomain": "corp.contoso.com",
                "osPlatform": "Windows11", "osBuild": 26200, "version": "25H2", "healthStatus": "active", "riskScore": "high",
                "rbacGroupId": 125, "rbacGroupName": "Clients", "onboardingStatus": "onboarded", "defenderAvStatus": "unknown",
                "lastIpAddress": "172.23.38.127", "lastExternalIpAddress": "93.65.246.85",
                "ipInterfaces": ["172.23.38.127"], "vmMetadata": null,
                "loggedOnUsers": [{"accountName": "admin", "domainName": "CONTOSO"}, {"accountName": "svc-backup", "domainName": "CONTOSO"}]}),
        );
        assert_eq!(e.kind, "deviceEvidence");
        assert_eq!(e.entity.as_deref(), Some("w11pro-test.corp.contoso.com"));
        assert_eq!(e.detailed_roles, ["PrimaryDevice"]);
        assert_eq!(e.remediation_status.as_deref(), Some("active"));
        assert_eq!(e.created.unwrap().to_rfc3339(), "2026-01-22T12:09:22.956666700+00:00");
        assert_eq!(e.props["mdeDeviceId"], "335b3ef544f5d3690b6c75c776dc3e52bb3485c4");
        assert_eq!(e.props["hostName"], "w11pro-test");
        assert_eq!(e.props["osBuild"], "26200");
        assert_eq!(e.props["loggedOnUsers"], "admin, svc-backup");
        assert!(!e.props.contains_key("azureAdDeviceId"), "null is no value");
        assert!(e.props.len() <= MAX_PROPS, "{:?}", e.props);
        // Without a DNS name, the host name; without either, the Defender ID.
        let e = ev("deviceEvidence", json!({"hostName": "ts-gw-01", "mdeDeviceId": "abc"}));
        assert_eq!(e.entity.as_deref(), Some("ts-gw-01"));
        let e = ev("deviceEvidence", json!({"azureAdDeviceId": "9d1c"}));
        assert_eq!(e.entity.as_deref(), Some("9d1c"));
    }

    #[test]
    fn user_evidence_is_named_by_upn_else_domain_and_account() {
        let account = json!({"accountName": "svc-backup", "domainName": "CONTOSO", "userSid": "S-1-5-21-1-2-3-7355",
            "azureAdUserId": "f7ef068b-0000-4000-8000-fe0eb2c98f09", "userPrincipalName": "svc-backup@contoso.com",
            "displayName": "Backup service"});
        let e = ev("userEvidence", json!({"roles": ["compromised"], "userAccount": account, "verdict": "suspicious"}));
        assert_eq!(e.entity.as_deref(), Some("svc-backup@contoso.com"));
        assert_eq!(e.roles, ["compromised"]);
        for (k, v) in [
            ("userPrincipalName", "svc-backup@contoso.com"),
            ("azureAdUserId", "f7ef068b-0000-4000-8000-fe0eb2c98f09"),
            ("userSid", "S-1-5-21-1-2-3-7355"),
            ("accountName", "svc-backup"),
            ("domainName", "CONTOSO"),
            ("displayName", "Backup service"),
        ] {
            assert_eq!(e.props[k], v, "{k}");
        }
        let e = ev(
            "userEvidence",
            json!({"userAccount": {"accountName": "a.smit", "domainName": "CONTOSO", "userPrincipalName": null}}),
        );
        assert_eq!(e.entity.as_deref(), Some("CONTOSO\\a.smit"));
        let e = ev("userEvidence", json!({"userAccount": {"userSid": "S-1-5-18"}}));
        assert_eq!(e.entity.as_deref(), Some("S-1-5-18"));
    }

    #[test]
    fn mailbox_ip_and_url_evidence() {
        let e = ev(
            "mailboxEvidence",
            json!({"primaryAddress": "m.jansen@contoso.com", "displayName": "Marit Jansen", "upn": "m.jansen@contoso.com"}),
        );
        assert_eq!(e.entity.as_deref(), Some("m.jansen@contoso.com"));
        assert_eq!(e.props["userPrincipalName"], "m.jansen@contoso.com");
        let e = ev(
            "ipEvidence",
            json!({"ipAddress": "45.141.87.12", "countryLetterCode": "NL", "location": {"city": "Amsterdam", "countryName": "Netherlands"}}),
        );
        assert_eq!(e.entity.as_deref(), Some("45.141.87.12"));
        assert_eq!((e.props["countryLetterCode"].as_str(), e.props["city"].as_str()), ("NL", "Amsterdam"));
        let e = ev("urlEvidence", json!({"url": "https://mega.nz/file/q8xZ"}));
        assert_eq!(e.entity.as_deref(), Some("https://mega.nz/file/q8xZ"));
        assert_eq!(e.props["url"], "https://mega.nz/file/q8xZ");
    }

    #[test]
    fn file_and_process_evidence() {
        let e = ev(
            "fileEvidence",
            json!({"detectionStatus": "prevented", "mdeDeviceId": "d1", "fileDetails": {"fileName": "locker.exe", "filePath": "C:\\perflogs",
                "sha1": "aa", "sha256": "9f2c", "fileSize": 1234, "filePublisher": null, "signer": null, "issuer": null}}),
        );
        assert_eq!(e.entity.as_deref(), Some("locker.exe"));
        assert_eq!(
            (
                e.props["sha256"].as_str(),
                e.props["sha1"].as_str(),
                e.props["filePath"].as_str(),
                e.props["detectionStatus"].as_str()
            ),
            ("9f2c", "aa", "C:\\perflogs", "prevented")
        );
        let e = ev(
            "processEvidence",
            json!({"processId": 7420, "parentProcessId": 668, "processCommandLine": "adfind.exe -f objectcategory=computer",
                "processCreationDateTime": "2026-10-20T22:53:00Z", "mdeDeviceId": "d1",
                "imageFile": {"fileName": "adfind.exe", "filePath": "C:\\Windows\\System32", "sha256": "beef"},
                "parentProcessImageFile": {"fileName": "cmd.exe"},
                "userAccount": {"accountName": "svc-backup", "domainName": "CONTOSO", "userPrincipalName": "svc-backup@contoso.com"}}),
        );
        assert_eq!(e.entity.as_deref(), Some("adfind.exe (pid 7420)"));
        assert_eq!(e.props["processCommandLine"], "adfind.exe -f objectcategory=computer");
        assert_eq!(e.props["fileName"], "adfind.exe");
        assert_eq!(e.props["userPrincipalName"], "svc-backup@contoso.com");
        assert_eq!(e.props["processId"], "7420");
        assert!(e.props.len() <= MAX_PROPS);
        // No image file: the command line names it.
        let e = ev("processEvidence", json!({"processCommandLine": "whoami /all"}));
        assert_eq!(e.entity.as_deref(), Some("whoami /all"));
    }

    #[test]
    fn application_evidence() {
        let e = ev(
            "cloudApplicationEvidence",
            json!({"appId": 20893, "displayName": "Microsoft Exchange Online", "instanceName": "Microsoft Exchange Online", "saasAppId": 20893}),
        );
        assert_eq!(e.entity.as_deref(), Some("Microsoft Exchange Online"));
        assert_eq!(e.props["appId"], "20893");
        let e = ev(
            "oauthApplicationEvidence",
            json!({"appId": "6a1e-44", "displayName": "MailSync Pro", "objectId": "0b5f", "publisher": "Unverified Ltd"}),
        );
        assert_eq!(e.entity.as_deref(), Some("MailSync Pro"));
        assert_eq!(
            (e.props["appId"].as_str(), e.props["objectId"].as_str(), e.props["publisher"].as_str()),
            ("6a1e-44", "0b5f", "Unverified Ltd")
        );
        let e = ev("oauthApplicationEvidence", json!({"appId": "6a1e-44"}));
        assert_eq!(e.entity.as_deref(), Some("6a1e-44"));
    }

    #[test]
    fn registry_evidence_names_key_and_value_with_the_hive() {
        let e = ev(
            "registryKeyEvidence",
            json!({"registryHive": "HKEY_LOCAL_MACHINE", "registryKey": "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run"}),
        );
        assert_eq!(e.entity.as_deref(), Some("HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run"));
        // Graph's enum spelling of the hive, and a key that already starts with its abbreviation.
        let e =
            ev("registryKeyEvidence", json!({"registryHive": "hkeyLocalMachine", "registryKey": "SOFTWARE\\Policies"}));
        assert_eq!(e.entity.as_deref(), Some("HKLM\\SOFTWARE\\Policies"));
        let e = ev(
            "registryKeyEvidence",
            json!({"registryHive": "hkeyLocalMachine", "registryKey": "HKLM\\SOFTWARE\\Policies"}),
        );
        assert_eq!(e.entity.as_deref(), Some("HKLM\\SOFTWARE\\Policies"));
        let e = ev(
            "registryValueEvidence",
            json!({"mdeDeviceId": "d1", "registryHive": "HKEY_CURRENT_USER", "registryKey": "HKEY_CURRENT_USER\\Software\\Run",
                "registryValueName": "updater", "registryValue": "C:\\perflogs\\u.exe", "registryValueType": "String"}),
        );
        assert_eq!(e.entity.as_deref(), Some("HKEY_CURRENT_USER\\Software\\Run\\updater"));
        assert_eq!(e.props["registryValue"], "C:\\perflogs\\u.exe");
        assert_eq!(e.props["registryValueType"], "String");
    }

    #[test]
    fn message_evidence() {
        let e = ev(
            "analyzedMessageEvidence",
            json!({"networkMessageId": "2b3c-n", "internetMessageId": "<abc@mail.example>", "subject": "Updated bank details",
                "senderIp": "185.220.101.47", "recipientEmailAddress": "ap@contoso.com", "p1Sender": {"emailAddress": "j@contoso.com", "displayName": "J"},
                "p2Sender": {"emailAddress": "x@evil.example"}, "deliveryAction": "delivered", "deliveryLocation": "inbox",
                "urls": ["https://a.example"], "threats": ["Phish"], "urlCount": 1, "attachmentsCount": 0}),
        );
        assert_eq!(e.entity.as_deref(), Some("Updated bank details"));
        assert_eq!(e.props["networkMessageId"], "2b3c-n");
        assert_eq!(e.props["senderIp"], "185.220.101.47");
        assert_eq!(e.props["p1Sender"], "j@contoso.com");
        assert_eq!(e.props["p2Sender"], "x@evil.example");
        let e = ev("analyzedMessageEvidence", json!({"networkMessageId": "2b3c-n", "subject": ""}));
        assert_eq!(e.entity.as_deref(), Some("2b3c-n"), "an empty subject is no name");
        let e = ev(
            "mailClusterEvidence",
            json!({"clusterBy": "Sender", "clusterByValue": "x@evil.example", "emailCount": 14, "networkMessageIds": ["a", "b"], "query": "q"}),
        );
        assert_eq!(e.entity.as_deref(), Some("Sender: x@evil.example"));
        assert_eq!(e.props["emailCount"], "14");
    }

    #[test]
    fn directory_cloud_and_session_evidence() {
        let e = ev(
            "securityGroupEvidence",
            json!({"securityGroupId": "4e1c", "displayName": "Domain Admins", "activeDirectoryObjectGuid": "g"}),
        );
        assert_eq!((e.entity.as_deref(), e.props["securityGroupId"].as_str()), (Some("Domain Admins"), "4e1c"));
        let e = ev(
            "azureResourceEvidence",
            json!({"resourceId": "/subscriptions/1/resourceGroups/rg/providers/x/vm1", "resourceName": "vm1", "resourceType": "Virtual Machine"}),
        );
        assert_eq!(
            (e.entity.as_deref(), e.props["resourceId"].as_str()),
            (Some("vm1"), "/subscriptions/1/resourceGroups/rg/providers/x/vm1")
        );
        let e = ev(
            "amazonResourceEvidence",
            json!({"amazonAccountId": "1234", "amazonResourceId": "arn:aws:s3:::bucket", "resourceType": "S3 bucket"}),
        );
        assert_eq!(e.entity.as_deref(), Some("arn:aws:s3:::bucket"));
        let e = ev(
            "googleCloudResourceEvidence",
            json!({"fullResourceName": "//compute.googleapis.com/p/vm", "resourceName": "vm", "projectId": "p"}),
        );
        assert_eq!((e.entity.as_deref(), e.props["projectId"].as_str()), (Some("vm"), "p"));
        let e = ev(
            "cloudLogonSessionEvidence",
            json!({"sessionId": "s-77", "browser": "Edge", "userAgent": "Mozilla/5.0",
                "account": {"@odata.type": "#microsoft.graph.security.userEvidence", "userAccount": {"userPrincipalName": "a@contoso.com", "azureAdUserId": "u1"}}}),
        );
        assert_eq!(e.entity.as_deref(), Some("a@contoso.com session s-77"));
        assert_eq!(e.props["azureAdUserId"], "u1");
        let e = ev(
            "kubernetesPodEvidence",
            json!({"name": "web-7f", "namespace": {"name": "prod", "cluster": {"name": "aks1"}}, "podIp": {"ipAddress": "10.1.0.4"},
                "serviceAccount": {"name": "default"}, "containers": [{"name": "web", "image": {"imageId": "nginx"}}]}),
        );
        assert_eq!(e.entity.as_deref(), Some("prod/web-7f"));
        assert_eq!((e.props["namespace"].as_str(), e.props["podIp"].as_str()), ("prod", "10.1.0.4"));
        let e = ev("kubernetesClusterEvidence", json!({"name": "aks1", "platform": "aks", "distribution": "AKS"}));
        assert_eq!((e.entity.as_deref(), e.props["platform"].as_str()), (Some("aks1"), "aks"));
        let e = ev(
            "blobEvidence",
            json!({"name": "dump.zip", "url": "https://acct.blob.core.windows.net/c/dump.zip", "blobContainer": {"name": "c"}}),
        );
        assert_eq!(
            (e.entity.as_deref(), e.props["blobContainer"].as_str()),
            (Some("https://acct.blob.core.windows.net/c/dump.zip"), "c")
        );
    }

    #[test]
    fn unknown_evidence_is_kept_by_its_type_and_named_if_it_can_be() {
        let e = ev("aiAgentEvidence", json!({"displayName": "Copilot agent 7", "verdict": "suspicious"}));
        assert_eq!((e.kind.as_str(), e.entity.as_deref()), ("aiAgentEvidence", Some("Copilot agent 7")));
        let e = evidence(json!({"verdict": "malicious", "name": "thing"}));
        assert_eq!((e.kind.as_str(), e.entity.as_deref()), ("evidence", Some("thing")));
        let e = evidence(json!({"@odata.type": "", "x": {"y": 1}}));
        assert_eq!((e.kind.as_str(), e.entity.as_deref()), ("evidence", None));
        assert!(e.props.is_empty());
    }

    #[test]
    fn props_are_bounded_in_number_and_length() {
        // Every allowed property set: only the first MAX_PROPS, identifiers first.
        let mut v = json!({});
        for (path, _) in PROPS.iter().filter(|(p, _)| !p.contains('.')) {
            v[*path] = json!(format!("value of {path}"));
        }
        let e = ev("deviceEvidence", v);
        assert_eq!(e.props.len(), MAX_PROPS);
        assert!(e.props.contains_key("mdeDeviceId") && !e.props.contains_key("category"));
        // Clipped on a character boundary, marked.
        let long = "é".repeat(MAX_PROP_CHARS + 5);
        let e = ev("processEvidence", json!({"processCommandLine": long, "processId": 1}));
        let clipped = &e.props["processCommandLine"];
        assert_eq!(clipped.chars().count(), MAX_PROP_CHARS);
        assert!(clipped.ends_with('…'));
        assert_eq!(e.entity.as_ref().unwrap().chars().count(), MAX_PROP_CHARS);
        let exact = "x".repeat(MAX_PROP_CHARS);
        let e = ev("urlEvidence", json!({"url": exact.clone()}));
        assert_eq!(e.props["url"], exact, "a value of exactly the limit is kept whole");
    }

    #[test]
    fn reads_the_documented_example() {
        let text = include_str!("../tests/fixtures/graph/list-incidents-expand-alerts.json");
        let list: Value = serde_json::from_str(text).unwrap();
        let i = Incident::from_graph(&list["value"][0]).unwrap();
        assert_eq!(i.id, "29");
        assert_eq!(i.status, IncidentStatus::Active);
        assert_eq!(i.severity, Severity::High);
        assert_eq!(i.determination, Determination::MultiStagedAttack);
        assert_eq!(i.custom_tags, ["Demo"]);
        assert_eq!(i.alerts[0].mitre_techniques, ["T1546.003"]);
        assert_eq!(i.alerts[0].category.as_deref(), Some("Persistence"));
        assert_eq!(i.alerts[0].evidence[0].kind, "deviceEvidence");
        assert_eq!(i.alerts[0].evidence[0].entity.as_deref(), Some("w11pro-test"));
        assert_eq!(i.last_update.to_rfc3339(), "2026-02-25T16:29:33.100+00:00");
        assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    }

    #[test]
    fn alert_comments_are_read_like_incident_comments() {
        let v = json!({
            "id": "9", "lastUpdateDateTime": "2026-11-01T10:00:00Z",
            "alerts": [{"id": "a1", "comments": [
                {"comment": "isolated ws-1", "createdByDisplayName": "Kim Lee", "createdDateTime": "2026-11-01T09:10:00Z"},
                {"createdByDisplayName": "no text"}
            ]}]
        });
        let i = Incident::from_graph(&v).unwrap();
        let c = &i.alerts[0].comments;
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].comment, "isolated ws-1");
        assert_eq!(c[0].author.as_deref(), Some("Kim Lee"));
        assert_eq!(c[0].created.map(|t| t.to_rfc3339()).as_deref(), Some("2026-11-01T09:10:00+00:00"));
    }

    #[test]
    fn one_odd_field_never_costs_the_incident() {
        let v = json!({
            "id": 7, "status": "Resolved", "severity": 3, "lastUpdateDateTime": "2026-11-01T10:00:00Z",
            "tags": ["vip"], "customTags": null, "comments": [{"comment": "done", "createdBy": "ann", "createdTime": "2026-11-01T09:00:00Z"}],
            "alerts": [{"id": "a1", "mitreTechniques": "T1059", "createdDateTime": "yesterday", "evidence": [{"@odata.type": "#microsoft.graph.security.somethingNewEvidence", "verdict": "malicious"}]}],
            "newField": {"x": 1}
        });
        let i = Incident::from_graph(&v).unwrap();
        assert_eq!(i.id, "7");
        assert_eq!(i.status, IncidentStatus::Resolved);
        // A number where a string was expected is kept as an unknown value, like a new enum member.
        assert_eq!(i.severity, Severity::Other("3".into()));
        assert_eq!(i.custom_tags, ["vip"]);
        assert_eq!(i.comments[0].author.as_deref(), Some("ann"));
        assert_eq!(i.alerts[0].mitre_techniques, Vec::<String>::new());
        assert_eq!(i.alerts[0].created, None);
        assert_eq!(i.alerts[0].evidence[0].kind, "somethingNewEvidence");
        assert_eq!(
            i.warnings,
            [
                "alerts[0].mitreTechniques: expected an array of strings; ignored",
                "alerts[0].createdDateTime: expected an ISO-8601 date-time; ignored",
            ]
        );
    }

    #[test]
    fn refuses_only_what_cannot_be_tracked() {
        assert_eq!(Incident::from_graph(&json!([1])), Err(ParseError::NotAnObject));
        assert_eq!(Incident::from_graph(&json!({"status": "resolved"})), Err(ParseError::MissingId));
        assert_eq!(
            Incident::from_graph(&json!({"id": "9", "lastUpdateDateTime": "soon"})),
            Err(ParseError::MissingUpdateTime { id: "9".into() })
        );
        let created_only =
            Incident::from_graph(&json!({"id": "9", "createdDateTime": "2026-11-01T10:00:00Z"})).unwrap();
        assert_eq!(created_only.last_update, created_only.created.unwrap());
    }

    /// The text reading (the directory source's) makes of any incident what the tree reading
    /// makes of the parsed value, within the same limits.
    #[test]
    fn reading_the_text_is_reading_the_tree() {
        let cases = [
            json!([1]),
            json!("incident"),
            json!({"status": "resolved"}),
            json!({"id": "9", "lastUpdateDateTime": "soon"}),
            json!({"id": "7", "severity": 3, "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": "none"}),
            json!({"id": "7", "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": null}),
            json!({"id": "7", "lastUpdateDateTime": "2026-11-01T10:00:00Z",
                "alerts": [1, {"id": "a1", "mitreTechniques": "T1059", "evidence": [{"verdict": "malicious"}, 2, {}, {}]},
                    null, {"createdDateTime": "yesterday", "evidence": {"x": 1}}, {"id": "a3"}, {"id": "a4"}]}),
        ];
        let limits =
            [Limits::DEFAULT, Limits { max_alerts: 2, max_evidence: 1 }, Limits { max_alerts: 0, max_evidence: 0 }];
        for v in &cases {
            for l in &limits {
                let text = serde_json::to_string_pretty(v).unwrap();
                assert_eq!(Incident::from_graph_str(&text, l), Incident::from_graph_limited(v, l), "{v} {l:?}");
            }
        }
        // Duplicate keys: the last one counts, in a tree as in the text.
        let text = r#"{"id": "1", "id": "2", "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": [{"id": "a"}], "alerts": []}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(Incident::from_graph_str(text, &Limits::DEFAULT), Incident::from_graph(&v));
        assert_eq!(Incident::from_graph(&v).unwrap().id, "2");
        assert!(matches!(Incident::from_graph_str("{\"id\": ", &Limits::DEFAULT), Err(ParseError::Json(_))));

        let i = Incident::from_graph_limited(&cases[6], &limits[1]).unwrap();
        assert_eq!((i.alerts.len(), i.alerts_omitted, i.evidence_omitted), (2, 2, 2));
        assert_eq!(i.alerts[0].evidence.len(), 1, "non-objects are no evidence, as before");
        // The count past the cap is stored with the incident, and read back.
        let back: Incident = serde_json::from_value(serde_json::to_value(&i).unwrap()).unwrap();
        assert_eq!(back, i);
        // An incident stored before the cap existed reads with nothing omitted.
        let mut old = serde_json::to_value(Incident::from_graph(&cases[6]).unwrap()).unwrap();
        assert!(old.get("alerts_omitted").is_none(), "absent when nothing was left out");
        old.as_object_mut().unwrap().remove("evidence_omitted");
        assert_eq!(serde_json::from_value::<Incident>(old).unwrap().alerts_omitted, 0);

        let first = Incident::from_graph(&cases[6]).unwrap().first_alerts(1).unwrap();
        assert_eq!((first.alerts.len(), first.alerts_omitted), (1, 3));
        assert!(i.first_alerts(2).is_none());
    }
}

/// A change of an incident's state that the daemon saw between two polls. Graph keeps no
/// history of status changes; the daemon polls active incidents and so sees them happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// `status`, `assignedTo`, `classification` or `determination`.
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// When the daemon first saw the new value.
    pub seen_at: DateTime<Utc>,
    /// When it last saw the old value (`null` on the first sight of the incident): the change
    /// happened between the two, so `seen_at - after` is the precision.
    pub after: Option<DateTime<Utc>>,
}
