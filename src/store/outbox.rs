//! The outbox: notifications waiting for delivery, delivered, or dead-lettered. Entries are
//! written with their review (same transaction) and updated after each attempt.

use chrono::{DateTime, Utc};

use super::{Result, Store};
use crate::notify::{EntryState, OutboxEntry};

impl Store {
    /// Pending entries whose next attempt is due, oldest first.
    pub fn outbox_due(&self, now: DateTime<Utc>) -> Result<Vec<OutboxEntry>> {
        let mut due = Vec::new();
        for item in self.outbox.iter() {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let entry: OutboxEntry = serde_json::from_slice(&v).map_err(|e| self.corrupt("outbox", &k, e))?;
            if entry.state == EntryState::Pending && entry.next_attempt_at <= now {
                due.push(entry);
            }
        }
        due.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(due)
    }

    pub fn update_outbox(&self, entry: &OutboxEntry) -> Result<()> {
        let bytes = serde_json::to_vec(entry).map_err(|e| self.corrupt("outbox", entry.id.as_bytes(), e))?;
        self.outbox.insert(entry.id.as_bytes(), bytes).map(|_| ()).map_err(|e| self.io(e))
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
}

impl Store {
    pub fn remove_outbox(&self, id: &str) -> Result<()> {
        self.outbox.remove(id.as_bytes()).map(|_| ()).map_err(|e| self.io(e))
    }
}
