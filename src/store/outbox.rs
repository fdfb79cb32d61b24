//! The outbox: notifications waiting for delivery, delivered, or dead-lettered. Entries are
//! written with their review (same transaction) and updated after each attempt.
//!
//! Pending entries are also listed in the `due` tree by when their next attempt is due, so a
//! delivery pass reads only what is due — not every notification ever sent, which after months
//! of running is most of the outbox. An entry and its `due` key change in one transaction: a
//! pending entry is never left out of the index (that would be a lost notification).
//!
//! The daemon reports how many entries each destination has in each state (`/readyz`, the
//! gauges) after every delivery pass. Counting by reading the outbox would cost a read of every
//! notification ever sent, each pass: [`OutboxCounts`] is built by one such read, at the first
//! request, and then kept up to date by every write below after it commits. Only one process
//! has the store open (sled's lock), so what it counts is the whole truth.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::{Result, Store, StoreError, key};
use crate::outbox::{EntryState, OutboxEntry};

/// `due` key: next attempt (ms, big-endian) then the entry's id.
pub(crate) fn due_key(entry: &OutboxEntry) -> Vec<u8> {
    key(&[&super::millis(entry.next_attempt_at), entry.id.as_bytes()])
}

/// `settled` key: the state's label, when the entry got that state (ms, big-endian), then the
/// id. The delivered and dead-lettered entries by age, so that retention
/// ([`super::retention`]) finds the old ones without reading the outbox.
pub(crate) fn settled_key(entry: &OutboxEntry) -> Option<Vec<u8>> {
    let at = match &entry.state {
        EntryState::Pending => return None,
        EntryState::Delivered { at } | EntryState::Dead { at, .. } => at,
    };
    Some(key(&[entry.state.label().as_bytes(), &super::millis(*at), entry.id.as_bytes()]))
}

/// Lists an entry in the index its state belongs to (`due` or `settled`), in the caller's
/// transaction.
pub(crate) fn index(
    due: &TransactionalTree,
    settled: &TransactionalTree,
    entry: &OutboxEntry,
) -> std::result::Result<(), ConflictableTransactionError<StoreError>> {
    if entry.state == EntryState::Pending {
        due.insert(due_key(entry), &[][..])?;
    }
    if let Some(k) = settled_key(entry) {
        settled.insert(k, &[][..])?;
    }
    Ok(())
}

/// Takes an entry out of the index its (old) state put it in.
fn unindex(
    due: &TransactionalTree,
    settled: &TransactionalTree,
    entry: &OutboxEntry,
) -> std::result::Result<(), ConflictableTransactionError<StoreError>> {
    due.remove(due_key(entry))?;
    if let Some(k) = settled_key(entry) {
        settled.remove(k)?;
    }
    Ok(())
}

type Counts = BTreeMap<(String, &'static str), usize>;

#[cfg(test)]
type CommittedHook = Box<dyn FnOnce() + Send>;

/// Entries by (destination, state label), shared by every clone of a [`Store`]. `None` until
/// first asked for; changes are applied only once the transaction that made them committed.
#[derive(Clone, Default)]
pub(crate) struct OutboxCounts {
    counts: Arc<Mutex<Option<Counts>>>,
    /// Held shared by a write from before its transaction until its change is counted, and
    /// exclusively by the first count's read of the outbox: a write that committed during that
    /// read would otherwise be counted twice (seen by the read, then added).
    gate: Arc<RwLock<()>>,
    /// Tests only: run once by the next write after its transaction committed and before its
    /// change is counted, to hold a write in that window while the first count is asked for.
    #[cfg(test)]
    committed: Arc<Mutex<Option<CommittedHook>>>,
}

impl OutboxCounts {
    /// Taken by every write to the outbox, for the length of the write and its count.
    pub(crate) fn writing(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn change(&self, destination: &str, from: Option<&'static str>, to: Option<&'static str>) {
        #[cfg(test)]
        if let Some(hook) = self.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            hook();
        }
        let mut guard = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(counts) = guard.as_mut() else { return };
        if let Some(from) = from
            && let Some(n) = counts.get_mut(&(destination.to_owned(), from))
        {
            *n = n.saturating_sub(1);
        }
        if let Some(to) = to {
            *counts.entry((destination.to_owned(), to)).or_default() += 1;
        }
    }

    /// Records entries that a committed transaction added (those [`insert_new`] inserted).
    pub(crate) fn added<'a>(&self, entries: impl IntoIterator<Item = &'a OutboxEntry>) {
        for e in entries {
            self.change(&e.destination, None, Some(e.state.label()));
        }
    }
}

/// Inserts every entry of `entries` that is new, inside the caller's transaction; returns those
/// inserted, for [`OutboxCounts::added`] once the transaction commits. Set anew on each run of
/// the closure: sled may run it again after a conflict.
pub(crate) fn insert_all<'e>(
    out: &TransactionalTree,
    due: &TransactionalTree,
    settled: &TransactionalTree,
    entries: &[(&'e OutboxEntry, Vec<u8>)],
) -> std::result::Result<Vec<&'e OutboxEntry>, ConflictableTransactionError<StoreError>> {
    let mut added = Vec::new();
    for (entry, bytes) in entries {
        if insert_new(out, due, settled, entry, bytes)? {
            added.push(*entry);
        }
    }
    Ok(added)
}

impl Store {
    /// Each entry with its stored bytes, before a transaction that inserts them.
    pub(super) fn encode_entries<'e>(&self, outbox: &'e [OutboxEntry]) -> Result<Vec<(&'e OutboxEntry, Vec<u8>)>> {
        outbox
            .iter()
            .map(|e| {
                super::codec::to_packed(e).map(|b| (e, b)).map_err(|err| self.corrupt("outbox", e.id.as_bytes(), err))
            })
            .collect()
    }

    /// A transaction's outcome as the store's error: its own abort, or sled's.
    pub(super) fn committed<T>(&self, result: std::result::Result<T, TransactionError<StoreError>>) -> Result<T> {
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.io(e),
        })
    }
}

/// Inserts a new entry (an entry already there keeps its delivery state) and its index key,
/// inside the caller's transaction. Returns whether it was inserted, for
/// [`OutboxCounts::added`] once the transaction commits.
pub(crate) fn insert_new(
    out: &TransactionalTree,
    due: &TransactionalTree,
    settled: &TransactionalTree,
    entry: &OutboxEntry,
    bytes: &[u8],
) -> std::result::Result<bool, ConflictableTransactionError<StoreError>> {
    if out.get(entry.id.as_bytes())?.is_some() {
        return Ok(false);
    }
    out.insert(entry.id.as_bytes(), bytes)?;
    index(due, settled, entry)?;
    Ok(true)
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
    /// count is kept, and with it the budget. An entry whose destination asked it to wait
    /// (`Retry-After`, kept as `not_before`) is left where it is. Returns how many were brought
    /// forward.
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
            let asked_to_wait = entry.not_before.is_some_and(|t| t > now);
            if entry.destination == destination
                && entry.state == EntryState::Pending
                && entry.next_attempt_at > now
                && !asked_to_wait
            {
                entry.next_attempt_at = now;
                self.update_outbox(&entry)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Records an entry's new state, moving its index key (`due`, `settled`) with it.
    pub fn update_outbox(&self, entry: &OutboxEntry) -> Result<()> {
        self.ensure_room()?;
        let bytes = super::codec::to_packed(entry).map_err(|e| self.corrupt("outbox", entry.id.as_bytes(), e))?;
        let _counted = self.counts.writing();
        let result = (&self.outbox, &self.due, &self.settled).transaction(|(out, due, settled)| {
            let mut was = None;
            if let Some(old) = out.insert(entry.id.as_bytes(), bytes.as_slice())? {
                let old: OutboxEntry = super::codec::from_packed(&old)
                    .map_err(|e| ConflictableTransactionError::Abort(self.corrupt("outbox", entry.id.as_bytes(), e)))?;
                unindex(due, settled, &old)?;
                was = Some(old.state.label());
            }
            index(due, settled, entry)?;
            Ok(was)
        });
        let was = result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.io(e),
        })?;
        self.counts.change(&entry.destination, was, Some(entry.state.label()));
        Ok(())
    }

    pub fn outbox_entry(&self, id: &str) -> Result<Option<OutboxEntry>> {
        match self.outbox.get(id.as_bytes()).map_err(|e| self.io(e))? {
            Some(v) => super::codec::from_packed(&v).map(Some).map_err(|e| self.corrupt("outbox", id.as_bytes(), e)),
            None => Ok(None),
        }
    }

    /// Every entry (for listing and tests).
    pub fn outbox_entries(&self) -> Result<Vec<OutboxEntry>> {
        self.outbox
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| self.io(e))?;
                super::codec::from_packed(&v).map_err(|e| self.corrupt("outbox", &k, e))
            })
            .collect()
    }

    /// How many entries each destination has in each state ("pending", "delivered", "dead"):
    /// read from the outbox once, then kept by the writes (see the module's note).
    pub fn outbox_counts(&self) -> Result<BTreeMap<(String, &'static str), usize>> {
        if let Some(counts) = self.counts.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
            return Ok(counts.clone());
        }
        let _no_writes = self.counts.gate.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut guard = self.counts.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(counts) = guard.as_ref() {
            return Ok(counts.clone());
        }
        let counts = self.scan_counts()?;
        *guard = Some(counts.clone());
        Ok(counts)
    }

    /// The counts by reading every entry (the first [`Store::outbox_counts`], and tests).
    fn scan_counts(&self) -> Result<Counts> {
        #[derive(Deserialize)]
        struct Light {
            destination: String,
            state: String,
        }
        let mut counts = Counts::new();
        for item in self.outbox.iter() {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let l: Light = super::codec::from_packed(&v).map_err(|e| self.corrupt("outbox", &k, e))?;
            let state = EntryState::LABELS
                .into_iter()
                .find(|label| *label == l.state)
                .ok_or_else(|| self.corrupt("outbox", &k, format!("unknown state {:?}", l.state)))?;
            *counts.entry((l.destination, state)).or_default() += 1;
        }
        Ok(counts)
    }

    pub fn remove_outbox(&self, id: &str) -> Result<()> {
        self.remove_outbox_if(id, &|_| true).map(|_| ())
    }

    /// Removes an entry if `doomed` says so of it as it is when the transaction reads it (not
    /// as an earlier read saw it: the deliverer may have changed it since). Returns it, if removed.
    pub(crate) fn remove_outbox_if(
        &self,
        id: &str,
        doomed: &dyn Fn(&OutboxEntry) -> bool,
    ) -> Result<Option<OutboxEntry>> {
        self.ensure_room()?;
        let _counted = self.counts.writing();
        let result = (&self.outbox, &self.due, &self.settled).transaction(|(out, due, settled)| {
            let Some(bytes) = out.get(id.as_bytes())? else { return Ok(None) };
            let entry: OutboxEntry = super::codec::from_packed(&bytes)
                .map_err(|e| ConflictableTransactionError::Abort(self.corrupt("outbox", id.as_bytes(), e)))?;
            if !doomed(&entry) {
                return Ok(None);
            }
            out.remove(id.as_bytes())?;
            unindex(due, settled, &entry)?;
            Ok::<_, ConflictableTransactionError<StoreError>>(Some(entry))
        });
        let removed = result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.io(e),
        })?;
        if let Some(entry) = &removed {
            self.counts.change(&entry.destination, Some(entry.state.label()), None);
        }
        Ok(removed)
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

    /// Lists every delivered and dead-lettered entry in `settled` (schema 2 → 3).
    pub(super) fn build_settled_index(&self) -> Result<usize> {
        let mut n = 0;
        for e in self.outbox_entries()? {
            if let Some(k) = settled_key(&e) {
                self.settled.insert(k, &[][..]).map_err(|e| self.io(e))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, destination: &str) -> OutboxEntry {
        let now: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().unwrap();
        OutboxEntry {
            id: id.to_owned(),
            destination: destination.to_owned(),
            event: "review.created".into(),
            source: "t".into(),
            incident_id: id.to_owned(),
            revision: 1,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            state: EntryState::Pending,
            last_error: None,
            not_before: None,
            body: serde_json::json!({}),
            digest: None,
        }
    }

    #[test]
    fn entries_are_stored_compressed_and_plain_json_from_before_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut a = entry("1", "hook");
        a.body = serde_json::json!({"text": "x".repeat(2000)});
        s.record_digests(&[], std::slice::from_ref(&a), None).unwrap();
        let stored = s.outbox.get(b"1").unwrap().unwrap();
        assert!(super::super::codec::is_packed(&stored) && stored.len() < 500, "{} bytes", stored.len());
        // An entry written by a Hindsight before the outbox was compressed: plain JSON.
        let old = entry("2", "mail");
        s.outbox.insert(b"2", serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(s.outbox_entry("2").unwrap(), Some(old.clone()));
        let mut delivered = old.clone();
        delivered.state = EntryState::Delivered { at: old.created_at };
        s.update_outbox(&delivered).unwrap();
        assert_eq!(s.outbox_entry("2").unwrap(), Some(delivered));
        assert_eq!(s.outbox_entries().unwrap().len(), 2);
    }

    fn nonzero(c: Counts) -> Counts {
        c.into_iter().filter(|(_, n)| *n > 0).collect()
    }

    #[test]
    fn counts_follow_every_write_and_agree_with_a_fresh_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert!(s.outbox_counts().unwrap().is_empty());
        let (a, b) = (entry("1", "hook"), entry("2", "mail"));
        s.record_digests(&[], &[a.clone(), b.clone()], None).unwrap();
        // Written again (a crash before the caller noted it): already there, not counted twice.
        s.record_digests(&[], std::slice::from_ref(&a), None).unwrap();
        let mut delivered = a.clone();
        delivered.state = EntryState::Delivered { at: a.created_at };
        s.update_outbox(&delivered).unwrap();
        let mut dead = b.clone();
        dead.state = EntryState::Dead { at: b.created_at, reason: "410".into() };
        s.update_outbox(&dead).unwrap();
        s.record_digests(&[], &[entry("3", "mail")], None).unwrap();
        s.remove_outbox("2").unwrap();
        s.remove_outbox("2").unwrap();
        let kept = nonzero(s.outbox_counts().unwrap());
        let want: Counts = [(("hook".to_owned(), "delivered"), 1), (("mail".to_owned(), "pending"), 1)].into();
        assert_eq!(kept, want);
        assert_eq!(nonzero(s.scan_counts().unwrap()), want);
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(nonzero(s.outbox_counts().unwrap()), want, "after a reopen, read from the outbox");
    }

    /// Runs `write` on its own thread and holds it after its transaction committed, before its
    /// change is counted (the window the gate closes); meanwhile asks for the first count on a
    /// third thread and gives it a second to finish. Returns whether it finished while the
    /// write was held, and the count it returned.
    fn first_count_while_a_write_is_held(s: &Store, write: impl FnOnce(&Store) + Send + 'static) -> (bool, Counts) {
        use std::sync::mpsc::channel;
        use std::time::Duration;
        let (committed_tx, committed_rx) = channel();
        let (release_tx, release_rx) = channel::<()>();
        *s.counts.committed.lock().unwrap() = Some(Box::new(move || {
            committed_tx.send(()).unwrap();
            let _ = release_rx.recv();
        }));
        let writer = {
            let s = s.clone();
            std::thread::spawn(move || write(&s))
        };
        committed_rx.recv_timeout(Duration::from_secs(30)).expect("the write reached the count");
        let (counted_tx, counted_rx) = channel();
        let counter = {
            let s = s.clone();
            std::thread::spawn(move || {
                let counts = s.outbox_counts().unwrap();
                let _ = counted_tx.send(());
                counts
            })
        };
        // With the gate the count cannot finish before the write is released, so this waits the
        // whole second; without it, the count reads the outbox at once.
        let finished_while_held = counted_rx.recv_timeout(Duration::from_secs(1)).is_ok();
        release_tx.send(()).unwrap();
        writer.join().unwrap();
        (finished_while_held, counter.join().unwrap())
    }

    /// A write that committed but is not yet counted when the first count reads the outbox
    /// would be seen by that read and then counted again (or, for a removal, taken off
    /// twice). The first count waits for such a write; after it, the kept counts are exactly
    /// what a fresh read of the outbox finds. Each kind of write: a new entry, a new state, a
    /// removal.
    #[test]
    fn writes_during_the_first_count_are_counted_once() {
        type Write = Box<dyn FnOnce(&Store) + Send>;
        let cases: [(&str, Write, Counts); 3] = [
            (
                "a new entry",
                Box::new(|s: &Store| s.record_digests(&[], &[entry("new", "hook")], None).unwrap()),
                [(("hook".to_owned(), "pending"), 2), (("hook".to_owned(), "delivered"), 2)].into(),
            ),
            (
                "a delivery",
                Box::new(|s: &Store| {
                    let mut e = entry("p", "hook");
                    e.state = EntryState::Delivered { at: e.created_at };
                    s.update_outbox(&e).unwrap();
                }),
                [(("hook".to_owned(), "delivered"), 3)].into(),
            ),
            (
                "a removal",
                Box::new(|s: &Store| s.remove_outbox("d").unwrap()),
                [(("hook".to_owned(), "pending"), 1), (("hook".to_owned(), "delivered"), 1)].into(),
            ),
        ];
        for (what, write, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            let s = Store::open(dir.path()).unwrap();
            // One pending and two delivered entries (so that a removal taken off twice shows),
            // written before anything was counted.
            s.record_digests(&[], &[entry("p", "hook"), entry("d", "hook"), entry("e", "hook")], None).unwrap();
            for id in ["d", "e"] {
                let mut e = entry(id, "hook");
                e.state = EntryState::Delivered { at: e.created_at };
                s.update_outbox(&e).unwrap();
            }

            let (finished_while_held, first) = first_count_while_a_write_is_held(&s, write);
            assert!(
                !finished_while_held,
                "{what}: the first count read the outbox while a committed write was not yet counted"
            );
            assert_eq!(nonzero(first), want, "{what}: the first count");
            assert_eq!(nonzero(s.scan_counts().unwrap()), want, "{what}: the outbox itself");
            assert_eq!(nonzero(s.outbox_counts().unwrap()), want, "{what}: the kept counts");
        }
    }

    /// A destination that answers again brings its waiting entries forward, except one it
    /// asked to wait (`Retry-After`): that one keeps its time.
    #[test]
    fn expedite_leaves_an_entry_the_destination_asked_to_wait() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().unwrap();
        let later = now + chrono::Duration::seconds(8);
        let mut asked = entry("asked", "hook");
        asked.next_attempt_at = later;
        asked.not_before = Some(later);
        let mut backoff = entry("backoff", "hook");
        backoff.next_attempt_at = later;
        let mut other = entry("other", "mail");
        other.next_attempt_at = later;
        for e in [&asked, &backoff, &other] {
            store.update_outbox(e).unwrap();
        }
        assert_eq!(store.expedite_outbox("hook", now).unwrap(), 1);
        assert_eq!(store.outbox_entry("backoff").unwrap().unwrap().next_attempt_at, now);
        assert_eq!(store.outbox_entry("asked").unwrap().unwrap().next_attempt_at, later, "Retry-After is kept");
        assert_eq!(store.outbox_entry("other").unwrap().unwrap().next_attempt_at, later, "another destination");
    }
}
