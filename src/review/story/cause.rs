//! The way in (what the alerts show of Initial Access) and the root cause (what the analysts
//! wrote of it, in their words).

use super::{Ctx, Statement, uniq};
use crate::review::model::{Entity, InitialAccess, RootCause};

/// Phrases with which analysts name a cause.
const CAUSE: &[&str] = &[
    "root cause",
    "initial access",
    "initial vector",
    "attack vector",
    "entry point",
    "way in",
    "came in via",
    "came in through",
    "got in via",
    "got in through",
    "gained access via",
    "gained access through",
    "gained access by",
    "was caused by",
    "caused by",
    "originated from",
    "started with",
];

/// A sentence naming a cause and at once saying it is not known is no root cause.
const UNKNOWN: &[&str] = &[
    "unknown",
    "not known",
    "undetermined",
    "not determined",
    "not identified",
    "unclear",
    "under investigation",
    "tbd",
    "to be determined",
    "not yet",
];

/// The first sentence that names a cause: the resolving comment's first (the analysts'
/// conclusion), then the comments, newest first. `None` when nothing was recorded.
pub(in crate::review) fn root_cause(c: &Ctx) -> Option<RootCause> {
    let names_cause = |s: &&Statement| {
        let lower = s.text.to_lowercase();
        CAUSE.iter().any(|k| lower.contains(k)) && !UNKNOWN.iter().any(|k| lower.contains(k))
    };
    let resolving = c.said.iter().filter(|s| s.resolving).find(names_cause);
    let found = resolving.or_else(|| c.said.iter().filter(|s| !s.resolving).rev().find(names_cause))?;
    // Statements end at ";" as well, for the actions listed in a comment; a cause goes on to
    // the sentence's end ("same lure as 2388; the block-list entry had expired").
    let originals = c.incident.resolving_comment.iter().chain(c.incident.comments.iter().map(|x| &x.comment));
    let mut originals = originals.chain(c.incident.alerts.iter().flat_map(|a| a.comments.iter().map(|x| &x.comment)));
    let text = originals.find_map(|o| whole_sentence(o, &found.text)).unwrap_or_else(|| found.text.clone());
    Some(RootCause {
        text,
        author: found.author.clone(),
        at: found.at,
        source: if found.resolving { "resolving_comment" } else { "comment" }.to_owned(),
    })
}

/// The sentence of `original` that begins with `part`, to its full stop.
fn whole_sentence(original: &str, part: &str) -> Option<String> {
    let start = original.find(part)?;
    let rest = &original[start..];
    let end = [rest.find(". ").map(|i| i + 1), rest.find('\n')].into_iter().flatten().min().unwrap_or(rest.len());
    Some(rest[..end].trim().to_owned())
}

/// What the alerts show of the way in. Not detected: the first recorded activity and the
/// first alert's entities are what points to it.
pub(in crate::review) fn initial_access(c: &Ctx) -> InitialAccess {
    let ia = c.tactic_alerts("initial-access");
    let detected = !ia.is_empty();
    let techniques: Vec<String> = c
        .review
        .tactics
        .iter()
        .filter(|t| t.shortname == "initial-access")
        .flat_map(|t| t.techniques.iter().cloned())
        .collect();
    let alerts: Vec<String> = if detected {
        ia.iter().map(|a| (*a).to_owned()).collect()
    } else {
        c.first_alert_by_activity().map(|a| a.id.clone()).into_iter().collect()
    };
    let first_activity = if detected {
        alerts.iter().filter_map(|a| c.began(a)).min()
    } else {
        c.review.metrics.first_activity.or_else(|| c.incident.first_activity())
    };
    let ids: Vec<&str> = alerts.iter().map(String::as_str).collect();
    let evidence = uniq(c.entities(EVIDENCE_KINDS, &ids).into_iter().map(label).collect());
    InitialAccess { detected, techniques: uniq(techniques), first_activity, evidence, alerts }
}

/// Entity kinds that can point to a way in (processes and files are what ran after it).
const EVIDENCE_KINDS: &[&str] =
    &["device", "user", "mailbox", "ip", "url", "cloud_app", "oauth_app", "analyzed_message", "mail_cluster"];

/// "device ts-gw-01.corp.contoso.com".
pub(super) fn label(e: &Entity) -> String {
    format!("{} {}", e.kind.replace('_', " "), e.name)
}
