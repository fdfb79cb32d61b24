//! STIX 2.0 / 2.1 bundle → [`CatalogData`].
//!
//! The bundle is streamed once into mostly-optional structs: every field Hindsight does not use
//! (descriptions, references, citations: most of the 37 MB) is skipped by the parser without
//! being allocated, and only the slim form of each object is kept. Unknown object types are ignored, so a newer ATT&CK release with new
//! object kinds still imports; a field we do use that has the wrong type fails the whole import
//! with the JSON path of the offending value, because a half-understood catalog is worse than
//! the one already in use.

mod scan;

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::{CatalogError, Result};
use super::model::*;
use scan::{Item, Position, ScanError, Scanner};

/// Largest bundle we agree to read. Enterprise 18.1 is 37 MB; MITRE's STIX 2.1 bundles with
/// the collection object are ~45 MB. Eight times that leaves room for growth and still refuses a
/// file that would only be read by mistake.
pub const MAX_BUNDLE_BYTES: u64 = 384 * 1024 * 1024;

/// Used when a bundle carries no marking-definition statement of its own.
pub const DEFAULT_NOTICE: &str = "© The MITRE Corporation. This work is reproduced and distributed with the permission of The MITRE Corporation. MITRE ATT&CK and ATT&CK are registered trademarks of The MITRE Corporation.";

/// What an import found besides the catalog itself: things a person may want to know about the
/// bundle but that do not stop it from being used.
#[derive(Debug, Default, Clone)]
pub struct ImportReport {
    pub objects: usize,
    pub ignored_relationships: usize,
    pub warnings: Vec<String>,
}

/// Reads and imports a bundle file, refusing files over `limit` bytes.
///
/// The file is parsed as a stream: objects are kept only in the slim form the catalog needs,
/// so memory stays a small fraction of the file's size whatever the size of the bundle.
pub fn import_file(path: &Path, limit: u64) -> Result<(CatalogData, ImportReport)> {
    let read_err = |source| CatalogError::Read { path: path.to_owned(), error: source };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_dir() {
        return Err(read_err(std::io::Error::other("it is a directory, not a file")));
    }
    if meta.len() > limit {
        return Err(CatalogError::TooLarge { path: path.to_owned(), size: meta.len(), limit });
    }
    // The metadata size can lie (pipes, files still growing): cap the read itself as well.
    let mut reader = HashingReader { inner: file.take(limit + 1), hasher: Sha256::new(), read: 0 };
    let parsed = parse_bundle(std::io::BufReader::with_capacity(1 << 16, &mut reader), path);
    if reader.read > limit {
        return Err(CatalogError::TooLarge { path: path.to_owned(), size: reader.read, limit });
    }
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    Builder::new(parsed?, path).build(file_name.as_deref(), hex(&reader.hasher.finalize()))
}

/// Imports a bundle already in memory (tests, fuzzing). `path` names it in errors.
pub fn import_bytes(bytes: &[u8], path: &Path, file_name: Option<&str>) -> Result<(CatalogData, ImportReport)> {
    let parsed = parse_bundle(bytes, path)?;
    Builder::new(parsed, path).build(file_name, hex(&Sha256::digest(bytes)))
}

/// Computes the bundle's SHA-256 (its provenance) while it is parsed, without a second read.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_bundle(reader: impl Read, path: &Path) -> Result<Parsed> {
    let mut p = Parsed {
        kind: None,
        spec_version: None,
        has_objects: false,
        objects: Vec::new(),
        relationships: Vec::new(),
        total: 0,
    };
    Scanner::new(reader)
        .run(|item, at| match item {
            Item::Member { key: "type", value } => {
                serde_json::from_slice(value).map(|v| p.kind = v).map_err(|e| format!("\"type\": {}", located(&e, at)))
            }
            Item::Member { key: "spec_version", value } => serde_json::from_slice(value)
                .map(|v| p.spec_version = v)
                .map_err(|e| format!("\"spec_version\": {}", located(&e, at))),
            Item::Member { .. } => Ok(()),
            Item::ObjectsStart => {
                p.has_objects = true;
                Ok(())
            }
            Item::Object { index, value } => p.add(index, value, at),
        })
        .map_err(|e| scan_error(e, path))?;
    if p.kind.as_deref() != Some("bundle") {
        let found = p.kind.as_deref().map_or("no \"type\"".to_owned(), |k| format!("\"type\" is {k:?}"));
        return Err(CatalogError::NotBundle { path: path.to_owned(), reason: format!("{found}, expected \"bundle\"") });
    }
    if !p.has_objects {
        return Err(CatalogError::NotBundle { path: path.to_owned(), reason: "it has no \"objects\" array".into() });
    }
    Ok(p)
}

fn scan_error(e: ScanError, path: &Path) -> CatalogError {
    let path = path.to_owned();
    match e {
        ScanError::Io(source) => CatalogError::Read { path, error: source },
        ScanError::Truncated { at, inside } => CatalogError::Truncated {
            path,
            detail: format!("the input ends at {at} (byte {}) inside {inside}", at.offset),
        },
        ScanError::Syntax { at, message } => CatalogError::NotJson { path, detail: format!("{message} at {at}") },
        // Other JSON (an array, a string) is "not a bundle"; anything else is not JSON at all.
        ScanError::NotAnObject { first, at }
            if matches!(first, b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') =>
        {
            CatalogError::NotBundle {
                path,
                reason: format!("it is JSON but not an object (it starts with '{}' at {at})", first as char),
            }
        }
        ScanError::NotAnObject { first, at } => {
            CatalogError::NotJson { path, detail: format!("unexpected {} at {at}", scan::show(first)) }
        }
        ScanError::Value { message } => CatalogError::InvalidObject { path, reason: message },
    }
}

/// serde_json's message with its position made absolute: it counts lines and columns from the
/// start of the value it was given, `at` is where that value starts in the file.
fn located(e: &serde_json::Error, at: Position) -> String {
    let msg = e.to_string();
    let own = format!(" at line {} column {}", e.line(), e.column());
    let msg = msg.strip_suffix(&own).unwrap_or(&msg);
    let (line, column) = if e.line() <= 1 {
        (at.line, at.column + e.column().saturating_sub(1) as u64)
    } else {
        (at.line + e.line() as u64 - 1, e.column() as u64)
    };
    format!("{msg} at line {line}, column {column}")
}

impl Parsed {
    /// Parses one element of `objects` and keeps what the catalog needs of it.
    fn add(&mut self, index: usize, bytes: &[u8], at: Position) -> std::result::Result<(), String> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let o: RawObject = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| {
                let field = e.path().to_string();
                let field = if field == "." { String::new() } else { format!(".{field}") };
                format!("objects[{index}]{field}: {}", located(e.inner(), at))
            })
            .and_then(|o| de.end().map(|()| o).map_err(|e| format!("objects[{index}]: {}", located(&e, at))))?;
        self.total += 1;
        if o.kind == "relationship" {
            // Revoked or deprecated relationships no longer hold; incomplete ones say nothing.
            if let (true, Some(kind), Some(source), Some(target)) =
                (o.lifecycle().is_active(), o.relationship_type, o.source_ref, o.target_ref)
            {
                self.relationships.push(RawRelationship { kind, source, target });
            }
        } else if KEPT_TYPES.contains(&o.kind.as_str()) {
            self.objects.push(o);
        }
        Ok(())
    }
}

// ---- the raw STIX shapes we read -------------------------------------------------------------

/// The bundle as streamed: relationships in their slim form, the other object types the catalog
/// uses as [`RawObject`]s, everything else counted and dropped.
struct Parsed {
    kind: Option<String>,
    spec_version: Option<String>,
    has_objects: bool,
    objects: Vec<RawObject>,
    relationships: Vec<RawRelationship>,
    total: usize,
}

struct RawRelationship {
    kind: String,
    source: String,
    target: String,
}

/// Object types the catalog reads; all others (identity, x-mitre-asset, ...) are skipped.
const KEPT_TYPES: &[&str] = &[
    "x-mitre-matrix",
    "x-mitre-tactic",
    "attack-pattern",
    "intrusion-set",
    "campaign",
    "malware",
    "tool",
    "course-of-action",
    "x-mitre-data-component",
    "x-mitre-data-source",
    "x-mitre-detection-strategy",
    "x-mitre-analytic",
    "x-mitre-collection",
    "marking-definition",
];

#[derive(Deserialize)]
struct RawObject {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    spec_version: Option<String>,
    name: Option<String>,
    revoked: Option<bool>,
    x_mitre_deprecated: Option<bool>,
    #[serde(default)]
    external_references: AttackId,
    #[serde(default)]
    kill_chain_phases: Vec<KillChainPhase>,
    #[serde(default)]
    x_mitre_platforms: Vec<String>,
    x_mitre_is_subtechnique: Option<bool>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    x_mitre_aliases: Vec<String>,
    #[serde(default)]
    tactic_refs: Vec<String>,
    x_mitre_shortname: Option<String>,
    relationship_type: Option<String>,
    source_ref: Option<String>,
    target_ref: Option<String>,
    x_mitre_data_source_ref: Option<String>,
    #[serde(default)]
    x_mitre_analytic_refs: Vec<String>,
    #[serde(default)]
    x_mitre_log_source_references: Vec<RawLogSourceRef>,
    #[serde(default)]
    x_mitre_log_sources: Vec<RawLogSource>,
    x_mitre_version: Option<String>,
    first_seen: Option<String>,
    last_seen: Option<String>,
    definition: Option<RawDefinition>,
}

#[derive(Deserialize)]
struct ExternalRef<'a> {
    #[serde(borrow)]
    source_name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    external_id: Option<std::borrow::Cow<'a, str>>,
}

/// The ATT&CK ID out of `external_references`: the first reference whose source is one of
/// MITRE's own (`mitre-attack`, `mitre-mobile-attack`, ...). Only that one is kept: objects carry
/// up to a hundred citations each, and allocating them all was a tenth of an import.
#[derive(Default)]
struct AttackId(Option<String>);

impl<'de> Deserialize<'de> for AttackId {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AttackId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of external references")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<AttackId, A::Error> {
                let mut found = None;
                while let Some(r) = seq.next_element::<ExternalRef<'de>>()? {
                    if found.is_none() && r.source_name.as_deref().is_some_and(|s| s.starts_with("mitre-")) {
                        found = r.external_id.map(|id| id.into_owned());
                    }
                }
                Ok(AttackId(found))
            }
        }
        de.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
struct KillChainPhase {
    kill_chain_name: String,
    phase_name: String,
}

#[derive(Deserialize)]
struct RawLogSourceRef {
    x_mitre_data_component_ref: Option<String>,
    name: Option<String>,
    channel: Option<String>,
}

#[derive(Deserialize)]
struct RawLogSource {
    name: Option<String>,
    channel: Option<String>,
}

#[derive(Deserialize)]
struct RawDefinition {
    statement: Option<String>,
}

impl RawObject {
    /// The ATT&CK ID (`T1059`, `G0016`, `DC0001`, ...). MITRE puts it in the first external
    /// reference whose source is one of its own (`mitre-attack`, `mitre-mobile-attack`, ...).
    fn attack_id(&self) -> Option<&str> {
        self.external_references.0.as_deref()
    }

    fn lifecycle(&self) -> Lifecycle {
        if self.revoked == Some(true) {
            Lifecycle::Revoked
        } else if self.x_mitre_deprecated == Some(true) {
            Lifecycle::Deprecated
        } else {
            Lifecycle::Active
        }
    }

    fn name_or_id(&self) -> String {
        self.name.as_deref().unwrap_or(&self.id).to_owned()
    }
}

// ---- from raw objects to the catalog ---------------------------------------------------------

struct Builder<'p> {
    path: &'p Path,
    parsed: Parsed,
    /// STIX id → index into `parsed.objects`.
    by_stix_id: HashMap<String, usize>,
    report: ImportReport,
}

impl<'p> Builder<'p> {
    fn new(parsed: Parsed, path: &'p Path) -> Self {
        let by_stix_id = parsed.objects.iter().enumerate().map(|(i, o)| (o.id.clone(), i)).collect();
        let report = ImportReport { objects: parsed.total, ..Default::default() };
        Builder { path, parsed, by_stix_id, report }
    }

    fn get(&self, stix_id: &str) -> Option<&RawObject> {
        self.by_stix_id.get(stix_id).map(|&i| &self.parsed.objects[i])
    }

    fn of_type<'s>(&'s self, kind: &'static str) -> impl Iterator<Item = &'s RawObject> + 's {
        self.parsed.objects.iter().filter(move |o| o.kind == kind)
    }

    fn incomplete(&self, missing: impl Into<String>) -> CatalogError {
        CatalogError::Incomplete { path: self.path.to_owned(), missing: missing.into() }
    }

    fn build(mut self, file_name: Option<&str>, sha256: String) -> Result<(CatalogData, ImportReport)> {
        let (matrix, domain) = self.matrix()?;
        let tactics = self.tactics(matrix)?;
        let matrix = matrix.name_or_id();
        let rels = self.relationships();
        let (mut techniques, warnings) = self.techniques(&tactics, &rels)?;
        techniques.sort_by(|a, b| a.id.cmp(&b.id));

        let data = CatalogData {
            format: FORMAT_VERSION,
            meta: Meta {
                domain,
                attack_version: self.attack_version(file_name),
                matrix,
                stix_version: self
                    .parsed
                    .spec_version
                    .as_deref()
                    .or_else(|| self.parsed.objects.iter().find_map(|o| o.spec_version.as_deref()))
                    .map(str::to_owned),
                source_file: file_name.map(str::to_owned),
                source_sha256: Some(sha256),
                notice: self.notice(),
            },
            groups: self.groups(&rels),
            campaigns: self.campaigns(&rels),
            software: self.software(&rels),
            mitigations: self.mitigations(&rels),
            data_components: self.data_components(),
            detection_strategies: self.detection_strategies(&rels),
            detects: self.detects(&rels),
            tactics,
            techniques,
        };
        self.report.warnings.extend(warnings);
        self.report.ignored_relationships = rels.ignored;
        if rels.ignored > 0 {
            self.report.warnings.push(format!(
                "{} relationships point to objects that are not in the bundle or have no ATT&CK ID; they were ignored",
                rels.ignored
            ));
        }
        Ok((data, self.report))
    }

    /// The matrix gives the domain and the kill-chain order. Mobile bundles carry a second,
    /// deprecated matrix, so take the active one with the most tactics.
    fn matrix(&self) -> Result<(&RawObject, String)> {
        let matrix = self
            .of_type("x-mitre-matrix")
            .filter(|m| m.lifecycle().is_active())
            .max_by_key(|m| m.tactic_refs.len())
            .ok_or_else(|| {
                self.incomplete("no active x-mitre-matrix object (it gives the tactics' kill-chain order)")
            })?;
        let domain = matrix.attack_id().map(str::to_owned).ok_or_else(|| {
            self.incomplete(format!(
                "the matrix {:?} has no mitre-attack external_id naming its domain",
                matrix.name_or_id()
            ))
        })?;
        Ok((matrix, domain))
    }

    fn tactics(&self, matrix: &RawObject) -> Result<Vec<Tactic>> {
        let mut tactics = Vec::with_capacity(matrix.tactic_refs.len());
        for r in &matrix.tactic_refs {
            let Some(t) = self.get(r).filter(|t| t.kind == "x-mitre-tactic") else {
                return Err(self.incomplete(format!("the matrix lists tactic {r}, which is not in the bundle")));
            };
            let shortname = t
                .x_mitre_shortname
                .as_deref()
                .ok_or_else(|| self.incomplete(format!("tactic {} has no x_mitre_shortname", t.id)))?;
            tactics.push(Tactic {
                id: t.attack_id().unwrap_or(&t.id).to_owned(),
                shortname: shortname.to_owned(),
                name: t.name_or_id(),
            });
        }
        if tactics.is_empty() {
            return Err(self.incomplete("the matrix lists no tactics"));
        }
        Ok(tactics)
    }

    fn techniques(&self, tactics: &[Tactic], rels: &Relationships) -> Result<(Vec<Technique>, Vec<String>)> {
        let mut warnings = Vec::new();
        let order: HashMap<&str, usize> = tactics.iter().enumerate().map(|(i, t)| (t.shortname.as_str(), i)).collect();
        let mut out: Vec<Technique> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for o in self.of_type("attack-pattern") {
            let Some(id) = o.attack_id() else {
                warnings.push(format!("attack-pattern {} has no ATT&CK ID; skipped", o.id));
                continue;
            };
            let mut tactic_names: Vec<String> = o
                .kill_chain_phases
                .iter()
                .filter(|p| p.kill_chain_name.starts_with("mitre-"))
                .map(|p| p.phase_name.to_string())
                .collect();
            tactic_names.sort_by_key(|t| order.get(t.as_str()).copied().unwrap_or(usize::MAX));
            tactic_names.dedup();
            let parent = rels.one(&rels.subtechnique_of, &o.id).map(str::to_owned).or_else(|| {
                (o.x_mitre_is_subtechnique == Some(true)).then(|| id.split('.').next().unwrap_or(id).to_owned())
            });
            let t = Technique {
                id: id.to_owned(),
                name: o.name_or_id(),
                lifecycle: o.lifecycle(),
                tactics: tactic_names,
                platforms: o.x_mitre_platforms.iter().map(|p| p.to_string()).collect(),
                parent,
                revoked_by: rels.one(&rels.revoked_by, &o.id).map(str::to_owned),
            };
            // Two objects with one ATT&CK ID: keep the active one, it is what the ID means now.
            match seen.get(id) {
                Some(&i) if rank(out[i].lifecycle) <= rank(t.lifecycle) => {}
                Some(&i) => out[i] = t,
                None => {
                    seen.insert(id.to_owned(), out.len());
                    out.push(t);
                }
            }
        }
        if !out.iter().any(|t| t.lifecycle.is_active()) {
            return Err(self.incomplete("no active attack-pattern (technique) objects"));
        }
        Ok((out, warnings))
    }

    fn groups(&self, rels: &Relationships) -> Vec<Group> {
        let mut out: Vec<Group> = self
            .of_type("intrusion-set")
            .filter_map(|o| {
                Some(Group {
                    id: o.attack_id()?.to_owned(),
                    name: o.name_or_id(),
                    lifecycle: o.lifecycle(),
                    aliases: aliases(o),
                    techniques: rels.all(&rels.uses_technique, &o.id),
                    software: rels.all(&rels.uses_software, &o.id),
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn campaigns(&self, rels: &Relationships) -> Vec<Campaign> {
        let mut out: Vec<Campaign> = self
            .of_type("campaign")
            .filter_map(|o| {
                Some(Campaign {
                    id: o.attack_id()?.to_owned(),
                    name: o.name_or_id(),
                    lifecycle: o.lifecycle(),
                    aliases: aliases(o),
                    first_seen: o.first_seen.as_deref().map(str::to_owned),
                    last_seen: o.last_seen.as_deref().map(str::to_owned),
                    groups: rels.all(&rels.attributed_to, &o.id),
                    techniques: rels.all(&rels.uses_technique, &o.id),
                    software: rels.all(&rels.uses_software, &o.id),
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn software(&self, rels: &Relationships) -> Vec<Software> {
        let mut out: Vec<Software> = self
            .parsed
            .objects
            .iter()
            .filter_map(|o| {
                let kind = match o.kind.as_ref() {
                    "malware" => SoftwareKind::Malware,
                    "tool" => SoftwareKind::Tool,
                    _ => return None,
                };
                Some(Software {
                    id: o.attack_id()?.to_owned(),
                    name: o.name_or_id(),
                    kind,
                    lifecycle: o.lifecycle(),
                    aliases: aliases(o),
                    techniques: rels.all(&rels.uses_technique, &o.id),
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn mitigations(&self, rels: &Relationships) -> Vec<Mitigation> {
        let mut out: Vec<Mitigation> = self
            .of_type("course-of-action")
            .filter_map(|o| {
                Some(Mitigation {
                    id: o.attack_id()?.to_owned(),
                    name: o.name_or_id(),
                    lifecycle: o.lifecycle(),
                    techniques: rels.all(&rels.mitigates, &o.id),
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Key of a data component: its ATT&CK ID (v18), or "Data source: Component" before v18,
    /// when components had no ID of their own.
    fn data_component_key(&self, o: &RawObject) -> String {
        if let Some(id) = o.attack_id() {
            return id.to_owned();
        }
        match self.data_source_name(o) {
            Some(ds) => format!("{ds}: {}", o.name_or_id()),
            None => o.name_or_id(),
        }
    }

    fn data_source_name(&self, o: &RawObject) -> Option<String> {
        let r = o.x_mitre_data_source_ref.as_deref().filter(|r| !r.is_empty())?;
        self.get(r).map(|ds| ds.name_or_id())
    }

    fn data_components(&self) -> Vec<DataComponent> {
        let mut out: Vec<DataComponent> = self
            .of_type("x-mitre-data-component")
            .map(|o| DataComponent {
                key: self.data_component_key(o),
                id: o.attack_id().map(str::to_owned),
                name: o.name_or_id(),
                data_source: self.data_source_name(o),
                lifecycle: o.lifecycle(),
                log_sources: o
                    .x_mitre_log_sources
                    .iter()
                    .filter_map(|l| {
                        Some(LogSource {
                            name: l.name.as_deref()?.to_owned(),
                            channel: l.channel.as_deref().map(str::to_owned),
                            data_component: None,
                        })
                    })
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    fn detection_strategies(&self, rels: &Relationships) -> Vec<DetectionStrategy> {
        let mut out: Vec<DetectionStrategy> = self
            .of_type("x-mitre-detection-strategy")
            .filter_map(|o| {
                let analytics = o
                    .x_mitre_analytic_refs
                    .iter()
                    .filter_map(|r| self.get(r))
                    .filter(|a| a.kind == "x-mitre-analytic")
                    .map(|a| Analytic {
                        id: a.attack_id().unwrap_or(&a.id).to_owned(),
                        platforms: a.x_mitre_platforms.iter().map(|p| p.to_string()).collect(),
                        log_sources: a
                            .x_mitre_log_source_references
                            .iter()
                            .filter_map(|l| {
                                Some(LogSource {
                                    name: l.name.as_deref()?.to_owned(),
                                    channel: l.channel.as_deref().map(str::to_owned),
                                    data_component: l
                                        .x_mitre_data_component_ref
                                        .as_deref()
                                        .and_then(|r| self.get(r))
                                        .map(|dc| self.data_component_key(dc)),
                                })
                            })
                            .collect(),
                    })
                    .collect();
                Some(DetectionStrategy {
                    id: o.attack_id()?.to_owned(),
                    name: o.name_or_id(),
                    lifecycle: o.lifecycle(),
                    techniques: rels.all(&rels.strategy_detects, &o.id),
                    analytics,
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn detects(&self, rels: &Relationships) -> Vec<Detects> {
        let mut out: Vec<Detects> = rels
            .component_detects
            .iter()
            .filter_map(|(dc, techniques)| {
                let dc = self.get(dc)?;
                let key = self.data_component_key(dc);
                Some(techniques.iter().map(move |t| Detects { data_component: key.clone(), technique: t.clone() }))
            })
            .flatten()
            .collect();
        out.sort_by(|a, b| (&a.technique, &a.data_component).cmp(&(&b.technique, &b.data_component)));
        out
    }

    /// ATT&CK's STIX 2.1 bundles carry an `x-mitre-collection` with the release number; the
    /// per-object bundles assembled from mitre/cti do not, and then the file name is the only
    /// hint (`enterprise-attack-18.1.json`).
    fn attack_version(&self, file_name: Option<&str>) -> Option<String> {
        if let Some(v) = self.of_type("x-mitre-collection").find_map(|c| c.x_mitre_version.as_deref()) {
            return Some(v.to_owned());
        }
        version_in_name(file_name?)
    }

    fn notice(&self) -> String {
        self.of_type("marking-definition")
            .find_map(|m| m.definition.as_ref()?.statement.as_deref())
            .filter(|s| s.contains("MITRE"))
            .map_or_else(|| DEFAULT_NOTICE.to_owned(), str::to_owned)
    }

    /// Collects the relationships once, keyed by source STIX id and resolved to target ATT&CK IDs.
    fn relationships(&self) -> Relationships {
        let mut r = Relationships::default();
        for rel in &self.parsed.relationships {
            let (kind, src, dst) = (rel.kind.as_str(), rel.source.as_str(), rel.target.as_str());
            let (Some(source), Some(target)) = (self.get(src), self.get(dst)) else {
                r.ignored += 1;
                continue;
            };
            let target_id = target.attack_id().map(str::to_owned);
            let map = match (kind, source.kind.as_ref(), target.kind.as_ref()) {
                ("uses", "intrusion-set" | "campaign" | "malware" | "tool", "attack-pattern") => &mut r.uses_technique,
                ("uses", "intrusion-set" | "campaign", "malware" | "tool") => &mut r.uses_software,
                ("mitigates", "course-of-action", "attack-pattern") => &mut r.mitigates,
                ("subtechnique-of", "attack-pattern", "attack-pattern") => &mut r.subtechnique_of,
                ("revoked-by", "attack-pattern", "attack-pattern") => &mut r.revoked_by,
                ("attributed-to", "campaign", "intrusion-set") => &mut r.attributed_to,
                ("detects", "x-mitre-detection-strategy", "attack-pattern") => &mut r.strategy_detects,
                ("detects", "x-mitre-data-component", "attack-pattern") => &mut r.component_detects,
                _ => continue,
            };
            match target_id {
                Some(id) => {
                    map.entry(src.to_owned()).or_default().insert(id);
                }
                None => r.ignored += 1,
            }
        }
        r
    }
}

fn rank(l: Lifecycle) -> u8 {
    match l {
        Lifecycle::Active => 0,
        Lifecycle::Deprecated => 1,
        Lifecycle::Revoked => 2,
    }
}

fn aliases(o: &RawObject) -> Vec<String> {
    let name = o.name.as_deref().unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for a in o.aliases.iter().chain(&o.x_mitre_aliases) {
        if a.as_str() != name && !out.iter().any(|x| x == a) {
            out.push(a.to_string());
        }
    }
    out
}

/// The last `N.N` run in a file name: `enterprise-attack-18.1.json` → `18.1`,
/// `enterprise-attack-v17.0.json` → `17.0`.
fn version_in_name(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".json").unwrap_or(name);
    let mut best = None;
    let bytes = stem.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()) {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let run = stem[start..i].trim_end_matches('.');
            if run.contains('.') {
                best = Some(run.to_owned());
            }
        } else {
            i += 1;
        }
    }
    best
}

/// Relationship targets by source STIX id. BTreeSets keep the output sorted and free of the
/// duplicate relationships real bundles occasionally carry.
#[derive(Default)]
struct Relationships {
    uses_technique: HashMap<String, BTreeSet<String>>,
    uses_software: HashMap<String, BTreeSet<String>>,
    mitigates: HashMap<String, BTreeSet<String>>,
    subtechnique_of: HashMap<String, BTreeSet<String>>,
    revoked_by: HashMap<String, BTreeSet<String>>,
    attributed_to: HashMap<String, BTreeSet<String>>,
    strategy_detects: HashMap<String, BTreeSet<String>>,
    /// Keyed by data component STIX id; the target is a technique ATT&CK ID.
    component_detects: HashMap<String, BTreeSet<String>>,
    ignored: usize,
}

impl Relationships {
    fn all(&self, map: &HashMap<String, BTreeSet<String>>, src: &str) -> Vec<String> {
        map.get(src).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }
    fn one<'m>(&self, map: &'m HashMap<String, BTreeSet<String>>, src: &str) -> Option<&'m str> {
        map.get(src).and_then(|s| s.iter().next()).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI_18: &[u8] = include_bytes!("../../../tests/fixtures/attack/enterprise-attack-18.1-mini.json");

    fn import(bytes: &[u8]) -> Result<(CatalogData, ImportReport)> {
        import_bytes(bytes, Path::new("bundle.json"), Some("bundle.json"))
    }

    fn err(bytes: &[u8]) -> String {
        match import(bytes) {
            Ok(_) => panic!("imported {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(80)])),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn version_from_file_names() {
        assert_eq!(version_in_name("enterprise-attack-18.1.json").as_deref(), Some("18.1"));
        assert_eq!(version_in_name("enterprise-attack-v17.0.json").as_deref(), Some("17.0"));
        assert_eq!(version_in_name("ics-attack.json"), None);
        assert_eq!(version_in_name("bundle-2024.json"), None);
    }

    #[test]
    fn refuses_what_is_not_json() {
        let e = err(b"<html>not json</html>");
        assert!(e.starts_with("bundle.json is not valid JSON"), "{e}");
        assert!(err(b"").contains("ends before the JSON is complete"));
    }

    #[test]
    fn refuses_json_that_is_not_a_bundle() {
        let e = err(b"[1, 2]");
        assert!(e.starts_with("bundle.json is not a STIX bundle"), "{e}");
        let e = err(br#"{"type": "x-mitre-collection", "objects": []}"#);
        assert!(e.contains(r#""type" is "x-mitre-collection", expected "bundle""#), "{e}");
        let e = err(br#"{"type": "bundle", "id": "bundle--1"}"#);
        assert!(e.contains(r#"no "objects" array"#), "{e}");
        // A Navigator layer is a common wrong file to hand over.
        let e = err(br#"{"name": "layer", "versions": {"layer": "4.5"}, "techniques": []}"#);
        assert!(e.contains("no \"type\""), "{e}");
    }

    #[test]
    fn names_the_path_of_a_malformed_object() {
        let e = err(br#"{"type": "bundle", "objects": [{"type": "identity", "id": "identity--1"}, {"type": "attack-pattern", "id": "attack-pattern--1", "name": 5}]}"#);
        // The position is the file's, not the object's: the `5` is at column 137.
        assert!(
            e.ends_with("objects[1].name: invalid type: integer `5`, expected a string at line 1, column 137"),
            "{e}"
        );
    }

    #[test]
    fn reports_a_truncated_bundle_as_truncated() {
        let e = err(&MINI_18[..MINI_18.len() / 2]);
        assert!(e.contains("ends before the JSON is complete (truncated file?)"), "{e}");
    }

    #[test]
    fn refuses_a_bundle_without_what_a_catalog_needs() {
        let e = err(br#"{"type": "bundle", "objects": []}"#);
        assert!(e.contains("lacks what an ATT&CK catalog needs: no active x-mitre-matrix"), "{e}");
        // The real matrix and tactics, but no techniques.
        let text = std::str::from_utf8(MINI_18).unwrap_or_default();
        let mut bundle: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let objects = bundle["objects"].as_array_mut().map(std::mem::take).unwrap_or_default();
        bundle["objects"] = objects.into_iter().filter(|o| o["type"] != "attack-pattern").collect();
        let e = err(bundle.to_string().as_bytes());
        assert!(e.contains("no active attack-pattern"), "{e}");
    }

    #[test]
    fn refuses_a_file_over_the_limit_before_reading_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("big.json");
        std::fs::write(&path, MINI_18).unwrap_or_else(|e| panic!("{e}"));
        let e = import_file(&path, 1000).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(&format!("is {} bytes, over the limit of 1000 bytes", MINI_18.len())), "{e}");
        assert!(import_file(&path, MINI_18.len() as u64).is_ok());
    }

    #[test]
    fn ignores_unknown_object_types_and_fields() {
        let text = std::str::from_utf8(MINI_18).unwrap_or_default();
        let mut bundle: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        if let Some(objects) = bundle["objects"].as_array_mut() {
            objects.push(serde_json::json!({"type": "x-mitre-new-thing", "id": "x-mitre-new-thing--1", "weird": [1, {"a": null}]}));
            objects[0]["x_future_field"] = serde_json::json!({"nested": true});
        }
        let (data, report) = import(bundle.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.objects, 214);
        assert_eq!(data.techniques.len(), 15);
    }
}
