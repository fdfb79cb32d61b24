//! Knowledge gaps: what the team meets for the first time, what could not be mapped, and where
//! ATT&CK itself offers no mitigation or detection guidance.

use super::History;
use super::mapping::Mapped;
use super::model::KnowledgeGap;
use crate::attack::Catalog;

pub(crate) fn find(catalog: &Catalog, mapped: &Mapped, history: &History) -> Vec<KnowledgeGap> {
    let mut out = Vec::new();
    for (t, ix) in mapped.techniques.iter().zip(&mapped.catalog_ix) {
        let (Some(ix), Some(name)) = (*ix, &t.name) else { continue };
        if !history.techniques_seen.contains(&t.id) {
            out.push(KnowledgeGap::FirstSeen { technique: t.id.clone(), name: name.clone() });
        }
        if catalog.mitigations_of(ix).all(|m| !m.lifecycle.is_active()) {
            out.push(KnowledgeGap::NoMitigation { technique: t.id.clone(), name: name.clone() });
        }
        if catalog.data_components_for(ix).next().is_none() && catalog.detection_strategies_of(ix).next().is_none() {
            out.push(KnowledgeGap::NoDetectionData { technique: t.id.clone(), name: name.clone() });
        }
    }
    for (received, alerts) in &mapped.unknown {
        out.push(KnowledgeGap::UnknownTechnique { received: received.clone(), alerts: alerts.clone() });
    }
    for (received, current, alerts) in &mapped.outdated {
        out.push(KnowledgeGap::OutdatedId {
            received: received.clone(),
            current: current.clone(),
            alerts: alerts.clone(),
        });
    }
    for (alert, title, category) in &mapped.unmapped {
        out.push(KnowledgeGap::UnmappedAlert {
            alert: alert.clone(),
            title: title.clone(),
            category: category.clone(),
        });
    }
    out
}
