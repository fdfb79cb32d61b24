//! Which known groups and campaigns the incident resembles: a ranked hypothesis.
//!
//! Each candidate (an active group, its technique set including its campaigns', or an active
//! campaign) and the incident are vectors over techniques. A technique weighs by its rarity
//! (inverse document frequency over all candidates: T1059.001 is used by almost everyone and says
//! little, a rare technique says a lot), and a sub-technique also counts half for its parent, so
//! `T1003.001` in an incident partly matches a group known for `T1003.002`. The score is the cosine
//! of the two weighted vectors (0–1). BENCHMARKS.md compares it with plain Jaccard on ATT&CK's own
//! campaigns.

use super::model::SoftwareEvidence;
use super::model::{Candidate, CandidateKind};
use crate::attack::Catalog;

/// Weight of a parent technique implied by one of its sub-techniques.
const PARENT_SHARE: f64 = 0.5;

/// A sparse technique vector: catalog technique index → membership (1, or 0.5 via a
/// sub-technique), sorted by technique index. A sorted vector rather than a hash map: a review
/// builds one and walks it several times, and walking it in index order makes every sum over it
/// (the cosine, the norm) come out the same in every run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vector(Vec<(u32, f64)>);

impl Vector {
    /// (technique index, membership), by technique index.
    pub fn iter(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.0.iter().copied()
    }

    pub fn get(&self, t: u32) -> Option<f64> {
        self.0.binary_search_by_key(&t, |e| e.0).ok().map(|i| self.0[i].1)
    }

    pub fn contains_key(&self, t: u32) -> bool {
        self.get(t).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

struct Entry {
    id: String,
    name: String,
    /// "G0016 APT29", as reviews print it.
    label: String,
    kind: CandidateKind,
    names: Vec<String>,
    /// Sorted by technique index.
    vector: Vec<(u32, f64)>,
    norm: f64,
    /// ATT&CK software it uses (S-IDs).
    software: Vec<String>,
}

impl Entry {
    fn new(
        catalog: &Catalog,
        id: &str,
        name: &str,
        aliases: &[String],
        kind: CandidateKind,
        techniques: impl Iterator<Item = usize>,
    ) -> Entry {
        let names = std::iter::once(name).chain(aliases.iter().map(String::as_str)).map(normalize_name).collect();
        Entry {
            label: format!("{id} {name}"),
            id: id.to_owned(),
            name: name.to_owned(),
            kind,
            names,
            vector: vector(catalog, techniques).0,
            norm: 0.0,
            software: vec![],
        }
    }

    fn uses(&self, t: u32) -> bool {
        self.vector.binary_search_by_key(&t, |e| e.0).is_ok_and(|i| self.vector[i].1 >= 1.0)
    }

    /// Orders candidates best first: by score, then by ID.
    fn by_score(&self, other: &Entry, s: f64, other_s: f64) -> std::cmp::Ordering {
        other_s.total_cmp(&s).then_with(|| self.id.cmp(&other.id))
    }
}

/// Built once per catalog; reviews only read it. Plain vectors indexed by position, not hash
/// maps: a review's similarity pass touches every posting of every incident technique.
pub struct Index {
    entries: Vec<Entry>,
    idf: Vec<f64>,
    /// technique index → (candidate, membership) of every candidate whose vector holds it.
    postings: Vec<Vec<(u32, f64)>>,
    /// technique index → candidates that use the technique itself (membership 1, not only via a
    /// sub-technique), in candidate order: what the likelihood of a technique sums over.
    users: Vec<Vec<u32>>,
}

/// Cosine similarity of the incident with every candidate (by candidate position).
pub struct Similarities(Vec<f64>);

/// How likely each technique is given the incident (see [`Index::likely`]), computed on demand
/// for the few techniques a review asks about rather than for the whole catalog.
pub struct Likely<'a> {
    index: &'a Index,
    sims: &'a Similarities,
    total: f64,
    /// The best contributing candidates, best first.
    pub contributors: Vec<u32>,
}

impl Likely<'_> {
    /// The similarity-weighted share of candidates that use technique `t`.
    pub fn of(&self, t: usize) -> f64 {
        let mut l = 0.0f64;
        if self.total > 0.0 {
            // Summed in candidate order, one candidate at a time: the same additions, in the
            // same order, as accumulating over every candidate's whole vector.
            for &ei in self.index.users.get(t).map(Vec::as_slice).unwrap_or_default() {
                let s = self.sims.0[ei as usize];
                if s > 0.0 {
                    l += s / self.total;
                }
            }
        }
        l
    }
}

/// `"Midnight Blizzard"`, `"midnight-blizzard"`, `"MIDNIGHT_BLIZZARD"` all compare equal.
pub fn normalize_name(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Membership vector of a technique set: each technique 1, each parent of a sub-technique at
/// least [`PARENT_SHARE`].
pub fn vector(catalog: &Catalog, techniques: impl IntoIterator<Item = usize>) -> Vector {
    let mut v: Vec<(u32, f64)> = Vec::new();
    for ix in techniques {
        v.push((ix as u32, 1.0));
        if let Some(p) = catalog.technique_parent_ix(ix) {
            v.push((p as u32, PARENT_SHARE));
        }
    }
    // A technique listed twice, or both observed and implied by a sub-technique, keeps its
    // largest membership.
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    v.dedup_by_key(|e| e.0);
    Vector(v)
}

impl Index {
    pub fn new(catalog: &Catalog) -> Index {
        let mut entries = Vec::new();
        let active = |ix: &usize| catalog.techniques()[*ix].lifecycle.is_active();
        for g in catalog.data().groups.iter().filter(|g| g.lifecycle.is_active()) {
            let ixs = catalog.group_techniques(&g.id).filter_map(|t| catalog.technique_ix(&t.id)).filter(active);
            let mut e = Entry::new(catalog, &g.id, &g.name, &g.aliases, CandidateKind::Group, ixs);
            e.software = g.software.clone();
            entries.push(e);
        }
        for c in catalog.data().campaigns.iter().filter(|c| c.lifecycle.is_active()) {
            let ixs = c.techniques.iter().filter_map(|t| catalog.technique_ix(t)).filter(active);
            let mut e = Entry::new(catalog, &c.id, &c.name, &c.aliases, CandidateKind::Campaign, ixs);
            e.software = c.software.clone();
            entries.push(e);
        }
        let n = entries.len() as f64;
        let mut df = vec![0.0f64; catalog.techniques().len()];
        for e in &entries {
            for &(t, _) in &e.vector {
                df[t as usize] += 1.0;
            }
        }
        // Smoothed IDF: a technique every candidate uses weighs near zero, an unused one the most.
        let idf: Vec<f64> = df.iter().map(|&d| ((n + 1.0) / (d + 1.0)).ln()).collect();
        Index::assemble(entries, idf)
    }

    fn assemble(mut entries: Vec<Entry>, idf: Vec<f64>) -> Index {
        let mut postings = vec![Vec::new(); idf.len()];
        let mut users = vec![Vec::new(); idf.len()];
        for (ei, e) in entries.iter_mut().enumerate() {
            e.norm = e.vector.iter().map(|&(t, a)| (a * idf[t as usize]).powi(2)).sum::<f64>().sqrt();
            for &(t, b) in &e.vector {
                postings[t as usize].push((ei as u32, b));
                if b >= 1.0 {
                    users[t as usize].push(ei as u32);
                }
            }
        }
        Index { entries, idf, postings, users }
    }

    /// Number of candidates (active groups and campaigns).
    pub fn candidates(&self) -> usize {
        self.entries.len()
    }

    /// Weighted cosine of the incident with every candidate, in one pass over the postings of
    /// the incident's techniques.
    pub fn similarities(&self, incident: &Vector) -> Similarities {
        let inorm = norm(incident, &self.idf);
        let mut dots = vec![0.0f64; self.entries.len()];
        for (t, a) in incident.iter() {
            let w = self.idf[t as usize];
            for &(ei, b) in &self.postings[t as usize] {
                dots[ei as usize] += a * b * w * w;
            }
        }
        for (ei, d) in dots.iter_mut().enumerate() {
            let denom = inorm * self.entries[ei].norm;
            *d = if denom > 0.0 { *d / denom } else { 0.0 };
        }
        Similarities(dots)
    }

    /// Candidates ranked by similarity, best first, ties by ID; at most `top`. `actors` are
    /// alerts' `actorDisplayName`s: a candidate whose name or alias matches one is marked and
    /// ranked first, since Microsoft's own actor attribution is stronger evidence than
    /// technique overlap.
    pub fn rank(
        &self,
        catalog: &Catalog,
        incident: &Vector,
        sims: &Similarities,
        actors: &[String],
        software: &[SoftwareEvidence],
        top: usize,
    ) -> Vec<Candidate> {
        let wanted: Vec<(String, &String)> = actors.iter().map(|a| (normalize_name(a), a)).collect();
        let incident = &Observed::of(incident, self.idf.len());
        let mut out: Vec<Candidate> = Vec::new();
        let mut matched = vec![false; self.entries.len()];
        let uses = |e: &Entry| -> Vec<SoftwareEvidence> {
            software.iter().filter(|s| e.software.contains(&s.id)).cloned().collect()
        };
        for (ei, e) in self.entries.iter().enumerate() {
            if let Some((_, actor)) = wanted.iter().find(|(n, _)| !n.is_empty() && e.names.contains(n)) {
                matched[ei] = true;
                let mut c = self.candidate(catalog, ei, incident, sims.0[ei], Some((*actor).clone()));
                c.software = uses(e);
                c.basis = basis(&c);
                out.push(c);
            }
        }
        // Next, the groups and campaigns that use software the incident names: a strong signal
        // that techniques alone do not give (held-out ATT&CK campaigns: about two in three
        // right in the top three, against about one in ten for technique similarity alone).
        // Weighted by how specific each software is: a ransomware family two groups use says far
        // more than Cobalt Strike, which dozens use; a tool counts half as much as malware.
        let n = self.entries.len() as f64;
        let weight: Vec<f64> = software
            .iter()
            .map(|s| {
                let df = self.entries.iter().filter(|e| e.software.contains(&s.id)).count().max(1) as f64;
                (n / df).ln() * if s.kind == "malware" { 1.0 } else { 0.5 }
            })
            .collect();
        let mut by_software: Vec<(usize, f64)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(ei, _)| !matched[*ei])
            .filter_map(|(ei, e)| {
                let w: f64 =
                    software.iter().zip(&weight).filter(|(s, _)| e.software.contains(&s.id)).map(|(_, w)| *w).sum();
                (w > 0.0).then_some((ei, w))
            })
            .collect();
        by_software.sort_by(|a, b| {
            b.1.total_cmp(&a.1).then_with(|| self.entries[a.0].by_score(&self.entries[b.0], sims.0[a.0], sims.0[b.0]))
        });
        for (ei, _) in by_software.into_iter().take(top.saturating_sub(out.len())) {
            matched[ei] = true;
            let mut c = self.candidate(catalog, ei, incident, sims.0[ei], None);
            c.software = uses(&self.entries[ei]);
            c.basis = basis(&c);
            out.push(c);
        }
        let mut ranked: Vec<u32> =
            (0..self.entries.len() as u32).filter(|&ei| !matched[ei as usize] && sims.0[ei as usize] > 0.0).collect();
        let order = |&a: &u32, &b: &u32| {
            let (a, b) = (a as usize, b as usize);
            self.entries[a].by_score(&self.entries[b], sims.0[a], sims.0[b])
        };
        // Only the first few are listed: select them, then sort only those (IDs are unique, so
        // the order is total and the result is that of sorting everything).
        let wanted = top.max(out.len()) - out.len();
        if wanted < ranked.len() {
            if wanted == 0 {
                ranked.clear();
            } else {
                ranked.select_nth_unstable_by(wanted - 1, order);
                ranked.truncate(wanted);
            }
        }
        ranked.sort_unstable_by(order);
        for ei in ranked {
            let ei = ei as usize;
            let mut c = self.candidate(catalog, ei, incident, sims.0[ei], None);
            c.basis = basis(&c);
            out.push(c);
        }
        out
    }

    fn candidate(
        &self,
        catalog: &Catalog,
        ei: usize,
        incident: &Observed,
        score: f64,
        actor: Option<String>,
    ) -> Candidate {
        let e = &self.entries[ei];
        // Shared: techniques the incident has that the candidate uses itself (not only via a parent).
        let mut shared: Vec<u32> =
            e.vector.iter().filter(|&&(t, b)| b >= 1.0 && incident.has(t)).map(|&(t, _)| t).collect();
        shared.sort_unstable_by_key(|&t| catalog.technique_id_rank(t as usize));
        let shared = shared.into_iter().map(|t| catalog.techniques()[t as usize].id.clone()).collect();
        Candidate {
            id: e.id.clone(),
            name: e.name.clone(),
            kind: e.kind,
            score: (score * 1000.0).round() / 1000.0,
            shared_techniques: shared,
            actor_match: actor,
            basis: vec![],
            software: vec![],
        }
    }

    /// Likelihood of techniques given the incident: the similarity-weighted share of
    /// candidates that use each ("what groups that did this also do", [`Likely::of`]), and the
    /// best `contributors` candidates.
    pub fn likely<'a>(&'a self, sims: &'a Similarities, contributors: usize) -> Likely<'a> {
        let total: f64 = sims.0.iter().sum();
        let mut best: Vec<u32> = (0..self.entries.len() as u32).filter(|&ei| sims.0[ei as usize] > 0.0).collect();
        let order = |&a: &u32, &b: &u32| sims.0[b as usize].total_cmp(&sims.0[a as usize]).then(a.cmp(&b));
        if contributors < best.len() {
            if contributors == 0 {
                best.clear();
            } else {
                best.select_nth_unstable_by(contributors - 1, order);
                best.truncate(contributors);
            }
        }
        best.sort_unstable_by(order);
        Likely { index: self, sims, total, contributors: best }
    }

    pub fn entry_label(&self, ei: u32) -> String {
        self.entries[ei as usize].label.clone()
    }

    pub fn entry_uses(&self, ei: u32, t: u32) -> bool {
        self.entries[ei as usize].uses(t)
    }

    /// Plain Jaccard similarity of exact technique sets, the baseline the weighting must beat.
    pub fn jaccard_rank(&self, incident: &Vector) -> Vec<(String, f64)> {
        let a: Vec<u32> = incident.iter().filter(|&(_, v)| v >= 1.0).map(|(k, _)| k).collect();
        let mut out: Vec<(String, f64)> = self
            .entries
            .iter()
            .map(|e| {
                let inter = a.iter().filter(|&&t| e.uses(t)).count() as f64;
                let b_len = e.vector.iter().filter(|x| x.1 >= 1.0).count() as f64;
                let union = a.len() as f64 + b_len - inter;
                (e.id.clone(), if union > 0.0 { inter / union } else { 0.0 })
            })
            .collect();
        out.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        out
    }

    /// Ranked IDs of one kind by the weighted score, for the evaluation.
    pub fn weighted_rank_ids(&self, catalog: &Catalog, incident: &Vector, kind: CandidateKind) -> Vec<String> {
        let sims = self.similarities(incident);
        let mut all = self.rank(catalog, incident, &sims, &[], &[], usize::MAX);
        all.retain(|c| c.kind == kind);
        all.into_iter().map(|c| c.id).collect()
    }

    /// A copy with one candidate's vector replaced (the evaluation removes a campaign's
    /// techniques from its group); weights are kept.
    pub fn with_vector(&self, id: &str, vector: Vector) -> Index {
        let entries: Vec<Entry> = self
            .entries
            .iter()
            .map(|e| Entry {
                label: e.label.clone(),
                id: e.id.clone(),
                name: e.name.clone(),
                kind: e.kind,
                names: e.names.clone(),
                vector: if e.id == id { vector.0.clone() } else { e.vector.clone() },
                norm: 0.0,
                software: e.software.clone(),
            })
            .collect();
        Index::assemble(entries, self.idf.clone())
    }
}

/// The incident's own techniques (membership 1) as a bit set over technique indexes: tested
/// for every technique of each listed candidate.
struct Observed(Vec<u64>);

impl Observed {
    fn of(incident: &Vector, techniques: usize) -> Observed {
        let mut bits = vec![0u64; techniques.div_ceil(64)];
        for (t, _) in incident.iter().filter(|&(_, a)| a >= 1.0) {
            if let Some(w) = bits.get_mut(t as usize / 64) {
                *w |= 1 << (t % 64);
            }
        }
        Observed(bits)
    }

    fn has(&self, t: u32) -> bool {
        self.0.get(t as usize / 64).is_some_and(|w| w & (1 << (t % 64)) != 0)
    }
}

fn norm(v: &Vector, idf: &[f64]) -> f64 {
    v.iter().map(|(t, a)| (a * idf[t as usize]).powi(2)).sum::<f64>().sqrt()
}

/// The kinds of evidence a candidate rests on, strongest first.
fn basis(c: &Candidate) -> Vec<String> {
    let mut b = Vec::new();
    if c.actor_match.is_some() {
        b.push("named".to_owned());
    }
    if !c.software.is_empty() {
        b.push("software".to_owned());
    }
    if !c.shared_techniques.is_empty() {
        b.push("techniques".to_owned());
    }
    b
}

/// ATT&CK software the incident names: the alerts' threat family and display names, and the
/// evidence's file and process names. Each software once, with the first text that named it.
pub(crate) fn software_named(
    incident: &crate::model::Incident,
    catalog: &Catalog,
    index: &crate::attack::software::SoftwareIndex,
) -> Vec<SoftwareEvidence> {
    let mut out: Vec<SoftwareEvidence> = Vec::new();
    let mut push = |m: Option<crate::attack::software::SoftwareMatch>| {
        if let Some(m) = m
            && !out.iter().any(|s| s.id == m.id)
        {
            out.push(SoftwareEvidence {
                id: m.id,
                name: m.name,
                kind: match m.kind {
                    crate::attack::model::SoftwareKind::Malware => "malware".into(),
                    crate::attack::model::SoftwareKind::Tool => "tool".into(),
                },
                matched: m.matched,
            });
        }
    };
    for a in &incident.alerts {
        for t in [&a.threat_family_name, &a.threat_display_name].into_iter().flatten() {
            push(index.threat(catalog, t));
        }
        for e in a.evidence.iter().filter(|e| matches!(e.kind.as_str(), "fileEvidence" | "processEvidence")) {
            if let Some(f) = e.props.get("fileName") {
                push(index.file(catalog, f));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::store;

    fn incident(catalog: &Catalog) -> Vector {
        let ids = ["T1566.001", "T1059.001", "T1003.001", "T1021.002", "T1486", "T1003"];
        vector(catalog, ids.iter().filter_map(|id| catalog.technique_ix(id)))
    }

    #[test]
    fn a_technique_seen_and_implied_by_a_sub_technique_counts_once_in_full() {
        let catalog = store::embedded().unwrap();
        let v = incident(&catalog);
        let ix = |id: &str| catalog.technique_ix(id).unwrap() as u32;
        assert_eq!(v.get(ix("T1003")), Some(1.0), "observed itself, and the parent of T1003.001");
        assert_eq!(v.get(ix("T1566")), Some(PARENT_SHARE), "only implied by T1566.001");
        assert_eq!(v.get(ix("T1059.001")), Some(1.0));
        assert!(!v.contains_key(ix("T1190")));
        let order: Vec<u32> = v.iter().map(|(t, _)| t).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "sorted by index, each once: {order:?}");
    }

    #[test]
    fn likelihood_on_demand_equals_summing_every_candidates_whole_vector() {
        let catalog = store::embedded().unwrap();
        let index = Index::new(&catalog);
        let sims = index.similarities(&incident(&catalog));
        // The accumulation over every candidate's vector that `Likely::of` replaces.
        let total: f64 = sims.0.iter().sum();
        let mut expected = vec![0.0f64; catalog.techniques().len()];
        for (ei, &s) in sims.0.iter().enumerate().filter(|(_, s)| **s > 0.0) {
            for &(t, _) in index.entries[ei].vector.iter().filter(|e| e.1 >= 1.0) {
                expected[t as usize] += s / total;
            }
        }
        let likely = index.likely(&sims, 20);
        assert!(expected.iter().filter(|&&l| l > 0.0).count() > 100, "the incident resembles many candidates");
        for (t, &l) in expected.iter().enumerate() {
            assert_eq!(likely.of(t).to_bits(), l.to_bits(), "technique {}", catalog.techniques()[t].id);
        }
        let mut all: Vec<u32> = (0..index.candidates() as u32).filter(|&e| sims.0[e as usize] > 0.0).collect();
        all.sort_by(|&a, &b| sims.0[b as usize].total_cmp(&sims.0[a as usize]).then(a.cmp(&b)));
        all.truncate(20);
        assert_eq!(likely.contributors, all);
    }

    #[test]
    fn the_first_candidates_are_those_of_a_full_sort() {
        let catalog = store::embedded().unwrap();
        let index = Index::new(&catalog);
        let v = incident(&catalog);
        let sims = index.similarities(&v);
        let all = index.rank(&catalog, &v, &sims, &[], &[], usize::MAX);
        assert!(all.len() > 20);
        assert_eq!(index.rank(&catalog, &v, &sims, &[], &[], 10), all[..10]);
        assert!(index.rank(&catalog, &v, &sims, &[], &[], 0).is_empty());
        for c in &all[..10] {
            let mut sorted = c.shared_techniques.clone();
            sorted.sort();
            assert_eq!(c.shared_techniques, sorted, "shared techniques of {} in ID order", c.id);
        }
    }
}
