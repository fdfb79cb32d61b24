//! `hindsight run`: the pipeline as a long-running service. Start-up opens the store, builds
//! the pipeline from the configuration (every problem reported at once), binds the HTTP
//! listener, and starts the stages' loops ([`crate::stages`]): a poller per source, the
//! reviewer, the deliverer, the digest job, retention, and the systemd status and watchdog. Then it waits for a signal
//! ([`shutdown`]) or for a worker to die, gives in-flight work `daemon.shutdown_timeout` to
//! finish, flushes the store and returns.
//!
//! Nothing needs saving at shutdown: every stage hands work on only through the store, so a
//! stop at any point — even SIGKILL — leaves work that the next start picks up.

pub mod http;
pub mod pipeline;
pub mod shard;
pub mod shutdown;
pub mod systemd;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Config;
use crate::stages::health::Health;
use crate::stages::{Ctx, deliver, digest, ingest, pack, retention, review};
use crate::store::Store;
use pipeline::Pipeline;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the configuration cannot be used:\n{0}")]
    Build(#[from] pipeline::BuildErrors),
    #[error("configuration key http.listen: cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("source {0}: {1}")]
    Source(String, crate::source::SourceError),
    #[error("cannot watch for signals: {0}")]
    Signals(std::io::Error),
    #[error("worker {0} stopped unexpectedly; the daemon stops so that its supervisor restarts it")]
    WorkerDied(String),
    #[error("stopped because the store cannot be written: {0}")]
    StoreFailed(String),
}

pub struct Options {
    /// One pass of everything (poll each source, review, deliver what is due, the digest if
    /// due), then return: for cron-driven runs and trials.
    pub once: bool,
    pub clock: Arc<dyn Clock>,
    /// Handle signals (off when a test drives the stop token itself).
    pub signals: bool,
    /// Cancel to stop the daemon as a signal would.
    pub stop: CancellationToken,
}

impl Options {
    pub fn new(clock: Arc<dyn Clock>) -> Options {
        Options { once: false, clock, signals: true, stop: CancellationToken::new() }
    }
}

pub fn store_path(state_dir: &Path) -> PathBuf {
    state_dir.join("store")
}

pub async fn run(cfg: Config, state_dir: &Path, opts: Options) -> Result<(), DaemonError> {
    let clock = opts.clock.clone();
    // Opening may upgrade an older store (reading every review) and the inventory may be large:
    // ask systemd for more than its default start-up time before either.
    systemd::extend_start(std::time::Duration::from_secs(300));
    let store = Store::open_with_cache(&store_path(state_dir), cfg.daemon.store_cache.as_u64())?
        .with_reserve(cfg.daemon.store_reserve.as_u64());
    // A disk already too full is reported at start, not after the first fetch.
    store.ensure_room()?;
    let pipeline = Pipeline::build(&cfg, state_dir)?;
    for w in &pipeline.warnings {
        tracing::warn!("{w}");
    }
    let meta = pipeline.catalog.meta();
    tracing::info!(
        state_dir = %state_dir.display(),
        attack = %format!("{} {}", meta.domain, meta.attack_version.as_deref().unwrap_or("?")),
        sources = pipeline.sources.len(),
        destinations = pipeline.destinations.len(),
        "starting"
    );
    // The recorder first: a metric recorded before it is installed goes nowhere (build_info
    // never appeared on /metrics when it was set first).
    let metrics = http::metrics_handle();
    metrics::gauge!("hindsight_build_info", "version" => env!("CARGO_PKG_VERSION"), "attack_version" => meta.attack_version.clone().unwrap_or_default()).set(1.0);
    metrics::gauge!("hindsight_sources", "shard" => pipeline.shard.map(|s| s.to_string()).unwrap_or_default())
        .set(pipeline.sources.len() as f64);
    metrics::gauge!("hindsight_sources_configured").set(cfg.sources.len() as f64);
    if let Some(shard) = pipeline.shard {
        tracing::info!(
            shard = %shard,
            here = pipeline.sources.len(),
            elsewhere = pipeline.elsewhere.len(),
            "polling this shard's {} of {} sources; the others are polled by the other replicas",
            pipeline.sources.len(),
            cfg.sources.len()
        );
    }
    // A source that moved (the shard count changed) is read from its backfill window by its new
    // shard, which has never seen it: what that window holds is reviewed and sent again there.
    let moved: Vec<&str> =
        pipeline.elsewhere.iter().map(String::as_str).filter(|n| matches!(store.cursor(n), Ok(Some(_)))).collect();
    if !moved.is_empty() {
        tracing::warn!(
            "this store has read source(s) {} before, which now belong to another shard: the shard count changed. Their new shard reads them from their backfill window, and reviews and sends again what it holds",
            moved.join(", ")
        );
    }
    let source_names: Vec<&str> = pipeline.sources.iter().map(|(s, _)| s.name()).collect();
    let destination_names: Vec<&str> = pipeline.destinations.iter().map(|d| d.name.as_str()).collect();
    crate::events::register(&source_names, &destination_names);
    let health = Arc::new(Health::default());
    for (s, interval) in &pipeline.sources {
        health.add_source(s.name(), *interval);
    }
    for d in &pipeline.destinations {
        health.add_destination(&d.name);
    }
    health.set_delivery_grace(cfg.daemon.delivery_grace);
    let Pipeline { engine, sources, destinations, subscriptions, policy, schedule, hunters, shard, .. } = pipeline;
    let hunters = Arc::new(hunters);
    for (s, _) in &sources {
        s.start(&store, &*clock).await.map_err(|e| DaemonError::Source(s.name().to_owned(), e))?;
    }
    let ctx = Ctx {
        store: store.clone(),
        engine,
        subscriptions: Arc::new(subscriptions),
        destinations: Arc::new(destinations),
        policy,
        cfg: Arc::new(cfg),
        health: health.clone(),
        clock: clock.clone(),
        review_wake: Arc::new(Notify::new()),
        deliver_wake: Arc::new(Notify::new()),
        hunt_wake: Arc::new(Notify::new()),
        shard,
        stop: opts.stop.clone(),
        fatal: Arc::default(),
    };
    if opts.once {
        return run_once(&ctx, sources, schedule.as_ref(), &hunters).await;
    }

    if opts.signals {
        shutdown::listen(ctx.stop.clone()).map_err(DaemonError::Signals)?;
    }
    // Before anything opens many descriptors: the HTTP cap below is set from the result.
    http::raise_open_file_limit();
    let tracker = TaskTracker::new();
    let mut handles = Vec::new();
    let listen = ctx.cfg.http.listen.clone();
    if !listen.is_empty() {
        let listener = http::bind(&listen).map_err(|source| DaemonError::Listen { addr: listen.clone(), source })?;
        tracing::info!(addr = %listener.local_addr().map_or(listen.clone(), |a| a.to_string()), "serving /healthz, /readyz, /metrics");
        let state = http::HttpState {
            health: health.clone(),
            store: store.clone(),
            clock: clock.clone(),
            stall_limit: ctx.cfg.daemon.stall_timeout,
            metrics,
            details: ctx.cfg.http.readyz_details,
        };
        let limits = http::Limits {
            max_connections: http::connection_cap(ctx.cfg.http.max_connections),
            header_timeout: ctx.cfg.http.header_timeout,
        };
        tracker.spawn(http::serve(listener, state, ctx.stop.clone(), limits));
    }
    for (source, interval) in sources {
        let name = format!("poll {}", source.name());
        handles.push((name, tracker.spawn(ingest::poll_loop(ctx.clone(), source, interval))));
    }
    handles.push(("review".into(), tracker.spawn(review::review_loop(ctx.clone()))));
    handles.push(("deliver".into(), tracker.spawn(deliver::deliver_loop(ctx.clone()))));
    if !hunters.is_empty() {
        handles.push(("hunt".into(), tracker.spawn(crate::stages::hunt::hunt_loop(ctx.clone(), hunters.clone()))));
    }
    if let Some(s) = schedule {
        handles.push(("digest".into(), tracker.spawn(digest::digest_loop(ctx.clone(), s))));
    }
    handles.push(("retention".into(), tracker.spawn(retention::retention_loop(ctx.clone()))));
    handles.push(("pack".into(), tracker.spawn(pack::pack_loop(ctx.clone()))));
    tracker.spawn(status_loop(ctx.clone()));
    tracker.spawn(systemd::watchdog(health.clone(), clock.clone(), ctx.cfg.daemon.stall_timeout, ctx.stop.clone()));
    tracker.close();
    health.set_ready(clock.now());
    systemd::ready(&health.status_line());
    tracing::info!("ready");

    let died = supervise(&ctx.stop, handles).await;
    systemd::stopping();
    let bound = ctx.cfg.daemon.shutdown_timeout;
    if tokio::time::timeout(bound, tracker.wait()).await.is_err() {
        tracing::warn!(
            "in-flight work did not finish within {}; it is left to the next start",
            humantime::format_duration(bound)
        );
    }
    if let Some(e) = ctx.take_fatal() {
        // A flush would fail the same way; what was committed before the failure is on disk.
        return Err(DaemonError::StoreFailed(e));
    }
    store.flush_async().await?;
    tracing::info!("stopped; the store is flushed");
    match died {
        Some(name) => Err(DaemonError::WorkerDied(name)),
        None => Ok(()),
    }
}

/// Waits for the stop token, or for a worker to end on its own (a panic): then stops the rest
/// and names it.
async fn supervise(stop: &CancellationToken, handles: Vec<(String, tokio::task::JoinHandle<()>)>) -> Option<String> {
    let mut set = tokio::task::JoinSet::new();
    for (name, h) in handles {
        set.spawn(async move { (name, h.await) });
    }
    tokio::select! {
        biased;
        _ = stop.cancelled() => None,
        Some(Ok((name, result))) = set.join_next() => {
            // Workers end when told to stop; only an end before that is a failure.
            if stop.is_cancelled() {
                return None;
            }
            match result {
                Err(e) => tracing::error!(worker = %name, "worker failed: {e}"),
                Ok(()) => tracing::error!(worker = %name, "worker ended"),
            }
            stop.cancel();
            Some(name)
        }
    }
}

async fn run_once(
    ctx: &Ctx,
    sources: Vec<(crate::source::Source, std::time::Duration)>,
    schedule: Option<&crate::digest::schedule::Schedule>,
    hunters: &[Arc<crate::stages::hunt::Hunter>],
) -> Result<(), DaemonError> {
    for (mut source, _) in sources {
        ingest::poll_once(ctx, &mut source).await;
    }
    let reviewed = review::review_all(ctx).await;
    if !hunters.is_empty()
        && let Err(e) = crate::stages::hunt::hunt_queued(&ctx.store, hunters, &ctx.subscriptions, &*ctx.clock).await
    {
        ctx.store_failed(&e);
    }
    if let Some(s) = schedule {
        digest::digest_once(ctx, s);
    }
    deliver::deliver_once(ctx).await;
    retention::prune_once(ctx).await;
    pack::pack_once(ctx).await;
    if let Some(e) = ctx.take_fatal() {
        return Err(DaemonError::StoreFailed(e));
    }
    ctx.store.flush_async().await?;
    tracing::info!(reviewed, "one pass done");
    Ok(())
}

/// Keeps the systemd status line current.
async fn status_loop(ctx: Ctx) {
    let metrics = http::metrics_handle();
    loop {
        systemd::status(&ctx.health.status_line());
        // The recorder keeps every histogram sample until upkeep folds it into the buckets,
        // which only a scrape of /metrics did: a daemon nobody scrapes (systemd without
        // Prometheus) grew by each poll of each source, for good.
        metrics.run_upkeep();
        if !ctx.pause(std::time::Duration::from_secs(10)).await {
            return;
        }
    }
}
