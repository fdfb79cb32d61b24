//! The digest job: at each scheduled occurrence, the digests of the period ending there — one per
//! distinct set of sources the destinations are routed (an MSSP's tenants each get their own) —
//! stored with their outbox entries and the schedule's mark in one transaction.

use chrono::{DateTime, Utc};

use super::schedule::{Due, Schedule};
use super::{Digest, Period, Settings, compute};
use crate::notify::{DIGEST_EVENT, Subscription, entries_for_digest};
use crate::store::{DigestMark, Result, Store};

/// The scopes digests are made for: one per distinct `route.sources` of destinations that take them.
pub fn scopes(subscriptions: &[Subscription]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> =
        subscriptions.iter().filter(|s| s.route.takes(DIGEST_EVENT)).map(|s| s.route.scope()).collect();
    out.sort();
    out.dedup();
    out
}

/// The digests of `period` for each scope, from the stored summaries.
pub fn for_period(store: &Store, scopes: &[Vec<String>], period: Period, settings: &Settings) -> Result<Vec<Digest>> {
    let summaries = store.summaries_between(period.previous().start, period.end)?;
    Ok(scopes.iter().map(|scope| compute(&summaries, period, scope, settings)).collect())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// The daemon's first start: nothing before now was missed.
    Started {
        next: Option<DateTime<Utc>>,
    },
    /// Digests for this occurrence were enqueued.
    Sent {
        occurrence: DateTime<Utc>,
        digests: usize,
        notifications: usize,
    },
    Waiting {
        next: Option<DateTime<Utc>>,
    },
}

/// Does what the schedule asks at `now`: on the first start, remembers it; when an occurrence
/// has passed since the last digest, enqueues the digests of the latest one (once, however many
/// were missed).
pub fn tick(
    store: &Store,
    schedule: &Schedule,
    subscriptions: &[Subscription],
    period_length: chrono::Duration,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Tick> {
    let Some(mark) = store.digest_mark()? else {
        store.set_digest_mark(&DigestMark { last: now, sent: 0 })?;
        return Ok(Tick::Started { next: schedule.next_after(now) });
    };
    let occurrence = match schedule.due(mark.last, now) {
        Due::Wait(next) => return Ok(Tick::Waiting { next }),
        Due::Send(o) => o,
    };
    let period = Period::ending(occurrence, period_length);
    let digests = for_period(store, &scopes(subscriptions), period, settings)?;
    let entries: Vec<_> = digests.iter().flat_map(|d| entries_for_digest(d, subscriptions, now)).collect();
    let mark = DigestMark { last: occurrence, sent: mark.sent + 1 };
    store.record_digests(&digests, &entries, Some(&mark))?;
    metrics::counter!("hindsight_digests_total").increment(1);
    tracing::info!(
        occurrence = %occurrence,
        digests = digests.len(),
        notifications = entries.len(),
        late_by_s = (now - occurrence).num_seconds(),
        "digest enqueued"
    );
    Ok(Tick::Sent { occurrence, digests: digests.len(), notifications: entries.len() })
}
