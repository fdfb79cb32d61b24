//! Follow-ups marked done on their incidents: an analyst writes `done FU-…` in a Defender
//! comment, and the digest shows the follow-up done. The marks are found when a snapshot is
//! stored, so that a digest looks up the few marks of the follow-ups it lists instead of reading
//! the comments of every incident that raised them (a detection follow-up raised by 30,000
//! incidents in a week was 30,000 snapshot reads per digest).
//!
//! Tree `done`: follow-up id (lower case) `\0` source `\0` incident id → when it was marked
//! (ms since the epoch, big-endian), the latest comment that marks it.

use chrono::{DateTime, Utc};
use sled::transaction::{TransactionalTree, UnabortableTransactionError};

use super::{Result, Store, key};
use crate::model::Comment;

fn done_key(id: &str, source: &str, incident_id: &str) -> Vec<u8> {
    key(&[id.as_bytes(), source.as_bytes(), incident_id.as_bytes()])
}

/// Records the marks of an incident's comments (in the transaction that stores its snapshot).
/// Comments only grow, so a later snapshot's marks are the same or later.
pub(super) fn record(
    tree: &TransactionalTree,
    source: &str,
    incident_id: &str,
    comments: &[Comment],
) -> std::result::Result<(), UnabortableTransactionError> {
    for (id, at) in crate::digest::done_marks(comments) {
        tree.insert(done_key(&id, source, incident_id), &super::millis(at)[..])?;
    }
    Ok(())
}

/// Removes an incident's marks (its comments are dropped by retention).
pub(super) fn forget(
    tree: &TransactionalTree,
    source: &str,
    incident_id: &str,
    comments: &[Comment],
) -> std::result::Result<(), UnabortableTransactionError> {
    for (id, _) in crate::digest::done_marks(comments) {
        tree.remove(done_key(&id, source, incident_id))?;
    }
    Ok(())
}

/// One incident's mark of a follow-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneMark {
    pub source: String,
    pub incident_id: String,
    pub at: DateTime<Utc>,
}

impl Store {
    /// The incidents on which follow-up `id` was marked done, any case.
    pub fn done_marks(&self, id: &str) -> Result<Vec<DoneMark>> {
        let prefix = key(&[id.to_ascii_lowercase().as_bytes(), b""]);
        let mut out = Vec::new();
        for item in self.done.scan_prefix(&prefix) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let rest = &k[prefix.len()..];
            let bad = || self.corrupt("done", &k, "not source\\0incident → time");
            let split = rest.iter().position(|b| *b == 0).ok_or_else(bad)?;
            let ms: [u8; 8] = v.as_ref().try_into().map_err(|_| bad())?;
            out.push(DoneMark {
                source: String::from_utf8_lossy(&rest[..split]).into_owned(),
                incident_id: String::from_utf8_lossy(&rest[split + 1..]).into_owned(),
                at: DateTime::from_timestamp_millis(i64::from_be_bytes(ms)).ok_or_else(bad)?,
            });
        }
        Ok(out)
    }

    /// Finds the marks in every stored snapshot (schema 4 → 5). Returns how many.
    pub(super) fn build_done_index(&self) -> Result<usize> {
        let mut n = 0;
        for item in self.incidents.iter() {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let record: super::IncidentRecord = self.decode("incidents", &k, &v)?;
            let i = &record.header;
            for (id, at) in crate::digest::done_marks(&i.comments) {
                self.done
                    .insert(done_key(&id, &record.source, &i.id), &super::millis(at)[..])
                    .map_err(|e| self.io(e))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
