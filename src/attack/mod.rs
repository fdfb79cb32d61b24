//! The MITRE ATT&CK knowledge base, as data.
//!
//! Nothing about ATT&CK is written in code here: tactics and their order, techniques, groups,
//! revocations and detection data all come from a STIX bundle ([`stix`]), are kept in a compact
//! form ([`model`]) that is also built into the binary ([`store`]), and are indexed in memory for
//! reviews ([`catalog`], [`resolve`]). [`diff`] compares two releases.

pub mod catalog;
pub mod diff;
pub mod error;
pub mod model;
pub mod resolve;
pub mod software;
pub mod stix;
pub mod store;

pub use catalog::{Catalog, Origin};
pub use error::CatalogError;
pub use resolve::{Resolution, Status};

use std::path::Path;

/// Reads a STIX bundle file into an indexed catalog (the `--catalog FILE` option of commands).
pub fn from_bundle(path: &Path) -> Result<(Catalog, stix::ImportReport), CatalogError> {
    let (data, report) = stix::import_file(path, stix::MAX_BUNDLE_BYTES)?;
    Ok((Catalog::new(data, Origin::Bundle(path.to_owned())), report))
}
