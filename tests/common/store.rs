//! Helpers for the tests that look into a store: its resolutions, its review log's files.

use hindsight::review::Engine;
use hindsight::store::{ResolutionKey, Store};

/// A review engine on the embedded catalog with the default settings.
pub fn engine() -> Engine {
    let catalog = std::sync::Arc::new(hindsight::attack::store::embedded().unwrap());
    Engine::new(catalog, None, None, hindsight::review::Settings::default())
}

/// Every resolution's key, in key order.
pub fn resolution_keys(store: &Store) -> Vec<ResolutionKey> {
    let mut keys: Vec<ResolutionKey> = store
        .resolutions()
        .map(|r| {
            let r = r.unwrap();
            ResolutionKey::new(&r.source, &r.incident_id, r.revision)
        })
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    keys
}

/// The files of the store's review log (segments, packs), by name.
pub fn log_files(store: &Store) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.review_log_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Bytes of the files directly in `dir`.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
}
