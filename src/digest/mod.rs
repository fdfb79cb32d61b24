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

pub mod job;
pub mod render;
pub mod schedule;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use summary::Summary;

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
    /// The sources (tenants) the digest covers; empty = all.
    pub scope: Vec<String>,
    pub period: Period,
    pub previous_period: Period,
    pub incidents: Counts,
    pub previous_incidents: Counts,
    pub time_to_detect: Percentiles,
    pub time_to_resolve: Percentiles,
    pub previous_time_to_detect: Percentiles,
    pub previous_time_to_resolve: Percentiles,
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
}

pub const ATTRIBUTION_NOTE: &str = "Hypotheses, not verdicts: how often each group or campaign was among an incident's three closest technique matches.";

/// What a digest is computed over besides the summaries.
#[derive(Debug, Clone)]
pub struct Settings {
    pub top: usize,
    pub attack_domain: String,
    pub attack_version: Option<String>,
}

/// The id of the digest of `scope` for the period ending at `end`.
pub fn digest_id(scope: &[String], end: DateTime<Utc>) -> String {
    let h = Sha256::digest(format!("{}\0{}", scope.join(","), end.timestamp_millis()).as_bytes());
    format!("dg_{}", h.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>())
}

/// Keeps the latest revision of each incident, and only the sources of `scope` (empty = all).
fn latest<'a>(summaries: impl Iterator<Item = &'a Summary>, scope: &[String]) -> Vec<&'a Summary> {
    let mut by: HashMap<(&str, &str), &Summary> = HashMap::new();
    for s in summaries.filter(|s| scope.is_empty() || scope.iter().any(|x| x == &s.source)) {
        let slot = by.entry((s.source.as_str(), s.incident_id.as_str())).or_insert(s);
        if s.revision > slot.revision {
            *slot = s;
        }
    }
    let mut out: Vec<&Summary> = by.into_values().collect();
    out.sort_by(|a, b| (a.resolved, &a.source, &a.incident_id).cmp(&(b.resolved, &b.source, &b.incident_id)));
    out
}

/// The digest of `period` (compared with the period before it) over `summaries`, which may hold
/// more than both periods: what is outside them is ignored.
pub fn compute(summaries: &[Summary], period: Period, scope: &[String], settings: &Settings) -> Digest {
    let previous_period = period.previous();
    let cur = latest(summaries.iter().filter(|s| period.contains(s.resolved)), scope);
    let prev = latest(summaries.iter().filter(|s| previous_period.contains(s.resolved)), scope);
    let (cur_a, prev_a) = (attacks(&cur), attacks(&prev));
    let top = settings.top;

    let techniques = tally(&cur_a, |s| &s.techniques);
    let previous_techniques = tally(&prev_a, |s| &s.techniques);
    let tactics = tally(&cur_a, |s| &s.tactics);
    let previous_tactics = tally(&prev_a, |s| &s.tactics);
    let ranked = |now: &Tally, before: &Tally| -> Vec<Ranked> {
        let mut ids: BTreeSet<&String> = now.keys().collect();
        ids.extend(before.keys());
        ids.into_iter()
            .map(|id| {
                let (name, n) = now.get(id).map_or_else(|| (before[id].0.clone(), 0), |(name, n)| (name.clone(), *n));
                Ranked { id: id.clone(), name, incidents: n, previous: before.get(id).map_or(0, |x| x.1) }
            })
            .collect()
    };
    let all_techniques = ranked(&techniques, &previous_techniques);
    let mut top_techniques: Vec<Ranked> = all_techniques.iter().filter(|r| r.incidents > 0).cloned().collect();
    top_techniques.sort_by(|a, b| b.incidents.cmp(&a.incidents).then_with(|| a.id.cmp(&b.id)));
    let layer = heat_map(&top_techniques, period, scope, settings);
    top_techniques.truncate(top);
    let mut top_tactics: Vec<Ranked> =
        ranked(&tactics, &previous_tactics).into_iter().filter(|r| r.incidents > 0).collect();
    top_tactics.sort_by(|a, b| b.incidents.cmp(&a.incidents).then_with(|| a.id.cmp(&b.id)));
    top_tactics.truncate(top);
    let change = |r: &Ranked| r.incidents as i64 - r.previous as i64;
    let mut rising: Vec<Ranked> = all_techniques.iter().filter(|r| change(r) > 0).cloned().collect();
    rising.sort_by(|a, b| change(b).cmp(&change(a)).then(b.incidents.cmp(&a.incidents)).then_with(|| a.id.cmp(&b.id)));
    rising.truncate(top);
    let mut falling: Vec<Ranked> = all_techniques.iter().filter(|r| change(r) < 0).cloned().collect();
    falling.sort_by(|a, b| change(a).cmp(&change(b)).then(b.previous.cmp(&a.previous)).then_with(|| a.id.cmp(&b.id)));
    falling.truncate(top);

    Digest {
        schema_version: SCHEMA_VERSION,
        id: digest_id(scope, period.end),
        scope: scope.to_vec(),
        period,
        previous_period,
        incidents: counts(&cur),
        previous_incidents: counts(&prev),
        time_to_detect: percentiles(cur.iter().filter_map(|s| s.time_to_detect_s)),
        time_to_resolve: percentiles(cur.iter().filter_map(|s| s.time_to_resolve_s)),
        previous_time_to_detect: percentiles(prev.iter().filter_map(|s| s.time_to_detect_s)),
        previous_time_to_resolve: percentiles(prev.iter().filter_map(|s| s.time_to_resolve_s)),
        top_tactics,
        top_techniques,
        rising,
        falling,
        new_techniques: new_techniques(&cur_a, top * 3),
        recurring_gaps: recurring_gaps(&cur_a, &prev_a, top),
        attribution: attribution(&cur_a, top),
        attribution_note: ATTRIBUTION_NOTE.to_owned(),
        follow_ups: follow_ups(&cur, &prev, top * 2),
        layer,
    }
}

fn attacks<'a>(v: &[&'a Summary]) -> Vec<&'a Summary> {
    v.iter().filter(|s| !s.benign).copied().collect()
}

/// Per ID: its name and how many of the summaries have it.
type Tally = BTreeMap<String, (String, usize)>;

fn tally(summaries: &[&Summary], field: impl Fn(&Summary) -> &Vec<(String, String)>) -> Tally {
    let mut out = Tally::new();
    for s in summaries {
        // An incident counts once per ID even if a list repeats it.
        let ids: BTreeSet<&(String, String)> = field(s).iter().collect();
        for (id, name) in ids {
            out.entry(id.clone()).or_insert_with(|| (name.clone(), 0)).1 += 1;
        }
    }
    out
}

fn counts(summaries: &[&Summary]) -> Counts {
    let mut c = Counts { total: summaries.len(), ..Counts::default() };
    for s in summaries {
        c.benign += usize::from(s.benign);
        *c.by_severity.entry(s.severity.clone()).or_default() += 1;
        *c.by_classification.entry(s.classification.clone()).or_default() += 1;
        *c.by_determination.entry(s.determination.clone()).or_default() += 1;
        *c.by_source.entry(s.source.clone()).or_default() += 1;
    }
    c
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

fn example(s: &Summary) -> String {
    format!("{}/{}", s.source, s.incident_id)
}

fn new_techniques(summaries: &[&Summary], max: usize) -> Vec<NewTechnique> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for s in summaries {
        for (id, name) in &s.first_seen {
            if seen.insert((s.source.clone(), id.clone())) {
                out.push(NewTechnique {
                    id: id.clone(),
                    name: name.clone(),
                    source: s.source.clone(),
                    incident_id: s.incident_id.clone(),
                });
            }
        }
    }
    out.truncate(max);
    out
}

fn recurring_gaps(cur: &[&Summary], prev: &[&Summary], max: usize) -> Vec<RecurringGap> {
    let mut out = Vec::new();
    for (kind, field) in [
        ("uncovered", (|s: &Summary| &s.uncovered) as fn(&Summary) -> &Vec<(String, String)>),
        ("blind_stage", |s: &Summary| &s.blind_stages),
    ] {
        let before = tally(prev, field);
        for (id, (name, n)) in tally(cur, field) {
            let previous = before.get(&id).map_or(0, |x| x.1);
            // Recurring: more than one incident this period, or this one and the period before.
            if n < 2 && previous == 0 {
                continue;
            }
            let examples =
                cur.iter().filter(|s| field(s).iter().any(|(x, _)| x == &id)).take(5).map(|s| example(s)).collect();
            out.push(RecurringGap { kind: kind.to_owned(), id, name, incidents: n, previous, examples });
        }
    }
    out.sort_by(|a, b| b.incidents.cmp(&a.incidents).then(b.previous.cmp(&a.previous)).then_with(|| a.id.cmp(&b.id)));
    out.truncate(max);
    out
}

fn attribution(summaries: &[&Summary], max: usize) -> Vec<AttributionTrend> {
    let mut by: BTreeMap<String, AttributionTrend> = BTreeMap::new();
    for s in summaries {
        for (rank, c) in s.attribution.iter().enumerate() {
            let t = by.entry(c.id.clone()).or_insert_with(|| AttributionTrend {
                id: c.id.clone(),
                name: c.name.clone(),
                kind: c.kind.clone(),
                incidents: 0,
                first: 0,
                best_score: 0.0,
            });
            t.incidents += 1;
            t.first += usize::from(rank == 0);
            t.best_score = t.best_score.max(c.score);
        }
    }
    let mut out: Vec<AttributionTrend> = by.into_values().collect();
    out.sort_by(|a, b| {
        b.first
            .cmp(&a.first)
            .then(b.incidents.cmp(&a.incidents))
            .then(b.best_score.total_cmp(&a.best_score))
            .then_with(|| a.id.cmp(&b.id))
    });
    out.truncate(max);
    out
}

fn follow_ups(cur: &[&Summary], prev: &[&Summary], max: usize) -> Vec<OpenFollowUp> {
    let before: BTreeSet<&str> = prev.iter().flat_map(|s| s.follow_ups.iter().map(|f| f.id.as_str())).collect();
    let mut by: BTreeMap<&str, OpenFollowUp> = BTreeMap::new();
    for s in cur {
        for f in &s.follow_ups {
            let o = by.entry(f.id.as_str()).or_insert_with(|| OpenFollowUp {
                id: f.id.clone(),
                kind: f.kind.clone(),
                priority: f.priority,
                title: f.title.clone(),
                incidents: 0,
                recurring: before.contains(f.id.as_str()),
                examples: vec![],
            });
            o.incidents += 1;
            o.priority = o.priority.min(f.priority);
            if o.examples.len() < 5 {
                o.examples.push(example(s));
            }
        }
    }
    let mut out: Vec<OpenFollowUp> = by.into_values().collect();
    out.sort_by(|a, b| {
        (a.priority, std::cmp::Reverse(a.incidents), &a.id).cmp(&(b.priority, std::cmp::Reverse(b.incidents), &b.id))
    });
    out.truncate(max);
    out
}

/// White to red by incidents per technique; the Navigator spreads the colours between 0 and
/// the period's maximum.
fn heat_map(techniques: &[Ranked], period: Period, scope: &[String], settings: &Settings) -> Layer {
    let max = techniques.iter().map(|t| t.incidents).max().unwrap_or(0).max(1);
    let nv = |name: &str, value: String| NameValue { name: name.to_owned(), value };
    let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    let scope_text = if scope.is_empty() { "all sources".to_owned() } else { scope.join(", ") };
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
            .map(|t| LayerTechnique {
                technique_id: t.id.clone(),
                tactic: None,
                score: t.incidents as f64,
                color: None,
                comment: format!("{} incident(s) in the period, {} in the period before.", t.incidents, t.previous),
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
