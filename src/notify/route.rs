//! Routing: which events and which incidents a destination receives. Every condition that is
//! set must hold; an empty route takes everything.

use serde::Deserialize;

use chrono::{DateTime, Utc};

use crate::config::Invalid;
use crate::digest::Digest;
use crate::model::Severity;
use crate::outbox::{DIGEST_EVENT, OutboxEntry, REVIEW_CREATED, REVIEW_HUNTED, REVIEW_REVISED, review_event};
use crate::review::Review;
use crate::store::ResolutionKey;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Events to send (`review.created`, `review.revised`, `review.hunted`, `digest.weekly`);
    /// empty = all but `review.hunted`, which a destination gets only by naming it (it repeats
    /// the review with its hunts' results: a second e-mail is not everyone's wish).
    #[serde(default)]
    pub events: Vec<String>,
    /// Lowest severity sent (`informational`, `low`, `medium`, `high`).
    #[serde(default)]
    pub min_severity: Option<String>,
    /// Graph classifications sent (e.g. `truePositive`); empty = all.
    #[serde(default)]
    pub classifications: Vec<String>,
    #[serde(default)]
    pub determinations: Vec<String>,
    /// Source (tenant) names sent; empty = all.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Incidents carrying at least one of these tags; empty = all.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A destination and the route to it, as the review stage needs them.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub destination: String,
    pub route: Route,
}

impl Subscription {
    pub fn everything(destination: &str) -> Subscription {
        Subscription { destination: destination.to_owned(), route: Route::default() }
    }
}

fn any_eq(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(value))
}

impl Route {
    /// Every problem with the route's settings, each naming its key.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        if let Some(s) = &self.min_severity
            && Severity::parse(s).rank() == 0
        {
            out.push(Invalid::new("min_severity", format!("{s:?} is not informational, low, medium or high")));
        }
        for e in &self.events {
            if ![REVIEW_CREATED, REVIEW_REVISED, REVIEW_HUNTED, DIGEST_EVENT].contains(&e.as_str()) {
                out.push(Invalid::new(
                    "events",
                    format!("{e:?} is not review.created, review.revised, review.hunted or digest.weekly"),
                ));
            }
        }
        out
    }

    pub fn takes(&self, event: &str) -> bool {
        if event == REVIEW_HUNTED {
            return self.events.iter().any(|e| e == REVIEW_HUNTED);
        }
        any_eq(&self.events, event)
    }

    /// The sources a digest for this route covers (sorted; empty = all). Severity, classification
    /// and tag filters choose single incidents and do not apply to digests.
    pub fn scope(&self) -> Vec<String> {
        let mut s: Vec<String> = self.sources.clone();
        s.sort();
        s.dedup();
        s
    }

    pub fn accepts(&self, event: &str, review: &Review) -> bool {
        let i = &review.incident;
        let severe_enough = self
            .min_severity
            .as_deref()
            .is_none_or(|m| Severity::parse(&i.severity).rank() >= Severity::parse(m).rank());
        let tagged = self.tags.is_empty() || i.tags.iter().any(|t| any_eq(&self.tags, t));
        self.takes(event)
            && severe_enough
            && any_eq(&self.classifications, &i.classification)
            && any_eq(&self.determinations, &i.determination)
            && any_eq(&self.sources, &i.source)
            && tagged
    }
}

/// The outbox entries of a new review: one per destination whose route accepts it.
pub fn entries_for(
    resolution: &ResolutionKey,
    review: &Review,
    subscriptions: &[Subscription],
    now: DateTime<Utc>,
) -> Vec<OutboxEntry> {
    let event = review_event(review);
    subscriptions
        .iter()
        .filter(|s| s.route.accepts(event, review))
        .map(|s| OutboxEntry::for_review(&resolution.0, review, &s.destination, now))
        .collect()
}

/// The outbox entries announcing `review`'s retro-hunts: one per destination whose route names
/// `review.hunted` and accepts the review.
pub fn entries_for_hunted(
    resolution: &ResolutionKey,
    review: &Review,
    subscriptions: &[Subscription],
    now: DateTime<Utc>,
) -> Vec<OutboxEntry> {
    subscriptions
        .iter()
        .filter(|s| s.route.accepts(REVIEW_HUNTED, review))
        .map(|s| OutboxEntry::for_hunted(&resolution.0, review, &s.destination, now))
        .collect()
}

/// The outbox entries of a digest: one per destination whose route takes digests and whose
/// sources are the digest's scope (each destination gets the digest of what it is routed).
pub fn entries_for_digest(digest: &Digest, subscriptions: &[Subscription], now: DateTime<Utc>) -> Vec<OutboxEntry> {
    subscriptions
        .iter()
        .filter(|s| s.route.takes(DIGEST_EVENT) && s.route.scope() == digest.scope)
        .map(|s| OutboxEntry::for_digest(digest, &s.destination, now))
        .collect()
}
