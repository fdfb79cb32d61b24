//! The outbox: notifications waiting for delivery, delivered, or dead-lettered. Entries are
//! written with their review (same transaction) and updated after each attempt.
//!
//! Pending entries are also listed in the `due` tree by when their next attempt is due, so a
//! delivery pass reads only what is due — not every notification ever sent, which after months
//! of running is most of the outbox. An entry and its `due` key change in one transaction: a
//! pending entry is never left out of the index (that would be a lost notification).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::{Result, Store, StoreError, key};
use crate::notify::{EntryState, OutboxEntry};

/// `due` key: next attempt (ms, big-endian) then the entry's id.
pub(crate) fn due_key(entry: &OutboxEntry) -> Vec<u8> {
    let ms = u64::try_from(entry.next_attempt_at.timestamp_millis()).unwrap_or(0);
    key(&[&ms.to_be_bytes(), entry.id.as_bytes()])
}

/// Inserts a new entry (an entry already there keeps its delivery state) and, if pending, its
/// `due` key, inside the caller's transaction.
pub(crate) fn insert_new(
    out: &TransactionalTree,
    due: &TransactionalTree,
    entry: &OutboxEntry,
    bytes: &[u8],
) -> std::result::Result<(), ConflictableTransactionError<StoreError>> {
    if out.get(entry.id.as_bytes())?.is_none() {
        out.insert(entry.id.as_bytes(), bytes)?;
        if entry.state == EntryState::Pending {
            due.insert(due_key(entry), &[][..])?;
        }
    }
    Ok(())
}

impl Store {
    /// Pending entries whose next attempt is due, oldest first.
    pub fn outbox_due(&self, now: DateTime<Utc>) -> Result<Vec<OutboxEntry>> {
        let until = u64::try_from(now.timestamp_millis()).unwrap_or(0).saturating_add(1);
        let mut due = Vec::new();
        for item in self.due.range(..until.to_be_bytes().to_vec()) {
            let (k, _) = item.map_err(|e| self.io(e))?;
            let id = k.get(9..).unwrap_or_default();
            let Some(entry) = self.outbox_entry(&String::from_utf8_lossy(id))? else { continue };
            if entry.state == EntryState::Pending && entry.next_attempt_at <= now {
                due.push(entry);
            }
        }
        due.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(due)
    }

    /// Brings every pending entry of `destination` due after `now` forward to `now`: called when
    /// the destination answers again after failing, so that its backlog goes out in the next
    /// pass instead of at each entry's next backoff step (up to hours later). The attempt
    /// count is kept, and with it the budget. Returns how many were brought forward.
    pub fn expedite_outbox(&self, destination: &str, now: DateTime<Utc>) -> Result<usize> {
        let from = u64::try_from(now.timestamp_millis()).unwrap_or(0).saturating_add(1);
        let mut later = Vec::new();
        for item in self.due.range(from.to_be_bytes().to_vec()..) {
            let (k, _) = item.map_err(|e| self.io(e))?;
            let id = String::from_utf8_lossy(k.get(9..).unwrap_or_default()).into_owned();
            later.push(id);
        }
        let mut n = 0;
        for id in later {
            let Some(mut entry) = self.outbox_entry(&id)? else { continue };
            if entry.destination == destination && entry.state == EntryState::Pending && entry.next_attempt_at > now {
                entry.next_attempt_at = now;
                self.update_outbox(&entry)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Records an entry's new state, moving its `due` key with it.
    pub fn update_outbox(&self, entry: &OutboxEntry) -> Result<()> {
        self.ensure_room()?;
        let bytes = serde_json::to_vec(entry).map_err(|e| self.corrupt("outbox", entry.id.as_bytes(), e))?;
        let result = (&self.outbox, &self.due).transaction(|(out, due)| {
            if let Some(old) = out.insert(entry.id.as_bytes(), bytes.as_slice())? {
                let old: OutboxEntry = serde_json::from_slice(&old)
                    .map_err(|e| ConflictableTransactionError::Abort(self.corrupt("outbox", entry.id.as_bytes(), e)))?;
                due.remove(due_key(&old))?;
            }
            if entry.state == EntryState::Pending {
                due.insert(due_key(entry), &[][..])?;
            }
            Ok(())
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.io(e),
        })
    }

    pub fn outbox_entry(&self, id: &str) -> Result<Option<OutboxEntry>> {
        match self.outbox.get(id.as_bytes()).map_err(|e| self.io(e))? {
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| self.corrupt("outbox", id.as_bytes(), e)),
            None => Ok(None),
        }
    }

    /// Every entry (for listing and tests).
    pub fn outbox_entries(&self) -> Result<Vec<OutboxEntry>> {
        self.outbox
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| self.io(e))?;
                serde_json::from_slice(&v).map_err(|e| self.corrupt("outbox", &k, e))
            })
            .collect()
    }

    /// (destination, state) of every entry, read without building the bodies (metrics).
    pub fn outbox_states(&self) -> Result<Vec<(String, &'static str)>> {
        #[derive(Deserialize)]
        struct Light {
            destination: String,
            state: String,
        }
        self.outbox
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| self.io(e))?;
                let l: Light = serde_json::from_slice(&v).map_err(|e| self.corrupt("outbox", &k, e))?;
                let state = match l.state.as_str() {
                    "pending" => "pending",
                    "delivered" => "delivered",
                    _ => "dead",
                };
                Ok((l.destination, state))
            })
            .collect()
    }

    pub fn remove_outbox(&self, id: &str) -> Result<()> {
        self.ensure_room()?;
        let Some(entry) = self.outbox_entry(id)? else { return Ok(()) };
        let result = (&self.outbox, &self.due).transaction(|(out, due)| {
            out.remove(id.as_bytes())?;
            due.remove(due_key(&entry))?;
            Ok::<(), ConflictableTransactionError<StoreError>>(())
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.io(e),
        })
    }

    /// Lists every pending entry in `due` (schema 1 → 2).
    pub(super) fn build_due_index(&self) -> Result<usize> {
        let mut n = 0;
        for e in self.outbox_entries()? {
            if e.state == EntryState::Pending {
                self.due.insert(due_key(&e), &[][..]).map_err(|e| self.io(e))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
