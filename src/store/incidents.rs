//! Incidents in: snapshots, resolutions (the review queue), per-source cursors and the files a
//! directory source has handled.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Result, Store, StoreError, key};
use crate::model::{Incident, IncidentStatus, Transition};

/// An incident as a source received it: the raw JSON (kept as is, for audits and for fields we do
/// not read yet) and its normalized form.
///
/// The raw JSON is kept as its text, not as a `serde_json::Value`: a tree of a large incident
/// costs about ten times its text, and the text is all the store writes.
#[derive(Debug, Clone)]
pub struct Observed {
    pub raw: Box<RawValue>,
    pub incident: Incident,
}

impl Observed {
    /// An observation of a parsed incident (the Graph source's pages, tests).
    pub fn from_value(raw: &serde_json::Value, incident: Incident) -> Observed {
        // Serializing a `Value` cannot fail (its map keys are strings).
        let raw = serde_json::value::to_raw_value(raw).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Observed { raw, incident }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub source: String,
    pub last_update: DateTime<Utc>,
    pub status: IncidentStatus,
    /// How many times the incident moved to resolved while Hindsight watched.
    pub resolutions: u32,
    pub received_at: DateTime<Utc>,
    /// Stored as the JSON it is, written and read back without a tree.
    pub raw: Box<RawValue>,
    pub incident: Incident,
    /// State changes seen between polls, oldest first (records from before they were kept
    /// have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
}

/// One resolution of one incident: what a review is made from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resolution {
    pub source: String,
    pub incident_id: String,
    /// 1 for the first resolution; a re-opened and re-resolved incident gets 2, and so on.
    pub revision: u32,
    pub detected_at: DateTime<Utc>,
    pub raw: Box<RawValue>,
    pub incident: Incident,
    /// The incident's observed state changes up to this resolution.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
}

/// Key of a resolution: `source\0incident id\0revision`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResolutionKey(pub Vec<u8>);

impl ResolutionKey {
    pub fn new(source: &str, incident_id: &str, revision: u32) -> Self {
        ResolutionKey(key(&[source.as_bytes(), incident_id.as_bytes(), &revision.to_be_bytes()]))
    }
}

/// How far a source has read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Nothing updated before this is taken: the first start minus the backfill window.
    pub floor: DateTime<Utc>,
    /// The largest `lastUpdateDateTime` stored so far.
    pub last_update: Option<DateTime<Utc>>,
    pub passes: u64,
    pub updated_at: DateTime<Utc>,
}

impl Cursor {
    /// Where the next pass starts reading: the last update seen minus an overlap that absorbs
    /// updates which become visible late, never below the floor.
    pub fn next_from(&self, overlap: chrono::Duration) -> DateTime<Utc> {
        self.last_update.map_or(self.floor, |t| (t - overlap).max(self.floor))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FileOutcome {
    Ingested { incidents: usize },
    Rejected { reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub name: String,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub outcome: FileOutcome,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Snapshots newer than what was stored.
    pub stored: usize,
    /// Seen before (same or older `lastUpdateDateTime`): the overlap window at work.
    pub unchanged: usize,
    /// Incidents skipped because they were last updated before the source's floor.
    pub before_floor: usize,
    /// New resolutions queued for review.
    pub resolutions: Vec<ResolutionKey>,
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Our own plain structs, serde_json::Value and RawValue always serialize.
    serde_json::to_vec(v).unwrap_or_default()
}

impl Store {
    fn decode<T: for<'de> Deserialize<'de>>(&self, tree: &'static str, k: &[u8], v: &[u8]) -> Result<T> {
        serde_json::from_slice(v).map_err(|e| self.corrupt(tree, k, e))
    }

    /// Stores what a source observed, in one transaction: newer snapshots replace older ones, an
    /// incident that moved to resolved gets a new resolution queued for review, and (for
    /// directory sources) the file is recorded as handled. Idempotent: observing the same
    /// snapshot again changes nothing. Not flushed: call [`Store::advance_cursor`] or
    /// [`Store::flush`] before acknowledging anything.
    pub fn ingest(
        &self,
        source: &str,
        observed: &[Observed],
        floor: Option<DateTime<Utc>>,
        file: Option<(&str, &FileRecord)>,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome> {
        self.ensure_room()?;
        // Oldest first, so that an incident seen twice in one batch moves through its states in order.
        let mut order: Vec<&Observed> = observed.iter().collect();
        order.sort_by_key(|o| o.incident.last_update);
        let result = (&self.incidents, &self.resolutions, &self.pending, &self.files).transaction(
            |(incidents, resolutions, pending, files)| {
                let mut out = IngestOutcome::default();
                for o in &order {
                    let i = &o.incident;
                    if floor.is_some_and(|f| i.last_update < f) {
                        out.before_floor += 1;
                        continue;
                    }
                    let k = key(&[source.as_bytes(), i.id.as_bytes()]);
                    let prev: Option<IncidentRecord> = match incidents.get(&k)? {
                        Some(v) => Some(
                            serde_json::from_slice(&v)
                                .map_err(|e| ConflictableTransactionError::Abort(self.corrupt("incidents", &k, e)))?,
                        ),
                        None => None,
                    };
                    if prev.as_ref().is_some_and(|p| p.last_update >= i.last_update) {
                        out.unchanged += 1;
                        continue;
                    }
                    let was_resolved = prev.as_ref().is_some_and(|p| p.status == IncidentStatus::Resolved);
                    let newly_resolved = i.status == IncidentStatus::Resolved && !was_resolved;
                    let revision = prev.as_ref().map_or(0, |p| p.resolutions) + u32::from(newly_resolved);
                    let record = IncidentRecord {
                        source: source.to_owned(),
                        last_update: i.last_update,
                        status: i.status.clone(),
                        resolutions: revision,
                        received_at: now,
                        raw: o.raw.clone(),
                        incident: i.clone(),
                        transitions: prev.as_ref().map(|p| p.transitions.clone()).unwrap_or_default(),
                    };
                    incidents.insert(k, encode(&record))?;
                    out.stored += 1;
                    if newly_resolved {
                        let rk = ResolutionKey::new(source, &i.id, revision);
                        let resolution = Resolution {
                            source: source.to_owned(),
                            incident_id: i.id.clone(),
                            revision,
                            detected_at: now,
                            raw: o.raw.clone(),
                            incident: i.clone(),
                            transitions: record.transitions.clone(),
                        };
                        resolutions.insert(rk.0.clone(), encode(&resolution))?;
                        pending.insert(rk.0.clone(), &[][..])?;
                        out.resolutions.push(rk);
                    }
                }
                if let Some((hash, record)) = file {
                    files.insert(key(&[source.as_bytes(), hash.as_bytes()]), encode(record))?;
                }
                Ok(out)
            },
        );
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.io(e),
        })
    }

    pub fn cursor(&self, source: &str) -> Result<Option<Cursor>> {
        match self.cursors.get(source.as_bytes()).map_err(|e| self.io(e))? {
            Some(v) => self.decode("cursors", source.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    /// Records a finished pass and makes it durable together with every incident stored before
    /// it: the cursor never gets ahead of what is on disk.
    pub async fn advance_cursor(&self, source: &str, cursor: &Cursor) -> Result<()> {
        self.ensure_room()?;
        self.cursors.insert(source.as_bytes(), encode(cursor)).map_err(|e| self.io(e))?;
        self.flush_async().await
    }

    pub fn incident(&self, source: &str, id: &str) -> Result<Option<IncidentRecord>> {
        let k = key(&[source.as_bytes(), id.as_bytes()]);
        match self.incidents.get(&k).map_err(|e| self.io(e))? {
            Some(v) => self.decode("incidents", &k, &v).map(Some),
            None => Ok(None),
        }
    }

    pub fn incident_count(&self) -> usize {
        self.incidents.len()
    }

    pub fn resolution(&self, k: &ResolutionKey) -> Result<Option<Resolution>> {
        match self.resolutions.get(&k.0).map_err(|e| self.io(e))? {
            Some(v) => self.decode("resolutions", &k.0, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Every resolution, oldest key first (for tests, the digest and audits).
    pub fn resolutions(&self) -> impl Iterator<Item = Result<Resolution>> + '_ {
        self.resolutions.iter().map(move |r| {
            let (k, v) = r.map_err(|e| self.io(e))?;
            self.decode("resolutions", &k, &v)
        })
    }

    /// Resolutions waiting for their review.
    pub fn pending(&self) -> impl Iterator<Item = Result<ResolutionKey>> + '_ {
        self.pending.iter().keys().map(move |k| k.map(|k| ResolutionKey(k.to_vec())).map_err(|e| self.io(e)))
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    pub fn file(&self, source: &str, sha256: &str) -> Result<Option<FileRecord>> {
        let k = key(&[source.as_bytes(), sha256.as_bytes()]);
        match self.files.get(&k).map_err(|e| self.io(e))? {
            Some(v) => self.decode("files", &k, &v).map(Some),
            None => Ok(None),
        }
    }

    pub fn record_file(&self, source: &str, sha256: &str, record: &FileRecord) -> Result<()> {
        self.ensure_room()?;
        let k = key(&[source.as_bytes(), sha256.as_bytes()]);
        self.files.insert(k, encode(record)).map(|_| ()).map_err(|e| self.io(e))
    }
}

impl From<StoreError> for ConflictableTransactionError<StoreError> {
    fn from(e: StoreError) -> Self {
        ConflictableTransactionError::Abort(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obs(id: &str, status: &str, updated: &str) -> Observed {
        let raw = json!({"id": id, "status": status, "lastUpdateDateTime": updated, "alerts": []});
        Observed::from_value(&raw, Incident::from_graph(&raw).unwrap())
    }

    fn now() -> DateTime<Utc> {
        "2026-11-24T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn one_resolution_per_transition_to_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let out = s.ingest("t", &[obs("1", "active", "2026-11-24T10:00:00Z")], None, None, now()).unwrap();
        assert_eq!((out.stored, out.resolutions.len()), (1, 0));

        let out = s.ingest("t", &[obs("1", "resolved", "2026-11-24T10:05:00Z")], None, None, now()).unwrap();
        assert_eq!(out.resolutions, [ResolutionKey::new("t", "1", 1)]);
        // The overlap window brings the same snapshot again: nothing changes.
        let out = s.ingest("t", &[obs("1", "resolved", "2026-11-24T10:05:00Z")], None, None, now()).unwrap();
        assert_eq!((out.stored, out.unchanged, out.resolutions.len()), (0, 1, 0));
        // Updated while resolved (e.g. a comment): a newer snapshot, not a new resolution.
        let out = s.ingest("t", &[obs("1", "resolved", "2026-11-24T10:07:00Z")], None, None, now()).unwrap();
        assert_eq!((out.stored, out.resolutions.len()), (1, 0));
        // Re-opened, then resolved again in the same batch: revision 2.
        let out = s
            .ingest(
                "t",
                &[obs("1", "resolved", "2026-11-24T11:00:00Z"), obs("1", "active", "2026-11-24T10:30:00Z")],
                None,
                None,
                now(),
            )
            .unwrap();
        assert_eq!(out.resolutions, [ResolutionKey::new("t", "1", 2)]);
        assert_eq!(s.pending_count(), 2);
        assert_eq!(s.resolution(&ResolutionKey::new("t", "1", 2)).unwrap().unwrap().revision, 2);
        assert_eq!(s.incident("t", "1").unwrap().unwrap().resolutions, 2);
        // An older snapshot arriving late does not roll anything back.
        let out = s.ingest("t", &[obs("1", "active", "2026-11-24T09:00:00Z")], None, None, now()).unwrap();
        assert_eq!(out.unchanged, 1);
        assert_eq!(s.incident("t", "1").unwrap().unwrap().status, IncidentStatus::Resolved);
    }

    #[test]
    fn sources_do_not_share_incidents_and_the_floor_keeps_old_ones_out() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let floor: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
        let batch = [obs("1", "resolved", "2026-11-24T09:59:59Z"), obs("2", "resolved", "2026-11-24T10:00:00Z")];
        let out = s.ingest("a", &batch, Some(floor), None, now()).unwrap();
        assert_eq!((out.before_floor, out.resolutions.len()), (1, 1));
        let out = s.ingest("b", &batch, None, None, now()).unwrap();
        assert_eq!(out.resolutions.len(), 2);
        assert_eq!(s.pending_count(), 3);
    }

    #[tokio::test]
    async fn what_is_acknowledged_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = Cursor {
            floor: "2026-11-24T00:00:00Z".parse().unwrap(),
            last_update: Some("2026-11-24T10:05:00Z".parse().unwrap()),
            passes: 1,
            updated_at: now(),
        };
        {
            let s = Store::open(dir.path()).unwrap();
            s.ingest("t", &[obs("1", "resolved", "2026-11-24T10:05:00Z")], None, None, now()).unwrap();
            s.advance_cursor("t", &cursor).await.unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.cursor("t").unwrap(), Some(cursor));
        assert_eq!(s.pending().count(), 1);
        assert_eq!(s.resolutions().next().unwrap().unwrap().incident_id, "1");
    }

    #[test]
    fn the_cursor_starts_at_the_floor_and_overlaps_after() {
        let c =
            Cursor { floor: "2026-11-24T10:00:00Z".parse().unwrap(), last_update: None, passes: 0, updated_at: now() };
        let five = chrono::Duration::minutes(5);
        assert_eq!(c.next_from(five), c.floor);
        let c = Cursor { last_update: Some("2026-11-24T10:02:00Z".parse().unwrap()), ..c };
        assert_eq!(c.next_from(five), c.floor, "never below the floor");
        let c = Cursor { last_update: Some("2026-11-24T11:00:00Z".parse().unwrap()), ..c };
        assert_eq!(c.next_from(five).to_rfc3339(), "2026-11-24T10:55:00+00:00");
    }
}
