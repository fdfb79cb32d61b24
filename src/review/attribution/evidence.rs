//! What the incident itself says about who did it, before any similarity: the actor names
//! Defender put on alerts, and the ATT&CK software the alerts and the evidence name.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::attack::Catalog;
use crate::attack::model::SoftwareKind;
use crate::attack::software::{SoftwareIndex, SoftwareMatch};
use crate::model::Incident;
use crate::review::model::SoftwareEvidence;

/// An actor name as alerts carry it (`actorDisplayName`), with the alerts that carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub name: String,
    pub alerts: Vec<String>,
}

/// The named and software evidence of one incident.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub actors: Vec<Actor>,
    /// Each software once, with the first text that named it and every alert that did.
    pub software: Vec<SoftwareEvidence>,
    /// When each alert was raised: tells whether an actor label and a software detection are
    /// one observation.
    pub(in crate::review) times: HashMap<String, DateTime<Utc>>,
}

impl Evidence {
    /// Only software, as the attribution benchmark and `hindsight attribute` tests give it.
    pub fn software(software: Vec<SoftwareEvidence>) -> Evidence {
        Evidence { software, ..Evidence::default() }
    }

    /// The actor names of the alerts, and the software named by their threat family and
    /// display names and by their file and process evidence.
    pub fn of(incident: &Incident, catalog: &Catalog, index: &SoftwareIndex) -> Evidence {
        let mut ev = Evidence::default();
        for a in &incident.alerts {
            if let Some(t) = a.created {
                ev.times.insert(a.id.clone(), t);
            }
            if let Some(name) = a.actor.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                match ev.actors.iter_mut().find(|x| x.name == name) {
                    Some(x) if !x.alerts.contains(&a.id) => x.alerts.push(a.id.clone()),
                    Some(_) => {}
                    None => ev.actors.push(Actor { name: name.to_owned(), alerts: vec![a.id.clone()] }),
                }
            }
            for t in [&a.threat_family_name, &a.threat_display_name].into_iter().flatten() {
                ev.add(index.threat(catalog, t), &a.id);
            }
            for e in a.evidence.iter().filter(|e| matches!(e.kind.as_str(), "fileEvidence" | "processEvidence")) {
                if let Some(f) = e.props.get("fileName") {
                    ev.add(index.file(catalog, f), &a.id);
                }
            }
        }
        ev
    }

    fn add(&mut self, m: Option<SoftwareMatch>, alert: &str) {
        let Some(m) = m else { return };
        if let Some(s) = self.software.iter_mut().find(|s| s.id == m.id) {
            if !s.alerts.iter().any(|a| a == alert) {
                s.alerts.push(alert.to_owned());
            }
            return;
        }
        self.software.push(SoftwareEvidence {
            id: m.id,
            name: m.name,
            kind: match m.kind {
                SoftwareKind::Malware => "malware".into(),
                SoftwareKind::Tool => "tool".into(),
            },
            matched: m.matched,
            alerts: vec![alert.to_owned()],
        });
    }

    /// Whether the alerts that carry `actor` are the software detection itself: one of them
    /// names the software, or each was raised within an hour of an alert that does. Defender
    /// derives actor labels from such detections, so the two are one piece of evidence.
    pub fn same_observation(&self, actor: &Actor, software: &SoftwareEvidence) -> bool {
        if actor.alerts.iter().any(|a| software.alerts.contains(a)) {
            return true;
        }
        let named: Vec<DateTime<Utc>> = software.alerts.iter().filter_map(|a| self.times.get(a)).copied().collect();
        !named.is_empty()
            && actor
                .alerts
                .iter()
                .all(|a| self.times.get(a).is_some_and(|t| named.iter().any(|n| (*t - *n).num_minutes().abs() <= 60)))
    }
}
