//! Retention: how long the store keeps what it no longer needs. Without it the store grows with
//! every incident for as long as the daemon runs (about 47 KiB per incident in the soak of
//! RELIABILITY.md: the review, its notifications, the resolution's snapshot), and sled's memory
//! grows with the store.
//!
//! Three kinds of record age out, each found through an index by age so that a pass reads only
//! what it removes:
//! - reviews (`reviewed`): the review, its digest summary and the resolution snapshot it was
//!   made from, counted from when the review was made. The incident's latest snapshot is then
//!   compacted to what telling a later update from a new resolution needs (status, last update,
//!   resolution count), so that an incident seen again gets the next revision, never one
//!   already sent under the same idempotency key. Follow-up texts (`follow_ups`) go once no
//!   review made since raised them.
//! - delivered notifications and dead letters (`settled`), counted from delivery or from when
//!   they were given up. Pending ones are never removed.
//!
//! - the incident history (`history`), kept 180 days from each incident's time whatever the
//!   policy (it is what "recurring within six months" is judged on), and at most 2,000 entries
//!   per source.
//!
//! Each record goes in its own transaction with its index key, so a crash mid-pass leaves every
//! record either whole or gone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{IncidentRecord, Result, Store, StoreError, key, millis};
use crate::model::IncidentStatus;

/// How long each kind of record is kept; `None` keeps it for good.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    pub reviews: Option<Duration>,
    pub notifications: Option<Duration>,
    pub dead_letters: Option<Duration>,
}

/// What one [`Store::prune`] step removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub reviews: usize,
    pub notifications: usize,
    pub dead_letters: usize,
    /// Entries of the incident history (older than 180 days, or past 2,000 per source).
    pub history: usize,
    /// Some kind had a whole batch past its keep: call again.
    pub more: bool,
}

impl Pruned {
    pub fn total(&self) -> usize {
        self.reviews + self.notifications + self.dead_letters + self.history
    }

    pub fn add(&mut self, other: &Pruned) {
        self.reviews += other.reviews;
        self.notifications += other.notifications;
        self.dead_letters += other.dead_letters;
        self.history += other.history;
        self.more = other.more;
    }
}

/// `reviewed` key: when the review was made, then the resolution key.
pub(crate) fn reviewed_key(at: DateTime<Utc>, review_key: &[u8]) -> Vec<u8> {
    key(&[&millis(at), review_key])
}

/// `now - keep`, or `None` when that is before any record could have been written.
fn cutoff(now: DateTime<Utc>, keep: Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(keep).ok().and_then(|k| now.checked_sub_signed(k))
}

/// The `incidents` key and the revision in a resolution key (`source\0id\0revision`).
pub(super) fn split_resolution_key(rk: &[u8]) -> Option<(&[u8], u32)> {
    let (incident, rest) = rk.split_at_checked(rk.len().checked_sub(5)?)?;
    let revision = u32::from_be_bytes(rest.get(1..)?.try_into().ok()?);
    (rest[0] == 0).then_some((incident, revision))
}

impl IncidentRecord {
    /// Keeps what ingesting a later update needs (id, status, last update, the resolution
    /// count) and the few facts that say what the incident was; drops the raw JSON, alerts,
    /// comments and free text. `false` if there was nothing to drop.
    fn compact(&mut self) -> bool {
        let i = &mut self.header;
        // A record whose snapshot went to a pack (`log_packing`) may have nothing else to drop,
        // but it still holds its resolution.
        let had = self.holds_resolution
            || self.raw.get() != "null"
            || i.assigned_to.is_some()
            || !i.alerts.is_empty()
            || !i.comments.is_empty()
            || !i.title.is_empty()
            || i.description.is_some()
            || i.resolving_comment.is_some()
            || !i.custom_tags.is_empty()
            || !i.system_tags.is_empty()
            || !i.warnings.is_empty();
        // The resolution it held goes with the review (its key is removed with it).
        self.holds_resolution = false;
        self.give_up_snapshot();
        let i = &mut self.header;
        i.assigned_to = None;
        i.comments.clear();
        i.alerts.clear();
        i.warnings.clear();
        had
    }
}

/// When the latest review that raised a follow-up was made (the `at` the `follow_ups` tree
/// stores beside the text); `None` in stores from before retention.
#[derive(serde::Deserialize)]
struct Raised {
    #[serde(default)]
    at: Option<DateTime<Utc>>,
}

impl Store {
    /// One step of retention: removes up to `batch` records of each kind past its keep at
    /// `now`. Call again while [`Pruned::more`] (the daemon lets other work run in between).
    pub fn prune(&self, policy: &Retention, now: DateTime<Utc>, batch: usize) -> Result<Pruned> {
        let mut p = Pruned::default();
        if let Some(before) = policy.reviews.and_then(|k| cutoff(now, k)) {
            let (removed, looked) = self.prune_reviews(before, batch)?;
            p.reviews = removed;
            p.more |= looked == batch;
        }
        for (state, keep) in [("delivered", policy.notifications), ("dead", policy.dead_letters)] {
            let Some(before) = keep.and_then(|k| cutoff(now, k)) else { continue };
            let (removed, looked) = self.prune_settled(state, before, batch)?;
            if state == "delivered" {
                p.notifications = removed;
            } else {
                p.dead_letters = removed;
            }
            p.more |= looked == batch;
        }
        let (removed, more) = self.prune_history(now, batch)?;
        p.history = removed;
        p.more |= more;
        Ok(p)
    }

    /// Removes up to `batch` outbox entries in `state` ("delivered" or "dead") that got it
    /// before `before`. Returns (removed, index keys looked at).
    pub fn prune_settled(&self, state: &'static str, before: DateTime<Utc>, batch: usize) -> Result<(usize, usize)> {
        let prefix = key(&[state.as_bytes(), b""]);
        let end = key(&[state.as_bytes(), &millis(before)]);
        let keys: Vec<sled::IVec> = self
            .settled
            .range(prefix.clone()..end)
            .keys()
            .take(batch)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.io(e))?;
        let mut removed = 0;
        for k in &keys {
            // `state\0` + 8 bytes of time + `\0` + id.
            let id = String::from_utf8_lossy(k.get(prefix.len() + 9..).unwrap_or_default()).into_owned();
            let gone = self.remove_outbox_if(&id, &|e| super::outbox::settled_key(e).as_deref() == Some(k.as_ref()))?;
            if gone.is_some() {
                removed += 1;
            } else {
                // The entry is gone or has another state (its own key lists it): this key is
                // stale, and left in place it would stop every later pass here.
                self.ensure_room()?;
                self.settled.remove(k).map_err(|e| self.io(e))?;
            }
        }
        Ok((removed, keys.len()))
    }

    /// Removes up to `batch` reviews made before `before`, with their summaries and resolution
    /// snapshots, and compacts their incidents' snapshots. Returns (removed, looked at).
    fn prune_reviews(&self, before: DateTime<Utc>, batch: usize) -> Result<(usize, usize)> {
        let end = millis(before).to_vec();
        let items: Vec<(sled::IVec, sled::IVec)> =
            self.reviewed.range(..end).take(batch).collect::<std::result::Result<_, _>>().map_err(|e| self.io(e))?;
        let mut removed = 0;
        for (k, summary_key) in &items {
            self.ensure_room()?;
            let rk = k.get(9..).unwrap_or_default();
            let trees = (
                &self.reviewed,
                &self.pending,
                &self.reviews,
                &self.summaries,
                &self.resolutions,
                &self.incidents,
                &self.follow_ups,
                &self.done,
            );
            let result =
                trees.transaction(|(reviewed, pending, reviews, summaries, resolutions, incidents, texts, done)| {
                    reviewed.remove(k)?;
                    // Queued again since: what it is made from is needed, and its new review gets
                    // an index key of its own.
                    if pending.get(rk)?.is_some() {
                        return Ok(false);
                    }
                    reviews.remove(rk)?;
                    resolutions.remove(rk)?;
                    if let Some(bytes) = summaries.remove(summary_key)? {
                        let summary = crate::digest::summary::from_stored(&bytes).map_err(|e| {
                            ConflictableTransactionError::Abort(self.corrupt("summaries", summary_key, e))
                        })?;
                        // A follow-up raised again by a review made since is still that one's.
                        for (id, _) in &summary.follow_ups {
                            let Some(text) = texts.get(id.as_bytes())? else { continue };
                            let raised: Raised = super::codec::from_packed(&text).map_err(|e| {
                                ConflictableTransactionError::Abort(self.corrupt("follow_ups", id.as_bytes(), e))
                            })?;
                            if raised.at.is_some_and(|at| at < before) {
                                texts.remove(id.as_bytes())?;
                            }
                        }
                    }
                    if let Some((ik, revision)) = split_resolution_key(rk)
                        && let Some(bytes) = incidents.get(ik)?
                    {
                        let mut record: IncidentRecord = super::codec::from_packed(&bytes)
                            .map_err(|e| ConflictableTransactionError::Abort(self.corrupt("incidents", ik, e)))?;
                        // Only the snapshot of this resolution: one re-opened since is still live.
                        let comments = record.header.comments.clone();
                        if record.status == IncidentStatus::Resolved
                            && record.resolutions == revision
                            && record.compact()
                        {
                            // Its comments go, and with them what they marked done.
                            super::done::forget(done, &record.source, &record.header.id, &comments)?;
                            let bytes = super::codec::to_packed(&record)
                                .map_err(|e| ConflictableTransactionError::Abort(self.corrupt("incidents", ik, e)))?;
                            incidents.insert(ik, bytes)?;
                        }
                    }
                    Ok::<_, ConflictableTransactionError<StoreError>>(true)
                });
            let gone = result.map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => self.io(e),
            })?;
            removed += usize::from(gone);
        }
        Ok((removed, items.len()))
    }

    /// Lists every stored review in `reviewed` (schema 2 → 3). When each was made is not
    /// stored apart from it, so its incident's resolution time (the summary's key) stands in:
    /// a review made after its incident was resolved is aged a little early, never late.
    pub(super) fn build_reviewed_index(&self) -> Result<usize> {
        let mut n = 0;
        for item in self.summaries.iter().keys() {
            let k = item.map_err(|e| self.io(e))?;
            self.reviewed.insert(&k, &k).map_err(|e| self.io(e))?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolution_key_splits_into_incident_and_revision() {
        let rk = super::super::ResolutionKey::new("contoso", "42", 3);
        assert_eq!(split_resolution_key(&rk.0), Some((&b"contoso\x0042"[..], 3)));
        assert_eq!(split_resolution_key(b"abc"), None);
    }

    #[test]
    fn a_keep_longer_than_the_epoch_prunes_nothing() {
        let now: DateTime<Utc> = "2026-12-03T00:00:00Z".parse().unwrap();
        assert_eq!(cutoff(now, Duration::from_secs(86_400)).unwrap().to_rfc3339(), "2026-12-02T00:00:00+00:00");
        assert!(cutoff(now, Duration::from_secs(u64::MAX)).is_none());
    }
}
