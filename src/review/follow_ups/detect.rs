//! Detection and response, by what raised the alert: a Sentinel scheduled rule can be made NRT,
//! a custom detection run more often, an offline Identity Protection detection cannot be tuned
//! at all. Re-tagging and re-mapping are asked only for the organisation's own rules: nobody
//! can edit a Microsoft built-in detection.

use std::collections::{BTreeMap, BTreeSet};

use super::{Draft, id, list};
use crate::review::coverage::is_own_rule;
use crate::review::model::*;

pub(super) fn derive(r: &Review) -> Vec<Draft> {
    let mut out: Vec<Draft> = Vec::new();
    out.extend(add_detections(r));
    out.extend(collect_data(r));
    out.extend(r.gaps.late_detections.iter().map(|l| late(r, l)));
    out
}

fn alert<'r>(r: &'r Review, id: &str) -> Option<&'r AlertSummary> {
    r.alerts.iter().find(|a| a.id == id)
}

fn own(a: &AlertSummary) -> bool {
    is_own_rule(a.detection_source.as_deref(), a.service_source.as_deref())
}

fn dc_names(dcs: &[DataComponentRef]) -> Vec<String> {
    dcs.iter()
        .map(|d| match (&d.id, &d.data_source) {
            (Some(id), _) => format!("{id} {}", d.name),
            (None, Some(ds)) => format!("{ds}: {}", d.name),
            (None, None) => d.name.clone(),
        })
        .collect()
}

/// Techniques nothing covered (only a manual alert, no rule).
fn add_detections(r: &Review) -> Vec<Draft> {
    let severe = matches!(r.incident.severity.as_str(), "high" | "medium");
    r.gaps
        .uncovered
        .iter()
        .map(|u| {
            let dcs = dc_names(&u.data_components);
            let seen = list(&u.alerts.iter().map(|a| alert(r, a).map_or(a.clone(), |x| format!("\"{}\"", x.title))).collect::<Vec<_>>(), 3);
            // A rule that names it exists but does not run: turning it back on (or fixing the
            // query Defender gave up on) is the fix, not a new rule.
            let off = r.gaps.coverage.iter().find(|c| c.technique == u.id).map(|c| c.disabled_rules.clone()).unwrap_or_default();
            let (title, detail) = if off.is_empty() {
                (
                    format!("Add a detection for {} {}", u.id, u.name),
                    format!(
                        "Observed in {seen}, but no detection alerted on it and no rule of the detection inventory covers it.{}",
                        if dcs.is_empty() { String::new() } else { format!(" ATT&CK detects it through {}.", list(&dcs, 4)) }
                    ),
                )
            } else {
                (
                    format!("Turn the rule for {} {} back on", u.id, u.name),
                    format!(
                        "Observed in {seen}, and no detection alerted on it, though {} would have covered it: it does not run. Re-enable it (an auto-disabled rule needs its query fixed first).",
                        list(&off, 3)
                    ),
                )
            };
            Draft {
                id: id("detect", &u.id),
                kind: "add_detection",
                category: "detect",
                area: "detection",
                priority: if severe { Priority::High } else { Priority::Medium },
                title,
                detail,
                done_when: format!("A rule that names {} is in the detection inventory and enabled.", u.id),
                evidence: Evidence {
                    techniques: vec![u.id.clone()],
                    alerts: u.alerts.clone(),
                    data_components: dcs,
                    ..Default::default()
                },
            }
        })
        .collect()
}

/// A data component that would detect several uncovered or likely techniques is worth checking
/// once, not once per technique.
fn collect_data(r: &Review) -> Vec<Draft> {
    let mut by_dc: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let uncovered = r.gaps.uncovered.iter().map(|u| (&u.id, &u.data_components));
    let likely = r.gaps.blind_stages.iter().flat_map(|s| s.likely.iter().take(2).map(|l| (&l.id, &l.data_components)));
    for (t, dcs) in uncovered.chain(likely) {
        for d in dc_names(dcs) {
            by_dc.entry(d).or_default().insert(t.clone());
        }
    }
    let mut dcs: Vec<(String, BTreeSet<String>)> = by_dc.into_iter().filter(|(_, ts)| ts.len() >= 2).collect();
    dcs.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    dcs.into_iter()
        .take(2)
        .map(|(dc, ts)| {
            let ts: Vec<String> = ts.into_iter().collect();
            let tables = dc.split_whitespace().next().map_or(&[][..], defender_tables);
            let (detail, done_when) = if tables.is_empty() {
                (
                    format!("It is the log source ATT&CK names for detecting {} in this incident.", list(&ts, 5)),
                    format!(
                        "A query over the last 7 days returns {dc} events from every device class the incident touched."
                    ),
                )
            } else {
                let tables = crate::review::story::and_list(&tables.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>());
                (
                    format!(
                        "It is the log source ATT&CK names for detecting {} in this incident; Defender XDR's advanced hunting holds it in {tables} (a table without rows is a sensor or licence not deployed).",
                        list(&ts, 5)
                    ),
                    format!(
                        "A query over the last 7 days returns rows of {tables} for the devices and accounts the incident touched."
                    ),
                )
            };
            Draft {
                id: id("collect", &dc),
                kind: "collect_data",
                category: "detect",
                area: "detection",
                priority: Priority::Medium,
                title: format!("Make sure {dc} is collected and searchable"),
                detail,
                done_when,
                evidence: Evidence { data_components: vec![dc], techniques: ts, ..Default::default() },
            }
        })
        .collect()
}

/// The Defender XDR advanced hunting tables that hold an ATT&CK data component's events, for
/// the components Defender collects (Microsoft's schema reference, `data/hunting/tables.json`):
/// a SOC checks a table, not a data component. Empty for the rest (cloud storage, containers,
/// firmware, …), which Defender XDR does not collect as such.
fn defender_tables(dc: &str) -> &'static [&'static str] {
    match dc {
        // User Account Authentication, Logon Session Creation, Logon Session Metadata.
        "DC0002" | "DC0067" | "DC0088" => &["EntraIdSignInEvents", "IdentityLogonEvents", "DeviceLogonEvents"],
        // Web Credential Creation and Usage: tokens and cookies, seen in sign-ins and app activity.
        "DC0006" | "DC0007" => &["EntraIdSignInEvents", "CloudAppEvents"],
        // User Account Deletion, Modification, Creation; Group Modification; Active Directory
        // Object Creation, Modification, Deletion.
        "DC0009" | "DC0010" | "DC0014" | "DC0094" | "DC0066" | "DC0068" | "DC0087" => {
            &["IdentityDirectoryEvents", "CloudAppEvents"]
        }
        // Active Directory Credential Request (Kerberos), Active Directory Object Access.
        "DC0084" => &["IdentityLogonEvents"],
        "DC0071" => &["IdentityQueryEvents"],
        // Process Creation, Command Execution.
        "DC0032" | "DC0064" => &["DeviceProcessEvents"],
        // Script Execution (PowerShell, AMSI), OS API Execution, Process Access, Process
        // Modification, Scheduled Job and Service Creation.
        "DC0029" | "DC0021" | "DC0035" | "DC0020" | "DC0001" | "DC0060" => &["DeviceEvents"],
        // Module Load.
        "DC0016" => &["DeviceImageLoadEvents"],
        // File Creation, Deletion, Modification, Metadata.
        "DC0039" | "DC0040" | "DC0061" | "DC0059" => &["DeviceFileEvents"],
        // Windows Registry Key Creation, Modification, Deletion.
        "DC0056" | "DC0063" | "DC0045" => &["DeviceRegistryEvents"],
        // Network Traffic Flow, Network Connection Creation.
        "DC0078" | "DC0082" => &["DeviceNetworkEvents"],
        // Cloud Service Modification, Disable, Enumeration.
        "DC0069" | "DC0090" | "DC0083" => &["CloudAppEvents"],
        _ => &[],
    }
}

/// What can be done about a late alert depends on what raised it.
fn late(r: &Review, l: &LateDetection) -> Draft {
    let a = alert(r, &l.alert);
    let source = a.and_then(|a| a.detection_source.as_deref()).unwrap_or_default();
    let product = a.map_or_else(|| "its product".to_owned(), |a| a.product.clone());
    let delay = super::duration(l.delay_s);
    let (title, detail, done_when, area) = match source.to_ascii_lowercase().as_str() {
        "scheduledalerts" => (
            format!("Make the Sentinel rule \"{}\" near-real-time, or run it more often", l.title),
            format!(
                "It fired {delay} after the activity began: a scheduled analytics rule sees data only when it runs. Convert it to an NRT rule, or shorten its frequency and look-back to minutes."
            ),
            format!("The rule \"{}\" is NRT or runs at least every 15 minutes.", l.title),
            "detection",
        ),
        "customdetection" => (
            format!("Run the custom detection \"{}\" continuously", l.title),
            format!(
                "It fired {delay} after the activity began. Set the custom detection's frequency to continuous (NRT) where its query allows, otherwise to every hour."
            ),
            format!("The custom detection \"{}\" runs continuously or every hour.", l.title),
            "detection",
        ),
        "azureadidentityprotection" => (
            format!("Compensate for \"{}\", an offline Identity Protection detection", l.title),
            format!(
                "It fired {delay} after the activity began: Identity Protection computes some risks offline, and nothing in it can be tuned. Act on it sooner through a sign-in risk Conditional Access policy (real-time risk), or an own NRT rule on the sign-ins it looks at."
            ),
            "A Conditional Access policy acts on sign-in risk, or an NRT rule covers the same sign-ins.".to_owned(),
            "identity",
        ),
        _ if a.is_some_and(own) => (
            format!("Make the rule behind \"{}\" fire sooner", l.title),
            format!(
                "It fired {delay} after the activity began. Check the rule's schedule and look-back, and the data's ingestion delay."
            ),
            format!("The rule behind \"{}\" runs at least every 15 minutes on data ingested within minutes.", l.title),
            "detection",
        ),
        _ => (
            format!("Find out why \"{}\" ({product}) fired {delay} after the activity began", l.title),
            format!(
                "A built-in detection of {product}: its logic cannot be changed. Check the sensor's health and the data's delay on the devices involved, and whether an earlier signal (a custom detection on the same events) would have caught it."
            ),
            format!(
                "The sensor on the devices involved reports healthy, or a custom detection covers {} earlier.",
                if l.techniques.is_empty() { "the activity".to_owned() } else { l.techniques.join(", ") }
            ),
            "detection",
        ),
    };
    Draft {
        id: id("late", &format!("{}\0{}", r.incident.id, l.alert)),
        kind: "review_latency",
        category: "detect",
        area,
        priority: Priority::Medium,
        title,
        detail,
        done_when,
        evidence: Evidence { alerts: vec![l.alert.clone()], techniques: l.techniques.clone(), ..Default::default() },
    }
}

/// The organisation's own detection content: re-tag outdated IDs, check unknown ones, map
/// unmapped detections — only where the alert came from its own rule. A Microsoft built-in
/// detection's unknown ID says the catalog is older than Microsoft's: import a newer one.
pub(super) fn content(r: &Review) -> Vec<Draft> {
    let mut out = Vec::new();
    let any_own = |alerts: &[String]| alerts.iter().any(|a| alert(r, a).is_some_and(own));
    for g in &r.knowledge_gaps {
        match g {
            KnowledgeGap::OutdatedId { received, current, alerts } if any_own(alerts) => out.push(Draft {
                id: id("outdated", received),
                kind: "update_detection_content",
                category: "detect",
                area: "detection",
                priority: Priority::Low,
                title: match current.as_ref().filter(|c| *c != received) {
                    Some(c) => format!("Re-tag your rule still tagged {received}: ATT&CK now calls it {c}"),
                    None => format!("Re-tag your rule still tagged {received}, which ATT&CK no longer maintains"),
                },
                detail: "Out-of-date technique IDs split reports and coverage maps.".into(),
                done_when: format!("No rule of yours is tagged {received}."),
                evidence: Evidence { alerts: alerts.clone(), techniques: current.iter().cloned().collect(), ..Default::default() },
            }),
            KnowledgeGap::UnknownTechnique { received, alerts } => out.push(Draft {
                id: id("unknown", received),
                kind: "check_technique_id",
                category: "detect",
                area: "detection",
                priority: Priority::Low,
                title: format!(
                    "Check the technique ID \"{received}\": ATT&CK {} does not know it",
                    r.basis.attack_version.as_deref().unwrap_or("")
                ),
                detail: if any_own(alerts) {
                    "Either your rule's tag is wrong or the catalog is older than the rule; `hindsight catalog import` loads a newer ATT&CK release.".into()
                } else {
                    "Microsoft's detection names it: the catalog is probably older than Microsoft's; `hindsight catalog import` loads a newer ATT&CK release.".into()
                },
                done_when: format!("`hindsight catalog lookup {received}` finds it, or the rule's tag is corrected."),
                evidence: Evidence { alerts: alerts.clone(), ..Default::default() },
            }),
            KnowledgeGap::UnmappedAlert { alert: a, title, .. } if any_own(std::slice::from_ref(a)) => out.push(Draft {
                id: id("map", title),
                kind: "map_detection",
                category: "detect",
                area: "detection",
                priority: Priority::Low,
                title: format!("Map your detection \"{title}\" to ATT&CK"),
                detail: "Its alerts carry no technique, so coverage and trend reports cannot count them.".into(),
                done_when: format!("The rule \"{title}\" names at least one ATT&CK technique."),
                evidence: Evidence { alerts: vec![a.clone()], ..Default::default() },
            }),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// Every table named is one of Defender XDR's advanced hunting tables (the schemas the
    /// hunts are checked against).
    #[test]
    fn the_tables_named_for_data_components_exist() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/hunting/tables.json");
        let schemas: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut named = 0;
        for n in 0..200 {
            for t in super::defender_tables(&format!("DC{n:04}")) {
                assert!(schemas["tables"].get(*t).is_some(), "DC{n:04}: {t} is not an advanced hunting table");
                named += 1;
            }
        }
        assert!(named > 20);
    }
}
