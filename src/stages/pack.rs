//! The review log's packing (`store::log_packing`): a segment the review stage has filled is
//! packed within seconds, on tokio's blocking pool (a 4 MiB segment takes about two seconds of
//! one core), so that what a backlog leaves on disk is packed by the time it is delivered.

use std::time::Duration;

use super::Ctx;

/// How often the loop looks for a sealed segment: a listing of the log's directory.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Packs every sealed segment; returns the segments left unpacked (damaged ones, reported
/// once by the store), which the loop does not try again until another is sealed.
pub async fn pack_once(ctx: &Ctx) -> Vec<u32> {
    let store = ctx.store.clone();
    let done =
        tokio::task::spawn_blocking(move || store.pack_review_log().map(|d| (d, store.sealed_review_segments()))).await;
    match done {
        Ok(Ok((done, left))) => {
            if done.segments > 0 {
                tracing::info!(
                    segments = done.segments,
                    reviews = done.reviews,
                    snapshots = done.snapshots,
                    before = %bytesize::ByteSize(done.before),
                    after = %bytesize::ByteSize(done.after),
                    "review log segments packed"
                );
            }
            left.unwrap_or_default()
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

/// Packs sealed segments as they appear.
pub async fn pack_loop(ctx: Ctx) {
    let mut left: Vec<u32> = Vec::new();
    loop {
        match ctx.store.sealed_review_segments() {
            Ok(sealed) if sealed != left => left = pack_once(&ctx).await,
            Ok(_) => {}
            Err(e) => ctx.store_failed(&e),
        }
        if !ctx.pause(LOOK_EVERY).await {
            return;
        }
    }
}
