//! The review stage: takes queued resolutions from the store, reviews each against the source's
//! history, and stores the review. The review itself is pure ([`crate::review`]); this is the
//! I/O around it.

use chrono::{DateTime, Utc};

use crate::review::{Engine, Subject};
use crate::store::{Result, Store};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReviewPass {
    pub reviewed: usize,
    /// Queued resolutions whose record could not be read (reported, left queued).
    pub failed: Vec<String>,
}

/// Reviews up to `limit` queued resolutions, oldest key first, enqueues a notification of each
/// review for every destination, and flushes once at the end.
pub fn review_pending(
    store: &Store,
    engine: &Engine,
    subscriptions: &[crate::notify::Subscription],
    limit: usize,
    now: DateTime<Utc>,
) -> Result<ReviewPass> {
    review_pending_until(store, engine, subscriptions, limit, now, &|| false, &|| {})
}

/// [`review_pending`], stopping early (after the review in hand) once `stop` says so: a
/// shutdown is not held up by a long batch, and what is left stays queued. `stored` is called
/// after each review is committed, so that its notifications can go out while the batch goes
/// on (a batch of a backlog takes seconds; its first notification should not wait for it).
pub fn review_pending_until(
    store: &Store,
    engine: &Engine,
    subscriptions: &[crate::notify::Subscription],
    limit: usize,
    now: DateTime<Utc>,
    stop: &dyn Fn() -> bool,
    stored: &dyn Fn(),
) -> Result<ReviewPass> {
    let mut pass = ReviewPass::default();
    let keys: Vec<_> = store.pending().take(limit).collect::<Result<_>>()?;
    for k in keys {
        if stop() {
            break;
        }
        let resolution = match store.resolution(&k) {
            Ok(Some(r)) => r,
            Ok(None) => {
                pass.failed.push(format!("{}: queued without a resolution record", String::from_utf8_lossy(&k.0)));
                continue;
            }
            Err(e) => {
                tracing::error!("{e}");
                pass.failed.push(e.to_string());
                continue;
            }
        };
        // History is read per review: an earlier review in this pass may have taught something.
        let history = store.history(&resolution.source)?;
        let subject =
            Subject { incident: &resolution.incident, source: &resolution.source, revision: resolution.revision };
        let review = engine.review(&subject, &history);
        let outbox = crate::notify::entries_for(&k, &review, subscriptions, now);
        if store.record_review(&k, &resolution.source, &review, &outbox, now)? {
            pass.reviewed += 1;
            stored();
            metrics::counter!("hindsight_reviews_total", "source" => resolution.source.clone()).increment(1);
            tracing::info!(
                incident_id = %resolution.incident_id,
                source = %resolution.source,
                revision = resolution.revision,
                follow_ups = review.follow_ups.len(),
                "review stored"
            );
        }
    }
    store.flush()?;
    Ok(pass)
}
