//! The ingest stage: each source polled on its interval; what it reads is stored, and every
//! incident that moved to resolved is queued for review (in the source's own transaction).

use std::time::{Duration, Instant};

use tracing::Instrument;

use super::{Ctx, jitter};
use crate::events::{Event, PollFailed, PollSucceeded};
use crate::source::{Source, SourceError};

/// One pass of one source, with its metrics and health.
pub async fn poll_once(ctx: &Ctx, source: &mut Source) {
    let name = source.name().to_owned();
    let span = tracing::info_span!("poll", source = %name);
    poll(ctx, source, &name).instrument(span).await
}

async fn poll(ctx: &Ctx, source: &mut Source, name: &str) {
    let worker = format!("poll {name}");
    tracing::trace!("polling");
    ctx.health.busy(&worker, ctx.clock.now());
    let started = Instant::now();
    let result = source.poll(&ctx.store, &*ctx.clock).await;
    let elapsed = started.elapsed();
    ctx.health.idle(&worker);
    match result {
        Ok(report) => {
            let now = ctx.clock.now();
            ctx.health.poll_succeeded(name, now);
            ctx.health.store_result(None);
            PollSucceeded {
                source: name,
                fetched: report.fetched,
                stored: report.stored,
                resolutions: report.resolutions,
                rejected: report.rejected.len(),
                elapsed,
                at: now,
            }
            .emit();
            if report.resolutions > 0 {
                ctx.review_wake.notify_one();
            }
        }
        Err(e) => {
            if let SourceError::Store(s) = &e {
                ctx.store_failed(s);
            }
            PollFailed { source: name, error: &e, elapsed }.emit();
            ctx.health.poll_failed(name, &e.to_string(), ctx.clock.now());
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
        // Boxed: a pass's state (the Graph client's futures, a page being parsed) is allocated
        // for the pass only, not kept in every source's task while it sleeps — with a thousand
        // tenants that is most of an idle daemon's memory.
        Box::pin(poll_once(&ctx, &mut source)).await;
        let wait = jitter(interval, 0.1).saturating_sub(started.elapsed());
        if !ctx.pause(wait).await {
            return;
        }
    }
}
