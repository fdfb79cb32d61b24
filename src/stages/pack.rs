//! The review log's packing (`store::log_packing`): a segment the review stage has filled is
//! packed within seconds, on tokio's blocking pool (a 4 MiB segment takes about two seconds of
//! one core), so that what a backlog leaves on disk is packed by the time it is delivered. It
//! also reports the store's size on disk, by part, every time it looks.

use std::time::Duration;

use super::Ctx;
use crate::events::{Event, Packed, StoreMeasured};

/// How often the loop looks for a sealed segment: a listing of the log's directory.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Packs every sealed segment; returns the segments left unpacked (damaged ones, reported
/// once by the store), which the loop does not try again until another is sealed.
pub async fn pack_once(ctx: &Ctx) -> Vec<u32> {
    let store = ctx.store.clone();
    let started = std::time::Instant::now();
    match tokio::task::spawn_blocking(move || store.pack_review_log()).await {
        Ok(Ok(packing)) => {
            // What the pass itself left, not a listing after it: a segment sealed meanwhile is
            // not counted as left, and is packed at the loop's next look.
            let left = packing.left.clone();
            Packed { packing, elapsed: started.elapsed() }.emit();
            left
        }
        Ok(Err(e)) => {
            ctx.store_failed(&e);
            Vec::new()
        }
        Err(e) => {
            tracing::error!("packing the review log stopped: {e}");
            Vec::new()
        }
    }
}

/// Packs sealed segments as they appear, and reports the store's size on disk
/// (`hindsight_store_bytes`) as it goes.
pub async fn pack_loop(ctx: Ctx) {
    let mut left: Vec<u32> = Vec::new();
    let mut unmeasured = false;
    loop {
        match ctx.store.sealed_review_segments() {
            Ok(sealed) if sealed != left => left = pack_once(&ctx).await,
            Ok(_) => {}
            Err(e) => ctx.store_failed(&e),
        }
        // Only a report: a size that cannot be read (a file's metadata) stops nothing, and is
        // warned about once, not every few seconds.
        match ctx.store.disk_usage() {
            Ok(usage) => {
                StoreMeasured { usage, unpacked: left.len() }.emit();
                unmeasured = false;
            }
            Err(e) if !unmeasured => {
                tracing::warn!("the store's size on disk cannot be measured: {e}");
                unmeasured = true;
            }
            Err(_) => {}
        }
        if !ctx.pause(LOOK_EVERY).await {
            return;
        }
    }
}
