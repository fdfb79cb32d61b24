//! What a reader must know before the findings: shown first in every format.

use super::model::*;
use crate::model::{AlertStatus, Classification, Incident, IncidentStatus};

/// Alerts named in a warning before "and n more".
const NAMED: usize = 5;

pub(crate) fn find(review: &Review, incident: &Incident) -> Vec<Warning> {
    let mut out = Vec::new();
    let resolved = incident.status == IncidentStatus::Resolved;
    if !resolved {
        out.push(warning(
            "not_resolved",
            format!(
                "The incident is not resolved (status {}): this review is provisional, and its times and findings may change.",
                status_name(incident)
            ),
        ));
    }
    if resolved && unclassified(incident) {
        out.push(warning(
            "unclassified",
            format!(
                "The incident was resolved without a classification ({} / {}): whether it was an attack is not recorded.",
                incident.classification, incident.determination
            ),
        ));
    }
    if resolved && let Some(w) = alerts_active(incident) {
        out.push(w);
    }
    if let Some(w) = partial_review(review, incident) {
        out.push(w);
    }
    if !incident.warnings.is_empty() {
        out.push(input(&incident.warnings));
    }
    out
}

fn warning(kind: &str, message: String) -> Warning {
    Warning { kind: kind.to_owned(), message }
}

fn status_name(incident: &Incident) -> &str {
    match incident.status.as_str() {
        "" => "not recorded",
        s => s,
    }
}

/// No classification, or unknown/unknown: the resolver did not say what it was.
fn unclassified(incident: &Incident) -> bool {
    match &incident.classification {
        Classification::Unknown | Classification::UnknownFutureValue => true,
        Classification::Other(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Alerts still new or in progress on a resolved incident, by title.
fn alerts_active(incident: &Incident) -> Option<Warning> {
    let active: Vec<_> =
        incident.alerts.iter().filter(|a| matches!(a.status, AlertStatus::New | AlertStatus::InProgress)).collect();
    if active.is_empty() {
        return None;
    }
    let mut names: Vec<String> = active.iter().take(NAMED).map(|a| format!("\"{}\" ({})", a.title, a.status)).collect();
    if active.len() > NAMED {
        names.push(format!("and {} more", active.len() - NAMED));
    }
    let (count, verb) =
        if active.len() == 1 { ("1 alert".to_owned(), "is") } else { (format!("{} alerts", active.len()), "are") };
    Some(warning(
        "alerts_active",
        format!(
            "The incident is resolved but {count} {verb} still open: {}. Their activity may not be over.",
            names.join(", ")
        ),
    ))
}

/// Only part of the incident was read: alerts or evidence past the limits.
fn partial_review(review: &Review, incident: &Incident) -> Option<Warning> {
    let mut parts = Vec::new();
    if incident.alerts_omitted > 0 {
        let total = review.incident.alerts.max(incident.alerts.len() + incident.alerts_omitted);
        parts.push(format!(
            "only the first {} of its {total} alerts were reviewed (review.max_alerts); the {} others are in the stored snapshot",
            incident.alerts.len(),
            incident.alerts_omitted
        ));
    }
    if incident.evidence_omitted > 0 {
        parts.push(format!(
            "{} evidence item(s) past the per-alert limit (review.max_evidence) were not read",
            incident.evidence_omitted
        ));
    }
    if parts.is_empty() {
        return None;
    }
    Some(warning("partial_review", format!("Part of the incident was left out: {}.", parts.join("; "))))
}

/// Fields of the incident that could not be read: the review was made without them.
fn input(problems: &[String]) -> Warning {
    let mut shown: Vec<String> = problems.iter().take(NAMED).cloned().collect();
    if problems.len() > NAMED {
        shown.push(format!("and {} more", problems.len() - NAMED));
    }
    Warning {
        kind: "input".to_owned(),
        message: format!(
            "{} field(s) of the incident could not be read and were left out of this review: {}.",
            problems.len(),
            shown.join("; ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn incident(v: serde_json::Value) -> Incident {
        Incident::from_graph(&v).unwrap()
    }

    fn kinds(w: &[Warning]) -> Vec<&str> {
        w.iter().map(|w| w.kind.as_str()).collect()
    }

    fn review_of(i: &Incident) -> Review {
        static ENGINE: std::sync::OnceLock<super::super::Engine> = std::sync::OnceLock::new();
        let engine = ENGINE.get_or_init(|| {
            let catalog = std::sync::Arc::new(crate::attack::store::embedded().unwrap());
            super::super::Engine::new(catalog, None, None, super::super::Settings::default())
        });
        engine.review(
            &super::super::Subject { incident: i, source: "t", revision: 1, transitions: &[] },
            &Default::default(),
        )
    }

    #[test]
    fn a_clean_resolved_incident_has_no_warning() {
        let i = incident(json!({"id": "1", "status": "resolved", "classification": "truePositive",
            "determination": "malware", "lastUpdateDateTime": "2026-11-01T10:00:00Z",
            "alerts": [{"id": "a", "title": "Malware", "status": "resolved"}]}));
        assert!(find(&review_of(&i), &i).is_empty());
    }

    #[test]
    fn an_open_incident_says_so_and_is_not_called_unclassified() {
        let i = incident(json!({"id": "1", "status": "active", "lastUpdateDateTime": "2026-11-01T10:00:00Z",
            "alerts": [{"id": "a", "title": "Malware", "status": "new"}]}));
        let w = find(&review_of(&i), &i);
        assert_eq!(kinds(&w), ["not_resolved"]);
        assert!(w[0].message.contains("status active"), "{}", w[0].message);
    }

    #[test]
    fn resolved_as_unknown_with_alerts_still_open_names_them() {
        let i = incident(json!({"id": "1", "status": "resolved", "classification": "unknown",
            "determination": "unknown", "lastUpdateDateTime": "2026-11-01T10:00:00Z",
            "alerts": [{"id": "a", "title": "Suspicious sign-in", "status": "new"},
                       {"id": "b", "title": "Mailbox rule created", "status": "inProgress"},
                       {"id": "c", "title": "Done", "status": "resolved"}]}));
        let w = find(&review_of(&i), &i);
        assert_eq!(kinds(&w), ["unclassified", "alerts_active"]);
        assert!(w[0].message.contains("unknown / unknown"), "{}", w[0].message);
        assert!(w[1].message.contains("2 alerts are still open"), "{}", w[1].message);
        assert!(w[1].message.contains("\"Suspicious sign-in\" (new)"), "{}", w[1].message);
        assert!(w[1].message.contains("\"Mailbox rule created\" (inProgress)"), "{}", w[1].message);
        assert!(!w[1].message.contains("Done"));
        // No classification at all reads the same.
        let i = incident(json!({"id": "1", "status": "resolved", "lastUpdateDateTime": "2026-11-01T10:00:00Z"}));
        assert_eq!(kinds(&find(&review_of(&i), &i)), ["unclassified"]);
    }

    #[test]
    fn omitted_alerts_and_evidence_and_unreadable_fields_are_warned_about() {
        let alerts: Vec<_> = (0..7)
            .map(|n| {
                json!({"id": format!("a{n}"), "title": format!("Alert {n}"), "status": "resolved",
                "createdDateTime": "yesterday", "evidence": [{}, {}, {}]})
            })
            .collect();
        let v = json!({"id": "1", "status": "resolved", "classification": "truePositive",
            "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": alerts});
        let i = Incident::from_graph_limited(&v, &crate::model::Limits { max_alerts: 5, max_evidence: 2 }).unwrap();
        let w = find(&review_of(&i), &i);
        assert_eq!(kinds(&w), ["partial_review", "input"]);
        assert!(w[0].message.contains("only the first 5 of its 7 alerts"), "{}", w[0].message);
        assert!(w[0].message.contains("5 evidence item(s)"), "{}", w[0].message);
        assert!(w[1].message.starts_with("5 field(s) of the incident could not be read"), "{}", w[1].message);
        assert!(w[1].message.contains("alerts[0].createdDateTime: expected an ISO-8601 date-time"), "{}", w[1].message);
    }
}
