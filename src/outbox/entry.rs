//! One notification to one destination, its state, and its stable idempotency key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::review::Review;

/// The version of the event envelope of new entries (`schemas/webhook-event.v2.json`: a v2
/// review). An entry keeps the version it was written with ([`OutboxEntry::schema_version`]):
/// a receiver that parses v1 is not handed a v2 envelope for an entry queued before an upgrade.
pub const EVENT_SCHEMA_VERSION: u32 = 2;

/// The version of an entry whose body does not say (none was written so; the envelope has
/// carried `schema_version` since version 1).
const FIRST_EVENT_SCHEMA_VERSION: u32 = 1;

/// The event of a resolution's first review.
pub const REVIEW_CREATED: &str = "review.created";
/// The event of a later revision's review (the incident was reopened and resolved again).
pub const REVIEW_REVISED: &str = "review.revised";
/// The event of a review amended with its retro-hunts' results (same resolution, same review).
pub const REVIEW_HUNTED: &str = "review.hunted";
/// The event name of digests (whatever their schedule: the name is part of the published contract).
pub const DIGEST_EVENT: &str = "digest.weekly";

/// The event a review is published as.
pub fn review_event(review: &Review) -> &'static str {
    if review.incident.revision > 1 { REVIEW_REVISED } else { REVIEW_CREATED }
}

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
    /// The earliest next attempt the destination itself asked for (its `Retry-After`): a
    /// destination that answers again brings its waiting entries forward, but never past this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// The event body as published (`schemas/webhook-event.v2.json`; v1 for entries written
    /// before it). Entries written with their
    /// review leave the review out (it is in the store already) and it is joined at delivery.
    pub body: serde_json::Value,
    /// For a digest: its id in the store, joined at delivery like a review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The idempotency key of `subject`'s notification to a destination: the same subject (a
/// resolution key, a digest id) and destination always give the same key, so a receiver can
/// drop a repeated delivery.
pub fn entry_id(subject: &[u8], destination: &str) -> String {
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
            not_before: None,
            body,
            digest: None,
        }
    }

    /// The event schema version the entry was written with: its envelope's `schema_version`,
    /// kept in the stored body, so an entry queued before an upgrade is delivered as it was
    /// written (v1), and new entries as [`EVENT_SCHEMA_VERSION`].
    pub fn schema_version(&self) -> u32 {
        self.body
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(FIRST_EVENT_SCHEMA_VERSION)
    }

    /// The entry of `review` (whose resolution key is `subject`) for `destination`. The review
    /// itself stays out of the entry (the store keeps it once); delivery joins it.
    pub fn for_review(subject: &[u8], review: &Review, destination: &str, now: DateTime<Utc>) -> OutboxEntry {
        OutboxEntry {
            incident_id: review.incident.id.clone(),
            revision: review.incident.revision,
            ..OutboxEntry::pending(
                entry_id(subject, destination),
                destination,
                review_event(review),
                review.incident.source.clone(),
                now,
            )
        }
    }

    /// The entry announcing that `review` was amended with its retro-hunts: its own
    /// idempotency key (the review's notification may still be waiting), the same review.
    pub fn for_hunted(subject: &[u8], review: &Review, destination: &str, now: DateTime<Utc>) -> OutboxEntry {
        let mut entry = OutboxEntry::for_review(&[subject, b"\0hunted"].concat(), review, destination, now);
        entry.event = REVIEW_HUNTED.to_owned();
        entry.body["event"] = serde_json::Value::String(REVIEW_HUNTED.to_owned());
        entry
    }

    /// The entry of `digest` for `destination`; the digest is joined at delivery like a review.
    pub fn for_digest(digest: &Digest, destination: &str, now: DateTime<Utc>) -> OutboxEntry {
        let source = if digest.scope.is_empty() { "*".to_owned() } else { digest.scope.join(",") };
        OutboxEntry {
            digest: Some(digest.id.clone()),
            ..OutboxEntry::pending(entry_id(digest.id.as_bytes(), destination), destination, DIGEST_EVENT, source, now)
        }
    }
}

/// What a notification carries, typed: joined from the store when it is delivered, and read by
/// every sink and preset as the typed review or digest (JSON only at the edge, where a body is
/// written).
#[derive(Debug, Clone)]
pub enum Payload {
    Review(Box<Review>),
    Digest(Box<Digest>),
}

impl Payload {
    /// The published event (`schemas/webhook-event.v2.json`): the entry's envelope with what it
    /// carries, at the version the entry was written with.
    pub fn event(&self, entry: &OutboxEntry) -> serde_json::Value {
        let mut body = entry.body.clone();
        let (field, value) = match self {
            Payload::Review(r) => ("review", serde_json::to_value(r)),
            Payload::Digest(d) => ("digest", serde_json::to_value(d)),
        };
        if let Some(o) = body.as_object_mut() {
            o.insert(field.to_owned(), value.unwrap_or_default());
        }
        body
    }

    /// What an entry written with its review or digest in the body carries, or `None` when the
    /// body holds only the envelope (`Err`: it holds one that does not read).
    pub fn in_body(entry: &OutboxEntry) -> Option<Result<Payload, String>> {
        let (field, value) = ["review", "digest"].into_iter().find_map(|f| entry.body.get(f).map(|v| (f, v)))?;
        Some(
            match field {
                "review" => serde_json::from_value(value.clone()).map(|r| Payload::Review(Box::new(r))),
                _ => serde_json::from_value(value.clone()).map(|d| Payload::Digest(Box::new(d))),
            }
            .map_err(|e| format!("the {field} in the notification's body does not read: {e}")),
        )
    }
}

/// The entry with the review in its body, as it is sent (previews, tests, entries written
/// without their review in the store).
pub fn with_review(mut entry: OutboxEntry, review: &Review) -> OutboxEntry {
    entry.body["review"] = serde_json::to_value(review).unwrap_or_default();
    entry
}

/// The entry with the digest in its body, as it is sent.
pub fn with_digest(mut entry: OutboxEntry, digest: &Digest) -> OutboxEntry {
    entry.body["digest"] = serde_json::to_value(digest).unwrap_or_default();
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// An entry queued by Hindsight before the v2 event (its stored JSON) keeps version 1 in
    /// what is sent; a new entry is version 2.
    #[test]
    fn entries_keep_the_event_version_they_were_written_with() {
        let now: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().unwrap();
        let stored = serde_json::json!({
            "id": "hs_1", "destination": "d", "event": "review.created", "source": "contoso",
            "incident_id": "1077", "revision": 1, "created_at": now, "attempts": 0,
            "next_attempt_at": now, "state": "pending", "last_error": null,
            "body": {"schema_version": 1, "event": "review.created", "id": "hs_1", "occurred_at": now,
                "source": "contoso"}
        });
        let old: OutboxEntry = serde_json::from_value(stored).unwrap();
        assert_eq!(old.schema_version(), 1);
        let mut bare = old.clone();
        bare.body.as_object_mut().unwrap().remove("schema_version");
        assert_eq!(bare.schema_version(), 1, "a body without a version is read as v1");
        let new = OutboxEntry::pending("hs_2".into(), "d", REVIEW_CREATED, "contoso".into(), now);
        assert_eq!((new.schema_version(), new.body["schema_version"].as_u64()), (2, Some(2)));
        // Written and read back, the new entry stays v2.
        let back: OutboxEntry = serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(back.schema_version(), 2);
    }

    /// The key is a published contract (`webhook-id`): it must not change between versions.
    #[test]
    fn idempotency_keys_are_stable() {
        assert_eq!(entry_id(b"tenant\0inc-1\0\0\0\0\x01", "teams"), entry_id(b"tenant\0inc-1\0\0\0\0\x01", "teams"));
        assert_ne!(entry_id(b"a", "teams"), entry_id(b"a", "mail"));
        assert_eq!(entry_id(b"a", "d").len(), 3 + 32);
    }
}
