//! Detection inventories: what the organisation can detect, read from the formats people already
//! keep — ATT&CK Navigator layers, Sigma rules, Elastic detection rules, plain lists of technique
//! IDs. One module per format; adding a format is adding a file and a line in [`kind_of`].
//!
//! Technique IDs are resolved through the catalog (old IDs to their replacement), and coverage
//! follows one rule: a rule on a sub-technique covers its parent, a rule on a parent does not
//! vouch for any specific sub-technique.

mod elastic;
mod list;
// `pub(crate)` so that `crate::fuzzing` can hand the two readers to the fuzz targets.
pub(crate) mod navigator;
pub(crate) mod sigma;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::attack::{Catalog, Status};

/// Files larger than this are skipped (and reported): rule files are kilobytes.
const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read the detection inventory {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a detection inventory Hindsight can read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Coverage {
    /// Rules that name the technique (or, for a parent, one of its sub-techniques).
    Covered {
        by: Vec<String>,
    },
    NotCovered,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceSummary {
    pub path: String,
    pub kind: &'static str,
    pub rules: usize,
    pub techniques: usize,
}

/// One rule (or layer entry, or list line) and the technique IDs it names, as written.
#[derive(Debug)]
pub(crate) struct Found {
    pub rule: String,
    pub ids: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Inventory {
    /// Current technique ID → labels of the rules naming it.
    rules: BTreeMap<String, BTreeSet<String>>,
    sources: Vec<SourceSummary>,
    problems: Vec<String>,
}

type Reader = fn(&str, &str) -> Result<(Vec<Found>, Vec<String>), String>;

/// The format of a file, by its name; `None` for files an inventory folder may also hold.
fn kind_of(path: &Path) -> Option<(&'static str, Reader)> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    let ext = name.rsplit('.').next()?;
    match ext {
        "json" => Some(("navigator-layer", navigator::read)),
        "yml" | "yaml" => Some(("sigma", sigma::read)),
        "toml" => Some(("elastic", elastic::read)),
        "csv" | "txt" => Some(("list", list::read)),
        _ => None,
    }
}

impl Inventory {
    /// Reads every path: files of the formats above, or folders walked recursively. A file named
    /// explicitly must be readable; inside folders, unreadable rules are skipped and reported in
    /// [`Inventory::problems`].
    pub fn load(paths: &[PathBuf], catalog: &Catalog) -> Result<Inventory, InventoryError> {
        let mut inv = Inventory::default();
        for path in paths {
            let meta = std::fs::metadata(path).map_err(|source| InventoryError::Read { path: path.clone(), source })?;
            if meta.is_dir() {
                let mut files = Vec::new();
                crate::input::walk(path, &|p| kind_of(p).is_some(), &mut files)
                    .map_err(|source| InventoryError::Read { path: path.clone(), source })?;
                files.sort();
                for f in files {
                    if let Err(reason) = inv.load_file(&f, catalog) {
                        inv.problems.push(format!("{}: skipped: {reason}", f.display()));
                    }
                }
            } else {
                inv.load_file(path, catalog)
                    .map_err(|reason| InventoryError::Unreadable { path: path.clone(), reason })?;
            }
        }
        Ok(inv)
    }

    fn load_file(&mut self, path: &Path, catalog: &Catalog) -> Result<(), String> {
        let (kind, read) =
            kind_of(path).ok_or("unknown file type (expected .json, .yml, .yaml, .toml, .csv or .txt)")?;
        let bytes = crate::input::read_limited(path, MAX_FILE_BYTES, None)?;
        let text = String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
        let display = path.display().to_string();
        let (found, notes) = read(&text, &display)?;
        self.problems.extend(notes.into_iter().map(|n| format!("{display}: {n}")));
        let mut techniques = BTreeSet::new();
        for f in &found {
            for id in &f.ids {
                if let Some(current) = self.resolve(catalog, id, &display, &f.rule) {
                    techniques.insert(current.clone());
                    self.rules.entry(current).or_default().insert(f.rule.clone());
                }
            }
        }
        self.sources.push(SourceSummary { path: display, kind, rules: found.len(), techniques: techniques.len() });
        Ok(())
    }

    fn resolve(&mut self, catalog: &Catalog, id: &str, file: &str, rule: &str) -> Option<String> {
        let r = catalog.resolve(id);
        let current = r.technique.map(|i| catalog.techniques()[i].id.clone());
        match (r.status, &current) {
            (Status::Revoked, Some(c)) => {
                self.problems.push(format!("{file}: {id} in \"{rule}\" is revoked; counted as {c}"));
            }
            (Status::Unknown, _) | (Status::Revoked, None) => {
                self.problems.push(format!("{file}: {id} in \"{rule}\" is not a current ATT&CK technique; ignored"));
            }
            _ => {}
        }
        current
    }

    /// Whether rules cover a technique (a canonical, current ID).
    pub fn coverage(&self, _catalog: &Catalog, technique_id: &str) -> Coverage {
        let mut by: BTreeSet<String> = self.rules.get(technique_id).cloned().unwrap_or_default();
        if !technique_id.contains('.') {
            let prefix = format!("{technique_id}.");
            for (_, rules) in self.rules.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)) {
                by.extend(rules.iter().cloned());
            }
        }
        if by.is_empty() { Coverage::NotCovered } else { Coverage::Covered { by: by.into_iter().collect() } }
    }

    /// Current technique IDs named directly by at least one rule.
    pub fn covered_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.keys().map(String::as_str)
    }

    pub fn sources(&self) -> &[SourceSummary] {
        &self.sources
    }

    /// What did not stop loading: skipped files, unknown or revoked IDs, ignored entries.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl crate::review::DetectionInventory for Inventory {
    fn covers(&self, catalog: &Catalog, technique: &str) -> bool {
        matches!(self.coverage(catalog, technique), Coverage::Covered { .. })
    }
    fn source_count(&self) -> usize {
        self.sources.len()
    }
    fn rules(&self, catalog: &Catalog, technique: &str) -> Vec<String> {
        match self.coverage(catalog, technique) {
            Coverage::Covered { by } => by,
            Coverage::NotCovered => vec![],
        }
    }
    fn rules_naming(&self, technique: &str) -> Vec<String> {
        self.rules.get(technique).map(|r| r.iter().cloned().collect()).unwrap_or_default()
    }
    fn technique_count(&self) -> usize {
        self.rules.len()
    }
}

/// `T1059`, `t1059.001` and the like, as written in rules; `None` for anything else.
pub(crate) fn technique_like(s: &str) -> Option<String> {
    crate::attack::resolve::normalize(s)
}
