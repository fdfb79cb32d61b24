//! Reviews out of the queue: each review is stored, its resolution leaves the queue, and the
//! techniques it saw join the source's history — in one transaction, so a crash at any point
//! leaves the resolution either queued (reviewed again on restart, with the same result: the
//! review is a pure function) or reviewed, never half of each.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::{ResolutionKey, Result, Store, key};
use crate::digest::Summary;
use crate::digest::summary::FollowUpInfo;
use crate::outbox::OutboxEntry;
use crate::review::{History, Review};

/// Everything stored with one review, in one transaction. The review stage makes it
/// ([`crate::stages::review::record_of`]); the store only lays it out in its trees.
#[derive(Debug)]
pub struct ReviewRecord<'a> {
    pub source: &'a str,
    pub review: &'a Review,
    /// What the digest counts of this review.
    pub summary: Summary,
    /// The texts of the follow-ups it raised, by stable id (summaries keep the id only).
    pub follow_ups: Vec<(&'a str, FollowUpInfo)>,
    /// The techniques it saw, for the source's history of what is new.
    pub techniques: Vec<&'a str>,
    /// What later reviews of the source compare with (similar incidents, recurrence).
    pub past: crate::review::PastIncident,
    /// Its notifications, one per destination whose route takes it.
    pub outbox: Vec<OutboxEntry>,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// Queue it for retro-hunts (its source hunts and it has hunts to run).
    pub hunt: bool,
    /// The resolution's snapshot as Graph sent it, stored with the review (`None`: kept only in
    /// the incident's record, as before schema 9).
    pub snapshot: Option<&'a serde_json::value::RawValue>,
}

/// A `follow_ups` value: the text, and when the latest review that raised it was made (readers
/// of the text ignore the extra field).
#[derive(serde::Serialize)]
struct StoredFollowUp {
    #[serde(flatten)]
    info: FollowUpInfo,
    at: DateTime<Utc>,
}

/// When a stored follow-up was first raised: its `first_raised`, else (stored before that was
/// kept) the review that stored it.
fn first_raised(bytes: &[u8]) -> Option<DateTime<Utc>> {
    #[derive(serde::Deserialize)]
    struct Times {
        first_raised: Option<DateTime<Utc>>,
        at: Option<DateTime<Utc>>,
    }
    let t: Times = super::codec::from_packed(bytes).ok()?;
    t.first_raised.or(t.at)
}

impl Store {
    /// What this source's earlier reviews saw: each organisation (source) has its own history.
    /// The techniques seen, and its earlier incidents newest first (at most 2,000, within
    /// retention's 180 days). Read once per review pass, not per review.
    pub fn history(&self, source: &str) -> Result<History> {
        let prefix = key(&[source.as_bytes(), b""]);
        let mut techniques_seen = HashSet::new();
        for item in self.seen.scan_prefix(&prefix).keys() {
            let k = item.map_err(|e| self.io(e))?;
            techniques_seen.insert(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        // Only the `seen` keys and the compact `history` entries: the history must not cost a
        // read of every stored review (a scan of the reviews tree also pulled all of it into
        // sled's cache, which is what made memory grow with the store).
        // Recorded: an empty `seen` here means nothing was seen before, not "unknown".
        Ok(History { techniques_seen, incidents: self.past_incidents(source)?, recorded: true })
    }

    /// Stores the review of a queued resolution with everything recorded beside it (`record`,
    /// made by the review stage). Returns `false` (and changes nothing) when the resolution is
    /// no longer queued: another worker, or an earlier run, already recorded it. The review's
    /// notifications are enqueued in the same transaction.
    pub fn record_review(&self, k: &ResolutionKey, record: &ReviewRecord<'_>) -> Result<bool> {
        self.ensure_room()?;
        let ReviewRecord { source, review, summary, follow_ups, techniques, past, outbox, at: now, hunt, snapshot: _ } =
            record;
        let now = *now;
        let bytes = super::codec::to_packed(review).map_err(|e| self.corrupt("reviews", &k.0, e))?;
        // In the log before the transaction that points at it (`review_log`). Should the
        // resolution turn out to be reviewed already, the entry is dead weight compaction drops.
        // The snapshot goes with it: once the entry is packed, the incident's record no longer
        // keeps its own copy (`log_packing`).
        let snapshot = record
            .snapshot
            .filter(|raw| raw.get() != "null")
            .map(|raw| super::codec::pack(raw.get().as_bytes().to_vec()));
        let pointer = self.append_review(&k.0, bytes, snapshot.as_deref())?;
        let entries = self.encode_entries(outbox)?;
        let summary_key = super::digests::summary_key(summary.resolved, &k.0);
        let raised = summary.resolved.min(now);
        let summary = summary.to_stored().map_err(|e| self.corrupt("summaries", &k.0, e))?;
        // With when this review was made: retention removes a text once every review that
        // raised it is gone (`store::retention`).
        // First raised when this incident was resolved (its due date counts from that day too;
        // never later than now), unless an earlier review's incident raised it before: then
        // that time is kept (read in the transaction, below). Counting from the review's own
        // time made a backfilled incident's follow-up "open less than a day, OVERDUE since"
        // a date weeks before.
        let stored = |info: &FollowUpInfo, first: DateTime<Utc>| {
            super::codec::to_packed(&StoredFollowUp {
                info: FollowUpInfo { first_raised: Some(first), ..info.clone() },
                at: now,
            })
        };
        let follow_ups: Vec<(&str, &FollowUpInfo, Vec<u8>)> = follow_ups
            .iter()
            .map(|(id, info)| stored(info, raised).map(|b| (*id, info, b)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.corrupt("follow_ups", &k.0, e))?;
        let past_key = super::history::history_key(source, past, now);
        let past = super::codec::to_packed(past).map_err(|e| self.corrupt("history", &past_key, e))?;
        let at = now.to_rfc3339();
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
            &self.history,
            &self.hunts,
        );
        let _counted = self.counts.writing();
        let result = trees.transaction(
            |(pending, reviews, seen, out, summaries, texts, due, settled, reviewed, history, hunts)| {
                if pending.remove(k.0.as_slice())?.is_none() {
                    return Ok(None);
                }
                reviews.insert(k.0.as_slice(), &pointer[..])?;
                if *hunt {
                    hunts.insert(k.0.as_slice(), &[][..])?;
                }
                summaries.insert(summary_key.as_slice(), summary.as_slice())?;
                reviewed.insert(reviewed_key.as_slice(), summary_key.as_slice())?;
                history.insert(past_key.as_slice(), past.as_slice())?;
                for (id, info, bytes) in &follow_ups {
                    let earlier = texts.get(id.as_bytes())?.and_then(|v| first_raised(&v)).filter(|t| *t < raised);
                    match earlier.map(|t| stored(info, t)) {
                        Some(Ok(b)) => texts.insert(id.as_bytes(), b)?,
                        _ => texts.insert(id.as_bytes(), bytes.as_slice())?,
                    };
                }
                // An entry already there (a review recorded, then its resolution re-queued by
                // hand) keeps its delivery state.
                let added = super::outbox::insert_all(out, due, settled, &entries)?;
                for t in techniques.iter() {
                    let sk = key(&[source.as_bytes(), t.as_bytes()]);
                    if seen.get(&sk)?.is_none() {
                        seen.insert(sk, at.as_bytes())?;
                    }
                }
                Ok::<_, ConflictableTransactionError<super::StoreError>>(Some(added))
            },
        );
        match self.committed(result)? {
            Some(added) => {
                self.counts.added(added);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub fn review(&self, k: &ResolutionKey) -> Result<Option<Review>> {
        match self.stored_review(k)? {
            Some(stored) => self.decode("reviews", &k.0, &stored.review).map(Some),
            None => Ok(None),
        }
    }

    /// The review at `k` as stored, with the snapshot its entry carries.
    pub(super) fn stored_review(&self, k: &ResolutionKey) -> Result<Option<super::review_log::Stored>> {
        // Twice at most: compaction or packing may move the review, and delete the file it was
        // in, between reading its pointer and reading the log.
        let mut moved = false;
        loop {
            let Some(v) = self.reviews.get(&k.0).map_err(|e| self.io(e))? else { return Ok(None) };
            let Some(pointer) = super::review_log::Pointer::decode(&v) else {
                // Stored inline (schema 7 and before, until the upgrade moved it).
                return Ok(Some(super::review_log::Stored { review: v.to_vec(), snapshot: None }));
            };
            match self.log.read(&pointer, &k.0) {
                Ok(stored) => return Ok(Some(stored)),
                Err(super::review_log::ReadError::Missing(_)) if !moved => moved = true,
                Err(super::review_log::ReadError::Io(e)) => return Err(self.io(e.into())),
                Err(e) => return Err(self.corrupt("reviews", &k.0, format!("in the review log: {e}"))),
            }
        }
    }

    /// Writes a review's bytes to the log, with the snapshot of the resolution it was made from
    /// (both as [`super::codec::pack`] stores them), and returns the pointer the `reviews` tree
    /// keeps.
    pub(super) fn append_review(&self, key: &[u8], review: Vec<u8>, snapshot: Option<&[u8]>) -> Result<Vec<u8>> {
        self.ensure_room()?;
        match self.log.append(key, &super::review_log::Stored::value(review, snapshot)) {
            Ok(p) => Ok(p.encode()),
            Err(e) => Err(self.io(e.into())),
        }
    }

    /// Counts the reviews' summaries, one per review, written and removed with it: sled counts
    /// by reading a whole tree, and keeps much of what it read in memory, so counting the
    /// reviews themselves took 812 MB on a store of 100,000 (`hindsight check`, BENCHMARKS.md);
    /// the summaries are a tenth of their size. For `hindsight check` and tests, not for a loop.
    pub fn review_count(&self) -> usize {
        self.summaries.len()
    }
}
