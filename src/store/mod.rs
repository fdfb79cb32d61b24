//! The durable store: sled trees that hold every stage's work, so that each stage hands work to
//! the next only through here and can crash at any line without losing or doubling it.
//!
//! Trees (keys are byte strings; `\0` separates parts, numbers are big-endian so keys sort):
//! - `meta`: `schema_version` → u32. Opening a store written by a newer Hindsight is refused.
//!   `compressing` is there while the upgrade to schema 4 compresses the stored records.
//! - `incidents`: `source\0incident id` → [`IncidentRecord`], the latest snapshot seen (raw JSON
//!   as received, and the incident's own fields without its alerts: the review reads the alerts
//!   from the JSON; stores of schema 5 and before hold the whole normalized incident), with its
//!   status and how many resolutions it had.
//! - `resolutions`: `source\0incident id\0revision` → [`Resolution`], the snapshot of each
//!   resolution: what the review is made from. Nothing while that snapshot is the one in the
//!   incident's record ([`IncidentRecord::holds_resolution`]; `=` in stores of schema 6 and
//!   before): stored once, and written out in full before the record changes.
//! - `pending`: same keys → nothing: resolutions not reviewed yet (the reviewer's queue).
//! - `failed`: same keys → [`FailedReview`]: queued resolutions that can never be reviewed
//!   (their record is missing or unreadable), out of the queue so that it moves on.
//! - `cursors`: `source` → [`Cursor`], how far each source has read.
//! - `files`: `source\0sha256` → [`FileRecord`], files a directory source has handled.
//! - `reviews`: resolution key → where the review is in the review log (a 21-byte pointer,
//!   [`review_log`]; the review is JSON, `schemas/review.v2.json`, compressed). Stores of schema
//!   7 and before held the review itself here; the upgrade to 8 moves them to the log.
//! - `seen`: `source\0technique` → when a review of that source first saw the technique: the
//!   organisation's history, from which reviews tell what is new to it.
//! - `outbox`: idempotency key → [`crate::outbox::OutboxEntry`]: notifications to deliver,
//!   delivered or dead-lettered; written with their review in one transaction.
//! - `due`: next attempt (ms, big-endian) `\0` id → nothing: the pending outbox entries by
//!   when they are due, changed with the entry in one transaction.
//! - `summaries`: resolution time (ms, big-endian) `\0` resolution key → [`crate::digest::Summary`]
//!   in a binary layout (JSON in stores of schema 4 and before; both read:
//!   [`crate::digest::summary::from_stored`]), the few facts of each review the digest counts;
//!   written with the review.
//! - `follow_ups`: follow-up id → [`crate::digest::summary::FollowUpInfo`], its text as the
//!   latest review that raised it put it (summaries keep the id only); written with the review.
//! - `settled`: state (`delivered` or `dead`) `\0` when it got it (ms, big-endian) `\0` id →
//!   nothing: the outbox entries that are done, by age, for retention; changed with the entry.
//! - `reviewed`: when the review was made (ms, big-endian) `\0` resolution key → its
//!   `summaries` key: the reviews by age, for retention; written with the review.
//! - `history`: `source\0` incident time (ms, big-endian) `\0` incident id →
//!   [`crate::review::PastIncident`], a compact record of each reviewed incident: what later
//!   reviews of the source compare with (similar incidents, recurring ways in). Written with
//!   the review; retention keeps 180 days and at most 2,000 per source.
//! - `done`: follow-up id (lower case) `\0` source `\0` incident id → when a comment on the
//!   incident marked it done (ms, big-endian): found when the snapshot is stored ([`done`]).
//! - `digests`: digest id → [`crate::digest::Digest`]; `meta.digest_schedule` holds the
//!   occurrence the last digest was for, written with the digest and its outbox entries.
//!
//! Beside the trees, `reviews/` holds the review log: append-only segment files, synced before
//! every sled flush, cut back to their last whole entry at open ([`review_log`]).
//!
//! The values of `incidents`, `resolutions` and the reviews are JSON compressed with zstd (stores
//! of schema 3 and before hold plain JSON, and either form reads: [`codec`]); the others are
//! plain JSON, but for the summaries and the indexes, and for `follow_ups` and `history`, whose
//! values are compressed like the large ones when that pays (schema 5 on; either form reads).
//!
//! Every write that changes more than one tree is one sled transaction; anything acknowledged
//! (a cursor moved) is flushed to disk first.

mod codec;
mod deployed;
mod digests;
mod done;
mod failed;
mod flusher;
mod history;
mod hunts;
mod incidents;
mod log_packing;
mod log_upkeep;
mod outbox;
mod retention;
mod review_log;
mod review_pack;
mod reviews;
pub use deployed::DeployedRecord;
pub use failed::FailedReview;
pub use history::{KEEP_DAYS as HISTORY_KEEP_DAYS, MAX_PER_SOURCE as HISTORY_MAX_PER_SOURCE};
pub use reviews::ReviewRecord;

pub use log_packing::Packing;
pub use log_upkeep::Compacted;
pub use retention::{Pruned, Retention};

pub use digests::DigestMark;

pub use done::DoneMark;

pub use codec::{stored_json, stored_review_json};

pub use incidents::{
    Cursor, FileOutcome, FileRecord, IncidentRecord, IngestOutcome, Observed, Resolution, ResolutionKey,
};

use std::path::{Path, PathBuf};

/// The schema this version writes. Migrations from older versions go in [`Store::migrate`].
pub const SCHEMA_VERSION: u32 = 9;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {path} is in use by another Hindsight process (its lock is held); stop that one first")]
    Locked { path: PathBuf },
    // sled's error is part of the message and deliberately not its `source()`: anyhow's `{:#}`
    // prints the chain, and sled's text appeared twice ("…: IO error: X: IO error: X").
    #[error("cannot open the store at {path}: {error}")]
    Open { path: PathBuf, error: sled::Error },
    #[error(
        "the store at {path} is damaged ({error}). Restore that directory from a backup, or move it aside (`mv {path} {path}.damaged`) to start afresh; a fresh store has lost the review history (techniques count as new again), the outbox (notifications not yet delivered are not sent) and the sources' positions (each reads its backfill window and drop folder again, and what it finds there is reviewed and sent again)"
    )]
    Damaged { path: PathBuf, error: sled::Error },
    #[error(
        "the store at {path} has schema version {found}, newer than this Hindsight's {SCHEMA_VERSION}; refusing to downgrade it"
    )]
    TooNew { path: PathBuf, found: u32 },
    // As for `Open`: the message carries sled's error, which is therefore not its source.
    #[error("store I/O failed at {path}: {error}")]
    Io { path: PathBuf, error: sled::Error },
    #[error(
        "the disk holding the store at {path} has {free} free, less than the {reserve} kept in reserve (daemon.store_reserve); nothing more is written until there is room: free some space or move the store"
    )]
    Full { path: PathBuf, free: bytesize::ByteSize, reserve: bytesize::ByteSize },
    #[error("corrupt record in tree {tree} of the store at {path} (key {key}): {reason}")]
    Corrupt { path: PathBuf, tree: &'static str, key: String, reason: String },
}

/// What the store takes on disk, by part ([`Store::disk_usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// sled's files (its log of every tree, `conf`, snapshots, `blobs`).
    pub trees: u64,
    /// The review log's segments: reviews not packed yet (the one being written, and any
    /// sealed one packing has not reached or could not read).
    pub segments: u64,
    /// The review log's packs.
    pub packs: u64,
}

impl DiskUsage {
    pub fn total(&self) -> u64 {
        self.trees + self.segments + self.packs
    }
}

/// The size on disk of the store at `path`, by part, from its files' sizes: nothing is opened
/// or read, so it is cheap enough for the packing loop to report every few seconds
/// (`hindsight_store_bytes`), and works on a store a running daemon holds (`hindsight check`).
pub fn disk_usage_at(path: &Path) -> std::io::Result<DiskUsage> {
    // A file deleted between the listing and its size (packing, compaction, sled's snapshots)
    // is counted as gone, not as an error.
    fn size(entry: &std::fs::DirEntry) -> std::io::Result<u64> {
        match entry.metadata() {
            Ok(m) if m.is_file() => Ok(m.len()),
            Ok(_) => Ok(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }
    let mut usage = DiskUsage::default();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == REVIEW_LOG_DIR {
            for file in std::fs::read_dir(entry.path())? {
                let file = file?;
                // A pack being written (`.tmp`) counts with the packs.
                if file.file_name().to_string_lossy().ends_with(".log") {
                    usage.segments += size(&file)?;
                } else {
                    usage.packs += size(&file)?;
                }
            }
        } else if entry.file_type()?.is_dir() {
            // sled's `blobs`.
            for file in std::fs::read_dir(entry.path())? {
                usage.trees += size(&file?)?;
            }
        } else {
            usage.trees += size(&entry)?;
        }
    }
    Ok(usage)
}

/// One tree's records and bytes ([`Store::tree_sizes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeSize {
    pub name: String,
    pub records: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    meta: sled::Tree,
    incidents: sled::Tree,
    resolutions: sled::Tree,
    pending: sled::Tree,
    failed: sled::Tree,
    cursors: sled::Tree,
    files: sled::Tree,
    reviews: sled::Tree,
    seen: sled::Tree,
    outbox: sled::Tree,
    due: sled::Tree,
    summaries: sled::Tree,
    follow_ups: sled::Tree,
    digests: sled::Tree,
    settled: sled::Tree,
    reviewed: sled::Tree,
    history: sled::Tree,
    deployed: sled::Tree,
    hunts: sled::Tree,
    done: sled::Tree,
    /// The reviews themselves, beside sled ([`review_log`]); `reviews` holds where each is.
    log: std::sync::Arc<review_log::ReviewLog>,
    /// Held by packing and compaction, which both move reviews out of sealed files and delete
    /// them: one at a time.
    upkeep: std::sync::Arc<std::sync::Mutex<()>>,
    counts: outbox::OutboxCounts,
    reserve: u64,
    flusher: std::sync::Arc<flusher::Flusher>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

fn is_lock_error(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

/// Whether sled found its files damaged: a checksum that does not match (`Corruption`), or a
/// configuration file it cannot make sense of, which sled 0.34 reports as a store made by a
/// version before 0.29 (`Unsupported`; Hindsight has only ever used 0.34).
fn is_damage(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Corruption { .. } | sled::Error::Unsupported(_))
}

/// sled's page cache (`daemon.store_cache`). sled's default is 1 GiB, which a daemon left
/// running for months grows into as the store grows. The figure counts pages as stored, and
/// sled's in-memory size is about twice that: the soak in RELIABILITY.md rose to about 64 MiB
/// above idle at 32 MiB and leveled near 35 MiB above idle at 8 MiB; 2 MiB held 4 to 7 MiB less
/// than 8 with the same backlog throughput and digest times (BENCHMARKS.md, 2026-12-07). The
/// working set (recent reviews, the outbox, a digest's summaries) is read back from the OS's
/// file cache when evicted.
pub const CACHE_BYTES: u64 = 2 * 1024 * 1024;

/// The review log's directory inside the store's.
const REVIEW_LOG_DIR: &str = "reviews";

/// Free space below which the store refuses writes. sled 0.34 does not fail a write that meets
/// a full disk: its writers block for good (RELIABILITY.md), so the daemon would hang with its
/// health endpoints still answering. Refusing while there is room left turns that into a clear
/// error and a clean exit. The largest single write is a review batch (100 reviews with their
/// outbox entries, a few MB), well inside this.
pub const DEFAULT_RESERVE: u64 = 64 * 1024 * 1024;

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with_cache(path, CACHE_BYTES)
    }

    /// [`Store::open`] with another page cache size (bytes).
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Store> {
        // sled releases its directory lock from its flusher thread, a moment after the last
        // handle is dropped: a reopen right after a close (a restart in the same process) can
        // find it still held. Another process holding it for good is reported after a second.
        create_private_dir(path).map_err(|e| StoreError::Open { path: path.to_owned(), error: e.into() })?;
        let mut attempts = 0;
        let db = loop {
            match sled::Config::new().path(path).cache_capacity(cache_bytes).open() {
                Ok(db) => break db,
                Err(source) if is_lock_error(&source) && attempts < 10 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(source) if is_lock_error(&source) => return Err(StoreError::Locked { path: path.to_owned() }),
                Err(error) if is_damage(&error) => return Err(StoreError::Damaged { path: path.to_owned(), error }),
                Err(error) => return Err(StoreError::Open { path: path.to_owned(), error }),
            }
        };
        let io = |error| {
            if is_damage(&error) {
                StoreError::Damaged { path: path.to_owned(), error }
            } else {
                StoreError::Io { path: path.to_owned(), error }
            }
        };
        let (log, tail) = review_log::ReviewLog::open(&path.join(REVIEW_LOG_DIR))
            .map_err(|e| StoreError::Open { path: path.join(REVIEW_LOG_DIR), error: e.into() })?;
        let log = std::sync::Arc::new(log);
        let store = Store {
            meta: db.open_tree("meta").map_err(io)?,
            incidents: db.open_tree("incidents").map_err(io)?,
            resolutions: db.open_tree("resolutions").map_err(io)?,
            pending: db.open_tree("pending").map_err(io)?,
            failed: db.open_tree("failed").map_err(io)?,
            cursors: db.open_tree("cursors").map_err(io)?,
            files: db.open_tree("files").map_err(io)?,
            reviews: db.open_tree("reviews").map_err(io)?,
            seen: db.open_tree("seen").map_err(io)?,
            outbox: db.open_tree("outbox").map_err(io)?,
            due: db.open_tree("due").map_err(io)?,
            summaries: db.open_tree("summaries").map_err(io)?,
            follow_ups: db.open_tree("follow_ups").map_err(io)?,
            digests: db.open_tree("digests").map_err(io)?,
            settled: db.open_tree("settled").map_err(io)?,
            reviewed: db.open_tree("reviewed").map_err(io)?,
            history: db.open_tree("history").map_err(io)?,
            deployed: db.open_tree("deployed").map_err(io)?,
            hunts: db.open_tree("hunts").map_err(io)?,
            done: db.open_tree("done").map_err(io)?,
            counts: outbox::OutboxCounts::default(),
            reserve: DEFAULT_RESERVE,
            path: path.to_owned(),
            flusher: flusher::Flusher::new(db.clone(), log.clone()),
            log,
            upkeep: Default::default(),
            db,
        };
        store.migrate(tail)?;
        make_files_private(path);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Each tree's records and the bytes of their keys and values, as stored (before sled's
    /// own overhead), and the review log's entries and bytes on disk: where a store's size goes. Reads every record; for benchmarks and
    /// operators, not for a loop.
    pub fn tree_sizes(&self) -> Result<Vec<TreeSize>> {
        let mut out = Vec::new();
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name).map_err(|e| self.io(e))?;
            let mut size = TreeSize { name: String::from_utf8_lossy(&name).into_owned(), ..TreeSize::default() };
            for kv in tree.iter() {
                let (k, v) = kv.map_err(|e| self.io(e))?;
                size.records += 1;
                size.key_bytes += k.len() as u64;
                size.value_bytes += v.len() as u64;
            }
            out.push(size);
        }
        let (records, value_bytes) = self.review_log_size()?;
        out.push(TreeSize { name: "review log".into(), records, key_bytes: 0, value_bytes });
        Ok(out)
    }

    /// The store's size on disk by part ([`disk_usage_at`]).
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        disk_usage_at(&self.path).map_err(|e| self.io(e.into()))
    }

    /// The same store with review log segments of `bytes` instead of 4 MiB: for tests of
    /// compaction, which need many segments from few reviews.
    #[doc(hidden)]
    pub fn with_review_log_segments(self, bytes: u64) -> Store {
        self.log.set_segment_bytes(bytes);
        self
    }

    /// The review log's directory (segment files `00000001.log`, …).
    pub fn review_log_dir(&self) -> PathBuf {
        self.path.join(REVIEW_LOG_DIR)
    }

    /// The same store with another free-space reserve (`daemon.store_reserve`; 0 turns the
    /// check off).
    pub fn with_reserve(mut self, bytes: u64) -> Store {
        self.reserve = bytes;
        self
    }

    /// Fails with [`StoreError::Full`] when the store's disk has less free space than the
    /// reserve. Called before every write; one statvfs, a microsecond or two. A file system
    /// that cannot tell its free space is not checked.
    pub fn ensure_room(&self) -> Result<()> {
        if self.reserve == 0 {
            return Ok(());
        }
        let Ok(st) = rustix::fs::statvfs(&self.path) else {
            return Ok(());
        };
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        if free < self.reserve {
            return Err(StoreError::Full {
                path: self.path.clone(),
                free: bytesize::ByteSize(free),
                reserve: bytesize::ByteSize(self.reserve),
            });
        }
        Ok(())
    }

    pub(crate) fn io(&self, source: sled::Error) -> StoreError {
        if is_damage(&source) {
            StoreError::Damaged { path: self.path.clone(), error: source }
        } else {
            StoreError::Io { path: self.path.clone(), error: source }
        }
    }

    pub(crate) fn corrupt(&self, tree: &'static str, key: &[u8], reason: impl ToString) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            tree,
            key: String::from_utf8_lossy(key).replace('\0', "/"),
            reason: reason.to_string(),
        }
    }

    /// Brings an older store up to [`SCHEMA_VERSION`], one version at a time; refuses newer ones.
    /// `tail` is the review log as the last run left it: every pointer is checked against it
    /// before anything is appended.
    fn migrate(&self, tail: review_log::Tail) -> Result<()> {
        let found = match self.meta.get("schema_version").map_err(|e| self.io(e))? {
            Some(v) => {
                let bytes: [u8; 4] =
                    v.as_ref().try_into().map_err(|_| self.corrupt("meta", b"schema_version", "not a u32"))?;
                u32::from_be_bytes(bytes)
            }
            None => 0,
        };
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: self.path.clone(), found });
        }
        self.repair_review_log(tail)?;
        // Version 0 is a new, empty store. Version 1 had no review summaries and no index of due
        // notifications: build both from what is stored, so that digests cover what was
        // reviewed before the upgrade and nothing pending is left undelivered.
        if found == 1 {
            let n = self.build_summaries()?;
            let due = self.build_due_index()?;
            tracing::info!(path = %self.path.display(), reviews = n, pending = due, "store upgraded from schema 1 to 2");
        }
        // Version 2 had no indexes by age, which retention reads: list what is stored.
        if found == 1 || found == 2 {
            let reviews = self.build_reviewed_index()?;
            let settled = self.build_settled_index()?;
            tracing::info!(path = %self.path.display(), reviews, settled, "store upgraded to schema 3");
        }
        // Version 3 stored every record as plain JSON: compress the large ones in place. The new
        // version and a mark are made durable first, so that an older Hindsight refuses the
        // store from then on (it could not read a compressed record), and a start after a kill
        // part-way sees the mark and finishes; records done already are skipped.
        if (1..=3).contains(&found) {
            self.meta.insert(codec::COMPRESSING, &[][..]).map_err(|e| self.io(e))?;
        }
        // Version 4 stored the digest's summaries as JSON and had no index of follow-ups
        // marked done: rewrite the one and build the other, the same way (marked first,
        // finished by the next start after a kill).
        if (1..=4).contains(&found) {
            self.meta.insert(digests::UPGRADING_TO_5, &[][..]).map_err(|e| self.io(e))?;
        }
        // Version 5 stored the normalized incident (alerts, evidence) beside each snapshot's
        // text; 6 stores the incident's own fields only, and the review reads the text. Records
        // of either form read the same, so nothing is rewritten: the new version only keeps an
        // older Hindsight, which would review a new record as an incident without alerts, from
        // opening the store.
        if (1..=5).contains(&found) {
            tracing::info!(path = %self.path.display(), "store upgraded to schema 6: snapshots stored without their normalized alerts");
        }
        // Version 6 marked a resolution held by its incident's record with `=` in
        // `resolutions`; 7 says so in the record and writes nothing there. Both read, so the
        // marks stay; the version keeps an older Hindsight, which would find no resolution for
        // a new queued key, from opening the store.
        if (1..=6).contains(&found) {
            tracing::info!(path = %self.path.display(), "store upgraded to schema 7: resolutions held by their incident's record unmarked");
        }
        // Version 7 held each review in the `reviews` tree; 8 holds it in the review log and a
        // pointer in the tree. Marked first, like the upgrades above: a start after a kill
        // finishes moving them, and reading never depends on whether it finished.
        if (1..=7).contains(&found) {
            self.meta.insert(log_upkeep::MOVING_TO_LOG, &[][..]).map_err(|e| self.io(e))?;
        }
        // Version 9 packs sealed segments of the log (pointers of a second form) and moves a
        // reviewed resolution's snapshot out of its incident's record into the pack. Nothing is
        // rewritten at the upgrade (packing runs as segments are sealed); the version keeps an
        // older Hindsight, which could read neither, from opening the store.
        if (1..=8).contains(&found) {
            tracing::info!(path = %self.path.display(), "store upgraded to schema 9: sealed review log segments are packed");
        }
        if found < SCHEMA_VERSION {
            self.meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes()).map_err(|e| self.io(e))?;
            self.flush()?;
        }
        if self.meta.contains_key(codec::COMPRESSING).map_err(|e| self.io(e))? {
            let done = self.compress_stored()?;
            self.meta.remove(codec::COMPRESSING).map_err(|e| self.io(e))?;
            self.flush()?;
            tracing::info!(
                path = %self.path.display(),
                records = done.records,
                before = %bytesize::ByteSize(done.before),
                after = %bytesize::ByteSize(done.after),
                "store upgraded to schema 4: snapshots and reviews compressed"
            );
        }
        if self.meta.contains_key(digests::UPGRADING_TO_5).map_err(|e| self.io(e))? {
            let summaries = self.pack_summaries()?;
            let marks = self.build_done_index()?;
            self.meta.remove(digests::UPGRADING_TO_5).map_err(|e| self.io(e))?;
            self.flush()?;
            tracing::info!(
                path = %self.path.display(),
                summaries,
                marks,
                "store upgraded to schema 5: digest summaries in a binary layout, follow-ups marked done indexed"
            );
        }
        if self.meta.contains_key(log_upkeep::MOVING_TO_LOG).map_err(|e| self.io(e))? {
            let moved = self.move_reviews_to_log()?;
            self.meta.remove(log_upkeep::MOVING_TO_LOG).map_err(|e| self.io(e))?;
            self.flush()?;
            tracing::info!(path = %self.path.display(), reviews = moved, "store upgraded to schema 8: reviews moved to the review log");
        }
        Ok(())
    }

    /// A cheap read, and the free-space reserve every write checks (`/readyz`): fails when the
    /// store cannot be read, or when the next write would be refused for want of room. Nothing
    /// is written: a probe every few seconds must not grow the log.
    pub fn check(&self) -> Result<()> {
        self.meta.get("schema_version").map(|_| ()).map_err(|e| self.io(e))?;
        self.ensure_room()
    }

    /// Makes every earlier write durable (one log for all trees, so one flush covers them all).
    /// The review log first: a review's pointer must not be on disk before the review.
    pub fn flush(&self) -> Result<()> {
        self.log.sync().map_err(|e| self.io(e.into()))?;
        self.db.flush().map(|_| ()).map_err(|e| self.io(e))
    }

    /// The same as [`Store::flush`], for async callers: sled's flush blocks on fsync. Flushes
    /// requested together share one (see [`flusher`]; not sled's own `flush_async`, which can
    /// deadlock).
    pub async fn flush_async(&self) -> Result<()> {
        self.flusher.flush().await.map_err(|e| self.io(e))
    }
}

/// Creates the store's directory, and any missing parent (the state directory), readable by the
/// daemon's user only (0700): the store holds incident data, and outside systemd (whose
/// `StateDirectory=` is 0700 already) a default umask would make it 0755. Existing directories
/// are left as they are.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Takes group and other permissions off the files and directories (`blobs`) sled created in
/// the store's directory (0644 and 0755 under a default umask). The directory is 0700 already; this keeps the files private
/// if it is ever opened up or copied. Best effort: a file we may not chmod is left.
fn make_files_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(path) else { return };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let mode = meta.permissions().mode();
        if (meta.is_file() || meta.is_dir())
            && mode & 0o077 != 0
            && let Err(e) = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode & 0o700))
        {
            tracing::debug!("cannot make {} private: {e}", entry.path().display());
        }
    }
}

/// A time as a key part: milliseconds since 1970, big-endian, so that keys sort by time (times
/// before 1970, which no record has, sort first).
pub(crate) fn millis(at: chrono::DateTime<chrono::Utc>) -> [u8; 8] {
    u64::try_from(at.timestamp_millis()).unwrap_or(0).to_be_bytes()
}

pub(crate) fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_open_of_the_same_directory_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("in use by another Hindsight process"));
    }

    #[test]
    fn refuses_a_store_from_a_newer_version() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.meta.insert("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes()).unwrap();
            s.flush().unwrap();
        }
        let err = Store::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("refusing to downgrade"), "{err}");
    }
}
