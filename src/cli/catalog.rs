//! `hindsight catalog …`: show, look up, import, compare and export ATT&CK catalogs.
//!
//! The JSON forms printed here are documented in docs/cli-json.md and are a contract for
//! scripts: fields are added, never renamed or removed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use super::{Format, GlobalArgs, print_json};
use crate::attack::catalog::{Counts, DetectionModel};
use crate::attack::diff::{CatalogDiff, diff};
use crate::attack::model::CatalogData;
use crate::attack::{Catalog, Origin, Status, stix, store};

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Which ATT&CK release is in use and what it holds.
    Info {
        /// Describe this STIX bundle instead of the catalog in use.
        #[arg(long, value_name = "STIX_FILE")]
        catalog: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Resolve technique IDs as alerts carry them (revoked IDs are followed to their replacement).
    Lookup {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        /// Resolve against this STIX bundle instead of the catalog in use.
        #[arg(long, value_name = "STIX_FILE")]
        catalog: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Make a newer ATT&CK STIX bundle the catalog in use (atomically; the old one stays in use
    /// if anything is wrong with the new one).
    Import {
        #[arg(value_name = "STIX_FILE")]
        file: PathBuf,
        /// Parse and validate, print what would change, store nothing.
        #[arg(long)]
        dry_run: bool,
        /// Accept a bundle of another domain (e.g. ICS instead of Enterprise) than the one in use.
        #[arg(long)]
        allow_domain_change: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Techniques added, revoked, deprecated, renamed or moved between two releases.
    /// OLD and NEW are STIX bundle files, or `@in-use` / `@embedded`.
    Diff {
        old: String,
        new: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Go back to the catalog embedded in the binary (removes the imported one).
    Reset,
    /// Write the compact catalog of a STIX bundle (how data/attack/ is generated).
    Export {
        #[arg(value_name = "STIX_FILE")]
        file: PathBuf,
        #[arg(long, short, value_name = "OUT")]
        output: PathBuf,
    },
}

pub fn run(global: &GlobalArgs, cmd: CatalogCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CatalogCommand::Info { catalog, format } => {
            let (c, warnings) = open(global, catalog.as_deref())?;
            let info = InfoView::of(&c, warnings);
            match format {
                Format::Json => print_json(&info)?,
                Format::Text => out!("{}", info.text())?,
            }
        }
        CatalogCommand::Lookup { ids, catalog, format } => {
            let (c, _) = open(global, catalog.as_deref())?;
            let views: Vec<LookupView> = ids.iter().map(|q| LookupView::of(&c, q)).collect();
            match format {
                Format::Json => print_json(&views)?,
                Format::Text => {
                    for v in &views {
                        out!("{}", v.text(&c))?;
                    }
                }
            }
        }
        CatalogCommand::Import { file, dry_run, allow_domain_change, format } => {
            import(global, &file, dry_run, allow_domain_change, format)?;
        }
        CatalogCommand::Diff { old, new, format } => {
            let old = open_named(global, &old)?;
            let new = open_named(global, &new)?;
            let d = diff(&old, &new);
            match format {
                Format::Json => print_json(&d)?,
                Format::Text => out!("{}", diff_text(&d))?,
            }
        }
        CatalogCommand::Reset => {
            let dir = global.state_dir()?;
            if store::reset(&dir)? {
                outln!("Removed the imported catalog; the embedded one is in use again.")?;
            } else {
                outln!("No imported catalog in {}; the embedded one is in use.", dir.display())?;
            }
        }
        CatalogCommand::Export { file, output } => {
            let (data, report) = stix::import_file(&file, stix::MAX_BUNDLE_BYTES)?;
            store::write_atomically(&output, &store::to_compact_json(&data))?;
            for w in &report.warnings {
                eprintln!("hindsight: warning: {w}");
            }
            outln!("Wrote {} ({} techniques)", output.display(), data.techniques.len())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The catalog to use: a given bundle, else the one in use.
fn open(global: &GlobalArgs, bundle: Option<&Path>) -> anyhow::Result<(Catalog, Vec<String>)> {
    match bundle {
        Some(path) => {
            let (c, report) = crate::attack::from_bundle(path)?;
            Ok((c, report.warnings))
        }
        None => Ok((in_use(global)?, vec![])),
    }
}

fn in_use(global: &GlobalArgs) -> anyhow::Result<Catalog> {
    let dir = global.state_dir()?;
    store::in_use(&dir).with_context(|| format!("loading the catalog in use (state directory {})", dir.display()))
}

fn open_named(global: &GlobalArgs, name: &str) -> anyhow::Result<Catalog> {
    match name {
        "@in-use" => in_use(global),
        "@embedded" => Ok(store::embedded()?),
        path => Ok(crate::attack::from_bundle(Path::new(path))?.0),
    }
}

#[derive(Serialize)]
struct ImportView<'a> {
    dry_run: bool,
    stored_at: Option<PathBuf>,
    catalog: InfoView,
    previous: InfoView,
    changes: &'a CatalogDiff,
}

fn import(
    global: &GlobalArgs,
    file: &Path,
    dry_run: bool,
    allow_domain_change: bool,
    format: Format,
) -> anyhow::Result<()> {
    let dir = global.state_dir()?;
    let current = in_use(global)?;
    let (data, report): (CatalogData, _) = stix::import_file(file, stix::MAX_BUNDLE_BYTES)?;
    let new = Catalog::new(data, Origin::Bundle(file.to_owned()));
    if new.meta().domain != current.meta().domain && !allow_domain_change {
        anyhow::bail!(
            "{} is an ATT&CK {} bundle but the catalog in use is {}; reviews of Defender alerts need the enterprise domain. \
             Pass --allow-domain-change if this is really what you want",
            file.display(),
            new.meta().domain,
            current.meta().domain
        );
    }
    // Checked on a dry run too: it answers whether the import would work.
    let compact = store::storable(file, new.data())?;
    let changes = diff(&current, &new);
    let stored_at = if dry_run { None } else { Some(store::store_imported(&dir, &compact)?) };
    let view = ImportView {
        dry_run,
        stored_at: stored_at.clone(),
        catalog: InfoView::of(&new, report.warnings),
        previous: InfoView::of(&current, vec![]),
        changes: &changes,
    };
    match format {
        Format::Json => print_json(&view)?,
        Format::Text => {
            outln!("{} {}", if dry_run { "Would import" } else { "Imported" }, view.catalog.title())?;
            for w in &view.catalog.warnings {
                outln!("  warning: {w}")?;
            }
            outln!("Changes against the catalog in use ({}):", view.previous.title())?;
            out!("{}", diff_text(&changes))?;
            match stored_at {
                Some(p) => outln!("Stored at {}. A running daemon uses it from its next start.", p.display())?,
                None => outln!("Dry run: nothing was stored; the catalog in use is unchanged.")?,
            }
        }
    }
    Ok(())
}

// ---- info ------------------------------------------------------------------------------------

#[derive(Serialize)]
struct InfoView {
    domain: String,
    attack_version: Option<String>,
    techniques: usize,
    subtechniques: usize,
    groups: usize,
    campaigns: usize,
    software: usize,
    mitigations: usize,
    tactics: Vec<String>,
    matrix: String,
    origin: String,
    source_file: Option<String>,
    source_sha256: Option<String>,
    stix_version: Option<String>,
    detection_model: DetectionModel,
    counts: Counts,
    warnings: Vec<String>,
    notice: String,
}

impl InfoView {
    fn of(c: &Catalog, warnings: Vec<String>) -> InfoView {
        let m = c.meta();
        let counts = c.counts();
        InfoView {
            domain: m.domain.clone(),
            attack_version: m.attack_version.clone(),
            techniques: counts.techniques,
            subtechniques: counts.subtechniques,
            groups: counts.groups,
            campaigns: counts.campaigns,
            software: counts.software,
            mitigations: counts.mitigations,
            tactics: c.tactics().iter().map(|t| t.shortname.clone()).collect(),
            matrix: m.matrix.clone(),
            origin: c.origin().to_string(),
            source_file: m.source_file.clone(),
            source_sha256: m.source_sha256.clone(),
            stix_version: m.stix_version.clone(),
            detection_model: c.detection_model(),
            counts,
            warnings,
            notice: m.notice.clone(),
        }
    }

    fn title(&self) -> String {
        format!("ATT&CK {} {}", self.domain, self.attack_version.as_deref().unwrap_or("(version not stated)"))
    }

    fn text(&self) -> String {
        let c = &self.counts;
        let mut s = format!("{} ({})\n", self.title(), self.origin);
        if let (Some(f), Some(h)) = (&self.source_file, &self.source_sha256) {
            s += &format!("  from         {f} (sha256 {h})\n");
        }
        s += &format!("  tactics      {}: {}\n", self.tactics.len(), self.tactics.join(" → "));
        s += &format!(
            "  techniques   {} + {} sub-techniques active; {} revoked, {} deprecated\n",
            self.techniques, self.subtechniques, c.revoked_techniques, c.deprecated_techniques
        );
        s += &format!(
            "  groups       {}   campaigns {}   software {}   mitigations {}\n",
            self.groups, self.campaigns, self.software, self.mitigations
        );
        s += &match self.detection_model {
            DetectionModel::Strategies => format!(
                "  detection    v18 model: {} detection strategies, {} analytics, {} data components\n",
                c.detection_strategies, c.analytics, c.data_components
            ),
            DetectionModel::DataComponents => format!(
                "  detection    pre-v18 model: {} data components, {} detects relationships\n",
                c.data_components, c.detects_relationships
            ),
            DetectionModel::None => "  detection    no detection data in this catalog\n".to_owned(),
        };
        for w in &self.warnings {
            s += &format!("  warning      {w}\n");
        }
        s += &format!("  {}\n", self.notice);
        s
    }
}

// ---- lookup ----------------------------------------------------------------------------------

#[derive(Serialize)]
struct ComponentView {
    /// ATT&CK ID (v18+); `null` for pre-v18 data components, which had none.
    id: Option<String>,
    name: String,
    data_source: Option<String>,
}

#[derive(Serialize)]
struct LookupView {
    query: String,
    status: Status,
    id: Option<String>,
    name: Option<String>,
    tactics: Vec<String>,
    platforms: Vec<String>,
    is_subtechnique: Option<bool>,
    parent: Option<String>,
    groups: Vec<String>,
    campaigns: Vec<String>,
    mitigations: Vec<String>,
    revoked_chain: Vec<String>,
    note: Option<String>,
    detection_strategies: Vec<String>,
    data_components: Vec<ComponentView>,
}

impl LookupView {
    fn of(c: &Catalog, query: &str) -> LookupView {
        let r = c.resolve(query);
        let t = r.technique.map(|i| (i, &c.techniques()[i]));
        let ids = |f: &dyn Fn(usize) -> Vec<String>| t.map(|(i, _)| f(i)).unwrap_or_default();
        LookupView {
            query: r.query,
            status: r.status,
            id: t.map(|(_, t)| t.id.clone()),
            name: t.map(|(_, t)| t.name.clone()),
            tactics: t.map(|(_, t)| t.tactics.clone()).unwrap_or_default(),
            platforms: t.map(|(_, t)| t.platforms.clone()).unwrap_or_default(),
            is_subtechnique: t.map(|(_, t)| t.parent.is_some()),
            parent: t.and_then(|(_, t)| t.parent.clone()),
            groups: ids(&|i| Catalog::active_ids(c.groups_using(i), |g| (&g.id, g.lifecycle))),
            campaigns: ids(&|i| Catalog::active_ids(c.campaigns_using(i), |x| (&x.id, x.lifecycle))),
            mitigations: ids(&|i| Catalog::active_ids(c.mitigations_of(i), |m| (&m.id, m.lifecycle))),
            revoked_chain: r.revoked_chain,
            note: r.note,
            detection_strategies: ids(&|i| Catalog::active_ids(c.detection_strategies_of(i), |d| (&d.id, d.lifecycle))),
            data_components: t
                .map(|(i, _)| {
                    c.data_components_for(i)
                        .filter(|d| d.lifecycle.is_active())
                        .map(|d| ComponentView {
                            id: d.id.clone(),
                            name: d.name.clone(),
                            data_source: d.data_source.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn text(&self, c: &Catalog) -> String {
        let (Some(id), Some(name)) = (&self.id, &self.name) else {
            let why = self.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
            return format!("{}  {}{why}\n\n", self.query.trim(), self.status);
        };
        let mut s = match self.status {
            Status::Active => format!("{id}  {name}\n"),
            Status::Deprecated => format!("{id}  {name}  [deprecated]\n"),
            _ => format!("{}  revoked → {id}  {name}  (via {})\n", self.query.trim(), self.revoked_chain.join(" → ")),
        };
        if let Some(note) = &self.note {
            s += &format!("  note         {note}\n");
        }
        s += &format!("  tactics      {}\n", self.tactics.join(", "));
        s += &format!("  platforms    {}\n", self.platforms.join(", "));
        if let Some(p) = self.parent.as_deref().and_then(|p| c.technique(p)) {
            s += &format!("  parent       {} {}\n", p.id, p.name);
        }
        let named = |ids: &[String], name: &dyn Fn(&str) -> Option<String>| -> String {
            const SHOWN: usize = 12;
            let mut parts: Vec<String> =
                ids.iter().take(SHOWN).map(|i| format!("{i} {}", name(i).unwrap_or_default())).collect();
            if ids.len() > SHOWN {
                parts.push(format!("… and {} more (--format json lists all)", ids.len() - SHOWN));
            }
            format!("{}: {}", ids.len(), if parts.is_empty() { "none".to_owned() } else { parts.join(", ") })
        };
        s += &format!("  groups       {}\n", named(&self.groups, &|i| c.group(i).map(|g| g.name.clone())));
        s += &format!("  campaigns    {}\n", named(&self.campaigns, &|i| c.campaign(i).map(|x| x.name.clone())));
        s += &format!("  mitigations  {}\n", named(&self.mitigations, &|i| c.mitigation(i).map(|m| m.name.clone())));
        let comps: Vec<String> = self
            .data_components
            .iter()
            .map(|d| match (&d.id, &d.data_source) {
                (Some(id), _) => format!("{id} {}", d.name),
                (None, Some(ds)) => format!("{ds}: {}", d.name),
                (None, None) => d.name.clone(),
            })
            .collect();
        s += &format!(
            "  detected by  {}\n\n",
            if comps.is_empty() { "no data component in ATT&CK".to_owned() } else { comps.join(", ") }
        );
        s
    }
}

// ---- diff ------------------------------------------------------------------------------------

fn diff_text(d: &CatalogDiff) -> String {
    let v = |s: &crate::attack::diff::Side| format!("{} {}", s.domain, s.attack_version.as_deref().unwrap_or("?"));
    let mut s = format!(
        "  {} ({} + {} sub-techniques) → {} ({} + {} sub-techniques)\n",
        v(&d.old),
        d.old.techniques,
        d.old.subtechniques,
        v(&d.new),
        d.new.techniques,
        d.new.subtechniques
    );
    if d.is_empty() {
        s += "  no technique, tactic, group or campaign changes\n";
        return s;
    }
    let items = |s: &mut String, title: &str, items: &[crate::attack::diff::Item]| {
        if !items.is_empty() {
            *s += &format!("  {title} ({}):\n", items.len());
            for i in items {
                *s += &format!("    {}  {}\n", i.id, i.name);
            }
        }
    };
    items(&mut s, "added", &d.added);
    items(&mut s, "reactivated", &d.reactivated);
    items(&mut s, "removed", &d.removed);
    if !d.revoked.is_empty() {
        s += &format!("  revoked ({}):\n", d.revoked.len());
        for r in &d.revoked {
            let to = r.replaced_by.as_ref().map_or("no replacement".to_owned(), |t| format!("→ {} {}", t.id, t.name));
            s += &format!("    {}  {}  {to}\n", r.id, r.name);
        }
    }
    items(&mut s, "deprecated", &d.deprecated);
    if !d.renamed.is_empty() {
        s += &format!("  renamed ({}):\n", d.renamed.len());
        for r in &d.renamed {
            s += &format!("    {}  {:?} → {:?}\n", r.id, r.old_name, r.new_name);
        }
    }
    if !d.tactics_changed.is_empty() {
        s += &format!("  tactics changed ({}):\n", d.tactics_changed.len());
        for t in &d.tactics_changed {
            s += &format!("    {}  {}: {} → {}\n", t.id, t.name, t.old.join(", "), t.new.join(", "));
        }
    }
    if !d.tactics_added.is_empty() || !d.tactics_removed.is_empty() {
        s += &format!("  matrix tactics: +[{}] -[{}]\n", d.tactics_added.join(", "), d.tactics_removed.join(", "));
    }
    items(&mut s, "groups added", &d.groups_added);
    items(&mut s, "campaigns added", &d.campaigns_added);
    s
}
