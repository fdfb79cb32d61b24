//! What was done and by whom: containment, remediation and recovery seen in the data (attack
//! disruption and automated investigation alerts, evidence remediation status, actions named in
//! comments, observed assignments). Never an action the data does not show.
//!
//! Comments are read by plain rules, clause by clause: a clause that names an action verb
//! (isolate, contain, disable an account, reset a password, revoke sessions, block an indicator,
//! quarantine, remediate, restore, reimage, …) is an action, unless it is negated or only
//! intended ("not isolated", "could not isolate", "will isolate", "isolate?"). The analyst's own
//! words are kept as the action's text.
//!
//! Scope: an isolation of some hosts is `partial`. `full` needs an explicit statement that the
//! intrusion (the environment, every host) is contained, or isolation of every device in the
//! evidence together with the compromised accounts disabled or reset.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::model::*;
use crate::model::{Alert, Incident, Transition};

pub(crate) const PARTIAL: &str = "partial";
pub(crate) const FULL: &str = "full";
pub(crate) const REMEDIATION: &str = "remediation";
pub(crate) const RECOVERY: &str = "recovery";
pub(crate) const ASSIGNMENT: &str = "assignment";
pub(crate) const OTHER: &str = "other";

/// `by` when the data does not say who acted.
pub(crate) const NOT_RECORDED: &str = "not recorded";
/// `by` for Defender's own actions.
pub(crate) const AUTOMATIC: &str = "automatic";

pub(crate) fn find(incident: &Incident, transitions: &[Transition], review: &Review) -> Vec<ResponseAction> {
    let names = Names::of(incident);
    let mut out: Vec<Found> = Vec::new();
    for a in &incident.alerts {
        out.extend(automatic(a, &names));
    }
    let resolution = review.incident.resolved.or(Some(incident.last_update));
    out.extend(evidence_status(incident, resolution).into_iter().map(Found::plain));
    let alert_comments = incident.alerts.iter().flat_map(|a| &a.comments);
    for c in incident.comments.iter().chain(alert_comments) {
        let by = c.author.clone().unwrap_or_else(|| NOT_RECORDED.to_owned());
        // A comment without a time was still made before the snapshot was taken.
        let (at, at_latest) = match c.created {
            Some(t) => (Some(t), None),
            None => (None, Some(incident.last_update)),
        };
        let basis = match c.created {
            Some(t) => format!("comment by {by} at {}", t.format("%Y-%m-%d %H:%M UTC")),
            None => format!("comment by {by} (time not recorded)"),
        };
        out.extend(from_text(&c.comment, &names, at, at_latest, &by, &basis));
    }
    if let Some(text) = incident.resolving_comment.as_deref() {
        // Graph does not say who wrote the resolving comment or when: the incident's last
        // modifier is the likeliest author, but likeliest is not recorded.
        let basis = "resolving comment (time not recorded)";
        out.extend(from_text(text, &names, None, resolution, NOT_RECORDED, basis));
    }
    out.extend(assignments(transitions).into_iter().map(Found::plain));
    out.sort_by_key(|f| order(&f.action));
    scope(&mut out, &names);
    let mut actions: Vec<ResponseAction> = out.into_iter().map(|f| f.action).collect();
    after_full_is_remediation(&mut actions);
    actions
}

/// What is "contained" once containment is full is remediation: an app's consent revoked after
/// the account was disabled does not contain anything more.
fn after_full_is_remediation(actions: &mut [ResponseAction]) {
    let full = actions.iter().filter(|a| a.kind == FULL).filter_map(|a| a.at).min();
    if let Some(full) = full {
        for a in actions.iter_mut().filter(|a| a.kind == PARTIAL && a.at.is_some_and(|t| t > full)) {
            a.kind = REMEDIATION.to_owned();
        }
    }
}

/// An action, with the accounts it disabled, reset or contained (what the scope check needs
/// beyond the entities it names).
struct Found {
    action: ResponseAction,
    accounts_acted_on: BTreeSet<String>,
}

impl Found {
    fn plain(action: ResponseAction) -> Found {
        Found { action, accounts_acted_on: BTreeSet::new() }
    }
}

/// The incident's entity names, for matching what a comment or an alert names.
struct Names {
    /// (full name, short host name) of each device in the evidence.
    devices: Vec<(String, String)>,
    /// (name as in the evidence, account part) of each user.
    accounts: Vec<(String, String)>,
    /// Accounts the evidence marks compromised (role or a malicious verdict).
    compromised: Vec<String>,
    /// IP addresses and URLs.
    indicators: Vec<String>,
}

impl Names {
    fn of(incident: &Incident) -> Names {
        let mut n = Names { devices: vec![], accounts: vec![], compromised: vec![], indicators: vec![] };
        for e in incident.alerts.iter().flat_map(|a| &a.evidence) {
            let Some(name) = e.entity.as_deref().map(str::trim).filter(|s| !s.is_empty()) else { continue };
            let short = |sep: char| name.split(sep).next().unwrap_or(name).to_owned();
            match e.kind.as_str() {
                "deviceEvidence" => push(&mut n.devices, (name.to_owned(), short('.'))),
                "userEvidence" | "mailboxEvidence" => {
                    let account = short('@');
                    let account = account.rsplit('\\').next().unwrap_or(&account).to_owned();
                    let flagged =
                        e.roles.iter().chain(&e.detailed_roles).any(|r| r.eq_ignore_ascii_case("compromised"))
                            || e.verdict.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("malicious"));
                    if flagged && !n.compromised.iter().any(|c| c == name) {
                        n.compromised.push(name.to_owned());
                    }
                    push(&mut n.accounts, (name.to_owned(), account));
                }
                "ipEvidence" | "urlEvidence" => push(&mut n.indicators, name.to_owned()),
                _ => {}
            }
        }
        n
    }

    /// Devices a text names, by their full names.
    fn devices_in(&self, text: &str) -> Vec<String> {
        self.devices.iter().filter(|(f, s)| names(text, f) || names(text, s)).map(|(f, _)| f.clone()).collect()
    }

    fn accounts_in(&self, text: &str) -> Vec<String> {
        self.accounts.iter().filter(|(f, a)| names(text, f) || names(text, a)).map(|(f, _)| f.clone()).collect()
    }

    fn indicators_in(&self, text: &str) -> Vec<String> {
        self.indicators.iter().filter(|i| names(text, i)).cloned().collect()
    }
}

fn push<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// Whether `text` names `name` as a whole word (case-insensitive): "fs-02" is in "isolated
/// fs-02." but not in "fs-021".
fn names(text: &str, name: &str) -> bool {
    if name.len() < 3 {
        return false;
    }
    let (text, name) = (text.to_lowercase(), name.to_lowercase());
    let part = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    text.match_indices(&name).any(|(i, m)| {
        let before = text[..i].chars().next_back();
        let after = text[i + m.len()..].chars().next();
        !before.is_some_and(part)
            && !after.is_some_and(|c| part(c) || (c == '.' && text[i + m.len() + 1..].starts_with(part)))
    })
}

/// What one clause of a comment does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Isolate,
    /// "contained": of the entities it names, or of everything when it names none.
    Contain,
    DisableAccount,
    ResetCredentials,
    RevokeSessions,
    Block,
    Remediate,
    Recover,
}

impl Verb {
    fn kind(self) -> &'static str {
        match self {
            Verb::Isolate | Verb::Contain | Verb::DisableAccount | Verb::ResetCredentials | Verb::RevokeSessions => {
                PARTIAL
            }
            Verb::Block => PARTIAL,
            Verb::Remediate => REMEDIATION,
            Verb::Recover => RECOVERY,
        }
    }
}

/// Words that make a clause no action: negated, intended, asked, or done by someone else.
const NOT_DONE: &[&str] = &[
    "not",
    "no",
    "never",
    "cannot",
    "unable",
    "failed",
    "fail",
    "pending",
    "will",
    "should",
    "need",
    "needs",
    "plan",
    "planned",
    "planning",
    "recommend",
    "recommended",
    "request",
    "requested",
    "consider",
    "propose",
    "proposed",
    "todo",
    "to-do",
    "tbd",
    "attempted",
    "attempt",
    "tried",
    "try",
];

/// Who else acts in a comment: "the attacker disabled the admin account" is no response.
const ATTACKER: &[&str] = &["attacker", "attackers", "adversary", "intruder", "actor", "operator", "operators"];

/// The clause's words, lower case.
fn words(clause: &str) -> Vec<String> {
    clause
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\'' || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn not_done(clause: &str, ws: &[String]) -> bool {
    clause.contains('?')
        || ws.iter().any(|w| w.ends_with("n't") || NOT_DONE.contains(&w.as_str()))
        || clause.to_lowercase().contains("to be ")
}

fn by_attacker(ws: &[String]) -> bool {
    ws.iter().any(|w| ATTACKER.contains(&w.as_str()))
}

fn verb_of(clause: &str, names: &Names) -> Option<Verb> {
    let ws = words(clause);
    let has = |p: &str| ws.iter().any(|w| w.starts_with(p));
    let word = |w: &str| ws.iter().any(|x| x == w);
    let account =
        word("account") || word("accounts") || word("user") || word("users") || !names.accounts_in(clause).is_empty();
    // "containing", "contains" and "container" are not containment.
    let contain = ws.iter().any(|w| matches!(w.as_str(), "contain" | "contained" | "containment" | "contain-ed"))
        // "Account secured": the analysts' word for the account contained, how not said.
        || (word("secured") && account);
    if has("isolat") {
        Some(Verb::Isolate)
    } else if contain {
        Some(Verb::Contain)
    } else if has("disabl") && account {
        Some(Verb::DisableAccount)
    } else if (word("reset") || has("rotat") || word("changed")) && (has("password") || has("credential") || account)
        || has("password") && (word("reset") || has("rotat"))
    {
        Some(Verb::ResetCredentials)
    } else if has("revok") {
        Some(Verb::RevokeSessions)
    } else if has("block") && !clause.to_lowercase().contains("blocked by") && blockable(&ws, clause, names) {
        Some(Verb::Block)
    } else if has("quarantin") || has("remediat") || removed(&ws) || closed(&ws) {
        Some(Verb::Remediate)
    } else if has("restor") || has("reimag") || has("rebuil") || has("re-imag") {
        Some(Verb::Recover)
    } else {
        None
    }
}

/// Blocking an indicator: the attacker's address, domain, sender, hash or app.
fn blockable(ws: &[String], clause: &str, names: &Names) -> bool {
    const WHAT: &[&str] = &[
        "ip",
        "ips",
        "address",
        "addresses",
        "domain",
        "domains",
        "url",
        "urls",
        "sender",
        "senders",
        "hash",
        "hashes",
        "indicator",
        "indicators",
        "ioc",
        "iocs",
        "app",
        "application",
    ];
    ws.iter().any(|w| WHAT.contains(&w.as_str())) || !names.indicators_in(clause).is_empty()
}

/// "removed the inbox rule / the malicious files / the scheduled task".
fn removed(ws: &[String]) -> bool {
    const WHAT: &[&str] = &[
        "rule",
        "rules",
        "file",
        "files",
        "task",
        "tasks",
        "message",
        "messages",
        "mail",
        "email",
        "emails",
        "malware",
        "persistence",
        "app",
        "application",
        "binary",
        "payload",
        "service",
        "forwarding",
    ];
    ws.iter().any(|w| w.starts_with("remov") || w.starts_with("delet") || w == "purged")
        && ws.iter().any(|w| WHAT.contains(&w.as_str()))
}

/// "external RDP closed", "closed port 3389".
fn closed(ws: &[String]) -> bool {
    const WHAT: &[&str] = &["rdp", "port", "ports", "vpn", "smb", "access", "exposure", "firewall"];
    ws.iter().any(|w| w.starts_with("clos")) && ws.iter().any(|w| WHAT.contains(&w.as_str()))
}

/// A clause that states containment of everything: "Contained", "incident contained",
/// "all hosts contained", "the environment is fully contained".
fn contains_all(ws: &[String], names: &Names, clause: &str) -> bool {
    const WHOLE: &[&str] = &[
        "all",
        "every",
        "entire",
        "environment",
        "intrusion",
        "incident",
        "attack",
        "breach",
        "fully",
        "completely",
        "full",
    ];
    const FILLER: &[&str] =
        &["contained", "contain", "containment", "is", "was", "has", "been", "now", "the", "and", "we"];
    if ws.iter().any(|w| WHOLE.contains(&w.as_str())) {
        return true;
    }
    names.devices_in(clause).is_empty()
        && names.accounts_in(clause).is_empty()
        && ws.iter().all(|w| FILLER.contains(&w.as_str()))
}

/// One comment's actions: its clauses grouped by kind, each group one action with the clauses
/// as written. A comment that states containment of everything takes its other containment
/// clauses into that one action ("Contained: gateway isolated, svc-backup disabled").
/// The text without its sentences that explain the cause: "Root cause: the service desk reset
/// MFA for a caller…" tells what let the attacker in, not what the responders did.
fn without_causes(text: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        loop {
            let (sentence, tail) = match sentence_end(rest) {
                Some(i) => (&rest[..i], Some(&rest[i + 2..])),
                None => (rest, None),
            };
            if !states_cause(sentence) && !sentence.trim().is_empty() {
                kept.push(sentence.trim());
            }
            match tail {
                Some(t) => rest = t,
                None => break,
            }
        }
    }
    kept.join(". ")
}

fn states_cause(clause: &str) -> bool {
    let l = clause.to_lowercase();
    ["root cause", "caused by", "came in via", "came in through", "initial access was", "entry point was", "way in was"]
        .iter()
        .any(|k| l.contains(k))
}

fn from_text(
    text: &str,
    names: &Names,
    at: Option<DateTime<Utc>>,
    at_latest: Option<DateTime<Utc>>,
    by: &str,
    basis: &str,
) -> Vec<Found> {
    let mut groups: Vec<Group> = Vec::new();
    let text = without_causes(text);
    for clause in clauses(&text) {
        // A list goes on after its verb: "isolated fs-02, sql-01 and dc-01".
        let mut last: Option<(Verb, bool)> = None;
        for segment in clause.split(", ").map(str::trim).filter(|s| !s.is_empty()) {
            let ws = words(segment);
            let found = verb_of(segment, names).map(|v| (v, not_done(segment, &ws)));
            let Some((verb, negated)) = found.or(last) else { continue };
            // A segment that only continues the list carries the verb's negation with it.
            let negated = negated || (found.is_none() && not_done(segment, &ws));
            last = Some((verb, negated));
            if negated || (verb != Verb::Block && by_attacker(&ws)) {
                continue;
            }
            let full = verb == Verb::Contain && contains_all(&ws, names, segment);
            let kind = if full { FULL } else { verb.kind() };
            let i = match groups.iter().position(|g| g.kind == kind) {
                Some(i) => i,
                None => {
                    groups.push(Group { kind, what: vec![], entities: BTreeSet::new(), accounts: BTreeSet::new() });
                    groups.len() - 1
                }
            };
            let g = &mut groups[i];
            g.what.push(segment.to_owned());
            match verb {
                Verb::Isolate => g.entities.extend(names.devices_in(segment)),
                Verb::Contain | Verb::DisableAccount | Verb::ResetCredentials | Verb::RevokeSessions => {
                    // Defender's "contain user" and the analysts' "contained svc-x" act on the
                    // account as much as disabling it does.
                    let accounts = names.accounts_in(segment);
                    g.accounts.extend(accounts.iter().cloned());
                    g.entities.extend(accounts);
                    if verb == Verb::Contain {
                        g.entities.extend(names.devices_in(segment));
                    }
                }
                Verb::Block => g.entities.extend(names.indicators_in(segment)),
                Verb::Remediate | Verb::Recover => g.entities.extend(names.devices_in(segment)),
            }
        }
    }
    if let Some(p) = groups.iter().position(|g| g.kind == PARTIAL)
        && groups.iter().any(|g| g.kind == FULL)
    {
        let partial = groups.remove(p);
        if let Some(full) = groups.iter_mut().find(|g| g.kind == FULL) {
            full.what.extend(partial.what);
            full.entities.extend(partial.entities);
            full.accounts.extend(partial.accounts);
        }
    }
    groups
        .into_iter()
        .map(|g| Found {
            action: ResponseAction {
                at,
                at_latest: if at.is_some() { None } else { at_latest },
                action: g.what.join("; "),
                by: by.to_owned(),
                basis: basis.to_owned(),
                kind: g.kind.to_owned(),
                entities: g.entities.into_iter().collect(),
            },
            accounts_acted_on: g.accounts,
        })
        .collect()
}

/// The clauses of one comment that make one action.
struct Group {
    kind: &'static str,
    what: Vec<String>,
    entities: BTreeSet<String>,
    accounts: BTreeSet<String>,
}

/// A comment's clauses: sentences and the parts of "Contained: a, b".
fn clauses(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        // ". " ends a sentence; a dot inside a host name or a path does not.
        while let Some(i) =
            rest.find([';', '!', '?']).into_iter().chain(sentence_end(rest)).chain(rest.find(": ")).min()
        {
            let (head, tail) = rest.split_at(i);
            let keep = if tail.starts_with('?') { &rest[..=i] } else { head };
            out.push(keep.trim());
            rest = tail.get(1..).unwrap_or("");
        }
        out.push(rest.trim().trim_end_matches('.'));
    }
    out.retain(|c| !c.is_empty());
    out
}

fn sentence_end(s: &str) -> Option<usize> {
    s.match_indices(". ").map(|(i, _)| i).next()
}

/// Alerts that record Defender's own action: attack disruption containing a device or a
/// user, automated investigation, and zero-hour auto purge removing mail after delivery.
fn automatic(alert: &Alert, names: &Names) -> Option<Found> {
    let title = alert.title.to_lowercase();
    let air = alert.detection_source.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("automatedInvestigation"));
    let ws = words(&alert.title);
    let word = |w: &str| ws.iter().any(|x| x == w);
    let disruption = title.contains("attack disruption") || title.contains("automatic") || air;
    let kind = if word("contained") || word("isolated") || (word("disabled") && disruption) {
        PARTIAL
    } else if title.contains("removed after delivery")
        || (air && (title.contains("remediat") || title.contains("quarantin")))
    {
        REMEDIATION
    } else if air {
        OTHER
    } else {
        return None;
    };
    if ws.iter().any(|w| w == "not" || w == "failed") {
        return None;
    }
    let mut entities: Vec<String> = Vec::new();
    for e in alert.evidence.iter().filter_map(|e| e.entity.as_deref()) {
        if (names.devices.iter().any(|(f, _)| f == e) || names.accounts.iter().any(|(f, _)| f == e))
            && !entities.iter().any(|x| x == e)
        {
            entities.push(e.to_owned());
        }
    }
    let accounts_acted_on: BTreeSet<String> = if kind == PARTIAL {
        entities.iter().filter(|e| names.accounts.iter().any(|(f, _)| f == *e)).cloned().collect()
    } else {
        BTreeSet::new()
    };
    let source = if air { "automated investigation" } else { "automatic action" };
    let action = ResponseAction {
        at: alert.created,
        at_latest: if alert.created.is_some() { None } else { alert.last_update },
        action: alert.title.clone(),
        by: AUTOMATIC.to_owned(),
        basis: format!("alert ({source})"),
        kind: kind.to_owned(),
        entities,
    };
    Some(Found { action, accounts_acted_on })
}

/// Evidence Defender reports remediated, prevented or blocked: a remediation, one row per
/// status naming every entity. Who did it is not recorded (an automatic action or an analyst
/// in the portal), nor when: the evidence's `createdDateTime` is when the evidence was
/// recorded, not when its status changed, so the snapshot is only the latest it can have been.
fn evidence_status(incident: &Incident, resolution: Option<DateTime<Utc>>) -> Vec<ResponseAction> {
    let mut by_status: Vec<(String, Vec<String>)> = Vec::new();
    for e in incident.alerts.iter().flat_map(|a| &a.evidence) {
        let Some(status) = e.remediation_status.as_deref() else { continue };
        let status = status.to_lowercase();
        if !matches!(status.as_str(), "remediated" | "prevented" | "blocked") {
            continue;
        }
        let what = e.entity.clone().unwrap_or_else(|| e.kind.clone());
        match by_status.iter_mut().find(|(s, _)| *s == status) {
            Some((_, names)) if !names.contains(&what) => names.push(what),
            Some(_) => {}
            None => by_status.push((status, vec![what])),
        }
    }
    by_status
        .into_iter()
        .map(|(status, names)| ResponseAction {
            at: None,
            at_latest: resolution.or(Some(incident.last_update)),
            action: format!("{status}: {}", names.join(", ")),
            by: NOT_RECORDED.to_owned(),
            basis: "evidence status (time not recorded)".to_owned(),
            kind: REMEDIATION.to_owned(),
            entities: names,
        })
        .collect()
}

/// Assignments the daemon saw happen.
fn assignments(transitions: &[Transition]) -> Vec<ResponseAction> {
    transitions
        .iter()
        .filter(|t| t.field == "assignedTo")
        .filter_map(|t| {
            let to = t.to.as_deref()?;
            let basis = match t.after {
                Some(a) => format!(
                    "observed: seen between {} and {}",
                    a.format("%Y-%m-%d %H:%M UTC"),
                    t.seen_at.format("%Y-%m-%d %H:%M UTC")
                ),
                None => format!("observed: seen by {}", t.seen_at.format("%Y-%m-%d %H:%M UTC")),
            };
            Some(ResponseAction {
                at: Some(t.seen_at),
                at_latest: None,
                action: format!("assigned to {to}"),
                by: NOT_RECORDED.to_owned(),
                basis,
                kind: ASSIGNMENT.to_owned(),
                entities: vec![],
            })
        })
        .collect()
}

/// Timed actions in order, then those known only by their latest time, then the rest.
fn order(a: &ResponseAction) -> (bool, bool, Option<DateTime<Utc>>) {
    (a.at.is_none(), a.at.or(a.at_latest).is_none(), a.at.or(a.at_latest))
}

/// Decides partial or full for the containment actions, in time order: the action after which
/// every device of the evidence is isolated and every compromised account disabled, reset or
/// contained becomes full; after the first full containment the scope is no longer counted.
fn scope(found: &mut [Found], names: &Names) {
    let mut devices: BTreeSet<&str> = BTreeSet::new();
    let mut accounts: BTreeSet<&str> = BTreeSet::new();
    for f in found.iter_mut() {
        let a = &mut f.action;
        if a.kind == FULL {
            return;
        }
        if a.kind != PARTIAL {
            continue;
        }
        for e in &a.entities {
            if let Some((d, _)) = names.devices.iter().find(|(d, _)| d == e) {
                devices.insert(d);
            }
        }
        for e in &f.accounts_acted_on {
            if let Some(c) = names.compromised.iter().find(|c| *c == e) {
                accounts.insert(c);
            }
        }
        // An identity-only intrusion has no device to isolate, a malware case maybe no account;
        // but something known compromised must have been covered.
        let known = !names.devices.is_empty() || !names.compromised.is_empty();
        if known && devices.len() == names.devices.len() && accounts.len() == names.compromised.len() {
            a.kind = FULL.to_owned();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn incident(v: serde_json::Value) -> Incident {
        Incident::from_graph(&v).unwrap()
    }

    fn review_of(i: &Incident, transitions: &[Transition]) -> Review {
        static ENGINE: std::sync::OnceLock<super::super::Engine> = std::sync::OnceLock::new();
        let engine = ENGINE.get_or_init(|| {
            let catalog = std::sync::Arc::new(crate::attack::store::embedded().unwrap());
            super::super::Engine::new(catalog, None, None, super::super::Settings::default())
        });
        engine
            .review(&super::super::Subject { incident: i, source: "t", revision: 1, transitions }, &Default::default())
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Three hosts, one compromised account, one IP.
    fn intrusion(comments: serde_json::Value, resolving: Option<&str>) -> Incident {
        incident(json!({
            "id": "1", "status": "resolved", "classification": "truePositive",
            "createdDateTime": "2026-10-20T22:28:00Z", "lastUpdateDateTime": "2026-10-22T22:05:00Z",
            "resolvingComment": resolving, "comments": comments,
            "alerts": [{"id": "a", "title": "RDP sign-in", "createdDateTime": "2026-10-20T22:27:00Z",
                "resolvedDateTime": "2026-10-22T22:05:00Z",
                "evidence": [
                    {"@odata.type": "#microsoft.graph.security.deviceEvidence", "deviceDnsName": "ts-gw-01.corp.contoso.com"},
                    {"@odata.type": "#microsoft.graph.security.deviceEvidence", "deviceDnsName": "fs-02.corp.contoso.com"},
                    {"@odata.type": "#microsoft.graph.security.deviceEvidence", "deviceDnsName": "sql-01.corp.contoso.com"},
                    {"@odata.type": "#microsoft.graph.security.userEvidence", "roles": ["compromised"],
                        "userAccount": {"userPrincipalName": "svc-backup@contoso.com"}},
                    {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "45.141.87.12"}
                ]}]
        }))
    }

    fn comment(text: &str, by: &str, at: &str) -> serde_json::Value {
        json!({"comment": text, "createdByDisplayName": by, "createdDateTime": at})
    }

    #[test]
    fn nothing_recorded_is_no_action() {
        let i = incident(json!({"id": "1", "status": "resolved", "lastUpdateDateTime": "2026-11-01T10:00:00Z",
            "alerts": [{"id": "a", "title": "Malware", "evidence": []}]}));
        assert!(find(&i, &[], &review_of(&i, &[])).is_empty());
        let i = intrusion(json!([comment("Looked at it, benign login pattern.", "ann", "2026-10-21T00:25:00Z")]), None);
        assert!(find(&i, &[], &review_of(&i, &[])).is_empty());
    }

    #[test]
    fn a_partial_isolation_is_partial_with_its_hosts_author_and_time() {
        let i = intrusion(
            json!([comment("Isolated fs-02 and sql-01; engaging DFIR retainer.", "ann", "2026-10-21T00:25:00Z")]),
            None,
        );
        let r = find(&i, &[], &review_of(&i, &[]));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].kind, PARTIAL);
        assert_eq!(r[0].action, "Isolated fs-02 and sql-01");
        assert_eq!(r[0].by, "ann");
        assert_eq!(r[0].at, Some(t("2026-10-21T00:25:00Z")));
        assert_eq!(r[0].entities, ["fs-02.corp.contoso.com", "sql-01.corp.contoso.com"]);
        assert_eq!(r[0].basis, "comment by ann at 2026-10-21 00:25 UTC");
    }

    #[test]
    fn negated_intended_and_attacker_actions_are_not_actions() {
        for text in [
            "fs-02 not isolated yet",
            "Could not isolate fs-02",
            "Couldn't isolate sql-01, ts-gw-01",
            "Will isolate fs-02 after the backup",
            "Isolate fs-02?",
            "Unable to disable svc-backup",
            "The attacker disabled the svc-backup account",
            "Recommend resetting svc-backup's password",
            "fs-02 was not contained",
            "Email messages containing links were reported",
            "Secured the evidence on a share",
        ] {
            let i = intrusion(json!([comment(text, "ann", "2026-10-21T00:25:00Z")]), None);
            let r = find(&i, &[], &review_of(&i, &[]));
            assert!(r.is_empty(), "{text}: {r:?}");
        }
    }

    #[test]
    fn a_list_after_its_verb_keeps_the_verb() {
        let i = intrusion(
            json!([comment(
                "Isolated fs-02, sql-01 and ts-gw-01. Disabled svc-backup.",
                "ann",
                "2026-10-21T00:25:00Z"
            )]),
            None,
        );
        let r = find(&i, &[], &review_of(&i, &[]));
        // Every device isolated and the compromised account disabled: full.
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].kind, FULL);
        assert_eq!(r[0].action, "Isolated fs-02; sql-01 and ts-gw-01; Disabled svc-backup");
        assert!(r[0].entities.contains(&"svc-backup@contoso.com".to_owned()));
        assert_eq!(r[0].entities.len(), 4);
    }

    #[test]
    fn a_partial_step_after_full_containment_is_remediation() {
        let i = intrusion(
            json!([
                comment("Isolated fs-02, sql-01 and ts-gw-01. Disabled svc-backup.", "ann", "2026-10-21T00:25:00Z"),
                comment("Isolated fs-02 again after the reboot", "ann", "2026-10-21T02:00:00Z"),
                comment("Isolated sql-01", "ann", "2026-10-20T23:50:00Z"),
            ]),
            None,
        );
        let r = find(&i, &[], &review_of(&i, &[]));
        let kinds: Vec<(&str, &str)> = r.iter().map(|a| (a.kind.as_str(), a.action.as_str())).collect();
        assert!(kinds.contains(&(PARTIAL, "Isolated sql-01")), "before the full containment: {kinds:?}");
        assert!(kinds.contains(&(REMEDIATION, "Isolated fs-02 again after the reboot")), "{kinds:?}");
    }

    #[test]
    fn every_host_isolated_without_the_account_stays_partial_until_the_account_is_reset() {
        let i = intrusion(
            json!([
                comment("Isolated fs-02, sql-01 and ts-gw-01", "ann", "2026-10-21T00:25:00Z"),
                comment("Password of svc-backup reset and sessions revoked", "bob", "2026-10-21T02:00:00Z")
            ]),
            None,
        );
        let r = find(&i, &[], &review_of(&i, &[]));
        let kinds: Vec<(&str, &str)> = r.iter().map(|a| (a.kind.as_str(), a.by.as_str())).collect();
        assert_eq!(kinds, [(PARTIAL, "ann"), (FULL, "bob")]);
    }

    #[test]
    fn the_resolving_comment_has_no_time_only_a_latest() {
        let i = intrusion(
            json!([]),
            Some(
                "Contained: gateway isolated, svc-backup disabled, servers restored from offline backups. External RDP on ts-gw-01 closed.",
            ),
        );
        let r = find(&i, &[], &review_of(&i, &[]));
        let got: Vec<(&str, &str)> = r.iter().map(|a| (a.kind.as_str(), a.action.as_str())).collect();
        assert_eq!(
            got,
            [
                (FULL, "Contained; gateway isolated; svc-backup disabled"),
                (RECOVERY, "servers restored from offline backups"),
                (REMEDIATION, "External RDP on ts-gw-01 closed"),
            ]
        );
        for a in &r {
            assert_eq!((a.at, a.at_latest), (None, Some(t("2026-10-22T22:05:00Z"))));
            assert_eq!(a.by, NOT_RECORDED);
            assert_eq!(a.basis, "resolving comment (time not recorded)");
        }
        assert_eq!(r[0].entities, ["svc-backup@contoso.com"]);
        assert_eq!(r[2].entities, ["ts-gw-01.corp.contoso.com"]);
    }

    #[test]
    fn blocking_the_attackers_address_is_partial_containment_and_a_tamper_block_is_not_ours() {
        let i = intrusion(
            json!([
                comment("Blocked 45.141.87.12 at the firewall", "ann", "2026-10-21T00:25:00Z"),
                comment("Defender was blocked by tamper protection", "ann", "2026-10-21T00:30:00Z")
            ]),
            None,
        );
        let r = find(&i, &[], &review_of(&i, &[]));
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!((r[0].kind.as_str(), r[0].entities.as_slice()), (PARTIAL, ["45.141.87.12".to_owned()].as_slice()));
    }

    #[test]
    fn automatic_actions_evidence_status_and_assignments() {
        let mut i = incident(json!({
            "id": "1", "status": "resolved", "lastUpdateDateTime": "2026-11-01T12:00:00Z",
            "alerts": [
                {"id": "a", "title": "User account contained by automatic attack disruption", "detectionSource": "microsoft365Defender",
                 "createdDateTime": "2026-11-01T10:05:00Z",
                 "evidence": [{"@odata.type": "#microsoft.graph.security.userEvidence", "userAccount": {"userPrincipalName": "kim@contoso.com"}}]},
                {"id": "b", "title": "Email messages containing malicious URL removed after delivery", "detectionSource": "microsoftDefenderForOffice365",
                 "createdDateTime": "2026-11-01T10:10:00Z", "evidence": []},
                {"id": "c", "title": "Malware blocked", "createdDateTime": "2026-11-01T10:00:00Z",
                 "evidence": [{"@odata.type": "#microsoft.graph.security.fileEvidence", "remediationStatus": "prevented",
                     "fileDetails": {"fileName": "evil.exe"}},
                     {"@odata.type": "#microsoft.graph.security.fileEvidence", "remediationStatus": "none",
                     "fileDetails": {"fileName": "other.exe"}}]},
                {"id": "d", "title": "Automated investigation started", "detectionSource": "automatedInvestigation",
                 "createdDateTime": "2026-11-01T10:01:00Z", "evidence": []}
            ]
        }));
        let transitions = [Transition {
            field: "assignedTo".into(),
            from: None,
            to: Some("ann@contoso.com".into()),
            seen_at: t("2026-11-01T10:30:00Z"),
            after: Some(t("2026-11-01T10:29:00Z")),
        }];
        let r = find(&i, &transitions, &review_of(&i, &transitions));
        let got: Vec<(&str, &str, &str, Option<DateTime<Utc>>)> =
            r.iter().map(|a| (a.kind.as_str(), a.action.as_str(), a.by.as_str(), a.at)).collect();
        assert_eq!(
            got,
            [
                (OTHER, "Automated investigation started", AUTOMATIC, Some(t("2026-11-01T10:01:00Z"))),
                // kim is not marked compromised in the evidence: nothing says this was all.
                (
                    PARTIAL,
                    "User account contained by automatic attack disruption",
                    AUTOMATIC,
                    Some(t("2026-11-01T10:05:00Z"))
                ),
                (
                    REMEDIATION,
                    "Email messages containing malicious URL removed after delivery",
                    AUTOMATIC,
                    Some(t("2026-11-01T10:10:00Z"))
                ),
                (ASSIGNMENT, "assigned to ann@contoso.com", NOT_RECORDED, Some(t("2026-11-01T10:30:00Z"))),
                (REMEDIATION, "prevented: evil.exe", NOT_RECORDED, None),
            ]
        );
        assert_eq!(r[3].basis, "observed: seen between 2026-11-01 10:29 UTC and 2026-11-01 10:30 UTC");
        // The evidence's time is not read here (parsed elsewhere): the snapshot bounds it.
        assert_eq!(r[4].at_latest, Some(t("2026-11-01T12:00:00Z")));
        // Once the evidence marks kim compromised, containing her is containing everything known.
        i.alerts[0].evidence[0].roles = vec!["compromised".into()];
        let r = find(&i, &[], &review_of(&i, &[]));
        assert_eq!(r[1].kind, FULL);
        assert_eq!(r[1].entities, ["kim@contoso.com"]);
        // The evidence's own time is when it was recorded, not when its status changed: the
        // action stays untimed, by the resolution at the latest.
        i.alerts[2].evidence[0].created = Some(t("2026-11-01T10:00:30Z"));
        let r = find(&i, &[], &review_of(&i, &[]));
        let e = r.iter().find(|a| a.action == "prevented: evil.exe").unwrap();
        assert_eq!((e.at, e.at_latest), (None, Some(t("2026-11-01T12:00:00Z"))));
    }

    #[test]
    fn removals_and_reimaging_are_remediation_and_recovery() {
        let i = intrusion(
            json!([comment("Commodity malware removed from fs-02. sql-01 reimaged.", "ann", "2026-10-21T00:25:00Z")]),
            None,
        );
        let r = find(&i, &[], &review_of(&i, &[]));
        let got: Vec<(&str, &str)> = r.iter().map(|a| (a.kind.as_str(), a.entities[0].as_str())).collect();
        assert_eq!(got, [(REMEDIATION, "fs-02.corp.contoso.com"), (RECOVERY, "sql-01.corp.contoso.com")]);
    }

    #[test]
    fn host_names_match_as_whole_words() {
        assert!(names("Isolated fs-02.", "fs-02"));
        assert!(names("isolated FS-02 and sql-01", "fs-02"));
        assert!(!names("isolated fs-021", "fs-02"));
        assert!(!names("isolated fs-02.corp.contoso.com", "fs-02"));
        assert!(names("isolated fs-02.corp.contoso.com", "fs-02.corp.contoso.com"));
        assert!(!names("a", "ab"));
    }

    /// The sample's comments: fs-02 and sql-01 isolated at 00:25 (partial: ts-gw-01 and
    /// svc-backup are not); the resolving comment says "Contained" (full, time not recorded);
    /// the restore is recovery; locker.exe's evidence is remediated.
    #[test]
    fn the_ransomware_sample() {
        let text = include_str!("../../examples/incidents/human-operated-ransomware.json");
        let i = Incident::from_graph(&serde_json::from_str(text).unwrap()).unwrap();
        let r = find(&i, &[], &review_of(&i, &[]));
        let got: Vec<(&str, &str, Option<DateTime<Utc>>)> =
            r.iter().map(|a| (a.kind.as_str(), a.by.as_str(), a.at)).collect();
        let oncall = "ir.oncall@contoso.com";
        assert_eq!(
            got,
            [
                (PARTIAL, oncall, Some(t("2026-10-21T00:25:00.014Z"))),
                (RECOVERY, oncall, Some(t("2026-10-22T21:45:00.286Z"))),
                (REMEDIATION, NOT_RECORDED, None),
                (FULL, NOT_RECORDED, None),
                (RECOVERY, NOT_RECORDED, None),
                (REMEDIATION, NOT_RECORDED, None),
            ]
        );
        assert_eq!(r[0].entities, ["fs-02.corp.contoso.com", "sql-01.corp.contoso.com"]);
        assert_eq!(r[2].action, "remediated: locker.exe");
        assert_eq!(r[3].at_latest, Some(t("2026-10-22T22:05:00.288Z")));
        assert_eq!(r[3].entities, ["svc-backup@contoso.com"]);
    }
}
