//! Times that mean something: detection, acknowledgement, containment (partial and full),
//! dwell and resolution, each with its basis; and the alerts left unattended.
//!
//! A figure is computed only from times the data records; each says where they came from
//! (`basis`), and a figure that cannot be computed is `null` with the reason. Times out of
//! order (an alert dated before the activity it reports) give `null`, never a negative or a 0.

use chrono::{DateTime, Utc};

use super::Settings;
use super::model::*;
use super::response::{ASSIGNMENT, AUTOMATIC, FULL, NOT_RECORDED, PARTIAL};
use crate::model::{Alert, Classification, Incident, IncidentStatus, Severity, Transition};

type Time = DateTime<Utc>;

pub(crate) fn measure(
    incident: &Incident,
    transitions: &[Transition],
    review: &Review,
    settings: &Settings,
) -> (Metrics, Vec<UnattendedAlert>) {
    let mut m = Metrics { basis: Default::default(), ..review.metrics.clone() };
    let activity = first_activity(incident);
    let alert = first_alert(incident);
    m.first_activity = activity.map(|(t, _)| t);
    m.first_alert = alert.map(|(t, _)| t);
    let detect = detect(incident, activity, alert);
    m.time_to_detect_s = detect.0;
    set(&mut m, "time_to_detect_s", detect);

    let ack = acknowledge(incident, transitions, review, alert);
    m.time_to_acknowledge_s = ack.0;
    set(&mut m, "time_to_acknowledge_s", ack);

    if benign(incident) {
        let why = format!(
            "not measured: the incident was classified {} (no attack to contain)",
            incident.classification.as_str()
        );
        for k in ["time_to_contain_s", "dwell_time_s"] {
            m.basis.insert(k.to_owned(), why.clone());
        }
        m.time_to_contain_s = None;
        m.dwell_time_s = None;
        m.dwell_time_at_most_s = None;
        m.containment = Containment::default();
    } else {
        m.containment = containment(&review.story.response);
        let contain = contain(&review.story.response, alert);
        m.time_to_contain_s = contain.0;
        set(&mut m, "time_to_contain_s", contain);
        let (dwell, at_most, why) = dwell(&m.containment, activity);
        m.dwell_time_s = dwell;
        m.dwell_time_at_most_s = at_most;
        m.basis.insert("dwell_time_s".to_owned(), why);
    }

    let resolve = resolve(incident, review, alert);
    m.time_to_resolve_s = resolve.0;
    set(&mut m, "time_to_resolve_s", resolve);

    m.observation_precision_s = transitions.iter().filter_map(|t| Some((t.seen_at - t.after?).num_seconds())).max();
    if m.observation_precision_s.is_none() {
        let why = if transitions.is_empty() {
            "no transitions observed (an offline review, or none seen while the daemon polled)"
        } else {
            "the observed transitions carry no earlier sighting"
        };
        m.basis.insert("observation_precision_s".to_owned(), why.to_owned());
    } else {
        m.basis.insert(
            "observation_precision_s".to_owned(),
            "the longest interval between the two sightings that bound an observed transition".to_owned(),
        );
    }
    let unattended = unattended(incident, transitions, review, settings);
    (m, unattended)
}

/// A figure and where it came from (or why it is `null`).
type Figure = (Option<i64>, String);

fn set(m: &mut Metrics, key: &str, f: Figure) {
    m.basis.insert(key.to_owned(), f.1);
}

fn benign(incident: &Incident) -> bool {
    matches!(incident.classification, Classification::FalsePositive | Classification::InformationalExpectedActivity)
}

fn fmt(t: Time) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The earliest recorded activity (`firstActivityDateTime`) and the alert it belongs to. Not
/// the alert's creation: that is when it was detected, not when the activity began.
fn first_activity(incident: &Incident) -> Option<(Time, &Alert)> {
    incident.alerts.iter().filter_map(|a| Some((a.first_activity?, a))).min_by_key(|(t, _)| *t)
}

fn first_alert(incident: &Incident) -> Option<(Time, &Alert)> {
    incident.alerts.iter().filter_map(|a| Some((a.created?, a))).min_by_key(|(t, _)| *t)
}

fn detect(incident: &Incident, activity: Option<(Time, &Alert)>, alert: Option<(Time, &Alert)>) -> Figure {
    let Some((raised, first)) = alert else {
        return (None, "no alert records when it was raised (createdDateTime)".to_owned());
    };
    let Some((began, by)) = activity else {
        let why = match incident.created {
            Some(_) => "no alert records when its activity began (firstActivityDateTime); only creation times are known",
            None => "no alert records when its activity began (firstActivityDateTime)",
        };
        return (None, why.to_owned());
    };
    if raised < began {
        return (
            None,
            format!(
                "times out of order: the first alert (\"{}\", {}) is dated before the first recorded activity (\"{}\", {})",
                first.title,
                fmt(raised),
                by.title,
                fmt(began)
            ),
        );
    }
    let mut basis = format!(
        "alert timestamps: activity began {} (\"{}\"), first alert {} (\"{}\")",
        fmt(began),
        by.title,
        fmt(raised),
        first.title
    );
    let missing = incident.alerts.iter().filter(|a| a.first_activity.is_none()).count();
    if missing > 0 {
        basis += &format!("; {missing} alert(s) without a first activity time not counted");
    }
    (Some((raised - began).num_seconds()), basis)
}

/// A sign that someone looked: when, and in words.
struct Sign {
    at: Time,
    what: String,
    /// The earlier bound of an observed transition.
    after: Option<Time>,
}

/// The first recorded sign of a human: an observed assignment or move to in progress, a
/// comment, an analyst's response action.
fn first_human_sign(incident: &Incident, transitions: &[Transition], review: &Review) -> Option<Sign> {
    let observed = transitions.iter().filter(|t| human_transition(t)).map(|t| Sign {
        at: t.seen_at,
        what: match t.field.as_str() {
            "assignedTo" => format!("observed: assigned to {}", t.to.as_deref().unwrap_or("(none)")),
            _ => format!("observed: {} {}", t.field, t.to.as_deref().unwrap_or("(none)")),
        },
        after: t.after,
    });
    let comments = incident.comments.iter().chain(incident.alerts.iter().flat_map(|a| &a.comments)).filter_map(|c| {
        Some(Sign {
            at: c.created?,
            what: format!("comment by {}", c.author.as_deref().unwrap_or("an author not recorded")),
            after: None,
        })
    });
    let actions = review
        .story
        .response
        .iter()
        .filter(|a| a.kind != ASSIGNMENT && a.by != AUTOMATIC && a.by != NOT_RECORDED)
        .filter_map(|a| Some(Sign { at: a.at?, what: format!("{} by {} ({})", a.action, a.by, a.basis), after: None }));
    observed.chain(comments).chain(actions).min_by_key(|s| s.at)
}

/// Assigned to someone, or put in progress.
fn human_transition(t: &Transition) -> bool {
    match t.field.as_str() {
        "assignedTo" => t.to.is_some(),
        "status" => t.to.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("inProgress")),
        _ => false,
    }
}

fn acknowledge(
    incident: &Incident,
    transitions: &[Transition],
    review: &Review,
    alert: Option<(Time, &Alert)>,
) -> Figure {
    let Some((raised, _)) = alert else {
        return (None, "no alert records when it was raised".to_owned());
    };
    let Some(sign) = first_human_sign(incident, transitions, review) else {
        let observed = if transitions.is_empty() { "no transitions observed" } else { "no assignment observed" };
        return (None, format!("no assignment, status change, comment or analyst action is recorded ({observed})"));
    };
    if sign.at < raised {
        return (
            None,
            format!(
                "times out of order: the first recorded human action ({}, {}) is dated before the first alert ({})",
                sign.what,
                fmt(sign.at),
                fmt(raised)
            ),
        );
    }
    let when = match sign.after {
        Some(a) => format!("seen between {} and {}", fmt(a), fmt(sign.at)),
        None => format!("at {}", fmt(sign.at)),
    };
    let note = if transitions.is_empty() { "; no transitions observed (offline review)" } else { "" };
    (Some((sign.at - raised).num_seconds()), format!("{}, {when}{note}", sign.what))
}

/// The first containment of each scope.
fn containment(response: &[ResponseAction]) -> Containment {
    let point = |kind: &str| {
        response.iter().find(|a| a.kind == kind).map(|a| ContainmentPoint {
            at: a.at,
            at_latest: if a.at.is_some() { None } else { a.at_latest },
            entities: a.entities.clone(),
            basis: describe(a),
        })
    };
    Containment { partial: point(PARTIAL), full: point(FULL) }
}

/// Where an action was found, for a basis: "comment by X at …", "resolving comment".
fn describe(a: &ResponseAction) -> String {
    if a.by == AUTOMATIC || a.basis.starts_with("comment by") || a.by == NOT_RECORDED {
        a.basis.clone()
    } else {
        format!("{} ({})", a.basis, a.by)
    }
}

fn contain(response: &[ResponseAction], alert: Option<(Time, &Alert)>) -> Figure {
    let contained: Vec<&ResponseAction> = response.iter().filter(|a| a.kind == PARTIAL || a.kind == FULL).collect();
    if contained.is_empty() {
        return (None, "no containment is recorded (comments, evidence status, automatic actions)".to_owned());
    }
    let Some((raised, _)) = alert else {
        return (None, "no alert records when it was raised".to_owned());
    };
    let Some(first) = contained.iter().filter(|a| a.at.is_some()).min_by_key(|a| a.at) else {
        let latest = contained.iter().filter_map(|a| a.at_latest).min();
        let by = latest.map(|l| format!("; by {} at the latest", fmt(l))).unwrap_or_default();
        return (None, format!("containment is recorded without a time ({}){by}", contained[0].basis));
    };
    let at = first.at.unwrap_or(raised);
    if at < raised {
        return (
            None,
            format!("times out of order: containment ({}) is dated before the first alert ({})", fmt(at), fmt(raised)),
        );
    }
    let scope = if first.kind == FULL { "full" } else { "partial" };
    (Some((at - raised).num_seconds()), format!("{scope} containment: {}, {}", first.action, describe(first)))
}

/// First activity → full containment; at most → its latest time when only that is known.
fn dwell(c: &Containment, activity: Option<(Time, &Alert)>) -> (Option<i64>, Option<i64>, String) {
    let Some((began, _)) = activity else {
        return (None, None, "no alert records when its activity began (firstActivityDateTime)".to_owned());
    };
    let partial = c.partial.as_ref().and_then(|p| p.at).filter(|t| *t >= began).map(|t| {
        format!("; partial containment {} after the first activity", super::render::duration(Some((t - began).num_seconds())))
    });
    let partial = partial.unwrap_or_default();
    let Some(full) = &c.full else {
        return (None, None, format!("full containment is not recorded{partial}"));
    };
    match (full.at, full.at_latest) {
        (Some(t), _) if t >= began => {
            (Some((t - began).num_seconds()), None, format!("first activity {} → full containment ({})", fmt(began), full.basis))
        }
        (Some(t), _) => (
            None,
            None,
            format!("times out of order: full containment ({}) is dated before the first activity ({})", fmt(t), fmt(began)),
        ),
        (None, Some(l)) if l >= began => (
            None,
            Some((l - began).num_seconds()),
            format!("full containment not timed ({}): at most until {}{partial}", full.basis, fmt(l)),
        ),
        _ => (None, None, format!("full containment is recorded without a time ({}){partial}", full.basis)),
    }
}

fn resolve(incident: &Incident, review: &Review, alert: Option<(Time, &Alert)>) -> Figure {
    if incident.status != IncidentStatus::Resolved {
        return (None, "the incident is not resolved".to_owned());
    }
    let Some(resolved) = review.incident.resolved else {
        return (None, "no resolution time is recorded".to_owned());
    };
    let from = match (incident.created, alert) {
        (Some(c), _) => (c, "incident created"),
        (None, Some((t, _))) => (t, "first alert (the incident's creation time is not recorded)"),
        (None, None) => return (None, "neither the incident's creation nor an alert time is recorded".to_owned()),
    };
    let latest_alert = incident.alerts.iter().filter_map(|a| a.resolved).max();
    let to = if latest_alert == Some(resolved) {
        "the last alert resolved (Graph records no incident resolution time)"
    } else {
        "the incident's last update (no alert records its resolution)"
    };
    if resolved < from.0 {
        return (None, format!("times out of order: resolved {} before {} {}", fmt(resolved), from.1, fmt(from.0)));
    }
    (Some((resolved - from.0).num_seconds()), format!("{} {} → {}, {}", from.1, fmt(from.0), fmt(resolved), to))
}

/// High and medium alerts whose first action came later than the severity's threshold (or never).
fn unattended(incident: &Incident, transitions: &[Transition], review: &Review, settings: &Settings) -> Vec<UnattendedAlert> {
    let actions: Vec<Time> = review
        .story
        .response
        .iter()
        .filter_map(|a| a.at)
        .chain(transitions.iter().filter(|t| !is_reopen(t)).map(|t| t.seen_at))
        .chain(incident.comments.iter().filter_map(|c| c.created))
        .collect();
    let mut out = Vec::new();
    for a in &incident.alerts {
        let threshold = match a.severity {
            Severity::High => settings.unattended_high,
            Severity::Medium => settings.unattended_medium,
            _ => continue,
        };
        let Some(created) = a.created else { continue };
        let own = a.comments.iter().filter_map(|c| c.created).chain(a.resolved);
        let acted_on = actions.iter().copied().chain(own).filter(|t| *t >= created).min();
        // Never acted on: how long it waited, to its resolution or (still open) to the snapshot.
        let until = acted_on.or(review.incident.resolved).unwrap_or(incident.last_update);
        if until < created {
            continue;
        }
        let delay = (until - created).num_seconds();
        let over = chrono::Duration::from_std(threshold).map_or(false, |t| until - created > t);
        if over {
            out.push(UnattendedAlert {
                alert: a.id.clone(),
                title: a.title.clone(),
                severity: a.severity.as_str().to_owned(),
                created,
                acted_on,
                delay_s: delay,
            });
        }
    }
    out
}

/// Back to active: no one acting on an alert.
fn is_reopen(t: &Transition) -> bool {
    t.field == "status" && t.to.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("active"))
}

#[cfg(test)]
mod tests {}
