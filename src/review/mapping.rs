//! Alerts → ATT&CK: every technique ID an alert carries, resolved through the catalog (revoked
//! IDs to their replacement, deprecated and unknown ones kept and flagged), and the kill chain
//! marked observed, blind or outside.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::model::*;
use crate::attack::{Catalog, Status};
use crate::model::Incident;

/// What the mapping found, with the indexes the other analyses need.
pub(crate) struct Mapped {
    pub techniques: Vec<TechniqueFinding>,
    /// Catalog index of every resolved technique finding (same order as `techniques`, `None`
    /// for unknown ones).
    pub catalog_ix: Vec<Option<usize>>,
    pub tactics: Vec<TacticState>,
    pub unmapped: Vec<(String, String, Option<String>)>,
    /// Received IDs that are revoked or deprecated, with their current ID and the alerts.
    pub outdated: Vec<(String, Option<String>, Vec<String>)>,
    pub unknown: Vec<(String, Vec<String>)>,
}

/// Defender's `category` names a tactic in PascalCase (`CredentialAccess`); the catalog's
/// shortnames are kebab-case. Compare both with case and punctuation removed.
pub(crate) fn category_tactic<'c>(catalog: &'c Catalog, category: &str) -> Option<&'c str> {
    // Compared character by character without allocating: this runs for every alert.
    let key = || category.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase());
    catalog
        .tactics()
        .iter()
        .find(|t| t.shortname.chars().filter(|&c| c != '-').map(|c| c.to_ascii_lowercase()).eq(key()))
        .map(|t| t.shortname.as_str())
}

/// Per technique while alerts are walked; alerts are kept as indexes into the incident's list,
/// turned into IDs once at the end (a review runs thousands of times a second).
struct Acc<'i> {
    status: TechniqueStatus,
    received: Vec<&'i str>,
    tactics: Vec<usize>,
    alerts: Vec<usize>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    ix: Option<usize>,
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// A received ID's status ranks below "active": a technique reached directly is active even if
/// another alert carried a revoked ID for it.
fn rank(s: TechniqueStatus) -> u8 {
    match s {
        TechniqueStatus::Active => 0,
        TechniqueStatus::Revoked => 1,
        TechniqueStatus::Deprecated => 2,
        TechniqueStatus::Unknown => 3,
    }
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

pub(crate) fn map(incident: &Incident, catalog: &Catalog) -> Mapped {
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let mut stage_alerts: Vec<Vec<usize>> = vec![Vec::new(); catalog.tactics().len()];
    let mut unmapped = Vec::new();
    let mut outdated: BTreeMap<String, (Option<String>, BTreeSet<usize>)> = BTreeMap::new();
    let mut unknown: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();

    for (ai, alert) in incident.alerts.iter().enumerate() {
        let category_tactic = alert.category.as_deref().and_then(|c| category_tactic(catalog, c));
        let mut mapped_any = false;
        for received in &alert.mitre_techniques {
            if received.trim().is_empty() {
                continue;
            }
            // Most IDs are current and spelled as the catalog spells them: skip the full
            // resolution (and its allocations) for those.
            let r = match catalog.technique_ix(received) {
                Some(ix) if catalog.techniques()[ix].lifecycle.is_active() => crate::attack::Resolution {
                    query: String::new(),
                    normalized: None,
                    status: Status::Active,
                    technique: Some(ix),
                    revoked_chain: Vec::new(),
                    note: None,
                },
                _ => catalog.resolve(received),
            };
            let status = match r.status {
                Status::Active => TechniqueStatus::Active,
                Status::Revoked => TechniqueStatus::Revoked,
                Status::Deprecated => TechniqueStatus::Deprecated,
                Status::Unknown => TechniqueStatus::Unknown,
            };
            let tech = r.technique.map(|i| &catalog.techniques()[i]);
            match status {
                TechniqueStatus::Unknown => {
                    unknown.entry(received.clone()).or_default().insert(ai);
                }
                TechniqueStatus::Revoked | TechniqueStatus::Deprecated => {
                    let e = outdated
                        .entry(received.trim().to_owned())
                        .or_insert_with(|| (tech.map(|t| t.id.clone()), BTreeSet::new()));
                    e.1.insert(ai);
                }
                TechniqueStatus::Active => {}
            }
            let key = match (tech, r.normalized) {
                (Some(t), _) => t.id.clone(),
                (None, Some(n)) => n,
                (None, None) => received.trim().to_owned(),
            };
            let entry = acc.entry(key).or_insert_with(|| Acc {
                status,
                received: Vec::new(),
                tactics: Vec::new(),
                alerts: Vec::new(),
                first: None,
                last: None,
                ix: r.technique,
            });
            if rank(status) < rank(entry.status) {
                entry.status = status;
            }
            push_unique(&mut entry.received, received.as_str());
            push_unique(&mut entry.alerts, ai);
            entry.first = earliest(entry.first, alert.first_activity.or(alert.created));
            entry.last = entry.last.max(alert.last_activity.or(alert.created));
            if let Some(t) = tech {
                mapped_any = true;
                // The alert's category says which of a multi-tactic technique's tactics it saw.
                let seen = category_tactic.filter(|c| t.tactics.iter().any(|x| x == c));
                let tactics: Vec<&str> = match seen {
                    Some(c) => vec![c],
                    None => t.tactics.iter().map(String::as_str).collect(),
                };
                for p in tactics.into_iter().filter_map(|x| catalog.tactic_position(x)) {
                    push_unique(&mut entry.tactics, p);
                    push_unique(&mut stage_alerts[p], ai);
                }
            }
        }
        if !mapped_any {
            match category_tactic.and_then(|c| catalog.tactic_position(c)) {
                Some(p) => push_unique(&mut stage_alerts[p], ai),
                None => unmapped.push((alert.id.clone(), alert.title.clone(), alert.category.clone())),
            }
        }
    }

    let alert_ids = |ixs: &mut Vec<usize>| -> Vec<String> {
        let mut ids: Vec<String> = ixs.iter().map(|&i| incident.alerts[i].id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let mut techniques = Vec::with_capacity(acc.len());
    let mut catalog_ix = Vec::with_capacity(acc.len());
    let mut by_stage: Vec<Vec<String>> = vec![Vec::new(); catalog.tactics().len()];
    for (id, mut a) in acc {
        let t = a.ix.map(|i| &catalog.techniques()[i]);
        a.tactics.sort_unstable();
        a.received.sort_unstable();
        for &p in &a.tactics {
            by_stage[p].push(id.clone());
        }
        techniques.push(TechniqueFinding {
            name: t.map(|t| t.name.clone()),
            status: a.status,
            received_ids: a.received.iter().map(|s| (*s).to_owned()).collect(),
            tactics: a.tactics.iter().map(|&p| catalog.tactics()[p].shortname.clone()).collect(),
            alerts: alert_ids(&mut a.alerts),
            first_seen: a.first,
            last_seen: a.last,
            covered: None,
            url: t.map(|t| technique_url(&t.id)),
            id,
            service_sources: vec![],
            detection_sources: vec![],
            products: vec![],
        });
        catalog_ix.push(a.ix);
    }
    let tactics = stages(catalog, by_stage, &mut stage_alerts, &alert_ids);
    let to_ids = |set: BTreeSet<usize>| -> Vec<String> { alert_ids(&mut set.into_iter().collect()) };
    Mapped {
        techniques,
        catalog_ix,
        tactics,
        unmapped,
        outdated: outdated.into_iter().map(|(r, (c, a))| (r, c, to_ids(a))).collect(),
        unknown: unknown.into_iter().map(|(r, a)| (r, to_ids(a))).collect(),
    }
}

pub(crate) fn technique_url(id: &str) -> String {
    format!("https://attack.mitre.org/techniques/{}/", id.replace('.', "/"))
}

fn stages(
    catalog: &Catalog,
    by_stage: Vec<Vec<String>>,
    alerts: &mut [Vec<usize>],
    alert_ids: &dyn Fn(&mut Vec<usize>) -> Vec<String>,
) -> Vec<TacticState> {
    let first = alerts.iter().position(|a| !a.is_empty());
    let last = alerts.iter().rposition(|a| !a.is_empty());
    catalog
        .tactics()
        .iter()
        .zip(by_stage)
        .enumerate()
        .map(|(p, (t, techniques))| {
            let state = match (!alerts[p].is_empty(), first, last) {
                (true, _, _) => StageState::Observed,
                (false, Some(f), Some(l)) if f < p && p < l => StageState::Blind,
                _ => StageState::Outside,
            };
            TacticState {
                shortname: t.shortname.clone(),
                name: t.name.clone(),
                state,
                techniques,
                alerts: alert_ids(&mut alerts[p]),
            }
        })
        .collect()
}
