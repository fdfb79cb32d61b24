//! The pipeline's stages, one file each, each a loop and the one pass it repeats:
//!
//! | stage | one pass | loop | hands on through the store |
//! |---|---|---|---|
//! | [`ingest`] | [`ingest::poll_once`]: one source's pass | [`ingest::poll_loop`] | resolutions queued |
//! | [`review`] | [`review::review_pending`]: a batch of the queue | [`review::review_loop`] | reviews and their outbox entries |
//! | [`deliver`] | [`deliver::deliver_due`]: what is due in the outbox | [`deliver::deliver_loop`] | outcomes recorded |
//! | [`digest`] | [`digest::tick`]: the schedule looked at once | [`digest::digest_loop`] | digests and their outbox entries |
//! | [`hunt`] | [`hunt::hunt_queued`]: queued reviews' hunts, within budgets | [`hunt::hunt_loop`] | amended reviews and their `review.hunted` entries |
//! | [`retention`] | [`retention::prune_once`] | [`retention::retention_loop`] | — |
//! | [`pack`] | [`pack::pack_once`]: sealed review log segments packed | [`pack::pack_loop`] | — |
//!
//! Stages hand work to each other only through the store, and wake each other with [`Notify`]
//! so that a new resolution is reviewed and sent at once rather than at the next tick. Each loop
//! stops at its next wait once the stop token is cancelled; a step already started is finished.
//! What happens is reported through [`crate::events`]; `daemon/` only wires the loops.

pub mod deliver;
pub mod digest;
pub mod health;
pub mod hunt;
pub mod ingest;
pub mod pack;
pub mod retention;
pub mod review;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::notify::{Destination, Subscription};
use crate::outbox::RetryPolicy;
use crate::review::Engine;
use crate::store::Store;
use health::Health;

/// What every stage shares.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub engine: Arc<Engine>,
    pub subscriptions: Arc<Vec<Subscription>>,
    pub destinations: Arc<Vec<Destination>>,
    pub policy: RetryPolicy,
    pub cfg: Arc<Config>,
    pub health: Arc<Health>,
    pub clock: Arc<dyn Clock>,
    pub review_wake: Arc<Notify>,
    pub deliver_wake: Arc<Notify>,
    pub hunt_wake: Arc<Notify>,
    /// This replica's share of the sources (`daemon.shard`); its digests say so.
    pub shard: Option<crate::daemon::shard::Shard>,
    pub stop: CancellationToken,
    /// A store write that failed at the disk (full, read-only, I/O error): the daemon stops and
    /// exits non-zero with it rather than poll and deliver on without a durable record.
    pub fatal: Arc<std::sync::Mutex<Option<String>>>,
}

impl Ctx {
    /// Waits `d` on the daemon's clock, or less if the daemon is stopping; `false` when it
    /// is. On the clock, not tokio's timer directly: a test on a manual clock that moves an hour
    /// on wakes every loop that was waiting for that hour at once.
    pub async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = self.clock.sleep(d) => true,
        }
    }

    /// [`Ctx::pause`], ending early when `wake` is notified.
    pub async fn pause_or(&self, d: Duration, wake: &Notify) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = wake.notified() => true,
            _ = self.clock.sleep(d) => true,
        }
    }

    /// Reports a store error; one at the disk stops the daemon.
    pub fn store_failed(&self, e: &crate::store::StoreError) {
        tracing::error!("{e}");
        self.health.store_result(Some(e.to_string()));
        if matches!(
            e,
            crate::store::StoreError::Io { .. }
                | crate::store::StoreError::Damaged { .. }
                | crate::store::StoreError::Full { .. }
        ) {
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

    /// The store error that stopped the daemon, if one did.
    pub fn take_fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// `d` varied by ±`spread` (a fraction), so that many tenants' loops do not line up.
pub(crate) fn jitter(d: Duration, spread: f64) -> Duration {
    d.mul_f64(rand::Rng::random_range(&mut rand::rng(), (1.0 - spread)..=(1.0 + spread)))
}
