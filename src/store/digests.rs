//! What digests are made from and what they made: review summaries by resolution time, the
//! digests sent, and the occurrence of the schedule the last digest was for — written together
//! with the digest's outbox entries in one transaction, so a digest is enqueued exactly once per
//! occurrence whatever the daemon was doing when it stopped.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::{Result, Store, key};
use crate::digest::{Digest, Summary};
use crate::outbox::OutboxEntry;

const MARK: &str = "digest_schedule";

/// `meta` key present during the upgrade to schema 5 (summaries stored as JSON rewritten in the
/// binary layout, follow-ups marked done indexed): a start that finds it finishes the upgrade.
pub(super) const UPGRADING_TO_5: &str = "upgrading_to_5";

/// Summaries rewritten between flushes during the upgrade.
const FLUSH_EVERY: usize = 2000;

/// The schedule's state: which occurrence the last digest was sent for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestMark {
    /// The occurrence the last digest was for; before the first digest, when the daemon first ran.
    pub last: DateTime<Utc>,
    pub sent: u64,
}

/// `summaries` key: resolution time (ms, big-endian, so keys sort by time) then the review's key.
pub(crate) fn summary_key(resolved: DateTime<Utc>, review_key: &[u8]) -> Vec<u8> {
    key(&[&super::millis(resolved), review_key])
}

impl Store {
    /// The stored summaries of the reviews of incidents resolved in `[start, end)`, oldest
    /// first, as (key, JSON) — for readers that decode them borrowed ([`crate::digest::View`]).
    pub fn summary_records_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<(sled::IVec, sled::IVec)>> {
        self.summaries
            .range(summary_key(start, b"")..summary_key(end, b""))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.io(e))
    }

    /// The summaries of `[start, end)`, decoded.
    pub fn summaries_between(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<Summary>> {
        self.summary_records_between(start, end)?
            .iter()
            .map(|(k, v)| {
                crate::digest::summary::from_stored(v).map(|s| s.owned()).map_err(|e| self.corrupt("summaries", k, e))
            })
            .collect()
    }

    pub(crate) fn corrupt_summary(&self, key: &[u8], reason: impl ToString) -> super::StoreError {
        self.corrupt("summaries", key, reason)
    }

    pub fn digest_mark(&self) -> Result<Option<DigestMark>> {
        match self.meta.get(MARK).map_err(|e| self.io(e))? {
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| self.corrupt("meta", MARK.as_bytes(), e)),
            None => Ok(None),
        }
    }

    /// Sets the mark without a digest (the first start: nothing was missed before it).
    pub fn set_digest_mark(&self, mark: &DigestMark) -> Result<()> {
        self.ensure_room()?;
        let bytes = serde_json::to_vec(mark).map_err(|e| self.corrupt("meta", MARK.as_bytes(), e))?;
        self.meta.insert(MARK, bytes).map_err(|e| self.io(e))?;
        self.flush()
    }

    /// Stores digests and their outbox entries and, when `mark` is given, moves the schedule's
    /// mark — all or nothing — then flushes. Entries already there keep their delivery state.
    pub fn record_digests(&self, digests: &[Digest], outbox: &[OutboxEntry], mark: Option<&DigestMark>) -> Result<()> {
        self.ensure_room()?;
        let enc = |tree: &'static str, id: &str, v: serde_json::Result<Vec<u8>>| {
            v.map_err(|e| self.corrupt(tree, id.as_bytes(), e))
        };
        let digests: Vec<(String, Vec<u8>)> = digests
            .iter()
            .map(|d| Ok((d.id.clone(), enc("digests", &d.id, serde_json::to_vec(d))?)))
            .collect::<Result<_>>()?;
        let entries = self.encode_entries(outbox)?;
        let mark = mark.map(|m| enc("meta", MARK, serde_json::to_vec(m))).transpose()?;
        let _counted = self.counts.writing();
        let result = (&self.digests, &self.outbox, &self.meta, &self.due, &self.settled).transaction(
            |(dt, out, meta, due, settled)| {
                for (id, d) in &digests {
                    dt.insert(id.as_bytes(), d.as_slice())?;
                }
                let added = super::outbox::insert_all(out, due, settled, &entries)?;
                if let Some(m) = &mark {
                    meta.insert(MARK, m.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<super::StoreError>>(added)
            },
        );
        let added = self.committed(result)?;
        self.counts.added(added);
        self.flush()
    }

    pub fn digest(&self, id: &str) -> Result<Option<Digest>> {
        match self.digests.get(id.as_bytes()).map_err(|e| self.io(e))? {
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| self.corrupt("digests", id.as_bytes(), e)),
            None => Ok(None),
        }
    }

    /// A follow-up's text, as the latest review that raised it wrote it.
    pub fn follow_up(&self, id: &str) -> Result<Option<crate::digest::summary::FollowUpInfo>> {
        match self.follow_ups.get(id.as_bytes()).map_err(|e| self.io(e))? {
            Some(v) => {
                super::codec::from_packed(&v).map(Some).map_err(|e| self.corrupt("follow_ups", id.as_bytes(), e))
            }
            None => Ok(None),
        }
    }

    pub fn digest_count(&self) -> usize {
        self.digests.len()
    }

    /// Rewrites the summaries stored as JSON in the binary layout (schema 4 → 5); the ones
    /// already rewritten are skipped, so a rewrite cut short is finished by the next. Returns
    /// how many were rewritten.
    pub(super) fn pack_summaries(&self) -> Result<usize> {
        let mut n = 0;
        for item in self.summaries.iter() {
            let (k, v) = item.map_err(|e| self.io(e))?;
            if !v.starts_with(b"{") {
                continue;
            }
            // A summary that does not read is left as it is, for the digest to report.
            let summary = match crate::digest::summary::from_stored(&v) {
                Ok(s) => s.owned(),
                Err(e) => {
                    tracing::warn!(key = %String::from_utf8_lossy(&k).replace('\0', "/"), error = %e, "summary not rewritten: it does not read");
                    continue;
                }
            };
            let bytes = summary.to_stored().map_err(|e| self.corrupt("summaries", &k, e))?;
            self.ensure_room()?;
            self.summaries.insert(k, bytes).map_err(|e| self.io(e))?;
            n += 1;
            if n % FLUSH_EVERY == 0 {
                self.flush()?;
            }
        }
        Ok(n)
    }

    /// Fills `summaries` from the stored reviews (schema 1 → 2). Each review is read once.
    pub(super) fn build_summaries(&self) -> Result<usize> {
        let mut n = 0;
        for item in self.reviews.iter() {
            let (k, _) = item.map_err(|e| self.io(e))?;
            // Inline in a store of schema 1, but read as any review is.
            let Some(review) = self.review(&super::ResolutionKey(k.to_vec()))? else { continue };
            let s = Summary::of(&review, review.incident.created.unwrap_or_default());
            let bytes = s.to_stored().map_err(|e| self.corrupt("summaries", &k, e))?;
            self.summaries.insert(summary_key(s.resolved, &k), bytes).map_err(|e| self.io(e))?;
            for (id, info) in Summary::follow_up_texts(&review) {
                let bytes = super::codec::to_packed(&info).map_err(|e| self.corrupt("follow_ups", id.as_bytes(), e))?;
                self.follow_ups.insert(id.as_bytes(), bytes).map_err(|e| self.io(e))?;
            }
            n += 1;
        }
        Ok(n)
    }
}
