//! What covered each observed technique (REVIEW-V2 §3): Microsoft's built-in detections
//! (`vendor`), the organisation's own rules — its detection inventory, or a custom detection or
//! Sentinel analytics rule that alerted (`inventory`) — both, or neither. A technique Defender
//! alerted on is covered; "add a detection" is for what nothing alerted on.

use super::DetectionInventory;
use super::mapping::Mapped;
use super::model::{CoverageAlert, CoverageState, TechniqueCoverage};
use crate::attack::Catalog;
use crate::model::Incident;

/// Graph `detectionSource`s that are the organisation's own rules, not Microsoft's: custom
/// detections, custom threat indicators, Sentinel analytics rules.
const OWN_RULES: &[&str] = &["customDetection", "customTi", "scheduledAlerts", "nrtAlerts", "microsoftSentinel"];

/// An alert raised by hand is no detection.
const NOT_A_DETECTION: &[&str] = &["manual"];

/// Whether a detection source is one of the organisation's own rules (which it can re-tag,
/// tune and re-map), as opposed to a Microsoft built-in detection.
pub(crate) fn is_own_rule(detection_source: Option<&str>, service_source: Option<&str>) -> bool {
    match detection_source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(d) => OWN_RULES.iter().any(|o| o.eq_ignore_ascii_case(d)),
        // Without a detection source, a Sentinel alert is from an analytics rule.
        None => service_source.is_some_and(|s| s.eq_ignore_ascii_case("microsoftSentinel")),
    }
}

fn is_detection(detection_source: Option<&str>) -> bool {
    !detection_source.is_some_and(|d| NOT_A_DETECTION.iter().any(|n| n.eq_ignore_ascii_case(d.trim())))
}

pub(crate) fn assess(
    incident: &Incident,
    catalog: &Catalog,
    mapped: &Mapped,
    inventory: Option<&dyn DetectionInventory>,
) -> Vec<TechniqueCoverage> {
    mapped
        .techniques
        .iter()
        .zip(&mapped.catalog_ix)
        .map(|(t, ix)| {
            let alerts: Vec<CoverageAlert> = incident
                .alerts
                .iter()
                .filter(|a| t.alerts.contains(&a.id))
                .filter(|a| is_detection(a.detection_source.as_deref()))
                .map(|a| CoverageAlert {
                    id: a.id.clone(),
                    title: a.title.clone(),
                    detection_source: a.detection_source.clone(),
                    product: super::scope::alert_product(a),
                    own_rule: is_own_rule(a.detection_source.as_deref(), a.service_source.as_deref()),
                })
                .collect();
            // Unknown techniques are not in the inventory's terms.
            let rules = match (inventory, ix) {
                (Some(inv), Some(_)) => inv.rules(catalog, &t.id),
                _ => vec![],
            };
            let vendor = alerts.iter().any(|a| !a.own_rule);
            let own = !rules.is_empty() || alerts.iter().any(|a| a.own_rule);
            let state = match (vendor, own) {
                (true, true) => CoverageState::Both,
                (true, false) => CoverageState::Vendor,
                (false, true) => CoverageState::Inventory,
                (false, false) => CoverageState::None,
            };
            // A rule on the parent does not vouch for this sub-technique, but a reader should
            // see it: it may need only a narrower condition.
            let parent_rules = match (inventory, t.id.split_once('.')) {
                (Some(inv), Some((parent, _))) if rules.is_empty() => inv.rules_naming(parent),
                _ => vec![],
            };
            let disabled_rules = match (inventory, ix) {
                (Some(inv), Some(_)) if rules.is_empty() => inv.disabled_rules(&t.id),
                _ => vec![],
            };
            let note = if !disabled_rules.is_empty() {
                Some(format!("{} would cover {} but does not run", disabled_rules.join(" and "), t.id))
            } else {
                (!parent_rules.is_empty()).then(|| {
                    let parent = t.id.split_once('.').map_or("", |(p, _)| p);
                    format!("{parent} rule exists; not specific to {}", t.id)
                })
            };
            TechniqueCoverage {
                technique: t.id.clone(),
                name: t.name.clone(),
                state,
                alerts,
                rules,
                parent_rules,
                disabled_rules,
                note,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_rules_are_custom_detections_and_sentinel_analytics() {
        assert!(is_own_rule(Some("customDetection"), Some("microsoftDefenderForEndpoint")));
        assert!(is_own_rule(Some("scheduledAlerts"), Some("microsoftSentinel")));
        assert!(is_own_rule(None, Some("microsoftSentinel")));
        assert!(!is_own_rule(Some("antivirus"), Some("microsoftDefenderForEndpoint")));
        assert!(!is_own_rule(Some("azureAdIdentityProtection"), None));
        assert!(!is_own_rule(None, Some("microsoftDefenderForEndpoint")));
        assert!(!is_detection(Some("manual")));
    }
}
