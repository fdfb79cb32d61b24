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
            Some(_) => {
                "no alert records when its activity began (firstActivityDateTime); only creation times are known"
            }
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
    let (partial, full) = (point(PARTIAL), point(FULL));
    // Partial containment is a step before full: a partial action recorded after the full
    // containment (an app's consent revoked once the account was disabled) is remediation of
    // what was already contained, not a first, partial containment.
    let partial = match (&partial, &full) {
        (Some(p), Some(f)) if f.at.is_some() && (p.at.is_none() || f.at <= p.at) => None,
        _ => partial,
    };
    Containment { partial, full }
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
        format!(
            "; partial containment {} after the first activity",
            super::render::duration(Some((t - began).num_seconds()))
        )
    });
    let partial = partial.unwrap_or_default();
    let Some(full) = &c.full else {
        return (None, None, format!("full containment is not recorded{partial}"));
    };
    match (full.at, full.at_latest) {
        (Some(t), _) if t >= began => (
            Some((t - began).num_seconds()),
            None,
            format!("first activity {} → full containment ({})", fmt(began), full.basis),
        ),
        (Some(t), _) => (
            None,
            None,
            format!(
                "times out of order: full containment ({}) is dated before the first activity ({})",
                fmt(t),
                fmt(began)
            ),
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
fn unattended(
    incident: &Incident,
    transitions: &[Transition],
    review: &Review,
    settings: &Settings,
) -> Vec<UnattendedAlert> {
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
        let over = chrono::Duration::from_std(threshold).is_ok_and(|t| until - created > t);
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
mod tests {
    use super::*;
    use serde_json::json;

    fn review_of(i: &Incident, transitions: &[Transition]) -> Review {
        static ENGINE: std::sync::OnceLock<super::super::Engine> = std::sync::OnceLock::new();
        let engine = ENGINE.get_or_init(|| {
            let catalog = std::sync::Arc::new(crate::attack::store::embedded().unwrap());
            super::super::Engine::new(catalog, None, None, Settings::default())
        });
        engine
            .review(&super::super::Subject { incident: i, source: "t", revision: 1, transitions }, &Default::default())
    }

    fn t(s: &str) -> Time {
        s.parse().unwrap()
    }

    fn incident(v: serde_json::Value) -> Incident {
        Incident::from_graph(&v).unwrap()
    }

    /// A resolved incident of one alert.
    fn one_alert(alert: serde_json::Value, extra: serde_json::Value) -> Incident {
        let mut v = json!({"id": "1", "status": "resolved", "classification": "truePositive",
            "createdDateTime": "2026-10-16T10:01:00Z", "lastUpdateDateTime": "2026-10-17T10:00:00Z",
            "alerts": [alert]});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        incident(v)
    }

    fn basis<'a>(m: &'a Metrics, k: &str) -> &'a str {
        m.basis.get(k).map(String::as_str).unwrap_or("")
    }

    #[test]
    fn no_evidence_no_comments_gives_nulls_with_reasons() {
        let i = one_alert(
            json!({"id": "a", "title": "Malware", "severity": "high", "firstActivityDateTime": "2026-10-16T09:50:00Z",
                "createdDateTime": "2026-10-16T10:00:00Z", "resolvedDateTime": "2026-10-17T10:00:00Z"}),
            json!({}),
        );
        let m = review_of(&i, &[]).metrics;
        assert_eq!(m.time_to_detect_s, Some(600));
        assert!(basis(&m, "time_to_detect_s").starts_with("alert timestamps"), "{:?}", m.basis);
        assert_eq!(m.time_to_acknowledge_s, None);
        assert!(basis(&m, "time_to_acknowledge_s").contains("no assignment, status change, comment or analyst action"));
        assert_eq!((m.time_to_contain_s, m.dwell_time_s, m.dwell_time_at_most_s), (None, None, None));
        assert!(basis(&m, "time_to_contain_s").starts_with("no containment is recorded"));
        assert_eq!(basis(&m, "dwell_time_s"), "full containment is not recorded");
        assert_eq!(m.time_to_resolve_s, Some(86_340));
        assert!(basis(&m, "time_to_resolve_s").contains("the last alert resolved"), "{:?}", m.basis);
        assert_eq!(m.observation_precision_s, None);
        assert!(basis(&m, "observation_precision_s").starts_with("no transitions observed"));
        assert_eq!(m.containment, Containment::default());
    }

    #[test]
    fn without_first_activity_times_detection_is_unknown_not_zero() {
        let i = one_alert(json!({"id": "a", "title": "Malware", "createdDateTime": "2026-10-16T10:00:00Z"}), json!({}));
        let m = review_of(&i, &[]).metrics;
        assert_eq!((m.first_activity, m.time_to_detect_s), (None, None));
        assert!(basis(&m, "time_to_detect_s").contains("only creation times are known"), "{:?}", m.basis);
        assert!(basis(&m, "dwell_time_s").starts_with("no alert records when its activity began"));
    }

    #[test]
    fn an_alert_dated_before_its_activity_gives_no_figure() {
        let i = one_alert(
            json!({"id": "a", "title": "Odd clock", "firstActivityDateTime": "2026-10-16T10:30:00Z",
                "createdDateTime": "2026-10-16T10:00:00Z"}),
            json!({}),
        );
        let m = review_of(&i, &[]).metrics;
        assert_eq!(m.time_to_detect_s, None);
        assert!(basis(&m, "time_to_detect_s").starts_with("times out of order"), "{:?}", m.basis);
        assert!(basis(&m, "time_to_detect_s").contains("\"Odd clock\""));
    }

    #[test]
    fn a_45_day_gap_is_a_figure() {
        let i = one_alert(
            json!({"id": "a", "title": "Mailbox rule", "firstActivityDateTime": "2026-09-01T10:00:00Z",
                "createdDateTime": "2026-10-16T10:00:00Z"}),
            json!({}),
        );
        let m = review_of(&i, &[]).metrics;
        assert_eq!(m.time_to_detect_s, Some(45 * 86_400));
        assert_eq!(m.first_activity, Some(t("2026-09-01T10:00:00Z")));
    }

    #[test]
    fn observed_transitions_time_acknowledgement_with_their_precision() {
        let i = one_alert(
            json!({"id": "a", "title": "Sign-in", "severity": "medium", "firstActivityDateTime": "2026-10-16T09:00:00Z",
                "createdDateTime": "2026-10-16T10:00:00Z", "resolvedDateTime": "2026-10-17T10:00:00Z"}),
            json!({"comments": [{"comment": "Looking", "createdByDisplayName": "bob", "createdDateTime": "2026-10-16T12:00:00Z"}]}),
        );
        let tr = |field: &str, to: &str, after: &str, seen: &str| Transition {
            field: field.into(),
            from: None,
            to: Some(to.into()),
            seen_at: t(seen),
            after: Some(t(after)),
        };
        let transitions = [
            tr("status", "active", "2026-10-16T10:00:00Z", "2026-10-16T10:02:00Z"),
            tr("assignedTo", "ann@contoso.com", "2026-10-16T10:40:00Z", "2026-10-16T10:45:00Z"),
            tr("status", "inProgress", "2026-10-16T10:50:00Z", "2026-10-16T11:00:00Z"),
        ];
        let m = review_of(&i, &transitions).metrics;
        assert_eq!(m.time_to_acknowledge_s, Some(45 * 60));
        assert_eq!(
            basis(&m, "time_to_acknowledge_s"),
            "observed: assigned to ann@contoso.com, seen between 2026-10-16 10:40 UTC and 2026-10-16 10:45 UTC"
        );
        assert_eq!(m.observation_precision_s, Some(600));
        // Offline, the comment is the first sign.
        let m = review_of(&i, &[]).metrics;
        assert_eq!(m.time_to_acknowledge_s, Some(2 * 3600));
        assert_eq!(
            basis(&m, "time_to_acknowledge_s"),
            "comment by bob, at 2026-10-16 12:00 UTC; no transitions observed (offline review)"
        );
    }

    #[test]
    fn containment_named_only_by_the_resolving_comment_bounds_dwell() {
        let i = one_alert(
            json!({"id": "a", "title": "Sign-in", "firstActivityDateTime": "2026-10-16T09:00:00Z",
                "createdDateTime": "2026-10-16T10:00:00Z", "resolvedDateTime": "2026-10-17T10:00:00Z",
                "evidence": [{"@odata.type": "#microsoft.graph.security.userEvidence", "roles": ["compromised"],
                    "userAccount": {"userPrincipalName": "kim@contoso.com"}}]}),
            json!({"resolvingComment": "kim@contoso.com disabled and sessions revoked."}),
        );
        let m = review_of(&i, &[]).metrics;
        let full = m.containment.full.clone().unwrap();
        assert_eq!((full.at, full.at_latest), (None, Some(t("2026-10-17T10:00:00Z"))));
        assert_eq!(full.entities, ["kim@contoso.com"]);
        assert_eq!(m.time_to_contain_s, None);
        assert!(basis(&m, "time_to_contain_s").starts_with("containment is recorded without a time"), "{:?}", m.basis);
        assert_eq!((m.dwell_time_s, m.dwell_time_at_most_s), (None, Some(25 * 3600)));
        assert!(basis(&m, "dwell_time_s").starts_with("full containment not timed (resolving comment"));
    }

    #[test]
    fn a_false_positive_keeps_detect_ack_and_resolve_but_not_containment() {
        let i = one_alert(
            json!({"id": "a", "title": "Admin tool", "firstActivityDateTime": "2026-10-16T09:00:00Z",
                "createdDateTime": "2026-10-16T10:00:00Z", "resolvedDateTime": "2026-10-17T10:00:00Z",
                "evidence": [{"@odata.type": "#microsoft.graph.security.deviceEvidence", "deviceDnsName": "pc-1"}]}),
            json!({"classification": "falsePositive",
                "comments": [{"comment": "Isolated pc-1 while checking", "createdByDisplayName": "bob", "createdDateTime": "2026-10-16T10:30:00Z"}]}),
        );
        let m = review_of(&i, &[]).metrics;
        assert_eq!((m.time_to_detect_s, m.time_to_acknowledge_s), (Some(3600), Some(1800)));
        assert!(m.time_to_resolve_s.is_some());
        assert_eq!((m.time_to_contain_s, m.dwell_time_s, m.dwell_time_at_most_s), (None, None, None));
        assert_eq!(m.containment, Containment::default());
        assert!(basis(&m, "time_to_contain_s").contains("classified falsePositive"));
        assert!(basis(&m, "dwell_time_s").contains("classified falsePositive"));
    }

    #[test]
    fn unattended_alerts_by_severity_threshold() {
        let i = incident(json!({"id": "1", "status": "active", "lastUpdateDateTime": "2026-10-17T10:00:00Z",
        "comments": [{"comment": "on it", "createdByDisplayName": "bob", "createdDateTime": "2026-10-16T11:30:00Z"}],
        "alerts": [
            {"id": "h", "title": "High, acted on after 90 min", "severity": "high", "createdDateTime": "2026-10-16T10:00:00Z"},
            {"id": "m", "title": "Medium, acted on after 90 min", "severity": "medium", "createdDateTime": "2026-10-16T10:00:00Z"},
            {"id": "n", "title": "High, never acted on", "severity": "high", "createdDateTime": "2026-10-16T12:00:00Z"},
            {"id": "l", "title": "Low, never acted on", "severity": "low", "createdDateTime": "2026-10-16T12:00:00Z"},
            {"id": "x", "title": "High, no time", "severity": "high"}
        ]}));
        let review = review_of(&i, &[]);
        let got: Vec<(&str, Option<Time>, i64)> =
            review.unattended_alerts.iter().map(|u| (u.alert.as_str(), u.acted_on, u.delay_s)).collect();
        assert_eq!(got, [("h", Some(t("2026-10-16T11:30:00Z")), 5400), ("n", None, 22 * 3600)]);
        // Thresholds are settings.
        let strict = Settings { unattended_medium: std::time::Duration::from_secs(3600), ..Settings::default() };
        let (_, u) = measure(&i, &[], &review, &strict);
        assert_eq!(u.iter().map(|u| u.alert.as_str()).collect::<Vec<_>>(), ["h", "m", "n"]);
        // An observed assignment acts on the alert raised before it.
        let assigned = [Transition {
            field: "assignedTo".into(),
            from: None,
            to: Some("ann".into()),
            seen_at: t("2026-10-16T10:20:00Z"),
            after: Some(t("2026-10-16T10:15:00Z")),
        }];
        let (_, u) = measure(&i, &assigned, &review, &Settings::default());
        assert_eq!(u.iter().map(|u| u.alert.as_str()).collect::<Vec<_>>(), ["n"]);
    }

    /// Figures from the sample's data: first activity 10-20 22:05 (failed RDP sign-ins), first
    /// alert 22:27, the first comment (fs-02 and sql-01 isolated) 10-21 00:25:00.014, the
    /// resolving comment "Contained: …" without a time, the last alert resolved 10-22
    /// 22:05:00.288, the incident created 10-20 22:28:00.002. The LSASS alert (10-21 03:16) and
    /// the exfiltration alert (05:40) came after the isolation and waited for the next comment
    /// (10-22 21:45).
    #[test]
    fn the_ransomware_sample() {
        let text = include_str!("../../examples/incidents/human-operated-ransomware.json");
        let i = Incident::from_graph(&serde_json::from_str(text).unwrap()).unwrap();
        let r = review_of(&i, &[]);
        let m = &r.metrics;
        assert_eq!(m.time_to_detect_s, Some(22 * 60));
        assert_eq!(m.time_to_acknowledge_s, Some(3600 + 58 * 60));
        assert_eq!(m.time_to_contain_s, Some(3600 + 58 * 60));
        assert_eq!(
            basis(m, "time_to_contain_s"),
            "partial containment: Isolated fs-02 and sql-01, comment by ir.oncall@contoso.com at 2026-10-21 00:25 UTC"
        );
        let partial = m.containment.partial.clone().unwrap();
        assert_eq!(partial.at, Some(t("2026-10-21T00:25:00.014Z")));
        assert_eq!(partial.entities, ["fs-02.corp.contoso.com", "sql-01.corp.contoso.com"]);
        let full = m.containment.full.clone().unwrap();
        assert_eq!((full.at, full.at_latest), (None, Some(t("2026-10-22T22:05:00.288Z"))));
        assert_eq!(full.basis, "resolving comment (time not recorded)");
        assert_eq!((m.dwell_time_s, m.dwell_time_at_most_s), (None, Some(48 * 3600)));
        assert!(
            basis(m, "dwell_time_s").contains("partial containment 2 h 20 min after the first activity"),
            "{:?}",
            m.basis
        );
        assert_eq!(m.time_to_resolve_s, Some(47 * 3600 + 37 * 60));
        assert_eq!(m.observation_precision_s, None);
        let u: Vec<(&str, i64)> = r.unattended_alerts.iter().map(|u| (u.title.as_str(), u.delay_s)).collect();
        assert_eq!(
            u,
            [
                ("Suspicious access to LSASS service", 42 * 3600 + 29 * 60),
                ("Suspicious data upload to a file-sharing service", 40 * 3600 + 5 * 60),
            ]
        );
        assert!(r.unattended_alerts.iter().all(|u| u.acted_on == Some(t("2026-10-22T21:45:00.286Z"))));
    }
}
