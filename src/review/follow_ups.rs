//! Follow-ups: concrete, de-duplicated action items derived from the review's findings, each
//! pointing to the evidence that produced it. Derived from the [`Review`] alone, so what a
//! follow-up claims can always be traced in the same document.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::model::*;

fn id(kind: &str, key: &str) -> String {
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

fn duration(secs: i64) -> String {
    match secs {
        s if s >= 86_400 => format!("{:.1} days", s as f64 / 86_400.0),
        s if s >= 3_600 => format!("{:.1} h", s as f64 / 3_600.0),
        s => format!("{} min", s / 60),
    }
}

fn list(items: &[String], max: usize) -> String {
    let mut s = items.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > max {
        s += &format!(" and {} more", items.len() - max);
    }
    s
}

/// "A", "A and B", "A, B and C".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
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

/// True when the incident was real: detection gaps only matter for true positives (and for
/// incidents nobody classified, which are treated as real).
fn is_real(r: &Review) -> bool {
    !matches!(r.incident.classification.as_str(), "falsePositive" | "informationalExpectedActivity")
}

pub(crate) fn derive(r: &Review) -> Vec<FollowUp> {
    let mut out: Vec<FollowUp> = Vec::new();
    let severe = matches!(r.incident.severity.as_str(), "high" | "medium");
    let mut push = |f: FollowUp| {
        if !out.iter().any(|o| o.id == f.id) {
            out.push(f);
        }
    };
    if !is_real(r) {
        let alerts: Vec<String> =
            r.techniques.iter().flat_map(|t| t.alerts.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        push(FollowUp {
            id: id("tune", &r.incident.id),
            kind: "tune_detection".into(),
            priority: Priority::Medium,
            title: format!("Tune the detections behind this {}", r.incident.classification),
            detail: format!(
                "Incident {} was classified {} ({}). Review the alert logic or add a scoped exclusion so that the same activity does not raise an incident again.",
                r.incident.id, r.incident.classification, r.incident.determination
            ),
            evidence: Evidence {
                alerts,
                techniques: r.techniques.iter().map(|t| t.id.clone()).collect(),
                ..Default::default()
            },
        });
    }
    if is_real(r) {
        for u in &r.gaps.uncovered {
            let dcs = dc_names(&u.data_components);
            push(FollowUp {
                id: id("detect", &u.id),
                kind: "add_detection".into(),
                priority: if severe { Priority::High } else { Priority::Medium },
                title: format!("Add a detection for {} {}", u.id, u.name),
                detail: format!(
                    "Observed in {} but covered by no rule of the detection inventory.{}",
                    list(&u.alerts, 3),
                    if dcs.is_empty() {
                        String::new()
                    } else {
                        format!(" ATT&CK detects it through {}.", list(&dcs, 4))
                    }
                ),
                evidence: Evidence {
                    techniques: vec![u.id.clone()],
                    alerts: u.alerts.clone(),
                    data_components: dcs,
                    ..Default::default()
                },
            });
        }
        if !r.gaps.blind_stages.is_empty() {
            // One item for all blind stages: they are one hunt over one time range, and eight
            // separate "high" items would drown the rest.
            let per_stage: Vec<String> = r
                .gaps
                .blind_stages
                .iter()
                .map(|s| {
                    let top: Vec<String> = s.likely.iter().take(2).map(|l| format!("{} {}", l.id, l.name)).collect();
                    if top.is_empty() { s.name.clone() } else { format!("{} ({})", s.name, top.join(", ")) }
                })
                .collect();
            let stages: Vec<String> = r.gaps.blind_stages.iter().map(|s| s.tactic.clone()).collect();
            push(FollowUp {
                id: id("blind", &format!("{}\0{}", r.incident.id, stages.join(","))),
                kind: "hunt_blind_stages".into(),
                priority: if severe { Priority::High } else { Priority::Medium },
                title: format!("Hunt in the {} stage(s) the attack passed without an alert", stages.len()),
                detail: format!(
                    "The activity implies {}, and no alert covered {}. Groups with similar techniques most often use, per stage: {}. {}",
                    and_list(&r.gaps.blind_stages.iter().map(|s| s.name.clone()).collect::<Vec<_>>()),
                    if r.gaps.blind_stages.len() == 1 { "it" } else { "them" },
                    per_stage.join("; "),
                    hunts_to_run(r)
                ),
                evidence: Evidence {
                    tactics: stages,
                    techniques: r
                        .gaps
                        .blind_stages
                        .iter()
                        .flat_map(|s| s.likely.iter().take(2).map(|l| l.id.clone()))
                        .collect(),
                    ..Default::default()
                },
            });
        }
        // A data component that would detect several uncovered or likely techniques is worth
        // checking once, not once per technique.
        let mut by_dc: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let uncovered = r.gaps.uncovered.iter().map(|u| (&u.id, &u.data_components));
        let likely =
            r.gaps.blind_stages.iter().flat_map(|s| s.likely.iter().take(2).map(|l| (&l.id, &l.data_components)));
        for (t, dcs) in uncovered.chain(likely) {
            for d in dc_names(dcs) {
                by_dc.entry(d).or_default().insert(t.clone());
            }
        }
        let mut dcs: Vec<(String, BTreeSet<String>)> = by_dc.into_iter().filter(|(_, ts)| ts.len() >= 2).collect();
        dcs.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        for (dc, ts) in dcs.into_iter().take(3) {
            let ts: Vec<String> = ts.into_iter().collect();
            push(FollowUp {
                id: id("collect", &dc),
                kind: "collect_data".into(),
                priority: Priority::Medium,
                title: format!("Make sure {dc} is collected and searchable"),
                detail: format!("It is the log source ATT&CK names for detecting {} in this incident.", list(&ts, 5)),
                evidence: Evidence { data_components: vec![dc], techniques: ts, ..Default::default() },
            });
        }
        for l in &r.gaps.late_detections {
            push(FollowUp {
                id: id("late", &format!("{}\0{}", r.incident.id, l.alert)),
                kind: "review_latency".into(),
                priority: Priority::Medium,
                title: format!("Find out why \"{}\" fired {} after the activity began", l.title, duration(l.delay_s)),
                detail: "A detection that waits hours gives the attacker time: check the rule's schedule and look-back, ingestion delay, and whether an earlier signal was available.".into(),
                evidence: Evidence { alerts: vec![l.alert.clone()], techniques: l.techniques.clone(), ..Default::default() },
            });
        }
        for m in r.mitigations.iter().filter(|m| m.techniques.len() >= 2).take(3) {
            push(FollowUp {
                id: id("mitigate", &m.id),
                kind: "apply_mitigation".into(),
                priority: Priority::Low,
                title: format!("Review mitigation {} {}", m.id, m.name),
                detail: format!(
                    "It addresses {} of the techniques in this incident: {}.",
                    m.techniques.len(),
                    list(&m.techniques, 5)
                ),
                evidence: Evidence {
                    mitigations: vec![m.id.clone()],
                    techniques: m.techniques.clone(),
                    ..Default::default()
                },
            });
        }
    }
    // A closed true positive without a recorded cause is a process gap: the next incident
    // cannot be told apart from a recurrence of this one.
    if r.incident.classification == "truePositive" && r.story.root_cause.is_none() {
        push(FollowUp {
            id: id("root_cause", &r.incident.id),
            kind: "record_root_cause".into(),
            priority: Priority::Medium,
            title: "Record the root cause".into(),
            detail: format!(
                "Incident {} is a true positive and no root cause is recorded: neither the resolving comment nor any comment says how the attacker got in or why it worked. Write it in the resolving comment (\"Root cause: …\"), so that later reviews can tell whether the same way in returns.",
                r.incident.id
            ),
            evidence: Evidence::default(),
        });
    }
    for g in &r.knowledge_gaps {
        match g {
            KnowledgeGap::OutdatedId { received, current, alerts } => push(FollowUp {
                id: id("outdated", received),
                kind: "update_detection_content".into(),
                priority: Priority::Low,
                title: match current {
                    Some(c) => format!("Update detection content still tagged {received}: ATT&CK now calls it {c}"),
                    None => format!("Update detection content still tagged {received}, which ATT&CK no longer uses"),
                },
                detail: "Out-of-date technique IDs split reports and coverage maps; retag the rule.".into(),
                evidence: Evidence { alerts: alerts.clone(), techniques: current.iter().cloned().collect(), ..Default::default() },
            }),
            KnowledgeGap::UnknownTechnique { received, alerts } => push(FollowUp {
                id: id("unknown", received),
                kind: "check_technique_id".into(),
                priority: Priority::Low,
                title: format!("Check the technique ID \"{received}\": ATT&CK {} does not know it", r.basis.attack_version.as_deref().unwrap_or("")),
                detail: "Either the rule's tag is wrong or the catalog is older than the rule; `hindsight catalog import` loads a newer ATT&CK release.".into(),
                evidence: Evidence { alerts: alerts.clone(), ..Default::default() },
            }),
            KnowledgeGap::UnmappedAlert { alert, title, .. } => push(FollowUp {
                id: id("map", title),
                kind: "map_detection".into(),
                priority: Priority::Low,
                title: format!("Map the detection \"{title}\" to ATT&CK"),
                detail: "Its alerts carry no technique, so coverage and trend reports cannot count them.".into(),
                evidence: Evidence { alerts: vec![alert.clone()], ..Default::default() },
            }),
            _ => {}
        }
    }
    let first: Vec<String> = r
        .knowledge_gaps
        .iter()
        .filter_map(|g| match g {
            KnowledgeGap::FirstSeen { technique, name } => Some(format!("{technique} {name}")),
            _ => None,
        })
        .collect();
    if is_real(r) && !first.is_empty() {
        push(FollowUp {
            id: id("learn", &r.incident.id),
            kind: "share_knowledge".into(),
            priority: Priority::Low,
            title: format!("Brief the team on {} technique(s) met for the first time", first.len()),
            detail: format!("No earlier review saw {}.", list(&first, 5)),
            evidence: Evidence {
                techniques: first.iter().map(|f| f.split(' ').next().unwrap_or_default().to_owned()).collect(),
                ..Default::default()
            },
        });
    }
    out.sort_by_key(|f| f.priority);
    out
}

/// What the blind-stage follow-up asks: the review's own hunts, before advanced hunting loses
/// the window; else a hunt by hand.
fn hunts_to_run(r: &Review) -> String {
    let n: usize = r.gaps.blind_stages.iter().flat_map(|s| &s.likely).map(|l| l.hunts.len()).sum();
    match (&r.gaps.hunt_window, n) {
        (Some(w), n) if n > 0 => format!(
            "Run the {n} hunting queries in this review before {}, when advanced hunting (30 days) no longer holds the incident's window, and check that what they find would be detected.",
            w.run_before.format("%Y-%m-%d")
        ),
        _ => "Hunt for them in this incident's time range and check that they would be detected.".into(),
    }
}
