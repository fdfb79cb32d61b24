//! What the digest needs of one review, stored beside it (store tree `summaries`, keyed by the
//! resolution time) when the review is recorded: IDs and figures only, a few hundred bytes. The
//! names come from the catalog and the follow-up titles from the `follow_ups` tree when a digest
//! is made, so a digest over 100,000 reviews reads some tens of megabytes, not the gigabytes
//! the reviews themselves take. Stored in a binary layout ([`Summary::to_stored`]): a digest
//! decodes every summary of the weeks it covers.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::review::{KnowledgeGap, Priority, Review, StageState, TechniqueStatus};

/// How many attribution candidates of each review the digest looks at.
pub const ATTRIBUTION_PER_REVIEW: usize = 3;

/// Stored with owned strings; the digest reads it as `Summary<Text>`, borrowing every string
/// from the stored bytes instead of allocating some fifty per review. The stored keys are short
/// (a digest parses every summary of two periods; the names are a fifth of the bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary<S = String> {
    #[serde(rename = "s")]
    pub source: S,
    #[serde(rename = "i")]
    pub incident_id: S,
    #[serde(rename = "r")]
    pub revision: u32,
    #[serde(rename = "sev")]
    pub severity: S,
    #[serde(rename = "cls")]
    pub classification: S,
    #[serde(rename = "det")]
    pub determination: S,
    /// When the incident was resolved (the review's time if Graph gave none): what places a
    /// review in a digest period.
    #[serde(rename = "at")]
    pub resolved: DateTime<Utc>,
    #[serde(rename = "ttd")]
    pub time_to_detect_s: Option<i64>,
    #[serde(rename = "ttr")]
    pub time_to_resolve_s: Option<i64>,
    /// First alert → first recorded human action; absent in JSON summaries stored before it.
    /// (Always written: the binary layout has no optional fields.)
    #[serde(rename = "tta", default)]
    pub time_to_acknowledge_s: Option<i64>,
    /// A false positive or expected activity: counted, but kept out of technique trends and gaps.
    #[serde(rename = "fp")]
    pub benign: bool,
    /// Known techniques observed (current IDs).
    #[serde(rename = "t")]
    pub techniques: Vec<S>,
    /// Tactics observed (shortnames).
    #[serde(rename = "ta")]
    pub tactics: Vec<S>,
    /// Observed techniques the detection inventory does not cover.
    #[serde(rename = "u")]
    pub uncovered: Vec<S>,
    /// Tactics of the blind stages.
    #[serde(rename = "b")]
    pub blind_stages: Vec<S>,
    #[serde(rename = "l")]
    pub late_detections: usize,
    /// Techniques this review met for the first time in its organisation.
    #[serde(rename = "n")]
    pub first_seen: Vec<S>,
    /// The best attribution candidates with their scores.
    #[serde(rename = "a")]
    pub attribution: Vec<(S, f64)>,
    /// The follow-ups the review raised, with their priority (their text is in the
    /// `follow_ups` tree).
    #[serde(rename = "f")]
    pub follow_ups: Vec<(S, Priority)>,
}

/// The first byte of a summary stored in the binary layout (postcard after it). Summaries
/// stored before it are JSON and start with `{`; both are read. The layout is the field order of
/// [`Summary`] and the variant order of [`Priority`]: changing either needs a new tag.
const PACKED: u8 = 1;

impl<S: Serialize> Summary<S> {
    /// The bytes stored in the `summaries` tree.
    pub fn to_stored(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_extend(self, vec![PACKED])
    }
}

/// A stored summary, its strings borrowed from `bytes`: the binary layout or (stored before it)
/// JSON. The error says what is wrong with the bytes.
pub fn from_stored(bytes: &[u8]) -> Result<Summary<Text<'_>>, String> {
    match bytes.first() {
        Some(&PACKED) => postcard::from_bytes(&bytes[1..]).map_err(|e| format!("binary summary: {e}")),
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| format!("JSON summary: {e}")),
        Some(b) => Err(format!("unknown summary format (first byte {b:#04x})")),
        None => Err("empty summary".into()),
    }
}

/// A string borrowed from the bytes it was decoded from, or owned where JSON escapes made that
/// impossible (an incident ID with a quote in it, say).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A follow-up's text, kept once per follow-up ID (the latest review that raised it wins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUpInfo {
    pub kind: String,
    pub priority: Priority,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<chrono::NaiveDate>,
    /// When the incident that first raised it was resolved, never later than the review (the
    /// store keeps the earliest across the reviews that raise it again); the digest shows its
    /// age from this, as its due date counts from the same day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_raised: Option<chrono::DateTime<chrono::Utc>>,
    /// For a follow-up that asks for a detection: the techniques it asks to cover, so the
    /// digest can check the inventory for them later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
}

/// Each ID once, in first-seen order (the digest counts every entry).
fn unique(ids: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

impl<S> Summary<S> {
    /// The same summary with every string passed through `f`.
    fn map_strings<'s, T>(&'s self, f: impl Fn(&'s S) -> T) -> Summary<T> {
        let v = |x: &'s [S]| x.iter().map(&f).collect();
        Summary {
            source: f(&self.source),
            incident_id: f(&self.incident_id),
            revision: self.revision,
            severity: f(&self.severity),
            classification: f(&self.classification),
            determination: f(&self.determination),
            resolved: self.resolved,
            time_to_detect_s: self.time_to_detect_s,
            time_to_resolve_s: self.time_to_resolve_s,
            time_to_acknowledge_s: self.time_to_acknowledge_s,
            benign: self.benign,
            techniques: v(&self.techniques),
            tactics: v(&self.tactics),
            uncovered: v(&self.uncovered),
            blind_stages: v(&self.blind_stages),
            late_detections: self.late_detections,
            first_seen: v(&self.first_seen),
            attribution: self.attribution.iter().map(|(a, b)| (f(a), *b)).collect(),
            follow_ups: self.follow_ups.iter().map(|(a, b)| (f(a), *b)).collect(),
        }
    }
}

impl Summary<Text<'_>> {
    /// The same summary with its strings owned.
    pub fn owned(&self) -> Summary {
        self.map_strings(|s| s.to_string())
    }
}

impl Summary<String> {
    /// The same summary, borrowed (what [`super::compute`] takes).
    pub fn view(&self) -> Summary<Text<'_>> {
        self.map_strings(|s| Text(Cow::Borrowed(s.as_str())))
    }

    /// The summary of a review; `recorded` stands in for a resolution time Graph did not give.
    pub fn of(review: &Review, recorded: DateTime<Utc>) -> Summary {
        let i = &review.incident;
        Summary {
            source: i.source.clone(),
            incident_id: i.id.clone(),
            revision: i.revision,
            severity: i.severity.clone(),
            classification: i.classification.clone(),
            determination: i.determination.clone(),
            resolved: i.resolved.unwrap_or(recorded),
            time_to_detect_s: review.metrics.time_to_detect_s,
            time_to_resolve_s: review.metrics.time_to_resolve_s,
            time_to_acknowledge_s: review.metrics.time_to_acknowledge_s,
            benign: matches!(i.classification.as_str(), "falsePositive" | "informationalExpectedActivity"),
            techniques: unique(
                review
                    .techniques
                    .iter()
                    .filter(|t| t.status != TechniqueStatus::Unknown && t.name.is_some())
                    .map(|t| t.id.clone()),
            ),
            tactics: unique(
                review.tactics.iter().filter(|t| t.state == StageState::Observed).map(|t| t.shortname.clone()),
            ),
            uncovered: unique(review.gaps.uncovered.iter().map(|u| u.id.clone())),
            blind_stages: unique(review.gaps.blind_stages.iter().map(|b| b.tactic.clone())),
            late_detections: review.gaps.late_detections.len(),
            first_seen: unique(review.knowledge_gaps.iter().filter_map(|g| match g {
                KnowledgeGap::FirstSeen { technique, .. } => Some(technique.clone()),
                _ => None,
            })),
            attribution: review
                .attribution
                .iter()
                .take(ATTRIBUTION_PER_REVIEW)
                .map(|c| (c.id.clone(), (c.score * 1000.0).round() / 1000.0))
                .collect(),
            follow_ups: review.follow_ups.iter().map(|f| (f.id.clone(), f.priority)).collect(),
        }
    }

    /// The follow-ups' texts, for the `follow_ups` tree.
    pub fn follow_up_texts(review: &Review) -> impl Iterator<Item = (&str, FollowUpInfo)> {
        review.follow_ups.iter().map(|f| {
            (
                f.id.as_str(),
                FollowUpInfo {
                    kind: f.kind.clone(),
                    priority: f.priority,
                    title: f.title.clone(),
                    owner: f.owner.clone(),
                    due: f.due,
                    first_raised: None,
                    techniques: if f.kind == "add_detection" { f.evidence.techniques.clone() } else { vec![] },
                },
            )
        })
    }
}
