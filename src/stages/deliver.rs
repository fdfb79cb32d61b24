//! The deliver stage: sends what is due in the outbox through each destination's sink, at most
//! `delivery.concurrency` at once, and only then records each outcome, so a crash between the
//! two repeats a delivery (with the same `webhook-id`), never loses one. Failed attempts are
//! retried on the [`RetryPolicy`]'s schedule, honouring `Retry-After`; after the retry budget
//! an entry is dead-lettered and says why.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Ctx;
use super::health::OutboxCounts;
use crate::events::{DeadLettered, Delivered, DeliveryPassEnded, Event, Orphaned, RetryScheduled, TaskPanicked};
use crate::notify::{DeliveryError, Destination};
use crate::outbox::{EntryState, OutboxEntry, Payload, RetryPolicy};
use crate::store::{ResolutionKey, Store, StoreError};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryPass {
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
    /// Entries for a destination that is no longer configured (left pending, reported).
    pub orphaned: usize,
    /// Per destination tried in this pass: `None` when at least one attempt went through,
    /// otherwise the last failure (what `/readyz` reports of a destination that is down).
    pub outcomes: BTreeMap<String, Option<String>>,
}

/// What a delivery task did with its entry.
enum Attempted {
    /// The daemon was stopping before a permit came: nothing sent, the entry stays as it was.
    Stopped,
    /// Its review or digest is not in the store: it can never be sent.
    Unsendable(String),
    Sent(Result<(), DeliveryError>),
}

/// What `entry` carries, typed: from its body when it was written with it, else joined from
/// the store. `Err` says why it cannot be sent.
fn payload(store: &Store, entry: &OutboxEntry) -> crate::store::Result<Result<Payload, String>> {
    if let Some(inline) = Payload::in_body(entry) {
        return Ok(inline);
    }
    if let Some(id) = &entry.digest {
        return Ok(match store.digest(id)? {
            Some(d) => Ok(Payload::Digest(Box::new(d))),
            None => Err(format!("the digest {id} this notification carries is not in the store")),
        });
    }
    let key = ResolutionKey::new(&entry.source, &entry.incident_id, entry.revision);
    Ok(match store.review(&key)? {
        Some(review) => Ok(Payload::Review(Box::new(review))),
        None => Err("the review this notification carries is not in the store".to_owned()),
    })
}

/// Delivers every due entry, at most `concurrency` at once, and records each outcome durably.
pub async fn deliver_due(
    store: &Store,
    destinations: &[Destination],
    policy: &RetryPolicy,
    concurrency: usize,
    now: DateTime<Utc>,
) -> crate::store::Result<DeliveryPass> {
    deliver_due_until(store, destinations, policy, concurrency, now, &CancellationToken::new()).await
}

/// [`deliver_due`], starting no new attempt once `stop` is cancelled: attempts under way are
/// finished and recorded, the entries not yet tried stay pending as they were.
pub async fn deliver_due_until(
    store: &Store,
    destinations: &[Destination],
    policy: &RetryPolicy,
    concurrency: usize,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> crate::store::Result<DeliveryPass> {
    let mut pass = DeliveryPass::default();
    let due = store.outbox_due(now)?;
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    // Which entry each task holds, to name it if the task panics.
    let mut held = std::collections::HashMap::new();
    for entry in due {
        let Some(dest) = destinations.iter().find(|d| d.name == entry.destination) else {
            pass.orphaned += 1;
            Orphaned { destination: &entry.destination, id: &entry.id }.emit();
            continue;
        };
        let span = tracing::info_span!("deliver", destination = %entry.destination, id = %entry.id, incident_id = %entry.incident_id);
        let (id, sink, permit) = (entry.id.clone(), dest.sink.clone(), semaphore.clone().acquire_owned());
        let (stop, store) = (stop.clone(), store.clone());
        let task = tasks.spawn(
            async move {
                let _permit = tokio::select! {
                    biased;
                    _ = stop.cancelled() => return Ok((entry, Attempted::Stopped)),
                    p = permit => p,
                };
                // The review is joined only once a permit is held: at most `concurrency` full
                // reviews are in memory, not one per due entry (a backlog of 10,000 held them
                // all, about 1.5 GB). The stored entry keeps its slim envelope.
                let payload = match payload(&store, &entry)? {
                    Ok(p) => p,
                    Err(reason) => return Ok((entry, Attempted::Unsendable(reason))),
                };
                let result = sink.deliver(&entry, &payload, now).await;
                Ok::<_, StoreError>((entry, Attempted::Sent(result)))
            }
            .instrument(span),
        );
        held.insert(task.id(), id);
    }
    while let Some(joined) = tasks.join_next_with_id().await {
        let (entry, result) = match joined {
            Ok((_, done)) => match done? {
                (_, Attempted::Stopped) => continue,
                (e, Attempted::Unsendable(reason)) => {
                    dead_letter(e, reason, now, store, &mut pass)?;
                    continue;
                }
                (e, Attempted::Sent(result)) => (e, result),
            },
            Err(e) => {
                // The task took its entry with it: read it again and count the panic as a
                // failed attempt, so that an entry that always panics its sink ends as a dead
                // letter instead of being tried for ever.
                let id = held.get(&e.id()).cloned().unwrap_or_default();
                TaskPanicked { stage: "deliver", what: &format!("the delivery of {id}"), error: &e }.emit();
                match store.outbox_entry(&id)? {
                    Some(entry) if entry.state == EntryState::Pending => {
                        let reason = format!("the delivery panicked: {e}");
                        (entry, Err(DeliveryError::Retry { after: None, reason }))
                    }
                    _ => continue,
                }
            }
        };
        record(entry, result, now, policy, store, &mut pass)?;
    }
    store.flush_async().await?;
    Ok(pass)
}

/// Records one attempt's outcome.
fn record(
    mut entry: OutboxEntry,
    result: Result<(), DeliveryError>,
    now: DateTime<Utc>,
    policy: &RetryPolicy,
    store: &Store,
    pass: &mut DeliveryPass,
) -> crate::store::Result<()> {
    entry.attempts += 1;
    let outcome = pass.outcomes.entry(entry.destination.clone()).or_insert_with(|| Some(String::new()));
    match &result {
        Ok(()) => *outcome = None,
        Err(DeliveryError::Permanent { reason } | DeliveryError::Retry { reason, .. }) => {
            if outcome.is_some() {
                *outcome = Some(reason.clone());
            }
        }
    }
    entry.not_before = None;
    match result {
        Ok(()) => {
            entry.state = EntryState::Delivered { at: now };
            entry.last_error = None;
            pass.delivered += 1;
            Delivered { destination: &entry.destination, id: &entry.id, attempts: entry.attempts }.emit();
        }
        Err(DeliveryError::Permanent { reason }) => return dead_letter(entry, reason, now, store, pass),
        Err(DeliveryError::Retry { after, reason }) => {
            let age = (now - entry.created_at).to_std().unwrap_or_default();
            let Some(delay) = policy.next_delay(entry.attempts, age, after) else {
                let reason = format!("retry budget spent after {} attempts; last: {reason}", entry.attempts);
                return dead_letter(entry, reason, now, store, pass);
            };
            let delay_at = chrono::Duration::from_std(delay).unwrap_or_default();
            entry.next_attempt_at = now + delay_at;
            // The receiver's own word on when to come back: a destination that answers
            // again must not bring this entry forward past it (see `expedite_outbox`).
            entry.not_before = after.map(|_| now + delay_at);
            RetryScheduled {
                destination: &entry.destination,
                id: &entry.id,
                attempts: entry.attempts,
                delay,
                reason: &reason,
            }
            .emit();
            entry.last_error = Some(reason);
            pass.retried += 1;
        }
    }
    store.update_outbox(&entry)
}

fn dead_letter(
    mut entry: OutboxEntry,
    reason: String,
    now: DateTime<Utc>,
    store: &Store,
    pass: &mut DeliveryPass,
) -> crate::store::Result<()> {
    DeadLettered { destination: &entry.destination, id: &entry.id, reason: &reason }.emit();
    entry.state = EntryState::Dead { at: now, reason: reason.clone() };
    entry.last_error = Some(reason);
    pass.dead += 1;
    store.update_outbox(&entry)
}

/// One delivery pass; returns whether anything was attempted.
pub async fn deliver_once(ctx: &Ctx) -> bool {
    ctx.health.busy("deliver", ctx.clock.now());
    let result = deliver_due_until(
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
    let mut by: BTreeMap<(String, &'static str), usize> = Default::default();
    for d in ctx.destinations.iter() {
        for state in EntryState::LABELS {
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

/// Delivers what is due, then waits for the review or digest stage's wake-up (or
/// `daemon.outbox_interval`).
pub async fn deliver_loop(ctx: Ctx) {
    loop {
        deliver_once(&ctx).await;
        DeliveryPassEnded.emit();
        // The store keeps the counts (one read of the outbox at the first pass), so this is
        // cheap after every pass, including those in which reviews added entries.
        count_outbox(&ctx);
        let wake = ctx.deliver_wake.clone();
        if !ctx.pause_or(ctx.cfg.daemon.outbox_interval, &wake).await {
            return;
        }
    }
}
