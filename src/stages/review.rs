//! The review stage: takes queued resolutions from the store, reviews each against the source's
//! history, and stores the review with its notifications. The review itself is pure
//! ([`crate::review`]); this is the I/O around it.
//!
//! A queued resolution that can never be reviewed (its record is missing or unreadable, or the
//! review of it panics) is moved out of the queue into the store's `failed` tree with the
//! reason, so that it neither blocks the queue nor disappears.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Ctx;
use crate::digest::Summary;
use crate::events::{Event, ReviewFailed, ReviewStored, TaskPanicked};
use crate::notify::Subscription;
use crate::review::{Engine, History, Review, Subject};
use crate::store::{FailedReview, ResolutionKey, Result, ReviewRecord, Store, StoreError};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReviewPass {
    pub reviewed: usize,
    /// Queued resolutions given up in this pass (`source/incident/revision: why`).
    pub failed: Vec<String>,
}

impl ReviewPass {
    /// How many queued resolutions the pass took off the queue, one way or the other.
    pub fn taken(&self) -> usize {
        self.reviewed + self.failed.len()
    }
}

/// What is stored with `review`: its digest summary, its follow-up texts, the techniques it
/// saw (for the source's history) and its notifications.
pub fn record_of<'a>(
    source: &'a str,
    review: &'a Review,
    outbox: Vec<crate::outbox::OutboxEntry>,
    now: DateTime<Utc>,
) -> ReviewRecord<'a> {
    ReviewRecord {
        source,
        review,
        summary: Summary::of(review, now),
        follow_ups: Summary::follow_up_texts(review).collect(),
        // Only techniques the catalog knows: an unknown ID is not something the organisation
        // has "seen" in any sense a later review could use.
        techniques: review.techniques.iter().filter(|t| t.name.is_some()).map(|t| t.id.as_str()).collect(),
        past: crate::review::past_incident(review),
        outbox,
        at: now,
        hunt: false,
        snapshot: None,
    }
}

/// Reviews up to `limit` queued resolutions, oldest key first, enqueues a notification of each
/// review for every destination, and flushes once at the end.
pub fn review_pending(
    store: &Store,
    engine: &Engine,
    subscriptions: &[Subscription],
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
    subscriptions: &[Subscription],
    limit: usize,
    now: DateTime<Utc>,
    stop: &dyn Fn() -> bool,
    stored: &dyn Fn(),
) -> Result<ReviewPass> {
    let mut pass = ReviewPass::default();
    let keys: Vec<_> = store.pending().take(limit).collect::<Result<_>>()?;
    // Each source's history is read once per pass and kept up to date in memory as reviews
    // are recorded: reading it per review cost a scan of up to 2,000 entries each time.
    let mut histories: HashMap<String, History> = HashMap::new();
    // Each source's deployed rules (read from its tenant), parsed once per pass.
    let mut deployed: HashMap<String, Deployed> = HashMap::new();
    for k in keys {
        if stop() {
            break;
        }
        let span = tracing::info_span!("review", resolution = %k.display());
        let _entered = span.enter();
        match review_one(store, engine, subscriptions, &k, now, &mut histories, &mut deployed)? {
            Outcome::Stored => {
                pass.reviewed += 1;
                stored();
            }
            Outcome::AlreadyDone => {}
            Outcome::Failed(reason) => {
                let (source, incident_id, revision) = k.parts().unwrap_or_default();
                let why = FailedReview { source, incident_id, revision, reason: reason.clone(), at: now };
                if store.fail_review(&k, &why)? {
                    ReviewFailed { key: &k.display(), reason: &reason }.emit();
                    pass.failed.push(format!("{}: {reason}", k.display()));
                }
            }
        }
    }
    store.flush()?;
    Ok(pass)
}

enum Outcome {
    Stored,
    /// Another worker or an earlier run recorded it first.
    AlreadyDone,
    /// It can never be reviewed, for this reason.
    Failed(String),
}

/// A source's deployed rules as an inventory, with what the review says about them; `None`
/// for a source whose tenant's rules are not read.
type Deployed = Option<(crate::inventory::Inventory, crate::review::DeployedRules)>;

fn review_one(
    store: &Store,
    engine: &Engine,
    subscriptions: &[Subscription],
    k: &ResolutionKey,
    now: DateTime<Utc>,
    histories: &mut HashMap<String, History>,
    deployed: &mut HashMap<String, Deployed>,
) -> Result<Outcome> {
    let resolution = match store.resolution(k) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(Outcome::Failed("queued without a resolution record".to_owned())),
        // An unreadable record stays unreadable; an I/O error is the store's, not this key's.
        Err(e @ StoreError::Corrupt { .. }) => return Ok(Outcome::Failed(e.to_string())),
        Err(e) => return Err(e),
    };
    // Ingest read the same text (its own fields), so only a snapshot changed on disk fails here
    // (retention removes a resolution before it empties the snapshot it refers to).
    let incident = match resolution.incident(&engine.settings.limits()) {
        Ok(i) => i,
        Err(e) => return Ok(Outcome::Failed(format!("the stored snapshot cannot be read: {e}"))),
    };
    let history = match histories.entry(resolution.source.clone()) {
        Entry::Occupied(h) => h.into_mut(),
        Entry::Vacant(v) => v.insert(store.history(&resolution.source)?),
    };
    let rules = match deployed.entry(resolution.source.clone()) {
        Entry::Occupied(d) => d.into_mut(),
        Entry::Vacant(v) => v.insert(store.deployed_rules(&resolution.source)?.map(|r| {
            crate::inventory::Inventory::from_deployed(
                &r.rules,
                &r.sentinel,
                r.read_at,
                &resolution.source,
                &engine.catalog,
            )
        })),
    };
    let layered = rules.as_ref().map(|(inv, info)| crate::inventory::Layered {
        files: engine.inventory.as_deref(),
        deployed: inv,
        info: info.clone(),
    });
    let inventory = match &layered {
        Some(l) => Some(l as &dyn crate::review::DetectionInventory),
        None => engine.inventory.as_deref(),
    };
    let subject = Subject {
        incident: &incident,
        source: &resolution.source,
        revision: resolution.revision,
        transitions: &resolution.transitions,
    };
    // A review that panics on some input would otherwise panic again on every pass and hold
    // the queue for good; the input is kept in the store for a bug report.
    let review = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine.review_against(&subject, history, inventory)
    })) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic_text(&*panic);
            TaskPanicked { stage: "review", what: "the review of one incident", error: &what }.emit();
            return Ok(Outcome::Failed(format!("the review panicked: {what}")));
        }
    };
    let outbox = crate::notify::entries_for(k, &review, subscriptions, now);
    let notifications = outbox.len();
    let mut record = record_of(&resolution.source, &review, outbox, now);
    record.snapshot = Some(&resolution.raw);
    // Hunting costs the tenant's shared quota: only real incidents with a blind stage to look at.
    record.hunt = engine.settings.retro_hunt_sources.contains(&resolution.source)
        && crate::review::is_real_incident(&review)
        && !crate::review::retro_hunts::plan(&review, 1).is_empty();
    if !store.record_review(k, &record)? {
        return Ok(Outcome::AlreadyDone);
    }
    // What the store now holds, so that the next review of this pass learns from this one.
    history.techniques_seen.extend(record.techniques.iter().map(|t| (*t).to_owned()));
    history.incidents.retain(|p| p.id != record.past.id);
    history.incidents.insert(0, record.past);
    ReviewStored {
        source: &resolution.source,
        incident_id: &resolution.incident_id,
        revision: resolution.revision,
        follow_ups: review.follow_ups.len(),
        notifications,
    }
    .emit();
    Ok(Outcome::Stored)
}

/// A panic's message, when it has one.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

/// Reviews queued resolutions in batches until none is left; returns how many were reviewed.
pub async fn review_all(ctx: &Ctx) -> usize {
    let batch = ctx.cfg.daemon.review_batch;
    let mut total = 0;
    loop {
        let (store, engine, subs, now) =
            (ctx.store.clone(), ctx.engine.clone(), ctx.subscriptions.clone(), ctx.clock.now());
        let (stop, wake) = (ctx.stop.clone(), ctx.deliver_wake.clone());
        ctx.health.busy("review", now);
        let pass = tokio::task::spawn_blocking(move || {
            review_pending_until(&store, &engine, &subs, batch, now, &|| stop.is_cancelled(), &|| wake.notify_one())
        })
        .await;
        ctx.health.idle("review");
        match pass {
            Ok(Ok(p)) => {
                total += p.reviewed;
                ctx.health.reviewed(p.reviewed);
                if p.reviewed > 0 {
                    ctx.deliver_wake.notify_one();
                    ctx.hunt_wake.notify_one();
                }
                let (queued, failed) = (ctx.store.pending_count(), ctx.store.failed_count());
                metrics::gauge!("hindsight_review_queue").set(queued as f64);
                metrics::gauge!("hindsight_review_failures").set(failed as f64);
                ctx.health.set_review_queue(queued, failed);
                // A batch that took fewer than it asked for emptied the queue.
                if p.taken() < batch || ctx.stop.is_cancelled() {
                    return total;
                }
            }
            Ok(Err(e)) => {
                ctx.store_failed(&e);
                return total;
            }
            Err(e) => {
                TaskPanicked { stage: "review", what: "a review batch", error: &e }.emit();
                return total;
            }
        }
    }
}

/// Reviews whatever is queued, then waits for the ingest stage's wake-up (or 30 s).
pub async fn review_loop(ctx: Ctx) {
    loop {
        review_all(&ctx).await;
        let wake = ctx.review_wake.clone();
        if !ctx.pause_or(Duration::from_secs(30), &wake).await {
            return;
        }
    }
}
