//! What changed between two ATT&CK releases, technique by technique: what an analyst needs to
//! know before switching the catalog a daemon reviews against (and what `catalog import
//! --dry-run` shows).

use serde::Serialize;

use super::catalog::Catalog;
use super::model::Lifecycle;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub domain: String,
    pub attack_version: Option<String>,
    pub techniques: usize,
    pub subtechniques: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revoked {
    pub id: String,
    pub name: String,
    /// The current technique it resolves to in the new release, if any.
    pub replaced_by: Option<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Renamed {
    pub id: String,
    pub old_name: String,
    pub new_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TacticsChanged {
    pub id: String,
    pub name: String,
    pub old: Vec<String>,
    pub new: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogDiff {
    pub old: Side,
    pub new: Side,
    /// Active in the new release and absent from the old one.
    pub added: Vec<Item>,
    /// Revoked or deprecated in the old release, active again in the new one.
    pub reactivated: Vec<Item>,
    /// In the old release, absent from the new one (ATT&CK revokes rather than deletes, so this
    /// is rare and worth a look).
    pub removed: Vec<Item>,
    pub revoked: Vec<Revoked>,
    pub deprecated: Vec<Item>,
    pub renamed: Vec<Renamed>,
    pub tactics_changed: Vec<TacticsChanged>,
    /// Tactics of the matrix, by shortname, that one side has and the other has not.
    pub tactics_added: Vec<String>,
    pub tactics_removed: Vec<String>,
    pub groups_added: Vec<Item>,
    pub campaigns_added: Vec<Item>,
}

impl CatalogDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.reactivated.is_empty()
            && self.removed.is_empty()
            && self.revoked.is_empty()
            && self.deprecated.is_empty()
            && self.renamed.is_empty()
            && self.tactics_changed.is_empty()
            && self.tactics_added.is_empty()
            && self.tactics_removed.is_empty()
            && self.groups_added.is_empty()
            && self.campaigns_added.is_empty()
    }
}

fn side(c: &Catalog) -> Side {
    let counts = c.counts();
    Side {
        domain: c.meta().domain.clone(),
        attack_version: c.meta().attack_version.clone(),
        techniques: counts.techniques,
        subtechniques: counts.subtechniques,
    }
}

fn item(id: &str, name: &str) -> Item {
    Item { id: id.to_owned(), name: name.to_owned() }
}

pub fn diff(old: &Catalog, new: &Catalog) -> CatalogDiff {
    let mut d = CatalogDiff {
        old: side(old),
        new: side(new),
        added: vec![],
        reactivated: vec![],
        removed: vec![],
        revoked: vec![],
        deprecated: vec![],
        renamed: vec![],
        tactics_changed: vec![],
        tactics_added: vec![],
        tactics_removed: vec![],
        groups_added: vec![],
        campaigns_added: vec![],
    };
    for n in new.techniques() {
        let o = old.technique(&n.id);
        let was = o.map(|o| o.lifecycle);
        match (was, n.lifecycle) {
            (None, Lifecycle::Active) => d.added.push(item(&n.id, &n.name)),
            (Some(Lifecycle::Revoked | Lifecycle::Deprecated), Lifecycle::Active) => {
                d.reactivated.push(item(&n.id, &n.name))
            }
            (None | Some(Lifecycle::Active | Lifecycle::Deprecated), Lifecycle::Revoked) => {
                let replaced_by = new.resolve_technique(&n.id).map(|t| item(&t.id, &t.name));
                d.revoked.push(Revoked { id: n.id.clone(), name: o.map_or(&n.name, |o| &o.name).clone(), replaced_by });
            }
            (None | Some(Lifecycle::Active), Lifecycle::Deprecated) => d.deprecated.push(item(&n.id, &n.name)),
            _ => {}
        }
        let Some(o) = o.filter(|o| o.lifecycle != Lifecycle::Revoked && n.lifecycle != Lifecycle::Revoked) else {
            continue;
        };
        if o.name != n.name {
            d.renamed.push(Renamed { id: n.id.clone(), old_name: o.name.clone(), new_name: n.name.clone() });
        }
        if o.tactics != n.tactics {
            d.tactics_changed.push(TacticsChanged {
                id: n.id.clone(),
                name: n.name.clone(),
                old: o.tactics.clone(),
                new: n.tactics.clone(),
            });
        }
    }
    d.removed =
        old.techniques().iter().filter(|o| new.technique(&o.id).is_none()).map(|o| item(&o.id, &o.name)).collect();
    let shortnames = |c: &Catalog| c.tactics().iter().map(|t| t.shortname.clone()).collect::<Vec<_>>();
    let (old_tactics, new_tactics) = (shortnames(old), shortnames(new));
    d.tactics_added = new_tactics.iter().filter(|t| !old_tactics.contains(t)).cloned().collect();
    d.tactics_removed = old_tactics.iter().filter(|t| !new_tactics.contains(t)).cloned().collect();
    d.groups_added = new
        .data()
        .groups
        .iter()
        .filter(|g| g.lifecycle.is_active() && old.group(&g.id).is_none())
        .map(|g| item(&g.id, &g.name))
        .collect();
    d.campaigns_added = new
        .data()
        .campaigns
        .iter()
        .filter(|c| c.lifecycle.is_active() && old.campaign(&c.id).is_none())
        .map(|c| item(&c.id, &c.name))
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::catalog::Origin;
    use crate::attack::model::{CatalogData, Group};
    use std::path::Path;

    fn mini() -> CatalogData {
        let bytes = include_bytes!("../../tests/fixtures/attack/enterprise-attack-18.1-mini.json");
        crate::attack::stix::import_bytes(bytes, Path::new("mini"), Some("mini-18.1.json")).unwrap().0
    }

    fn tech<'a>(d: &'a mut CatalogData, id: &str) -> &'a mut crate::attack::model::Technique {
        d.techniques.iter_mut().find(|t| t.id == id).unwrap()
    }

    #[test]
    fn identical_catalogs_have_no_changes() {
        let a = Catalog::new(mini(), Origin::Embedded);
        let b = Catalog::new(mini(), Origin::Embedded);
        assert!(diff(&a, &b).is_empty());
    }

    #[test]
    fn reports_each_kind_of_change_once() {
        let old = mini();
        let mut new = old.clone();
        tech(&mut new, "T1078").name = "Valid Accounts, renamed".into();
        tech(&mut new, "T1003").lifecycle = Lifecycle::Deprecated;
        let t = tech(&mut new, "T1566");
        t.lifecycle = Lifecycle::Revoked;
        t.revoked_by = Some("T1059".into());
        tech(&mut new, "T1647").tactics.push("impact".into());
        tech(&mut new, "T1064").lifecycle = Lifecycle::Active;
        let mut added = new.techniques[0].clone();
        added.id = "T1999".into();
        added.name = "Brand New".into();
        added.lifecycle = Lifecycle::Active;
        new.techniques.push(added);
        new.techniques.retain(|t| t.id != "T1195.002");
        new.groups.push(Group {
            id: "G9999".into(),
            name: "New Group".into(),
            lifecycle: Lifecycle::Active,
            aliases: vec![],
            techniques: vec![],
            software: vec![],
        });
        new.tactics.pop();

        let d = diff(&Catalog::new(old, Origin::Embedded), &Catalog::new(new, Origin::Embedded));
        let ids = |v: &[Item]| v.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&d.added), ["T1999"]);
        assert_eq!(ids(&d.reactivated), ["T1064"]);
        assert_eq!(ids(&d.removed), ["T1195.002"]);
        assert_eq!(ids(&d.deprecated), ["T1003"]);
        assert_eq!(d.revoked.len(), 1);
        assert_eq!(d.revoked[0].id, "T1566");
        assert_eq!(d.revoked[0].name, "Phishing");
        assert_eq!(d.revoked[0].replaced_by.as_ref().map(|i| i.id.as_str()), Some("T1059"));
        assert_eq!(d.renamed.len(), 1);
        assert_eq!(
            (d.renamed[0].old_name.as_str(), d.renamed[0].new_name.as_str()),
            ("Valid Accounts", "Valid Accounts, renamed")
        );
        assert_eq!(d.tactics_changed.len(), 1);
        assert_eq!(d.tactics_changed[0].new, ["defense-evasion", "impact"]);
        assert_eq!(d.tactics_removed, ["impact"]);
        assert_eq!(ids(&d.groups_added), ["G9999"]);
        assert!(d.campaigns_added.is_empty());
    }
}
