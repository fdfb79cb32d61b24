//! Notifications: the durable outbox and the sinks that deliver it.
//!
//! A review's notifications are written to the store's outbox in the same transaction as the
//! review ([`crate::store::Store::record_review`]); [`deliver_due`] sends what is due and only
//! then records the outcome, so a crash between the two repeats a delivery (with the same
//! `webhook-id`), never loses one. Failed attempts are retried on a schedule with jitter,
//! honouring `Retry-After`; after the retry budget an entry is dead-lettered and says why.
//!
//! One module per sink, each with its own typed config; [`Sink`] and [`SinkKind`] (in `sink.rs`)
//! name them and delegate.

pub mod email;
pub mod folder;
pub mod oauth;
pub mod presets;
pub mod route;
mod sink;
pub mod webhook;

pub use route::{Route, Subscription};
pub use sink::{DeliveryError, Destination, Sink, SinkKind};

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::review::Review;
use crate::store::{ResolutionKey, Store};

pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// The event name of digests (whatever their schedule: the name is part of the published contract).
pub const DIGEST_EVENT: &str = "digest.weekly";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EntryState {
    Pending,
    Delivered { at: DateTime<Utc> },
    Dead { at: DateTime<Utc>, reason: String },
}

impl EntryState {
    /// Every state's name: the same words as the `state` tag written in the store, so a reader
    /// that skips the body (the outbox counts) can map the tag without parsing the entry.
    pub const LABELS: [&'static str; 3] = ["pending", "delivered", "dead"];

    /// The state's name, as `hindsight outbox list`, the gauges and `/readyz` show it.
    pub fn label(&self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Delivered { .. } => "delivered",
            EntryState::Dead { .. } => "dead",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The idempotency key: stable per (review revision, destination); sent as `webhook-id`.
    pub id: String,
    pub destination: String,
    pub event: String,
    pub source: String,
    pub incident_id: String,
    pub revision: u32,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    #[serde(flatten)]
    pub state: EntryState,
    pub last_error: Option<String>,
    /// The event body as published (`schemas/webhook-event.v1.json`). Entries written with their
    /// review leave the review out (it is in the store already) and it is joined at delivery.
    pub body: serde_json::Value,
    /// For a digest: its id in the store, joined at delivery like a review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The idempotency key of a resolution's notification to a destination.
pub fn entry_id(resolution: &ResolutionKey, destination: &str) -> String {
    hashed_id(&resolution.0, destination)
}

fn hashed_id(subject: &[u8], destination: &str) -> String {
    let h = Sha256::digest([subject, b"\0", destination.as_bytes()].concat());
    format!("hs_{}", h.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>())
}

impl OutboxEntry {
    /// A new pending entry whose body is the event's envelope (`schema_version`, `event`, `id`,
    /// `occurred_at`, `source`); what it carries is joined at delivery.
    fn pending(id: String, destination: &str, event: &str, source: String, now: DateTime<Utc>) -> OutboxEntry {
        let body = serde_json::json!({
            "schema_version": EVENT_SCHEMA_VERSION,
            "event": event,
            "id": id,
            "occurred_at": now,
            "source": source,
        });
        OutboxEntry {
            id,
            destination: destination.to_owned(),
            event: event.to_owned(),
            source,
            incident_id: String::new(),
            revision: 0,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            state: EntryState::Pending,
            last_error: None,
            body,
            digest: None,
        }
    }
}

/// The outbox entries of a new review: one per destination whose route accepts it. The review
/// itself stays out of the entries (the store keeps it once); [`deliver_due`] joins it.
pub fn entries_for(
    resolution: &ResolutionKey,
    review: &Review,
    subscriptions: &[Subscription],
    now: DateTime<Utc>,
) -> Vec<OutboxEntry> {
    let event = if review.incident.revision > 1 { "review.revised" } else { "review.created" };
    subscriptions
        .iter()
        .filter(|s| s.route.accepts(event, review))
        .map(|s| OutboxEntry {
            incident_id: review.incident.id.clone(),
            revision: review.incident.revision,
            ..OutboxEntry::pending(
                entry_id(resolution, &s.destination),
                &s.destination,
                event,
                review.incident.source.clone(),
                now,
            )
        })
        .collect()
}

/// The outbox entries of a digest: one per destination whose route takes digests and whose
/// sources are the digest's scope (each destination gets the digest of what it is routed).
pub fn entries_for_digest(
    digest: &crate::digest::Digest,
    subscriptions: &[Subscription],
    now: DateTime<Utc>,
) -> Vec<OutboxEntry> {
    subscriptions
        .iter()
        .filter(|s| s.route.takes(DIGEST_EVENT) && s.route.scope() == digest.scope)
        .map(|s| {
            let source = if digest.scope.is_empty() { "*".to_owned() } else { digest.scope.join(",") };
            OutboxEntry {
                digest: Some(digest.id.clone()),
                ..OutboxEntry::pending(
                    hashed_id(digest.id.as_bytes(), &s.destination),
                    &s.destination,
                    DIGEST_EVENT,
                    source,
                    now,
                )
            }
        })
        .collect()
}

/// The entry with the review in its body, as it is sent (previews, tests, entries written
/// without their review in the store).
pub fn with_review(mut entry: OutboxEntry, review: &Review) -> OutboxEntry {
    entry.body["review"] = serde_json::to_value(review).unwrap_or_default();
    entry
}

/// The entry with the digest in its body, as it is sent.
pub fn with_digest(mut entry: OutboxEntry, digest: &crate::digest::Digest) -> OutboxEntry {
    entry.body["digest"] = serde_json::to_value(digest).unwrap_or_default();
    entry
}

/// Whether the entry's body holds what it carries (a review or a digest), as it is sent.
fn is_complete(entry: &OutboxEntry) -> bool {
    entry.body.get("review").is_some() || entry.body.get("digest").is_some()
}

/// What a delivery task did with its entry.
enum Attempted {
    /// The daemon was stopping before a permit came: nothing sent, the entry stays as it was.
    Stopped,
    /// Its review or digest is not in the store: it can never be sent.
    Unsendable(String),
    Sent(Result<(), DeliveryError>),
}

/// Joins the stored review or digest to an entry that left it out; `Err` says why it cannot be sent.
fn complete(store: &Store, entry: OutboxEntry) -> crate::store::Result<Result<OutboxEntry, (OutboxEntry, String)>> {
    if is_complete(&entry) {
        return Ok(Ok(entry));
    }
    if let Some(id) = entry.digest.clone() {
        return Ok(match store.digest(&id)? {
            Some(d) => Ok(with_digest(entry, &d)),
            None => Err((entry, format!("the digest {id} this notification carries is not in the store"))),
        });
    }
    let key = ResolutionKey::new(&entry.source, &entry.incident_id, entry.revision);
    Ok(match store.review(&key)? {
        Some(review) => Ok(with_review(entry, &review)),
        None => Err((entry, "the review this notification carries is not in the store".to_owned())),
    })
}

/// When to try again: Standard Webhooks' schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h,
/// about 27 h in all), each delay varied by ±20 % so that a receiver coming back is not hit by
/// every sender at once. `None` once the budget is spent.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub schedule: Vec<Duration>,
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let m = |x: u64| Duration::from_secs(x * 60);
        RetryPolicy {
            schedule: vec![Duration::from_secs(5), m(5), m(30), m(120), m(300), m(600), m(600)],
            budget: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt number `attempts + 1`, or `None` when the entry should die.
    pub fn next_delay(&self, attempts: u32, age: Duration, retry_after: Option<Duration>) -> Option<Duration> {
        if age >= self.budget {
            return None;
        }
        let base = self.schedule.get(attempts.saturating_sub(1) as usize).copied()?;
        let jitter = base.mul_f64(rand::Rng::random_range(&mut rand::rng(), 0.8..=1.2));
        let delay = retry_after.map_or(jitter, |r| r.max(jitter));
        (age + delay <= self.budget).then_some(delay)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryPass {
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
    /// Entries for a destination that is no longer configured (left pending, reported).
    pub orphaned: usize,
    /// Per destination tried in this pass: `None` when at least one attempt went through,
    /// otherwise the last failure (what `/readyz` reports of a destination that is down).
    pub outcomes: std::collections::BTreeMap<String, Option<String>>,
}

/// Delivers every due entry, at most `concurrency` at once, and records each outcome durably.
pub async fn deliver_due(
    store: &Store,
    destinations: &[Destination],
    policy: &RetryPolicy,
    concurrency: usize,
    now: DateTime<Utc>,
) -> crate::store::Result<DeliveryPass> {
    deliver_due_until(store, destinations, policy, concurrency, now, &tokio_util::sync::CancellationToken::new()).await
}

/// [`deliver_due`], starting no new attempt once `stop` is cancelled: attempts under way are
/// finished and recorded, the entries not yet tried stay pending as they were.
pub async fn deliver_due_until(
    store: &Store,
    destinations: &[Destination],
    policy: &RetryPolicy,
    concurrency: usize,
    now: DateTime<Utc>,
    stop: &tokio_util::sync::CancellationToken,
) -> crate::store::Result<DeliveryPass> {
    let mut pass = DeliveryPass::default();
    let due = store.outbox_due(now)?;
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for entry in due {
        let Some(dest) = destinations.iter().find(|d| d.name == entry.destination) else {
            pass.orphaned += 1;
            tracing::warn!(destination = %entry.destination, id = %entry.id, "no such destination configured; entry left pending");
            continue;
        };
        let sink = dest.sink.clone();
        let permit = semaphore.clone().acquire_owned();
        let stop = stop.clone();
        let store = store.clone();
        tasks.spawn(async move {
            let _permit = tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok((entry, Attempted::Stopped)),
                p = permit => p,
            };
            // The review is joined only once a permit is held: at most `concurrency` full
            // bodies are in memory, not one per due entry (a backlog of 10,000 held them all,
            // about 1.5 GB).
            let had_review = is_complete(&entry);
            let mut entry = match complete(&store, entry)? {
                Ok(e) => e,
                Err((e, reason)) => return Ok((e, Attempted::Unsendable(reason))),
            };
            let result = sink.deliver(&entry, now).await;
            // The stored entry keeps the slim envelope; the review stays in its own tree.
            if !had_review && let Some(body) = entry.body.as_object_mut() {
                body.remove("review");
                body.remove("digest");
            }
            Ok::<_, crate::store::StoreError>((entry, Attempted::Sent(result)))
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let Ok(done) = joined else { continue };
        let (mut entry, result) = match done? {
            (_, Attempted::Stopped) => continue,
            (mut e, Attempted::Unsendable(reason)) => {
                tracing::error!(id = %e.id, "dead-lettered: {reason}");
                e.state = EntryState::Dead { at: now, reason: reason.clone() };
                e.last_error = Some(reason);
                pass.dead += 1;
                store.update_outbox(&e)?;
                continue;
            }
            (e, Attempted::Sent(result)) => (e, result),
        };
        entry.attempts += 1;
        let outcome = pass.outcomes.entry(entry.destination.clone()).or_insert_with(|| Some(String::new()));
        match &result {
            Ok(()) => *outcome = None,
            Err(DeliveryError::Permanent { reason } | DeliveryError::Retry { reason, .. }) => {
                if outcome.is_some() {
                    *outcome = Some(reason.clone());
                }
            }
        }
        match result {
            Ok(()) => {
                metrics::counter!("hindsight_deliveries_total", "destination" => entry.destination.clone(), "outcome" => "delivered").increment(1);
                entry.state = EntryState::Delivered { at: now };
                entry.last_error = None;
                pass.delivered += 1;
                tracing::info!(destination = %entry.destination, id = %entry.id, attempts = entry.attempts, "delivered");
            }
            Err(DeliveryError::Permanent { reason }) => {
                metrics::counter!("hindsight_dead_letters_total", "destination" => entry.destination.clone())
                    .increment(1);
                tracing::error!(destination = %entry.destination, id = %entry.id, "dead-lettered: {reason}");
                entry.state = EntryState::Dead { at: now, reason: reason.clone() };
                entry.last_error = Some(reason);
                pass.dead += 1;
            }
            Err(DeliveryError::Retry { after, reason }) => {
                let age = (now - entry.created_at).to_std().unwrap_or_default();
                match policy.next_delay(entry.attempts, age, after) {
                    Some(delay) => {
                        metrics::counter!("hindsight_deliveries_total", "destination" => entry.destination.clone(), "outcome" => "retry").increment(1);
                        entry.next_attempt_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                        tracing::warn!(destination = %entry.destination, id = %entry.id, attempts = entry.attempts, "{reason}; retrying in {delay:?}");
                        entry.last_error = Some(reason);
                        pass.retried += 1;
                    }
                    None => {
                        metrics::counter!("hindsight_dead_letters_total", "destination" => entry.destination.clone())
                            .increment(1);
                        let reason = format!("retry budget spent after {} attempts; last: {reason}", entry.attempts);
                        tracing::error!(destination = %entry.destination, id = %entry.id, "dead-lettered: {reason}");
                        entry.state = EntryState::Dead { at: now, reason: reason.clone() };
                        entry.last_error = Some(reason);
                        pass.dead += 1;
                    }
                }
            }
        }
        store.update_outbox(&entry)?;
    }
    store.flush_async().await?;
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::EntryState;

    /// The outbox counts map the stored `state` tag through `LABELS`; a variant whose serde tag
    /// drifted from its label would be reported as corrupt store data.
    #[test]
    fn state_tags_labels_and_label_list_agree() {
        let at = chrono::Utc::now();
        let states = [EntryState::Pending, EntryState::Delivered { at }, EntryState::Dead { at, reason: "410".into() }];
        for state in &states {
            let json = serde_json::to_value(state).unwrap();
            assert_eq!(json["state"], state.label(), "{state:?}");
            assert!(EntryState::LABELS.contains(&state.label()), "{state:?}");
        }
        assert_eq!(states.len(), EntryState::LABELS.len());
    }
}
