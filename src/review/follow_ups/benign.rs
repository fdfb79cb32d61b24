//! False and benign positives: the review is about the detection, not the attack. A security
//! test means the detection worked — confirm the test was authorised, tune nothing. A false
//! positive, or expected activity, gets one scoped tuning suggestion (the alert, the device or
//! user, the binary, an expiry, the change record the comments name), never a blanket
//! exclusion, and no mitigations, blind stages or first-time lists.

use super::harden::tickets;
use super::{Draft, id, list, recorded};
use crate::model::Incident;
use crate::review::coverage::is_own_rule;
use crate::review::model::*;

/// How long a suppression lives before someone must look again.
const EXPIRY_DAYS: u64 = 90;

pub(super) fn derive(r: &Review, incident: &Incident) -> Vec<Draft> {
    if r.incident.determination == "securityTesting" {
        return vec![security_test(r)];
    }
    vec![tuning(r, incident)]
}

fn security_test(r: &Review) -> Draft {
    let titles: Vec<String> = r.alerts.iter().map(|a| format!("\"{}\"", a.title)).collect();
    let records = tickets(&recorded(r));
    Draft {
        id: id("authorised_test", &r.incident.id),
        kind: "confirm_security_test",
        category: "process",
        area: "soc",
        priority: Priority::Medium,
        title: "Confirm the security test was authorised: the detection worked, tune nothing".into(),
        detail: format!(
            "Classified as a security test. {} fired as it should{}. Record who ran the test, its scope and its authorisation; do not suppress the alerts, or the next real attack of the same kind goes unseen.",
            list(&titles, 3),
            if records.is_empty() { String::new() } else { format!(" (the comments name {})", records.join(", ")) }
        ),
        done_when: "The test's authorisation (change record or engagement letter, tester, scope, dates) is linked on the incident.".into(),
        evidence: Evidence { alerts: r.alerts.iter().map(|a| a.id.clone()).collect(), entities: records, ..Default::default() },
    }
}

fn tuning(r: &Review, incident: &Incident) -> Draft {
    let expected = r.incident.classification == "informationalExpectedActivity";
    // The alert that raised it: the first one (the incident's own order).
    let first = r.alerts.first();
    let title = first.map_or_else(|| r.incident.title.clone(), |a| a.title.clone());
    let own = first.is_some_and(|a| is_own_rule(a.detection_source.as_deref(), a.service_source.as_deref()));
    let evidence = incident.alerts.first().map(|a| a.evidence.as_slice()).unwrap_or_default();
    let named = |kinds: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = evidence
            .iter()
            .filter(|e| kinds.contains(&e.kind.as_str()))
            .filter_map(|e| e.props.get("fileName").or(e.entity.as_ref()).cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let devices = named(&["deviceEvidence"]);
    let users = named(&["userEvidence"]);
    let binaries = named(&["fileEvidence", "processEvidence"]);
    let hashes: Vec<String> = evidence
        .iter()
        .filter_map(|e| e.props.get("sha256").cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let records = tickets(&recorded(r));
    // What Defender removed or blocked of the legitimate activity: to be restored.
    let removed: Vec<String> = r
        .incident
        .entities
        .iter()
        .filter(|e| {
            e.remediation_status
                .as_deref()
                .is_some_and(|s| ["remediated", "prevented", "blocked"].iter().any(|v| s.eq_ignore_ascii_case(v)))
        })
        .map(|e| e.name.clone())
        .collect();
    let expires = r
        .incident
        .resolved
        .or(r.incident.created)
        .map(|t| (t.date_naive() + chrono::Days::new(EXPIRY_DAYS)).to_string());
    let mut scope: Vec<String> = vec![];
    if !binaries.is_empty() {
        scope.push(format!(
            "the binary {}{}",
            list(&binaries, 2),
            if hashes.is_empty() { String::new() } else { format!(" (SHA-256 {})", list(&hashes, 2)) }
        ));
    }
    if !devices.is_empty() {
        scope.push(format!("on {}", list(&devices, 3)));
    }
    if !users.is_empty() {
        scope.push(format!("run by {}", list(&users, 3)));
    }
    let scope = if scope.is_empty() { "the entities of this alert only".to_owned() } else { scope.join(" ") };
    // The title names the same scope without hashes and domains: one line a reader scans.
    let host = |d: &String| d.split('.').next().unwrap_or(d).to_owned();
    let mut short: Vec<String> = vec![];
    if !binaries.is_empty() {
        short.push(list(&binaries, 2));
    }
    if !devices.is_empty() {
        short.push(format!("on {}", list(&devices.iter().map(host).collect::<Vec<_>>(), 3)));
    }
    if !users.is_empty() {
        short.push(format!("by {}", list(&users, 2)));
    }
    let short = if short.is_empty() { "this alert's entities".to_owned() } else { short.join(" ") };
    let how = if own { "Add an exclusion to your rule" } else { "Create a Defender alert tuning rule (suppression)" };
    Draft {
        id: id("tune", &r.incident.id),
        kind: "tune_detection",
        category: "detect",
        area: "detection",
        priority: Priority::Medium,
        title: format!("Suppress \"{title}\" for {short} only{}", expires.as_ref().map(|e| format!(", until {e}")).unwrap_or_default()),
        detail: format!(
            "Classified {} ({}): {}. {how} matching \"{title}\" for {scope}, never for the whole alert, with an expiry{}{}.",
            r.incident.classification,
            r.incident.determination,
            if expected { "the activity was expected" } else { "the alert was wrong" },
            expires.as_ref().map(|e| format!(" ({e}, {EXPIRY_DAYS} days)")).unwrap_or_default(),
            if records.is_empty() {
                String::new()
            } else {
                format!(", and cite the change record the comments name ({})", records.join(", "))
            },
        ) + &if removed.is_empty() {
            String::new()
        } else {
            format!(" Defender removed or blocked {}: restore it if the approved activity still needs it.", list(&removed, 3))
        },
        done_when: "A tuning rule or exclusion exists with exactly this scope and an expiry date; the same activity outside it still alerts.".into(),
        evidence: Evidence {
            alerts: first.map(|a| vec![a.id.clone()]).unwrap_or_default(),
            entities: devices.into_iter().chain(users).chain(binaries).chain(records).collect(),
            ..Default::default()
        },
    }
}
