//! Attribution quality on ATT&CK's own data (a benchmark, not a test).
//!
//! For every campaign attributed to a group: the index is rebuilt as if the campaign had never
//! been reported (the campaign left out; the group from its own techniques and software and
//! its other campaigns'; weights recomputed), and the group is looked for among the ranked
//! groups. Each (campaign, group) pair is queried 20 times with a random 60 % of the
//! campaign's techniques (fixed seed), under two protocols:
//!
//! 1. techniques only: Hindsight's ranking against plain Jaccard, and against ranking by the
//!    number of known techniques alone (which shows how much the benchmark favours large,
//!    well-reported groups);
//! 2. techniques plus one of the campaign's software, named as Defender names it
//!    (`Trojan:Win32/BlackCat.A!dha`, `HackTool:Win32/Mimikatz`) and matched through the same
//!    software index the review uses: against "software first, then Jaccard".
//!
//! A hit at k means the attributed group is among the first k groups.
//!
//!     cargo bench --bench attribution
//!     ATTRIBUTION_SEED=7 cargo bench --bench attribution    # other random draws

use hindsight::attack::model::SoftwareKind;
use hindsight::attack::software::{SoftwareIndex, is_native};
use hindsight::attack::store;
use hindsight::review::CandidateKind;
use hindsight::review::attribution::{Evidence, Index, vector};
use hindsight::review::model::SoftwareEvidence;
use rand::SeedableRng;
use rand::prelude::IndexedRandom;
use rand::seq::SliceRandom;

/// Queries per (campaign, group) pair.
const DRAWS: usize = 20;
/// Share of the campaign's techniques an incident shows.
const SHARE: f64 = 0.6;

#[derive(Default)]
struct Hits {
    n: usize,
    at: [usize; 3],
}

impl Hits {
    fn add(&mut self, ranked: &[String], truth: &str) {
        self.n += 1;
        if let Some(pos) = ranked.iter().position(|g| g == truth) {
            for (i, k) in [1, 3, 10].iter().enumerate() {
                if pos < *k {
                    self.at[i] += 1;
                }
            }
        }
    }
    fn line(&self, label: &str) -> String {
        let pct = |x: usize| 100.0 * x as f64 / self.n.max(1) as f64;
        format!(
            "{label:<44} n={:<5} top-1 {:5.1} %  top-3 {:5.1} %  top-10 {:5.1} %",
            self.n,
            pct(self.at[0]),
            pct(self.at[1]),
            pct(self.at[2])
        )
    }
}

fn groups_only(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    ids.into_iter().filter(|id| id.starts_with('G')).collect()
}

fn main() {
    let catalog = match store::embedded() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let index = Index::new(&catalog);
    let software_index = SoftwareIndex::new(&catalog);
    // Another seed draws other incidents: `ATTRIBUTION_SEED=7 cargo bench --bench attribution`.
    let seed = std::env::var("ATTRIBUTION_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(181);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut ours, mut jaccard, mut size) = (Hits::default(), Hits::default(), Hits::default());
    let mut cosine = Hits::default();
    let (mut ours_sw, mut first_sw, mut jaccard_sw) = (Hits::default(), Hits::default(), Hits::default());
    let mut first_ours = Hits::default();
    let (mut pairs, mut named, mut unmatched) = (0, 0, 0);
    // Split by whether the group, the campaign held out, is still known to use the software:
    // when it is not, the software can only point at others.
    let (mut ours_known, mut ours_unknown) = (Hits::default(), Hits::default());
    let active = |id: &str| catalog.technique(id).is_some_and(|t| t.lifecycle.is_active());
    for campaign in catalog.data().campaigns.iter().filter(|c| c.lifecycle.is_active()) {
        let techniques: Vec<usize> =
            campaign.techniques.iter().filter(|t| active(t)).filter_map(|t| catalog.technique_ix(t)).collect();
        if techniques.is_empty() {
            continue;
        }
        for group in &campaign.groups {
            if !catalog.group(group).is_some_and(|g| g.lifecycle.is_active()) {
                continue;
            }
            let Some(idx) = index.without_campaign(&catalog, &campaign.id, group) else { continue };
            pairs += 1;
            // What Defender names as a threat: malware, and tools that are not the operating
            // system's own (it raises no "HackTool:Win32/Netsh").
            let nameable: Vec<_> = campaign
                .software
                .iter()
                .filter_map(|s| catalog.software(s))
                .filter(|s| s.kind == SoftwareKind::Malware || !is_native(&s.name))
                .collect();
            // Size alone: the groups known for the most techniques first.
            let by_size = groups_only(idx.jaccard_rank(&vector(&catalog, [])).into_iter().map(|(id, _)| id));
            let by_size = {
                let mut v: Vec<(usize, String)> = by_size
                    .into_iter()
                    .map(|id| (catalog.group_techniques(&id).filter(|t| t.lifecycle.is_active()).count(), id))
                    .collect();
                v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
                v.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
            };
            for _ in 0..DRAWS {
                let mut q = techniques.clone();
                q.shuffle(&mut rng);
                q.truncate(((techniques.len() as f64 * SHARE).round() as usize).max(1));
                let v = vector(&catalog, q);
                let rank = |ev: &Evidence| {
                    let all = idx.attribute(&catalog, &v, ev, usize::MAX, false);
                    all.into_iter().filter(|c| c.kind == CandidateKind::Group).map(|c| c.id).collect::<Vec<_>>()
                };
                let j = groups_only(idx.jaccard_rank(&v).into_iter().map(|(id, _)| id));
                let by_techniques = rank(&Evidence::default());
                ours.add(&by_techniques, group);
                jaccard.add(&j, group);
                cosine.add(&groups_only(idx.cosine_rank(&v)), group);
                size.add(&by_size, group);
                let Some(s) = nameable.choose(&mut rng) else { continue };
                let text = match s.kind {
                    SoftwareKind::Malware => format!("Trojan:Win32/{}.A!dha", s.name.replace(' ', "")),
                    SoftwareKind::Tool => format!("HackTool:Win32/{}", s.name.replace(' ', "")),
                };
                let evidence = match software_index.threat(&catalog, &text) {
                    Some(m) => {
                        named += 1;
                        vec![SoftwareEvidence {
                            id: m.id,
                            name: m.name,
                            kind: if m.kind == SoftwareKind::Tool { "tool".into() } else { "malware".into() },
                            matched: m.matched,
                            alerts: vec![],
                        }]
                    }
                    None => {
                        unmatched += 1;
                        vec![]
                    }
                };
                let ids: Vec<String> = evidence.iter().map(|e| e.id.clone()).collect();
                let ranked = rank(&Evidence::software(evidence));
                let known = ids.iter().any(|s| idx.uses_software(group, s));
                if known { &mut ours_known } else { &mut ours_unknown }.add(&ranked, group);
                ours_sw.add(&ranked, group);
                first_sw.add(&groups_only(idx.software_first_rank(&v, &ids)), group);
                // The other way to combine the two: every group known to use the software first,
                // each part in the order of the techniques alone (not kept: lower at top-3).
                let (mut users, others): (Vec<String>, Vec<String>) =
                    by_techniques.iter().cloned().partition(|g| ids.iter().any(|s| idx.uses_software(g, s)));
                users.extend(others);
                first_ours.add(&users, group);
                jaccard_sw.add(&j, group);
            }
        }
    }
    println!(
        "seed {seed}: {pairs} (campaign, group) pairs, {DRAWS} draws of {:.0} % of the campaign's techniques each",
        SHARE * 100.0
    );
    println!("techniques only:");
    println!("  {}", ours.line("Hindsight (BM25 over rarity)"));
    println!("  {}", jaccard.line("plain Jaccard"));
    println!("  {}", cosine.line("weighted cosine (the ranking before)"));
    println!("  {}", size.line("reference: most known techniques first"));
    println!("techniques + one of the campaign's software named ({named} matched, {unmatched} not):");
    println!("  {}", ours_sw.line("Hindsight (BM25 + software rarity)"));
    println!("  {}", first_sw.line("software first, then Jaccard"));
    println!("  {}", first_ours.line("software first, then Hindsight's BM25"));
    println!("  {}", jaccard_sw.line("plain Jaccard"));
    println!("  {}", ours_known.line("Hindsight, group known to use it"));
    println!("  {}", ours_unknown.line("Hindsight, software known only via this campaign"));
}
