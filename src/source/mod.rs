//! Incident sources: where resolved incidents come from. One module per source, each with its
//! own typed config; [`Source`] names them and only delegates (the mini-redis `Command` pattern).
//!
//! A source's only job is to observe incidents and hand them to the store
//! ([`crate::store::Store::ingest`]); deciding what is a new resolution happens there, in the same
//! transaction that stores the snapshot, so every source gets the same guarantees.

pub mod directory;
pub mod graph;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::clock::Clock;
use crate::config::Invalid;
use crate::store::{Store, StoreError};

/// The largest incident document read whole: a Graph page (`max_page_bytes`) or a directory
/// file (`max_file_bytes`). Parsed JSON takes several times its text, so 16 MiB bounds a pass
/// at about a hundred MB; a typical page of 50 incidents with their alerts is about a MB.
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Runs `work` (parsing and storing what a source read) on tokio's blocking pool: sled's
/// transaction over a Graph page of a thousand incidents takes about 15 ms, and a directory
/// export of thousands takes seconds, which a runtime worker would otherwise spend away from
/// the other sources' polls, the HTTP port and the timers (the daemon runs on two workers). A
/// panic in it stays a panic, as if the call were made here.
pub(crate) async fn off_the_runtime<T: Send + 'static>(
    store: &Store,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(out) => out,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only when the runtime shuts down under the pass: nothing was acknowledged, the
            // next start reads it again.
            Err(e) => Err(StoreError::Io {
                path: store.path().to_owned(),
                error: sled::Error::Io(std::io::Error::other(format!("the write was cancelled: {e}"))),
            }),
        },
    }
}

/// What one poll pass did, for logs, metrics and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollReport {
    pub source: String,
    /// Incidents read from the source in this pass (duplicates across pages included).
    pub fetched: usize,
    pub stored: usize,
    pub unchanged: usize,
    pub before_floor: usize,
    /// New resolutions queued for review.
    pub resolutions: usize,
    /// HTTP requests made (Graph) or files read (directory).
    pub requests: usize,
    /// Items that could not be used, each with where and why; the rest of the pass went on.
    pub rejected: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Graph(#[from] graph::GraphError),
    #[error(transparent)]
    Directory(#[from] directory::DirectoryError),
}

/// The settings of one source, by the `type` of its `[[sources]]` table. Each kind owns its
/// config with a pure `validate()` and a `build()`, and the built source its `poll()` and
/// `probe()`; this enum and [`Source`] only name the kinds and delegate, so a new kind is a new
/// module and one arm in each match here.
#[derive(Debug, Clone)]
pub enum SourceKind {
    Graph(Box<graph::GraphConfig>),
    Directory(directory::DirectoryConfig),
}

impl SourceKind {
    /// The `type` of each kind, as a `[[sources]]` table names it.
    pub const KINDS: &'static [&'static str] = &["graph", "directory"];

    /// The keys of every kind that hold secrets (and so may be given as `<key>_file`).
    pub const SECRET_KEYS: &'static [&'static [&'static str]] = &[graph::GraphConfig::SECRET_KEYS];

    /// The kind's settings from the rest of its table (`type` and `poll_interval` taken out).
    pub fn from_table(kind: &str, table: serde_json::Map<String, Value>) -> Result<SourceKind, String> {
        use crate::config::component;
        match kind {
            "graph" => component(table).map(|c| SourceKind::Graph(Box::new(c))),
            "directory" => component(table).map(SourceKind::Directory),
            other => Err(format!("type: {other:?} is not one of {}", Self::KINDS.join(", "))),
        }
    }

    /// The source's unique name (it keys the cursor and the incidents in the store).
    pub fn name(&self) -> &str {
        match self {
            SourceKind::Graph(c) => &c.name,
            SourceKind::Directory(c) => &c.name,
        }
    }

    /// Every problem with the settings, keys relative to the source's table.
    pub fn validate(&self) -> Vec<Invalid> {
        match self {
            SourceKind::Graph(c) => c.validate(),
            SourceKind::Directory(c) => c.validate(),
        }
    }

    /// Settings that are allowed but weaker than the default, for `hindsight check` to say.
    pub fn notes(&self) -> Vec<String> {
        match self {
            SourceKind::Graph(c) => c.notes(),
            SourceKind::Directory(_) => vec![],
        }
    }

    /// The source, ready to poll.
    pub fn build(&self) -> Result<Source, Vec<Invalid>> {
        Ok(match self {
            SourceKind::Graph(c) => Source::Graph(Box::new(c.build()?)),
            SourceKind::Directory(c) => Source::Directory(c.build()?),
        })
    }
}

pub enum Source {
    Graph(Box<graph::GraphSource>),
    Directory(directory::DirectorySource),
}

impl Source {
    pub fn name(&self) -> &str {
        match self {
            Source::Graph(s) => s.name(),
            Source::Directory(s) => s.name(),
        }
    }

    /// Makes the source's starting point durable (the Graph source's floor) before its first
    /// poll, so that nothing resolved between the daemon's start and that poll is missed.
    pub async fn start(&self, store: &Store, clock: &dyn Clock) -> Result<(), SourceError> {
        match self {
            Source::Graph(s) => s.start(store, clock.now()).await.map(|_| ()),
            Source::Directory(_) => Ok(()),
        }
    }

    /// Tries the source without storing anything (`hindsight check`): signs in and reads one
    /// page, or lists the folder.
    pub async fn probe(&mut self, now: DateTime<Utc>) -> Result<String, String> {
        match self {
            Source::Graph(s) => s.probe(now).await.map_err(|e| e.to_string()),
            Source::Directory(s) => s.probe(),
        }
    }

    /// One pass: read what is new since the stored cursor and store it. On error nothing that
    /// was not stored is acknowledged, so the next pass reads it again.
    pub async fn poll(&mut self, store: &Store, clock: &dyn Clock) -> Result<PollReport, SourceError> {
        match self {
            Source::Graph(s) => s.poll(store, clock).await,
            Source::Directory(s) => s.poll(store, clock).await,
        }
    }
}
