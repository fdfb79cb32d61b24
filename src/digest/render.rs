//! The digest for people: text, Markdown and HTML from one outline, with the blocks and escaping
//! of the review's renderings (incident titles and follow-up texts come from incidents).

use super::{Counts, Digest, Percentiles, Ranked};
use crate::review::render::{Block, blocks_html, blocks_markdown, blocks_text, duration, html_page};

fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn breakdown(map: &std::collections::BTreeMap<String, usize>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

fn change(now: usize, before: usize) -> String {
    match now as i64 - before as i64 {
        0 => "unchanged".into(),
        d if d > 0 => format!("+{d}"),
        d => d.to_string(),
    }
}

fn pct(p: &Percentiles, prev: &Percentiles) -> String {
    if p.samples == 0 {
        return "no data".into();
    }
    format!(
        "median {}, p90 {} ({} incident(s); the period before: median {}, p90 {})",
        duration(p.median_s),
        duration(p.p90_s),
        p.samples,
        duration(prev.median_s),
        duration(prev.p90_s)
    )
}

fn counts_lines(c: &Counts, prev: &Counts) -> Vec<String> {
    vec![
        format!(
            "{} incident(s) resolved ({} the period before, {}); {} false positive(s) or expected activity",
            c.total,
            prev.total,
            change(c.total, prev.total),
            c.benign
        ),
        format!("By severity: {}", breakdown(&c.by_severity)),
        format!("By classification: {}", breakdown(&c.by_classification)),
        format!("By determination: {}", breakdown(&c.by_determination)),
        format!("By source: {}", breakdown(&c.by_source)),
    ]
}

fn ranked_rows(items: &[Ranked]) -> Vec<Vec<String>> {
    items.iter().map(|r| vec![r.id.clone(), r.name.clone(), r.incidents.to_string(), r.previous.to_string()]).collect()
}

fn outline(d: &Digest) -> Vec<Block> {
    let scope = super::scope_text(&d.scope, d.shard.as_deref());
    let mut b = vec![
        Block::Heading(
            1,
            format!("Hindsight digest: {} to {}", d.period.start.format("%Y-%m-%d"), d.period.end.format("%Y-%m-%d")),
        ),
        Block::Para(format!(
            "Incidents resolved from {} to {} ({scope}), compared with the {} days before.",
            day(d.period.start),
            day(d.period.end),
            (d.period.end - d.period.start).num_days()
        )),
        Block::Heading(2, "Incidents".into()),
        Block::Bullets(counts_lines(&d.incidents, &d.previous_incidents)),
        Block::Heading(2, "Time to detect, acknowledge and resolve".into()),
        Block::Bullets(vec![
            format!("Time to detect: {}", pct(&d.time_to_detect, &d.previous_time_to_detect)),
            format!("Time to acknowledge: {}", pct(&d.time_to_acknowledge, &d.previous_time_to_acknowledge)),
            format!("Time to resolve: {}", pct(&d.time_to_resolve, &d.previous_time_to_resolve)),
        ]),
    ];
    if d.times_by_classification.len() > 1 {
        b.push(Block::Heading(3, "Medians by classification".into()));
        b.push(Block::Table(
            ["classification", "incidents", "detect (median)", "acknowledge (median)", "resolve (median)"]
                .map(String::from)
                .to_vec(),
            d.times_by_classification
                .iter()
                .map(|c| {
                    vec![
                        c.classification.clone(),
                        c.incidents.to_string(),
                        duration(c.time_to_detect.median_s),
                        duration(c.time_to_acknowledge.median_s),
                        duration(c.time_to_resolve.median_s),
                    ]
                })
                .collect(),
        ));
    }
    if d.trend.iter().any(|w| w.incidents > 0) {
        b.push(Block::Heading(2, format!("The last {} weeks", d.trend.len())));
        b.push(Block::Table(
            ["week from", "incidents", "attacks", "with blind stages"].map(String::from).to_vec(),
            d.trend
                .iter()
                .map(|w| {
                    vec![
                        w.start.format("%Y-%m-%d").to_string(),
                        w.incidents.to_string(),
                        w.attacks.to_string(),
                        w.with_blind_stages.to_string(),
                    ]
                })
                .collect(),
        ));
    }
    b.push(Block::Heading(2, "Open follow-ups".into()));
    if d.follow_ups.is_empty() {
        b.push(Block::Para("None.".into()));
    } else {
        let count = |state: &str| d.follow_ups.iter().filter(|f| f.state == state).count();
        let (verified, done, overdue) = (count("verified"), count("done"), count("overdue"));
        if verified + done + overdue > 0 {
            b.push(Block::Para(format!(
                "{} listed: {verified} verified (the detection they asked for is now deployed and enabled), {done} marked done but not verified, {overdue} overdue, {} open.",
                d.follow_ups.len(),
                d.follow_ups.len() - verified - done - overdue
            )));
        }
        b.push(Block::Numbered(
            d.follow_ups
                .iter()
                .map(|f| {
                    // Its age at the period's end, from the first review that raised it.
                    let age = f
                        .first_raised
                        .filter(|t| *t <= d.period.end)
                        .map(|t| match (d.period.end - t).num_days() {
                            0 => ", open less than a day".to_owned(),
                            1 => ", open 1 day".to_owned(),
                            n => format!(", open {n} days"),
                        })
                        .unwrap_or_default();
                    let owner = f.owner.as_ref().map(|o| format!(", owner {o}")).unwrap_or_default();
                    let due = match (&f.verified_by, f.due) {
                        (Some(v), _) => format!(", VERIFIED: {}", verified_words(v)),
                        (None, _) if f.done_at.is_some() => done_words(f),
                        (None, Some(due)) if due < d.period.end.date_naive() => format!(", OVERDUE since {due}"),
                        (None, Some(due)) => format!(", due {due}"),
                        (None, None) => String::new(),
                    };
                    format!(
                        "[{:?}] {} — {} incident(s){}{age}{owner}{due} ({})",
                        f.priority,
                        f.title,
                        f.incidents,
                        if f.recurring { ", raised the period before too" } else { "" },
                        f.id
                    )
                })
                .collect(),
        ));
    }
    if !d.top_techniques.is_empty() {
        b.push(Block::Heading(2, "Top techniques".into()));
        b.push(Block::Table(ranked_head(), ranked_rows(&d.top_techniques)));
    }
    b.extend(trends(d));
    b.push(Block::Para("The ATT&CK Navigator heat map of the period is attached as layer.json.".into()));
    b
}

fn ranked_head() -> Vec<String> {
    vec!["ID".to_owned(), "Name".to_owned(), "Incidents".to_owned(), "Before".to_owned()]
}

/// Tactics, rising and falling techniques, what is new, recurring gaps and attribution.
pub(crate) fn trends(d: &Digest) -> Vec<Block> {
    let mut b = Vec::new();
    let head = ranked_head;
    if !d.top_tactics.is_empty() {
        b.push(Block::Heading(2, "Top tactics".into()));
        b.push(Block::Table(head(), ranked_rows(&d.top_tactics)));
    }
    if !d.rising.is_empty() || !d.falling.is_empty() {
        b.push(Block::Heading(2, "Rising and falling techniques".into()));
        let line = |r: &Ranked| format!("{} {}: {} → {}", r.id, r.name, r.previous, r.incidents);
        b.push(Block::Bullets(
            d.rising
                .iter()
                .map(|r| format!("Rising: {}", line(r)))
                .chain(d.falling.iter().map(|r| format!("Falling: {}", line(r))))
                .collect(),
        ));
    }
    if !d.new_techniques.is_empty() {
        b.push(Block::Heading(2, "New to the organisation".into()));
        b.push(Block::Bullets(
            d.new_techniques
                .iter()
                .map(|n| format!("{} {} — first met in {}/{}", n.id, n.name, n.source, n.incident_id))
                .collect(),
        ));
    }
    if !d.recurring_gaps.is_empty() {
        b.push(Block::Heading(2, "Recurring coverage gaps".into()));
        b.push(Block::Bullets(
            d.recurring_gaps
                .iter()
                .map(|g| {
                    let what =
                        if g.kind == "uncovered" { "not covered by the detection inventory" } else { "blind stage" };
                    format!(
                        "{} {} ({what}): {} incident(s), {} the period before; e.g. {}",
                        g.id,
                        g.name,
                        g.incidents,
                        g.previous,
                        g.examples.join(", ")
                    )
                })
                .collect(),
        ));
    }
    if !d.attribution.is_empty() {
        b.push(Block::Heading(2, "Attribution hypotheses".into()));
        b.push(Block::Para(d.attribution_note.clone()));
        b.push(Block::Bullets(
            d.attribution
                .iter()
                .map(|a| {
                    format!(
                        "{} {} ({}): best match of {}, among the closest of {} incident(s); best score {:.2}",
                        a.id, a.name, a.kind, a.first, a.incidents, a.best_score
                    )
                })
                .collect(),
        ));
    }
    b
}

pub fn text(d: &Digest) -> String {
    blocks_text(outline(d))
}

pub fn markdown(d: &Digest) -> String {
    blocks_markdown(outline(d))
}

pub fn html_fragment(d: &Digest) -> String {
    blocks_html(outline(d))
}

/// The digest as the e-mail's HTML part (the built-in templates; notification id "preview").
pub fn html(d: &Digest) -> String {
    match crate::notify::templates::Templates::builtin().and_then(|t| t.digest(d, "preview")) {
        Ok(m) => m.html,
        Err(e) => {
            tracing::error!("{e}");
            html_page("Hindsight digest", &html_fragment(d))
        }
    }
}

/// "Defender custom detection \"X\" covers it (read from the tenant 2026-11-08 06:00 UTC)": the
/// rule as the inventory labels it.
pub(crate) fn verified_words(v: &super::RuleSeen) -> String {
    match v.seen_at {
        Some(t) => format!("{} covers it (read from the tenant {})", v.rule, t.format("%Y-%m-%d %H:%M UTC")),
        None => format!("{} covers it (inventory files)", v.rule),
    }
}

/// ", DONE 2026-11-24 (marked on the incident), not verified: no enabled rule covers it yet" for a
/// detection follow-up; ", DONE 2026-11-24 (marked on the incident)" otherwise.
pub(crate) fn done_words(f: &super::OpenFollowUp) -> String {
    let at = f.done_at.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default();
    if f.kind == "add_detection" {
        format!(", DONE {at} (marked on the incident), not verified: no enabled rule covers it yet")
    } else {
        format!(", DONE {at} (marked on the incident)")
    }
}
