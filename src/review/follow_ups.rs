//! Follow-ups a SOC lead would assign (REVIEW-V2 §4): what must happen now first (resets, the
//! notification decision, closing the scope), then the fixes with the most leverage chosen from
//! the incident's own facts, then detection and response, process, learning, and last ATT&CK's
//! generic mitigations. Each names the account, host or service it is about, says what shows it
//! done (`done_when`), and carries an owner and a due date from the configuration. Derived from
//! the review (and the history, for "raised again"), so every claim can be traced in the same
//! document.
//!
//! One file per kind of reasoning: [`now`], [`harden`] (context rules, each a small pure
//! function with its test), [`detect`] (by detection source), [`benign`] (false and benign
//! positives).

mod benign;
mod detect;
mod harden;
mod now;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::model::*;
pub(crate) use super::story::{and_list, plural, some_of as list};
use super::{History, Settings};
use crate::model::Incident;

/// A stable ID: the same finding in a later revision, or a later incident, has the same ID.
pub(crate) fn id(kind: &str, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    hasher.update([0u8]);
    hasher.update(key.as_bytes());
    let h = hasher.finalize();
    let mut out = String::with_capacity(13);
    out.push_str("FU-");
    for b in h.iter().take(5) {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    out
}

/// The categories in the order a reader acts on them.
const ORDER: [&str; 6] = ["now", "harden", "detect", "process", "learn", "mitigate"];

/// A follow-up before owner, due date and recurrence are filled in.
pub(crate) struct Draft {
    pub id: String,
    pub kind: &'static str,
    pub category: &'static str,
    pub area: &'static str,
    pub priority: Priority,
    pub title: String,
    pub detail: String,
    pub done_when: String,
    pub evidence: Evidence,
}

/// True when the incident was real: detection gaps only matter for true positives (and for
/// incidents nobody classified, which are treated as real).
pub(crate) fn is_real(r: &Review) -> bool {
    !matches!(r.incident.classification.as_str(), "falsePositive" | "informationalExpectedActivity")
}

pub(crate) fn derive(r: &Review, incident: &Incident, history: &History, settings: &Settings) -> Vec<FollowUp> {
    let mut drafts: Vec<Draft> = Vec::new();
    if is_real(r) {
        drafts.extend(now::derive(r));
        drafts.extend(harden::derive(r, incident));
        drafts.extend(detect::derive(r));
        drafts.extend(process(r));
        drafts.extend(learn(r));
        drafts.extend(mitigate(r, &drafts));
    } else {
        drafts.extend(benign::derive(r, incident));
    }
    // Detection content the organisation owns, whatever the classification.
    drafts.extend(detect::content(r));
    let mut seen = BTreeSet::new();
    drafts.retain(|d| seen.insert(d.id.clone()));
    drafts.sort_by_key(|d| (ORDER.iter().position(|c| *c == d.category).unwrap_or(ORDER.len()), d.priority));
    let due_from = r.incident.resolved.or(r.incident.created).map(|t| t.date_naive());
    drafts
        .into_iter()
        .map(|d| {
            let days = settings.follow_up_due_days[match d.priority {
                Priority::High => 0,
                Priority::Medium => 1,
                Priority::Low => 2,
            }];
            let raised_before = raised_before(&d.id, r, history);
            let owner =
                settings.follow_up_owners.get(d.area).or_else(|| settings.follow_up_owners.get("default")).cloned();
            FollowUp {
                title: if raised_before > 0 { format!("{} (raised again: {raised_before})", d.title) } else { d.title },
                id: d.id,
                kind: d.kind.to_owned(),
                priority: d.priority,
                detail: d.detail,
                evidence: d.evidence,
                category: d.category.to_owned(),
                done_when: d.done_when,
                owner,
                area: d.area.to_owned(),
                due: due_from.map(|f| f + chrono::Days::new(u64::from(days))),
                status: "open".into(),
                raised_before,
            }
        })
        .collect()
}

/// Earlier incidents of the same tenant (the history is per source) that raised the same ID.
fn raised_before(id: &str, r: &Review, history: &History) -> u32 {
    let count = history
        .incidents
        .iter()
        .filter(|p| p.id != r.incident.id)
        .filter(|p| p.tenant_id.is_none() || r.incident.tenant_id.is_none() || p.tenant_id == r.incident.tenant_id)
        .filter(|p| p.follow_ups.iter().any(|f| f == id))
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// A closed true positive without a recorded cause is a process gap: the next incident cannot
/// be told apart from a recurrence of this one.
fn process(r: &Review) -> Option<Draft> {
    if r.incident.classification != "truePositive" || r.story.root_cause.is_some() {
        return None;
    }
    Some(Draft {
        id: id("root_cause", &r.incident.id),
        kind: "record_root_cause",
        category: "process",
        area: "soc",
        priority: Priority::Medium,
        title: "Record the root cause".into(),
        detail: format!(
            "Incident {} is a true positive and no root cause is recorded: neither the resolving comment nor any comment says how the attacker got in or why it worked. Write it in the resolving comment (\"Root cause: …\"), so that later reviews can tell whether the same way in returns.",
            r.incident.id
        ),
        done_when: "The incident's resolving comment or a comment starts with \"Root cause:\" and names how the attacker got in.".into(),
        evidence: Evidence::default(),
    })
}

/// First-time techniques, when the review had a history to compare with.
fn learn(r: &Review) -> Option<Draft> {
    let first: Vec<(String, String)> = r
        .knowledge_gaps
        .iter()
        .filter_map(|g| match g {
            KnowledgeGap::FirstSeen { technique, name } => Some((technique.clone(), name.clone())),
            _ => None,
        })
        .collect();
    if first.is_empty() {
        return None;
    }
    let named: Vec<String> = first.iter().map(|(t, n)| format!("{t} {n}")).collect();
    Some(Draft {
        id: id("learn", &r.incident.id),
        kind: "share_knowledge",
        category: "learn",
        area: "soc",
        priority: Priority::Low,
        title: format!("Brief the team on {} met for the first time", plural(first.len(), "technique")),
        detail: format!("No earlier review saw {}.", list(&named, 5)),
        done_when: "A team briefing or runbook entry covers each technique, with the alert and the response used here."
            .into(),
        evidence: Evidence { techniques: first.into_iter().map(|(t, _)| t).collect(), ..Default::default() },
    })
}

/// ATT&CK's generic mitigations, after everything chosen from the incident's facts: at most
/// two, and none a context rule already asks for.
fn mitigate(r: &Review, drafts: &[Draft]) -> Vec<Draft> {
    let asked: BTreeSet<&str> = drafts.iter().flat_map(|d| d.evidence.mitigations.iter().map(String::as_str)).collect();
    r.mitigations
        .iter()
        .filter(|m| m.techniques.len() >= 2 && !asked.contains(m.id.as_str()))
        .take(2)
        .map(|m| Draft {
            id: id("mitigate", &m.id),
            kind: "apply_mitigation",
            category: "mitigate",
            area: "soc",
            priority: Priority::Low,
            title: format!("Review mitigation {} {}", m.id, m.name),
            detail: format!(
                "It addresses {} of the techniques in this incident: {}.",
                m.techniques.len(),
                list(&m.techniques, 5)
            ),
            done_when: format!(
                "A decision on {} (in place, planned with a date, or declined with the reason) is recorded.",
                m.id
            ),
            evidence: Evidence {
                mitigations: vec![m.id.clone()],
                techniques: m.techniques.clone(),
                ..Default::default()
            },
        })
        .collect()
}

pub(crate) fn duration(secs: i64) -> String {
    super::render::duration(Some(secs))
}

/// The user accounts of the incident (UPN, else the name), those named by most alerts first.
pub(crate) fn accounts(r: &Review) -> Vec<String> {
    accounts_where(r, |_| true)
}

/// The accounts (users and mailboxes, by UPN where known, each once) named by the alerts of
/// `techniques` (or their sub-techniques): the inbox rule's mailbox, not every recipient of the
/// lure. Empty when those alerts name no account.
pub(crate) fn accounts_of(r: &Review, techniques: &[&str]) -> Vec<String> {
    let alerts: Vec<&str> = r
        .techniques
        .iter()
        .filter(|t| techniques.iter().any(|x| is_or_under(&t.id, x)))
        .flat_map(|t| t.alerts.iter().map(String::as_str))
        .collect();
    accounts_where(r, |e| e.alerts.iter().any(|a| alerts.contains(&a.as_str())))
}

/// `id` is `technique` or one of its sub-techniques.
fn is_or_under(id: &str, technique: &str) -> bool {
    id == technique || id.strip_prefix(technique).is_some_and(|rest| rest.starts_with('.'))
}

fn accounts_where(r: &Review, keep: impl Fn(&Entity) -> bool) -> Vec<String> {
    r.incident
        .entities
        .iter()
        .filter(|e| e.kind == "user" || e.kind == "mailbox")
        .filter(|e| keep(e))
        .map(|e| e.ids.get("userPrincipalName").cloned().unwrap_or_else(|| e.name.clone()))
        .filter(|n| !n.is_empty() && !n.starts_with('('))
        .collect::<Vec<_>>()
        .into_iter()
        .fold(Vec::new(), |mut v, n| {
            if !v.iter().any(|x: &String| x.eq_ignore_ascii_case(&n)) {
                v.push(n);
            }
            v
        })
}

/// Whether the incident shows the technique or one of its sub-techniques.
pub(crate) fn observed(r: &Review, technique: &str) -> bool {
    r.techniques.iter().any(|t| is_or_under(&t.id, technique))
}

/// Every comment's text and the resolving comment, lower case: what the analysts recorded.
pub(crate) fn recorded(r: &Review) -> String {
    let mut s = r.incident.resolving_comment.clone().unwrap_or_default();
    for c in &r.incident.comments {
        s.push('\n');
        s.push_str(&c.text);
    }
    s.to_lowercase()
}
