//! The fixes with the most leverage, chosen from the incident's own facts (REVIEW-V2 §4), not
//! from how many techniques a mitigation touches. Each rule is a small pure function of the
//! review: it fires only on facts the data shows and names the accounts, hosts or services
//! involved. Its ID is keyed by the fix and what it is about, so a later incident with the same
//! weakness raises the same follow-up again.

use super::{Draft, accounts, and_list, id, list, observed, recorded};
use crate::model::Incident;
use crate::review::model::*;

type Rule = fn(&Review, &Incident) -> Option<Draft>;

/// In the order they are listed when several fire.
pub(super) const RULES: &[(&str, Rule)] = &[
    ("exposed_remote_service", exposed_remote_service),
    ("help_desk_verification", help_desk_verification),
    ("expired_block", expired_block),
    ("phishing_resistant_mfa", phishing_resistant_mfa),
    ("oauth_consent", oauth_consent),
    ("mail_forwarding", mail_forwarding),
    ("ransomware_precursors", ransomware_precursors),
    ("act_on_high_severity", act_on_high_severity),
];

pub(super) fn derive(r: &Review, incident: &Incident) -> Vec<Draft> {
    RULES.iter().filter_map(|(_, rule)| rule(r, incident)).collect()
}

/// Devices of the alerts that carry one of `techniques`.
fn hosts_of(r: &Review, incident: &Incident, techniques: &[&str]) -> Vec<String> {
    let alerts: Vec<&str> = r
        .techniques
        .iter()
        .filter(|t| techniques.iter().any(|x| t.id == *x))
        .flat_map(|t| t.alerts.iter().map(String::as_str))
        .collect();
    crate::review::scope::host_names(incident.alerts.iter().filter(|a| alerts.contains(&a.id.as_str())))
}

/// External Remote Services or RDP as the way in: that service, on those hosts, closed or
/// behind MFA (M1035 Limit Access to Resource Over Network, M1032 Multi-factor Authentication).
fn exposed_remote_service(r: &Review, incident: &Incident) -> Option<Draft> {
    let way_in = &r.story.initial_access.techniques;
    // The analysts' root cause can name it where no alert did ("the SSL VPN accepted
    // password-only sign-in").
    let cause = r.story.root_cause.as_ref().map(|c| c.text.to_lowercase()).unwrap_or_default();
    let cause_names =
        |words: &[&str]| words.iter().any(|w| cause.split(|c: char| !c.is_ascii_alphanumeric()).any(|x| x == *w));
    let vpn_cause = cause_names(&["vpn", "citrix", "gateway"]);
    let rdp_cause = cause_names(&["rdp"]) || cause.contains("remote desktop");
    let external = observed(r, "T1133") || way_in.iter().any(|t| t == "T1133") || vpn_cause || rdp_cause;
    let rdp =
        (observed(r, "T1021.001") || r.alerts.iter().any(|a| a.title.to_lowercase().contains("rdp")) || rdp_cause)
            && !vpn_cause;
    if !external {
        return None;
    }
    let hosts = hosts_of(r, incident, &["T1133", "T1078", "T1021.001"]);
    let service = if rdp {
        "Remote Desktop"
    } else if vpn_cause {
        "the VPN"
    } else {
        "the remote access service (VPN, RDP gateway, Citrix)"
    };
    let on = if hosts.is_empty() { String::new() } else { format!(" on {}", list(&hosts, 3)) };
    // Closed during the response already: what is left is to prove it, everywhere.
    let said = recorded(r);
    let closed = (said.contains("rdp") || said.contains("remote desktop") || said.contains("vpn"))
        && ["closed", "blocked", "disabled", "removed", "restricted to mfa"].iter().any(|w| said.contains(w));
    Some(Draft {
        id: id("harden_remote", &format!("{service}\0{}", hosts.join(","))),
        kind: "close_exposed_service",
        category: "harden",
        area: "endpoint",
        priority: if closed { Priority::Medium } else { Priority::High },
        title: match (closed, rdp) {
            (true, true) => {
                format!("Prove no device exposes {service} to the internet any more (closed{on} during the response)")
            }
            (true, false) => {
                format!("Prove {service} accepts no password-only sign-in any more (restricted during the response)")
            }
            (false, _) => format!("Take {service}{on} off the internet, or put it behind MFA"),
        },
        detail: format!(
            "The way in was {service} exposed to the internet{on} (T1133{}{}). {}Allow it only through a gateway that requires MFA for every account, service accounts included (M1035, M1032), and check no other device accepts Remote Desktop from the internet.",
            if rdp { ", T1021.001" } else { "" },
            if vpn_cause || rdp_cause { "; the root cause recorded says so" } else { "" },
            if closed { "The comments record it closed or restricted. " } else { "Close it. " }
        ),
        done_when: if rdp {
            "The estate hunt rdp-from-internet-estate (every device, last 30 days) returns no device accepting Remote Desktop from a public address, and the service requires MFA.".into()
        } else {
            "The remote access service's policy requires MFA for every account (service accounts have no remote access), and the estate hunt rdp-from-internet-estate returns no device accepting Remote Desktop from a public address.".into()
        },
        evidence: Evidence {
            techniques: vec!["T1133".into()],
            mitigations: vec!["M1035".into(), "M1032".into()],
            entities: hosts,
            hunts: vec!["rdp-from-internet-estate".into()],
            ..Default::default()
        },
    })
}

/// Entry through stolen or guessed cloud credentials: phishing-resistant MFA and Conditional
/// Access for the accounts involved.
fn phishing_resistant_mfa(r: &Review, _: &Incident) -> Option<Draft> {
    const SIGNS: [&str; 8] = ["T1110", "T1566", "T1078.004", "T1557", "T1539", "T1550.004", "T1621", "T1111"];
    let signs: Vec<&str> = SIGNS.iter().copied().filter(|t| observed(r, t)).collect();
    // Only where an identity provider is involved: an endpoint-only phish is another fix.
    if signs.is_empty() || !r.gaps.platforms.iter().any(|p| p == "Identity Provider") {
        return None;
    }
    let users = accounts(r);
    let spray = observed(r, "T1110");
    let aitm = observed(r, "T1557") || observed(r, "T1539") || observed(r, "T1550.004");
    let why = if aitm {
        "the session token was stolen through an adversary-in-the-middle page, which passwords and push MFA do not stop"
    } else if spray {
        "a password was guessed by spraying; legacy authentication and single-factor sign-ins let it work"
    } else {
        "credentials were phished or used from outside"
    };
    Some(Draft {
        id: id("harden_mfa", &users.join(",")),
        kind: "phishing_resistant_mfa",
        category: "harden",
        area: "identity",
        priority: Priority::High,
        title: format!(
            "Require phishing-resistant MFA{} through Conditional Access",
            if users.is_empty() { String::new() } else { format!(" for {}", list(&users, 3)) }
        ),
        detail: format!(
            "Here {why} ({}). Require an authentication strength of phishing-resistant MFA (FIDO2, Windows Hello for Business, certificate) for these accounts first and then every user{}; block legacy authentication.",
            signs.join(", "),
            if aitm { ", and bind sessions to compliant devices (token protection)" } else { "" }
        ),
        done_when: "A Conditional Access policy requires phishing-resistant authentication for the accounts listed; the hunt legacy-auth-estate returns no legacy sign-in in the last 30 days.".into(),
        evidence: Evidence {
            techniques: signs.iter().map(|s| (*s).to_owned()).collect(),
            mitigations: vec!["M1032".into()],
            entities: users,
            hunts: vec!["legacy-auth-estate".into()],
            ..Default::default()
        },
    })
}

/// A service desk that reset MFA or a password for an impostor: caller verification.
fn help_desk_verification(r: &Review, _: &Incident) -> Option<Draft> {
    let said = recorded(r);
    let desk = ["service desk", "help desk", "helpdesk", "servicedesk"].iter().any(|w| said.contains(w));
    let reset = ["reset", "re-register", "reregister", "new phone", "mfa"].iter().any(|w| said.contains(w));
    if !(desk && reset) {
        return None;
    }
    let tickets = tickets(&said);
    // The procedure changed during the response already: what is left is to check it holds.
    let changed = said.contains("verification")
        && ["updated", "changed", "introduced", "in place"].iter().any(|w| said.contains(w));
    Some(Draft {
        id: id("harden_helpdesk", "caller verification"),
        kind: "help_desk_verification",
        category: "harden",
        area: "identity",
        priority: if changed { Priority::Medium } else { Priority::High },
        title: if changed {
            "Check that the service desk's new caller verification holds (recorded as updated)".into()
        } else {
            "Verify callers before the service desk resets MFA or passwords".into()
        },
        detail: format!(
            "The comments record a service desk reset in this incident{}{}. Require a call-back to the number on record, a manager's confirmation or an in-person check before any MFA or password reset, and alert on MFA methods registered right after a reset.",
            if tickets.is_empty() { String::new() } else { format!(" ({})", tickets.join(", ")) },
            if changed { ", and that the caller verification procedure was updated" } else { "" }
        ),
        done_when: "The service desk procedure requires out-of-band caller verification for MFA and password resets, and the reset in this incident's ticket has been reviewed against it.".into(),
        evidence: Evidence { entities: tickets, ..Default::default() },
    })
}

/// A block the lure had met before and that had expired: the analysts record it as the cause
/// ("the Tenant Allow/Block List entry expired on 2026-09-30 and was not renewed"). This one is
/// usually renewed during the response; the others expire the same way, unseen.
fn expired_block(r: &Review, _: &Incident) -> Option<Draft> {
    let said = recorded(r);
    let block = ["allow/block", "block list", "blocklist", "block entry", "blocked sender", "block for", "block of"]
        .iter()
        .any(|w| said.contains(w));
    let expired = ["expired", "expiry", "expiration", "lapsed"].iter().any(|w| said.contains(w));
    if !(block && expired) {
        return None;
    }
    // Renewed without an end during the response: what is left is the other entries.
    let renewed =
        ["without expiry", "no expiry", "never expire", "no expiration", "without expiration", "noexpiration"]
            .iter()
            .any(|w| said.contains(w));
    let domains = lure_domains(r);
    Some(Draft {
        id: id("harden_block_expiry", "tenant allow/block list"),
        kind: "block_entries_expire",
        category: "harden",
        area: "email",
        // Renewed already, the lure is blocked again: the other entries are the next thing,
        // not the first.
        priority: if renewed { Priority::Medium } else { Priority::High },
        title: "Keep blocks of known attackers from expiring unseen: a lapsed block let this lure back in".into(),
        detail: format!(
            "The comments record that a block entry for this lure had expired{}{}. Entries of the Tenant Allow/Block List end on their expiration date without notice. List the sender, domain and URL blocks that expire in the next 30 days (Get-TenantAllowBlockListItems -ListType Sender -Block, then -ListType Url), set confirmed attacker infrastructure to never expire (Set-TenantAllowBlockListItems -NoExpiration), and give the expiring ones an owner who reviews them before they lapse.",
            if domains.is_empty() { String::new() } else { format!(" ({})", list(&domains, 3)) },
            if renewed { "; it was re-added without expiry during the response" } else { "" },
        ),
        done_when: "Every block of the Tenant Allow/Block List for a confirmed attacker's sender, domain or URL has no expiration date, and the entries that do expire are reviewed on a schedule with an owner.".into(),
        evidence: Evidence { entities: domains, ..Default::default() },
    })
}

/// The registrable part of the domains of the incident's URLs and senders that Defender judged
/// malicious or suspicious: what a block entry names.
fn lure_domains(r: &Review) -> Vec<String> {
    let mut out: Vec<String> = r
        .incident
        .entities
        .iter()
        .filter(|e| matches!(e.verdict.as_deref(), Some("malicious" | "suspicious")))
        .filter_map(|e| match e.kind.as_str() {
            "url" => url::Url::parse(&e.name).ok().and_then(|u| u.host_str().map(str::to_owned)),
            _ => None,
        })
        .map(|host| {
            // The last two labels: view.secure-fabrikamdocs.com → secure-fabrikamdocs.com. A
            // public-suffix list would do better for co.uk and the like; the comment names the
            // entry anyway.
            let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
            labels[labels.len().saturating_sub(2)..].join(".").to_ascii_lowercase()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Ticket and change numbers as comments write them (INC0048213, CHG-20931).
pub(super) fn tickets(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| {
            let upper = w.to_ascii_uppercase();
            ["INC", "CHG", "RITM", "REQ", "CR", "SR"].iter().any(|p| {
                upper.strip_prefix(p).is_some_and(|rest| {
                    let digits = rest.trim_start_matches('-');
                    digits.len() >= 4 && digits.chars().all(|c| c.is_ascii_digit())
                })
            })
        })
        .map(str::to_ascii_uppercase)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// OAuth consent abuse: restrict user consent and review the app's credentials.
fn oauth_consent(r: &Review, _: &Incident) -> Option<Draft> {
    if !(observed(r, "T1528") || observed(r, "T1550.001")) {
        return None;
    }
    // The consented application; cloud apps (Exchange, SharePoint) are what it reached.
    let of = |kind: &str| -> Vec<String> {
        r.incident.entities.iter().filter(|e| e.kind == kind).map(|e| e.name.clone()).collect()
    };
    let apps = match of("oauth_app") {
        a if a.is_empty() => of("cloud_app"),
        a => a,
    };
    Some(Draft {
        id: id("harden_consent", "user consent"),
        kind: "restrict_app_consent",
        category: "harden",
        area: "identity",
        priority: Priority::High,
        title: "Allow user consent only to verified publishers, through the admin consent workflow".into(),
        detail: format!(
            "An application was granted access by consent ({}{}). Limit user consent to verified publishers and low-risk permissions, route the rest to admin consent, and review the credentials and permissions of apps consented in the last 90 days.",
            if apps.is_empty() { "T1528".to_owned() } else { list(&apps, 3) },
            if observed(r, "T1550.001") { "; its token was then used, T1550.001" } else { "" }
        ),
        done_when: "User consent settings allow only verified publishers; the hunt oauth-apps-new-estate shows no unreviewed consent since the change.".into(),
        evidence: Evidence {
            techniques: vec!["T1528".into()],
            mitigations: vec!["M1017".into(), "M1021".into()],
            entities: apps,
            hunts: vec!["oauth-apps-new-estate".into()],
            ..Default::default()
        },
    })
}

/// Mail forwarded out or hidden by rules: block automatic external forwarding.
fn mail_forwarding(r: &Review, _: &Incident) -> Option<Draft> {
    let forward = observed(r, "T1114.003");
    let hide = observed(r, "T1564.008");
    if !(forward || hide) {
        return None;
    }
    // The mailboxes the rule alerts name; all of the incident's only when they name none.
    let users = match super::accounts_of(r, &["T1114.003", "T1564.008"]) {
        named if named.is_empty() => accounts(r),
        named => named,
    };
    Some(Draft {
        id: id("harden_forwarding", "external forwarding"),
        kind: "block_mail_forwarding",
        category: "harden",
        area: "email",
        priority: Priority::Medium,
        title: if forward {
            "Block automatic forwarding to external addresses".into()
        } else {
            "Alert on inbox rules that hide, move or delete mail".into()
        },
        detail: format!(
            "The attacker {} in {}. {}",
            match (forward, hide) {
                (true, true) => "forwarded mail out and hid replies with inbox rules",
                (true, false) => "forwarded mail out",
                _ => "hid mail with inbox rules",
            },
            if users.is_empty() { "the compromised mailbox".to_owned() } else { list(&users, 3) },
            if forward {
                "Set the outbound anti-spam policy's automatic forwarding to Off (allow named exceptions only) and alert on new inbox rules that forward, delete or move mail."
            } else {
                "Alert on new inbox rules that delete, move or mark mail as read (a custom detection on CloudAppEvents New-InboxRule / Set-InboxRule), so the next one is seen while it hides replies."
            }
        ),
        // Each case is done when what it asks for is in place, checked by the hunt that looks
        // for that kind of rule across the estate.
        done_when: match (forward, hide) {
            (true, true) => "The outbound spam policy blocks automatic external forwarding and a custom detection alerts on new inbox rules that forward, delete or move mail; the hunts inbox-rules-forwarding-external-estate and inbox-rules-hiding-estate return nothing unexplained for the last 30 days.",
            (true, false) => "The outbound spam policy blocks automatic external forwarding; the hunt inbox-rules-forwarding-external-estate returns nothing for the last 30 days.",
            _ => "A custom detection on CloudAppEvents alerts on new inbox rules that delete, move or mark mail as read; the hunt inbox-rules-hiding-estate returns nothing unexplained for the last 30 days.",
        }
        .into(),
        evidence: Evidence {
            techniques: [forward.then_some("T1114.003"), hide.then_some("T1564.008")].into_iter().flatten().map(str::to_owned).collect(),
            entities: users,
            hunts: [forward.then_some("inbox-rules-forwarding-external-estate"), hide.then_some("inbox-rules-hiding-estate")]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect(),
            ..Default::default()
        },
    })
}

/// Ransomware's precursors (security tools turned off, recovery inhibited, encryption):
/// tamper protection, attack surface reduction rules, LAPS.
fn ransomware_precursors(r: &Review, incident: &Incident) -> Option<Draft> {
    let seen: Vec<&str> = ["T1562.001", "T1490", "T1486", "T1003.001"].into_iter().filter(|t| observed(r, t)).collect();
    let ransomware = observed(r, "T1486") || observed(r, "T1490");
    if !ransomware || seen.is_empty() {
        return None;
    }
    let hosts = hosts_of(r, incident, &["T1562.001", "T1490", "T1486"]);
    Some(Draft {
        id: id("harden_ransomware", "tamper asr laps"),
        kind: "ransomware_hardening",
        category: "harden",
        area: "endpoint",
        priority: Priority::High,
        title: "Turn on tamper protection, block-mode ASR rules and LAPS on every device".into(),
        detail: format!(
            "The attack {} ({}{}). Tamper protection stops Defender being switched off; the ASR rules \"Block credential stealing from LSASS\", \"Use advanced protection against ransomware\" and \"Block process creations from PSExec and WMI commands\" in block mode stop its usual steps; LAPS gives every device its own local administrator password.",
            if observed(r, "T1562.001") { "turned security tools off before encrypting" } else { "deleted backups or encrypted files" },
            seen.join(", "),
            if hosts.is_empty() { String::new() } else { format!(" on {}", list(&hosts, 4)) }
        ),
        done_when: "Defender's device inventory shows tamper protection on and the three ASR rules in block mode on every device, and LAPS manages the local administrator of every server.".into(),
        evidence: Evidence {
            techniques: seen.iter().map(|s| (*s).to_owned()).collect(),
            mitigations: vec!["M1040".into(), "M1038".into(), "M1026".into()],
            entities: hosts,
            ..Default::default()
        },
    })
}

/// High-severity alerts left while the attack went on: act within minutes, automatically where
/// possible — not a review of "why".
fn act_on_high_severity(r: &Review, _: &Incident) -> Option<Draft> {
    let waited: Vec<&UnattendedAlert> = r.unattended_alerts.iter().filter(|u| u.severity == "high").collect();
    let longest = waited.iter().max_by_key(|u| u.delay_s)?;
    let titles: Vec<String> = waited.iter().map(|u| format!("\"{}\"", u.title)).collect();
    Some(Draft {
        id: id("harden_response", "high severity within minutes"),
        kind: "act_on_high_severity",
        category: "harden",
        area: "soc",
        priority: Priority::High,
        title: format!(
            "Act on high-severity alerts within minutes: {} waited up to {}",
            if waited.len() == 1 { "one".to_owned() } else { waited.len().to_string() },
            super::duration(longest.delay_s)
        ),
        detail: format!(
            "{} {} before anyone acted. Page the on-call analyst for high-severity alerts (a 15-minute target), and let automatic attack disruption and automated investigation contain devices and users without waiting.",
            and_list(&titles),
            if waited.len() == 1 { "waited" } else { "each waited" }
        ),
        done_when: "High-severity alerts page an on-call analyst, and the next month's reviews list no unattended high-severity alert.".into(),
        evidence: Evidence { alerts: waited.iter().map(|u| u.alert.clone()).collect(), ..Default::default() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_and_change_records_are_found_in_comments() {
        assert_eq!(tickets("confirms the reset in inc0048213 was done; see chg-20931."), ["CHG-20931", "INC0048213"]);
        assert!(tickets("the increase in 2026 inc12").is_empty());
    }
}
