//! Packing the review log (schema 9, `review_pack`): each sealed segment's live reviews, with
//! the snapshots their entries carry, rewritten into a pack; the pointers swapped; the incidents'
//! records relieved of the snapshot copies the pack now holds; then the segment deleted.
//!
//! Order, so that a crash anywhere loses nothing: the pack is whole and durable before any
//! pointer names it; a pointer swap and the record's copy dropped go in one transaction, only
//! while the pointer still names the segment's entry (a review amended meanwhile is left where
//! it is); sled is flushed before the segment is deleted. A crash after the pack was written
//! finishes from the pack at the next pass; one before leaves a `.tmp` that is deleted at open.

use std::collections::HashSet;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::review_log::Pointer;
use super::review_pack::Item;
use super::{IncidentRecord, Result, Store, StoreError};

/// What [`Store::pack_review_log`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Packing {
    /// Sealed segments it had to leave as they are: one that does not read whole, one with a
    /// live review it cannot read, one whose pack does not read back (each warned about).
    pub left: Vec<u32>,
    /// Segments packed (and deleted).
    pub segments: usize,
    /// Reviews now in packs.
    pub reviews: usize,
    /// Snapshots the incidents' records no longer keep a copy of.
    pub snapshots: usize,
    /// Bytes of the segments, and of the packs that replaced them.
    pub before: u64,
    pub after: u64,
}

impl Store {
    /// The review log's sealed segments not packed yet (the packing stage looks at this).
    pub fn sealed_review_segments(&self) -> Result<Vec<u32>> {
        self.log.sealed().map_err(|e| self.io(e.into()))
    }

    /// Packs every sealed segment of the review log that is not packed yet. Runs on the calling
    /// thread (a segment of 4 MiB takes about two seconds): call it off the async runtime.
    pub fn pack_review_log(&self) -> Result<Packing> {
        let _one_at_a_time = self.upkeep.lock().unwrap_or_else(|e| e.into_inner());
        let io = |e: std::io::Error| self.io(e.into());
        let packed: HashSet<u32> = self.log.packs().map_err(io)?.into_iter().collect();
        let mut done = Packing::default();
        for segment in self.log.sealed().map_err(io)? {
            let before = self.log.segment_bytes(segment).map_err(io)?;
            if !packed.contains(&segment) {
                // A pack is about half its segment, written before the segment goes.
                self.ensure_room()?;
                let (entries, whole) = self.log.entries(segment).map_err(io)?;
                if !whole {
                    // Damage or a torn tail: what is past it cannot be told live or dead.
                    done.left.push(segment);
                    continue;
                }
                let mut writer = None;
                let mut unreadable = None;
                for (k, p) in self.live_entries(entries)? {
                    match self.log.read(&p, &k).map_err(|e| e.to_string()).and_then(|s| {
                        let json = |b: &[u8]| super::codec::unpack(b).map(std::borrow::Cow::into_owned);
                        Ok(Item {
                            review: json(&s.review)?,
                            snapshot: s.snapshot.as_deref().map(json).transpose()?,
                            key: k.clone(),
                        })
                    }) {
                        Ok(item) => {
                            let w = match &mut writer {
                                Some(w) => w,
                                None => writer.insert(self.log.pack_writer(segment).map_err(io)?),
                            };
                            w.add(&item).map_err(io)?;
                        }
                        Err(e) => {
                            unreadable = Some((k, e));
                            break;
                        }
                    }
                }
                if let Some((k, e)) = unreadable {
                    if let Some(w) = writer {
                        w.abandon().map_err(io)?;
                    }
                    tracing::warn!(
                        path = %self.path.display(),
                        segment,
                        resolution = %String::from_utf8_lossy(&k).replace('\0', "/"),
                        "a review log segment is left unpacked: a live review in it cannot be read ({e})"
                    );
                    done.left.push(segment);
                    continue;
                }
                let Some(writer) = writer else {
                    // Nothing live: nothing to swap, the segment goes.
                    self.log.remove(segment).map_err(io)?;
                    done.segments += 1;
                    done.before += before;
                    continue;
                };
                writer.finish().map_err(io)?;
            }
            let Some((reviews, snapshots)) = self.swap_into_pack(segment)? else {
                done.left.push(segment);
                continue;
            };
            done.segments += 1;
            done.reviews += reviews;
            done.snapshots += snapshots;
            done.before += before;
            done.after += self.log.pack_bytes(segment).map_err(io)?;
        }
        Ok(done)
    }

    /// Points every review still in `segment` at its place in the segment's pack, drops the
    /// records' copies of the snapshots the pack holds, flushes, and deletes the segment; how
    /// many reviews moved and snapshots the records gave up, `None` if the pack does not read.
    fn swap_into_pack(&self, segment: u32) -> Result<Option<(usize, usize)>> {
        let (entries, whole) = self.log.pack_entries(segment).map_err(|e| self.io(e.into()))?;
        if !whole {
            // Written whole and synced, so damaged since: the segment stays, and its reviews
            // are read from it.
            tracing::warn!(path = %self.path.display(), segment, "a review log pack cannot be read whole; its segment is kept");
            return Ok(None);
        }
        let (mut reviews, mut snapshots) = (0, 0);
        for (k, packed, has_snapshot) in entries {
            let Some(current) = self.reviews.get(&k).map_err(|e| self.io(e))? else { continue };
            if Pointer::decode(&current).is_none_or(|p| p.segment != segment || p.packed.is_some()) {
                continue;
            }
            let incident = has_snapshot.then(|| super::retention::split_resolution_key(&k)).flatten();
            let result = (&self.reviews, &self.incidents).transaction(|(tx_reviews, incidents)| {
                if tx_reviews.get(&k)?.as_ref() != Some(&current) {
                    return Ok((false, false));
                }
                tx_reviews.insert(k.as_slice(), packed.encode())?;
                let Some((ik, revision)) = incident else { return Ok((true, false)) };
                let Some(bytes) = incidents.get(ik)? else { return Ok((true, false)) };
                let mut record: IncidentRecord = super::codec::from_packed(&bytes)
                    .map_err(|e| ConflictableTransactionError::Abort(self.corrupt("incidents", ik, e)))?;
                // Only the copy of this resolution's snapshot: a record that moved on holds a
                // later one, which is still its own.
                if !record.holds_resolution || record.resolutions != revision || record.raw.get() == "null" {
                    return Ok((true, false));
                }
                record.give_up_snapshot();
                let bytes = super::codec::to_packed(&record)
                    .map_err(|e| ConflictableTransactionError::Abort(self.corrupt("incidents", ik, e)))?;
                incidents.insert(ik, bytes)?;
                Ok::<_, ConflictableTransactionError<StoreError>>((true, true))
            });
            let (swapped, dropped) = result.map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => self.io(e),
            })?;
            reviews += usize::from(swapped);
            snapshots += usize::from(dropped);
        }
        // The pointers into the pack are durable before the entries they replace are gone.
        self.flush()?;
        self.log.remove(segment).map_err(|e| self.io(e.into()))?;
        Ok(Some((reviews, snapshots)))
    }
}
