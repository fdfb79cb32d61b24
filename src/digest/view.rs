//! The digest as the HTML e-mail template sees it (`view` in `templates/digest.html.j2`): the
//! period at a glance, the times against the period before, the trend and the top techniques
//! as bar sizes already computed, and the open follow-ups grouped by age. No markup: the
//! template draws the bars with table cells (e-mail-safe, no images), and owns the layout.

use serde::Serialize;

use super::{Digest, Percentiles};
use crate::review::render::duration;
use crate::review::render::view::{BlockView, attack_url, blocks};

/// Height of the trend chart's tallest bar, in pixels.
pub const CHART_HEIGHT_PX: u32 = 90;

#[derive(Debug, Clone, Serialize)]
pub struct Tile {
    pub label: String,
    pub value: usize,
    pub previous: usize,
    /// "+3", "−2", "unchanged".
    pub change: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Count {
    pub name: String,
    pub n: usize,
}

/// One measure against the period before: medians and 90th percentiles as durations, and
/// `trend` `better`, `worse` or `same` by the median (shorter is better), or `none`.
#[derive(Debug, Clone, Serialize)]
pub struct TimeRow {
    pub measure: String,
    pub samples: usize,
    pub median: String,
    pub p90: String,
    pub previous_median: String,
    pub previous_p90: String,
    pub trend: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassRow {
    pub classification: String,
    pub incidents: usize,
    pub detect: String,
    pub acknowledge: String,
    pub resolve: String,
}

/// A week of the trend chart, with its bars' heights in pixels.
#[derive(Debug, Clone, Serialize)]
pub struct WeekBar {
    pub label: String,
    pub incidents: usize,
    pub with_blind_stages: usize,
    /// Empty space above the bar, the part without blind stages, and the blind part.
    pub space_px: u32,
    pub rest_px: u32,
    pub blind_px: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub id: String,
    pub name: String,
    pub href: Option<String>,
    pub incidents: usize,
    pub previous: usize,
    /// Width of the bar, 1–100 % of the widest.
    pub percent: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct FollowUpItem {
    pub priority: &'static str,
    pub title: String,
    pub incidents: usize,
    pub recurring: bool,
    pub owner: Option<String>,
    pub due: Option<String>,
    pub overdue: bool,
    /// Set when an enabled rule now gives the detection it asked for: what says so.
    pub verified: Option<String>,
    /// Set when an analyst marked it done on the incident (and no rule verifies it).
    pub done: Option<String>,
    pub age_days: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgeGroup {
    pub label: &'static str,
    pub items: Vec<FollowUpItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DigestView {
    pub title: String,
    pub period: String,
    pub scope: String,
    pub tiles: Vec<Tile>,
    pub by_severity: Vec<Count>,
    pub by_classification: Vec<Count>,
    pub times: Vec<TimeRow>,
    pub by_class: Vec<ClassRow>,
    pub trend: Vec<WeekBar>,
    pub trend_max: usize,
    pub techniques: Vec<Bar>,
    pub follow_ups: Vec<AgeGroup>,
    pub follow_ups_total: usize,
    /// Tactics, rising and falling, new techniques, recurring gaps, attribution.
    pub more: Vec<BlockView>,
}

fn change(now: usize, before: usize) -> String {
    match now as i64 - before as i64 {
        0 => "unchanged".into(),
        d if d > 0 => format!("+{d}"),
        d => format!("−{}", d.unsigned_abs()),
    }
}

fn sorted(map: &std::collections::BTreeMap<String, usize>) -> Vec<Count> {
    let mut v: Vec<Count> = map.iter().map(|(k, n)| Count { name: k.clone(), n: *n }).collect();
    v.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.name.cmp(&b.name)));
    v
}

fn time_row(measure: &str, now: &Percentiles, before: &Percentiles) -> TimeRow {
    let show = |p: &Percentiles, v: Option<i64>| if p.samples == 0 { "—".to_owned() } else { duration(v) };
    let trend = match (now.median_s, before.median_s) {
        (Some(a), Some(b)) if a < b => "better",
        (Some(a), Some(b)) if a > b => "worse",
        (Some(_), Some(_)) => "same",
        _ => "none",
    };
    TimeRow {
        measure: measure.to_owned(),
        samples: now.samples,
        median: show(now, now.median_s),
        p90: show(now, now.p90_s),
        previous_median: show(before, before.median_s),
        previous_p90: show(before, before.p90_s),
        trend,
    }
}

impl DigestView {
    pub fn of(d: &Digest) -> DigestView {
        let attacks = |c: &super::Counts| c.total - c.benign;
        let blind = |d: &Digest, k: usize| d.trend.iter().rev().nth(k).map_or(0, |w| w.with_blind_stages);
        let trend_max = d.trend.iter().map(|w| w.incidents).max().unwrap_or(0);
        let px =
            |n: usize| if trend_max == 0 { 0 } else { (n as u64 * CHART_HEIGHT_PX as u64 / trend_max as u64) as u32 };
        let top = d.top_techniques.iter().map(|t| t.incidents).max().unwrap_or(0).max(1);
        let end = d.period.end;
        let item = |f: &super::OpenFollowUp| FollowUpItem {
            priority: crate::review::render::priority(f.priority),
            title: f.title.clone(),
            incidents: f.incidents,
            recurring: f.recurring,
            owner: f.owner.clone(),
            due: f.due.map(|d| d.to_string()),
            // From the date, not only `state`: digests stored before it was kept have none.
            overdue: f.verified_by.is_none() && f.done_at.is_none() && f.due.is_some_and(|due| due < end.date_naive()),
            verified: f.verified_by.as_ref().map(super::render::verified_words),
            done: (f.verified_by.is_none() && f.done_at.is_some())
                .then(|| super::render::done_words(f).trim_start_matches(", ").to_owned()),
            age_days: f.first_raised.filter(|t| *t <= end).map(|t| (end - t).num_days()),
        };
        let mut groups: Vec<AgeGroup> =
            ["open over 30 days", "open 7 to 30 days", "open under 7 days", "age not known"]
                .into_iter()
                .map(|label| AgeGroup { label, items: vec![] })
                .collect();
        for f in &d.follow_ups {
            let it = item(f);
            let k = match it.age_days {
                Some(a) if a > 30 => 0,
                Some(a) if a >= 7 => 1,
                Some(_) => 2,
                None => 3,
            };
            groups[k].items.push(it);
        }
        groups.retain(|g| !g.items.is_empty());
        DigestView {
            title: format!(
                "Hindsight digest {} to {}",
                d.period.start.format("%Y-%m-%d"),
                d.period.end.format("%Y-%m-%d")
            ),
            period: format!(
                "Incidents resolved from {} to {} UTC, against the {} days before",
                d.period.start.format("%Y-%m-%d %H:%M"),
                d.period.end.format("%Y-%m-%d %H:%M"),
                (d.period.end - d.period.start).num_days()
            ),
            scope: super::scope_text(&d.scope, d.shard.as_deref()),
            tiles: vec![
                Tile {
                    label: "incidents".into(),
                    value: d.incidents.total,
                    previous: d.previous_incidents.total,
                    change: change(d.incidents.total, d.previous_incidents.total),
                },
                Tile {
                    label: "attacks".into(),
                    value: attacks(&d.incidents),
                    previous: attacks(&d.previous_incidents),
                    change: change(attacks(&d.incidents), attacks(&d.previous_incidents)),
                },
                Tile {
                    label: "false positives".into(),
                    value: d.incidents.benign,
                    previous: d.previous_incidents.benign,
                    change: change(d.incidents.benign, d.previous_incidents.benign),
                },
                // The last week of the trend against the one before: a period of seven days
                // (the default) is exactly that.
                Tile {
                    label: "with blind stages (last week)".into(),
                    value: blind(d, 0),
                    previous: blind(d, 1),
                    change: change(blind(d, 0), blind(d, 1)),
                },
            ],
            by_severity: sorted(&d.incidents.by_severity),
            by_classification: sorted(&d.incidents.by_classification),
            times: vec![
                time_row("Time to detect", &d.time_to_detect, &d.previous_time_to_detect),
                time_row("Time to acknowledge", &d.time_to_acknowledge, &d.previous_time_to_acknowledge),
                time_row("Time to resolve", &d.time_to_resolve, &d.previous_time_to_resolve),
            ],
            by_class: d
                .times_by_classification
                .iter()
                .map(|c| ClassRow {
                    classification: c.classification.clone(),
                    incidents: c.incidents,
                    detect: duration(c.time_to_detect.median_s),
                    acknowledge: duration(c.time_to_acknowledge.median_s),
                    resolve: duration(c.time_to_resolve.median_s),
                })
                .collect(),
            trend: d
                .trend
                .iter()
                .map(|w| {
                    let (all, blind) = (px(w.incidents), px(w.with_blind_stages));
                    WeekBar {
                        label: w.start.format("%m-%d").to_string(),
                        incidents: w.incidents,
                        with_blind_stages: w.with_blind_stages,
                        space_px: CHART_HEIGHT_PX - all,
                        rest_px: all - blind,
                        blind_px: blind,
                    }
                })
                .collect(),
            trend_max,
            techniques: d
                .top_techniques
                .iter()
                .map(|t| Bar {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    href: attack_url(&t.id),
                    incidents: t.incidents,
                    previous: t.previous,
                    percent: ((t.incidents * 100 / top) as u32).max(1),
                })
                .collect(),
            follow_ups: groups,
            follow_ups_total: d.follow_ups.len(),
            more: blocks(super::render::trends(d)),
        }
    }
}
