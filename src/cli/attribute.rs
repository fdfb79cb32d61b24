//! `hindsight attribute`: the full attribution ranking of incident files, without the review's
//! evidence bar: for analysts who want to see past the first five, and for measurement.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::GlobalArgs;
use crate::review::{Candidate, Engine, Settings, render};
use crate::text::printable;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum AttributeFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct AttributeArgs {
    /// Incident file in Graph's JSON format (one incident, a list response, or NDJSON).
    #[arg(long, short, value_name = "FILE")]
    pub input: PathBuf,
    /// Rank against this ATT&CK STIX bundle instead of the catalog in use.
    #[arg(long, value_name = "STIX_FILE")]
    pub catalog: Option<PathBuf>,
    /// At most this many candidates per incident.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    #[arg(long, value_enum, default_value_t)]
    pub format: AttributeFormat,
    /// Refuse an input file larger than this.
    #[arg(long, value_name = "SIZE", default_value = "64MiB")]
    pub max_input: bytesize::ByteSize,
}

/// One incident's ranking, when a file holds several.
#[derive(Serialize)]
struct Ranked<'a> {
    incident: &'a str,
    candidates: &'a [Candidate],
}

pub fn run(global: &GlobalArgs, args: AttributeArgs) -> anyhow::Result<ExitCode> {
    let catalog = super::review::load_catalog(global, args.catalog.as_deref())?;
    let observed = super::review::read_incidents(&args.input, args.max_input.as_u64())?;
    let engine = Engine::new(Arc::new(catalog), None, None, Settings::default());
    let ranked: Vec<(String, String, Vec<Candidate>)> =
        observed.iter().map(|i| (i.id.clone(), i.title.clone(), engine.attribute(i, args.top))).collect();
    match args.format {
        // One incident: the array of candidates itself, best first.
        AttributeFormat::Json if ranked.len() == 1 => outln!("{}", serde_json::to_string_pretty(&ranked[0].2)?)?,
        AttributeFormat::Json => {
            let all: Vec<Ranked> = ranked.iter().map(|(id, _, c)| Ranked { incident: id, candidates: c }).collect();
            outln!("{}", serde_json::to_string_pretty(&all)?)?
        }
        AttributeFormat::Text => {
            for (id, title, candidates) in &ranked {
                outln!("Incident {} — {}", printable(id), printable(title))?;
                if candidates.is_empty() {
                    outln!("  No group or campaign shares a technique, uses named software or is named.")?;
                }
                for (i, c) in candidates.iter().enumerate() {
                    outln!("{:>3}. {}", i + 1, printable(&render::candidate(c)))?;
                }
                outln!("")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
