//! Where the catalog in use comes from, and how `catalog import` replaces it.
//!
//! The imported catalog is a file in the state directory, not a sled tree: `catalog import` must
//! work while the daemon runs (sled holds an exclusive lock on its directory), and a single file
//! replaced by an atomic rename gives exactly the promise we need: a reader sees the old catalog
//! or the new one, never half of either, even if the machine dies mid-import.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::catalog::{Catalog, Origin};
use super::error::{CatalogError, Result};
use super::model::{CatalogData, FORMAT_VERSION};

/// The compact catalog built into the binary: generated from MITRE's enterprise bundle by
/// `hindsight catalog export` (see data/attack/README.md).
static EMBEDDED: &[u8] = include_bytes!("../../data/attack/enterprise-attack.catalog.json");

const EMBEDDED_NAME: &str = "the embedded catalog";

/// Largest stored catalog, in its compact form; the compact enterprise catalog is about 1 MB.
/// The one limit: `catalog import` refuses a bundle whose compact form is over it (the bundle
/// itself may be up to [`super::stix::MAX_BUNDLE_BYTES`], most of it text the compact form
/// drops), and reading a stored catalog refuses one over it. Before, only the reader checked:
/// an accepted import made every command fail until `catalog reset`.
pub const MAX_STORED_BYTES: u64 = 64 * 1024 * 1024;

/// [`MAX_STORED_BYTES`], or `HINDSIGHT_MAX_CATALOG_BYTES` when set: the tests lower it to
/// stand a small bundle for a huge one; raising it lets a catalog larger than any ATT&CK
/// release be used. Import and reading use the same value.
pub fn max_stored_bytes() -> u64 {
    std::env::var("HINDSIGHT_MAX_CATALOG_BYTES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(MAX_STORED_BYTES)
}

pub fn embedded() -> Result<Catalog> {
    let data = parse_compact(EMBEDDED, Path::new(EMBEDDED_NAME))?;
    Ok(Catalog::new(data, Origin::Embedded))
}

/// Path of the imported catalog inside a state directory.
pub fn imported_path(state_dir: &Path) -> PathBuf {
    state_dir.join("catalog").join("catalog.json")
}

/// The catalog the daemon uses: the imported one if there is one, else the embedded one.
/// A stored catalog that cannot be read is an error, not a silent fall-back: reviews made
/// against a different ATT&CK release than the operator chose would be wrong without a word.
pub fn in_use(state_dir: &Path) -> Result<Catalog> {
    let path = imported_path(state_dir);
    match std::fs::metadata(&path) {
        Ok(_) => match load_compact_file(&path) {
            Ok(d) => Ok(Catalog::new(d, Origin::Imported(path))),
            Err(CatalogError::Stored { path, reason }) => Err(CatalogError::Stored {
                path,
                reason: format!(
                    "{reason}. `hindsight catalog reset` goes back to the embedded catalog; `hindsight catalog import` stores a new one"
                ),
            }),
            Err(e) => Err(e),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => embedded(),
        Err(source) => Err(CatalogError::Read { path, error: source }),
    }
}

pub fn load_compact_file(path: &Path) -> Result<CatalogData> {
    let read_err = |source| CatalogError::Read { path: path.to_owned(), error: source };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    let limit = max_stored_bytes();
    if len > limit {
        return Err(CatalogError::TooLarge { path: path.to_owned(), size: len, limit });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    parse_compact(&bytes, path)
}

fn parse_compact(bytes: &[u8], path: &Path) -> Result<CatalogData> {
    #[derive(serde::Deserialize)]
    struct Header {
        format: u32,
    }
    let stored = |reason: String| CatalogError::Stored { path: path.to_owned(), reason };
    // Read the format first so that a file from a newer Hindsight gets a message that says so,
    // rather than a complaint about some unknown field.
    let header: Header = serde_json::from_slice(bytes).map_err(|e| stored(e.to_string()))?;
    if header.format != FORMAT_VERSION {
        return Err(stored(format!(
            "catalog format {} (this Hindsight reads format {FORMAT_VERSION}); import the STIX bundle again",
            header.format
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| stored(e.to_string()))
}

/// Serializes a catalog in the compact form: one object per line, so the checked-in embedded
/// catalog diffs readably between ATT&CK releases.
pub fn to_compact_json(data: &CatalogData) -> Vec<u8> {
    fn line<T: serde::Serialize>(out: &mut Vec<u8>, v: &T) {
        // Serializing our own plain structs cannot fail.
        if let Ok(bytes) = serde_json::to_vec(v) {
            out.extend_from_slice(&bytes);
        }
    }
    fn list<T: serde::Serialize>(out: &mut Vec<u8>, key: &str, items: &[T], last: bool) {
        out.extend_from_slice(format!("\"{key}\":[").as_bytes());
        for (i, item) in items.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            line(out, item);
        }
        out.extend_from_slice(if last { b"\n]\n" } else { b"\n],\n" });
    }
    let mut out = Vec::with_capacity(1 << 20);
    out.extend_from_slice(format!("{{\"format\":{},\n\"meta\":", data.format).as_bytes());
    line(&mut out, &data.meta);
    out.extend_from_slice(b",\n");
    list(&mut out, "tactics", &data.tactics, false);
    list(&mut out, "techniques", &data.techniques, false);
    list(&mut out, "groups", &data.groups, false);
    list(&mut out, "campaigns", &data.campaigns, false);
    list(&mut out, "software", &data.software, false);
    list(&mut out, "mitigations", &data.mitigations, false);
    list(&mut out, "data_components", &data.data_components, false);
    list(&mut out, "detection_strategies", &data.detection_strategies, false);
    list(&mut out, "detects", &data.detects, true);
    out.extend_from_slice(b"}\n");
    out
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all of the new:
/// temporary file in the same directory, fsync, rename over, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let write_err = |source| CatalogError::Write { path: path.to_owned(), error: source };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    tmp.write_all(bytes).map_err(write_err)?;
    // ATT&CK data is public; the temporary file's private 0600 would only surprise people.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(write_err)?;
    }
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    // The rename is durable only once the directory entry is on disk.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(write_err)?;
    Ok(())
}

/// The compact form of `data`, imported from `bundle`, if it is small enough to be stored and
/// read back ([`max_stored_bytes`]). Checked before anything is written, so that a refused
/// import leaves the catalog in use as it was.
pub fn storable(bundle: &Path, data: &CatalogData) -> Result<Vec<u8>> {
    let bytes = to_compact_json(data);
    let limit = max_stored_bytes();
    let size = bytes.len() as u64;
    if size > limit {
        return Err(CatalogError::TooLargeToStore { path: bundle.to_owned(), size, limit });
    }
    Ok(bytes)
}

/// Stores a catalog's compact form (from [`storable`]) as the catalog in use.
pub fn store_imported(state_dir: &Path, compact: &[u8]) -> Result<PathBuf> {
    let path = imported_path(state_dir);
    write_atomically(&path, compact)?;
    Ok(path)
}

/// Removes the imported catalog, so the embedded one is used again. Returns whether there was one.
pub fn reset(state_dir: &Path) -> Result<bool> {
    let path = imported_path(state_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(CatalogError::Write { path, error: source }),
    }
}
