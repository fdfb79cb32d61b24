//! Which kill-chain stages the observed activity implies (REVIEW-V2 §3). A stage is blind when
//! the incident's own facts say it happened and no alert covers it — not merely because it lies
//! between two observed stages: something got in (Initial Access), something ran on the endpoints
//! (Execution), accounts used elsewhere had to be obtained (Credential Access), access kept over
//! a day or across a silence (Persistence), hands on a keyboard need a channel (Command and
//! Control). Collection, Exfiltration and Impact are never implied, only observed: a review that
//! calls them blind invents a data breach.

use chrono::{DateTime, Duration, Utc};

use super::mapping::Mapped;
use super::model::{StageState, TechniqueFinding};
use super::story::{and_list as list, plural};
use crate::model::{Alert, Incident};

/// Activity resumed after this long without any is a sign of kept access.
const RESUMED_AFTER: i64 = 8 * 3600;
/// Activity spanning more than this kept access.
const DWELL: i64 = 24 * 3600;

/// Marks the implied stages no alert covers as blind, each with its reason, and says why a stage
/// that might look blind is not (a Remote Desktop session is itself the control channel).
pub(crate) fn mark(incident: &Incident, mapped: &mut Mapped, phish: Option<&PhishSource>) {
    let facts = Facts::of(incident, mapped, phish);
    for stage in mapped.tactics.iter_mut() {
        if stage.state == StageState::Observed {
            continue;
        }
        let (state, reason) = match implied(&stage.shortname, &facts) {
            Verdict::Blind(reason) => (StageState::Blind, Some(reason)),
            Verdict::NotBlind(reason) => (StageState::Outside, Some(reason)),
            Verdict::NotImplied => (StageState::Outside, None),
        };
        stage.state = state;
        stage.reason = reason;
    }
}

enum Verdict {
    Blind(String),
    /// Not blind, and the reader would ask why: the answer.
    NotBlind(String),
    NotImplied,
}

/// What the rules read of the incident, gathered once.
struct Facts<'i> {
    first: Option<(&'i Alert, DateTime<Utc>)>,
    endpoint_alerts: usize,
    hosts: Vec<String>,
    /// Observed stages among those only a person at a keyboard does on an endpoint.
    hands_on: Vec<String>,
    hands_on_title: bool,
    rdp: Option<String>,
    /// Observed techniques that use credentials obtained earlier: lateral movement, valid
    /// accounts, alternate authentication material.
    credential_users: Vec<String>,
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    longest_silence: Option<(Duration, DateTime<Utc>)>,
    phish: Option<&'i PhishSource>,
}

/// The phishing alert that most likely gave an account sign-in its credentials: a phishing link
/// or click that began before the first sign-in or token alert, for an account that alert names
/// (or naming no account). What an adversary-in-the-middle page takes — the password, the MFA
/// code, the session cookie — is not itself alerted on, so the stage stays blind; this says
/// where to look.
#[derive(Debug, Clone)]
pub(crate) struct PhishSource {
    pub title: String,
    pub at: DateTime<Utc>,
    pub accounts: Vec<String>,
    pub sign_in_title: String,
    pub sign_in_at: DateTime<Utc>,
}

/// Phishing that leads to a credential page: a link (or any phishing the alert could not tell
/// apart), a user's click on it, phishing for information.
fn is_phishing(technique: &str) -> bool {
    technique == "T1566"
        || technique == "T1566.002"
        || technique == "T1566.003"
        || technique == "T1204.001"
        || technique == "T1598"
        || technique.starts_with("T1598.")
}

/// Use of an account's credentials or session: a sign-in, a stolen token or cookie replayed.
fn is_sign_in(technique: &str) -> bool {
    technique == "T1078" || technique.starts_with("T1078.") || technique.starts_with("T1550")
}

pub(crate) fn phishing_source(incident: &Incident, mapped: &Mapped) -> Option<PhishSource> {
    let alerts_of = |pred: fn(&str) -> bool| -> Vec<&Alert> {
        let ids: Vec<&str> = mapped
            .techniques
            .iter()
            .filter(|t| pred(&t.id))
            .flat_map(|t| t.alerts.iter().map(String::as_str))
            .collect();
        incident.alerts.iter().filter(|a| ids.contains(&a.id.as_str())).collect()
    };
    let began = |a: &Alert| a.first_activity.or(a.created);
    let sign_in = alerts_of(is_sign_in)
        .into_iter()
        .filter_map(|a| Some((a, began(a)?)))
        .min_by_key(|&(a, t)| (t, a.id.as_str()))?;
    let sign_in_accounts = accounts(sign_in.0);
    let shares = |p: &[String]| p.iter().any(|x| sign_in_accounts.iter().any(|y| x.eq_ignore_ascii_case(y)));
    let (phish, at, phish_accounts) = alerts_of(is_phishing)
        .into_iter()
        .filter(|a| a.id != sign_in.0.id)
        .filter_map(|a| Some((a, began(a)?, accounts(a))))
        .filter(|(_, t, _)| *t <= sign_in.1)
        // An account in common is the strongest sign; an alert naming no account (the mail
        // removed) says nothing against; one naming only other accounts is another person's.
        .filter(|(_, _, acc)| acc.is_empty() || sign_in_accounts.is_empty() || shares(acc))
        .max_by_key(|(a, t, acc)| (shares(acc), *t, std::cmp::Reverse(a.id.clone())))?;
    let accounts = if sign_in_accounts.is_empty() {
        phish_accounts
    } else {
        sign_in_accounts.into_iter().filter(|a| phish_accounts.is_empty() || phish_accounts.contains(a)).collect()
    };
    Some(PhishSource {
        title: phish.title.clone(),
        at,
        accounts,
        sign_in_title: sign_in.0.title.clone(),
        sign_in_at: sign_in.1,
    })
}

/// The user accounts an alert's evidence names (UPN, lower case, each once).
fn accounts(a: &Alert) -> Vec<String> {
    let mut v: Vec<String> = a
        .evidence
        .iter()
        .filter(|e| e.kind == "userEvidence" || e.kind == "mailboxEvidence")
        .filter_map(|e| e.props.get("userPrincipalName").or(e.entity.as_ref()))
        .filter(|n| n.contains('@'))
        .map(|n| n.to_ascii_lowercase())
        .collect();
    v.sort();
    v.dedup();
    v
}

impl<'i> Facts<'i> {
    fn of(incident: &'i Incident, mapped: &Mapped, phish: Option<&'i PhishSource>) -> Facts<'i> {
        let techniques = &mapped.techniques;
        let first = incident
            .alerts
            .iter()
            .filter_map(|a| Some((a, a.first_activity.or(a.created)?)))
            .min_by_key(|&(a, t)| (t, a.id.as_str()));
        let endpoint: Vec<&Alert> = incident.alerts.iter().filter(|a| is_endpoint(a)).collect();
        let hosts = super::scope::host_names(endpoint.iter().copied());
        let endpoint_ids: Vec<&str> = endpoint.iter().map(|a| a.id.as_str()).collect();
        let hands_on: Vec<String> = mapped
            .tactics
            .iter()
            .filter(|t| t.state == StageState::Observed && HANDS_ON.contains(&t.shortname.as_str()))
            .filter(|t| t.alerts.iter().any(|a| endpoint_ids.contains(&a.as_str())))
            .map(|t| t.name.clone())
            .collect();
        let hands_on_title = endpoint.iter().any(|a| {
            let t = a.title.to_ascii_lowercase();
            t.contains("hands-on-keyboard") || t.contains("human-operated")
        });
        let named = |t: &TechniqueFinding| match &t.name {
            Some(n) => format!("{} {n}", t.id),
            None => t.id.clone(),
        };
        let rdp =
            techniques.iter().find(|t| t.id == "T1021.001").map(named).or_else(|| {
                incident.alerts.iter().find(|a| mentions_rdp(&a.title)).map(|a| format!("\"{}\"", a.title))
            });
        let credential_users: Vec<String> = techniques
            .iter()
            .filter(|t| {
                t.tactics.iter().any(|x| x == "lateral-movement")
                    || t.id == "T1078"
                    || t.id.starts_with("T1078.")
                    || t.id.starts_with("T1550")
            })
            .map(named)
            .collect();
        let mut credential_users = credential_users;
        // An alert may name the stage by its category only, without a technique.
        if credential_users.is_empty()
            && mapped.tactics.iter().any(|t| t.shortname == "lateral-movement" && t.state == StageState::Observed)
        {
            credential_users.push("Lateral movement".to_owned());
        }
        Facts {
            first,
            endpoint_alerts: endpoint.len(),
            hosts,
            hands_on,
            hands_on_title,
            rdp,
            credential_users,
            span: span(incident),
            longest_silence: longest_silence(incident),
            phish,
        }
    }
}

/// Stages a person at a keyboard works through on an endpoint once in.
const HANDS_ON: [&str; 6] =
    ["discovery", "credential-access", "lateral-movement", "collection", "privilege-escalation", "impact"];

fn is_endpoint(a: &Alert) -> bool {
    a.service_source.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("microsoftDefenderForEndpoint"))
        || a.evidence.iter().any(|e| {
            matches!(
                e.kind.as_str(),
                "processEvidence" | "fileEvidence" | "registryKeyEvidence" | "registryValueEvidence"
            )
        })
}

fn mentions_rdp(title: &str) -> bool {
    let t = title.to_ascii_lowercase();
    t.contains("remote desktop") || t.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == "rdp")
}

/// First to last recorded activity of the incident's alerts.
fn span(incident: &Incident) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let first = incident.alerts.iter().filter_map(|a| a.first_activity.or(a.created)).min()?;
    let last = incident.alerts.iter().filter_map(|a| a.last_activity.or(a.first_activity).or(a.created)).max()?;
    Some((first, last))
}

/// The longest stretch without any alert activity between the first and the last, and when
/// activity resumed after it.
fn longest_silence(incident: &Incident) -> Option<(Duration, DateTime<Utc>)> {
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = incident
        .alerts
        .iter()
        .filter_map(|a| {
            let start = a.first_activity.or(a.created)?;
            Some((start, a.last_activity.unwrap_or(start).max(start)))
        })
        .collect();
    spans.sort();
    let mut reach = spans.first()?.1;
    let mut best: Option<(Duration, DateTime<Utc>)> = None;
    for &(start, end) in &spans[1..] {
        if start > reach {
            let gap = start - reach;
            if best.is_none_or(|(b, _)| gap > b) {
                best = Some((gap, start));
            }
        }
        reach = reach.max(end);
    }
    best
}

fn implied(tactic: &str, f: &Facts) -> Verdict {
    match tactic {
        "initial-access" => Verdict::Blind(match f.first {
            Some((a, at)) => format!(
                "Something got in, and no alert shows how: the first recorded activity is \"{}\" at {}.",
                a.title,
                at.format("%Y-%m-%d %H:%M UTC")
            ),
            None => "Something got in, and no alert shows how.".to_owned(),
        }),
        "execution" if f.endpoint_alerts > 0 => Verdict::Blind(format!(
            "{} on {}: something ran there, and no alert shows what started it.",
            plural(f.endpoint_alerts, "endpoint alert"),
            hosts(&f.hosts)
        )),
        "credential-access" if !f.credential_users.is_empty() => Verdict::Blind(match &f.phish {
            Some(p) => format!(
                "{} used credentials obtained earlier. The likeliest source is the phishing: \"{}\"{} began {} \"{}\"; no alert shows what the page took (a password and MFA code typed in, or the session cookie relayed by an adversary-in-the-middle page).",
                list(&f.credential_users),
                p.title,
                if p.accounts.is_empty() { String::new() } else { format!(" ({})", list(&p.accounts)) },
                match (p.sign_in_at - p.at).num_seconds() {
                    s if s < 60 => "with".to_owned(),
                    s => format!("{} before", super::story::duration(s)),
                },
                p.sign_in_title,
            ),
            None => format!(
                "{} used credentials obtained earlier, and no alert shows how they were obtained.",
                list(&f.credential_users)
            ),
        }),
        "persistence" => persistence(f),
        "command-and-control" if f.endpoint_alerts > 0 && (f.hands_on.len() >= 2 || f.hands_on_title) => match &f.rdp {
            Some(rdp) => Verdict::NotBlind(format!(
                "Hands-on-keyboard activity over Remote Desktop ({rdp}): the session itself was the control channel."
            )),
            None => Verdict::Blind(format!(
                "Hands-on-keyboard activity on {} ({}) needs a control channel, and no alert shows it.",
                hosts(&f.hosts),
                if f.hands_on.is_empty() { "a human-operated attack".to_owned() } else { list(&f.hands_on) }
            )),
        },
        _ => Verdict::NotImplied,
    }
}

fn persistence(f: &Facts) -> Verdict {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    if let Some((first, last)) = f.span
        && (last - first).num_seconds() > DWELL
    {
        return Verdict::Blind(format!(
            "Activity spans {} ({} to {}): the attacker kept access, and no alert shows how.",
            super::story::duration((last - first).num_seconds()),
            fmt(first),
            fmt(last)
        ));
    }
    match f.longest_silence {
        Some((gap, resumed)) if gap.num_seconds() >= RESUMED_AFTER => Verdict::Blind(format!(
            "Activity resumed at {} after {} without any: the attacker kept access, and no alert shows how.",
            fmt(resumed),
            super::story::duration(gap.num_seconds())
        )),
        _ => Verdict::NotImplied,
    }
}

fn hosts(h: &[String]) -> String {
    match h.len() {
        0 => "the endpoints".to_owned(),
        1..=3 => h.join(", "),
        n => format!("{} and {} more hosts", h[..3].join(", "), n - 3),
    }
}
