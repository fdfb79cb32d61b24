//! The catalog in memory: the compact data plus the indexes that answer the questions a review
//! asks (which groups use this technique, what detects it, what it was renamed to) in
//! microseconds.
//!
//! Indexes hold positions into the data's vectors; they are rebuilt at every load, so the data
//! file stays the single source of truth.

use std::collections::{BTreeSet, HashMap};

use super::model::*;

/// Where the catalog in use came from; shown by `catalog info` so nobody has to guess which
/// ATT&CK release a review was made against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Embedded,
    Imported(std::path::PathBuf),
    Bundle(std::path::PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Embedded => f.write_str("embedded in the binary"),
            Origin::Imported(p) => write!(f, "imported, stored at {}", p.display()),
            Origin::Bundle(p) => write!(f, "read from the bundle {}", p.display()),
        }
    }
}

/// Index of an object in one of the catalog's vectors.
type Ix = u32;

pub struct Catalog {
    data: CatalogData,
    origin: Origin,
    techniques: HashMap<String, Ix>,
    groups: HashMap<String, Ix>,
    campaigns: HashMap<String, Ix>,
    software: HashMap<String, Ix>,
    mitigations: HashMap<String, Ix>,
    components: HashMap<String, Ix>,
    tactic_order: HashMap<String, usize>,
    // Per technique index.
    t_parent: Vec<Option<Ix>>,
    /// Position of the technique's ID in the IDs sorted as strings: reviews sort technique
    /// indexes by it instead of comparing ID strings.
    t_id_rank: Vec<Ix>,
    t_subtechniques: Vec<Vec<Ix>>,
    t_groups: Vec<Vec<Ix>>,
    t_campaigns: Vec<Vec<Ix>>,
    t_mitigations: Vec<Vec<Ix>>,
    t_strategies: Vec<Vec<Ix>>,
    t_components: Vec<Vec<Ix>>,
    // Per group index: direct techniques plus those of attributed campaigns.
    g_techniques: Vec<Vec<Ix>>,
    g_campaigns: Vec<Vec<Ix>>,
}

fn index_of<T>(items: &[T], key: impl Fn(&T) -> &str) -> HashMap<String, Ix> {
    items.iter().enumerate().map(|(i, x)| (key(x).to_owned(), i as Ix)).collect()
}

fn push_unique(v: &mut Vec<Ix>, x: Ix) {
    if !v.contains(&x) {
        v.push(x);
    }
}

impl Catalog {
    pub fn new(data: CatalogData, origin: Origin) -> Catalog {
        let n = data.techniques.len();
        let techniques = index_of(&data.techniques, |t| &t.id);
        let groups = index_of(&data.groups, |g| &g.id);
        let campaigns = index_of(&data.campaigns, |c| &c.id);
        let software = index_of(&data.software, |s| &s.id);
        let mitigations = index_of(&data.mitigations, |m| &m.id);
        let components = index_of(&data.data_components, |c| &c.key);
        let tactic_order = data.tactics.iter().enumerate().map(|(i, t)| (t.shortname.clone(), i)).collect();
        let lookup = |ids: &[String]| -> Vec<Ix> { ids.iter().filter_map(|id| techniques.get(id).copied()).collect() };

        let mut t_subtechniques = vec![Vec::new(); n];
        let mut t_parent = vec![None; n];
        for (i, t) in data.techniques.iter().enumerate() {
            if let Some(p) = t.parent.as_ref().and_then(|p| techniques.get(p)) {
                t_subtechniques[*p as usize].push(i as Ix);
                t_parent[i] = Some(*p);
            }
        }
        let mut by_id: Vec<Ix> = (0..n as Ix).collect();
        by_id.sort_by(|&a, &b| data.techniques[a as usize].id.cmp(&data.techniques[b as usize].id));
        let mut t_id_rank = vec![0; n];
        for (rank, &t) in by_id.iter().enumerate() {
            t_id_rank[t as usize] = rank as Ix;
        }

        let mut g_techniques: Vec<Vec<Ix>> = data.groups.iter().map(|g| lookup(&g.techniques)).collect();
        let mut g_campaigns = vec![Vec::new(); data.groups.len()];
        let mut t_campaigns = vec![Vec::new(); n];
        for (ci, c) in data.campaigns.iter().enumerate() {
            let c_techniques = lookup(&c.techniques);
            for &t in &c_techniques {
                push_unique(&mut t_campaigns[t as usize], ci as Ix);
            }
            // A group's technique set includes its campaigns' (as mitreattack-python does).
            for g in c.groups.iter().filter_map(|g| groups.get(g)) {
                push_unique(&mut g_campaigns[*g as usize], ci as Ix);
                for &t in &c_techniques {
                    push_unique(&mut g_techniques[*g as usize], t);
                }
            }
        }
        let mut t_groups = vec![Vec::new(); n];
        for (gi, ts) in g_techniques.iter_mut().enumerate() {
            ts.sort_unstable();
            for &t in ts.iter() {
                t_groups[t as usize].push(gi as Ix);
            }
        }

        let mut t_mitigations = vec![Vec::new(); n];
        for (mi, m) in data.mitigations.iter().enumerate() {
            for t in lookup(&m.techniques) {
                push_unique(&mut t_mitigations[t as usize], mi as Ix);
            }
        }

        let mut t_strategies = vec![Vec::new(); n];
        let mut t_components = vec![Vec::new(); n];
        for (si, s) in data.detection_strategies.iter().enumerate() {
            let comps: Vec<Ix> = s
                .analytics
                .iter()
                .flat_map(|a| &a.log_sources)
                .filter_map(|l| l.data_component.as_ref().and_then(|k| components.get(k)).copied())
                .collect();
            for t in lookup(&s.techniques) {
                push_unique(&mut t_strategies[t as usize], si as Ix);
                for &c in &comps {
                    push_unique(&mut t_components[t as usize], c);
                }
            }
        }
        for d in &data.detects {
            if let (Some(&t), Some(&c)) = (techniques.get(&d.technique), components.get(&d.data_component)) {
                push_unique(&mut t_components[t as usize], c);
            }
        }

        Catalog {
            data,
            origin,
            techniques,
            groups,
            campaigns,
            software,
            mitigations,
            components,
            tactic_order,
            t_parent,
            t_id_rank,
            t_subtechniques,
            t_groups,
            t_campaigns,
            t_mitigations,
            t_strategies,
            t_components,
            g_techniques,
            g_campaigns,
        }
    }

    pub fn data(&self) -> &CatalogData {
        &self.data
    }
    pub fn meta(&self) -> &Meta {
        &self.data.meta
    }
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Tactics in kill-chain order.
    pub fn tactics(&self) -> &[Tactic] {
        &self.data.tactics
    }
    /// Position of a tactic in the kill chain, by shortname.
    pub fn tactic_position(&self, shortname: &str) -> Option<usize> {
        self.tactic_order.get(shortname).copied()
    }

    pub fn techniques(&self) -> &[Technique] {
        &self.data.techniques
    }
    /// Exact look-up by canonical ID (`T1059.001`); see [`super::resolve`] for alert input.
    pub fn technique(&self, id: &str) -> Option<&Technique> {
        self.technique_ix(id).map(|i| &self.data.techniques[i])
    }
    pub fn technique_ix(&self, id: &str) -> Option<usize> {
        self.techniques.get(id).map(|&i| i as usize)
    }
    /// Index of the technique's parent, for a sub-technique whose parent is in the catalog.
    pub fn technique_parent_ix(&self, t: usize) -> Option<usize> {
        self.t_parent[t].map(|p| p as usize)
    }
    /// Sort key of a technique index that orders techniques as their IDs compare as strings
    /// (`T1003` < `T1003.001` < `T1059`), without comparing strings.
    pub fn technique_id_rank(&self, t: usize) -> u32 {
        self.t_id_rank[t]
    }
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id).map(|&i| &self.data.groups[i as usize])
    }
    pub fn campaign(&self, id: &str) -> Option<&Campaign> {
        self.campaigns.get(id).map(|&i| &self.data.campaigns[i as usize])
    }
    pub fn software(&self, id: &str) -> Option<&Software> {
        self.software.get(id).map(|&i| &self.data.software[i as usize])
    }
    pub fn mitigation(&self, id: &str) -> Option<&Mitigation> {
        self.mitigations.get(id).map(|&i| &self.data.mitigations[i as usize])
    }
    pub fn data_component(&self, key: &str) -> Option<&DataComponent> {
        self.components.get(key).map(|&i| &self.data.data_components[i as usize])
    }

    pub fn subtechniques_of(&self, t: usize) -> impl Iterator<Item = &Technique> {
        self.t_subtechniques[t].iter().map(|&i| &self.data.techniques[i as usize])
    }
    /// Groups whose technique set (their own uses plus their campaigns') contains the technique.
    pub fn groups_using(&self, t: usize) -> impl Iterator<Item = &Group> {
        self.t_groups[t].iter().map(|&i| &self.data.groups[i as usize])
    }
    pub fn campaigns_using(&self, t: usize) -> impl Iterator<Item = &Campaign> {
        self.t_campaigns[t].iter().map(|&i| &self.data.campaigns[i as usize])
    }
    pub fn mitigations_of(&self, t: usize) -> impl Iterator<Item = &Mitigation> {
        self.t_mitigations[t].iter().map(|&i| &self.data.mitigations[i as usize])
    }
    /// Indexes of the technique's mitigations in [`CatalogData::mitigations`].
    pub fn mitigation_ixs_of(&self, t: usize) -> impl Iterator<Item = usize> + '_ {
        self.t_mitigations[t].iter().map(|&i| i as usize)
    }
    /// v18+ detection strategies for the technique (empty for pre-v18 catalogs).
    pub fn detection_strategies_of(&self, t: usize) -> impl Iterator<Item = &DetectionStrategy> {
        self.t_strategies[t].iter().map(|&i| &self.data.detection_strategies[i as usize])
    }
    /// Data components that detect the technique, from whichever detection model the catalog
    /// has: analytics' log sources (v18+) or `detects` relationships (before v18).
    pub fn data_components_for(&self, t: usize) -> impl Iterator<Item = &DataComponent> {
        self.t_components[t].iter().map(|&i| &self.data.data_components[i as usize])
    }

    /// A group's technique set: its own `uses` plus the techniques of campaigns attributed to it.
    pub fn group_techniques(&self, group_id: &str) -> impl Iterator<Item = &Technique> {
        let ixs = self.groups.get(group_id).map(|&g| self.g_techniques[g as usize].as_slice()).unwrap_or_default();
        ixs.iter().map(|&i| &self.data.techniques[i as usize])
    }
    pub fn group_campaigns(&self, group_id: &str) -> impl Iterator<Item = &Campaign> {
        let ixs = self.groups.get(group_id).map(|&g| self.g_campaigns[g as usize].as_slice()).unwrap_or_default();
        ixs.iter().map(|&i| &self.data.campaigns[i as usize])
    }

    pub fn counts(&self) -> Counts {
        let d = &self.data;
        let active = |l: Lifecycle| l.is_active();
        let tech = d.techniques.iter().filter(|t| active(t.lifecycle));
        Counts {
            techniques: tech.clone().filter(|t| t.parent.is_none()).count(),
            subtechniques: tech.filter(|t| t.parent.is_some()).count(),
            revoked_techniques: d.techniques.iter().filter(|t| t.lifecycle == Lifecycle::Revoked).count(),
            deprecated_techniques: d.techniques.iter().filter(|t| t.lifecycle == Lifecycle::Deprecated).count(),
            groups: d.groups.iter().filter(|x| active(x.lifecycle)).count(),
            campaigns: d.campaigns.iter().filter(|x| active(x.lifecycle)).count(),
            software: d.software.iter().filter(|x| active(x.lifecycle)).count(),
            mitigations: d.mitigations.iter().filter(|x| active(x.lifecycle)).count(),
            data_components: d.data_components.iter().filter(|x| active(x.lifecycle)).count(),
            detection_strategies: d.detection_strategies.iter().filter(|x| active(x.lifecycle)).count(),
            analytics: d.detection_strategies.iter().filter(|x| active(x.lifecycle)).map(|s| s.analytics.len()).sum(),
            detects_relationships: d.detects.len(),
        }
    }

    /// Which of ATT&CK's two detection models the catalog carries.
    pub fn detection_model(&self) -> DetectionModel {
        match (self.data.detection_strategies.is_empty(), self.data.detects.is_empty()) {
            (false, _) => DetectionModel::Strategies,
            (true, false) => DetectionModel::DataComponents,
            (true, true) => DetectionModel::None,
        }
    }

    /// Sorted, de-duplicated IDs of active objects: the form the CLI and reviews print.
    pub fn active_ids<'a, T: 'a>(
        items: impl Iterator<Item = &'a T>,
        f: impl Fn(&T) -> (&str, Lifecycle),
    ) -> Vec<String> {
        let set: BTreeSet<&str> = items.map(f).filter(|(_, l)| l.is_active()).map(|(id, _)| id).collect();
        set.into_iter().map(str::to_owned).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionModel {
    /// v18+: detection strategies → analytics → log sources.
    Strategies,
    /// Before v18: data components `detects` techniques.
    DataComponents,
    None,
}

/// Counts of active (neither revoked nor deprecated) objects, plus the technique lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub techniques: usize,
    pub subtechniques: usize,
    pub revoked_techniques: usize,
    pub deprecated_techniques: usize,
    pub groups: usize,
    pub campaigns: usize,
    pub software: usize,
    pub mitigations: usize,
    pub data_components: usize,
    pub detection_strategies: usize,
    pub analytics: usize,
    pub detects_relationships: usize,
}

#[cfg(test)]
mod tests {
    //! Facts of the fixtures cut from MITRE's real bundles (tests/fixtures/attack/cut.py), checked
    //! by hand against the bundle's JSON, not copied from this code's output.
    use super::*;
    use crate::attack::stix::import_bytes;
    use crate::attack::{Catalog, Status};
    use std::path::Path;

    fn fixture(bytes: &[u8], name: &str) -> Catalog {
        let (data, _) = import_bytes(bytes, Path::new(name), Some(name)).unwrap();
        Catalog::new(data, Origin::Bundle(name.into()))
    }
    fn v18() -> Catalog {
        fixture(
            include_bytes!("../../tests/fixtures/attack/enterprise-attack-18.1-mini.json"),
            "enterprise-attack-18.1-mini.json",
        )
    }
    fn v17() -> Catalog {
        fixture(
            include_bytes!("../../tests/fixtures/attack/enterprise-attack-17.1-mini.json"),
            "enterprise-attack-17.1-mini.json",
        )
    }
    fn ids<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
        let mut v: Vec<&str> = it.collect();
        v.sort();
        v
    }

    #[test]
    fn reads_domain_version_and_kill_chain_order_from_the_matrix() {
        let c = v18();
        assert_eq!(c.meta().domain, "enterprise-attack");
        assert_eq!(c.meta().attack_version.as_deref(), Some("18.1"));
        let order: Vec<&str> = c.tactics().iter().map(|t| t.shortname.as_str()).collect();
        assert_eq!(
            order,
            [
                "reconnaissance",
                "resource-development",
                "initial-access",
                "execution",
                "persistence",
                "privilege-escalation",
                "defense-evasion",
                "credential-access",
                "discovery",
                "lateral-movement",
                "collection",
                "command-and-control",
                "exfiltration",
                "impact"
            ]
        );
        assert_eq!(c.tactics()[2].id, "TA0001");
        assert_eq!(c.tactic_position("impact"), Some(13));
    }

    #[test]
    fn counts_techniques_by_lifecycle() {
        let n = v18().counts();
        // 15 attack-patterns: T1086, T1150, T1162, T1547.011 revoked; T1064 deprecated;
        // T1003, T1059, T1078, T1547, T1566, T1647 techniques; T1003.001, T1059.001,
        // T1195.002, T1566.001 sub-techniques.
        assert_eq!((n.techniques, n.subtechniques, n.revoked_techniques, n.deprecated_techniques), (6, 4, 4, 1));
        assert_eq!((n.groups, n.campaigns, n.software), (2, 1, 2));
    }

    #[test]
    fn technique_fields() {
        let c = v18();
        let t = c.technique("T1059.001").unwrap();
        assert_eq!(t.name, "PowerShell");
        assert_eq!(t.tactics, ["execution"]);
        assert_eq!(t.platforms, ["Windows"]);
        assert_eq!(t.parent.as_deref(), Some("T1059"));
        let parent = c.technique_ix("T1059").unwrap();
        assert_eq!(ids(c.subtechniques_of(parent).map(|t| t.id.as_str())), ["T1059.001"]);
        // Multi-tactic technique, in kill-chain order (persistence before privilege-escalation).
        assert_eq!(
            c.technique("T1078").unwrap().tactics,
            ["initial-access", "persistence", "privilege-escalation", "defense-evasion"]
        );
    }

    #[test]
    fn follows_revocation_chains_to_the_current_technique() {
        let c = v18();
        let r = c.resolve("t1150");
        assert_eq!(r.status, Status::Revoked);
        assert_eq!(r.revoked_chain, ["T1150", "T1547.011"]);
        assert_eq!(c.techniques()[r.technique.unwrap()].id, "T1647");
        let r = c.resolve(" T1086 ");
        assert_eq!((r.status, c.techniques()[r.technique.unwrap()].id.as_str()), (Status::Revoked, "T1059.001"));
        let r = c.resolve("T1064");
        assert_eq!((r.status, c.techniques()[r.technique.unwrap()].name.as_str()), (Status::Deprecated, "Scripting"));
        let r = c.resolve("T1059.999");
        assert_eq!((r.status, r.technique), (Status::Unknown, None));
        assert!(r.note.unwrap().contains("parent T1059"));
        assert_eq!(c.resolve("G0016").status, Status::Unknown);
    }

    #[test]
    fn a_groups_technique_set_includes_its_campaigns() {
        let c = v18();
        // APT29 uses T1059.001, T1078, T1566.001 itself; the SolarWinds Compromise (C0024),
        // attributed to it, adds T1195.002.
        assert_eq!(
            ids(c.group_techniques("G0016").map(|t| t.id.as_str())),
            ["T1059.001", "T1078", "T1195.002", "T1566.001"]
        );
        assert_eq!(ids(c.group_campaigns("G0016").map(|x| x.id.as_str())), ["C0024"]);
        assert_eq!(c.campaign("C0024").unwrap().groups, ["G0016"]);
        let t = c.technique_ix("T1195.002").unwrap();
        assert_eq!(ids(c.groups_using(t).map(|g| g.id.as_str())), ["G0016"]);
        assert_eq!(ids(c.campaigns_using(t).map(|x| x.id.as_str())), ["C0024"]);
        assert!(c.group("G0016").unwrap().aliases.iter().any(|a| a == "Midnight Blizzard"));
    }

    #[test]
    fn mitigations_of_a_technique() {
        let c = v18();
        let t = c.technique_ix("T1566.001").unwrap();
        assert_eq!(
            ids(c.mitigations_of(t).map(|m| m.id.as_str())),
            ["M1017", "M1018", "M1021", "M1031", "M1047", "M1049", "M1054"]
        );
    }

    #[test]
    fn v18_detection_strategies_lead_to_data_components() {
        let c = v18();
        assert_eq!(c.detection_model(), DetectionModel::Strategies);
        let t = c.technique_ix("T1003.001").unwrap();
        let strategies: Vec<_> = c.detection_strategies_of(t).collect();
        assert_eq!(strategies.len(), 1);
        assert_eq!(strategies[0].id, "DET0363");
        assert_eq!(strategies[0].analytics[0].id, "AN1030");
        assert_eq!(
            ids(c.data_components_for(t).filter_map(|d| d.id.as_deref())),
            ["DC0013", "DC0032", "DC0035", "DC0039", "DC0063"]
        );
        assert_eq!(c.data_component("DC0035").unwrap().name, "Process Access");
    }

    #[test]
    fn pre_v18_data_components_detect_techniques() {
        let c = v17();
        assert_eq!(c.detection_model(), DetectionModel::DataComponents);
        let t = c.technique_ix("T1003.001").unwrap();
        assert_eq!(c.detection_strategies_of(t).count(), 0);
        assert_eq!(
            ids(c.data_components_for(t).map(|d| d.key.as_str())),
            [
                "Command: Command Execution",
                "File: File Creation",
                "Logon Session: Logon Session Creation",
                "Process: OS API Execution",
                "Process: Process Access",
                "Process: Process Creation",
                "Windows Registry: Windows Registry Key Modification"
            ]
        );
        let dc = c.data_component("Process: Process Access").unwrap();
        assert_eq!((dc.id.as_deref(), dc.data_source.as_deref()), (None, Some("Process")));
    }
}
