//! Retro-hunts waiting and under way (tree `hunts`, keyed by resolution): the review stage
//! queues a review whose source hunts, in the review's own transaction; the hunt stage keeps
//! each query's result there as it comes (a restart does not run a finished query again), and
//! finally amends the review, enqueues its `review.hunted` notifications and leaves the queue,
//! in one transaction.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::incidents::encode;
use super::{ResolutionKey, Result, Store};
use crate::outbox::OutboxEntry;
use crate::review::Review;
use crate::review::model::HuntResult;

impl Store {
    /// The reviews waiting for their hunts, oldest resolution key first.
    pub fn hunts_queued(&self) -> Result<Vec<ResolutionKey>> {
        self.hunts.iter().keys().map(|k| k.map(|k| ResolutionKey(k.to_vec())).map_err(|e| self.io(e))).collect()
    }

    /// The results kept so far for a queued review (empty when none ran yet).
    pub fn hunt_progress(&self, k: &ResolutionKey) -> Result<Vec<HuntResult>> {
        match self.hunts.get(&k.0).map_err(|e| self.io(e))? {
            Some(v) if !v.is_empty() => self.decode("hunts", &k.0, &v),
            _ => Ok(vec![]),
        }
    }

    /// Keeps the results so far of a queued review, durably: a query costs the tenant's shared
    /// quota and seconds of its time, an fsync far less, so a crash re-runs at most the query
    /// under way.
    pub async fn save_hunt_progress(&self, k: &ResolutionKey, results: &[HuntResult]) -> Result<()> {
        self.ensure_room()?;
        // Only while it is queued (one hunt stage writes this tree): a review finished or
        // dropped meanwhile is not queued again.
        if self.hunts.contains_key(&k.0).map_err(|e| self.io(e))? {
            self.hunts.insert(&k.0, encode(&results)).map_err(|e| self.io(e))?;
            self.flush_async().await?;
        }
        Ok(())
    }

    /// Leaves the queue without amending (the source no longer hunts, the review is gone).
    pub fn drop_hunts(&self, k: &ResolutionKey) -> Result<()> {
        self.hunts.remove(&k.0).map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Replaces the stored review with `amended`, enqueues `outbox`, and takes the review out
    /// of the queue, in one transaction. `false` (nothing changed) when it was not queued.
    pub fn record_hunted(&self, k: &ResolutionKey, amended: &Review, outbox: &[OutboxEntry]) -> Result<bool> {
        self.ensure_room()?;
        let bytes = super::codec::to_packed(amended).map_err(|e| self.corrupt("reviews", &k.0, e))?;
        // The snapshot the review's entry carries goes on with the amended one; the incident's
        // record may have given up its own copy. Synced before the transaction: the entry it
        // replaces may be the only copy of that snapshot.
        let snapshot = self.stored_review(k)?.and_then(|s| s.snapshot).map(super::codec::repack);
        let pointer = self.append_review(&k.0, bytes, snapshot.as_deref())?;
        self.log.sync().map_err(|e| self.io(e.into()))?;
        let entries = self.encode_entries(outbox)?;
        let _counted = self.counts.writing();
        let result = (&self.hunts, &self.reviews, &self.outbox, &self.due, &self.settled).transaction(
            |(hunts, reviews, out, due, settled)| {
                if hunts.remove(k.0.as_slice())?.is_none() || reviews.get(k.0.as_slice())?.is_none() {
                    return Ok(None);
                }
                reviews.insert(k.0.as_slice(), &pointer[..])?;
                Ok::<_, ConflictableTransactionError<super::StoreError>>(Some(super::outbox::insert_all(
                    out, due, settled, &entries,
                )?))
            },
        );
        match self.committed(result)? {
            Some(added) => {
                self.counts.added(added);
                self.flush()?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
