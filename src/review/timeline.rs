//! The incident in time order: first activity, alerts raised, observed transitions, comments,
//! response, resolution. Every post-incident review template starts from this; a reader should
//! see the long silence between an alert and the first action without computing it.
//!
//! Entries without a time are counted, never placed at a guessed time. Entries at the same
//! minute about the same alert are merged into one ("activity begins; alert raised").

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Timelike, Utc};

use super::model::*;
use crate::model::{Incident, Transition};

/// How a kind sorts among entries at the same instant: the activity before the alert about it,
/// the alert before what people did about it, the resolution last.
fn kind_order(kind: &str) -> u8 {
    match kind {
        "first_activity" => 0,
        "alert" => 1,
        "incident_created" => 2,
        "transition" => 3,
        "response" => 4,
        "comment" => 5,
        "last_activity" => 6,
        _ => 7,
    }
}

/// The entries, and how many were left out for want of a time.
pub(crate) fn build(review: &Review, incident: &Incident, transitions: &[Transition]) -> (Vec<TimelineEntry>, usize) {
    let mut out = Vec::new();
    let mut untimed = 0;
    let techniques = techniques_by_alert(review);
    let first_action = first_recorded_action(review, transitions);
    for a in &incident.alerts {
        let ts = techniques.get(a.id.as_str()).map(|v| v.join(", ")).unwrap_or_default();
        let on = device_names(a);
        let tactic = tactic_of(review, a);
        let raised = |what: &str| {
            let mut t = format!("{what} ({}", a.severity);
            if let Some(tc) = &tactic {
                let _ = write!(t, ", {tc}");
            }
            t + ")"
        };
        // One row per alert where its activity began, saying when the alert came; the alert's
        // own row only when it came late (or its activity time is unknown), so that a reader
        // sees both the attack's order and the detection's delay.
        match (a.first_activity, a.created) {
            (Some(f), created) => {
                let mut text = a.title.clone();
                if !on.is_empty() {
                    let _ = write!(text, " on {}", on.join(", "));
                }
                if !ts.is_empty() {
                    let _ = write!(text, " ({ts})");
                }
                match created {
                    Some(c) if c < f => {
                        let _ = write!(text, " — {}, recorded as before its activity began", raised("alert"));
                    }
                    Some(c) if (c - f).num_seconds() >= LATE_S => {
                        let _ = write!(text, " — alert {}, {} later", c.format("%m-%d %H:%M"), later(c - f));
                    }
                    Some(c) => text += &format!(" — {} at {}", raised("alert"), c.format("%H:%M")),
                    None => text += " — alert time not recorded",
                }
                out.push(entry(f, "first_activity", text, Some(&a.id), on.first().cloned()));
                if let Some(c) = created.filter(|c| (*c - f).num_seconds() >= LATE_S) {
                    let text = format!(
                        "{}, {} after its activity began",
                        raised(&format!("alert raised: {}", a.title)),
                        later(c - f)
                    );
                    out.push(entry(c, "alert", text, Some(&a.id), None));
                }
            }
            (None, Some(c)) => {
                untimed += 1;
                let text = format!(
                    "{}; when its activity began is not recorded",
                    raised(&format!("alert raised: {}", a.title))
                );
                out.push(entry(c, "alert", text, Some(&a.id), None));
            }
            (None, None) => untimed += 2,
        }
        // Activity that went on after the first recorded action is the evidence that the
        // action did not stop it: worth a line of its own.
        if let (Some(last), Some(action)) = (a.last_activity, first_action)
            && last > action
            && a.first_activity.is_none_or(|f| f < last)
        {
            let text = format!("last activity recorded: {}", a.title);
            out.push(entry(last, "last_activity", text, Some(&a.id), on.first().cloned()));
        }
    }
    match incident.created {
        Some(t) => out.push(entry(t, "incident_created", "incident created".to_owned(), None, None)),
        None => untimed += 1,
    }
    for t in transitions {
        let text = transition_text(t);
        out.push(entry(t.seen_at, "transition", text, None, None));
    }
    // A comment that records an action is one row, named by what it did; the action is not
    // repeated as a row of its own. Assignments are the observed transitions' rows.
    let mut named: HashMap<DateTime<Utc>, &str> = HashMap::new();
    for r in review.story.response.iter().filter(|r| r.basis.starts_with("comment by")) {
        if let Some(t) = r.at {
            let e = named.entry(t).or_insert(r.kind.as_str());
            if response_rank(&r.kind) > response_rank(e) {
                *e = r.kind.as_str();
            }
        }
    }
    for c in &review.incident.comments {
        match c.at {
            Some(t) => {
                let by = c.author.as_deref().unwrap_or("author not recorded");
                let line = crate::text::one_line(&c.text);
                let said = crate::text::clip(&line, 240);
                let text = match named.get(&t).and_then(|k| response_label(k)) {
                    Some(label) => format!("{label} — comment by {by}: {said}"),
                    None => format!("comment by {by}: {said}"),
                };
                out.push(entry(t, "comment", text, None, None));
            }
            None => untimed += 1,
        }
    }
    for r in &review.story.response {
        if r.kind == super::response::ASSIGNMENT || r.basis.starts_with("comment by") {
            continue;
        }
        match r.at {
            Some(t) => {
                let label = response_label(&r.kind).map(|l| format!("{l}: ")).unwrap_or_default();
                let text = format!("{label}{} ({}; {})", r.action, r.by, r.basis);
                out.push(entry(t, "response", text, None, r.entities.first().cloned()));
            }
            None => untimed += 1,
        }
    }
    if let Some(t) = review.incident.resolved {
        let words = super::story::words;
        let mut text =
            format!("resolved: {} — {}", words(&review.incident.classification), words(&review.incident.determination));
        if let Some(by) = &review.story.outcome.resolved_by {
            let _ = write!(text, " by {by}");
        }
        out.push(entry(t, "resolution", text, None, None));
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| kind_order(&a.kind).cmp(&kind_order(&b.kind))));
    (merge_same_minute(out), untimed)
}

fn entry(at: DateTime<Utc>, kind: &str, text: String, alert: Option<&str>, entity: Option<String>) -> TimelineEntry {
    TimelineEntry { at, kind: kind.to_owned(), text, alert: alert.map(str::to_owned), entity }
}

/// Canonical technique IDs per alert ID, from the mapping (unknown IDs left out).
fn techniques_by_alert(review: &Review) -> HashMap<&str, Vec<&str>> {
    let mut by: HashMap<&str, Vec<&str>> = HashMap::new();
    for t in review.techniques.iter().filter(|t| t.name.is_some()) {
        for a in &t.alerts {
            by.entry(a.as_str()).or_default().push(t.id.as_str());
        }
    }
    by
}

/// An alert raised at least this long after its activity began gets a row of its own.
const LATE_S: i64 = 30 * 60;

fn later(d: chrono::TimeDelta) -> String {
    super::render::duration(Some(d.num_seconds()))
}

/// The alert's tactic by name: Defender's category when it names one (it says what the alert
/// is about), else the kill-chain earliest tactic of its techniques.
fn tactic_of(review: &Review, alert: &crate::model::Alert) -> Option<String> {
    let by_category = alert.category.as_deref().and_then(|c| {
        let key: String = c.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
        review.tactics.iter().find(|t| t.shortname.chars().filter(|c| *c != '-').eq(key.chars()))
    });
    by_category
        .or_else(|| review.tactics.iter().find(|t| t.alerts.contains(&alert.id)))
        .map(|t| t.name.clone())
        .or_else(|| alert.category.clone())
}

/// The devices an alert names, by host name (the short name a reader knows them by).
fn device_names(a: &crate::model::Alert) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in a.evidence.iter().filter(|e| e.kind == "deviceEvidence") {
        let name = e
            .props
            .get("hostName")
            .cloned()
            .or_else(|| e.entity.as_ref().map(|n| n.split('.').next().unwrap_or(n).to_owned()));
        if let Some(n) = name
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}

/// The first recorded sign that someone acted: a response with a time, an observed transition,
/// a comment.
fn first_recorded_action(review: &Review, transitions: &[Transition]) -> Option<DateTime<Utc>> {
    let response = review.story.response.iter().filter_map(|r| r.at);
    let observed = transitions.iter().filter(|t| t.field != "status" || t.to.as_deref() != Some("active"));
    let comments = review.incident.comments.iter().filter_map(|c| c.at);
    response.chain(observed.map(|t| t.seen_at)).chain(comments).min()
}

/// Which of several actions recorded at one instant names the row.
fn response_rank(kind: &str) -> u8 {
    use super::response::*;
    match kind {
        k if k == FULL => 5,
        k if k == PARTIAL => 4,
        k if k == REMEDIATION => 3,
        k if k == RECOVERY => 2,
        _ => 1,
    }
}

/// How a row names an action: partial containment is never called containment.
fn response_label(kind: &str) -> Option<&'static str> {
    use super::response::*;
    match kind {
        k if k == FULL => Some("full containment"),
        k if k == PARTIAL => Some("partial containment"),
        k if k == REMEDIATION => Some("remediation"),
        k if k == RECOVERY => Some("recovery"),
        _ => None,
    }
}

fn transition_text(t: &Transition) -> String {
    let to = t.to.as_deref().unwrap_or("(none)");
    let what = match t.field.as_str() {
        "assignedTo" => format!("assigned to {to}"),
        "status" => format!("status {to}"),
        "classification" => format!("classified {to}"),
        "determination" => format!("determination {to}"),
        f => format!("{f} {to}"),
    };
    match t.after {
        Some(after) => {
            format!("{what} (observed between {} and {} UTC)", after.format("%m-%d %H:%M"), t.seen_at.format("%H:%M"))
        }
        None => format!("{what} (first seen)"),
    }
}

/// Entries at the same minute about the same alert become one: "activity begins" and "alert
/// raised" a few seconds apart are one event to a reader.
fn merge_same_minute(entries: Vec<TimelineEntry>) -> Vec<TimelineEntry> {
    let minute = |t: &DateTime<Utc>| t.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(*t);
    let mut out: Vec<TimelineEntry> = Vec::with_capacity(entries.len());
    for e in entries {
        let same = match e.alert {
            Some(_) => out.iter_mut().rev().take_while(|o| minute(&o.at) == minute(&e.at)).find(|o| o.alert == e.alert),
            None => None,
        };
        match same {
            Some(o) => {
                o.text = format!("{}; {}", o.text, e.text);
                if o.entity.is_none() {
                    o.entity = e.entity;
                }
            }
            None => out.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn review_of(v: serde_json::Value) -> (Review, Incident) {
        let incident = Incident::from_graph(&v).unwrap();
        let catalog = std::sync::Arc::new(crate::attack::store::embedded().unwrap());
        let engine = super::super::Engine::new(catalog, None, None, super::super::Settings::default());
        let r = engine.review(
            &super::super::Subject { incident: &incident, source: "t", revision: 1, transitions: &[] },
            &super::super::History::default(),
        );
        (r, incident)
    }

    #[test]
    fn orders_merges_and_counts_what_has_no_time() {
        let (r, i) = review_of(json!({
            "id": "1", "status": "resolved", "createdDateTime": "2026-10-20T22:28:00Z",
            "lastUpdateDateTime": "2026-10-22T22:05:00Z", "classification": "truePositive",
            "comments": [
                {"comment": "Isolated fs-02", "createdByDisplayName": "ann", "createdDateTime": "2026-10-21T00:25:00Z"},
                {"comment": "no time on this one", "createdByDisplayName": "bob"}
            ],
            "alerts": [
                {"id": "a1", "title": "Suspicious sign-in", "severity": "medium", "createdDateTime": "2026-10-20T22:27:10Z",
                 "firstActivityDateTime": "2026-10-20T22:27:00Z", "lastActivityDateTime": "2026-10-20T22:28:00Z",
                 "mitreTechniques": ["T1078"]},
                {"id": "a2", "title": "Ransomware behavior", "severity": "high", "createdDateTime": "2026-10-21T00:12:00Z",
                 "lastActivityDateTime": "2026-10-21T00:40:00Z", "mitreTechniques": ["T1486"]}
            ]
        }));
        let (t, untimed) = build(&r, &i, &[]);
        let texts: Vec<&str> = t.iter().map(|e| e.text.as_str()).collect();
        // a1's activity and its prompt alert: one entry.
        assert_eq!(texts[0], "Suspicious sign-in (T1078) — alert (medium, Initial Access) at 22:27");
        assert_eq!(t[1].kind, "incident_created");
        // a2 has no first activity (counted) and an untimed comment (counted).
        assert_eq!(untimed, 2);
        let comment = t.iter().position(|e| e.kind == "comment").unwrap();
        let last = t.iter().position(|e| e.kind == "last_activity").unwrap();
        assert!(comment < last, "activity after the first action is shown after it: {texts:#?}");
        assert!(t.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(t.last().unwrap().kind, "resolution");
    }

    #[test]
    fn an_alert_raised_before_its_activity_says_so_and_transitions_carry_their_window() {
        let (r, i) = review_of(json!({
            "id": "2", "status": "active", "lastUpdateDateTime": "2026-10-22T22:05:00Z",
            "alerts": [{"id": "a1", "title": "Odd", "severity": "low", "createdDateTime": "2026-10-20T10:00:00Z",
                        "firstActivityDateTime": "2026-10-20T11:00:00Z"}]
        }));
        let tr = Transition {
            field: "assignedTo".into(),
            from: None,
            to: Some("ann".into()),
            seen_at: "2026-10-20T12:05:00Z".parse().unwrap(),
            after: Some("2026-10-20T12:00:00Z".parse().unwrap()),
        };
        let (t, untimed) = build(&r, &i, std::slice::from_ref(&tr));
        assert_eq!(untimed, 1, "no creation time");
        assert!(t.iter().any(|e| e.text.contains("recorded as before its activity began")));
        assert!(t.iter().any(|e| e.text == "assigned to ann (observed between 10-20 12:00 and 12:05 UTC)"));
    }

    #[test]
    fn a_late_alert_gets_a_row_of_its_own_with_its_delay() {
        let (r, i) = review_of(json!({
            "id": "4", "status": "active", "lastUpdateDateTime": "2026-10-22T22:05:00Z",
            "alerts": [{"id": "a1", "title": "LSASS access", "severity": "high", "category": "CredentialAccess",
                        "createdDateTime": "2026-10-21T03:16:00Z", "firstActivityDateTime": "2026-10-20T23:26:00Z",
                        "mitreTechniques": ["T1003.001"]}]
        }));
        let (t, _) = build(&r, &i, &[]);
        let texts: Vec<&str> = t.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "LSASS access (T1003.001) — alert 10-21 03:16, 3 h 50 min later",
                "alert raised: LSASS access (high, Credential Access), 3 h 50 min after its activity began"
            ]
        );
    }

    #[test]
    fn an_incident_with_no_times_at_all_gives_an_empty_timeline() {
        let (r, i) = review_of(json!({"id": "3", "lastUpdateDateTime": "2026-10-22T22:05:00Z", "status": "active",
            "alerts": [{"id": "a1"}]}));
        let (t, untimed) = build(&r, &i, &[]);
        assert!(t.is_empty());
        assert_eq!(untimed, 3);
    }
}
