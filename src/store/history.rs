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
            let past: PastIncident = super::codec::from_packed(&v).map_err(|e| self.corrupt("history", &k, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn past(id: &str, created: Option<&str>) -> PastIncident {
        PastIncident {
            id: id.into(),
            title: format!("incident {id}"),
            created: created.map(t),
            alert_titles: vec!["A user clicked through to a potentially malicious URL".into()],
            techniques: vec!["T1566.002".into()],
            entities: vec!["user:ann@contoso.com".into()],
            initial_access: vec!["T1566.002".into()],
            root_cause: Some("Root cause: a phishing link".into()),
            tenant_id: None,
            follow_ups: vec![],
        }
    }

    fn put(store: &Store, source: &str, p: &PastIncident, reviewed: &str) {
        let k = history_key(source, p, t(reviewed));
        store.history.insert(k, serde_json::to_vec(p).unwrap()).unwrap();
    }

    #[test]
    fn read_newest_first_per_source_one_per_incident_and_kept_over_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let store = Store::open(&path).unwrap();
            put(&store, "contoso", &past("1", Some("2026-06-01T00:00:00Z")), "2026-06-02T00:00:00Z");
            put(&store, "contoso", &past("2", Some("2026-08-01T00:00:00Z")), "2026-08-02T00:00:00Z");
            put(&store, "contoso-eu", &past("9", Some("2026-09-01T00:00:00Z")), "2026-09-02T00:00:00Z");
            // Revision 2 of incident 2: the same key, the latest record.
            let mut again = past("2", Some("2026-08-01T00:00:00Z"));
            again.root_cause = Some("Root cause: a password sprayed".into());
            put(&store, "contoso", &again, "2026-08-20T00:00:00Z");
            // No creation time: filed at when it was reviewed.
            put(&store, "contoso", &past("3", None), "2026-09-10T00:00:00Z");
            store.flush().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let got = store.past_incidents("contoso").unwrap();
        let ids: Vec<&str> = got.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["3", "2", "1"], "newest first, this source only");
        assert_eq!(got[1].root_cause.as_deref(), Some("Root cause: a password sprayed"));
        assert_eq!(got[2], past("1", Some("2026-06-01T00:00:00Z")), "round trip");
        assert_eq!(store.history("contoso").unwrap().incidents, got);
        assert_eq!(store.past_incidents("contoso-eu").unwrap().len(), 1);
        assert!(store.past_incidents("fabrikam").unwrap().is_empty());
    }

    #[test]
    fn pruned_after_180_days_and_past_the_cap_per_source() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        put(&store, "a", &past("old", Some("2026-01-01T00:00:00Z")), "2026-01-02T00:00:00Z");
        put(&store, "a", &past("kept", Some("2026-03-01T00:00:00Z")), "2026-03-02T00:00:00Z");
        put(&store, "b", &past("old-b", Some("2026-01-01T00:00:00Z")), "2026-01-02T00:00:00Z");
        // 180 days after 2026-01-01 is 2026-06-30: nothing is pruned the day before.
        assert_eq!(store.prune_history(t("2026-06-29T00:00:00Z"), 100).unwrap(), (0, false));
        assert_eq!(store.prune_history(t("2026-07-01T00:00:00Z"), 1).unwrap(), (1, true));
        assert_eq!(store.prune_history(t("2026-07-01T00:00:00Z"), 100).unwrap(), (1, false));
        let left: Vec<String> = store.past_incidents("a").unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(left, ["kept"]);
        assert!(store.past_incidents("b").unwrap().is_empty());

        // Past the cap, the oldest go first, whatever their age.
        let base = t("2026-06-01T00:00:00Z");
        for i in 0..MAX_PER_SOURCE + 3 {
            let created = base + Duration::minutes(i as i64);
            let p = PastIncident { created: Some(created), ..past(&format!("n{i}"), None) };
            put(&store, "c", &p, "2026-07-01T00:00:00Z");
        }
        assert_eq!(store.past_incidents("c").unwrap().len(), MAX_PER_SOURCE, "read at most the cap");
        let (removed, _) = store.prune_history(t("2026-07-01T00:00:00Z"), 100).unwrap();
        assert_eq!(removed, 3);
        let c = store.past_incidents("c").unwrap();
        assert_eq!((c.len(), c.last().unwrap().id.as_str()), (MAX_PER_SOURCE, "n3"));
        assert_eq!(store.history_count(), MAX_PER_SOURCE + 1);
    }
}
