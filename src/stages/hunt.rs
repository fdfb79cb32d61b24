//! The hunt stage: runs the blind stages' hunts of each queued review in its tenant (Graph
//! sources with `hunts = true`), within the source's budgets, then amends the review with what
//! they found and announces it (`review.hunted`) to the destinations that ask for it.
//!
//! Budgets, because the tenant's hunting quota is shared with its analysts: at most
//! `hunts_per_incident` queries per review and `hunts_per_hour` per source, one query at a time
//! per source. A 429 pauses the source until the time the service names; the review stays
//! queued with the results it has, and the rest run later — until the data they look at is
//! past advanced hunting's 30 days, when they are recorded as not run for that reason. A query
//! that cannot run says why; none is ever reported as clean.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Ctx;
use crate::events::{Event, HuntRan, ReviewHunted};
use crate::notify::Subscription;
use crate::review::model::HuntResult;
use crate::review::retro_hunts::{self, Planned};
use crate::source::graph::hunting::{HuntAnswer, HuntRunner};
use crate::store::Store;

/// One source's hunting: its runner and budgets, and what it spent.
pub struct Hunter {
    pub runner: HuntRunner,
    pub per_incident: usize,
    pub per_hour: usize,
    spent: Mutex<Spent>,
}

#[derive(Default)]
struct Spent {
    /// When each query of the last hour was sent.
    recent: VecDeque<DateTime<Utc>>,
    /// After a 429: no query before this.
    paused_until: Option<DateTime<Utc>>,
}

impl Hunter {
    pub fn new(runner: HuntRunner, per_incident: usize, per_hour: usize) -> Hunter {
        Hunter { runner, per_incident, per_hour, spent: Mutex::default() }
    }

    fn spent(&self) -> std::sync::MutexGuard<'_, Spent> {
        self.spent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a query may be sent at `now`.
    fn may_run(&self, now: DateTime<Utc>) -> bool {
        let mut s = self.spent();
        while s.recent.front().is_some_and(|t| now - *t >= chrono::Duration::hours(1)) {
            s.recent.pop_front();
        }
        s.paused_until.is_none_or(|t| now >= t) && s.recent.len() < self.per_hour
    }

    fn sent(&self, now: DateTime<Utc>) {
        self.spent().recent.push_back(now);
    }

    fn pause(&self, until: DateTime<Utc>) {
        self.spent().paused_until = Some(until);
    }
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HuntPass {
    pub queries: usize,
    pub amended: usize,
}

/// Runs what the budgets allow of every queued review's hunts; amends the reviews whose hunts
/// are all done.
pub async fn hunt_queued(
    store: &Store,
    hunters: &[Arc<Hunter>],
    subscriptions: &[Subscription],
    clock: &dyn crate::clock::Clock,
) -> crate::store::Result<HuntPass> {
    let now = || clock.now();
    let mut pass = HuntPass::default();
    // While every source's budget is spent or paused, the queued reviews are not read at all.
    if !hunters.iter().any(|h| h.may_run(now())) {
        return Ok(pass);
    }
    for k in store.hunts_queued()? {
        let Some(review) = store.review(&k)? else {
            store.drop_hunts(&k)?;
            continue;
        };
        let source = review.incident.source.clone();
        let Some(hunter) = hunters.iter().find(|h| h.runner.source() == source) else {
            // The source no longer hunts (its `hunts` was turned off).
            store.drop_hunts(&k)?;
            continue;
        };
        let planned = retro_hunts::plan(&review, hunter.per_incident);
        let mut results = store.hunt_progress(&k)?;
        // The plan of a stored review does not change; results are kept in its order.
        for p in planned.iter().skip(results.len()) {
            let Some(result) = hunt_one(hunter, &review, p, now()).await else { break };
            pass.queries += usize::from(result.timespan.is_some());
            HuntRan {
                source: &source,
                incident_id: &review.incident.id,
                hunt: &result.id,
                outcome: result.reason.as_deref().unwrap_or(&result.status),
                rows: result.rows,
                detail: result.detail.as_deref(),
            }
            .emit();
            results.push(result);
            store.save_hunt_progress(&k, &results).await?;
        }
        if results.len() >= planned.len() {
            let amended = retro_hunts::amend(&review, results, now());
            let entries = crate::notify::entries_for_hunted(&k, &amended, subscriptions, now());
            if store.record_hunted(&k, &amended, &entries)? {
                pass.amended += 1;
                let r = amended.retro_hunts.as_ref();
                ReviewHunted {
                    source: &source,
                    incident_id: &review.incident.id,
                    ran: r.map_or(0, |r| r.ran),
                    with_hits: r.map_or(0, |r| r.with_hits),
                    notifications: entries.len(),
                }
                .emit();
            }
        }
    }
    Ok(pass)
}

/// One hunt's result, or `None` when it must wait (the source's budget is spent or paused).
async fn hunt_one(
    hunter: &Hunter,
    review: &crate::review::Review,
    p: &Planned,
    now: DateTime<Utc>,
) -> Option<HuntResult> {
    let Some(window) = &review.gaps.hunt_window else {
        return Some(retro_hunts::not_run(
            p,
            "failed",
            Some("the incident has no recorded activity to hunt around".into()),
        ));
    };
    let timespan = match retro_hunts::timespan(window, now) {
        Ok(t) => t,
        Err(why) => return Some(retro_hunts::not_run(p, "retention", Some(why))),
    };
    if !hunter.may_run(now) {
        return None;
    }
    hunter.sent(now);
    match hunter.runner.run(&p.hunt.kql, &timespan).await {
        HuntAnswer::Rows { columns, rows } => Some(retro_hunts::ran(p, timespan, columns, &rows)),
        HuntAnswer::NotRun { reason: "quota", retry_after, .. } => {
            let wait = retry_after.unwrap_or(Duration::from_secs(60));
            hunter.pause(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::minutes(1)));
            tracing::warn!(source = %hunter.runner.source(), wait_s = wait.as_secs(), "the tenant's hunting quota is spent; hunts wait");
            None
        }
        HuntAnswer::NotRun { reason, detail, .. } => {
            Some(HuntResult { timespan: Some(timespan), ..retro_hunts::not_run(p, reason, Some(detail)) })
        }
    }
}

/// Hunts what is queued, then waits for the review stage's wake-up (or a minute).
pub async fn hunt_loop(ctx: Ctx, hunters: Arc<Vec<Arc<Hunter>>>) {
    loop {
        match hunt_queued(&ctx.store, &hunters, &ctx.subscriptions, &*ctx.clock).await {
            Ok(p) if p.amended > 0 => ctx.deliver_wake.notify_one(),
            Ok(_) => {}
            Err(e) => ctx.store_failed(&e),
        }
        if !ctx.pause_or(Duration::from_secs(60), &ctx.hunt_wake).await {
            return;
        }
    }
}
