//! What must happen now, before the evidence or the chance is gone: exposed credentials reset
//! (a service account rebuilt, krbtgt twice when a domain controller's secrets were taken), the
//! notification decision for data that left, and the hunts that close the scope while advanced
//! hunting still holds the window.

use super::{Draft, and_list, id, list, recorded};
use crate::review::model::*;

pub(super) fn derive(r: &Review) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(credentials(r).or_else(|| compromised_accounts(r)));
    out.extend(notification(r));
    out.extend(scope(r));
    out
}

/// Techniques that take a domain controller's secrets: every account, krbtgt included.
const TIER0: [&str; 3] = ["T1003.003", "T1003.006", "T1558.001"];

fn credentials(r: &Review) -> Option<Draft> {
    let exposed = &r.story.exposed_credentials;
    if exposed.is_empty() {
        return None;
    }
    let mut accounts: Vec<String> = exposed.iter().flat_map(|c| c.accounts.iter().cloned()).collect();
    accounts.sort();
    accounts.dedup();
    let tier0 = exposed.iter().any(|c| TIER0.contains(&c.technique.as_str()));
    let services: Vec<String> = accounts.iter().filter(|a| is_service_account(a)).cloned().collect();
    let places: Vec<String> = exposed
        .iter()
        .map(|c| match &c.host {
            Some(h) => format!("{} on {h}", c.how),
            None => c.how.clone(),
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut steps = vec![];
    if tier0 {
        steps.push("reset every domain account's password and krbtgt twice (10 hours apart, after replication): the domain's secrets were taken".to_owned());
    } else if !accounts.is_empty() {
        steps.push(if accounts.len() == 1 {
            format!("reset the password of {} and revoke its sessions", accounts[0])
        } else {
            format!("reset the passwords of {} and revoke their sessions", list(&accounts, 6))
        });
    } else {
        steps.push("reset the passwords of every account that signed in to those hosts since the first activity, and revoke their sessions".to_owned());
    }
    if !services.is_empty() {
        steps.push(format!(
            "rebuild {} with a new password (or a group-managed service account) and only the rights it needs",
            and_list(&services)
        ));
    }
    let said = recorded(r);
    let already = ["reset", "rotated", "krbtgt"].iter().filter(|w| said.contains(*w)).count() > 0;
    let first = exposed.iter().filter_map(|c| c.at).min();
    Some(Draft {
        id: id("reset", &format!("{}\0{}", r.incident.id, accounts.join(","))),
        kind: "reset_credentials",
        category: "now",
        area: "identity",
        priority: Priority::High,
        title: if tier0 {
            "Reset the domain's credentials, krbtgt twice: a domain controller's secrets were taken".into()
        } else if accounts.is_empty() {
            format!("Reset the credentials exposed by {}", and_list(&places))
        } else {
            format!("Reset the exposed credentials of {}", list(&accounts, 4))
        },
        detail: format!(
            "Credentials were exposed: {}. {}.{}",
            and_list(&places),
            capitalize(&steps.join("; ")),
            if already { " The comments record resets: check each account listed against them." } else { "" }
        ),
        done_when: format!(
            "{} has its password last set after {} (IdentityInfo or Entra ID){}.",
            if accounts.is_empty() {
                "Every account that signed in to those hosts since the first activity"
            } else {
                "Every account listed"
            },
            first.map_or_else(|| "the exposure".to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
            if tier0 { ", and krbtgt's twice" } else { "" }
        ),
        evidence: Evidence {
            techniques: exposed
                .iter()
                .map(|c| c.technique.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            alerts: exposed
                .iter()
                .flat_map(|c| c.alerts.iter().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            entities: accounts,
            ..Default::default()
        },
    })
}

/// Accounts the attacker signed in as or whose session it took, when no credential theft was
/// alerted on: their passwords and sessions are as good as known.
fn compromised_accounts(r: &Review) -> Option<Draft> {
    const USED: [&str; 5] = ["T1078", "T1539", "T1550.004", "T1528", "T1550.001"];
    let signs: Vec<&str> = USED.iter().copied().filter(|t| super::observed(r, t)).collect();
    let compromised = r.incident.determination == "compromisedAccount";
    if signs.is_empty() && !compromised {
        return None;
    }
    // The accounts the sign-in and token alerts name; the others of the incident (a recipient
    // of the lure who did not fall for it) are named apart, to be checked, not reset blindly.
    let all = super::accounts(r);
    let named = super::accounts_of(r, &signs);
    let (accounts, others): (Vec<String>, Vec<String>) = if named.is_empty() {
        (all, vec![])
    } else {
        let others = all.into_iter().filter(|a| !named.iter().any(|n| n.eq_ignore_ascii_case(a))).collect();
        (named, others)
    };
    if accounts.is_empty() {
        return None;
    }
    let since = r.metrics.first_activity;
    let since_text =
        since.map_or_else(|| "the first activity".to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string());
    let check_others = match others.len() {
        0 => String::new(),
        n => format!(
            " {} {} named by the incident's other alerts but by no sign-in or token alert: check {} sign-ins since {since_text} and reset only where one is not the user's.",
            list(&others, 4),
            if n == 1 { "is" } else { "are" },
            if n == 1 { "its" } else { "their" },
        ),
    };
    Some(Draft {
        id: id("reset", &format!("{}\0{}", r.incident.id, accounts.join(","))),
        kind: "reset_credentials",
        category: "now",
        area: "identity",
        priority: Priority::High,
        title: format!("Reset the credentials and revoke the sessions of {}", list(&accounts, 4)),
        detail: format!(
            "The attacker used {} ({}). Reset {}, revoke every refresh token and session, and check the MFA methods registered since the first activity{}.{check_others}",
            if accounts.len() == 1 { "this account" } else { "these accounts" },
            if signs.is_empty() { "determination: compromised account".to_owned() } else { signs.join(", ") },
            if accounts.len() == 1 { "its password" } else { "their passwords" },
            if recorded(r).contains("reset") || recorded(r).contains("revoked") {
                "; the comments record some of this: check each account against them"
            } else {
                ""
            }
        ),
        done_when: format!(
            "Each account's password was last set, and its sessions revoked, after {since_text}; its MFA methods are the user's own{}.",
            if others.is_empty() { "" } else { "; the sign-ins of the other accounts named were checked" }
        ),
        evidence: Evidence {
            techniques: signs.iter().map(|s| (*s).to_owned()).collect(),
            entities: accounts,
            ..Default::default()
        },
    })
}

/// Service accounts by the names people give them.
fn is_service_account(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let local = n.split(['@', '\\']).find(|p| !p.is_empty() && !p.contains('.')).unwrap_or(&n).to_owned();
    let local = if n.contains('\\') { n.rsplit('\\').next().unwrap_or(&n).to_owned() } else { local };
    local.starts_with("svc")
        || local.starts_with("sa-")
        || local.starts_with("srv-")
        || local.ends_with("-svc")
        || local.ends_with('$')
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn notification(r: &Review) -> Option<Draft> {
    let d = &r.story.impact.data_exposed;
    if !matches!(d.state.as_str(), "confirmed" | "alerted") {
        return None;
    }
    let what = if d.what.is_empty() { "the data".to_owned() } else { list(&d.what, 3) };
    let legal = match r.story.impact.exfiltration_to_legal_s {
        Some(s) => format!(" Legal was informed {} after the first exfiltration alert.", super::duration(s)),
        None => " No comment records that legal or the DPO was informed.".into(),
    };
    Some(Draft {
        id: id("notify", &r.incident.id),
        kind: "notification_decision",
        category: "now",
        area: "legal",
        priority: Priority::High,
        title: format!(
            "Decide on breach notification: data {}{}",
            if d.state == "confirmed" {
                "left the organisation"
            } else {
                "may have left the organisation (exfiltration alert, not confirmed)"
            },
            d.volume.as_ref().map(|v| format!(" — {v}")).unwrap_or_default()
        ),
        detail: format!(
            "Data exposure {}{}; recorded: {what}.{legal} Under GDPR a notifiable breach is reported within 72 hours of becoming aware of it; contracts and other laws may set their own clocks.",
            if d.state == "confirmed" { "confirmed by the analysts" } else { "alerted, not confirmed" },
            d.volume.as_ref().map(|v| format!(", {v}")).unwrap_or_default()
        ),
        done_when:
            "The decision (notify or not, to whom, and why), with who took it and when, is recorded on the incident."
                .into(),
        evidence: Evidence { alerts: d.alerts.clone(), entities: d.what.clone(), ..Default::default() },
    })
}

/// The scope: open questions and blind stages, closed by the review's hunts before advanced
/// hunting loses the window.
fn scope(r: &Review) -> Option<Draft> {
    let blind = &r.gaps.blind_stages;
    // A root cause nobody recorded has its own follow-up ("Record the root cause"); asked here
    // as well, a phishing incident with nothing else open got a second, high-priority one for it.
    let questions: Vec<_> = r.story.open_questions.iter().filter(|q| q.rule != "no_root_cause").collect();
    if blind.is_empty() && questions.is_empty() {
        return None;
    }
    let hunts: Vec<&Hunt> =
        blind.iter().flat_map(|s| &s.likely).flat_map(|l| &l.hunts).filter(|h| h.scope == "incident").collect();
    let mut hunt_ids: Vec<String> = hunts.iter().map(|h| h.id.clone()).collect();
    hunt_ids.sort();
    hunt_ids.dedup();
    let per_stage: Vec<String> = blind
        .iter()
        .map(|s| {
            let top: Vec<String> = s.likely.iter().take(2).map(|l| format!("{} {}", l.id, l.name)).collect();
            if top.is_empty() { s.name.clone() } else { format!("{} ({})", s.name, top.join(", ")) }
        })
        .collect();
    let stages: Vec<String> = blind.iter().map(|s| s.tactic.clone()).collect();
    let before = r.gaps.hunt_window.as_ref().map(|w| w.run_before.format("%Y-%m-%d").to_string());
    let mut detail = String::new();
    if !blind.is_empty() {
        detail += &format!(
            "The activity implies {}, and no alert covered {}. ",
            and_list(&blind.iter().map(|s| s.name.clone()).collect::<Vec<_>>()),
            if blind.len() == 1 { "it" } else { "them" },
        );
        if blind.iter().any(|s| !s.likely.is_empty()) {
            // A candidate with a reason (software the incident names, the phishing before a
            // sign-in) is more than what resembling groups use: the sentence must not say otherwise.
            let reasoned = blind.iter().any(|s| s.likely.iter().take(2).any(|l| l.reason.is_some()));
            detail += &format!(
                "{}, per stage: {}. ",
                if reasoned { "Most likely" } else { "Groups with similar techniques most often use" },
                per_stage.join("; ")
            );
        }
    }
    if !questions.is_empty() {
        // The questions themselves; the evidence each names is in the review's open questions.
        let asked: Vec<String> = questions
            .iter()
            .map(|q| match q.question.find('?') {
                Some(i) => q.question[..=i].to_owned(),
                None => q.question.clone(),
            })
            .collect();
        detail += &format!("Open questions: {} ", asked.join(" "));
    }
    detail += &match (&before, hunt_ids.len()) {
        (Some(b), n) if n > 0 => format!(
            "Run the {} in this review before {b}, when advanced hunting (30 days) no longer holds the incident's window.",
            super::plural(n, "hunt")
        ),
        (Some(b), _) => {
            format!("Answer them before {b}, while advanced hunting (30 days) still holds the incident's window.")
        }
        _ => "Hunt for them in this incident's time range while the data is kept.".into(),
    };
    Some(Draft {
        // The ID of the blind-stage hunt it replaces, so trackers keep their item.
        id: id("blind", &format!("{}\0{}", r.incident.id, stages.join(","))),
        kind: "hunt_blind_stages",
        category: "now",
        area: "soc",
        priority: Priority::High,
        title: match (blind.len(), questions.len()) {
            (0, n) => format!("Close the scope: answer {}", super::plural(n, "open question")),
            (b, 0) => {
                format!("Close the scope: hunt in the {} the attack passed without an alert", super::plural(b, "stage"))
            }
            (b, n) => format!(
                "Close the scope: hunt in the {} the attack passed without an alert, answer {}",
                super::plural(b, "stage"),
                super::plural(n, "open question")
            ),
        },
        detail,
        done_when: match &before {
            Some(b) if !hunt_ids.is_empty() => format!(
                "Each hunt has been run before {b} and its result (nothing found, or what was found and done) is recorded; each open question is answered in a comment."
            ),
            Some(b) => {
                format!("Each open question is answered in a comment, with the query that answers it, before {b}.")
            }
            None => {
                "Each blind stage and open question is answered in a comment with the query that answers it.".into()
            }
        },
        evidence: Evidence {
            tactics: stages,
            techniques: blind.iter().flat_map(|s| s.likely.iter().take(2).map(|l| l.id.clone())).collect(),
            hunts: hunt_ids,
            ..Default::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_accounts_by_their_names() {
        for n in ["svc-backup", "svc-backup@contoso.com", r"CONTOSO\svc_sql", "sa-deploy", "app-svc", "WS01$"] {
            assert!(is_service_account(n), "{n}");
        }
        for n in ["l.fischer@contoso.com", "adm-jlee", r"CONTOSO\kim"] {
            assert!(!is_service_account(n), "{n}");
        }
    }
}
