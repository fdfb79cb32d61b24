//! The tenant's earlier incidents that resemble this one, and whether its way in recurs.
//!
//! The history is an argument (the store keeps a compact [`PastIncident`] per reviewed
//! incident and source): the review stays a pure function.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::model::*;
use super::{History, PastIncident};

/// How far back similar incidents are looked for.
pub const WINDOW_DAYS: i64 = super::SIMILAR_WINDOW_DAYS;
/// "Within six months" for recurrence.
const RECURRENCE_DAYS: i64 = 183;
/// How many similar incidents a review lists.
const MAX_SIMILAR: usize = 5;

pub const NIS2_NOTE: &str = "EU NIS2 implementing rules (Commission Implementing Regulation (EU) 2024/2690) treat incidents that recur within six months with the same apparent root cause as one significant incident: assess them together for reporting.";

/// What a later review needs of this one.
pub fn past_incident(review: &Review) -> PastIncident {
    let s = &review.incident;
    PastIncident {
        id: s.id.clone(),
        title: s.title.clone(),
        created: s.created.or(review.metrics.first_alert),
        alert_titles: sorted(review.alerts.iter().map(|a| a.title.clone())),
        techniques: sorted(review.techniques.iter().filter(|t| t.name.is_some()).map(|t| t.id.clone())),
        entities: entity_keys(review),
        initial_access: review.story.initial_access.techniques.clone(),
        root_cause: review.story.root_cause.as_ref().map(|r| r.text.clone()),
        tenant_id: s.tenant_id.clone(),
    }
}

/// Similar incidents of a review already told (its story's way in and root cause).
#[allow(dead_code)] // Engine::review calls `find_for` with the story being told; tests call this.
pub(crate) fn find(review: &Review, history: &History) -> (Vec<SimilarIncident>, Option<Recurring>) {
    find_for(review, &review.story, history)
}

/// [`find`] with the story being told (the way in and root cause found so far).
pub(crate) fn find_for(
    review: &Review,
    story: &Story,
    history: &History,
) -> (Vec<SimilarIncident>, Option<Recurring>) {
    let me = Probe::of(review, story);
    let earlier: Vec<&PastIncident> = history.incidents.iter().filter(|p| me.precedes(p, WINDOW_DAYS)).collect();
    let mut found: Vec<(u32, SimilarIncident)> =
        earlier.iter().filter_map(|p| me.compare(p)).map(|s| (score(&s), s)).collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.created.cmp(&a.1.created)).then_with(|| a.1.id.cmp(&b.1.id)));
    let similar: Vec<SimilarIncident> = found.into_iter().take(MAX_SIMILAR).map(|(_, s)| s).collect();
    (similar, recurring(review, &me, &earlier))
}

/// This incident's side of the comparison.
struct Probe<'a> {
    id: &'a str,
    tenant: Option<&'a str>,
    at: Option<DateTime<Utc>>,
    titles: BTreeSet<String>,
    techniques: BTreeSet<String>,
    entities: BTreeSet<String>,
    initial_access: BTreeSet<String>,
    root_cause: Option<String>,
}

impl<'a> Probe<'a> {
    fn of(review: &'a Review, story: &Story) -> Self {
        let s = &review.incident;
        Probe {
            id: &s.id,
            tenant: s.tenant_id.as_deref(),
            at: s.created.or(review.metrics.first_alert).or(review.metrics.first_activity),
            titles: review.alerts.iter().map(|a| a.title.to_lowercase()).collect(),
            techniques: review.techniques.iter().filter(|t| t.name.is_some()).map(|t| t.id.clone()).collect(),
            entities: entity_keys(review).into_iter().collect(),
            initial_access: story.initial_access.techniques.iter().cloned().collect(),
            root_cause: story.root_cause.as_ref().map(|r| normal(&r.text)),
        }
    }

    /// An earlier incident of the same tenant, within `days` before this one (any stored one
    /// when this incident's time is unknown), and not this incident.
    fn precedes(&self, p: &PastIncident, days: i64) -> bool {
        if p.id == self.id || matches!((self.tenant, p.tenant_id.as_deref()), (Some(a), Some(b)) if a != b) {
            return false;
        }
        match (self.at, p.created) {
            (Some(me), Some(then)) => then <= me && me - then <= Duration::days(days),
            (None, _) => true,
            (Some(_), None) => false,
        }
    }

    fn same_way_in(&self, p: &PastIncident) -> bool {
        let technique = p.initial_access.iter().any(|t| self.initial_access.contains(t));
        let cause = matches!((&self.root_cause, &p.root_cause), (Some(a), Some(b)) if *a == normal(b));
        technique || cause
    }

    fn compare(&self, p: &PastIncident) -> Option<SimilarIncident> {
        let shared_entities: Vec<String> = p.entities.iter().filter(|e| self.entities.contains(*e)).cloned().collect();
        let shared_techniques: Vec<String> =
            p.techniques.iter().filter(|t| self.techniques.contains(*t)).cloned().collect();
        let shared_titles: Vec<String> =
            p.alert_titles.iter().filter(|t| self.titles.contains(&t.to_lowercase())).cloned().collect();
        let same_way_in = self.same_way_in(p);
        // One common technique alone (T1059 in half of all incidents) is no resemblance.
        let alike =
            same_way_in || !shared_entities.is_empty() || !shared_titles.is_empty() || shared_techniques.len() >= 2;
        alike.then(|| SimilarIncident {
            id: p.id.clone(),
            title: p.title.clone(),
            created: p.created,
            shared_entities,
            shared_techniques,
            shared_titles,
            same_way_in,
        })
    }
}

/// Rank by what is shared: the way in first, then entities, titles, techniques.
fn score(s: &SimilarIncident) -> u32 {
    let n = |v: &Vec<String>| u32::try_from(v.len()).unwrap_or(u32::MAX);
    u32::from(s.same_way_in) * 1_000 + n(&s.shared_entities) * 3 + n(&s.shared_titles) * 2 + n(&s.shared_techniques)
}

/// The same way in seen in at least one earlier incident within six months (so twice or more
/// with this one). Not for false positives or expected activity: no attack recurred.
fn recurring(review: &Review, me: &Probe, earlier: &[&PastIncident]) -> Option<Recurring> {
    if matches!(review.incident.classification.as_str(), "falsePositive" | "informationalExpectedActivity") {
        return None;
    }
    let back: Vec<&PastIncident> =
        earlier.iter().copied().filter(|p| me.precedes(p, RECURRENCE_DAYS) && me.same_way_in(p)).collect();
    if back.is_empty() {
        return None;
    }
    let techniques: BTreeSet<&String> =
        back.iter().flat_map(|p| p.initial_access.iter()).filter(|t| me.initial_access.contains(*t)).collect();
    let what = if techniques.is_empty() {
        format!("root cause \"{}\"", review.story.root_cause.as_ref().map_or("", |r| r.text.as_str()))
    } else {
        let names: Vec<String> = techniques.iter().map(|t| label(review, t)).collect();
        format!("Initial Access {}", names.join(", "))
    };
    let mut incidents: Vec<String> = back.iter().map(|p| p.id.clone()).collect();
    incidents.sort();
    incidents.dedup();
    let note = format!(
        "The same way in ({what}) was seen in {} earlier incident(s) of this tenant within six months ({}): {} times with this one. {NIS2_NOTE}",
        incidents.len(),
        incidents.join(", "),
        incidents.len() + 1
    );
    Some(Recurring { what, incidents, note })
}

fn label(review: &Review, id: &str) -> String {
    match review.techniques.iter().find(|t| t.id == id).and_then(|t| t.name.as_deref()) {
        Some(name) => format!("{id} {name}"),
        None => id.to_owned(),
    }
}

/// "kind:name" in lower case: how entities are matched across incidents.
fn entity_keys(review: &Review) -> Vec<String> {
    sorted(review.incident.entities.iter().map(|e| format!("{}:{}", e.kind, e.name).to_lowercase()))
}

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let set: BTreeSet<String> = items.collect();
    set.into_iter().collect()
}

/// A root cause compared as words: case, spaces and punctuation aside.
fn normal(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ").to_lowercase()
}
