//! Incident sources: where resolved incidents come from. One module per source, each with its
//! own typed config; [`Source`] names them and only delegates (the mini-redis `Command` pattern).
//!
//! A source's only job is to observe incidents and hand them to the store
//! ([`crate::store::Store::ingest`]); deciding what is a new resolution happens there, in the same
//! transaction that stores the snapshot, so every source gets the same guarantees.

pub mod directory;
pub mod graph;

use crate::clock::Clock;
use crate::store::{Store, StoreError};

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

    /// One pass: read what is new since the stored cursor and store it. On error nothing that
    /// was not stored is acknowledged, so the next pass reads it again.
    pub async fn poll(&mut self, store: &Store, clock: &dyn Clock) -> Result<PollReport, SourceError> {
        match self {
            Source::Graph(s) => s.poll(store, clock).await,
            Source::Directory(s) => s.poll(store, clock).await,
        }
    }
}
