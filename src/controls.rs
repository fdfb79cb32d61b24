//! Microsoft 365 security capabilities mapped to ATT&CK (CTID Mappings Explorer, data/m365/):
//! which Defender, Entra ID, Exchange Online Protection and Purview capabilities protect against,
//! detect or respond to a technique, how well, and at which licence tier.
//!
//! The mappings use ATT&CK 16.1 IDs; they are resolved through the catalog in use when loaded,
//! so a technique revoked since then still finds its controls under its current ID.

use std::collections::HashMap;

use serde::Deserialize;

use crate::attack::Catalog;
use crate::review::{ControlCatalog, ControlRef};

static EMBEDDED: &str = include_str!("../data/m365/m365-controls.json");

#[derive(Debug, thiserror::Error)]
#[error("the embedded Microsoft 365 control mappings cannot be read: {0}")]
pub struct ControlsError(String);

/// A Microsoft 365 licence tier as the mappings name them (the capability ID's suffix). The
/// tiers are ordered: E5 includes everything in E3, so a control of tier E3 is available at E3
/// and at E5, one of tier E5 at E5 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Licence {
    E3,
    E5,
}

impl Licence {
    /// The tiers, lowest first.
    pub const ALL: [Licence; 2] = [Licence::E3, Licence::E5];

    /// Reads a configured tier, case-insensitively ("e5", " E5 ").
    pub fn parse(s: &str) -> Result<Licence, String> {
        let s = s.trim();
        Licence::ALL.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            let allowed: Vec<&str> = Licence::ALL.iter().map(|l| l.as_str()).collect();
            format!(
                "{s:?} is not a licence tier of the Microsoft 365 control mappings; use one of {}",
                allowed.join(", ")
            )
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Licence::E3 => "E3",
            Licence::E5 => "E5",
        }
    }

    /// Whether a control of tier `tier` is available at this licence. A control whose tier the
    /// mappings do not give is not claimed to be (none in the 07/2025 release).
    pub fn includes(self, tier: Option<&str>) -> bool {
        tier.and_then(|t| Licence::parse(t).ok()).is_some_and(|t| t <= self)
    }
}

/// A capability name as a reader should see it: no stray spaces (the source has "Advanced
/// Anti-Phishing " with a trailing one), and the source's misspellings corrected.
fn tidy_name(name: &str) -> String {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    match name.as_str() {
        // Source spelling "ATT&CK Simulation Training": Microsoft's product is "Attack
        // simulation training" (Defender for Office 365), unrelated to MITRE ATT&CK.
        "ATT&CK Simulation Training" => "Attack Simulation Training".to_owned(),
        // Source spelling "AntiSpam": Microsoft, and the source's other names ("Anti-Phishing",
        // "Anti-Spoofing"), write it with a hyphen.
        "AntiSpam" => "Anti-Spam".to_owned(),
        _ => name,
    }
}

#[derive(Deserialize)]
struct File {
    attack_version: String,
    mappings: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    capability_id: String,
    description: String,
    group: String,
    attack_id: String,
    category: String,
    score: String,
    licence: Option<String>,
}

pub struct Controls {
    attack_version: String,
    by_technique: HashMap<String, Vec<ControlRef>>,
    unresolved: Vec<String>,
}

fn rank_category(c: &str) -> u8 {
    match c {
        "protect" => 0,
        "detect" => 1,
        _ => 2,
    }
}

fn rank_score(s: &str) -> u8 {
    match s {
        "significant" => 0,
        "partial" => 1,
        _ => 2,
    }
}

impl Controls {
    pub fn embedded(catalog: &Catalog) -> Result<Controls, ControlsError> {
        let file: File = serde_json::from_str(EMBEDDED).map_err(|e| ControlsError(e.to_string()))?;
        let mut by_technique: HashMap<String, Vec<ControlRef>> = HashMap::new();
        let mut unresolved = Vec::new();
        for row in file.mappings {
            let Some(t) = catalog.resolve_technique(&row.attack_id) else {
                unresolved.push(row.attack_id);
                continue;
            };
            by_technique.entry(t.id.clone()).or_default().push(ControlRef {
                capability_id: row.capability_id,
                description: tidy_name(&row.description),
                group: row.group,
                category: row.category,
                score: row.score,
                licence: row.licence,
            });
        }
        for v in by_technique.values_mut() {
            v.sort_by(|a, b| {
                (rank_category(&a.category), rank_score(&a.score), &a.capability_id).cmp(&(
                    rank_category(&b.category),
                    rank_score(&b.score),
                    &b.capability_id,
                ))
            });
        }
        unresolved.sort();
        unresolved.dedup();
        Ok(Controls { attack_version: file.attack_version, by_technique, unresolved })
    }

    /// Controls mapped to a technique (canonical, current ID): protect before detect before
    /// respond, significant before partial before minimal.
    pub fn for_technique(&self, technique_id: &str) -> &[ControlRef] {
        self.by_technique.get(technique_id).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn attack_version(&self) -> &str {
        &self.attack_version
    }

    /// Mapped IDs the catalog does not know (reported, not used).
    pub fn unresolved(&self) -> &[String] {
        &self.unresolved
    }

    pub fn techniques(&self) -> usize {
        self.by_technique.len()
    }
}

impl ControlCatalog for Controls {
    fn controls_for(&self, technique: &str) -> Vec<ControlRef> {
        self.for_technique(technique).to_vec()
    }
    fn mapped_attack_version(&self) -> String {
        self.attack_version.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_mappings_through_the_catalog() {
        let catalog = crate::attack::store::embedded().unwrap();
        let c = Controls::embedded(&catalog).unwrap();
        assert_eq!(c.attack_version(), "16.1");
        assert!(c.unresolved().is_empty(), "{:?}", c.unresolved());
        // Checked by hand in the source file: Conditional Access (EID-CA-E3) partially protects
        // against T1059.009 Cloud API.
        let cloud_api = c.for_technique("T1059.009");
        assert!(
            cloud_api.iter().any(|x| x.capability_id == "EID-CA-E3" && x.category == "protect" && x.score == "partial")
        );
        assert!(cloud_api.iter().all(|x| x.licence.is_some()));
        // Ordered: protect before detect before respond.
        let order: Vec<u8> = cloud_api.iter().map(|x| rank_category(&x.category)).collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    }

    #[test]
    fn licence_tiers_parse_case_insensitively_and_e5_includes_e3() {
        assert_eq!(Licence::parse("e5"), Ok(Licence::E5));
        assert_eq!(Licence::parse(" E3 "), Ok(Licence::E3));
        let e = Licence::parse("E7").unwrap_err();
        assert!(e.contains("E3, E5"), "{e}");
        assert!(Licence::E5.includes(Some("E3")) && Licence::E5.includes(Some("E5")));
        assert!(Licence::E3.includes(Some("E3")) && !Licence::E3.includes(Some("E5")));
        assert!(!Licence::E5.includes(None), "an unknown tier is not claimed available");
    }

    #[test]
    fn every_control_name_is_tidy() {
        let catalog = crate::attack::store::embedded().unwrap();
        let c = Controls::embedded(&catalog).unwrap();
        let names: std::collections::BTreeSet<&str> =
            c.by_technique.values().flatten().map(|x| x.description.as_str()).collect();
        for n in &names {
            assert_eq!(n.trim(), *n, "{n:?}");
            assert!(!n.contains("  "), "{n:?}");
        }
        assert!(names.contains("Advanced Anti-Phishing"), "{names:?}");
        assert!(names.contains("Attack Simulation Training") && !names.contains("ATT&CK Simulation Training"));
        assert!(names.contains("Anti-Spam") && !names.contains("AntiSpam"));
    }
}
