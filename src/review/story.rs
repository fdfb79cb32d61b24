//! The incident as a story: the outcome, five summary lines, impact, exposed credentials, what
//! worked, open questions, root cause and the way in. Deterministic rules over the data; a line
//! never claims more than the data shows.
//!
//! Each part has its module: [`outcome`], [`cause`] (root cause and the way in), [`impact`]
//! (impact and data exposed), [`credentials`], [`notes`] (what worked, open questions) and
//! [`summary`] (the five lines, from all of them). This module holds what they share: the
//! facts of the incident as the rules read them.

mod cause;
mod credentials;
mod impact;
mod notes;
mod outcome;
mod summary;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

use super::History;
use super::model::*;
use crate::model::{Alert, Incident};

/// Everything of the story but `response` (found before, by [`super::response`], and read
/// here from `review.story.response`).
pub(crate) fn tell(review: &Review, incident: &Incident, history: &History) -> Story {
    let c = Ctx::new(review, incident);
    let mut story = Story {
        outcome: outcome::outcome(&c),
        initial_access: cause::initial_access(&c),
        root_cause: cause::root_cause(&c),
        impact: impact::impact(&c),
        exposed_credentials: credentials::exposed(&c),
        ..Story::default()
    };
    story.what_worked = notes::what_worked(&c);
    story.open_questions = notes::open_questions(&c, &story);
    story.summary = summary::lines(&c, &story);
    // The similar incidents read the way in and root cause found above.
    (story.similar_incidents, story.recurring) = super::similar::find_for(review, &story, history);
    story
}

/// One sentence of a comment, with who wrote it and when.
#[derive(Debug, Clone)]
pub(super) struct Statement {
    pub text: String,
    pub author: Option<String>,
    pub at: Option<DateTime<Utc>>,
    /// From the resolving comment (its author and time are those of the resolution, when known).
    pub resolving: bool,
}

impl Statement {
    /// "ann at 10-21 00:25" / "the resolving comment": where a fact came from.
    pub fn source(&self) -> String {
        let who = self.author.as_deref().unwrap_or("author not recorded");
        match (self.resolving, self.at) {
            (true, _) => format!("resolving comment ({who})"),
            (false, Some(at)) => format!("comment by {who} at {}", short_time(at)),
            (false, None) => format!("comment by {who} (time not recorded)"),
        }
    }
}

/// The incident as the rules read it.
pub(super) struct Ctx<'a> {
    pub review: &'a Review,
    pub incident: &'a Incident,
    /// Not a false positive or expected activity: there was an attack to tell.
    pub real: bool,
    /// Every sentence of every comment, oldest first, the resolving comment's last.
    pub said: Vec<Statement>,
}

impl<'a> Ctx<'a> {
    pub fn new(review: &'a Review, incident: &'a Incident) -> Self {
        let real =
            !matches!(review.incident.classification.as_str(), "falsePositive" | "informationalExpectedActivity");
        Ctx { review, incident, real, said: statements(review, incident) }
    }

    /// The alerts of an observed tactic (ATT&CK shortname).
    pub fn tactic_alerts(&self, shortname: &str) -> Vec<&'a str> {
        self.review
            .tactics
            .iter()
            .filter(|t| t.shortname == shortname && t.state == StageState::Observed)
            .flat_map(|t| t.alerts.iter().map(String::as_str))
            .collect()
    }

    pub fn alert(&self, id: &str) -> Option<&'a Alert> {
        self.incident.alerts.iter().find(|a| a.id == id)
    }

    pub fn title(&self, id: &str) -> String {
        self.alert(id).map_or_else(|| id.to_owned(), |a| a.title.clone())
    }

    /// When an alert's activity began: its first activity, else its creation.
    pub fn began(&self, id: &str) -> Option<DateTime<Utc>> {
        self.alert(id).and_then(|a| a.first_activity.or(a.created))
    }

    /// The merged entities of these kinds that any of `alerts` names.
    pub fn entities(&self, kinds: &[&str], alerts: &[&str]) -> Vec<&'a Entity> {
        self.review
            .incident
            .entities
            .iter()
            .filter(|e| kinds.contains(&e.kind.as_str()) && e.alerts.iter().any(|a| alerts.contains(&a.as_str())))
            .collect()
    }

    /// Every merged entity of these kinds.
    pub fn all_entities(&self, kinds: &[&str]) -> Vec<&'a Entity> {
        self.review.incident.entities.iter().filter(|e| kinds.contains(&e.kind.as_str())).collect()
    }

    /// Canonical technique IDs an alert maps to.
    pub fn techniques_of(&self, alert: &str) -> Vec<&'a str> {
        self.review.techniques.iter().filter(|t| t.alerts.iter().any(|a| a == alert)).map(|t| t.id.as_str()).collect()
    }

    /// "T1133 External Remote Services", or the bare ID when the catalog has no name.
    pub fn technique_label(&self, id: &str) -> String {
        match self.review.techniques.iter().find(|t| t.id == id).and_then(|t| t.name.as_deref()) {
            Some(name) => format!("{id} {name}"),
            None => id.to_owned(),
        }
    }

    /// Statements that mention any of `keys` (lower case), not negated.
    pub fn mentions(&self, keys: &[&str]) -> Vec<&Statement> {
        self.said.iter().filter(|s| mentions(&s.text, keys)).collect()
    }

    /// The alerts other than the Initial Access ones whose activity began before the way in
    /// was first seen (`ia.first_activity`), in the incident's order; none when it is unknown.
    pub fn before_way_in(&self, ia: &InitialAccess) -> Vec<&'a Alert> {
        let Some(entry) = ia.first_activity else { return vec![] };
        self.incident
            .alerts
            .iter()
            .filter(|a| !ia.alerts.contains(&a.id) && a.first_activity.is_some_and(|f| f < entry))
            .collect()
    }

    /// The alert whose activity began first (the earliest evidence of the attack).
    pub fn first_alert_by_activity(&self) -> Option<&'a Alert> {
        self.incident
            .alerts
            .iter()
            .filter(|a| a.first_activity.or(a.created).is_some())
            .min_by_key(|a| a.first_activity.or(a.created))
    }
}

/// Whether `text` mentions one of `keys` (lower case) in a way that is not negated ("no
/// exfiltration", "not restored", "without legal").
pub(super) fn mentions(text: &str, keys: &[&str]) -> bool {
    let lower = text.to_lowercase();
    keys.iter().any(|k| {
        lower.match_indices(k).any(|(i, _)| {
            let before = &lower[..i];
            let window: String = before.chars().rev().take(32).collect::<Vec<_>>().into_iter().rev().collect();
            let words: Vec<&str> = window.split(|c: char| !c.is_alphanumeric() && c != '\'').collect();
            !words
                .iter()
                .any(|w| matches!(*w, "no" | "not" | "never" | "without" | "nothing" | "none") || w.ends_with("n't"))
        })
    })
}

/// The sentences of a text: split at line ends and at ". ", "; ", "! ", "? ".
pub(super) fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let bytes = line.as_bytes();
        for i in 0..bytes.len() {
            let end = matches!(bytes[i], b'.' | b';' | b'!' | b'?') && bytes.get(i + 1).is_none_or(|b| *b == b' ');
            if end {
                push_sentence(&mut out, &line[start..=i]);
                start = i + 1;
            }
        }
        push_sentence(&mut out, &line[start..]);
    }
    out
}

fn push_sentence(out: &mut Vec<String>, s: &str) {
    let s = s.trim().trim_end_matches([';', ' ']);
    if s.chars().any(char::is_alphanumeric) {
        out.push(s.to_owned());
    }
}

/// Every comment's sentences: the incident's and its alerts' comments by time (untimed last),
/// then the resolving comment, attributed to `lastModifiedBy` (Graph's record of who changed
/// the incident last: the resolver, for a resolved incident) and timed at the resolution.
fn statements(review: &Review, incident: &Incident) -> Vec<Statement> {
    let mut comments: Vec<&crate::model::Comment> =
        incident.comments.iter().chain(incident.alerts.iter().flat_map(|a| a.comments.iter())).collect();
    comments.sort_by_key(|c| (c.created.is_none(), c.created));
    let mut out: Vec<Statement> = comments
        .into_iter()
        .flat_map(|c| {
            sentences(&c.comment).into_iter().map(|text| Statement {
                text,
                author: c.author.clone(),
                at: c.created,
                resolving: false,
            })
        })
        .collect();
    if let Some(rc) = &incident.resolving_comment {
        let author = incident.last_modified_by.clone().filter(|a| !a.trim().is_empty());
        out.extend(sentences(rc).into_iter().map(|text| Statement {
            text,
            author: author.clone(),
            at: review.incident.resolved,
            resolving: true,
        }));
    }
    out
}

/// A host's short name ("fs-02" for "fs-02.corp.contoso.com"); IP addresses as they are.
pub(super) fn short_host(name: &str) -> String {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return name.to_owned();
    }
    name.split('.').next().unwrap_or(name).to_owned()
}

/// A host's or an account's short name, whichever it is.
pub(super) fn short_name(name: &str) -> String {
    if name.contains('@') || name.contains('\\') { short_account(name) } else { short_host(name) }
}

/// An account's short name ("svc-backup" for "svc-backup@contoso.com").
pub(super) fn short_account(name: &str) -> String {
    let n = name.split('@').next().unwrap_or(name);
    n.rsplit('\\').next().unwrap_or(n).to_owned()
}

/// "10-21 00:09 UTC".
pub(super) fn short_time(t: DateTime<Utc>) -> String {
    t.format("%m-%d %H:%M UTC").to_string()
}

/// A time, or "time not recorded".
pub(super) fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "time not recorded".to_owned(), short_time)
}

/// "a, b and c".
pub(crate) fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// "1 alert", "3 alerts".
pub(crate) fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// Up to `max` items, then "and n more".
pub(crate) fn some_of(items: &[String], max: usize) -> String {
    if items.len() <= max {
        return and_list(items);
    }
    format!("{} and {} more", items[..max].join(", "), items.len() - max)
}

/// "camelCaseValue" → "camel case value": enum values in readable words.
pub(crate) fn words(value: &str) -> String {
    let mut out = String::new();
    for ch in value.chars() {
        if ch.is_uppercase() && !out.is_empty() {
            out.push(' ');
        }
        out.extend(ch.to_lowercase());
    }
    out
}

/// Seconds between two times, when both are known and in order.
pub(super) fn secs(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<i64> {
    match (from, to) {
        (Some(a), Some(b)) if b >= a => Some((b - a).num_seconds()),
        _ => None,
    }
}

pub(super) fn duration(s: i64) -> String {
    super::render::duration(Some(s))
}

/// Sorted, de-duplicated.
pub(super) fn uniq(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}
