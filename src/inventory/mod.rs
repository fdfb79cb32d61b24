//! Detection inventories: what the organisation can detect, read from the formats people already
//! keep — ATT&CK Navigator layers, Sigma rules, Elastic detection rules, plain lists of technique
//! IDs — and the deployed rules as Microsoft's APIs list them: Defender custom detection rules
//! (Graph) and Microsoft Sentinel analytics rules (ARM). One module per format; adding a format
//! is adding a file and a line in [`kind_of`] (or, for JSON, in [`json_kind`]).
//!
//! A rule that is switched off (disabled, or auto-disabled by Defender) covers nothing; it is
//! kept apart so that a review can say "rule X would cover T1003.006 but is disabled".
//!
//! Technique IDs are resolved through the catalog (old IDs to their replacement), and coverage
//! follows one rule: a rule on a sub-technique covers its parent, a rule on a parent does not
//! vouch for any specific sub-technique.

mod defender;
mod elastic;
mod list;
mod sentinel;
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

/// Whether a rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Enabled,
    Disabled,
    /// Switched off by Defender because its query kept failing.
    AutoDisabled,
    /// A status this version does not know: not counted as coverage.
    Unknown,
}

/// One rule (or layer entry, or list line) and the technique IDs it names, as written.
#[derive(Debug)]
pub(crate) struct Found {
    pub rule: String,
    pub ids: Vec<String>,
    pub state: State,
}

#[derive(Debug, Default)]
pub struct Inventory {
    /// Current technique ID → labels of the rules naming it.
    rules: BTreeMap<String, BTreeSet<String>>,
    /// Current technique ID → labels of switched-off rules naming it ("… (disabled)").
    disabled: BTreeMap<String, BTreeSet<String>>,
    sources: Vec<SourceSummary>,
    problems: Vec<String>,
}

type Reader = fn(&str, &str) -> Result<(Vec<Found>, Vec<String>), String>;

/// The format of a file, by its name; `None` for files an inventory folder may also hold.
fn kind_of(path: &Path) -> Option<(&'static str, Reader)> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    let ext = name.rsplit('.').next()?;
    match ext {
        // Which JSON it is, is read from its content (json_kind).
        "json" => Some(("navigator-layer", navigator::read)),
        "yml" | "yaml" => Some(("sigma", sigma::read)),
        "toml" => Some(("elastic", elastic::read)),
        "csv" | "txt" => Some(("list", list::read)),
        _ => None,
    }
}

/// Reads the rules of one listing (its format's `read_value`).
type ValueReader = fn(&serde_json::Value) -> (Vec<Found>, Vec<String>);

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

    /// The rules deployed in a tenant as its APIs listed them — Defender custom detection rules
    /// (Graph) and Microsoft Sentinel analytics rules (ARM), read at `read_at` — as an inventory
    /// of their own, with what a review says about them.
    pub fn from_deployed(
        defender_rules: &[serde_json::Value],
        sentinel_rules: &[serde_json::Value],
        read_at: chrono::DateTime<chrono::Utc>,
        source: &str,
        catalog: &Catalog,
    ) -> (Inventory, crate::review::DeployedRules) {
        let mut inv = Inventory::default();
        let at = read_at.format("%Y-%m-%d %H:%M UTC");
        let mut kinds = Vec::new();
        let mut switched_off = 0;
        let listings: [(&'static str, &str, &[serde_json::Value], ValueReader); 2] = [
            ("defender-custom-detections", "custom detection rules", defender_rules, defender::read_value),
            ("sentinel-analytics-rules", "Sentinel analytics rules", sentinel_rules, sentinel::read_value),
        ];
        for (kind, what, rules, read) in listings {
            if rules.is_empty() {
                continue;
            }
            let (found, notes) = read(&serde_json::Value::Array(rules.to_vec()));
            let label = format!("{source}: {what} read {at}");
            inv.problems.extend(notes.into_iter().map(|n| format!("{label}: {n}")));
            switched_off += found.iter().filter(|f| f.state != State::Enabled).count();
            inv.add(catalog, kind, &label, &found);
            kinds.push(kind);
        }
        let info = crate::review::DeployedRules {
            kind: if kinds.is_empty() { "defender-custom-detections".into() } else { kinds.join(", ") },
            read_at,
            rules: defender_rules.len() + sentinel_rules.len(),
            switched_off,
        };
        (inv, info)
    }

    fn load_file(&mut self, path: &Path, catalog: &Catalog) -> Result<(), String> {
        let (mut kind, mut read) =
            kind_of(path).ok_or("unknown file type (expected .json, .yml, .yaml, .toml, .csv or .txt)")?;
        let bytes = crate::input::read_limited(path, MAX_FILE_BYTES, None)?;
        let text = String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
        if kind == "navigator-layer" {
            (kind, read) = json_kind(&text);
        }
        let display = path.display().to_string();
        let (found, notes) = read(&text, &display)?;
        self.problems.extend(notes.into_iter().map(|n| format!("{display}: {n}")));
        self.add(catalog, kind, &display, &found);
        Ok(())
    }

    /// The rules `found` in `display` (a file, or a tenant's listing) of format `kind`.
    fn add(&mut self, catalog: &Catalog, kind: &'static str, display: &str, found: &[Found]) {
        let mut techniques = BTreeSet::new();
        for f in found {
            for id in &f.ids {
                if let Some(current) = self.resolve(catalog, id, display, &f.rule) {
                    let (map, label) = match f.state {
                        State::Enabled => (&mut self.rules, f.rule.clone()),
                        State::Disabled => (&mut self.disabled, format!("{} (disabled)", f.rule)),
                        State::AutoDisabled => (
                            &mut self.disabled,
                            format!("{} (auto-disabled by Defender: its query kept failing)", f.rule),
                        ),
                        State::Unknown => (&mut self.disabled, format!("{} (status unknown)", f.rule)),
                    };
                    if f.state == State::Enabled {
                        techniques.insert(current.clone());
                    }
                    map.entry(current).or_default().insert(label);
                }
            }
        }
        self.sources.push(SourceSummary {
            path: display.to_owned(),
            kind,
            rules: found.len(),
            techniques: techniques.len(),
        });
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
    fn disabled_rules(&self, technique: &str) -> Vec<String> {
        self.disabled.get(technique).map(|r| r.iter().cloned().collect()).unwrap_or_default()
    }
}

/// The reader of a JSON file, by its content: Defender custom detection rules (Graph), Sentinel
/// analytics rules (ARM), or else an ATT&CK Navigator layer.
fn json_kind(text: &str) -> (&'static str, Reader) {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if defender::recognises(&v) => ("defender-detection-rules", defender::read),
        Ok(v) if sentinel::recognises(&v) => ("sentinel-analytics-rules", sentinel::read),
        _ => ("navigator-layer", navigator::read),
    }
}

/// The items of what Microsoft's APIs list: a list response's `value`, a bare array, or one item.
pub(crate) fn listed(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    use serde_json::Value;
    match v {
        Value::Object(o) => match o.get("value") {
            Some(Value::Array(a)) => a.iter().collect(),
            _ => vec![v],
        },
        Value::Array(a) => a.iter().collect(),
        _ => vec![],
    }
}

/// `T1059`, `t1059.001` and the like, as written in rules; `None` for anything else.
pub(crate) fn technique_like(s: &str) -> Option<String> {
    crate::attack::resolve::normalize(s)
}

/// A source's deployed rules layered over the inventory files: coverage by either, the
/// switched-off rules of either named. What a review of that source is made against.
pub struct Layered<'a> {
    pub files: Option<&'a dyn crate::review::DetectionInventory>,
    pub deployed: &'a Inventory,
    pub info: crate::review::DeployedRules,
}

impl crate::review::DetectionInventory for Layered<'_> {
    fn covers(&self, catalog: &Catalog, technique: &str) -> bool {
        self.files.is_some_and(|f| f.covers(catalog, technique)) || self.deployed.covers(catalog, technique)
    }
    fn source_count(&self) -> usize {
        self.files.map_or(0, |f| f.source_count()) + 1
    }
    fn technique_count(&self) -> usize {
        let files = self.files.map_or(0, |f| f.technique_count());
        let more = self.deployed.covered_ids().filter(|id| self.files.is_none_or(|f| f.rules_naming(id).is_empty()));
        files + more.count()
    }
    fn rules(&self, catalog: &Catalog, technique: &str) -> Vec<String> {
        let mut out = self.files.map(|f| f.rules(catalog, technique)).unwrap_or_default();
        out.extend(self.deployed.rules(catalog, technique));
        out
    }
    fn rules_naming(&self, technique: &str) -> Vec<String> {
        let mut out = self.files.map(|f| f.rules_naming(technique)).unwrap_or_default();
        out.extend(self.deployed.rules_naming(technique));
        out
    }
    fn disabled_rules(&self, technique: &str) -> Vec<String> {
        let mut out = self.files.map(|f| f.disabled_rules(technique)).unwrap_or_default();
        out.extend(self.deployed.disabled_rules(technique));
        out
    }
    fn deployed(&self) -> Option<crate::review::DeployedRules> {
        Some(self.info.clone())
    }
}
