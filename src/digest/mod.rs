//! The digest: the trends of a period (by default the last 7 days, against the 7 before) over
//! the stored reviews. Like the review it is a pure function — of the period's review
//! [`Summary`]s — so it is deterministic, testable and cheap; [`schedule`] decides when one is
//! due, the store keeps it, and the outbox delivers it through the same sinks as reviews.
//!
//! Counting rules, so that figures mean one thing:
//! - An incident counts once per period, as its latest revision resolved in the period.
//! - A review belongs to the period its incident was resolved in.
//! - False positives and expected activity count in the incident figures but stay out of the
//!   technique, tactic, gap and attribution figures: they were no attack.
//! - "Open follow-ups" are those the period's reviews raised, de-duplicated by their stable ID
//!   and ranked by priority and by how many incidents raised them. Hindsight does not see a
//!   ticket system, so it cannot know which were done; a follow-up that stops being raised
//!   drops out of the next digest.

pub mod render;
pub mod schedule;
pub mod summary;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};

// The counting maps are keyed by IDs from our own reviews and hashed millions of times per
// digest: foldhash is several times faster than the standard SipHash on such short keys.
use foldhash::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use summary::Summary;

/// A summary as the digest reads it: borrowed from the stored bytes.
pub type View<'a> = Summary<summary::Text<'a>>;

use crate::review::Priority;
use crate::review::navigator::{Layer, LayerTechnique, Layout, NameValue, Versions};

pub const SCHEMA_VERSION: u32 = 1;

/// How many entries each ranked list keeps.
pub const DEFAULT_TOP: usize = 10;

/// A half-open interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    /// The `length` up to `end`.
    pub fn ending(end: DateTime<Utc>, length: chrono::Duration) -> Period {
        Period { start: end - length, end }
    }
    /// The period of the same length just before this one.
    pub fn previous(&self) -> Period {
        Period { start: self.start - (self.end - self.start), end: self.start }
    }
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    pub schema_version: u32,
    /// Stable for a (scope, period): a digest computed twice for the same period has one id.
    pub id: String,
    /// The sources (tenants) the digest covers; empty = all (all of `shard`'s, with one).
    pub scope: Vec<String>,
    /// The replica's share of the sources (`daemon.shard`, "i/n") when several split them:
    /// each shard's digest covers the sources it polls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub period: Period,
    pub previous_period: Period,
    pub incidents: Counts,
    pub previous_incidents: Counts,
    pub time_to_detect: Percentiles,
    pub time_to_resolve: Percentiles,
    pub previous_time_to_detect: Percentiles,
    pub previous_time_to_resolve: Percentiles,
    /// First alert → first recorded human action (absent in digests stored before it).
    #[serde(default)]
    pub time_to_acknowledge: Percentiles,
    #[serde(default)]
    pub previous_time_to_acknowledge: Percentiles,
    /// The period's times per classification (true positive, false positive, …): a median
    /// over false positives says nothing about attacks.
    #[serde(default)]
    pub times_by_classification: Vec<ClassTimes>,
    /// Week by week up to the period's end ([`TREND_WEEKS`] weeks, oldest first): incidents and
    /// blind stages, the shape a team lead looks for.
    #[serde(default)]
    pub trend: Vec<Week>,
    pub top_tactics: Vec<Ranked>,
    pub top_techniques: Vec<Ranked>,
    pub rising: Vec<Ranked>,
    pub falling: Vec<Ranked>,
    pub new_techniques: Vec<NewTechnique>,
    pub recurring_gaps: Vec<RecurringGap>,
    pub attribution: Vec<AttributionTrend>,
    pub attribution_note: String,
    pub follow_ups: Vec<OpenFollowUp>,
    /// ATT&CK Navigator layer (4.5): every technique of the period scored by its incidents.
    pub layer: Layer,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub total: usize,
    /// False positives and expected activity among them.
    pub benign: usize,
    pub by_severity: BTreeMap<String, usize>,
    pub by_classification: BTreeMap<String, usize>,
    pub by_determination: BTreeMap<String, usize>,
    pub by_source: BTreeMap<String, usize>,
}

/// Median and 90th percentile (linear interpolation between closest ranks), in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub samples: usize,
    pub median_s: Option<i64>,
    pub p90_s: Option<i64>,
}

/// The times of the period's incidents of one classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassTimes {
    pub classification: String,
    pub incidents: usize,
    pub time_to_detect: Percentiles,
    pub time_to_acknowledge: Percentiles,
    pub time_to_resolve: Percentiles,
}

/// One week of the trend, `[start, start + 7 days)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Week {
    pub start: DateTime<Utc>,
    pub incidents: usize,
    /// Incidents that were attacks (not false positives or expected activity).
    pub attacks: usize,
    /// Attacks with at least one blind stage.
    pub with_blind_stages: usize,
    /// Blind stages over all the week's attacks.
    pub blind_stages: usize,
}

/// How many weeks the trend shows.
pub const TREND_WEEKS: usize = 12;

/// A technique or tactic with the incidents of this period and of the one before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    pub id: String,
    pub name: String,
    pub incidents: usize,
    pub previous: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTechnique {
    pub id: String,
    pub name: String,
    pub source: String,
    /// The incident that brought it.
    pub incident_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecurringGap {
    /// `uncovered` (a technique the detection inventory misses) or `blind_stage` (a tactic).
    pub kind: String,
    pub id: String,
    pub name: String,
    pub incidents: usize,
    pub previous: usize,
    /// Up to five incidents of the period with this gap, `source/id`.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionTrend {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// Incidents that had it among their three best candidates.
    pub incidents: usize,
    /// Incidents that had it as their best candidate.
    pub first: usize,
    pub best_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenFollowUp {
    pub id: String,
    pub kind: String,
    pub priority: Priority,
    pub title: String,
    pub incidents: usize,
    /// Also raised in the period before.
    pub recurring: bool,
    pub examples: Vec<String>,
    /// When the incident that first raised it was resolved (where its due date counts from);
    /// its age is counted from this to the period's end.
    #[serde(default)]
    pub first_raised: Option<DateTime<Utc>>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub due: Option<chrono::NaiveDate>,
    /// `verified` (it asked for a detection, and an enabled rule of the inventory — the
    /// tenant's or the files — now covers it), `done` (an analyst marked it done with a comment
    /// `done FU-…` on an incident that raised it; for a detection, the rule is not seen yet),
    /// `overdue` (past its due date at the period's end, neither) or `open`.
    #[serde(default = "open_state")]
    pub state: String,
    /// When it was marked done, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<DateTime<Utc>>,
    /// The rule that verifies it, and when that rule was read from the tenant (null for a rule
    /// of the inventory files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<RuleSeen>,
}

fn open_state() -> String {
    "open".into()
}

/// A rule that covers a technique now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSeen {
    pub rule: String,
    /// When the tenant's rules it is among were read; null for the inventory files.
    pub seen_at: Option<DateTime<Utc>>,
}

pub const ATTRIBUTION_NOTE: &str = "Hypotheses, not verdicts: how often each group or campaign was among an incident's three closest technique matches.";

/// What a digest is computed over besides the summaries.
#[derive(Debug, Clone)]
pub struct Settings {
    pub top: usize,
    pub attack_domain: String,
    pub attack_version: Option<String>,
    /// `daemon.shard` ("i/n"), when this replica polls only its share of the sources.
    pub shard: Option<String>,
}

/// Where the digest takes names and texts from: the catalog for techniques, tactics, groups
/// and campaigns, the store for follow-up texts. Summaries keep IDs only.
pub trait Names {
    fn technique(&self, id: &str) -> Option<String>;
    fn tactic(&self, shortname: &str) -> Option<String>;
    /// Name and kind (`group`, `campaign`).
    fn candidate(&self, id: &str) -> Option<(String, &'static str)>;
    fn follow_up(&self, id: &str) -> Option<summary::FollowUpInfo>;
    /// An enabled rule that covers `technique` for `source` now (its deployed rules layered
    /// over the inventory files); `None` without one or without an inventory.
    fn detection(&self, _source: &str, _technique: &str) -> Option<RuleSeen> {
        None
    }
    /// The incidents on which an analyst marked follow-up `id` done (their latest snapshots'
    /// comments: `done FU-…`), and when.
    fn marked_done(&self, _id: &str) -> Vec<crate::store::DoneMark> {
        Vec::new()
    }
}

impl Names for crate::attack::Catalog {
    fn technique(&self, id: &str) -> Option<String> {
        crate::attack::Catalog::technique(self, id).map(|t| t.name.clone())
    }
    fn tactic(&self, shortname: &str) -> Option<String> {
        self.tactics().iter().find(|t| t.shortname == shortname).map(|t| t.name.clone())
    }
    fn candidate(&self, id: &str) -> Option<(String, &'static str)> {
        self.group(id)
            .map(|g| (g.name.clone(), "group"))
            .or_else(|| self.campaign(id).map(|c| (c.name.clone(), "campaign")))
    }
    fn follow_up(&self, _id: &str) -> Option<summary::FollowUpInfo> {
        None
    }
}

/// The id of the digest of `scope` for the period ending at `end`. A shard's digest of "all
/// sources" covers other sources than another shard's: the shard is part of its id, or a
/// receiver that de-duplicates on it would drop all but one.
pub fn digest_id(scope: &[String], end: DateTime<Utc>, shard: Option<&str>) -> String {
    let mut text = format!("{}\0{}", scope.join(","), end.timestamp_millis());
    if let Some(shard) = shard {
        text.push_str(&format!("\0shard {shard}"));
    }
    let h = Sha256::digest(text.as_bytes());
    format!("dg_{}", h.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>())
}

/// The scope as a reader sees it: the sources named, "all sources", or a shard's.
pub fn scope_text(scope: &[String], shard: Option<&str>) -> String {
    match (scope.is_empty(), shard) {
        (false, _) => scope.join(", "),
        (true, None) => "all sources".to_owned(),
        (true, Some(shard)) => format!("all sources of shard {shard}"),
    }
}

/// Keeps the latest revision of each incident, and only the sources of `scope` (empty = all),
/// by resolution time, in the order they came (the store's, by resolution time).
fn latest<'a>(summaries: impl Iterator<Item = &'a View<'a>>, scope: &[String]) -> Vec<&'a View<'a>> {
    let in_scope: Vec<&View> =
        summaries.filter(|s| scope.is_empty() || scope.iter().any(|x| x.as_str() == &*s.source)).collect();
    // Per incident: the position of its latest revision.
    let mut by: HashMap<(&str, &str), usize> = HashMap::with_capacity_and_hasher(in_scope.len(), Default::default());
    for (i, s) in in_scope.iter().enumerate() {
        let slot = by.entry((&*s.source, &*s.incident_id)).or_insert(i);
        if s.revision > in_scope[*slot].revision {
            *slot = i;
        }
    }
    let mut keep = vec![false; in_scope.len()];
    for i in by.into_values() {
        keep[i] = true;
    }
    let mut out: Vec<&View> = in_scope.into_iter().zip(keep).filter(|(_, k)| *k).map(|(s, _)| s).collect();
    out.sort_by(|a, b| (a.resolved, &a.source, &a.incident_id).cmp(&(b.resolved, &b.source, &b.incident_id)));
    out
}

/// What the digest counts in one period: computed for the period and the one before at once.
struct Side<'a> {
    /// The latest revision of each incident resolved in the period.
    all: Vec<&'a View<'a>>,
    /// Those that were not false positives.
    attacks: Vec<&'a View<'a>>,
    techniques: HashMap<&'a str, usize>,
    tactics: HashMap<&'a str, usize>,
    uncovered: HashMap<&'a str, usize>,
    blind_stages: HashMap<&'a str, usize>,
    counts: Counts,
    time_to_detect: Percentiles,
    time_to_resolve: Percentiles,
    time_to_acknowledge: Percentiles,
}

impl<'a> Side<'a> {
    fn of(all: Vec<&'a View<'a>>) -> Side<'a> {
        let attacks = attacks(&all);
        Side {
            techniques: tally(&attacks, |s| &s.techniques),
            tactics: tally(&attacks, |s| &s.tactics),
            uncovered: tally(&attacks, |s| &s.uncovered),
            blind_stages: tally(&attacks, |s| &s.blind_stages),
            counts: counts(&all),
            time_to_detect: percentiles(all.iter().filter_map(|s| s.time_to_detect_s)),
            time_to_resolve: percentiles(all.iter().filter_map(|s| s.time_to_resolve_s)),
            time_to_acknowledge: percentiles(all.iter().filter_map(|s| s.time_to_acknowledge_s)),
            attacks,
            all,
        }
    }

    fn gaps(&self, kind: &str) -> &HashMap<&'a str, usize> {
        if kind == "uncovered" { &self.uncovered } else { &self.blind_stages }
    }
}

/// Runs `a` here and `b` on another thread, at once: a digest over 100,000 reviews is two
/// periods' worth of independent counting (issue 27's target is 300 ms on two cores).
fn both<A, B: Send>(a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(b);
        let here = a();
        (here, other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// The digest of `period` (compared with the period before it) over `summaries`, which may hold
/// more than both periods: what is outside them is ignored.
pub fn compute(
    summaries: &[View<'_>],
    period: Period,
    scope: &[String],
    settings: &Settings,
    names: &dyn Names,
) -> Digest {
    let previous_period = period.previous();
    let weeks = Weeks::of(summaries, period.end, scope);
    // A weekly digest's two periods are the trend's last two weeks, already counted.
    let latest_of = |p: Period| {
        weeks.period(p).unwrap_or_else(|| latest(summaries.iter().filter(|s| p.contains(s.resolved)), scope))
    };
    let current = latest_of(period);
    let top = settings.top;
    let technique_name = |id: &str| names.technique(id).unwrap_or_else(|| id.to_owned());
    let tactic_name = |id: &str| names.tactic(id).unwrap_or_else(|| id.to_owned());
    // What needs only this period (the ranked lists' own parts) is worked out beside the
    // period before and the ranking of follow-ups.
    let ((cur, times_by_classification, new_techniques, attribution), prev) = both(
        || {
            let cur = Side::of(current.clone());
            let times = times_by_classification(&cur.all);
            let new = new_techniques(&cur.attacks, top * 3, &technique_name);
            let attribution = attribution(&cur.attacks, top, names);
            (cur, times, new, attribution)
        },
        || (Side::of(latest_of(previous_period)), rank_follow_ups(&current, top * 2)),
    );
    let (prev, listed_follow_ups) = prev;

    let all_techniques = ranked(&cur.techniques, &prev.techniques);
    let mut top_techniques: Vec<&(&str, usize, usize)> = all_techniques.iter().filter(|r| r.1 > 0).collect();
    top_techniques.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let layer = heat_map(&top_techniques, period, scope, settings, &technique_name);
    let named = |items: &[&(&str, usize, usize)], name: &dyn Fn(&str) -> String| -> Vec<Ranked> {
        items
            .iter()
            .take(top)
            .map(|(id, n, p)| Ranked { id: (*id).to_owned(), name: name(id), incidents: *n, previous: *p })
            .collect()
    };
    let all_tactics = ranked(&cur.tactics, &prev.tactics);
    let mut top_tactics: Vec<&(&str, usize, usize)> = all_tactics.iter().filter(|r| r.1 > 0).collect();
    top_tactics.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let change = |r: &(&str, usize, usize)| r.1 as i64 - r.2 as i64;
    let mut rising: Vec<&(&str, usize, usize)> = all_techniques.iter().filter(|r| change(r) > 0).collect();
    rising.sort_by(|a, b| change(b).cmp(&change(a)).then(b.1.cmp(&a.1)).then_with(|| a.0.cmp(b.0)));
    let mut falling: Vec<&(&str, usize, usize)> = all_techniques.iter().filter(|r| change(r) < 0).collect();
    falling.sort_by(|a, b| change(a).cmp(&change(b)).then(b.2.cmp(&a.2)).then_with(|| a.0.cmp(b.0)));

    Digest {
        schema_version: SCHEMA_VERSION,
        id: digest_id(scope, period.end, settings.shard.as_deref()),
        scope: scope.to_vec(),
        shard: settings.shard.clone(),
        period,
        previous_period,
        time_to_detect: cur.time_to_detect.clone(),
        time_to_resolve: cur.time_to_resolve.clone(),
        previous_time_to_detect: prev.time_to_detect.clone(),
        previous_time_to_resolve: prev.time_to_resolve.clone(),
        time_to_acknowledge: cur.time_to_acknowledge.clone(),
        previous_time_to_acknowledge: prev.time_to_acknowledge.clone(),
        times_by_classification,
        trend: weeks.trend(),
        top_tactics: named(&top_tactics, &tactic_name),
        top_techniques: named(&top_techniques, &technique_name),
        rising: named(&rising, &technique_name),
        falling: named(&falling, &technique_name),
        new_techniques,
        recurring_gaps: recurring_gaps(&cur, &prev, top, &technique_name, &tactic_name),
        attribution,
        attribution_note: ATTRIBUTION_NOTE.to_owned(),
        follow_ups: follow_ups(listed_follow_ups, &cur.all, &prev.all, period.end, names),
        layer,
        incidents: cur.counts,
        previous_incidents: prev.counts,
    }
}

fn attacks<'a>(v: &[&'a View<'a>]) -> Vec<&'a View<'a>> {
    v.iter().filter(|s| !s.benign).copied().collect()
}

/// Per ID: how many of the summaries have it. A summary's lists hold each ID once
/// ([`Summary::of`] sees to it), so every entry counts.
fn tally<'a>(
    summaries: &[&'a View<'a>],
    field: impl Fn(&'a View<'a>) -> &'a Vec<summary::Text<'a>>,
) -> HashMap<&'a str, usize> {
    let mut out: HashMap<&str, usize> = HashMap::default();
    for s in summaries {
        for id in field(s) {
            *out.entry(&**id).or_default() += 1;
        }
    }
    out
}

/// (ID, this period, the period before) for every ID of either, in ID order.
fn ranked<'a>(now: &HashMap<&'a str, usize>, before: &HashMap<&'a str, usize>) -> Vec<(&'a str, usize, usize)> {
    let mut ids: Vec<&str> = now.keys().chain(before.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter().map(|id| (id, now.get(id).copied().unwrap_or(0), before.get(id).copied().unwrap_or(0))).collect()
}

fn times_by_classification(summaries: &[&View]) -> Vec<ClassTimes> {
    let mut by: BTreeMap<&str, Vec<&View>> = BTreeMap::new();
    for s in summaries {
        by.entry(&*s.classification).or_default().push(s);
    }
    let mut out: Vec<ClassTimes> = by
        .into_iter()
        .map(|(c, v)| ClassTimes {
            classification: c.to_owned(),
            incidents: v.len(),
            time_to_detect: percentiles(v.iter().filter_map(|s| s.time_to_detect_s)),
            time_to_acknowledge: percentiles(v.iter().filter_map(|s| s.time_to_acknowledge_s)),
            time_to_resolve: percentiles(v.iter().filter_map(|s| s.time_to_resolve_s)),
        })
        .collect();
    out.sort_by(|a, b| b.incidents.cmp(&a.incidents).then_with(|| a.classification.cmp(&b.classification)));
    out
}

/// The [`TREND_WEEKS`] weeks up to a digest's end, each counted like a period: an incident
/// once, as its latest revision resolved in the week.
struct Weeks<'a> {
    first: DateTime<Utc>,
    latest: Vec<Vec<&'a View<'a>>>,
}

impl<'a> Weeks<'a> {
    const WEEK: chrono::Duration = chrono::Duration::days(7);

    fn of(summaries: &'a [View<'a>], end: DateTime<Utc>, scope: &[String]) -> Weeks<'a> {
        let first = end - Self::WEEK * TREND_WEEKS as i32;
        let mut buckets: Vec<Vec<&View>> = vec![Vec::new(); TREND_WEEKS];
        for s in summaries.iter().filter(|s| first <= s.resolved && s.resolved < end) {
            let k = ((s.resolved - first).num_seconds() / Self::WEEK.num_seconds()) as usize;
            buckets[k.min(TREND_WEEKS - 1)].push(s);
        }
        // Alternate weeks on two threads: a weekly digest's two periods are the last two.
        let (even, odd): (Vec<_>, Vec<_>) = buckets.into_iter().enumerate().partition(|(k, _)| k % 2 == 0);
        let per = |part: Vec<(usize, Vec<&'a View<'a>>)>| -> Vec<(usize, Vec<&'a View<'a>>)> {
            part.into_iter().map(|(k, b)| (k, latest(b.into_iter(), scope))).collect()
        };
        let (even, odd) = both(|| per(even), || per(odd));
        let mut latest: Vec<(usize, Vec<&View>)> = even.into_iter().chain(odd).collect();
        latest.sort_unstable_by_key(|(k, _)| *k);
        Weeks { first, latest: latest.into_iter().map(|(_, v)| v).collect() }
    }

    /// The latest revisions of `period` when it is one of the weeks.
    fn period(&self, period: Period) -> Option<Vec<&'a View<'a>>> {
        let k = (0..TREND_WEEKS).find(|&k| self.first + Self::WEEK * k as i32 == period.start)?;
        (period.end - period.start == Self::WEEK).then(|| self.latest[k].clone())
    }

    fn trend(&self) -> Vec<Week> {
        self.latest
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let attacks = attacks(v);
                Week {
                    start: self.first + Self::WEEK * k as i32,
                    incidents: v.len(),
                    attacks: attacks.len(),
                    with_blind_stages: attacks.iter().filter(|s| !s.blind_stages.is_empty()).count(),
                    blind_stages: attacks.iter().map(|s| s.blind_stages.len()).sum(),
                }
            })
            .collect()
    }
}

fn counts(summaries: &[&View]) -> Counts {
    let mut maps: [HashMap<&str, usize>; 4] = Default::default();
    let mut benign = 0;
    for s in summaries {
        benign += usize::from(s.benign);
        for (map, key) in maps.iter_mut().zip([&*s.severity, &*s.classification, &*s.determination, &*s.source]) {
            *map.entry(key).or_default() += 1;
        }
    }
    let [severity, classification, determination, source] =
        maps.map(|m| m.into_iter().map(|(k, n)| (k.to_owned(), n)).collect::<BTreeMap<String, usize>>());
    Counts {
        total: summaries.len(),
        benign,
        by_severity: severity,
        by_classification: classification,
        by_determination: determination,
        by_source: source,
    }
}

fn percentiles(values: impl Iterator<Item = i64>) -> Percentiles {
    let mut v: Vec<i64> = values.filter(|x| *x >= 0).collect();
    v.sort_unstable();
    Percentiles { samples: v.len(), median_s: quantile(&v, 0.5), p90_s: quantile(&v, 0.9) }
}

/// The q-quantile of sorted values, interpolated between the two closest ranks.
fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q * last as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let frac = pos - lo as f64;
    Some((sorted[lo] as f64 + (sorted[hi] - sorted[lo]) as f64 * frac).round() as i64)
}

fn example(s: &View) -> String {
    format!("{}/{}", s.source, s.incident_id)
}

fn new_techniques(summaries: &[&View], max: usize, name: &dyn Fn(&str) -> String) -> Vec<NewTechnique> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for s in summaries {
        for id in &s.first_seen {
            if out.len() < max && seen.insert((&*s.source, &**id)) {
                out.push(NewTechnique {
                    id: id.to_string(),
                    name: name(id),
                    source: s.source.to_string(),
                    incident_id: s.incident_id.to_string(),
                });
            }
        }
    }
    out
}

/// Gives the display name of an ID.
type Namer<'n> = &'n dyn Fn(&str) -> String;

/// One of a summary's ID lists.
type Field = for<'a> fn(&'a View<'a>) -> &'a Vec<summary::Text<'a>>;

/// The list a kind of gap is read from.
fn gap_field(kind: &str) -> Field {
    if kind == "uncovered" { |s| &s.uncovered } else { |s| &s.blind_stages }
}

fn recurring_gaps(
    cur: &Side,
    prev: &Side,
    max: usize,
    technique: &dyn Fn(&str) -> String,
    tactic: &dyn Fn(&str) -> String,
) -> Vec<RecurringGap> {
    let mut out = Vec::new();
    let kinds: [(&str, Namer); 2] = [("uncovered", technique), ("blind_stage", tactic)];
    for (kind, name) in kinds {
        let before = prev.gaps(kind);
        let mut now: Vec<(&str, usize)> = cur.gaps(kind).iter().map(|(id, n)| (*id, *n)).collect();
        now.sort_unstable();
        for (id, n) in now {
            let previous = before.get(id).copied().unwrap_or(0);
            // Recurring: more than one incident this period, or this one and the period before.
            if n < 2 && previous == 0 {
                continue;
            }
            out.push(RecurringGap {
                kind: kind.to_owned(),
                id: id.to_owned(),
                name: String::new(),
                incidents: n,
                previous,
                examples: vec![],
            });
        }
        for g in out.iter_mut().filter(|g| g.kind == kind) {
            g.name = name(&g.id);
        }
    }
    out.sort_by(|a, b| b.incidents.cmp(&a.incidents).then(b.previous.cmp(&a.previous)).then_with(|| a.id.cmp(&b.id)));
    out.truncate(max);
    for g in &mut out {
        let field = gap_field(&g.kind);
        g.examples =
            cur.attacks.iter().filter(|s| field(s).iter().any(|x| **x == *g.id)).take(5).map(|s| example(s)).collect();
    }
    out
}

fn attribution(summaries: &[&View], max: usize, names: &dyn Names) -> Vec<AttributionTrend> {
    // (first, incidents, best score) per candidate.
    let mut by: HashMap<&str, (usize, usize, f64)> = HashMap::default();
    for s in summaries {
        for (rank, (id, score)) in s.attribution.iter().enumerate() {
            let t = by.entry(&**id).or_insert((0, 0, 0.0));
            t.0 += usize::from(rank == 0);
            t.1 += 1;
            t.2 = t.2.max(*score);
        }
    }
    let mut out: Vec<(&str, (usize, usize, f64))> = by.into_iter().collect();
    out.sort_by(|(a, x), (b, y)| y.0.cmp(&x.0).then(y.1.cmp(&x.1)).then(y.2.total_cmp(&x.2)).then_with(|| a.cmp(b)));
    out.into_iter()
        .take(max)
        .map(|(id, (first, incidents, best_score))| {
            let (name, kind) = names.candidate(id).unwrap_or_else(|| (id.to_owned(), "group"));
            AttributionTrend { id: id.to_owned(), name, kind: kind.to_owned(), incidents, first, best_score }
        })
        .collect()
}

/// A follow-up's highest priority, and how many incidents raised it.
type Raised = (Priority, usize);

/// The `max` follow-ups of the period to list, first first: by priority, then by how many
/// incidents raised them. Many follow-ups are raised once (per incident): over 100,000 reviews
/// this count is the digest's largest map (300,000 entries), so only the listed ones are sorted.
fn rank_follow_ups<'a>(cur: &[&'a View<'a>], max: usize) -> Vec<(&'a str, Raised)> {
    let raised: usize = cur.iter().map(|s| s.follow_ups.len()).sum();
    let mut by: HashMap<&str, Raised> = HashMap::with_capacity_and_hasher(raised, Default::default());
    for s in cur {
        for (id, priority) in &s.follow_ups {
            let e = by.entry(&**id).or_insert((*priority, 0));
            e.0 = e.0.min(*priority);
            e.1 += 1;
        }
    }
    let mut ranked: Vec<(&str, Raised)> = by.into_iter().collect();
    let order = |(a, x): &(&str, Raised), (b, y): &(&str, Raised)| {
        (x.0, std::cmp::Reverse(x.1), a).cmp(&(y.0, std::cmp::Reverse(y.1), b))
    };
    if ranked.len() > max && max > 0 {
        ranked.select_nth_unstable_by(max - 1, order);
    }
    ranked.truncate(max);
    ranked.sort_unstable_by(order);
    ranked
}

/// The listed follow-ups (`ranked`), each with its text, its state, and examples; examples,
/// sources and the period before are looked at for these only.
fn follow_ups(
    ranked: Vec<(&str, Raised)>,
    cur: &[&View],
    prev: &[&View],
    end: DateTime<Utc>,
    names: &dyn Names,
) -> Vec<OpenFollowUp> {
    let listed: foldhash::HashSet<&str> = ranked.iter().map(|(id, _)| *id).collect();
    let before: foldhash::HashSet<&str> =
        prev.iter().flat_map(|s| s.follow_ups.iter().map(|f| &*f.0)).filter(|id| listed.contains(id)).collect();
    let mut examples: HashMap<&str, Vec<String>> = ranked.iter().map(|(id, _)| (*id, Vec::new())).collect();
    // The sources that raised each listed one: a detection is verified only where it was asked.
    let mut sources: HashMap<&str, Vec<&str>> = HashMap::default();
    // The incidents that raised it: where an analyst may have marked it done.
    let mut raised_by: HashMap<&str, foldhash::HashSet<(&str, &str)>> = HashMap::default();
    for s in cur {
        for (id, _) in &s.follow_ups {
            if let Some(v) = examples.get_mut(&**id) {
                if v.len() < 5 {
                    v.push(example(s));
                }
                let raised = sources.entry(&**id).or_default();
                if !raised.contains(&&*s.source) {
                    raised.push(&s.source);
                }
                raised_by.entry(&**id).or_default().insert((&s.source, &s.incident_id));
            }
        }
    }
    // Texts are looked up for the listed ones only.
    ranked
        .into_iter()
        .map(|(id, (priority, incidents))| {
            let info = names.follow_up(id);
            let verified_by =
                info.as_ref().and_then(|i| verified(i, sources.get(id).map_or(&[][..], Vec::as_slice), names));
            let overdue = info.as_ref().and_then(|i| i.due).is_some_and(|d| d < end.date_naive());
            // Marked on one of the incidents that raised it.
            let done_at = raised_by.get(id).and_then(|raised| {
                names
                    .marked_done(id)
                    .into_iter()
                    .filter(|m| raised.contains(&(m.source.as_str(), m.incident_id.as_str())))
                    .map(|m| m.at)
                    .max()
            });
            let state = match (&verified_by, done_at, overdue) {
                (Some(_), _, _) => "verified",
                (None, Some(_), _) => "done",
                (None, None, true) => "overdue",
                (None, None, false) => "open",
            };
            OpenFollowUp {
                state: state.to_owned(),
                done_at,
                verified_by,
                id: id.to_owned(),
                kind: info.as_ref().map_or_else(String::new, |i| i.kind.clone()),
                priority,
                first_raised: info.as_ref().and_then(|i| i.first_raised),
                owner: info.as_ref().and_then(|i| i.owner.clone()),
                due: info.as_ref().and_then(|i| i.due),
                title: info.map_or_else(|| id.to_owned(), |i| i.title),
                incidents,
                recurring: before.contains(id),
                examples: examples.remove(id).unwrap_or_default(),
            }
        })
        .collect()
}

/// When `comments` mark follow-up `id` done: the latest comment with `done` followed by the ID
/// ("done FU-e6761d1388", "Done: FU-e6761d1388"), case aside.
pub fn done_in(comments: &[crate::model::Comment], id: &str) -> Option<DateTime<Utc>> {
    let id = id.to_ascii_lowercase();
    done_marks(comments).into_iter().find(|(marked, _)| *marked == id).map(|(_, at)| at)
}

/// Every follow-up ID that `comments` mark done (lower case), with the latest comment that
/// does: `done` followed by a word that starts with `fu-`. Comments without a time mark nothing.
pub fn done_marks(comments: &[crate::model::Comment]) -> Vec<(String, DateTime<Utc>)> {
    let mut out: Vec<(String, DateTime<Utc>)> = Vec::new();
    for c in comments {
        let Some(at) = c.created else { continue };
        let text = c.comment.to_ascii_lowercase();
        let words: Vec<&str> =
            text.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-')).filter(|w| !w.is_empty()).collect();
        for w in words.windows(2).filter(|w| w[0] == "done" && w[1].starts_with("fu-")) {
            match out.iter_mut().find(|(id, _)| id == w[1]) {
                Some(mark) => mark.1 = mark.1.max(at),
                None => out.push((w[1].to_owned(), at)),
            }
        }
    }
    out
}

/// The rule that shows a detection follow-up done: every technique it asked for is covered by
/// an enabled rule, for every source that raised it.
fn verified(info: &summary::FollowUpInfo, sources: &[&str], names: &dyn Names) -> Option<RuleSeen> {
    if info.kind != "add_detection" || info.techniques.is_empty() || sources.is_empty() {
        return None;
    }
    let mut first = None;
    for source in sources {
        for t in &info.techniques {
            let seen = names.detection(source, t)?;
            first.get_or_insert(seen);
        }
    }
    first
}

/// White to red by incidents per technique; the Navigator spreads the colours between 0 and
/// the period's maximum.
fn heat_map(
    techniques: &[&(&str, usize, usize)],
    period: Period,
    scope: &[String],
    settings: &Settings,
    name: &dyn Fn(&str) -> String,
) -> Layer {
    let max = techniques.iter().map(|t| t.1).max().unwrap_or(0).max(1);
    let nv = |name: &str, value: String| NameValue { name: name.to_owned(), value };
    let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    let scope_text = scope_text(scope, settings.shard.as_deref());
    Layer {
        name: format!("Hindsight digest {} – {} ({scope_text})", day(period.start), day(period.end)),
        versions: Versions {
            attack: settings.attack_version.as_deref().and_then(|v| v.split('.').next()).map(str::to_owned),
            ..Versions::default()
        },
        domain: settings.attack_domain.clone(),
        description: format!(
            "Techniques of the incidents resolved from {} to {} (UTC), scored by the number of incidents; false positives left out.",
            period.start.format("%Y-%m-%d %H:%M"),
            period.end.format("%Y-%m-%d %H:%M")
        ),
        sorting: 3,
        layout: Layout::default(),
        hide_disabled: false,
        techniques: techniques
            .iter()
            .map(|(id, n, previous)| LayerTechnique {
                technique_id: (*id).to_owned(),
                tactic: None,
                score: *n as f64,
                color: None,
                comment: format!("{}: {n} incident(s) in the period, {previous} in the period before.", name(id)),
                enabled: true,
                metadata: vec![],
            })
            .collect(),
        legend_items: vec![],
        metadata: vec![
            nv("period_start", period.start.to_rfc3339()),
            nv("period_end", period.end.to_rfc3339()),
            nv("scope", scope_text),
        ],
        links: vec![],
        gradient: Some(crate::review::navigator::Gradient {
            colors: vec!["#ffffff".into(), "#fcae91".into(), "#cb181d".into()],
            min_value: 0.0,
            max_value: max as f64,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7], 0.9), Some(7));
        assert_eq!(quantile(&[1, 2], 0.5), Some(2)); // 1.5 rounds half away from zero
        assert_eq!(quantile(&[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.5), Some(55));
        assert_eq!(quantile(&[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.9), Some(91));
    }

    #[test]
    fn periods_are_half_open_and_chain_backwards() {
        let end = DateTime::parse_from_rfc3339("2026-11-30T08:00:00Z").unwrap().with_timezone(&Utc);
        let p = Period::ending(end, chrono::Duration::days(7));
        assert!(p.contains(p.start) && !p.contains(p.end));
        assert_eq!(p.previous().end, p.start);
        assert_eq!(p.previous().start, end - chrono::Duration::days(14));
    }
}

#[cfg(test)]
mod done_tests {
    use super::*;
    use crate::model::Comment;

    fn c(text: &str, at: &str) -> Comment {
        Comment { comment: text.into(), author: None, created: Some(at.parse().unwrap()) }
    }

    #[test]
    fn a_follow_up_is_marked_done_by_its_id_after_done() {
        let at = "2026-11-26T09:30:00Z";
        assert!(done_in(&[c("done FU-e6761d1388", at)], "FU-e6761d1388").is_some());
        assert!(done_in(&[c("Done: fu-E6761D1388, thanks", at)], "FU-e6761d1388").is_some());
        assert!(done_in(&[c("not done yet for FU-e6761d1388", at)], "FU-e6761d1388").is_none());
        assert!(done_in(&[c("done FU-e6761d1388x", at)], "FU-e6761d1388").is_none());
        assert!(done_in(&[c("done FU-aaaaaaaaaa", at)], "FU-e6761d1388").is_none());
    }

    #[test]
    fn every_follow_up_marked_done_is_found_with_its_latest_mark() {
        let comments = [
            c("Done: FU-aaaaaaaaaa and done fu-BBBBBBBBBB; FU-cccccccccc still open", "2026-11-26T09:30:00Z"),
            c("done FU-aaaaaaaaaa (re-checked)", "2026-11-27T08:00:00Z"),
            c("done with the review", "2026-11-28T08:00:00Z"),
        ];
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            done_marks(&comments),
            vec![
                ("fu-aaaaaaaaaa".to_owned(), at("2026-11-27T08:00:00Z")),
                ("fu-bbbbbbbbbb".to_owned(), at("2026-11-26T09:30:00Z"))
            ]
        );
        let untimed = Comment { comment: "done FU-aaaaaaaaaa".into(), author: None, created: None };
        assert!(done_marks(&[untimed]).is_empty());
    }
}
