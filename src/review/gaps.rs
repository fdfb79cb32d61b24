//! Coverage gaps: observed techniques no detection covers, blind stages of the kill chain with
//! the techniques most likely used there, what would detect them, and late detections.

use std::collections::BTreeSet;

use super::Engine;
use super::attribution::{Similarities, Vector};
use super::mapping::Mapped;
use super::model::*;
use crate::attack::Catalog;
use crate::model::Incident;

pub(crate) fn data_components(catalog: &Catalog, t: usize) -> Vec<DataComponentRef> {
    catalog
        .data_components_for(t)
        .filter(|d| d.lifecycle.is_active())
        .map(|d| DataComponentRef { id: d.id.clone(), name: d.name.clone(), data_source: d.data_source.clone() })
        .collect()
}

fn strategies(catalog: &Catalog, t: usize) -> Vec<String> {
    let set: BTreeSet<&str> =
        catalog.detection_strategies_of(t).filter(|s| s.lifecycle.is_active()).map(|s| s.id.as_str()).collect();
    set.into_iter().map(str::to_owned).collect()
}

/// What the incident itself says about the techniques of its blind stages, beyond what
/// resembling groups use: the software it names, the phishing that came before a sign-in.
pub(crate) struct Leads<'a> {
    pub software: &'a [SoftwareEvidence],
    pub phish: Option<&'a super::implied::PhishSource>,
}

pub(crate) fn find(
    engine: &Engine,
    inventory: Option<&dyn super::DetectionInventory>,
    incident: &Incident,
    mapped: &Mapped,
    vector: &Vector,
    sims: &Similarities,
    leads: Leads,
) -> Gaps {
    let catalog = &*engine.catalog;
    let coverage = super::coverage::assess(incident, catalog, mapped, inventory);
    let uncovered = match inventory {
        None => vec![],
        Some(_) => mapped
            .techniques
            .iter()
            .zip(&mapped.catalog_ix)
            .zip(&coverage)
            .filter(|(_, c)| c.state == CoverageState::None)
            .filter_map(|((t, ix), _)| {
                let ix = (*ix)?;
                Some(UncoveredTechnique {
                    id: t.id.clone(),
                    name: t.name.clone().unwrap_or_default(),
                    alerts: t.alerts.clone(),
                    data_components: data_components(catalog, ix),
                    detection_strategies: strategies(catalog, ix),
                })
            })
            .collect(),
    };
    let platforms = super::platforms::infer(incident);
    Gaps {
        uncovered,
        coverage,
        blind_stages: blind_stages(engine, inventory, mapped, vector, sims, &leads, &platforms),
        late_detections: late(engine, incident, mapped),
        platforms,
        hunt_window: None,
        estate_hunts: vec![],
    }
}

/// What a phishing page that came before the sign-in takes, as ATT&CK names it, with why: the
/// credential access of such an incident is one of these, not the brute force that groups
/// resembling it also use.
const PHISHING_TAKES: [(&str, &str); 4] = [
    ("T1539", "an adversary-in-the-middle phishing page takes the session cookie"),
    ("T1557", "an adversary-in-the-middle phishing page relays the sign-in"),
    ("T1111", "the MFA code typed into a phishing page is relayed"),
    ("T1528", "a phishing link can ask for consent to an application and take its token"),
];

/// For each blind stage, the techniques of that tactic that groups and campaigns resembling the
/// incident use most (similarity-weighted), excluding what was observed. Techniques of that
/// tactic that software the incident names is known to use come first, with that reason: the
/// software was there, so what it does is more than a resemblance. Likewise, when phishing
/// came before the sign-in, what a phishing page takes comes first for Credential Access.
fn blind_stages(
    engine: &Engine,
    inventory: Option<&dyn super::DetectionInventory>,
    mapped: &Mapped,
    vector: &Vector,
    sims: &Similarities,
    leads: &Leads,
    platforms: &[String],
) -> Vec<BlindStage> {
    let catalog = &*engine.catalog;
    let blind: Vec<&TacticState> = mapped.tactics.iter().filter(|t| t.state == StageState::Blind).collect();
    if blind.is_empty() {
        return vec![];
    }
    let index = engine.attribution_index();
    let likely = index.likely(sims, 20);
    let contributors = &likely.contributors;
    // technique index → why it is more than a resemblance: the first named software known to
    // use it.
    let mut known: std::collections::HashMap<usize, String> = std::collections::HashMap::new();
    for s in leads.software {
        for t in catalog.software(&s.id).map(|x| x.techniques.as_slice()).unwrap_or_default() {
            if let Some(ix) = catalog.technique_ix(t) {
                known.entry(ix).or_insert_with(|| format!("software {} {} is known to use it", s.id, s.name));
            }
        }
    }
    let phished: std::collections::HashMap<usize, String> = match leads.phish {
        Some(_) => PHISHING_TAKES
            .iter()
            .filter_map(|(t, why)| {
                let ix = catalog.technique_ix(t)?;
                Some((ix, format!("{why}, and here the phishing came before the sign-in")))
            })
            .collect(),
        None => Default::default(),
    };
    let per_stage = engine.settings.likely_per_stage;
    blind
        .into_iter()
        .map(|stage| {
            let position = catalog.tactic_position(&stage.shortname).unwrap_or(usize::MAX);
            let mut cands: Vec<(usize, f64, Option<&String>)> = engine
                .techniques_of_tactic(position)
                .iter()
                .filter(|&&i| !vector.contains_key(i as u32))
                // Only what can run where this incident happened.
                .filter(|&&i| super::platforms::fits(platforms, &catalog.techniques()[i].platforms))
                // Software runs after the attacker got in: what it is known for explains how
                // they got in only through a technique that does nothing else (a loader's
                // phishing), not through one of several tactics (Cobalt Strike's valid
                // accounts are for moving, not for entering).
                .map(|&i| {
                    let t = &catalog.techniques()[i];
                    let fits = stage.shortname != "initial-access" || t.tactics.len() == 1;
                    let why = match phished.get(&i) {
                        Some(why) if stage.shortname == "credential-access" => Some(why),
                        _ => known.get(&i).filter(|_| fits),
                    };
                    (i, likely.of(i), why)
                })
                .filter(|&(_, l, why)| l > 0.0 || why.is_some())
                .collect();
            top(&mut cands, per_stage, |a, b| {
                b.2.is_some()
                    .cmp(&a.2.is_some())
                    .then_with(|| b.1.total_cmp(&a.1))
                    .then_with(|| catalog.technique_id_rank(a.0).cmp(&catalog.technique_id_rank(b.0)))
            });
            let likely = cands
                .into_iter()
                .map(|(i, l, why)| {
                    let t = &catalog.techniques()[i];
                    LikelyTechnique {
                        id: t.id.clone(),
                        name: t.name.clone(),
                        likelihood: (l * 1000.0).round() / 1000.0,
                        used_by: contributors
                            .iter()
                            .filter(|&&ei| index.entry_uses(ei, i as u32))
                            .take(3)
                            .map(|&ei| index.entry_label(ei))
                            .collect(),
                        reason: why.cloned(),
                        covered: inventory.map(|inv| inv.covers(catalog, &t.id)),
                        data_components: data_components(catalog, i),
                        hunts: vec![],
                        hunt_note: None,
                    }
                })
                .collect();
            BlindStage {
                tactic: stage.shortname.clone(),
                name: stage.name.clone(),
                reason: stage.reason.clone().unwrap_or_default(),
                likely,
            }
        })
        .collect()
}

/// Keeps the first `n` of `items` in `order` (a total order), sorted: selects them first, so
/// that only those few are sorted.
fn top<T>(items: &mut Vec<T>, n: usize, order: impl Fn(&T, &T) -> std::cmp::Ordering) {
    if n == 0 {
        items.clear();
        return;
    }
    if n < items.len() {
        items.select_nth_unstable_by(n - 1, &order);
        items.truncate(n);
    }
    items.sort_unstable_by(order);
}

fn late(engine: &Engine, incident: &Incident, mapped: &Mapped) -> Vec<LateDetection> {
    let threshold = chrono::Duration::from_std(engine.settings.late_detection).unwrap_or(chrono::Duration::hours(1));
    let mut out: Vec<LateDetection> = incident
        .alerts
        .iter()
        .filter_map(|a| {
            let (first, created) = (a.first_activity?, a.created?);
            let delay = created - first;
            (delay > threshold).then(|| LateDetection {
                alert: a.id.clone(),
                title: a.title.clone(),
                first_activity: first,
                created,
                delay_s: delay.num_seconds(),
                techniques: mapped
                    .techniques
                    .iter()
                    .filter(|t| t.alerts.contains(&a.id))
                    .map(|t| t.id.clone())
                    .collect(),
            })
        })
        .collect();
    out.sort_by(|a, b| b.delay_s.cmp(&a.delay_s).then_with(|| a.alert.cmp(&b.alert)));
    out
}
