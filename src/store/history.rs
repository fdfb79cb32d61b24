//! The source's history of incidents: a compact [`PastIncident`] per reviewed incident, from
//! which a later review finds similar incidents and recurring ways in. Written with the review
//! (`reviews.rs`), read newest first (at most [`MAX_PER_SOURCE`]), and aged out by retention
//! after [`KEEP_DAYS`] (the window similar incidents are looked for in) or past the cap.
//!
//! Key: `source\0` incident time (ms, big-endian) `\0` incident id, so that a source's entries
//! sort by time and a later revision of the same incident replaces the earlier one.

use chrono::{DateTime, Duration, Utc};

use super::{Result, Store, key, millis};
use crate::review::PastIncident;

/// Entries kept, and read, per source.
pub const MAX_PER_SOURCE: usize = 2_000;
/// How long an entry is kept, from its incident's time.
pub const KEEP_DAYS: i64 = crate::review::SIMILAR_WINDOW_DAYS;

/// The entry's key: its incident's creation, else when it was reviewed.
pub(crate) fn history_key(source: &str, past: &PastIncident, reviewed_at: DateTime<Utc>) -> Vec<u8> {
    key(&[source.as_bytes(), &millis(past.created.unwrap_or(reviewed_at)), past.id.as_bytes()])
}

impl Store {
    /// A source's earlier incidents, newest first, at most [`MAX_PER_SOURCE`], one per incident
    /// (its latest revision).
    pub fn past_incidents(&self, source: &str) -> Result<Vec<PastIncident>> {
        let prefix = key(&[source.as_bytes(), b""]);
        let mut out: Vec<PastIncident> = Vec::new();
        for item in self.history.scan_prefix(&prefix).rev() {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let past: PastIncident = serde_json::from_slice(&v).map_err(|e| self.corrupt("history", &k, e))?;
            if !out.iter().any(|p| p.id == past.id) {
                out.push(past);
            }
            if out.len() >= MAX_PER_SOURCE {
                break;
            }
        }
        Ok(out)
    }

    /// Removes up to `batch` entries older than [`KEEP_DAYS`] before `now`, or past the newest
    /// [`MAX_PER_SOURCE`] of their source. Returns (removed, whether a whole batch went).
    pub(crate) fn prune_history(&self, now: DateTime<Utc>, batch: usize) -> Result<(usize, bool)> {
        let before = now.checked_sub_signed(Duration::days(KEEP_DAYS)).map(millis);
        // Keys only: a source's keys are consecutive and in time order, oldest first.
        let mut doomed: Vec<sled::IVec> = Vec::new();
        let mut group: Vec<sled::IVec> = Vec::new();
        let flush = |group: &mut Vec<sled::IVec>, doomed: &mut Vec<sled::IVec>| {
            let over = group.len().saturating_sub(MAX_PER_SOURCE);
            for (i, k) in group.drain(..).enumerate() {
                if i < over || before.is_some_and(|b| entry_time(&k).is_some_and(|t| t < b)) {
                    doomed.push(k);
                }
            }
        };
        for item in self.history.iter().keys() {
            let k = item.map_err(|e| self.io(e))?;
            if group.first().is_some_and(|g| source_of(g) != source_of(&k)) {
                flush(&mut group, &mut doomed);
            }
            group.push(k);
        }
        flush(&mut group, &mut doomed);
        let more = doomed.len() > batch;
        let mut removed = 0;
        for k in doomed.into_iter().take(batch) {
            self.ensure_room()?;
            removed += usize::from(self.history.remove(&k).map_err(|e| self.io(e))?.is_some());
        }
        Ok((removed, more))
    }

    /// Entries in the history tree (for tests and `hindsight check`).
    pub fn history_count(&self) -> usize {
        self.history.len()
    }
}

fn source_of(k: &[u8]) -> &[u8] {
    k.split(|b| *b == 0).next().unwrap_or_default()
}

/// The 8 time bytes after `source\0`.
fn entry_time(k: &[u8]) -> Option<[u8; 8]> {
    let at = source_of(k).len() + 1;
    k.get(at..at + 8)?.try_into().ok()
}
