//! Errors of the ATT&CK catalog: every one names the file (or "the embedded catalog") and says
//! what is wrong with it, because the person reading it usually has a 37 MB bundle in front of
//! them and needs to know where to look.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    // The io::Error is in the message, so it is not also the `source()` (anyhow's `{:#}` would
    // print it twice).
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },

    #[error("{path} is {size} bytes, over the limit of {limit} bytes for an ATT&CK bundle")]
    TooLarge { path: PathBuf, size: u64, limit: u64 },

    #[error(
        "{path} makes a catalog of {size} bytes once compacted, over the limit of {limit} bytes for a stored catalog; refused, the catalog in use is unchanged"
    )]
    TooLargeToStore { path: PathBuf, size: u64, limit: u64 },

    #[error("{path} is not valid JSON: {detail}")]
    NotJson { path: PathBuf, detail: String },

    #[error("{path} ends before the JSON is complete (truncated file?): {detail}")]
    Truncated { path: PathBuf, detail: String },

    #[error("{path} is not a STIX bundle: {reason}")]
    NotBundle { path: PathBuf, reason: String },

    #[error("{path}: {reason}")]
    InvalidObject { path: PathBuf, reason: String },

    #[error("{path} lacks what an ATT&CK catalog needs: {missing}")]
    Incomplete { path: PathBuf, missing: String },

    #[error("{path} is not a catalog this version of Hindsight can read: {reason}")]
    Stored { path: PathBuf, reason: String },

    #[error("cannot write the catalog to {path}: {error}")]
    Write { path: PathBuf, error: std::io::Error },
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
