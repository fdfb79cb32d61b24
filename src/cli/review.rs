//! `hindsight review`: review incident files offline and print the reviews, no daemon needed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::GlobalArgs;
use crate::attack::{Catalog, store};
use crate::controls::{Controls, Licence};
use crate::inventory::Inventory;
use crate::model::Incident;
use crate::review::{Engine, History, Review, Settings, Subject, render};
use crate::source::directory::parse_file;
use crate::text::printable;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ReviewFormat {
    #[default]
    Text,
    Json,
    Markdown,
    Html,
    /// The comment and tags write-back would put on the Defender incident.
    DefenderComment,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Incident file in Graph's JSON format (one incident, a list response, or NDJSON).
    #[arg(long, short, value_name = "FILE")]
    pub input: PathBuf,
    /// Detection inventory: a Navigator layer, Sigma or Elastic rules (file or folder), or a
    /// list of technique IDs. Repeat for several.
    #[arg(long, value_name = "PATH")]
    pub inventory: Vec<PathBuf>,
    /// A folder of the site's own hunting queries (Azure-Sentinel YAML), added to the hunt
    /// library. Repeat for several.
    #[arg(long, value_name = "DIR")]
    pub hunts: Vec<PathBuf>,
    /// Review against this ATT&CK STIX bundle instead of the catalog in use.
    #[arg(long, value_name = "STIX_FILE")]
    pub catalog: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: ReviewFormat,
    /// Also write the incident's ATT&CK Navigator layer to this file.
    #[arg(long, value_name = "OUT")]
    pub layer: Option<PathBuf>,
    /// Refuse an input file larger than this (it is parsed whole, at several times its size in
    /// memory); raise it for a very large export.
    #[arg(long, value_name = "SIZE", default_value = "64MiB")]
    pub max_input: bytesize::ByteSize,
    /// List only the Microsoft 365 controls available at this licence tier: E3 or E5 (any
    /// case; E5 includes E3). Without it, every control is listed with its tier.
    #[arg(long, value_name = "TIER", value_parser = Licence::parse)]
    pub licence: Option<Licence>,
}

/// The catalog an offline command works with: `--catalog`'s bundle, or the one in use.
pub(super) fn load_catalog(global: &GlobalArgs, bundle: Option<&Path>) -> anyhow::Result<Catalog> {
    Ok(match bundle {
        Some(path) => crate::attack::from_bundle(path)?.0,
        None => {
            let dir = global.state_dir()?;
            store::in_use(&dir)
                .with_context(|| format!("loading the catalog in use (state directory {})", dir.display()))?
        }
    })
}

/// The incidents of a file, read whole within the default limits, its problems printed as
/// warnings; a file that is too large or not an incident file is an error naming it.
pub(super) fn read_incidents(input: &Path, max_input: u64) -> anyhow::Result<Vec<Incident>> {
    let bytes = crate::input::read_limited(input, max_input, Some("--max-input"))
        .map_err(|reason| anyhow::anyhow!("{}: {reason}", input.display()))?;
    let (observed, mut problems) = parse_file(&bytes)
        .map_err(|reason| anyhow::anyhow!("{} is not a usable incident file: {reason}", input.display()))?;
    let mut incidents = Vec::with_capacity(observed.len());
    for o in observed {
        match Incident::from_graph_str(o.raw.get(), &crate::model::Limits::DEFAULT) {
            Ok(i) => incidents.push(i),
            // Its own fields were read already, so this cannot happen; said if it does.
            Err(e) => problems.push(format!("incident {}: {e}", o.header.id)),
        }
    }
    for p in &problems {
        eprintln!("hindsight: warning: {}", printable(&format!("{}: {p}", input.display())));
    }
    Ok(incidents)
}

pub fn run(global: &GlobalArgs, args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(global, args.catalog.as_deref())?;
    let settings = Settings { licence: args.licence, ..Settings::default() };
    let reviews =
        review_file(Arc::new(catalog), &args.input, &args.inventory, &args.hunts, args.max_input.as_u64(), settings)?;
    if let Some(out) = &args.layer {
        let layers: Vec<&crate::review::navigator::Layer> = reviews.iter().map(|r| &r.layer).collect();
        let json = if layers.len() == 1 {
            serde_json::to_string_pretty(layers[0])?
        } else {
            serde_json::to_string_pretty(&layers)?
        };
        std::fs::write(out, json + "\n").with_context(|| format!("writing the layer to {}", out.display()))?;
    }
    match args.format {
        ReviewFormat::Json if reviews.len() == 1 => outln!("{}", serde_json::to_string_pretty(&reviews[0])?)?,
        ReviewFormat::Json => outln!("{}", serde_json::to_string_pretty(&reviews)?)?,
        ReviewFormat::Text => {
            for r in &reviews {
                outln!("{}", render::text(r))?;
            }
        }
        ReviewFormat::Markdown => {
            for r in &reviews {
                outln!("{}", render::markdown(r))?;
            }
        }
        ReviewFormat::Html => {
            for r in &reviews {
                out!("{}", render::html(r))?;
            }
        }
        ReviewFormat::DefenderComment => {
            for r in &reviews {
                let tags = render::comment::tags(r).join(", ");
                outln!("{}\n\n(tags: {tags})\n", render::comment::comment(r))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reviews every incident of a file. Offline there is no history of techniques: no technique is
/// called new to the organisation (the review says it had no history); the file's earlier
/// incidents are the history of its later ones for similar incidents and recurrence.
pub fn review_file(
    catalog: Arc<Catalog>,
    input: &Path,
    inventory: &[PathBuf],
    hunt_folders: &[PathBuf],
    max_input: u64,
    settings: Settings,
) -> anyhow::Result<Vec<Review>> {
    let observed = read_incidents(input, max_input)?;
    let inventory = if inventory.is_empty() { None } else { Some(Inventory::load(inventory, &catalog)?) };
    if let Some(inv) = &inventory {
        for p in inv.problems() {
            eprintln!("hindsight: warning: inventory: {}", printable(p));
        }
    }
    let hunts = super::hunts::load(hunt_folders)?;
    // The mappings are built in; if they cannot be read the review goes on without them.
    let controls = match Controls::embedded(&catalog) {
        Ok(c) => Some(Arc::new(c) as Arc<dyn crate::review::ControlCatalog>),
        Err(e) => {
            eprintln!("hindsight: warning: {e}");
            None
        }
    };
    let inventory = inventory.map(|i| Arc::new(i) as Arc<dyn crate::review::DetectionInventory>);
    let engine = Engine::new(catalog, inventory, controls, settings).with_hunts(hunts);
    // The file's earlier incidents are the history of its later ones (similar incidents,
    // recurring ways in): reviewed oldest first, printed in the file's order. Techniques are
    // not carried over (the history is not `recorded`): offline, "first time for this
    // organisation" cannot be known.
    let mut order: Vec<usize> = (0..observed.len()).collect();
    order.sort_by_key(|&i| (observed[i].created.is_none(), observed[i].created));
    let mut history = History::default();
    let mut reviews: Vec<Option<Review>> = vec![None; observed.len()];
    for i in order {
        let subject = Subject { incident: &observed[i], source: "file", revision: 1, transitions: &[] };
        let review = engine.review(&subject, &history);
        history.incidents.insert(0, crate::review::past_incident(&review));
        reviews[i] = Some(review);
    }
    Ok(reviews.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_earlier_incidents_are_the_history_of_its_later_ones() {
        let incident = |id: &str, created: &str| {
            serde_json::json!({
                "id": id, "displayName": format!("Phishing {id}"), "status": "resolved", "classification": "truePositive",
                "createdDateTime": created, "lastUpdateDateTime": created,
                "alerts": [{"id": format!("{id}-1"), "title": "A user clicked through to a potentially malicious URL",
                            "category": "InitialAccess", "mitreTechniques": ["T1566.002"], "createdDateTime": created}]
            })
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("incidents.ndjson");
        // The later incident first: reviews are made oldest first and printed in the file's order.
        let text = format!("{}\n{}\n", incident("20", "2026-09-01T09:00:00Z"), incident("10", "2026-08-01T09:00:00Z"));
        std::fs::write(&file, text).unwrap();
        let catalog = Arc::new(crate::attack::store::embedded().unwrap());
        let reviews = review_file(catalog, &file, &[], &[], 1 << 20, Settings::default()).unwrap();
        let ids: Vec<&str> = reviews.iter().map(|r| r.incident.id.as_str()).collect();
        assert_eq!(ids, ["20", "10"]);
        let similar: Vec<&str> = reviews[0].story.similar_incidents.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(similar, ["10"]);
        assert!(reviews[0].story.recurring.is_some());
        assert!(reviews[1].story.similar_incidents.is_empty(), "nothing came before the first");
    }
}
