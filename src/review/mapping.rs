//! Alerts → ATT&CK: every technique ID an alert carries, resolved through the catalog (revoked
//! IDs to their replacement, deprecated and unknown ones kept and flagged), and the kill chain
//! marked observed or outside (`implied` then marks the blind stages).

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

/// The ID a finding is known by: the current technique's, else the received ID in canonical
/// form, else the received ID as it came (trimmed).
fn finding_key(tech: Option<&crate::attack::model::Technique>, normalized: Option<String>, received: &str) -> String {
    match (tech, normalized) {
        (Some(t), _) => t.id.clone(),
        (None, Some(n)) => n,
        (None, None) => received.trim().to_owned(),
    }
}

/// One received technique ID as [`map`] names its finding: the current ID at the end of a
/// revocation chain, a deprecated or unknown ID in canonical form; `None` for a blank one.
pub(crate) fn canonical_technique(catalog: &Catalog, received: &str) -> Option<String> {
    if received.trim().is_empty() {
        return None;
    }
    // Most IDs are current and spelled as the catalog spells them, as in [`map`].
    if let Some(ix) = catalog.technique_ix(received).filter(|&ix| catalog.techniques()[ix].lifecycle.is_active()) {
        return Some(catalog.techniques()[ix].id.clone());
    }
    let r = catalog.resolve(received);
    Some(finding_key(r.technique.map(|i| &catalog.techniques()[i]), r.normalized, received))
}

pub(crate) fn map(incident: &Incident, catalog: &Catalog) -> Mapped {
    // A few dozen findings at most: a list searched by ID beats a tree of large nodes, and the
    // key is allocated only for a new finding.
    let mut acc: Vec<(String, Acc)> = Vec::new();
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
            let found = match tech {
                Some(t) => acc.iter().position(|(k, _)| *k == t.id),
                None => None,
            };
            let slot = match found {
                Some(i) => i,
                None => {
                    let key = finding_key(tech, r.normalized, received);
                    match acc.iter().position(|(k, _)| *k == key) {
                        Some(i) => i,
                        None => {
                            acc.push((
                                key,
                                Acc {
                                    status,
                                    received: Vec::new(),
                                    tactics: Vec::new(),
                                    alerts: Vec::new(),
                                    first: None,
                                    last: None,
                                    ix: r.technique,
                                },
                            ));
                            acc.len() - 1
                        }
                    }
                }
            };
            let entry = &mut acc[slot].1;
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
    acc.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // Each alert's product named once, not once per technique it carries.
    let products: Vec<String> = incident.alerts.iter().map(super::scope::alert_product).collect();
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
            service_sources: sources(&a.alerts, |i| incident.alerts[i].service_source.as_deref()),
            detection_sources: sources(&a.alerts, |i| incident.alerts[i].detection_source.as_deref()),
            products: sources(&a.alerts, |i| Some(products[i].as_str())),
            platforms: t.map(|t| t.platforms.clone()).unwrap_or_default(),
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

/// What the alerts at `alerts` say of themselves, sorted and de-duplicated.
fn sources<'a>(alerts: &[usize], of: impl Fn(usize) -> Option<&'a str>) -> Vec<String> {
    let mut found: Vec<&str> = alerts.iter().filter_map(|&i| of(i)).collect();
    found.sort_unstable();
    found.dedup();
    found.into_iter().map(str::to_owned).collect()
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
    catalog
        .tactics()
        .iter()
        .zip(by_stage)
        .enumerate()
        .map(|(p, (t, techniques))| {
            // Blind stages are those the activity implies (`implied::mark`), not those between.
            let state = if alerts[p].is_empty() { StageState::Outside } else { StageState::Observed };
            TacticState {
                shortname: t.shortname.clone(),
                name: t.name.clone(),
                state,
                techniques,
                alerts: alert_ids(&mut alerts[p]),
                reason: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_technique_names_a_received_id_as_its_finding_is_named() {
        let catalog = crate::attack::store::embedded().unwrap();
        let c = |s: &str| canonical_technique(&catalog, s);
        assert_eq!(c("T1059.001").as_deref(), Some("T1059.001"));
        assert_eq!(c(" t1059/001 ").as_deref(), Some("T1059.001"));
        assert_eq!(c("T1086").as_deref(), Some("T1059.001"), "revoked: its replacement");
        assert_eq!(c("T9999").as_deref(), Some("T9999"), "unknown: as received, canonical");
        assert_eq!(c("not an id ").as_deref(), Some("not an id"));
        assert_eq!(c("  "), None);
    }

    #[test]
    fn techniques_carry_the_sources_of_the_alerts_naming_them() {
        let catalog = crate::attack::store::embedded().unwrap();
        let incident = Incident::from_graph(&json!({"id": "1", "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": [
            {"id": "a1", "mitreTechniques": ["T1059.001"], "serviceSource": "microsoftDefenderForEndpoint", "detectionSource": "customDetection"},
            {"id": "a2", "mitreTechniques": ["T1086"], "serviceSource": "microsoftDefenderForEndpoint", "detectionSource": "antivirus"},
            {"id": "a3", "mitreTechniques": ["T1059.001"], "serviceSource": "microsoft365Defender"},
            {"id": "a4", "mitreTechniques": ["T1078"], "serviceSource": "azureAdIdentityProtection", "detectionSource": "azureAdIdentityProtection"},
        ]}))
        .unwrap();
        let m = map(&incident, &catalog);
        let ps = m.techniques.iter().find(|t| t.id == "T1059.001").unwrap();
        assert_eq!(ps.service_sources, ["microsoft365Defender", "microsoftDefenderForEndpoint"]);
        assert_eq!(ps.detection_sources, ["antivirus", "customDetection"]);
        // a3 has no detection source: its product is its service's.
        assert_eq!(ps.products, ["Antivirus", "Custom detection", "Microsoft Defender XDR"]);
        let va = m.techniques.iter().find(|t| t.id == "T1078").unwrap();
        assert_eq!(va.products, ["Microsoft Entra ID Protection"]);
    }
}
