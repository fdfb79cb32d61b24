//! Keeping the review log and the `reviews` tree in step: the upgrade that moves stored reviews
//! into the log (schema 7 → 8), the check at open that every pointer reads, and compaction.

use std::collections::HashSet;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::review_log::{Pointer, Tail};
use super::{Result, Store, StoreError};

/// `meta` key present while the upgrade to schema 8 moves the reviews into the log.
pub(super) const MOVING_TO_LOG: &str = "moving_reviews_to_log";

/// Reviews moved per flush during the upgrade, and per batch of compaction.
const BATCH: usize = 500;

/// What [`Store::compact_review_log`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Segments deleted.
    pub segments: usize,
    /// Live reviews copied out of them first.
    pub moved: usize,
    /// Bytes freed on disk.
    pub freed: u64,
}

impl Store {
    /// Moves every review stored inline in `reviews` into the log, a batch at a time: the
    /// batch is written to the log and synced, then each pointer replaces its review only if the
    /// review is still the one read, then sled is flushed. A kill part-way leaves reviews that
    /// read either way; the entries written for a batch that was not swapped in are dead weight.
    pub(super) fn move_reviews_to_log(&self) -> Result<usize> {
        let mut moved = 0;
        let mut after: Option<sled::IVec> = None;
        loop {
            let range = match &after {
                Some(k) => {
                    self.reviews.range::<&[u8], _>((std::ops::Bound::Excluded(k.as_ref()), std::ops::Bound::Unbounded))
                }
                None => self.reviews.range::<&[u8], _>(..),
            };
            let mut batch = Vec::new();
            for item in range {
                let (k, v) = item.map_err(|e| self.io(e))?;
                after = Some(k.clone());
                if Pointer::decode(&v).is_none() {
                    batch.push((k, v));
                    if batch.len() == BATCH {
                        break;
                    }
                }
            }
            if batch.is_empty() {
                return Ok(moved);
            }
            let mut pointers = Vec::with_capacity(batch.len());
            for (k, v) in &batch {
                pointers.push(self.append_review(k, v.to_vec(), None)?);
            }
            self.log.sync().map_err(|e| self.io(e.into()))?;
            for ((k, v), p) in batch.iter().zip(&pointers) {
                let swapped = self.reviews.compare_and_swap(k, Some(v), Some(&p[..])).map_err(|e| self.io(e))?;
                moved += usize::from(swapped.is_ok());
            }
            self.flush()?;
        }
    }

    /// Checks at open that every pointer in `reviews` points into the log as it is: only a
    /// machine that lost power after sled wrote a transaction and before the log was synced
    /// leaves one that does not (a process that is killed leaves both in the OS's cache). Each
    /// such review is taken out, with its notifications not yet sent, and its resolution is
    /// queued again: the review is made again and its notifications go out under the same
    /// idempotency keys. One read of the tree's keys and 21-byte values.
    pub(super) fn repair_review_log(&self, tail: Tail) -> Result<()> {
        if tail.cut > 0 {
            tracing::warn!(
                path = %self.path.display(),
                segment = tail.segment,
                bytes = tail.cut,
                "the review log ended in an entry written in part (the process stopped while writing it); cut off"
            );
        }
        let sealed: HashSet<u32> = self.log.sealed().map_err(|e| self.io(e.into()))?.into_iter().collect();
        let packs: HashSet<u32> = self.log.packs().map_err(|e| self.io(e.into()))?.into_iter().collect();
        let mut lost = Vec::new();
        let mut missing = std::collections::BTreeSet::new();
        for item in self.reviews.iter() {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let Some(p) = Pointer::decode(&v) else { continue };
            if p.packed.is_some() {
                if !packs.contains(&p.segment) {
                    missing.insert(super::review_pack::pack_name(p.segment));
                }
            } else if p.segment == tail.segment && !tail.fresh {
                if p.end() > tail.end {
                    lost.push((k, v));
                }
            } else if !sealed.contains(&p.segment) {
                missing.insert(format!("{:08}.log", p.segment));
            }
        }
        // A power cut loses only the end of the segment being written (a segment is synced
        // before the next is started, and compaction deletes one only once nothing points into
        // it). Whole segments gone, or the directory, are a store copied or restored without
        // them: refused rather than every review in them made again.
        if !missing.is_empty() {
            let dir = self.review_log_dir();
            let error = std::io::Error::other(format!(
                "the review log at {} lacks segment(s) {} that the store points into (copied or restored without its reviews/ directory?): restore the whole store directory, reviews/ with it",
                dir.display(),
                missing.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
            return Err(StoreError::Open { path: self.path.clone(), error: error.into() });
        }
        if lost.is_empty() {
            return Ok(());
        }
        let keys: HashSet<&[u8]> = lost.iter().map(|(k, _)| k.as_ref()).collect();
        // Their notifications still to send carry no review of their own: left, they would be
        // dead-lettered as unsendable before the review is made again.
        for entry in self.outbox_entries()? {
            let rk = super::ResolutionKey::new(&entry.source, &entry.incident_id, entry.revision);
            if keys.contains(rk.0.as_slice())
                && entry.state == crate::outbox::EntryState::Pending
                && entry.digest.is_none()
            {
                self.remove_outbox_if(&entry.id, &|e| e.state == crate::outbox::EntryState::Pending)?;
            }
        }
        for (k, v) in &lost {
            let result = (&self.reviews, &self.pending).transaction(|(reviews, pending)| {
                if reviews.get(k)?.as_ref() == Some(v) {
                    reviews.remove(k)?;
                    pending.insert(k, &[][..])?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            });
            result.map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => self.io(e),
            })?;
            tracing::warn!(
                path = %self.path.display(),
                resolution = %String::from_utf8_lossy(k).replace('\0', "/"),
                "a review was lost from the review log (power lost before it was synced?): its resolution is queued to be reviewed again"
            );
        }
        self.flush()
    }

    /// Frees the log's oldest segments that are mostly dead (their reviews removed by retention
    /// or replaced): the live reviews of each are copied to the end of the log, their pointers
    /// swapped in, that made durable, then the segment deleted. Stops at the first sealed segment
    /// that is at least half live: retention removes the oldest reviews first, so the later
    /// ones are livelier still. Reviews amended by retro-hunts leave dead entries anywhere; a
    /// segment with some of those is freed once retention has emptied the rest of it.
    pub fn compact_review_log(&self) -> Result<Compacted> {
        let _one_at_a_time = self.upkeep.lock().unwrap_or_else(|e| e.into_inner());
        let io = |e: std::io::Error| self.io(e.into());
        let mut done = Compacted::default();
        // Segments and packs (sealed segments rewritten: `log_packing`) by age; one that is both
        // is being packed, which finishes it.
        let segments = self.log.sealed().map_err(io)?;
        let packs = self.log.packs().map_err(io)?;
        let mut files: Vec<(u32, bool)> = segments.iter().filter(|s| !packs.contains(s)).map(|s| (*s, false)).collect();
        files.extend(packs.iter().filter(|p| !segments.contains(p)).map(|p| (*p, true)));
        files.sort_unstable();
        for (segment, is_pack) in files {
            let (entries, whole, size) = if is_pack {
                let (entries, whole) = self.log.pack_entries(segment).map_err(io)?;
                let entries: Vec<_> = entries.into_iter().map(|(k, p, _)| (k, p)).collect();
                (entries, whole, self.log.pack_bytes(segment).map_err(io)?)
            } else {
                let (entries, whole) = self.log.entries(segment).map_err(io)?;
                (entries, whole, self.log.segment_bytes(segment).map_err(io)?)
            };
            if !whole {
                // Damage or a torn tail: what is past it cannot be told live or dead.
                continue;
            }
            let total = entries.len();
            let live = self.live_entries(entries)?;
            // A pack's reviews share their blocks: it is judged by how many are live.
            let mostly_live = if is_pack {
                live.len() * 2 > total
            } else {
                live.iter().map(|(_, p)| p.end() - p.offset).sum::<u64>() * 2 > size
            };
            if mostly_live {
                break;
            }
            let mut unreadable = None;
            for chunk in live.chunks(BATCH) {
                let mut swaps = Vec::with_capacity(chunk.len());
                for (k, p) in chunk {
                    match self.log.read(p, k) {
                        Ok(s) => swaps.push((
                            k,
                            p.encode(),
                            self.append_review(
                                k,
                                super::codec::repack(s.review),
                                s.snapshot.map(super::codec::repack).as_deref(),
                            )?,
                        )),
                        Err(e) => unreadable = Some((k, e)),
                    }
                }
                self.log.sync().map_err(|e| self.io(e.into()))?;
                for (k, old, new) in swaps {
                    // Replaced since (a retro-hunt amended it) or removed: the copy is dead weight.
                    let swapped =
                        self.reviews.compare_and_swap(k, Some(&old[..]), Some(&new[..])).map_err(|e| self.io(e))?;
                    done.moved += usize::from(swapped.is_ok());
                }
            }
            // The new pointers are durable before the entries they replace are gone.
            self.flush()?;
            if let Some((k, e)) = unreadable {
                // Kept, with what could not be moved: its reader reports the damage, and
                // retention goes on with the other segments.
                tracing::warn!(
                    path = %self.path.display(),
                    segment,
                    resolution = %String::from_utf8_lossy(k).replace('\0', "/"),
                    "a review log segment is kept: a live review in it cannot be read ({e})"
                );
                continue;
            }
            if is_pack {
                self.log.remove_pack(segment).map_err(io)?;
            } else {
                self.log.remove(segment).map_err(io)?;
            }
            done.segments += 1;
            done.freed += size;
        }
        Ok(done)
    }

    /// The entries whose review's pointer still names them (the others were replaced or
    /// removed).
    pub(super) fn live_entries(&self, entries: Vec<super::review_log::Entry>) -> Result<Vec<super::review_log::Entry>> {
        let mut live = Vec::with_capacity(entries.len());
        for (k, p) in entries {
            if self.reviews.get(&k).map_err(|e| self.io(e))?.as_deref() == Some(&p.encode()[..]) {
                live.push((k, p));
            }
        }
        Ok(live)
    }

    /// The review log's size on disk and its entries (live or not), for [`Store::tree_sizes`].
    pub(super) fn review_log_size(&self) -> Result<(u64, u64)> {
        let mut entries = 0;
        let mut segments = self.log.sealed().map_err(|e| self.io(e.into()))?;
        segments.push(self.log.active_segment());
        for s in segments {
            entries += self.log.entries(s).map_err(|e| self.io(e.into()))?.0.len() as u64;
        }
        for p in self.log.packs().map_err(|e| self.io(e.into()))? {
            entries += self.log.pack_entries(p).map_err(|e| self.io(e.into()))?.0.len() as u64;
        }
        let usage = self.disk_usage()?;
        Ok((entries, usage.segments + usage.packs))
    }
}
