//! The daemon's workers, one loop each: a poller per source, the reviewer, the deliverer, the
//! digest job and retention. They hand work to each other only through the store (a poll queues resolutions,
//! the reviewer turns them into reviews and outbox entries, the deliverer sends those) and wake
//! each other with [`Notify`] so that a new resolution is reviewed and sent at once rather than
//! at the next tick. Each loop stops at its next wait once the stop token is cancelled; a step
//! already started is finished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::health::{Health, OutboxCounts};
use crate::clock::Clock;
use crate::config::Config;
use crate::digest::job::Tick;
use crate::notify::{Destination, RetryPolicy, Subscription};
use crate::review::Engine;
use crate::source::{Source, SourceError};
use crate::store::Store;

/// What every worker shares.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub engine: &'static Engine<'static>,
    pub subscriptions: Arc<Vec<Subscription>>,
    pub destinations: Arc<Vec<Destination>>,
    pub policy: RetryPolicy,
    pub cfg: Arc<Config>,
    pub health: Arc<Health>,
    pub clock: Arc<dyn Clock>,
    pub review_wake: Arc<Notify>,
    pub deliver_wake: Arc<Notify>,
    pub stop: CancellationToken,
    /// A store write that failed at the disk (full, read-only, I/O error): the daemon stops and
    /// exits non-zero with it rather than poll and deliver on without a durable record.
    pub fatal: Arc<std::sync::Mutex<Option<String>>>,
}

impl Ctx {
    /// Waits `d`, or less if the daemon is stopping; `false` when it is.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    async fn pause_or(&self, d: Duration, wake: &Notify) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = wake.notified() => true,
            _ = tokio::time::sleep(d) => true,
        }
    }

    fn store_failed(&self, e: &crate::store::StoreError) {
        tracing::error!("{e}");
        self.health.store_result(Some(e.to_string()));
        if matches!(e, crate::store::StoreError::Io { .. } | crate::store::StoreError::Full { .. }) {
            // What is already stored stays consistent (each write is one transaction); going
            // on would only fetch and send what cannot be recorded. Supervisors (systemd's
            // Restart=on-failure, Kubernetes) see the exit and restart with backoff.
            let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
            if fatal.is_none() {
                *fatal = Some(e.to_string());
                tracing::error!("the store cannot be written; stopping");
            }
            self.stop.cancel();
        }
    }
}

fn jitter(d: Duration, spread: f64) -> Duration {
    d.mul_f64(rand::Rng::random_range(&mut rand::rng(), (1.0 - spread)..=(1.0 + spread)))
}

/// One pass of one source, with its metrics and health.
pub async fn poll_once(ctx: &Ctx, source: &mut Source) {
    let name = source.name().to_owned();
    let worker = format!("poll {name}");
    tracing::trace!(source = %name, "polling");
    ctx.health.busy(&worker, ctx.clock.now());
    let started = Instant::now();
    let result = source.poll(&ctx.store, &*ctx.clock).await;
    let elapsed = started.elapsed();
    ctx.health.idle(&worker);
    metrics::histogram!("hindsight_poll_duration_seconds", "source" => name.clone()).record(elapsed.as_secs_f64());
    match result {
        Ok(report) => {
            let now = ctx.clock.now();
            ctx.health.poll_succeeded(&name, now);
            ctx.health.store_result(None);
            metrics::counter!("hindsight_polls_total", "source" => name.clone(), "outcome" => "ok").increment(1);
            metrics::counter!("hindsight_incidents_seen_total", "source" => name.clone())
                .increment(report.fetched as u64);
            metrics::counter!("hindsight_resolutions_total", "source" => name.clone())
                .increment(report.resolutions as u64);
            metrics::gauge!("hindsight_last_successful_poll_timestamp_seconds", "source" => name.clone())
                .set(now.timestamp() as f64);
            let log = if report.resolutions > 0 || !report.rejected.is_empty() {
                tracing::Level::INFO
            } else {
                tracing::Level::DEBUG
            };
            if log == tracing::Level::INFO {
                tracing::info!(source = %name, fetched = report.fetched, stored = report.stored, resolutions = report.resolutions, rejected = report.rejected.len(), elapsed_ms = elapsed.as_millis() as u64, "poll done");
            } else {
                tracing::debug!(source = %name, fetched = report.fetched, elapsed_ms = elapsed.as_millis() as u64, "poll done");
            }
            if report.resolutions > 0 {
                ctx.review_wake.notify_one();
            }
        }
        Err(e) => {
            metrics::counter!("hindsight_polls_total", "source" => name.clone(), "outcome" => "error").increment(1);
            metrics::counter!("hindsight_poll_errors_total", "source" => name.clone()).increment(1);
            if let SourceError::Store(s) = &e {
                ctx.store_failed(s);
            }
            tracing::error!(source = %name, "poll failed: {e}; the cursor stays, the next poll reads the same window");
            ctx.health.poll_failed(&name, &e.to_string(), ctx.clock.now());
        }
    }
}

/// Polls one source every `interval` (±10 %), never two passes at once: a pass that takes
/// longer than the interval is followed by the next one right away. The first pass starts
/// after a short random delay, so that many tenants do not all poll in the same second.
pub async fn poll_loop(ctx: Ctx, mut source: Source, interval: Duration) {
    let first = jitter(interval.min(Duration::from_secs(100)) / 20, 1.0);
    if !ctx.pause(first).await {
        return;
    }
    loop {
        let started = Instant::now();
        poll_once(&ctx, &mut source).await;
        let wait = jitter(interval, 0.1).saturating_sub(started.elapsed());
        if !ctx.pause(wait).await {
            return;
        }
    }
}

/// Reviews queued resolutions in batches until none is left; returns how many were reviewed.
pub async fn review_all(ctx: &Ctx) -> usize {
    let batch = ctx.cfg.daemon.review_batch;
    let mut total = 0;
    loop {
        let (store, engine, subs, now) = (ctx.store.clone(), ctx.engine, ctx.subscriptions.clone(), ctx.clock.now());
        let (stop, wake) = (ctx.stop.clone(), ctx.deliver_wake.clone());
        ctx.health.busy("review", now);
        let pass = tokio::task::spawn_blocking(move || {
            crate::reviewer::review_pending_until(&store, engine, &subs, batch, now, &|| stop.is_cancelled(), &|| {
                wake.notify_one()
            })
        })
        .await;
        ctx.health.idle("review");
        match pass {
            Ok(Ok(p)) => {
                total += p.reviewed;
                ctx.health.reviewed(p.reviewed);
                if p.reviewed > 0 {
                    ctx.deliver_wake.notify_one();
                }
                metrics::gauge!("hindsight_review_queue").set(ctx.store.pending_count() as f64);
                if p.reviewed < batch || ctx.stop.is_cancelled() {
                    return total;
                }
            }
            Ok(Err(e)) => {
                ctx.store_failed(&e);
                return total;
            }
            Err(e) => {
                tracing::error!("a review batch panicked: {e}; its resolutions stay queued");
                return total;
            }
        }
    }
}

pub async fn review_loop(ctx: Ctx) {
    loop {
        review_all(&ctx).await;
        let wake = ctx.review_wake.clone();
        if !ctx.pause_or(Duration::from_secs(30), &wake).await {
            return;
        }
    }
}

/// One delivery pass; returns whether anything was attempted.
pub async fn deliver_once(ctx: &Ctx) -> bool {
    ctx.health.busy("deliver", ctx.clock.now());
    let result = crate::notify::deliver_due_until(
        &ctx.store,
        &ctx.destinations,
        &ctx.policy,
        ctx.cfg.delivery.concurrency,
        ctx.clock.now(),
        &ctx.stop,
    )
    .await;
    ctx.health.idle("deliver");
    match result {
        Ok(p) => {
            let now = ctx.clock.now();
            let mut expedited = 0;
            for name in ctx.health.deliveries(&p.outcomes, now) {
                match ctx.store.expedite_outbox(&name, now) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(destination = %name, pending = n, "the destination answers again; its waiting notifications go now");
                        expedited += n;
                    }
                    Err(e) => ctx.store_failed(&e),
                }
            }
            if expedited > 0 {
                ctx.deliver_wake.notify_one();
            }
            p.delivered + p.retried + p.dead > 0
        }
        Err(e) => {
            ctx.store_failed(&e);
            false
        }
    }
}

/// Outbox entries by destination and state, as gauges and for the status line.
pub fn count_outbox(ctx: &Ctx) {
    let counts = match ctx.store.outbox_counts() {
        Ok(c) => c,
        Err(e) => {
            ctx.store_failed(&e);
            return;
        }
    };
    let mut total = OutboxCounts::default();
    let mut by: std::collections::BTreeMap<(String, &'static str), usize> = Default::default();
    for d in ctx.destinations.iter() {
        for state in ["pending", "delivered", "dead"] {
            by.insert((d.name.clone(), state), 0);
        }
    }
    for ((destination, state), n) in counts {
        match state {
            "pending" => total.pending += n,
            "delivered" => total.delivered += n,
            _ => total.dead += n,
        }
        *by.entry((destination, state)).or_default() += n;
    }
    for ((destination, state), n) in by {
        ctx.health.set_destination_count(&destination, state, n);
        metrics::gauge!("hindsight_outbox_entries", "destination" => destination, "state" => state).set(n as f64);
    }
    ctx.health.set_outbox(total);
}

pub async fn deliver_loop(ctx: Ctx) {
    loop {
        deliver_once(&ctx).await;
        // Counted even when nothing was due: a counter that stops is a stalled deliverer.
        metrics::counter!("hindsight_delivery_passes_total").increment(1);
        // The store keeps the counts (one read of the outbox at the first pass), so this is
        // cheap after every pass, including those in which reviews added entries.
        count_outbox(&ctx);
        let wake = ctx.deliver_wake.clone();
        if !ctx.pause_or(ctx.cfg.daemon.outbox_interval, &wake).await {
            return;
        }
    }
}

/// One look at the digest schedule; returns the next occurrence.
pub fn digest_once(ctx: &Ctx, schedule: &crate::digest::schedule::Schedule) -> Option<chrono::DateTime<chrono::Utc>> {
    let settings = crate::digest::Settings {
        top: ctx.cfg.digest.top,
        attack_domain: ctx.engine.catalog.meta().domain.clone(),
        attack_version: ctx.engine.catalog.meta().attack_version.clone(),
    };
    let period = chrono::Duration::from_std(ctx.cfg.digest.period).unwrap_or(chrono::Duration::days(7));
    let now = ctx.clock.now();
    let next = match crate::digest::job::tick(
        &ctx.store,
        ctx.engine.catalog,
        schedule,
        &ctx.subscriptions,
        period,
        &settings,
        now,
    ) {
        Ok(Tick::Started { next }) | Ok(Tick::Waiting { next }) => next,
        Ok(Tick::Sent { .. }) => {
            ctx.deliver_wake.notify_one();
            schedule.next_after(now)
        }
        Err(e) => {
            metrics::counter!("hindsight_digest_failures_total").increment(1);
            ctx.store_failed(&e);
            Some(now + chrono::Duration::seconds(60))
        }
    };
    ctx.health.set_next_digest(next);
    next
}

/// Looks at the schedule again at the next occurrence, and at least every minute: the wall
/// clock may jump (suspend, NTP) and a sleep does not notice.
pub async fn digest_loop(ctx: Ctx, schedule: crate::digest::schedule::Schedule) {
    loop {
        let next = digest_once(&ctx, &schedule);
        let now = ctx.clock.now();
        let wait = next
            .and_then(|n| (n - now).to_std().ok())
            .unwrap_or(Duration::from_secs(60))
            .clamp(Duration::from_millis(100), Duration::from_secs(60));
        if !ctx.pause(wait).await {
            return;
        }
    }
}

/// Records removed per store transaction batch by retention; between batches the other
/// workers get the store.
const PRUNE_BATCH: usize = 200;

/// One retention pass: removes, a batch at a time, whatever is past its keep
/// (`[retention]`). Returns what it removed.
pub async fn prune_once(ctx: &Ctx) -> crate::store::Pruned {
    let policy = ctx.cfg.retention.policy();
    let mut total = crate::store::Pruned::default();
    let started = Instant::now();
    loop {
        match ctx.store.prune(&policy, ctx.clock.now(), PRUNE_BATCH) {
            Ok(p) => total.add(&p),
            Err(e) => {
                ctx.store_failed(&e);
                break;
            }
        }
        if !total.more || ctx.stop.is_cancelled() {
            break;
        }
        tokio::task::yield_now().await;
    }
    for (what, n) in
        [("reviews", total.reviews), ("notifications", total.notifications), ("dead_letters", total.dead_letters)]
    {
        metrics::counter!("hindsight_pruned_total", "kind" => what).increment(n as u64);
    }
    if total.total() > 0 {
        tracing::info!(
            reviews = total.reviews,
            notifications = total.notifications,
            dead_letters = total.dead_letters,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "retention: removed what is past its keep"
        );
    }
    total
}

pub async fn retention_loop(ctx: Ctx) {
    loop {
        prune_once(&ctx).await;
        if !ctx.pause(ctx.cfg.retention.interval).await {
            return;
        }
    }
}

/// Keeps the systemd status line current.
pub async fn status_loop(ctx: Ctx) {
    loop {
        super::systemd::status(&ctx.health.status_line());
        if !ctx.pause(Duration::from_secs(10)).await {
            return;
        }
    }
}
