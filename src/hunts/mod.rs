//! Hunting queries: KQL for Microsoft Defender XDR advanced hunting, kept as data
//! (`data/hunts/library.toml`, embedded; a site's own folders of Azure-Sentinel hunting YAML
//! beside it), keyed by ATT&CK technique. A review fills them with its incident's entities and
//! window ([`fill`]) for the techniques it suspects in a blind stage, and sweeps the estate for
//! the incident's indicators.

pub mod fill;
pub mod library;
pub mod sentinel;

pub use fill::{Entities, Window};
pub use library::{HuntError, Library, Scope, Template};

/// How long advanced hunting keeps data: after this, a window is gone.
pub const RETENTION_DAYS: i64 = 30;
