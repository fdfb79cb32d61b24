//! Which known groups and campaigns the incident resembles: a ranked hypothesis.
//!
//! Each candidate (an active group, its technique set including its campaigns', or an active
//! campaign) and the incident are vectors over techniques. A technique weighs by its rarity
//! (inverse document frequency over all candidates: T1059.001 is used by almost everyone and says
//! little, a rare technique says a lot), and a sub-technique also counts half for its parent, so
//! `T1003.001` in an incident partly matches a group known for `T1003.002`. The score is the cosine
//! of the two weighted vectors (0–1). BENCHMARKS.md compares it with plain Jaccard on ATT&CK's own
//! campaigns.

use std::collections::HashMap;

use super::model::{Candidate, CandidateKind};
use crate::attack::Catalog;

/// Weight of a parent technique implied by one of its sub-techniques.
const PARENT_SHARE: f64 = 0.5;

/// A sparse technique vector: catalog technique index → membership (1, or 0.5 via a sub-technique).
pub type Vector = HashMap<u32, f64>;

struct Entry {
    id: String,
    name: String,
    kind: CandidateKind,
    names: Vec<String>,
    vector: Vector,
    norm: f64,
}

/// Built once per catalog; reviews only read it.
pub struct Index {
    entries: Vec<Entry>,
    idf: Vec<f64>,
    /// technique index → candidates whose vector holds it.
    postings: HashMap<u32, Vec<u32>>,
}

/// `"Midnight Blizzard"`, `"midnight-blizzard"`, `"MIDNIGHT_BLIZZARD"` all compare equal.
pub fn normalize_name(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Membership vector of a technique set: each technique 1, each parent of a sub-technique at
/// least [`PARENT_SHARE`].
pub fn vector(catalog: &Catalog, techniques: impl IntoIterator<Item = usize>) -> Vector {
    let mut v = Vector::new();
    for ix in techniques {
        v.insert(ix as u32, 1.0);
        if let Some(p) = catalog.techniques()[ix].parent.as_deref().and_then(|p| catalog.technique_ix(p)) {
            let e = v.entry(p as u32).or_insert(0.0);
            *e = e.max(PARENT_SHARE);
        }
    }
    v
}

impl Index {
    pub fn new(catalog: &Catalog) -> Index {
        let mut entries = Vec::new();
        for g in catalog.data().groups.iter().filter(|g| g.lifecycle.is_active()) {
            let ixs: Vec<usize> = catalog
                .group_techniques(&g.id)
                .filter(|t| t.lifecycle.is_active())
                .filter_map(|t| catalog.technique_ix(&t.id))
                .collect();
            let mut names = vec![normalize_name(&g.name)];
            names.extend(g.aliases.iter().map(|a| normalize_name(a)));
            entries.push(Entry {
                id: g.id.clone(),
                name: g.name.clone(),
                kind: CandidateKind::Group,
                names,
                vector: vector(catalog, ixs),
                norm: 0.0,
            });
        }
        for c in catalog.data().campaigns.iter().filter(|c| c.lifecycle.is_active()) {
            let ixs: Vec<usize> = c
                .techniques
                .iter()
                .filter_map(|t| catalog.technique_ix(t))
                .filter(|&i| catalog.techniques()[i].lifecycle.is_active())
                .collect();
            let mut names = vec![normalize_name(&c.name)];
            names.extend(c.aliases.iter().map(|a| normalize_name(a)));
            entries.push(Entry {
                id: c.id.clone(),
                name: c.name.clone(),
                kind: CandidateKind::Campaign,
                names,
                vector: vector(catalog, ixs),
                norm: 0.0,
            });
        }
        let n = entries.len() as f64;
        let mut df = vec![0.0f64; catalog.techniques().len()];
        let mut postings: HashMap<u32, Vec<u32>> = HashMap::new();
        for (ei, e) in entries.iter().enumerate() {
            for &t in e.vector.keys() {
                df[t as usize] += 1.0;
                postings.entry(t).or_default().push(ei as u32);
            }
        }
        // Smoothed IDF: a technique every candidate uses weighs near zero, an unused one the most.
        let idf: Vec<f64> = df.iter().map(|&d| ((n + 1.0) / (d + 1.0)).ln()).collect();
        for e in &mut entries {
            e.norm = norm(&e.vector, &idf);
        }
        Index { entries, idf, postings }
    }

    /// How many candidates (groups and campaigns) use a technique, as a share of all: the
    /// prevalence used for "likely" techniques.
    pub fn candidates(&self) -> usize {
        self.entries.len()
    }

    /// Candidates ranked by weighted cosine similarity, best first, ties by ID; at most `top`.
    /// `actors` are alerts' `actorDisplayName`s: a candidate whose name or alias matches one is
    /// marked and ranked first, since Microsoft's own actor attribution is stronger evidence
    /// than technique overlap.
    pub fn rank(&self, catalog: &Catalog, incident: &Vector, actors: &[String], top: usize) -> Vec<Candidate> {
        let inorm = norm(incident, &self.idf);
        let wanted: Vec<(String, &String)> = actors.iter().map(|a| (normalize_name(a), a)).collect();
        let mut scores: HashMap<u32, f64> = HashMap::new();
        for (&t, &a) in incident {
            let w = self.idf[t as usize];
            for &ei in self.postings.get(&t).map(Vec::as_slice).unwrap_or_default() {
                let b = self.entries[ei as usize].vector[&t];
                *scores.entry(ei).or_default() += a * b * w * w;
            }
        }
        let mut out: Vec<Candidate> = Vec::new();
        let mut matched: Vec<u32> = Vec::new();
        for (ei, e) in self.entries.iter().enumerate() {
            if let Some((_, actor)) = wanted.iter().find(|(n, _)| !n.is_empty() && e.names.contains(n)) {
                matched.push(ei as u32);
                out.push(self.candidate(
                    catalog,
                    ei,
                    incident,
                    scores.get(&(ei as u32)).copied().unwrap_or(0.0),
                    inorm,
                    Some((*actor).clone()),
                ));
            }
        }
        // Rank by the normalized score (cosine), not the raw dot product, which favours large sets.
        let mut ranked: Vec<(u32, f64, f64)> = scores
            .into_iter()
            .filter(|(ei, _)| !matched.contains(ei))
            .map(|(ei, dot)| {
                let d = inorm * self.entries[ei as usize].norm;
                (ei, dot, if d > 0.0 { dot / d } else { 0.0 })
            })
            .collect();
        ranked.sort_by(|a, b| {
            b.2.total_cmp(&a.2).then_with(|| self.entries[a.0 as usize].id.cmp(&self.entries[b.0 as usize].id))
        });
        for (ei, dot, _) in ranked {
            if out.len() >= top.max(matched.len()) {
                break;
            }
            out.push(self.candidate(catalog, ei as usize, incident, dot, inorm, None));
        }
        out.retain(|c| c.score > 0.0 || c.actor_match.is_some());
        out
    }

    fn candidate(
        &self,
        catalog: &Catalog,
        ei: usize,
        incident: &Vector,
        dot: f64,
        inorm: f64,
        actor: Option<String>,
    ) -> Candidate {
        let e = &self.entries[ei];
        let denom = inorm * e.norm;
        let score = if denom > 0.0 { dot / denom } else { 0.0 };
        // Shared: techniques the incident has that the candidate uses itself (not only via a parent).
        let mut shared: Vec<String> = incident
            .iter()
            .filter(|&(t, &a)| a >= 1.0 && e.vector.get(t).is_some_and(|&b| b >= 1.0))
            .map(|(&t, _)| catalog.techniques()[t as usize].id.clone())
            .collect();
        shared.sort();
        Candidate {
            id: e.id.clone(),
            name: e.name.clone(),
            kind: e.kind,
            score: (score * 1000.0).round() / 1000.0,
            shared_techniques: shared,
            actor_match: actor,
        }
    }

    /// Likelihood of each technique given the incident: the similarity-weighted share of
    /// candidates that use it ("what groups that did this also do"), with the best contributors.
    pub fn likely(&self, incident: &Vector, limit_contributors: usize) -> (HashMap<u32, f64>, Vec<(u32, f64)>) {
        let inorm = norm(incident, &self.idf);
        let mut sims: Vec<(u32, f64)> = Vec::new();
        let mut dots: HashMap<u32, f64> = HashMap::new();
        for (&t, &a) in incident {
            let w = self.idf[t as usize];
            for &ei in self.postings.get(&t).map(Vec::as_slice).unwrap_or_default() {
                *dots.entry(ei).or_default() += a * self.entries[ei as usize].vector[&t] * w * w;
            }
        }
        for (ei, dot) in dots {
            let d = inorm * self.entries[ei as usize].norm;
            if d > 0.0 {
                sims.push((ei, dot / d));
            }
        }
        sims.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: f64 = sims.iter().map(|s| s.1).sum();
        let mut likelihood: HashMap<u32, f64> = HashMap::new();
        if total > 0.0 {
            for &(ei, s) in &sims {
                for (&t, &b) in &self.entries[ei as usize].vector {
                    if b >= 1.0 {
                        *likelihood.entry(t).or_default() += s / total;
                    }
                }
            }
        }
        sims.truncate(limit_contributors);
        (likelihood, sims)
    }

    pub fn entry_label(&self, ei: u32) -> String {
        let e = &self.entries[ei as usize];
        format!("{} {}", e.id, e.name)
    }

    pub fn entry_uses(&self, ei: u32, t: u32) -> bool {
        self.entries[ei as usize].vector.get(&t).is_some_and(|&b| b >= 1.0)
    }

    /// Plain Jaccard similarity of exact technique sets, the baseline the weighting must beat.
    pub fn jaccard_rank(&self, incident: &Vector) -> Vec<(String, f64)> {
        let a: Vec<u32> = incident.iter().filter(|(_, v)| **v >= 1.0).map(|(k, _)| *k).collect();
        let mut out: Vec<(String, f64)> = self
            .entries
            .iter()
            .map(|e| {
                let inter = a.iter().filter(|t| e.vector.get(t).is_some_and(|&b| b >= 1.0)).count() as f64;
                let b_len = e.vector.values().filter(|&&b| b >= 1.0).count() as f64;
                let union = a.len() as f64 + b_len - inter;
                (e.id.clone(), if union > 0.0 { inter / union } else { 0.0 })
            })
            .collect();
        out.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        out
    }

    /// Ranked IDs by the weighted score, groups only, for the evaluation.
    pub fn weighted_rank_ids(&self, catalog: &Catalog, incident: &Vector, kind: CandidateKind) -> Vec<String> {
        let mut all = self.rank(catalog, incident, &[], usize::MAX);
        all.retain(|c| c.kind == kind);
        all.into_iter().map(|c| c.id).collect()
    }

    /// Replaces one candidate's vector (the evaluation removes a campaign's techniques from its
    /// group before ranking); weights are left as they are.
    pub fn with_vector(&self, id: &str, vector: Vector) -> Index {
        let mut entries: Vec<Entry> = self
            .entries
            .iter()
            .map(|e| Entry {
                id: e.id.clone(),
                name: e.name.clone(),
                kind: e.kind,
                names: e.names.clone(),
                vector: if e.id == id { vector.clone() } else { e.vector.clone() },
                norm: e.norm,
            })
            .collect();
        let mut postings: HashMap<u32, Vec<u32>> = HashMap::new();
        for (ei, e) in entries.iter_mut().enumerate() {
            e.norm = norm(&e.vector, &self.idf);
            for &t in e.vector.keys() {
                postings.entry(t).or_default().push(ei as u32);
            }
        }
        Index { entries, idf: self.idf.clone(), postings }
    }
}

fn norm(v: &Vector, idf: &[f64]) -> f64 {
    v.iter().map(|(&t, &a)| (a * idf[t as usize]).powi(2)).sum::<f64>().sqrt()
}
