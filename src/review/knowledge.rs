//! Knowledge gaps: what the team meets for the first time, and what could not be mapped or was
//! received under an outdated ATT&CK ID.
//!
//! Left out on purpose (REVIEW-V2 §4, no boilerplate): "ATT&CK lists no mitigation" and "ATT&CK
//! has no detection data" lines. Both are facts about the catalog, the same for every incident
//! with the technique, and nothing a team can act on after this incident; the detection-data
//! one only ever fired for techniques that were alerted on (so detected) or deprecated (already
//! reported as such). Their variants stay deserializable for stored reviews.

use super::History;
use super::mapping::Mapped;
use super::model::KnowledgeGap;
use crate::attack::{Catalog, Status};

/// The knowledge gaps of a review. `benign` (a false positive or expected activity): no attack
/// to learn from, so nothing is "new to the team".
pub(crate) fn find(catalog: &Catalog, mapped: &Mapped, history: &History, benign: bool) -> Vec<KnowledgeGap> {
    let mut out = Vec::new();
    if !benign {
        out.extend(first_seen(mapped, history));
    }
    for (received, alerts) in &mapped.unknown {
        out.push(KnowledgeGap::UnknownTechnique { received: received.clone(), alerts: alerts.clone() });
    }
    for (received, current, alerts) in &mapped.outdated {
        out.push(KnowledgeGap::OutdatedId {
            received: received.clone(),
            current: replacement(catalog, received, current.as_deref()),
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

/// Techniques no earlier review of the organisation has. Without a recorded history (an
/// offline review) that cannot be known: none is listed, and the review says so
/// (`basis.history_recorded`) instead of calling every technique new.
fn first_seen(mapped: &Mapped, history: &History) -> Vec<KnowledgeGap> {
    if !history.recorded {
        return vec![];
    }
    mapped
        .techniques
        .iter()
        .zip(&mapped.catalog_ix)
        .filter(|(t, ix)| ix.is_some() && !history.techniques_seen.contains(&t.id))
        .filter_map(|(t, _)| {
            let name = t.name.clone()?;
            Some(KnowledgeGap::FirstSeen { technique: t.id.clone(), name })
        })
        .collect()
}

/// The ID that replaces an outdated one: a revoked ID's replacement; `None` for a deprecated
/// ID, which ATT&CK retired without one (the mapping names the deprecated technique itself).
fn replacement(catalog: &Catalog, received: &str, current: Option<&str>) -> Option<String> {
    if catalog.resolve(received).status == Status::Deprecated {
        return None;
    }
    current.map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Incident;
    use serde_json::json;

    fn mapped(catalog: &Catalog, techniques: &[&str]) -> Mapped {
        let incident =
            Incident::from_graph(&json!({"id": "1", "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": [
                {"id": "a1", "title": "t", "mitreTechniques": techniques},
            ]}))
            .unwrap();
        super::super::mapping::map(&incident, catalog)
    }

    fn first_seen_ids(gaps: &[KnowledgeGap]) -> Vec<&str> {
        gaps.iter()
            .filter_map(|g| match g {
                KnowledgeGap::FirstSeen { technique, .. } => Some(technique.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn without_a_recorded_history_nothing_is_first_seen() {
        let catalog = crate::attack::store::embedded().unwrap();
        let m = mapped(&catalog, &["T1059.001", "T1003.001", "T1566.002"]);
        assert!(find(&catalog, &m, &History::default(), false).is_empty());
        // Recorded but empty (the organisation's first review): everything is new.
        let first = History { recorded: true, ..History::default() };
        assert_eq!(first_seen_ids(&find(&catalog, &m, &first, false)), ["T1003.001", "T1059.001", "T1566.002"]);
        // A false positive has nothing new to teach.
        assert!(find(&catalog, &m, &first, true).is_empty());
    }

    #[test]
    fn with_a_recorded_history_only_techniques_not_seen_before_are_first_seen() {
        let catalog = crate::attack::store::embedded().unwrap();
        let m = mapped(&catalog, &["T1059.001", "T1003.001"]);
        let history =
            History { techniques_seen: ["T1059.001".to_owned()].into(), recorded: true, ..History::default() };
        let gaps = find(&catalog, &m, &history, false);
        assert_eq!(first_seen_ids(&gaps), ["T1003.001"]);
    }

    #[test]
    fn no_mitigation_or_detection_data_lines() {
        let catalog = crate::attack::store::embedded().unwrap();
        // T1016 and T1018 have no ATT&CK mitigation; T1064 (deprecated) no detection data.
        let m = mapped(&catalog, &["T1016", "T1018", "T1064"]);
        let gaps = find(&catalog, &m, &History { recorded: true, ..History::default() }, false);
        assert!(
            !gaps.iter().any(|g| matches!(g, KnowledgeGap::NoMitigation { .. } | KnowledgeGap::NoDetectionData { .. })),
            "{gaps:?}"
        );
    }

    #[test]
    fn a_deprecated_id_has_no_replacement_and_a_revoked_one_keeps_its_own() {
        let catalog = crate::attack::store::embedded().unwrap();
        let m = mapped(&catalog, &["T1064", "T1086"]);
        let gaps = find(&catalog, &m, &History::default(), false);
        let current = |id: &str| {
            gaps.iter().find_map(|g| match g {
                KnowledgeGap::OutdatedId { received, current, .. } if received == id => Some(current.clone()),
                _ => None,
            })
        };
        assert_eq!(current("T1064"), Some(None), "{gaps:?}");
        assert_eq!(current("T1086"), Some(Some("T1059.001".to_owned())), "{gaps:?}");
    }
}
