//! The retention stage: removes, a batch at a time, whatever is past its keep (`[retention]`).

use std::time::Instant;

use super::Ctx;
use crate::events::Event;
use crate::store::Pruned;

/// Records removed per store transaction batch by retention; between batches the other
/// stages get the store.
const PRUNE_BATCH: usize = 200;

/// One retention pass. Returns what it removed.
pub async fn prune_once(ctx: &Ctx) -> Pruned {
    let policy = ctx.cfg.retention.policy();
    let mut total = Pruned::default();
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
    // The log's space comes back only once its segments are mostly dead, which retention
    // removing the oldest reviews is what brings about.
    if total.reviews > 0 && !ctx.stop.is_cancelled() {
        match ctx.store.compact_review_log() {
            Ok(c) if c.segments > 0 => tracing::info!(
                segments = c.segments,
                moved = c.moved,
                freed = %bytesize::ByteSize(c.freed),
                "retention: review log segments freed"
            ),
            Ok(_) => {}
            Err(e) => ctx.store_failed(&e),
        }
    }
    if total.history > 0 {
        tracing::info!(
            history = total.history,
            "retention: removed incident history past 180 days or 2,000 per source"
        );
    }
    crate::events::Pruned {
        reviews: total.reviews,
        notifications: total.notifications,
        dead_letters: total.dead_letters,
        elapsed: started.elapsed(),
    }
    .emit();
    total
}

/// A retention pass every `retention.interval`.
pub async fn retention_loop(ctx: Ctx) {
    loop {
        prune_once(&ctx).await;
        if !ctx.pause(ctx.cfg.retention.interval).await {
            return;
        }
    }
}
