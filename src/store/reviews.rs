//! Reviews out of the queue: each review is stored, its resolution leaves the queue, and the
//! techniques it saw join the source's history — in one transaction, so a crash at any point
//! leaves the resolution either queued (reviewed again on restart, with the same result: the
//! review is a pure function) or reviewed, never half of each.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{ResolutionKey, Result, Store, key};
use crate::notify::OutboxEntry;
use crate::review::{History, Review};

/// A `follow_ups` value: the text, and when the latest review that raised it was made (readers
/// of the text ignore the extra field).
#[derive(serde::Serialize)]
struct StoredFollowUp {
    #[serde(flatten)]
    info: crate::digest::summary::FollowUpInfo,
    at: DateTime<Utc>,
}

impl Store {
    /// What this source's earlier reviews saw: each organisation (source) has its own history.
    pub fn history(&self, source: &str) -> Result<History> {
        let prefix = key(&[source.as_bytes(), b""]);
        let mut techniques_seen = HashSet::new();
        for item in self.seen.scan_prefix(&prefix).keys() {
            let k = item.map_err(|e| self.io(e))?;
            techniques_seen.insert(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        // Only the `seen` keys: the history must not cost a read of every stored review (it is
        // taken for each review, and a scan of the reviews tree also pulled all of it into
        // sled's cache, which is what made memory grow with the store).
        Ok(History { techniques_seen })
    }

    /// Stores the review of a queued resolution. Returns `false` (and changes nothing) when the
    /// resolution is no longer queued: another worker, or an earlier run, already recorded it.
    /// The review's notifications (`outbox`) are enqueued in the same transaction.
    pub fn record_review(
        &self,
        k: &ResolutionKey,
        source: &str,
        review: &Review,
        outbox: &[OutboxEntry],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.ensure_room()?;
        let bytes = serde_json::to_vec(review).map_err(|e| self.corrupt("reviews", &k.0, e))?;
        let entries: Vec<(&OutboxEntry, Vec<u8>)> = outbox
            .iter()
            .map(|e| serde_json::to_vec(e).map(|b| (e, b)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.corrupt("outbox", &k.0, e))?;
        let summary = crate::digest::Summary::of(review, now);
        let summary_key = super::digests::summary_key(summary.resolved, &k.0);
        let summary = serde_json::to_vec(&summary).map_err(|e| self.corrupt("summaries", &k.0, e))?;
        // With when this review was made: retention removes a text once every review that
        // raised it is gone (`store::retention`).
        let follow_ups: Vec<(&str, Vec<u8>)> = crate::digest::Summary::follow_up_texts(review)
            .map(|(id, info)| serde_json::to_vec(&StoredFollowUp { info, at: now }).map(|b| (id, b)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.corrupt("follow_ups", &k.0, e))?;
        let at = now.to_rfc3339();
        let techniques: Vec<&str> =
            review.techniques.iter().filter(|t| t.name.is_some()).map(|t| t.id.as_str()).collect();
        let reviewed_key = super::retention::reviewed_key(now, &k.0);
        let trees = (
            &self.pending,
            &self.reviews,
            &self.seen,
            &self.outbox,
            &self.summaries,
            &self.follow_ups,
            &self.due,
            &self.settled,
            &self.reviewed,
        );
        let _counted = self.counts.writing();
        let result = trees.transaction(|(pending, reviews, seen, out, summaries, texts, due, settled, reviewed)| {
            // Set anew on each run of the closure: sled may run it again after a conflict.
            let mut added = Vec::new();
            if pending.remove(k.0.as_slice())?.is_none() {
                return Ok(None);
            }
            reviews.insert(k.0.as_slice(), bytes.as_slice())?;
            summaries.insert(summary_key.as_slice(), summary.as_slice())?;
            reviewed.insert(reviewed_key.as_slice(), summary_key.as_slice())?;
            for (id, info) in &follow_ups {
                texts.insert(id.as_bytes(), info.as_slice())?;
            }
            for (entry, bytes) in &entries {
                // An entry already there (a review recorded, then its resolution re-queued by
                // hand) keeps its delivery state.
                if super::outbox::insert_new(out, due, settled, entry, bytes)? {
                    added.push(*entry);
                }
            }
            for t in &techniques {
                let sk = key(&[source.as_bytes(), t.as_bytes()]);
                if seen.get(&sk)?.is_none() {
                    seen.insert(sk, at.as_bytes())?;
                }
            }
            Ok::<_, ConflictableTransactionError<super::StoreError>>(Some(added))
        });
        let added = result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.io(e),
        })?;
        match added {
            Some(added) => {
                self.counts.added(added);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub fn review(&self, k: &ResolutionKey) -> Result<Option<Review>> {
        match self.reviews.get(&k.0).map_err(|e| self.io(e))? {
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| self.corrupt("reviews", &k.0, e)),
            None => Ok(None),
        }
    }

    /// Counts by reading the whole tree: for `hindsight check` and tests, not for a loop.
    pub fn review_count(&self) -> usize {
        self.reviews.len()
    }
}
