//! Thin public entry points to crate-private parsers. They exist only for the fuzz targets in
//! `fuzz/` and for `tests/fuzz_regressions.rs`, which live outside the crate; nothing else should
//! call them, and they are hidden from the docs.

use crate::inventory::{navigator, sigma};

/// An ATT&CK Navigator layer file (`src/inventory/navigator.rs`): how many entries count as
/// coverage and the notes, or the reason the file was refused.
pub fn navigator_layer(text: &str, file: &str) -> Result<(usize, Vec<String>), String> {
    navigator::read(text, file).map(|(found, notes)| (found.len(), notes))
}

/// A Sigma rule file, one or more YAML documents (`src/inventory/sigma.rs`): how many rules name
/// techniques and the notes, or the reason the file was refused.
pub fn sigma_rules(text: &str, file: &str) -> Result<(usize, Vec<String>), String> {
    sigma::read(text, file).map(|(found, notes)| (found.len(), notes))
}
