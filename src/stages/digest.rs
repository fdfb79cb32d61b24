//! The digest stage: at each scheduled occurrence, the digests of the period ending there — one
//! per distinct set of sources the destinations are routed (an MSSP's tenants each get their
//! own) — stored with their outbox entries and the schedule's mark in one transaction. The
//! figures themselves are [`crate::digest`]'s; this is the schedule and the I/O around them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Ctx;
use crate::attack::Catalog;
use crate::digest::schedule::{Due, Schedule};
use crate::digest::summary::FollowUpInfo;
use crate::digest::{Digest, Names, Period, RuleSeen, Settings, View, compute};
use crate::events::{DigestEnqueued, DigestFailed, Event};
use crate::notify::{Subscription, entries_for_digest};
use crate::outbox::DIGEST_EVENT;
use crate::review::DetectionInventory;
use crate::store::{DigestMark, Result, Store};

/// The scopes digests are made for: one per distinct `route.sources` of destinations that take them.
pub fn scopes(subscriptions: &[Subscription]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> =
        subscriptions.iter().filter(|s| s.route.takes(DIGEST_EVENT)).map(|s| s.route.scope()).collect();
    out.sort();
    out.dedup();
    out
}

/// Names from the catalog, follow-up texts from the store, coverage from the inventory files
/// and each source's deployed rules as last read.
struct StoreNames<'a> {
    catalog: &'a Catalog,
    store: &'a Store,
    files: Option<&'a dyn DetectionInventory>,
    /// Each source's deployed rules, read once per digest.
    deployed: std::sync::Mutex<std::collections::HashMap<String, Option<Deployed>>>,
}

/// A source's deployed rules as an inventory, and when they were read.
type Deployed = (crate::inventory::Inventory, DateTime<Utc>);

/// What a digest is computed against: the catalog for names, the inventory files (with each
/// source's deployed rules from the store) for whether a detection follow-up is verified.
#[derive(Clone, Copy)]
pub struct Against<'a> {
    pub catalog: &'a Catalog,
    pub files: Option<&'a dyn DetectionInventory>,
}

impl<'a> From<&'a Catalog> for Against<'a> {
    fn from(catalog: &'a Catalog) -> Self {
        Against { catalog, files: None }
    }
}

impl<'a> StoreNames<'a> {
    fn new(catalog: &'a Catalog, store: &'a Store, files: Option<&'a dyn DetectionInventory>) -> StoreNames<'a> {
        StoreNames { catalog, store, files, deployed: Default::default() }
    }
}

impl Names for StoreNames<'_> {
    fn technique(&self, id: &str) -> Option<String> {
        Names::technique(self.catalog, id)
    }
    fn tactic(&self, shortname: &str) -> Option<String> {
        self.catalog.tactic(shortname)
    }
    fn candidate(&self, id: &str) -> Option<(String, &'static str)> {
        self.catalog.candidate(id)
    }
    fn follow_up(&self, id: &str) -> Option<FollowUpInfo> {
        self.store.follow_up(id).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            None
        })
    }
    fn marked_done(&self, id: &str) -> Vec<crate::store::DoneMark> {
        self.store.done_marks(id).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            Vec::new()
        })
    }
    fn detection(&self, source: &str, technique: &str) -> Option<RuleSeen> {
        let mut deployed = self.deployed.lock().unwrap_or_else(|p| p.into_inner());
        let rules = deployed.entry(source.to_owned()).or_insert_with(|| {
            let record = self.store.deployed_rules(source).unwrap_or_else(|e| {
                tracing::warn!("{e}");
                None
            })?;
            let (inventory, _) = crate::inventory::Inventory::from_deployed(
                &record.rules,
                &record.sentinel,
                record.read_at,
                source,
                self.catalog,
            );
            Some((inventory, record.read_at))
        });
        if let Some((inventory, read_at)) = rules
            && let Some(rule) = DetectionInventory::rules(inventory, self.catalog, technique).into_iter().next()
        {
            return Some(RuleSeen { rule, seen_at: Some(*read_at) });
        }
        let rule = self.files?.rules(self.catalog, technique).into_iter().next()?;
        Some(RuleSeen { rule, seen_at: None })
    }
}

/// The digests of `period` for each scope, from the stored summaries (read once for all); a
/// detection follow-up is verified against the sources' deployed rules only.
pub fn for_period(
    store: &Store,
    catalog: &Catalog,
    scopes: &[Vec<String>],
    period: Period,
    settings: &Settings,
) -> Result<Vec<Digest>> {
    for_period_with(store, catalog, None, scopes, period, settings)
}

/// [`for_period`], verifying detection follow-ups against the inventory files too.
pub fn for_period_with(
    store: &Store,
    catalog: &Catalog,
    files: Option<&dyn DetectionInventory>,
    scopes: &[Vec<String>],
    period: Period,
    settings: &Settings,
) -> Result<Vec<Digest>> {
    // The trend reaches further back than the two periods compared.
    let trend_start = period.end - chrono::Duration::days(7 * crate::digest::TREND_WEEKS as i64);
    let records = read(store, period.previous().start.min(trend_start), period.end)?;
    let summaries = decode(store, &records)?;
    let names = StoreNames::new(catalog, store, files);
    Ok(scopes.iter().map(|scope| compute(&summaries, period, scope, settings, &names)).collect())
}

/// The machine's cores, at most 8: the threads a digest reads and decodes with.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
}

/// `work` on each of `parts`, one thread each, the results joined in the order of `parts`.
fn on_threads<P: Sync, T: Send>(
    store: &Store,
    parts: &[P],
    work: impl Fn(&P) -> Result<Vec<T>> + Sync,
) -> Result<Vec<T>> {
    let work = &work;
    let done: Vec<Result<Vec<T>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts.iter().map(|part| scope.spawn(move || work(part))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(store.corrupt_summary(b"", "a digest thread panicked"))))
            .collect()
    });
    let mut out = Vec::new();
    for part in done {
        out.extend(part?);
    }
    Ok(out)
}

/// The summaries of `[start, end)` as stored, oldest first, read in as many slices of time as
/// the machine has cores, one thread each: reading 100,000 records out of sled is a third of a
/// digest's time, and it is work for the processor (the store is in memory), not for the disk.
fn read(store: &Store, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<(sled::IVec, sled::IVec)>> {
    let threads = cores();
    if threads == 1 || end <= start {
        return store.summary_records_between(start, end);
    }
    let slice = (end - start) / threads as i32;
    let bounds: Vec<(DateTime<Utc>, DateTime<Utc>)> = (0..threads)
        .map(|i| {
            let from = start + slice * i as i32;
            (from, if i + 1 == threads { end } else { from + slice })
        })
        .collect();
    on_threads(store, &bounds, |&(a, b)| store.summary_records_between(a, b))
}

/// Decodes summaries borrowed from their stored bytes, spread over the machine's cores: the
/// decoding is most of a digest's time.
fn decode<'a>(store: &Store, records: &'a [(sled::IVec, sled::IVec)]) -> Result<Vec<View<'a>>> {
    let one = |part: &&'a [(sled::IVec, sled::IVec)]| -> Result<Vec<View<'a>>> {
        part.iter()
            .map(|(k, v)| crate::digest::summary::from_stored(v).map_err(|e| store.corrupt_summary(k, e)))
            .collect()
    };
    let chunk = records.len().div_ceil(cores()).max(2048);
    if records.len() <= chunk {
        return one(&records);
    }
    let parts: Vec<&'a [(sled::IVec, sled::IVec)]> = records.chunks(chunk).collect();
    on_threads(store, &parts, one)
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
    against: Against<'_>,
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
    let digests = for_period_with(store, against.catalog, against.files, &scopes(subscriptions), period, settings)?;
    let entries: Vec<_> = digests.iter().flat_map(|d| entries_for_digest(d, subscriptions, now)).collect();
    let mark = DigestMark { last: occurrence, sent: mark.sent + 1 };
    store.record_digests(&digests, &entries, Some(&mark))?;
    DigestEnqueued { occurrence, digests: digests.len(), notifications: entries.len(), late_by: now - occurrence }
        .emit();
    Ok(Tick::Sent { occurrence, digests: digests.len(), notifications: entries.len() })
}

/// One look at the digest schedule; returns the next occurrence.
pub fn digest_once(ctx: &Ctx, schedule: &Schedule) -> Option<DateTime<Utc>> {
    let settings = Settings {
        top: ctx.cfg.digest.top,
        attack_domain: ctx.engine.catalog.meta().domain.clone(),
        attack_version: ctx.engine.catalog.meta().attack_version.clone(),
        shard: ctx.shard.map(|s| s.to_string()),
    };
    let period = chrono::Duration::from_std(ctx.cfg.digest.period).unwrap_or(chrono::Duration::days(7));
    let now = ctx.clock.now();
    let against = Against { catalog: &ctx.engine.catalog, files: ctx.engine.inventory.as_deref() };
    let next = match tick(&ctx.store, against, schedule, &ctx.subscriptions, period, &settings, now) {
        Ok(Tick::Started { next }) | Ok(Tick::Waiting { next }) => next,
        Ok(Tick::Sent { .. }) => {
            ctx.deliver_wake.notify_one();
            schedule.next_after(now)
        }
        Err(e) => {
            DigestFailed { error: &e }.emit();
            ctx.store_failed(&e);
            Some(now + chrono::Duration::seconds(60))
        }
    };
    ctx.health.set_next_digest(next);
    next
}

/// Looks at the schedule again at the next occurrence, and at least every minute: the wall
/// clock may jump (suspend, NTP) and a sleep does not notice.
pub async fn digest_loop(ctx: Ctx, schedule: Schedule) {
    loop {
        let next = digest_once(&ctx, &schedule);
        let now = ctx.clock.now();
        let wait = next
            .and_then(|n| (n - now).to_std().ok())
            .unwrap_or(Duration::from_secs(60))
            .clamp(Duration::from_millis(100), Duration::from_secs(60));
        if !ctx.pause(wait).await {
            return;
        }
    }
}
