//! `hindsight digest`: the digest of a period from the stored reviews, printed, or sent by hand
//! through the configured destinations (the same outbox, routes and sinks as the scheduled one).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::GlobalArgs;
use crate::digest::{Period, Settings, render};
use crate::stages::digest as stage;
use crate::store::Store;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum DigestFormat {
    #[default]
    Text,
    Markdown,
    Html,
    Json,
}

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// The configuration (for the state directory and, with --send, the destinations).
    #[arg(long, short, env = "HINDSIGHT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The period: this long up to now (or to --until), compared with the same length before.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub since: std::time::Duration,
    /// End of the period (RFC 3339); default now.
    #[arg(long, value_name = "TIME")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Only these sources (tenants); default all.
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: DigestFormat,
    /// Also write the period's Navigator heat-map layer to this file.
    #[arg(long, value_name = "OUT")]
    pub layer: Option<PathBuf>,
    /// Send it to every destination that takes digests (each gets the digest of the sources it
    /// is routed), instead of printing it.
    #[arg(long)]
    pub send: bool,
}

pub fn run(global: &GlobalArgs, args: DigestArgs) -> anyhow::Result<ExitCode> {
    let cfg = match &args.config {
        Some(path) => Some(super::load_config(path)?),
        None if args.send => anyhow::bail!("--send needs the destinations: pass --config FILE"),
        None => None,
    };
    let state_dir = match &cfg {
        Some(c) => super::state_dir_for(global, c)?,
        None => global.state_dir()?,
    };
    let catalog = crate::attack::store::in_use(&state_dir)?;
    let settings = Settings {
        top: cfg.as_ref().map_or(crate::digest::DEFAULT_TOP, |c| c.digest.top),
        attack_domain: catalog.meta().domain.clone(),
        attack_version: catalog.meta().attack_version.clone(),
        // A shard's store holds its sources only: its digest says whose they are.
        shard: crate::daemon::shard::configured(cfg.as_ref().and_then(|c| c.daemon.shard))
            .map_err(anyhow::Error::msg)?
            .map(|s| s.to_string()),
    };
    let store_path = crate::daemon::store_path(&state_dir);
    // Only a held lock is the running daemon's doing; any other failure speaks for itself.
    let store = match Store::open(&store_path) {
        Err(e @ crate::store::StoreError::Locked { .. }) => {
            return Err(
                anyhow::Error::new(e).context("the digest reads the store; `hindsight run` holds it while it runs")
            );
        }
        other => other?,
    };
    let end = args.until.unwrap_or_else(chrono::Utc::now);
    let period = Period::ending(end, chrono::Duration::from_std(args.since).context("--since is too long")?);

    if args.send {
        let cfg = cfg.context("--send needs --config")?;
        let pipeline = crate::daemon::pipeline::Pipeline::build(&cfg, &state_dir)?;
        let mut scopes = stage::scopes(&pipeline.subscriptions);
        if !args.sources.is_empty() {
            let mut wanted = args.sources.clone();
            wanted.sort();
            scopes.retain(|s| s == &wanted);
        }
        if scopes.is_empty() {
            anyhow::bail!("no destination takes digests for these sources (route.events and route.sources)");
        }
        let digests =
            stage::for_period_with(&store, &catalog, pipeline.engine.inventory.as_deref(), &scopes, period, &settings)?;
        let now = chrono::Utc::now();
        let entries: Vec<_> =
            digests.iter().flat_map(|d| crate::notify::entries_for_digest(d, &pipeline.subscriptions, now)).collect();
        store.record_digests(&digests, &entries, None)?;
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let pass = runtime.block_on(crate::stages::deliver::deliver_due(
            &store,
            &pipeline.destinations,
            &pipeline.policy,
            cfg.delivery.concurrency,
            now,
        ))?;
        outln!(
            "{} digest(s), {} notification(s): {} delivered, {} to retry (by the daemon), {} dead-lettered.",
            digests.len(),
            entries.len(),
            pass.delivered,
            pass.retried,
            pass.dead
        )?;
        return Ok(if pass.dead > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS });
    }

    let mut scope = args.sources.clone();
    scope.sort();
    let digest = stage::for_period(&store, &catalog, std::slice::from_ref(&scope), period, &settings)?.remove(0);
    if let Some(out) = &args.layer {
        std::fs::write(out, serde_json::to_string_pretty(&digest.layer)? + "\n")
            .with_context(|| format!("writing the layer to {}", out.display()))?;
    }
    match args.format {
        DigestFormat::Text => out!("{}", render::text(&digest))?,
        DigestFormat::Markdown => out!("{}", render::markdown(&digest))?,
        DigestFormat::Html => out!("{}", render::html(&digest))?,
        DigestFormat::Json => outln!("{}", serde_json::to_string_pretty(&digest)?)?,
    }
    Ok(ExitCode::SUCCESS)
}
