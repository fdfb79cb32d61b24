//! What the digest needs of one review, stored beside it (store tree `summaries`, keyed by the
//! resolution time) when the review is recorded. A digest reads these few hundred bytes per
//! incident instead of whole reviews (tens of kilobytes each, layer included): that is what makes
//! a digest over 100,000 reviews a matter of a fraction of a second.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::review::{KnowledgeGap, Priority, Review, StageState, TechniqueStatus};

/// How many attribution candidates of each review the digest looks at.
pub const ATTRIBUTION_PER_REVIEW: usize = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub source: String,
    pub incident_id: String,
    pub revision: u32,
    pub title: String,
    pub severity: String,
    pub classification: String,
    pub determination: String,
    /// When the incident was resolved (the review's time if Graph gave none): what places a
    /// review in a digest period.
    pub resolved: DateTime<Utc>,
    pub time_to_detect_s: Option<i64>,
    pub time_to_resolve_s: Option<i64>,
    /// A false positive or expected activity: counted, but kept out of technique trends and gaps.
    pub benign: bool,
    /// Known techniques observed: (ID, name).
    pub techniques: Vec<(String, String)>,
    /// Tactics observed: (shortname, name).
    pub tactics: Vec<(String, String)>,
    /// Observed techniques the detection inventory does not cover: (ID, name).
    pub uncovered: Vec<(String, String)>,
    /// Blind stages: (shortname, name).
    pub blind_stages: Vec<(String, String)>,
    pub late_detections: usize,
    /// Techniques this review met for the first time in its organisation: (ID, name).
    pub first_seen: Vec<(String, String)>,
    pub attribution: Vec<Candidate>,
    pub follow_ups: Vec<FollowUpRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUpRef {
    pub id: String,
    pub kind: String,
    pub priority: Priority,
    pub title: String,
}

impl Summary {
    /// The summary of a review; `recorded` stands in for a resolution time Graph did not give.
    pub fn of(review: &Review, recorded: DateTime<Utc>) -> Summary {
        let i = &review.incident;
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        Summary {
            source: i.source.clone(),
            incident_id: i.id.clone(),
            revision: i.revision,
            title: i.title.clone(),
            severity: i.severity.clone(),
            classification: i.classification.clone(),
            determination: i.determination.clone(),
            resolved: i.resolved.unwrap_or(recorded),
            time_to_detect_s: review.metrics.time_to_detect_s,
            time_to_resolve_s: review.metrics.time_to_resolve_s,
            benign: matches!(i.classification.as_str(), "falsePositive" | "informationalExpectedActivity"),
            techniques: review
                .techniques
                .iter()
                .filter(|t| t.status != TechniqueStatus::Unknown)
                .filter_map(|t| t.name.as_deref().map(|n| pair(&t.id, n)))
                .collect(),
            tactics: review
                .tactics
                .iter()
                .filter(|t| t.state == StageState::Observed)
                .map(|t| pair(&t.shortname, &t.name))
                .collect(),
            uncovered: review.gaps.uncovered.iter().map(|u| pair(&u.id, &u.name)).collect(),
            blind_stages: review.gaps.blind_stages.iter().map(|b| pair(&b.tactic, &b.name)).collect(),
            late_detections: review.gaps.late_detections.len(),
            first_seen: review
                .knowledge_gaps
                .iter()
                .filter_map(|g| match g {
                    KnowledgeGap::FirstSeen { technique, name } => Some(pair(technique, name)),
                    _ => None,
                })
                .collect(),
            attribution: review
                .attribution
                .iter()
                .take(ATTRIBUTION_PER_REVIEW)
                .map(|c| Candidate {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    kind: match c.kind {
                        crate::review::CandidateKind::Group => "group".into(),
                        crate::review::CandidateKind::Campaign => "campaign".into(),
                    },
                    score: c.score,
                })
                .collect(),
            follow_ups: review
                .follow_ups
                .iter()
                .map(|f| FollowUpRef {
                    id: f.id.clone(),
                    kind: f.kind.clone(),
                    priority: f.priority,
                    title: f.title.clone(),
                })
                .collect(),
        }
    }
}
