//! Which known groups and campaigns the incident resembles: a ranked hypothesis, evidence kinds
//! kept apart.
//!
//! Three kinds of evidence, strongest first ([`evidence`]): **named** (an alert's
//! `actorDisplayName` is a group's name or alias), **software** (ATT&CK software the alerts and
//! evidence name, used by the candidate) and **techniques** (the candidate is known to use the
//! incident's techniques). Named candidates come first; the rest are ordered by technique
//! evidence plus software evidence:
//!
//! - technique evidence is BM25 over binary technique sets: each shared technique adds its
//!   rarity (inverse document frequency over every active group and campaign), with a slight
//!   discount for candidates known for very many techniques (`b` = 0.1); a technique the
//!   candidate is not known for but software it uses is (other than software the incident
//!   names) adds half its rarity ([`SOFTWARE_TECHNIQUE_SHARE`]). Cosine similarity, which divides by the candidate's own
//!   size, made a group known for three techniques look like a 0.43 match on one common
//!   technique;
//! - each named software adds [`SOFTWARE_WEIGHT`] times its own rarity (how few candidates use
//!   it), half for a tool.
//!
//! BENCHMARKS.md measures the choice on ATT&CK's own campaigns held out of the catalog. The
//! review lists only candidates over an evidence bar ([`Index::attribute`]), each with its
//! confidence and the case against it ([`case`]).
//!
//! The cosine similarity stays for one other use: how likely a technique is given the incident
//! (blind-stage candidates, [`Index::likely`]), a weighted average over every candidate.

use std::collections::{BTreeSet, HashMap};

use super::model::{Candidate, CandidateKind, SoftwareEvidence};
use crate::attack::Catalog;

mod case;
pub mod evidence;

pub use evidence::{Actor, Evidence};

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

#[derive(Clone)]
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
    /// Techniques it uses itself (membership 1): the length BM25 discounts.
    len: usize,
    /// ATT&CK software it uses (S-IDs); a group's include its campaigns'.
    software: Vec<String>,
    /// Techniques its software is known for that it is not known for itself, sorted, each with
    /// how many of its software are known for it ([`SOFTWARE_TECHNIQUE_SHARE`]).
    via_software: Vec<(u32, u32)>,
    /// A campaign's groups.
    attributed_to: Vec<String>,
    /// Its rarest techniques, rarest first (empty below [`MIN_FOR_HALLMARKS`]).
    hallmarks: Vec<u32>,
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
            len: 0,
            software: vec![],
            via_software: vec![],
            attributed_to: vec![],
            hallmarks: vec![],
        }
    }

    /// Sets the software it uses, and the active techniques that software is known for and
    /// it is not.
    fn set_software(&mut self, catalog: &Catalog, software: Vec<String>) {
        let mut via: std::collections::BTreeMap<u32, u32> = std::collections::BTreeMap::new();
        for id in &software {
            if let Some(sw) = catalog.software(id) {
                let known: BTreeSet<usize> = sw.techniques.iter().filter_map(|t| catalog.technique_ix(t)).collect();
                for t in known {
                    if !self.uses(t as u32) && catalog.techniques()[t].lifecycle.is_active() {
                        *via.entry(t as u32).or_default() += 1;
                    }
                }
            }
        }
        self.via_software = via.into_iter().collect();
        self.software = software;
    }

    fn uses(&self, t: u32) -> bool {
        self.vector.binary_search_by_key(&t, |e| e.0).is_ok_and(|i| self.vector[i].1 >= 1.0)
    }

    /// Orders candidates best first: by score, then by ID.
    fn by_score(&self, other: &Entry, s: f64, other_s: f64) -> std::cmp::Ordering {
        other_s.total_cmp(&s).then_with(|| self.id.cmp(&other.id))
    }
}

/// A technique a candidate is not known for itself but its known software is (ATT&CK's
/// software → technique relationships) counts this share of one it is known for: a group that
/// uses Mimikatz can dump LSASS whether or not a report said it did. Half, like a parent
/// technique implied by a sub-technique (0.4–0.75 all within a point, BENCHMARKS.md). Not
/// through software the incident names: that is weighed as software already. Over nine seeds,
/// top-3 with one software name 63–70 % → 71–74 %, techniques only 34–39 % → 47–50 %.
pub const SOFTWARE_TECHNIQUE_SHARE: f64 = 0.5;

/// BM25's saturation constant. With a technique either used or not, it only scales the length
/// discount.
const K1: f64 = 1.2;
/// BM25's length normalisation: 0.1, a slight discount for candidates known for very many
/// techniques. Full normalisation (0.75) favours small groups as cosine did (BENCHMARKS.md).
const B: f64 = 0.1;
/// A named software weighs this many times a shared technique of the same rarity: software
/// an alert names is a more specific observation than a technique, and techniques come in
/// correlated bundles. Measured in BENCHMARKS.md (1.5–3 all within a point of each other).
pub const SOFTWARE_WEIGHT: f64 = 3.0;
/// A tool (AdFind, PsExec) counts half as much as malware: tools are shared and bought.
const TOOL_SHARE: f64 = 0.5;
/// A technique-only candidate needs at least this many shared techniques ...
pub const MIN_SHARED: usize = 3;
/// ... one of them rare: used by at most this share of groups and campaigns.
const RARE_SHARE: f64 = 0.05;
/// Software used by at most this many groups and campaigns tells them apart; Cobalt Strike
/// (dozens) or Mimikatz (about fifty) alone attribute nothing.
pub const DISTINCTIVE_SOFTWARE: usize = 10;
/// How many of a candidate's rarest techniques are its hallmarks ...
const HALLMARKS: usize = 5;
/// ... when it is known for at least this many techniques.
const MIN_FOR_HALLMARKS: usize = 8;

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
    /// technique index → candidates whose software is known for it but who are not, each with
    /// how many of its software are.
    soft_users: Vec<Vec<(u32, u32)>>,
    /// Mean number of techniques a candidate uses itself (BM25's average length).
    avg_len: f64,
    /// How many actors (groups, and campaigns attributed to none) use each software.
    software_df: HashMap<String, usize>,
    /// How many actors use each technique (by technique index).
    df: Vec<f64>,
    /// How many actors there are: what rarity is measured against.
    actors: f64,
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
        for g in catalog.data().groups.iter().filter(|g| g.lifecycle.is_active()) {
            let ixs = catalog.group_techniques(&g.id).filter_map(|t| catalog.technique_ix(&t.id));
            let mut e = Entry::new(catalog, &g.id, &g.name, &g.aliases, CandidateKind::Group, active(catalog, ixs));
            // A group uses what its campaigns used, as it uses their techniques.
            let mut software: BTreeSet<String> = g.software.iter().cloned().collect();
            for c in catalog.group_campaigns(&g.id) {
                software.extend(c.software.iter().cloned());
            }
            e.set_software(catalog, software.into_iter().collect());
            entries.push(e);
        }
        for c in catalog.data().campaigns.iter().filter(|c| c.lifecycle.is_active()) {
            let ixs = c.techniques.iter().filter_map(|t| catalog.technique_ix(t));
            let mut e = Entry::new(catalog, &c.id, &c.name, &c.aliases, CandidateKind::Campaign, active(catalog, ixs));
            e.set_software(catalog, c.software.clone());
            e.attributed_to = c.groups.clone();
            entries.push(e);
        }
        Index::assemble(entries, catalog.techniques().len())
    }

    /// Weights, postings and hallmarks of a set of candidates.
    fn assemble(mut entries: Vec<Entry>, techniques: usize) -> Index {
        // Rarity counts actors: a campaign attributed to a group is already in that group's
        // techniques and software, and counting it again would count one actor twice.
        let actor = |e: &Entry| e.kind == CandidateKind::Group || e.attributed_to.is_empty();
        let n = entries.iter().filter(|e| actor(e)).count() as f64;
        let mut df = vec![0.0f64; techniques];
        for e in entries.iter().filter(|e| actor(e)) {
            for &(t, _) in &e.vector {
                df[t as usize] += 1.0;
            }
        }
        // Smoothed IDF: a technique every candidate uses weighs near zero, an unused one the most.
        let idf: Vec<f64> = df.iter().map(|&d| ((n + 1.0) / (d + 1.0)).ln()).collect();
        let mut postings = vec![Vec::new(); techniques];
        let mut users = vec![Vec::new(); techniques];
        let mut soft_users = vec![Vec::new(); techniques];
        let mut software_df: HashMap<String, usize> = HashMap::new();
        for (ei, e) in entries.iter_mut().enumerate() {
            e.norm = e.vector.iter().map(|&(t, a)| (a * idf[t as usize]).powi(2)).sum::<f64>().sqrt();
            for &(t, b) in &e.vector {
                postings[t as usize].push((ei as u32, b));
                if b >= 1.0 {
                    users[t as usize].push(ei as u32);
                }
            }
            for &(t, n) in &e.via_software {
                soft_users[t as usize].push((ei as u32, n));
            }
            let own: Vec<u32> = e.vector.iter().filter(|x| x.1 >= 1.0).map(|x| x.0).collect();
            e.len = own.len();
            e.hallmarks = if own.len() >= MIN_FOR_HALLMARKS {
                let mut h = own;
                h.sort_by(|&a, &b| idf[b as usize].total_cmp(&idf[a as usize]).then(a.cmp(&b)));
                h.truncate(HALLMARKS);
                h
            } else {
                vec![]
            };
            if e.kind == CandidateKind::Group || e.attributed_to.is_empty() {
                for s in &e.software {
                    *software_df.entry(s.clone()).or_default() += 1;
                }
            }
        }
        let avg_len = entries.iter().map(|e| e.len as f64).sum::<f64>() / n.max(1.0);
        Index { entries, idf, postings, users, soft_users, avg_len, software_df, df, actors: n }
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

    /// Every candidate with some evidence, best first, at most `top`: named ones first, then
    /// by technique plus software evidence (see the module). With `bar`, only those a review
    /// lists: named, using software that tells candidates apart ([`DISTINCTIVE_SOFTWARE`]), or
    /// sharing at least [`MIN_SHARED`] techniques of which one is rare. Each comes with its
    /// confidence and the case against it.
    pub fn attribute(
        &self,
        catalog: &Catalog,
        incident: &Vector,
        evidence: &Evidence,
        top: usize,
        bar: bool,
    ) -> Vec<Candidate> {
        let observed: Vec<u32> = incident.iter().filter(|&(_, a)| a >= 1.0).map(|(t, _)| t).collect();
        // Shared technique count and rarity sum of every candidate, over the postings of the
        // incident's own techniques, and whether its software is known for any of them.
        let mut shared = vec![(0u32, 0.0f64); self.entries.len()];
        // How many of the incident's techniques each candidate's software brings: counted here,
        // listed only for the candidates returned (a review walks every posting).
        let mut via = vec![0u32; self.entries.len()];
        // What the named software is known for is its own evidence (weighed as software): a
        // candidate that uses it is not credited again with those techniques through it.
        let named: Vec<(&str, BTreeSet<u32>)> = evidence
            .software
            .iter()
            .filter_map(|s| {
                let known = catalog.software(&s.id)?.techniques.iter().filter_map(|t| catalog.technique_ix(t));
                Some((s.id.as_str(), known.map(|t| t as u32).collect()))
            })
            .collect();
        let brings = |e: &Entry, t: u32, n: u32| {
            named.is_empty()
                || n as usize
                    > named
                        .iter()
                        .filter(|(id, known)| known.contains(&t) && e.software.iter().any(|s| s == id))
                        .count()
        };
        for &t in &observed {
            for &ei in &self.users[t as usize] {
                let s = &mut shared[ei as usize];
                s.0 += 1;
                s.1 += self.idf[t as usize];
            }
            for &(ei, n) in &self.soft_users[t as usize] {
                if brings(&self.entries[ei as usize], t, n) {
                    shared[ei as usize].1 += SOFTWARE_TECHNIQUE_SHARE * self.idf[t as usize];
                    via[ei as usize] += 1;
                }
            }
        }
        let actors: Vec<(String, &Actor)> =
            evidence.actors.iter().map(|a| (normalize_name(&a.name), a)).filter(|(n, _)| !n.is_empty()).collect();
        let n = self.actors;
        let software_weight = |s: &SoftwareEvidence| -> f64 {
            let df = self.software_df.get(&s.id).copied().unwrap_or(0).max(1) as f64;
            (n / df).ln().max(0.0) * if s.kind == "malware" { 1.0 } else { TOOL_SHARE }
        };
        let rare = |t: u32| self.df[t as usize] <= (RARE_SHARE * n).max(3.0);
        struct Scored<'a> {
            ei: usize,
            actor: Option<&'a Actor>,
            software: Vec<&'a SoftwareEvidence>,
            key: f64,
        }
        let mut scored: Vec<Scored> = Vec::new();
        for (ei, e) in self.entries.iter().enumerate() {
            let actor = actors.iter().find(|(k, _)| e.names.contains(k)).map(|(_, a)| *a);
            let software: Vec<&SoftwareEvidence> =
                evidence.software.iter().filter(|s| e.software.contains(&s.id)).collect();
            if actor.is_none() && software.is_empty() && shared[ei].0 == 0 && via[ei] == 0 {
                continue;
            }
            if bar && actor.is_none() {
                let distinctive =
                    software.iter().any(|s| self.software_df.get(&s.id).is_some_and(|&d| d <= DISTINCTIVE_SOFTWARE));
                let techniques = shared[ei].0 as usize >= MIN_SHARED && observed.iter().any(|&t| rare(t) && e.uses(t));
                if !distinctive && !techniques {
                    continue;
                }
            }
            let key = self.bm25(ei, shared[ei].1)
                + SOFTWARE_WEIGHT * software.iter().map(|s| software_weight(s)).sum::<f64>();
            scored.push(Scored { ei, actor, software, key });
        }
        scored.sort_by(|a, b| {
            b.actor
                .is_some()
                .cmp(&a.actor.is_some())
                .then_with(|| self.entries[a.ei].by_score(&self.entries[b.ei], a.key, b.key))
        });
        scored.truncate(top);
        scored
            .into_iter()
            .map(|s| {
                let e = &self.entries[s.ei];
                let mut ids: Vec<u32> = observed.iter().copied().filter(|&t| e.uses(t)).collect();
                ids.sort_unstable_by_key(|&t| catalog.technique_id_rank(t as usize));
                let k = shared[s.ei].0;
                let mut rivals: Vec<(usize, u32)> = (0..self.entries.len())
                    .filter(|&o| o != s.ei && k > 0 && self.entries[o].kind == e.kind && shared[o].0 >= k)
                    .map(|o| (o, shared[o].0))
                    .collect();
                rivals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| self.entries[a.0].id.cmp(&self.entries[b.0].id)));
                let score = strength(self.bm25(s.ei, shared[s.ei].1));
                let mut c = Candidate {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    kind: e.kind,
                    score: (score * 1000.0).round() / 1000.0,
                    shared_techniques: ids.iter().map(|&t| catalog.techniques()[t as usize].id.clone()).collect(),
                    techniques_via_software: {
                        let mut via: Vec<u32> = observed
                            .iter()
                            .filter_map(|&t| {
                                let i = e.via_software.binary_search_by_key(&t, |v| v.0).ok()?;
                                brings(e, t, e.via_software[i].1).then_some(t)
                            })
                            .collect();
                        via.sort_unstable_by_key(|&t| catalog.technique_id_rank(t as usize));
                        via.iter().map(|&t| catalog.techniques()[t as usize].id.clone()).collect()
                    },
                    actor_match: s.actor.map(|a| a.name.clone()),
                    basis: vec![],
                    software: s.software.iter().map(|&x| x.clone()).collect(),
                    confidence: Default::default(),
                    against: vec![],
                    rivals: rivals.len() as u32,
                    hallmarks_missing: e
                        .hallmarks
                        .iter()
                        .filter(|&&t| !observed.contains(&t))
                        .map(|&t| catalog.techniques()[t as usize].id.clone())
                        .collect(),
                    attributed_to: e.attributed_to.clone(),
                };
                c.basis = basis(&c);
                let facts = case::Facts {
                    actor: s.actor,
                    evidence,
                    software_users: &|id: &str| self.software_df.get(id).copied().unwrap_or(0),
                    rare_shared: ids.iter().filter(|&&t| rare(t)).count(),
                    hallmarks: e.hallmarks.len(),
                    rivals: rivals.iter().take(5).map(|&(o, k)| (self.entries[o].name.clone(), k)).collect(),
                    observed: observed.len(),
                };
                case::weigh(&mut c, catalog, &facts);
                c
            })
            .collect()
    }

    /// BM25 of a candidate whose shared techniques' rarities sum to `rarity`.
    fn bm25(&self, ei: usize, rarity: f64) -> f64 {
        let len = self.entries[ei].len as f64 / self.avg_len.max(1.0);
        rarity * (K1 + 1.0) / (1.0 + K1 * (1.0 - B + B * len))
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

    /// Plain Jaccard similarity of exact technique sets, a baseline the ranking must beat.
    pub fn jaccard_rank(&self, incident: &Vector) -> Vec<(String, f64)> {
        let a: Vec<u32> = incident.iter().filter(|&(_, v)| v >= 1.0).map(|(k, _)| k).collect();
        let mut out: Vec<(String, f64)> = self
            .entries
            .iter()
            .map(|e| {
                let inter = a.iter().filter(|&&t| e.uses(t)).count() as f64;
                let union = a.len() as f64 + e.len as f64 - inter;
                (e.id.clone(), if union > 0.0 { inter / union } else { 0.0 })
            })
            .collect();
        out.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        out
    }

    /// Candidate IDs by the weighted cosine alone (the ranking before BM25, which favoured
    /// candidates known for few techniques): a peer in the attribution benchmark.
    pub fn cosine_rank(&self, incident: &Vector) -> Vec<String> {
        let sims = self.similarities(incident);
        let mut ids: Vec<usize> = (0..self.entries.len()).collect();
        ids.sort_by(|&a, &b| self.entries[a].by_score(&self.entries[b], sims.0[a], sims.0[b]));
        ids.into_iter().map(|i| self.entries[i].id.clone()).collect()
    }

    /// Whether a candidate (by ID) is known to use a software (by S-ID).
    pub fn uses_software(&self, candidate: &str, software: &str) -> bool {
        self.entries.iter().any(|e| e.id == candidate && e.software.iter().any(|s| s == software))
    }

    /// The "software first" baseline: candidates that use any of `software` (S-IDs) first,
    /// each part in Jaccard's order.
    pub fn software_first_rank(&self, incident: &Vector, software: &[String]) -> Vec<String> {
        let uses: HashMap<&str, bool> =
            self.entries.iter().map(|e| (e.id.as_str(), software.iter().any(|s| e.software.contains(s)))).collect();
        let mut ranked = self.jaccard_rank(incident);
        // A stable sort keeps Jaccard's order within each part.
        ranked.sort_by_key(|(id, _)| !uses[id.as_str()]);
        ranked.into_iter().map(|(id, _)| id).collect()
    }

    /// The index as it would be had `campaign` never been reported: the campaign left out, and
    /// `group` rebuilt from its own techniques and software and its other campaigns'. Weights
    /// are recomputed. What the attribution benchmark ranks against.
    pub fn without_campaign(&self, catalog: &Catalog, campaign: &str, group: &str) -> Option<Index> {
        let g = catalog.group(group)?;
        let mut techniques: BTreeSet<usize> = g.techniques.iter().filter_map(|t| catalog.technique_ix(t)).collect();
        let mut software: BTreeSet<String> = g.software.iter().cloned().collect();
        for c in catalog.group_campaigns(group).filter(|c| c.id != campaign) {
            techniques.extend(c.techniques.iter().filter_map(|t| catalog.technique_ix(t)));
            software.extend(c.software.iter().cloned());
        }
        let mut rebuilt = Entry::new(
            catalog,
            &g.id,
            &g.name,
            &g.aliases,
            CandidateKind::Group,
            active(catalog, techniques.into_iter()),
        );
        rebuilt.set_software(catalog, software.into_iter().collect());
        let entries: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| e.id != campaign)
            .map(|e| if e.id == group { rebuilt.clone() } else { e.clone() })
            .collect();
        Some(Index::assemble(entries, self.idf.len()))
    }
}

/// Technique evidence as a number a reader can compare across incidents, 0–1: `1 − e^(−E/10)`
/// of the BM25 evidence `E`. Absolute, not a share of the incident: one common technique
/// shared is about 0.1 however few techniques the incident or the group has, and ten of
/// ordinary rarity about 0.8.
fn strength(evidence: f64) -> f64 {
    1.0 - (-evidence / STRENGTH_SCALE).exp()
}

/// The evidence at which [`strength`] reaches 0.63: about five techniques that one actor in
/// seven uses.
const STRENGTH_SCALE: f64 = 10.0;

/// Only active techniques count: a revoked one names nothing a group does today.
fn active(catalog: &Catalog, ixs: impl Iterator<Item = usize>) -> impl Iterator<Item = usize> {
    ixs.filter(|&ix| catalog.techniques()[ix].lifecycle.is_active())
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
    if !c.shared_techniques.is_empty() || !c.techniques_via_software.is_empty() {
        b.push("techniques".to_owned());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::store;
    use crate::review::model::Confidence;

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
    fn the_first_candidates_are_those_of_a_full_ranking() {
        let catalog = store::embedded().unwrap();
        let index = Index::new(&catalog);
        let v = incident(&catalog);
        let none = Evidence::default();
        let all = index.attribute(&catalog, &v, &none, usize::MAX, false);
        assert!(all.len() > 20);
        assert_eq!(index.attribute(&catalog, &v, &none, 10, false), all[..10]);
        assert!(index.attribute(&catalog, &v, &none, 0, false).is_empty());
        for c in &all[..10] {
            let mut sorted = c.shared_techniques.clone();
            sorted.sort();
            assert_eq!(c.shared_techniques, sorted, "shared techniques of {} in ID order", c.id);
            assert_eq!(c.basis, ["techniques"]);
        }
    }

    fn techniques(catalog: &Catalog, ids: &[&str]) -> Vector {
        vector(catalog, ids.iter().filter_map(|id| catalog.technique_ix(id)))
    }

    /// A technique a group is not known for but its software is ranks the group at half the
    /// technique's weight, named apart from the shared ones; a review lists nobody on it alone.
    #[test]
    fn a_technique_only_its_software_is_known_for_counts_half_and_is_named() {
        let catalog = store::embedded().unwrap();
        let index = Index::new(&catalog);
        // A group, and a technique only one of its software is known for.
        let (ei, t) = index
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == CandidateKind::Group)
            .find_map(|(ei, e)| e.via_software.iter().find(|v| v.1 == 1).map(|&(t, _)| (ei, t)))
            .expect("some group's software is known for a technique the group is not");
        let e = &index.entries[ei];
        assert!(!e.uses(t));
        let id = catalog.techniques()[t as usize].id.clone();
        let v = techniques(&catalog, &[id.as_str()]);
        let all = index.attribute(&catalog, &v, &Evidence::default(), usize::MAX, false);
        let c = all.iter().find(|c| c.id == e.id).expect("ranked through its software");
        assert_eq!((c.techniques_via_software.as_slice(), c.shared_techniques.len()), (std::slice::from_ref(&id), 0));
        assert_eq!(c.basis, ["techniques"]);
        let half = strength(index.bm25(ei, SOFTWARE_TECHNIQUE_SHARE * index.idf[t as usize]));
        let full = strength(index.bm25(ei, index.idf[t as usize]));
        assert_eq!(c.score, (half * 1000.0).round() / 1000.0);
        assert!(c.score > 0.0 && c.score < full, "{} against {full}", c.score);
        assert!(index.attribute(&catalog, &v, &Evidence::default(), usize::MAX, true).iter().all(|c| c.id != e.id));
        // That software named by the incident is weighed as software, not again as the technique.
        let sw = e
            .software
            .iter()
            .filter_map(|s| catalog.software(s))
            .find(|s| s.techniques.contains(&id))
            .expect("the software that brings it");
        let named = Evidence::software(vec![SoftwareEvidence {
            id: sw.id.clone(),
            name: sw.name.clone(),
            kind: "malware".into(),
            matched: sw.name.clone(),
            alerts: vec![],
        }]);
        let all = index.attribute(&catalog, &v, &named, usize::MAX, false);
        let c = all.iter().find(|c| c.id == e.id).expect("ranked on the software");
        assert!(c.techniques_via_software.is_empty() && c.software.len() == 1, "{c:?}");
        assert_eq!(c.score, 0.0);
    }

    /// One shared technique is no resemblance: a review lists nobody on it, however few
    /// techniques a group is known for, and the full ranking scores it low.
    #[test]
    fn one_shared_technique_is_never_listed_and_scores_low() {
        let catalog = store::embedded().unwrap();
        let index = Index::new(&catalog);
        let v = techniques(&catalog, &["T1021.002"]);
        assert!(index.attribute(&catalog, &v, &Evidence::default(), 10, true).is_empty());
        let all = index.attribute(&catalog, &v, &Evidence::default(), usize::MAX, false);
        assert!(all.len() > 30, "everyone who uses SMB shares is in the full ranking");
        assert!(all.iter().all(|c| c.score < 0.2 && c.confidence == Confidence::Low), "{:?}", all[0]);
        // The same technique shared: a group known for few techniques does not outscore one
        // known for many by more than the slight length discount.
        let sizes: Vec<(usize, f64)> = all
            .iter()
            .filter(|c| c.kind == CandidateKind::Group)
            .map(|c| (catalog.group_techniques(&c.id).count(), c.score))
            .collect();
        let smallest = sizes.iter().min_by_key(|x| x.0).unwrap();
        let largest = sizes.iter().max_by_key(|x| x.0).unwrap();
        assert!(smallest.0 * 10 < largest.0, "{smallest:?} {largest:?}");
        assert!(smallest.1 / largest.1 < 1.3, "{smallest:?} {largest:?}");
    }

    /// Over many incidents drawn from ATT&CK's campaigns: every candidate a review lists on
    /// techniques alone shares three or more, one of them rare.
    #[test]
    fn a_review_lists_technique_only_candidates_over_the_bar() {
        let catalog = store::embedded().unwrap();
        let index = Index::new(&catalog);
        let mut listed = 0;
        for c in catalog.data().campaigns.iter().filter(|c| c.lifecycle.is_active()) {
            for take in [2, 4, 8] {
                let ids: Vec<&str> = c.techniques.iter().take(take).map(String::as_str).collect();
                for cand in index.attribute(&catalog, &techniques(&catalog, &ids), &Evidence::default(), 5, true) {
                    listed += 1;
                    assert!(cand.shared_techniques.len() >= MIN_SHARED, "{} for {}: {cand:?}", cand.id, c.id);
                    assert_ne!(cand.confidence, Confidence::High, "techniques alone are never high");
                    assert!(cand.against.iter().any(|a| a.contains("technique overlap alone")));
                }
            }
        }
        assert!(listed > 50, "the bar lets strong resemblances through ({listed})");
    }

    /// An actor label on the alert that also detected the ransomware is one observation: the
    /// candidate comes first, and says so against itself.
    #[test]
    fn a_named_candidate_comes_first_and_one_observation_counts_once() {
        let catalog = store::embedded().unwrap();
        let index = Index::new(&catalog);
        let v = techniques(&catalog, &["T1486", "T1490", "T1021.001", "T1003.001"]);
        let blackcat = SoftwareEvidence {
            id: "S1068".into(),
            name: "BlackCat".into(),
            kind: "malware".into(),
            matched: "Ransom:Win64/BlackCat".into(),
            alerts: vec!["a2".into()],
        };
        let ev = Evidence {
            actors: vec![Actor { name: "Octo Tempest".into(), alerts: vec!["a2".into(), "a3".into()] }],
            software: vec![blackcat.clone()],
            ..Evidence::default()
        };
        let ranked = index.attribute(&catalog, &v, &ev, 5, true);
        let first = &ranked[0];
        assert_eq!((first.id.as_str(), first.actor_match.as_deref()), ("G1015", Some("Octo Tempest")));
        assert_eq!(first.basis[..2], ["named", "software"]);
        assert!(first.against[0].contains("seen twice"), "{:?}", first.against);
        // The same two, seen on different alerts hours apart, are two observations.
        let apart = Evidence {
            actors: vec![Actor { name: "Octo Tempest".into(), alerts: vec!["a9".into()] }],
            software: vec![blackcat],
            ..Evidence::default()
        };
        let first_apart = index.attribute(&catalog, &v, &apart, 5, true).remove(0);
        assert!(!first_apart.against.iter().any(|a| a.contains("seen twice")));
        assert!(first_apart.confidence > first.confidence, "{first_apart:?}");
    }

    #[test]
    fn software_few_use_ranks_its_users_and_a_campaign_names_its_group() {
        let catalog = store::embedded().unwrap();
        let index = Index::new(&catalog);
        let v = techniques(&catalog, &["T1486", "T1562.001"]);
        let akira = SoftwareEvidence {
            id: "S1129".into(),
            name: "Akira".into(),
            kind: "malware".into(),
            matched: "Akira".into(),
            alerts: vec![],
        };
        let ranked = index.attribute(&catalog, &v, &Evidence::software(vec![akira]), 5, true);
        assert_eq!(ranked[0].id, "G1024", "{:?}", ranked.iter().map(|c| &c.id).collect::<Vec<_>>());
        assert!(ranked[0].confidence >= Confidence::Medium);
        // Cobalt Strike alone, with nothing else shared, lists no one: dozens use it.
        let cobalt = SoftwareEvidence {
            id: "S0154".into(),
            name: "Cobalt Strike".into(),
            kind: "malware".into(),
            matched: "CobaltStrike".into(),
            alerts: vec![],
        };
        assert!(index.attribute(&catalog, &Vector::default(), &Evidence::software(vec![cobalt]), 5, true).is_empty());
        let c0024: Vec<&str> = catalog.campaign("C0024").unwrap().techniques.iter().map(String::as_str).collect();
        let ranked = index.attribute(&catalog, &techniques(&catalog, &c0024), &Evidence::default(), 5, true);
        let campaign = ranked.iter().find(|c| c.id == "C0024").unwrap();
        assert_eq!(campaign.attributed_to, ["G0016"]);
        assert!(ranked.iter().all(|c| c.kind == CandidateKind::Campaign || c.attributed_to.is_empty()));
    }
}
