//! The pipeline assembled from the configuration: the catalog and review engine, the sources,
//! the destinations with their routes, the retry policy and the digest schedule. `hindsight run`,
//! `check` and `digest --send` all build it the same way. Every setting is validated before
//! anything runs, and every problem is reported at once, each with its key.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::attack::Catalog;
use crate::config::{Config, Invalid, under};
use crate::controls::Controls;
use crate::digest::schedule::Schedule;
use crate::inventory::Inventory;
use crate::notify::{Destination, Subscription};
use crate::outbox::RetryPolicy;
use crate::review::{Engine, Settings};
use crate::source::Source;

use super::shard::Shard;

/// Everything the configuration names, built and checked.
pub struct Pipeline {
    pub catalog: Arc<Catalog>,
    pub engine: Arc<Engine>,
    pub sources: Vec<(Source, Duration)>,
    pub destinations: Vec<Destination>,
    pub subscriptions: Vec<Subscription>,
    pub policy: RetryPolicy,
    pub schedule: Option<Schedule>,
    /// The Graph sources that run retro-hunts (`hunts = true`).
    pub hunters: Vec<Arc<crate::stages::hunt::Hunter>>,
    /// Warnings worth a log line (inventory files that could not be read, ...).
    pub warnings: Vec<String>,
    /// This replica's share of the sources (`daemon.shard`); `None`: all of them.
    pub shard: Option<Shard>,
    /// The configured sources that another shard polls (none without `daemon.shard`).
    pub elsewhere: Vec<String>,
}

/// Every configuration problem found, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct BuildErrors(pub Vec<String>);

impl Pipeline {
    /// Builds the pipeline. The catalog, the inventory and the engine are made once and shared
    /// by every worker.
    pub fn build(cfg: &Config, state_dir: &Path) -> Result<Pipeline, BuildErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let shard = super::shard::configured(cfg.daemon.shard).unwrap_or_else(|m| {
            errors.push(m);
            None
        });
        // Everything per source (its poller, retro-hunts, write-back, digests routed to it) is
        // made only on the shard that owns it; the other shards leave it alone.
        let mine = |name: &str| shard.is_none_or(|s| s.owns(name));
        let elsewhere: Vec<String> =
            cfg.sources.iter().map(|s| s.kind.name()).filter(|n| !mine(n)).map(str::to_owned).collect();
        let catalog = match crate::attack::store::in_use(state_dir) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                return Err(BuildErrors(vec![format!(
                    "the ATT&CK catalog in use (state directory {}): {e}",
                    state_dir.display()
                )]));
            }
        };
        let inventory = if cfg.review.inventory.is_empty() {
            None
        } else {
            match Inventory::load(&cfg.review.inventory, &catalog) {
                Ok(inv) => {
                    warnings.extend(inv.problems().iter().map(|p| format!("review.inventory: {p}")));
                    Some(Arc::new(inv) as Arc<dyn crate::review::DetectionInventory>)
                }
                Err(e) => {
                    errors.push(format!("configuration key review.inventory: {e}"));
                    None
                }
            }
        };
        let hunts = match crate::hunts::Library::embedded().with_folders(&cfg.review.hunt_folders) {
            Ok((lib, problems)) => {
                warnings.extend(problems.iter().map(|p| format!("review.hunt_folders: {p}")));
                Arc::new(lib)
            }
            Err(e) => {
                errors.push(format!("configuration key review.hunt_folders: {e}"));
                crate::hunts::Library::embedded()
            }
        };
        let controls = match Controls::embedded(&catalog) {
            Ok(c) => Some(Arc::new(c) as Arc<dyn crate::review::ControlCatalog>),
            Err(e) => {
                warnings.push(format!("Microsoft 365 controls left out of reviews: {e}"));
                None
            }
        };
        // `Config::load` checked the value; a Config made in code is checked here.
        let licence = match cfg.review.licence.as_deref().map(crate::controls::Licence::parse).transpose() {
            Ok(l) => l,
            Err(e) => {
                errors.push(format!("configuration key review.licence: {e}"));
                None
            }
        };
        let settings = Settings {
            late_detection: cfg.review.late_detection,
            attribution_top: cfg.review.attribution_top,
            max_alerts: cfg.review.max_alerts,
            max_evidence: cfg.review.max_evidence,
            unattended_high: cfg.review.unattended_high,
            unattended_medium: cfg.review.unattended_medium,
            follow_up_owners: cfg.review.follow_ups.owners.clone(),
            follow_up_due_days: [
                cfg.review.follow_ups.due_days_high,
                cfg.review.follow_ups.due_days_medium,
                cfg.review.follow_ups.due_days_low,
            ],
            licence,
            review_link: cfg.review.link.as_deref().and_then(|l| crate::review::ReviewLink::parse(l).ok()),
            retro_hunt_sources: graph_sources(cfg)
                .filter(|(_, g)| g.hunts && mine(&g.name))
                .map(|(_, g)| g.name.clone())
                .collect(),
            ..Settings::default()
        };
        let engine = Arc::new(Engine::new(catalog.clone(), inventory, controls, settings).with_hunts(hunts));

        // `Config::load` validated every setting; building a source or sink checks its own
        // settings again (a Config made in code) and adds what needs the file system (a
        // `ca_file`, templates). Every failure is kept, with its key, and reported together.
        let invalid = |problems: Vec<Invalid>, at: &str| {
            under(problems, at).map(|p| format!("configuration key {p}")).collect::<Vec<_>>()
        };
        let mut sources = Vec::new();
        for (i, s) in cfg.sources.iter().enumerate().filter(|(_, s)| mine(s.kind.name())) {
            match s.kind.build() {
                Ok(src) => sources.push((src, s.poll_interval)),
                Err(problems) => errors.extend(invalid(problems, &format!("sources[{i}]"))),
            }
        }

        let mut destinations = Vec::new();
        let mut subscriptions = Vec::new();
        for (i, d) in cfg.destinations.iter().enumerate() {
            match d.sink.build() {
                Ok(sink) => {
                    destinations.push(Destination { name: d.name.clone(), sink: Arc::new(sink) });
                    // A route to named sources that all live on other shards takes nothing
                    // here (no review, and no digest: theirs comes from their shard). Emptied
                    // of them it would read "all sources", so it is left out instead.
                    if d.route.sources.is_empty() || d.route.sources.iter().any(|n| mine(n)) {
                        let mut route = d.route.clone();
                        route.sources.retain(|n| mine(n));
                        subscriptions.push(Subscription { destination: d.name.clone(), route });
                    }
                }
                Err(problems) => errors.extend(invalid(problems, &format!("destinations[{i}]"))),
            }
        }
        let mut hunters = Vec::new();
        for (i, g) in graph_sources(cfg).filter(|(_, g)| g.hunts && mine(&g.name)) {
            match crate::source::graph::hunting::HuntRunner::new(g, g.hunt_timeout) {
                Ok(runner) => hunters.push(Arc::new(crate::stages::hunt::Hunter::new(
                    runner,
                    g.hunts_per_incident,
                    g.hunts_per_hour,
                ))),
                Err(e) => errors.push(format!("configuration key sources[{i}].hunts: {e}")),
            }
        }
        // A source that writes its reviews back brings its own destination, routed only its
        // reviews (not digests): the write is an outbox entry like any delivery.
        for (i, g) in graph_sources(cfg).filter(|(_, g)| g.write_back && mine(&g.name)) {
            match crate::source::graph::writeback::IncidentWriter::new(g) {
                Ok(writer) => {
                    let name = crate::notify::defender::destination_name(&g.name);
                    let sink =
                        crate::notify::Sink::Defender(Box::new(crate::notify::defender::DefenderSink::new(writer)));
                    destinations.push(Destination { name: name.clone(), sink: Arc::new(sink) });
                    let route = crate::notify::Route {
                        events: vec![crate::outbox::REVIEW_CREATED.into(), crate::outbox::REVIEW_REVISED.into()],
                        sources: vec![g.name.clone()],
                        ..Default::default()
                    };
                    subscriptions.push(Subscription { destination: name, route });
                }
                Err(e) => errors.push(format!("configuration key sources[{i}].write_back: {e}")),
            }
        }

        let schedule = if cfg.digest.enabled {
            match Schedule::parse(&cfg.digest.schedule, &cfg.digest.time_zone) {
                Ok(s) => Some(s),
                Err(m) => {
                    errors.push(format!("configuration key digest.schedule: {m}"));
                    None
                }
            }
        } else {
            None
        };
        if !errors.is_empty() {
            return Err(BuildErrors(errors));
        }
        let policy = RetryPolicy { budget: cfg.delivery.retry_budget, ..RetryPolicy::default() };
        Ok(Pipeline {
            catalog,
            engine,
            sources,
            destinations,
            subscriptions,
            policy,
            schedule,
            hunters,
            warnings,
            shard,
            elsewhere,
        })
    }
}

/// The Graph sources of the configuration, with their index.
fn graph_sources(cfg: &Config) -> impl Iterator<Item = (usize, &crate::source::graph::GraphConfig)> {
    cfg.sources.iter().enumerate().filter_map(|(i, s)| match &s.kind {
        crate::source::SourceKind::Graph(g) => Some((i, &**g)),
        _ => None,
    })
}
