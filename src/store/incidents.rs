//! Incidents in: snapshots, resolutions (the review queue), per-source cursors and the files a
//! directory source has handled.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Result, Store, StoreError, key};
use crate::model::{Incident, IncidentStatus, Limits, ParseError, Transition};

/// An incident as a source received it: the raw JSON, and the incident's own fields read from
/// it without its alerts.
///
/// The raw JSON is what is stored: the review reads the whole incident from it, within the
/// daemon's `[review]` limits ([`Resolution::incident`]), and it keeps the fields we do not read
/// yet for audits. Reading the alerts at ingest as well was most of ingest's cost and was thrown
/// away for every snapshot of an incident still open (most of what a poll sees); storing the
/// normalized form beside the text was a third of the rest (`cargo bench --bench backlog`,
/// 2026-12-07). The header (id, status, times, assignment, comments) is what ingest itself uses.
///
/// The raw JSON is kept as its text, not as a `serde_json::Value`: a tree of a large incident
/// costs about ten times its text, and the text is all the store writes.
#[derive(Debug, Clone)]
pub struct Observed {
    pub raw: Box<RawValue>,
    /// [`Incident::header_from_graph_str`] of `raw`: no alerts.
    pub header: Incident,
}

impl Observed {
    /// An incident from its text (a Graph page's item, a file's incident); fails where reading
    /// the whole incident would.
    pub fn read(raw: Box<RawValue>) -> Result<Observed, ParseError> {
        let header = Incident::header_from_graph_str(raw.get())?;
        Ok(Observed { raw, header })
    }

    /// [`Observed::read`] of a parsed incident (tests, benches).
    pub fn from_value(raw: &serde_json::Value) -> Result<Observed, ParseError> {
        // Serializing a `Value` cannot fail (its map keys are strings).
        let raw = serde_json::value::to_raw_value(raw).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Observed::read(raw)
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
    /// The incident's own fields without its alerts ([`Observed::header`]). Records written
    /// before schema 6 hold the whole normalized incident here; it is read the same way.
    #[serde(rename = "incident")]
    pub header: Incident,
    /// State changes seen between polls, oldest first (records from before they were kept
    /// have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
    /// This snapshot is resolution `resolutions` itself, which `resolutions` then does not hold
    /// (schema 7 on; stores from before mark such a resolution with [`AS_RECORDED`] instead).
    /// Cleared when a later snapshot replaces it, after the resolution was written out in full.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holds_resolution: bool,
}

impl IncidentRecord {
    /// Drops the snapshot (its review's entry in a pack holds it: `log_packing`) and the fields
    /// of the header that are read again from it ([`Store::resolution`]); keeps what ingest
    /// compares a later update with (status, times, assignment, classification, determination)
    /// and the comments retention forgets done marks by.
    pub(super) fn give_up_snapshot(&mut self) {
        self.raw = serde_json::value::RawValue::NULL.to_owned();
        let i = &mut self.header;
        i.title.clear();
        i.description = None;
        i.tenant_id = None;
        i.url = None;
        i.resolving_comment = None;
        i.custom_tags.clear();
        i.system_tags.clear();
        i.last_modified_by = None;
    }
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
    /// The incident's own fields as ingest read them ([`IncidentRecord::header`]); the whole
    /// incident is [`Resolution::incident`].
    #[serde(rename = "incident")]
    pub header: Incident,
    /// The incident's observed state changes up to this resolution.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
}

impl Resolution {
    /// The whole incident, alerts and evidence within `limits` (the daemon's `[review]`
    /// settings), read from the snapshot. Ingest read the same text, so this fails only on a
    /// snapshot that was changed on disk.
    pub fn incident(&self, limits: &Limits) -> std::result::Result<Incident, ParseError> {
        Incident::from_graph_str(self.raw.get(), limits)
    }
}

/// [`IncidentRecord`] and [`Resolution`] as they are written, borrowing the incident instead of
/// holding copies: ingest serializes both for every resolved incident it stores, and deep
/// copies of the incident (alerts, evidence) were a measurable part of its cost. The fields and
/// their order are those of the owned types, so that the JSON is the same (a test checks it).
#[derive(Serialize)]
struct RecordOut<'a> {
    source: &'a str,
    last_update: DateTime<Utc>,
    status: &'a IncidentStatus,
    resolutions: u32,
    received_at: DateTime<Utc>,
    raw: &'a RawValue,
    #[serde(rename = "incident")]
    header: &'a Incident,
    #[serde(skip_serializing_if = "<[Transition]>::is_empty")]
    transitions: &'a [Transition],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    holds_resolution: bool,
}

#[derive(Serialize)]
struct ResolutionOut<'a> {
    source: &'a str,
    incident_id: &'a str,
    revision: u32,
    detected_at: DateTime<Utc>,
    raw: &'a RawValue,
    #[serde(rename = "incident")]
    header: &'a Incident,
    #[serde(skip_serializing_if = "<[Transition]>::is_empty")]
    transitions: &'a [Transition],
}

/// A `resolutions` value that stands for the snapshot in the incident's record, as stores of
/// schema 6 and before mark it (schema 7 writes nothing there: [`IncidentRecord::holds_resolution`]).
/// A resolution is the record's snapshot when it is made, so it is stored once; before the
/// record changes, ingest writes the resolution out in full ([`Store::ingest`]), so a
/// resolution always reads as the snapshot it was made from. Either form reads.
pub(super) const AS_RECORDED: &[u8] = b"=";

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

pub(super) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Our own plain structs, serde_json::Value and RawValue always serialize.
    serde_json::to_vec(v).unwrap_or_default()
}

/// [`encode`], compressed where that pays (the snapshots: [`super::codec`]).
pub(super) fn encode_packed<T: Serialize>(v: &T) -> Vec<u8> {
    super::codec::pack(encode(v))
}

/// Transitions kept per incident: an incident reassigned back and forth for months must not
/// grow its record without bound. Past this, the oldest are dropped (the first ones a review
/// of a long-running incident can spare: its recent handling is what the times measure).
pub const MAX_TRANSITIONS: usize = 200;

/// The fields whose changes a review uses, as Graph names them, and their value in an incident.
/// A watched field's value in an incident.
type Field = fn(&Incident) -> Option<String>;

const WATCHED: [(&str, Field); 4] = [
    ("status", |i| Some(i.status.as_str().to_owned())),
    ("assignedTo", |i| i.assigned_to.clone()),
    ("classification", |i| Some(i.classification.as_str().to_owned())),
    ("determination", |i| Some(i.determination.as_str().to_owned())),
];

/// The previous record's transitions with the changes between it and the newer `next` added.
///
/// Graph keeps no history of these fields, so a change is known only to have happened between
/// two snapshots. Both bounds are the tighter of two clocks that each hold on their own:
/// - `after`: the daemon received the previous version at `prev.received_at`, so the old value
///   still held then. For a directory source reading old exports that moment says nothing about
///   the incident (it is when the file was read); then Graph's own `lastUpdateDateTime` of the
///   previous version, which always holds, is used instead.
/// - `seen_at`: this poll's `now`, or the new version's `lastUpdateDateTime` when earlier (the
///   change was made by then; a poll can come long after it).
///
/// The first sight of an incident records nothing: a state found already in place has no time
/// of change, and a transition without one would only be read as if it had.
fn observe_transitions(prev: &IncidentRecord, next: &Incident, now: DateTime<Utc>) -> Vec<Transition> {
    let mut out = prev.transitions.clone();
    let seen_at = now.min(next.last_update);
    let after = if prev.received_at <= seen_at { prev.received_at.max(prev.last_update) } else { prev.last_update };
    // Clocks can disagree (a skewed host, an export read after the fact): never a change
    // seen before it can have happened.
    let after = after.min(seen_at);
    for (field, value) in WATCHED {
        let (from, to) = (value(&prev.header), value(next));
        if from != to {
            out.push(Transition { field: field.to_owned(), from, to, seen_at, after: Some(after) });
        }
    }
    let excess = out.len().saturating_sub(MAX_TRANSITIONS);
    out.drain(..excess);
    out
}

impl Store {
    /// A stored value of `tree` at `k`, compressed or not.
    pub(super) fn decode<T: for<'de> Deserialize<'de>>(&self, tree: &'static str, k: &[u8], v: &[u8]) -> Result<T> {
        super::codec::from_packed(v).map_err(|e| self.corrupt(tree, k, e))
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
        order.sort_by_key(|o| o.header.last_update);
        let result = (&self.incidents, &self.resolutions, &self.pending, &self.files, &self.done).transaction(
            |(incidents, resolutions, pending, files, done)| {
                let mut out = IngestOutcome::default();
                for o in &order {
                    let i = &o.header;
                    if floor.is_some_and(|f| i.last_update < f) {
                        out.before_floor += 1;
                        continue;
                    }
                    let k = key(&[source.as_bytes(), i.id.as_bytes()]);
                    let prev: Option<IncidentRecord> = match incidents.get(&k)? {
                        Some(v) => Some(
                            super::codec::from_packed(&v)
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
                    let transitions = match &prev {
                        Some(p) => observe_transitions(p, i, now),
                        None => vec![],
                    };
                    // The record's snapshot is about to change: a resolution that refers to it
                    // gets its own copy first.
                    if let Some(p) = prev.as_ref().filter(|p| p.resolutions > 0) {
                        let prk = ResolutionKey::new(source, &i.id, p.resolutions);
                        if p.holds_resolution || resolutions.get(&prk.0)?.is_some_and(|v| v.as_ref() == AS_RECORDED) {
                            let kept = ResolutionOut {
                                source,
                                incident_id: &i.id,
                                revision: p.resolutions,
                                detected_at: p.received_at,
                                raw: &p.raw,
                                header: &p.header,
                                transitions: &p.transitions,
                            };
                            resolutions.insert(prk.0, encode_packed(&kept))?;
                        }
                    }
                    let record = RecordOut {
                        source,
                        last_update: i.last_update,
                        status: &i.status,
                        resolutions: revision,
                        received_at: now,
                        raw: &o.raw,
                        header: i,
                        transitions: &transitions,
                        holds_resolution: newly_resolved,
                    };
                    incidents.insert(k, encode_packed(&record))?;
                    super::done::record(done, source, &i.id, &i.comments)?;
                    out.stored += 1;
                    if newly_resolved {
                        // The snapshot just written (`holds_resolution`): nothing in
                        // `resolutions` until the record changes. A marker there was a third of
                        // storing a backlog (`cargo bench --bench backlog`, 2026-12-07).
                        let rk = ResolutionKey::new(source, &i.id, revision);
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
        let Some(mut resolution) = self.resolution_as_recorded(k)? else { return Ok(None) };
        // Reviewed and packed (schema 9): the snapshot is the one its review's entry carries.
        if resolution.raw.get() == "null"
            && let Some(snapshot) = self.stored_review(k)?.and_then(|s| s.snapshot)
        {
            let json = super::codec::unpack(&snapshot).map_err(|e| self.corrupt("reviews", &k.0, e))?;
            let bad = |e: &dyn std::fmt::Display| {
                self.corrupt("reviews", &k.0, format!("the snapshot beside the review: {e}"))
            };
            resolution.raw = serde_json::from_slice(&json).map_err(|e| bad(&e))?;
            // The header as ingest read it from this text (the record kept only part of it).
            resolution.header = Incident::header_from_graph_str(resolution.raw.get()).map_err(|e| bad(&e))?;
        }
        Ok(Some(resolution))
    }

    fn resolution_as_recorded(&self, k: &ResolutionKey) -> Result<Option<Resolution>> {
        // Read with the record in one transaction: ingest may be replacing the record (and
        // writing the resolution out in full) at the same moment.
        let ik = super::retention::split_resolution_key(&k.0).map(|(ik, _)| ik.to_vec());
        let read = (&self.resolutions, &self.incidents).transaction(|(resolutions, incidents)| {
            let own = resolutions.get(&k.0)?;
            let record = match (&own, &ik) {
                (Some(v), _) if v.as_ref() != AS_RECORDED => None,
                (_, Some(ik)) => incidents.get(ik)?,
                (_, None) => None,
            };
            Ok((own, record))
        });
        let (own, record): (Option<sled::IVec>, Option<sled::IVec>) =
            read.map_err(|e: TransactionError<()>| match e {
                TransactionError::Storage(e) => self.io(e),
                TransactionError::Abort(()) => self.corrupt("resolutions", &k.0, "read aborted"),
            })?;
        match own {
            Some(v) if v.as_ref() != AS_RECORDED => self.decode("resolutions", &k.0, &v).map(Some),
            // Marked in the tree (schema 6 and before): the record must hold it.
            Some(_) => self.resolution_in_record(&k.0, record.as_deref(), true),
            None => self.resolution_in_record(&k.0, record.as_deref(), false),
        }
    }

    /// The resolution at `k` read from its incident's record (`bytes`), when the record holds
    /// it. `marked`: the tree says it does (a store from before schema 7), and anything else
    /// is a corrupt store rather than a resolution that is not there.
    fn resolution_in_record(&self, k: &[u8], bytes: Option<&[u8]>, marked: bool) -> Result<Option<Resolution>> {
        let (incident_key, revision) = super::retention::split_resolution_key(k).unzip();
        let record: IncidentRecord = match bytes {
            Some(bytes) => self.decode("incidents", incident_key.unwrap_or(k), bytes)?,
            None if marked => {
                return Err(self.corrupt("resolutions", k, "it refers to an incident record that is not stored"));
            }
            None => return Ok(None),
        };
        let held = revision == Some(record.resolutions) && (marked || record.holds_resolution);
        if !held && !marked {
            return Ok(None);
        }
        if !held {
            return Err(self.corrupt(
                "resolutions",
                k,
                format!("it refers to the incident record, which is at resolution {}", record.resolutions),
            ));
        }
        Ok(Some(Resolution {
            source: record.source,
            incident_id: record.header.id.clone(),
            revision: record.resolutions,
            detected_at: record.received_at,
            raw: record.raw,
            header: record.header,
            transitions: record.transitions,
        }))
    }

    /// Every resolution, oldest key first (for tests and audits): those written out in
    /// `resolutions` and those the incidents' records hold. Reads every record: not for the
    /// daemon's own paths.
    pub fn resolutions(&self) -> impl Iterator<Item = Result<Resolution>> + '_ {
        let mut keys: Vec<Result<Vec<u8>>> =
            self.resolutions.iter().keys().map(|k| k.map(|k| k.to_vec()).map_err(|e| self.io(e))).collect();
        for item in self.incidents.iter() {
            match item {
                Ok((ik, v)) => match self.decode::<IncidentRecord>("incidents", &ik, &v) {
                    Ok(r) if r.holds_resolution => {
                        keys.push(Ok(ResolutionKey::new(&r.source, &r.header.id, r.resolutions).0));
                    }
                    Ok(_) => {}
                    Err(e) => keys.push(Err(e)),
                },
                Err(e) => keys.push(Err(self.io(e))),
            }
        }
        keys.sort_by(|a, b| match (a, b) {
            (Ok(a), Ok(b)) => a.cmp(b),
            (a, b) => a.is_ok().cmp(&b.is_ok()),
        });
        keys.dedup_by(|a, b| matches!((a, b), (Ok(a), Ok(b)) if a == b));
        // Each read again with its record (one removed since it was listed is left out).
        keys.into_iter().filter_map(move |k| match k {
            Ok(k) => self.resolution(&ResolutionKey(k)).transpose(),
            Err(e) => Some(Err(e)),
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
        Observed::from_value(&raw).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-11-24T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_borrowed_forms_write_what_the_stored_types_read() {
        let o = obs("7", "resolved", "2026-11-24T10:05:00Z");
        let i = &o.header;
        let t = vec![Transition {
            field: "status".into(),
            from: Some("active".into()),
            to: Some("resolved".into()),
            seen_at: now(),
            after: None,
        }];
        for (transitions, holds_resolution) in [(vec![], false), (t, true)] {
            let owned = IncidentRecord {
                source: "s".into(),
                last_update: i.last_update,
                status: i.status.clone(),
                resolutions: 2,
                received_at: now(),
                raw: o.raw.clone(),
                header: i.clone(),
                transitions: transitions.clone(),
                holds_resolution,
            };
            let out = RecordOut {
                source: "s",
                last_update: i.last_update,
                status: &i.status,
                resolutions: 2,
                received_at: now(),
                raw: &o.raw,
                header: i,
                transitions: &transitions,
                holds_resolution,
            };
            assert_eq!(encode(&out), encode(&owned));
            let back: IncidentRecord = serde_json::from_slice(&encode(&out)).unwrap();
            assert_eq!(back.holds_resolution, holds_resolution);
            let owned = Resolution {
                source: "s".into(),
                incident_id: i.id.clone(),
                revision: 2,
                detected_at: now(),
                raw: o.raw.clone(),
                header: i.clone(),
                transitions: transitions.clone(),
            };
            let out = ResolutionOut {
                source: "s",
                incident_id: &i.id,
                revision: 2,
                detected_at: now(),
                raw: &o.raw,
                header: i,
                transitions: &transitions,
            };
            assert_eq!(encode(&out), encode(&owned));
        }
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

    fn obs_with(id: &str, updated: &str, fields: serde_json::Value) -> Observed {
        let mut raw = json!({"id": id, "lastUpdateDateTime": updated, "alerts": []});
        for (k, v) in fields.as_object().unwrap() {
            raw[k] = v.clone();
        }
        Observed::from_value(&raw).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn changes_between_polls_are_recorded_with_when_they_were_seen() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let first = json!({"status": "active", "classification": "unknown", "determination": "unknown"});
        s.ingest("t", &[obs_with("1", "2026-11-24T10:00:00Z", first)], None, None, at("2026-11-24T10:01:00Z")).unwrap();
        assert!(s.incident("t", "1").unwrap().unwrap().transitions.is_empty(), "first sight records nothing");

        // Assigned and put in progress at 10:20, seen by the poll at 10:21.
        let worked = json!({"status": "inProgress", "assignedTo": "ann@contoso.com"});
        s.ingest("t", &[obs_with("1", "2026-11-24T10:20:00Z", worked)], None, None, at("2026-11-24T10:21:00Z"))
            .unwrap();
        let r = s.incident("t", "1").unwrap().unwrap();
        let fields: Vec<(&str, Option<&str>, Option<&str>)> =
            r.transitions.iter().map(|t| (t.field.as_str(), t.from.as_deref(), t.to.as_deref())).collect();
        // classification and determination missing from the new version read as unknown: unchanged.
        assert_eq!(
            fields,
            [("status", Some("active"), Some("inProgress")), ("assignedTo", None, Some("ann@contoso.com"))]
        );
        // Changed after the daemon last saw the old version (10:01), by Graph's update time (10:20).
        assert_eq!(r.transitions[0].after, Some(at("2026-11-24T10:01:00Z")));
        assert_eq!(r.transitions[0].seen_at, at("2026-11-24T10:20:00Z"));

        // The same snapshot again (the overlap window): nothing recorded twice.
        let worked = json!({"status": "inProgress", "assignedTo": "ann@contoso.com"});
        s.ingest("t", &[obs_with("1", "2026-11-24T10:20:00Z", worked)], None, None, at("2026-11-24T10:22:00Z"))
            .unwrap();
        assert_eq!(s.incident("t", "1").unwrap().unwrap().transitions.len(), 2);

        // Resolved and classified; the resolution carries every transition into the review.
        let done = json!({"status": "resolved", "assignedTo": "ann@contoso.com", "classification": "truePositive", "determination": "malware"});
        let out = s
            .ingest("t", &[obs_with("1", "2026-11-24T11:00:00Z", done)], None, None, at("2026-11-24T11:05:00Z"))
            .unwrap();
        let resolution = s.resolution(&out.resolutions[0]).unwrap().unwrap();
        let fields: Vec<&str> = resolution.transitions.iter().map(|t| t.field.as_str()).collect();
        assert_eq!(fields, ["status", "assignedTo", "status", "classification", "determination"]);
        let last = &resolution.transitions[4];
        assert_eq!((last.after, last.seen_at), (Some(at("2026-11-24T10:21:00Z")), at("2026-11-24T11:00:00Z")));
        assert_eq!(last.to.as_deref(), Some("malware"));
    }

    /// A directory source reads old exports long after the fact: the time the file was read
    /// says nothing about when the incident changed, and Graph's own update times bound it.
    #[test]
    fn exports_read_after_the_fact_are_timed_by_their_own_update_times() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let read = at("2026-12-05T08:00:00Z");
        s.ingest("d", &[obs_with("7", "2026-10-01T09:00:00Z", json!({"status": "active"}))], None, None, read).unwrap();
        let later = read + chrono::Duration::seconds(1);
        s.ingest("d", &[obs_with("7", "2026-10-02T15:00:00Z", json!({"status": "resolved"}))], None, None, later)
            .unwrap();
        let t = &s.incident("d", "7").unwrap().unwrap().transitions[0];
        assert_eq!((t.after, t.seen_at), (Some(at("2026-10-01T09:00:00Z")), at("2026-10-02T15:00:00Z")));
    }

    #[test]
    fn transitions_are_capped_oldest_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let start = at("2026-11-01T00:00:00Z");
        for n in 0..(MAX_TRANSITIONS + 11) {
            let t = start + chrono::Duration::minutes(n as i64);
            let who = format!("analyst{n}@contoso.com");
            let o = obs_with("1", &t.to_rfc3339(), json!({"status": "active", "assignedTo": who}));
            s.ingest("t", &[o], None, None, t).unwrap();
        }
        let r = s.incident("t", "1").unwrap().unwrap();
        assert_eq!(r.transitions.len(), MAX_TRANSITIONS);
        // n = 0 was the first sight; changes 1..=210 were recorded, the first ten dropped.
        assert_eq!(r.transitions[0].to.as_deref(), Some("analyst11@contoso.com"));
        assert_eq!(r.transitions.last().unwrap().to.as_deref(), Some("analyst210@contoso.com"));
    }

    /// Records and resolutions stored before transitions were kept read as having none.
    #[test]
    fn records_without_transitions_still_read() {
        let o = obs("1", "active", "2026-11-24T10:00:00Z");
        let record = IncidentRecord {
            source: "t".into(),
            last_update: o.header.last_update,
            status: IncidentStatus::Active,
            resolutions: 0,
            received_at: now(),
            raw: o.raw.clone(),
            header: o.header.clone(),
            transitions: vec![],
            holds_resolution: false,
        };
        let text = String::from_utf8(encode(&record)).unwrap();
        assert!(!text.contains("transitions"), "left out when empty");
        assert!(!text.contains("holds_resolution"), "left out when false");
        let back: IncidentRecord = serde_json::from_str(&text).unwrap();
        assert!(back.transitions.is_empty());
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

#[cfg(test)]
mod resolution_tests {
    use super::*;

    fn observed(status: &str, updated: &str, comment: Option<&str>) -> Observed {
        let mut raw = serde_json::json!({
            "id": "42", "displayName": "Phish", "status": status, "severity": "high",
            "createdDateTime": "2026-11-01T08:00:00Z", "lastUpdateDateTime": updated, "alerts": []
        });
        if let Some(text) = comment {
            raw["comments"] = serde_json::json!([{ "comment": text, "createdDateTime": updated }]);
        }
        Observed::from_value(&raw).unwrap()
    }

    /// A resolution is stored once, in the record, while the record holds its snapshot, and
    /// written out in full before the record changes: it always reads as the snapshot it was
    /// made from.
    #[test]
    fn a_resolution_reads_as_its_own_snapshot_after_the_incident_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now: DateTime<Utc> = "2026-11-03T00:00:00Z".parse().unwrap();
        let ingest = |o: Observed| store.ingest("contoso", &[o], None, None, now).unwrap();
        let r1 = ResolutionKey::new("contoso", "42", 1);
        let stored = |k: &ResolutionKey| store.resolutions.get(&k.0).unwrap();
        let holds = || store.incident("contoso", "42").unwrap().unwrap().holds_resolution;

        ingest(observed("resolved", "2026-11-02T10:00:00Z", None));
        assert!(stored(&r1).is_none() && holds(), "stored once, in the record");
        let first = store.resolution(&r1).unwrap().unwrap();
        assert_eq!((first.revision, first.header.comments.len()), (1, 0));

        // A comment after the resolution: the record changes, the resolution does not.
        ingest(observed("resolved", "2026-11-02T11:00:00Z", Some("closing notes")));
        assert!(stored(&r1).is_some_and(|v| v.as_ref() != AS_RECORDED), "written out before the record changed");
        assert!(!holds());
        let after = store.resolution(&r1).unwrap().unwrap();
        assert_eq!(serde_json::to_value(&after).unwrap(), serde_json::to_value(&first).unwrap());
        let copy = stored(&r1);
        ingest(observed("resolved", "2026-11-02T11:30:00Z", Some("more notes")));
        assert_eq!(stored(&r1), copy, "written out once");

        // Re-opened and resolved again: the second resolution is the record's, the first its own.
        ingest(observed("active", "2026-11-02T12:00:00Z", None));
        let r2 = ResolutionKey::new("contoso", "42", 2);
        assert!(store.resolution(&r2).unwrap().is_none(), "not resolved again yet");
        ingest(observed("resolved", "2026-11-02T13:00:00Z", Some("resolved again")));
        assert!(stored(&r2).is_none() && holds());
        let second = store.resolution(&r2).unwrap().unwrap();
        assert_eq!((second.revision, second.header.comments.len()), (2, 1));
        assert_eq!(
            serde_json::to_value(store.resolution(&r1).unwrap().unwrap()).unwrap(),
            serde_json::to_value(&first).unwrap()
        );
        let all: Vec<u32> = store.resolutions().map(|r| r.unwrap().revision).collect();
        assert_eq!(all, [1, 2]);
        assert!(store.resolution(&ResolutionKey::new("contoso", "42", 3)).unwrap().is_none());
    }

    /// Stores of schema 6 and before mark a resolution the record holds with `=`: it reads
    /// from the record, and is written out in full before the record changes, as a new one is.
    #[test]
    fn a_resolution_marked_in_an_older_store_reads_and_is_written_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now: DateTime<Utc> = "2026-11-03T00:00:00Z".parse().unwrap();
        let ingest = |o: Observed| store.ingest("contoso", &[o], None, None, now).unwrap();
        let r1 = ResolutionKey::new("contoso", "42", 1);
        ingest(observed("resolved", "2026-11-02T10:00:00Z", None));
        let first = serde_json::to_value(store.resolution(&r1).unwrap().unwrap()).unwrap();
        // As schema 6 wrote it: the mark in the tree, nothing in the record.
        let ik = key(&[b"contoso", b"42"]);
        let mut record = store.incident("contoso", "42").unwrap().unwrap();
        record.holds_resolution = false;
        store.incidents.insert(&ik, encode(&record)).unwrap();
        store.resolutions.insert(&r1.0, AS_RECORDED).unwrap();
        assert_eq!(serde_json::to_value(store.resolution(&r1).unwrap().unwrap()).unwrap(), first);
        assert_eq!(store.resolutions().count(), 1);

        ingest(observed("resolved", "2026-11-02T11:00:00Z", Some("closing notes")));
        let v = store.resolutions.get(&r1.0).unwrap().unwrap();
        assert_ne!(v.as_ref(), AS_RECORDED, "written out before the record changed");
        assert_eq!(serde_json::to_value(store.resolution(&r1).unwrap().unwrap()).unwrap(), first);
    }

    #[test]
    fn a_reference_without_its_record_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let k = ResolutionKey::new("contoso", "7", 1);
        store.resolutions.insert(&k.0, AS_RECORDED).unwrap();
        let e = store.resolution(&k).unwrap_err().to_string();
        assert!(e.contains("refers to an incident record that is not stored"), "{e}");
    }
}
