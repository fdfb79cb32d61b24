//! How the incident ended, and the one-line headline of every format.

use super::{Ctx, words};
use crate::review::model::Outcome;

pub(in crate::review) fn outcome(c: &Ctx) -> Outcome {
    let s = &c.review.incident;
    let resolved = s.status == "resolved";
    let resolved_by = if resolved { resolver(c) } else { None };
    let verdict = verdict(&s.classification, &s.determination);
    let headline = if resolved {
        let when = match s.resolved {
            Some(t) => format!("Resolved {} UTC", t.format("%Y-%m-%d %H:%M")),
            None => "Resolved (time not recorded)".to_owned(),
        };
        let by = match &resolved_by {
            Some(who) => format!(" by {who}"),
            None => "; who resolved it is not recorded".to_owned(),
        };
        format!("{verdict}. {when}{by}.")
    } else {
        format!("Not resolved (status: {}). {verdict}.", words(&s.status))
    };
    Outcome {
        status: s.status.clone(),
        classification: s.classification.clone(),
        determination: s.determination.clone(),
        resolved_by,
        resolved_at: s.resolved,
        resolving_comment: s.resolving_comment.clone(),
        headline,
    }
}

/// The assignee; else the author of the last comment; else Graph's `lastModifiedBy`.
fn resolver(c: &Ctx) -> Option<String> {
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
    let last_comment = c
        .incident
        .comments
        .iter()
        .filter(|x| x.author.as_deref().is_some_and(|a| !a.trim().is_empty()))
        .max_by_key(|x| x.created)
        .and_then(|x| x.author.clone());
    nonempty(&c.review.incident.owner).or(last_comment).or_else(|| nonempty(&c.incident.last_modified_by))
}

/// "True positive — multi-staged attack", "Not classified".
pub(super) fn verdict(classification: &str, determination: &str) -> String {
    let class = match classification {
        "truePositive" => Some("True positive".to_owned()),
        "falsePositive" => Some("False positive".to_owned()),
        "informationalExpectedActivity" => Some("Informational, expected activity".to_owned()),
        "" | "unknown" | "unknownFutureValue" => None,
        other => Some(capitalised(&words(other))),
    };
    let det = match determination {
        "" | "unknown" | "unknownFutureValue" => None,
        "multiStagedAttack" => Some("multi-staged attack".to_owned()),
        "apt" => Some("APT".to_owned()),
        "lineOfBusinessApplication" => Some("line-of-business application".to_owned()),
        other => Some(words(other)),
    };
    match (class, det) {
        (Some(c), Some(d)) => format!("{c} — {d}"),
        (Some(c), None) => c,
        (None, Some(d)) => format!("Not classified — {d}"),
        (None, None) => "Not classified".to_owned(),
    }
}

fn capitalised(s: &str) -> String {
    let mut ch = s.chars();
    match ch.next() {
        Some(f) => f.to_uppercase().chain(ch).collect(),
        None => String::new(),
    }
}
