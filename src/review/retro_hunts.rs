//! Retro-hunts, the pure part: which of a review's blind-stage hunts to run within a budget,
//! the time span each may ask advanced hunting for (it keeps 30 days), and the review amended
//! with what they found. Running them is the hunt stage's (`crate::stages::hunt`).

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::follow_ups;
use super::model::*;

/// Days of data advanced hunting keeps.
pub const RETENTION_DAYS: i64 = 30;

/// Rows of each hunt kept in the review.
pub const ROWS_KEPT: usize = 5;

/// Characters kept of each value of those rows.
pub const VALUE_CHARS: usize = 300;

/// One hunt to run, with the stage and technique it looks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub hunt: Hunt,
    pub stage: String,
    pub technique: String,
}

/// The incident-scoped hunts of the blind stages, at most `max`, spread over the stages and
/// their likely techniques: each stage's first pick, then each stage's second, and so on, a
/// stage picking its likely techniques' first hunts (best technique first) before any second
/// one, so that a small budget looks at every stage and technique rather than deep into one. Estate-wide hunts are
/// left to analysts: they read the whole tenant and cost its shared quota.
pub fn plan(review: &Review, max: usize) -> Vec<Planned> {
    let per_stage: Vec<Vec<Planned>> = review
        .gaps
        .blind_stages
        .iter()
        .map(|stage| {
            // Each likely technique's first hunt, best technique first, then each one's second.
            let deepest = stage.likely.iter().map(|t| t.hunts.len()).max().unwrap_or(0);
            (0..deepest)
                .flat_map(|round| {
                    stage.likely.iter().filter_map(move |t| {
                        let h = t.hunts.get(round).filter(|h| h.scope == "incident")?;
                        Some(Planned { hunt: h.clone(), stage: stage.tactic.clone(), technique: t.id.clone() })
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut out: Vec<Planned> = Vec::new();
    let deepest = per_stage.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..deepest {
        for stage in &per_stage {
            if let Some(p) = stage.get(round)
                && out.len() < max
                && !out.iter().any(|o| o.hunt.id == p.hunt.id)
            {
                out.push(p.clone());
            }
        }
    }
    out
}

/// The `Timespan` of a hunt over `window` run at `now`: its start clamped to what advanced
/// hunting still holds (with an hour's margin for the run itself). `Err` when none of the
/// window is left.
pub fn timespan(window: &HuntWindow, now: DateTime<Utc>) -> Result<String, String> {
    let kept_from = now - Duration::days(RETENTION_DAYS) + Duration::hours(1);
    let start = window.start.max(kept_from);
    let end = window.end.min(now);
    if end <= start {
        return Err(format!(
            "the incident's window ended {}; advanced hunting keeps {RETENTION_DAYS} days",
            window.end.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    Ok(format!("{}/{}", iso(start), iso(end)))
}

/// A hunt that did not run, and why.
pub fn not_run(p: &Planned, reason: &str, detail: Option<String>) -> HuntResult {
    HuntResult {
        id: p.hunt.id.clone(),
        title: p.hunt.title.clone(),
        stage: p.stage.clone(),
        technique: p.technique.clone(),
        status: "not_run".into(),
        reason: Some(reason.into()),
        detail,
        timespan: None,
        rows: 0,
        columns: vec![],
        first_rows: vec![],
    }
}

/// A hunt that ran: its rows counted, the first [`ROWS_KEPT`] kept with each value cut to
/// [`VALUE_CHARS`] characters.
pub fn ran(p: &Planned, timespan: String, columns: Vec<String>, rows: &[serde_json::Value]) -> HuntResult {
    let first_rows = rows
        .iter()
        .take(ROWS_KEPT)
        .filter_map(|r| r.as_object())
        .map(|r| r.iter().map(|(k, v)| (k.clone(), clip_value(v))).collect())
        .collect();
    HuntResult {
        id: p.hunt.id.clone(),
        title: p.hunt.title.clone(),
        stage: p.stage.clone(),
        technique: p.technique.clone(),
        status: if rows.is_empty() { "no_rows" } else { "hits" }.into(),
        reason: None,
        detail: None,
        timespan: Some(timespan),
        rows: rows.len(),
        columns,
        first_rows,
    }
}

fn clip_value(v: &serde_json::Value) -> serde_json::Value {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => v.to_string(),
        other => return other.clone(),
    };
    serde_json::Value::String(crate::text::clip(&text, VALUE_CHARS).into_owned())
}

/// `review` with its hunts' results, and, when any returned rows, a high-priority follow-up
/// naming them first among the things to do now.
pub fn amend(review: &Review, results: Vec<HuntResult>, now: DateTime<Utc>) -> Review {
    let mut out = review.clone();
    let hits: Vec<&HuntResult> = results.iter().filter(|r| r.status == "hits").collect();
    let ran = results.iter().filter(|r| r.status != "not_run").count();
    // The scope follow-up asks a person to run these hunts: say which already ran.
    if let Some(scope) = out.follow_ups.iter_mut().find(|f| f.kind == "hunt_blind_stages") {
        let not_run = results.len() - ran;
        scope.detail += &format!(
            " Hindsight already ran {ran} of them in the tenant ({} returned rows{}): see \"Retro-hunts in the tenant\".",
            hits.len(),
            if not_run > 0 { format!(", {not_run} could not run") } else { String::new() }
        );
    }
    if !hits.is_empty() {
        out.follow_ups.insert(0, hits_follow_up(review, &hits));
    }
    out.retro_hunts = Some(RetroHunts { finished_at: now, ran, with_hits: hits.len(), results });
    out
}

fn hits_follow_up(review: &Review, hits: &[&HuntResult]) -> FollowUp {
    let rows: usize = hits.iter().map(|h| h.rows).sum();
    let lines: Vec<String> = hits
        .iter()
        .map(|h| {
            let sample = h.first_rows.first().map(row_text).unwrap_or_default();
            format!(
                "\"{}\" ({}, {}): {} row(s){}",
                h.title,
                h.stage,
                h.technique,
                h.rows,
                if sample.is_empty() { String::new() } else { format!(", first: {sample}") }
            )
        })
        .collect();
    let ids: Vec<String> = hits.iter().map(|h| h.id.clone()).collect();
    // Owner and due date as the review's own scope follow-up has them (the settings that made
    // them are not needed again).
    let like = review.follow_ups.iter().find(|f| f.kind == "hunt_blind_stages");
    FollowUp {
        id: follow_ups::id("retro_hunt_hits", &ids.join(",")),
        kind: "retro_hunt_hits".into(),
        priority: Priority::High,
        title: format!(
            "Explain what the retro-hunts found: {rows} row(s) from {} in stages no alert showed",
            follow_ups::plural(hits.len(), "hunt")
        ),
        detail: format!(
            "After the review, Hindsight ran the blind stages' hunts in the tenant and these returned rows: {}. Each row is activity in the incident's window on its devices or accounts that no alert explained.",
            lines.join("; ")
        ),
        evidence: Evidence {
            techniques: hits.iter().map(|h| h.technique.clone()).collect(),
            tactics: hits.iter().map(|h| h.stage.clone()).collect(),
            hunts: ids,
            ..Default::default()
        },
        category: "now".into(),
        done_when: "Each hunt's rows are explained in a comment on the incident, or a new incident is opened for them."
            .into(),
        owner: like.and_then(|f| f.owner.clone()),
        area: "soc".into(),
        due: like.and_then(|f| f.due),
        status: "open".into(),
        raised_before: 0,
    }
}

/// "DeviceName=fs-02, FileName=cmd.exe, …": the first few columns of a row.
fn row_text(row: &serde_json::Map<String, serde_json::Value>) -> String {
    let cells: Vec<String> = row
        .iter()
        .take(4)
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => crate::text::clip(&crate::text::one_line(s), 60).into_owned(),
                other => other.to_string(),
            };
            format!("{k}={v}")
        })
        .collect();
    cells.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn window(start: &str, end: &str) -> HuntWindow {
        HuntWindow { start: at(start), end: at(end), end_basis: "resolution".into(), run_before: at(start) }
    }

    #[test]
    fn the_window_is_clamped_to_what_advanced_hunting_keeps() {
        let now = at("2026-12-05T12:00:00Z");
        let w = window("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
        assert_eq!(timespan(&w, now).unwrap(), "2026-12-01T00:00:00Z/2026-12-02T00:00:00Z");
        let old_start = window("2026-10-01T00:00:00Z", "2026-11-20T00:00:00Z");
        assert_eq!(timespan(&old_start, now).unwrap(), "2026-11-05T13:00:00Z/2026-11-20T00:00:00Z");
        let gone = window("2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z");
        assert!(timespan(&gone, now).unwrap_err().contains("30 days"));
    }
}
