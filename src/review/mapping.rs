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
    let key: String = category.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    catalog.tactics().iter().find(|t| t.shortname.replace('-', "") == key).map(|t| t.shortname.as_str())
}

struct Acc {
    status: TechniqueStatus,
    received: BTreeSet<String>,
    tactics: BTreeSet<usize>,
    alerts: BTreeSet<String>,
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

pub(crate) fn map(incident: &Incident, catalog: &Catalog) -> Mapped {
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let mut stage_alerts: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut unmapped = Vec::new();
    let mut outdated: BTreeMap<String, (Option<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut unknown: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();

    for alert in &incident.alerts {
        let category_tactic = alert.category.as_deref().and_then(|c| category_tactic(catalog, c));
        let mut mapped_any = false;
        for received in &alert.mitre_techniques {
            if received.trim().is_empty() {
                continue;
            }
            let r = catalog.resolve(received);
            let status = match r.status {
                Status::Active => TechniqueStatus::Active,
                Status::Revoked => TechniqueStatus::Revoked,
                Status::Deprecated => TechniqueStatus::Deprecated,
                Status::Unknown => TechniqueStatus::Unknown,
            };
            let tech = r.technique.map(|i| &catalog.techniques()[i]);
            let key = tech.map(|t| t.id.clone()).or(r.normalized.clone()).unwrap_or_else(|| received.trim().to_owned());
            match status {
                TechniqueStatus::Unknown => {
                    unknown.entry(received.clone()).or_default().insert(alert.id.clone());
                }
                TechniqueStatus::Revoked | TechniqueStatus::Deprecated => {
                    let e = outdated
                        .entry(received.trim().to_owned())
                        .or_insert((tech.map(|t| t.id.clone()), BTreeSet::new()));
                    e.1.insert(alert.id.clone());
                }
                TechniqueStatus::Active => {}
            }
            let entry = acc.entry(key).or_insert_with(|| Acc {
                status,
                received: BTreeSet::new(),
                tactics: BTreeSet::new(),
                alerts: BTreeSet::new(),
                first: None,
                last: None,
                ix: r.technique,
            });
            if rank(status) < rank(entry.status) {
                entry.status = status;
            }
            entry.received.insert(received.clone());
            entry.alerts.insert(alert.id.clone());
            entry.first = earliest(entry.first, alert.first_activity.or(alert.created));
            entry.last = entry.last.max(alert.last_activity.or(alert.created));
            if let Some(t) = tech {
                mapped_any = true;
                // The alert's category says which of a multi-tactic technique's tactics it saw.
                let positions: Vec<usize> = match category_tactic.filter(|c| t.tactics.iter().any(|x| x == c)) {
                    Some(c) => catalog.tactic_position(c).into_iter().collect(),
                    None => t.tactics.iter().filter_map(|x| catalog.tactic_position(x)).collect(),
                };
                for p in positions {
                    entry.tactics.insert(p);
                    stage_alerts.entry(p).or_default().insert(alert.id.clone());
                }
            }
        }
        if !mapped_any {
            match category_tactic.and_then(|c| catalog.tactic_position(c)) {
                Some(p) => {
                    stage_alerts.entry(p).or_default().insert(alert.id.clone());
                }
                None => unmapped.push((alert.id.clone(), alert.title.clone(), alert.category.clone())),
            }
        }
    }

    let mut techniques = Vec::with_capacity(acc.len());
    let mut catalog_ix = Vec::with_capacity(acc.len());
    for (id, a) in acc {
        let t = a.ix.map(|i| &catalog.techniques()[i]);
        techniques.push(TechniqueFinding {
            name: t.map(|t| t.name.clone()),
            status: a.status,
            received_ids: a.received.into_iter().collect(),
            tactics: a.tactics.iter().map(|&p| catalog.tactics()[p].shortname.clone()).collect(),
            alerts: a.alerts.into_iter().collect(),
            first_seen: a.first,
            last_seen: a.last,
            covered: None,
            url: t.map(|t| technique_url(&t.id)),
            id,
        });
        catalog_ix.push(a.ix);
    }
    let tactics = stages(catalog, &techniques, &stage_alerts);
    Mapped {
        techniques,
        catalog_ix,
        tactics,
        unmapped,
        outdated: outdated.into_iter().map(|(r, (c, a))| (r, c, a.into_iter().collect())).collect(),
        unknown: unknown.into_iter().map(|(r, a)| (r, a.into_iter().collect())).collect(),
    }
}

pub(crate) fn technique_url(id: &str) -> String {
    format!("https://attack.mitre.org/techniques/{}/", id.replace('.', "/"))
}

fn stages(
    catalog: &Catalog,
    techniques: &[TechniqueFinding],
    alerts: &BTreeMap<usize, BTreeSet<String>>,
) -> Vec<TacticState> {
    let first = alerts.keys().next().copied();
    let last = alerts.keys().next_back().copied();
    catalog
        .tactics()
        .iter()
        .enumerate()
        .map(|(p, t)| {
            let state = match (alerts.contains_key(&p), first, last) {
                (true, _, _) => StageState::Observed,
                (false, Some(f), Some(l)) if f < p && p < l => StageState::Blind,
                _ => StageState::Outside,
            };
            TacticState {
                shortname: t.shortname.clone(),
                name: t.name.clone(),
                state,
                techniques: techniques
                    .iter()
                    .filter(|x| x.tactics.contains(&t.shortname))
                    .map(|x| x.id.clone())
                    .collect(),
                alerts: alerts.get(&p).map(|a| a.iter().cloned().collect()).unwrap_or_default(),
            }
        })
        .collect()
}
