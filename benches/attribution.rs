//! Attribution quality on ATT&CK's own data (a benchmark, not a test).
//!
//! For every campaign attributed to a group: the group's technique set is rebuilt without that
//! campaign (its own `uses` plus its other campaigns), campaigns are left out of the ranking, and
//! groups are ranked by the campaign's techniques, and by random halves of them (20 per campaign,
//! fixed seed). A hit at k means the attributed group is among the first k. The weighted cosine
//! of the review is compared with plain Jaccard on exact technique sets.
//!
//!     cargo bench --bench attribution
//!
//! Caveat, stated rather than hidden: technique weights (IDF) are computed once over every group
//! and campaign, the held-out campaign included.

use std::collections::BTreeSet;

use hindsight::attack::store;
use hindsight::review::CandidateKind;
use hindsight::review::attribution::{Index, vector};
use rand::SeedableRng;
use rand::seq::SliceRandom;

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
            "{label:<34} n={:<5} top-1 {:5.1} %  top-3 {:5.1} %  top-10 {:5.1} %",
            self.n,
            pct(self.at[0]),
            pct(self.at[1]),
            pct(self.at[2])
        )
    }
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
    let mut rng = rand::rngs::StdRng::seed_from_u64(181);
    let (mut w_full, mut j_full, mut w_half, mut j_half) =
        (Hits::default(), Hits::default(), Hits::default(), Hits::default());
    let active = |id: &str| catalog.technique(id).is_some_and(|t| t.lifecycle.is_active());
    for campaign in catalog.data().campaigns.iter().filter(|c| c.lifecycle.is_active()) {
        let c_techniques: Vec<usize> =
            campaign.techniques.iter().filter(|t| active(t)).filter_map(|t| catalog.technique_ix(t)).collect();
        if c_techniques.is_empty() {
            continue;
        }
        for group_id in &campaign.groups {
            let Some(group) = catalog.group(group_id).filter(|g| g.lifecycle.is_active()) else { continue };
            // The group as it would look had this campaign never been reported.
            let mut held_out: BTreeSet<usize> =
                group.techniques.iter().filter(|t| active(t)).filter_map(|t| catalog.technique_ix(t)).collect();
            for other in catalog.group_campaigns(group_id).filter(|c| c.id != campaign.id) {
                held_out.extend(other.techniques.iter().filter(|t| active(t)).filter_map(|t| catalog.technique_ix(t)));
            }
            let idx = index.with_vector(group_id, vector(&catalog, held_out));
            let mut queries = vec![(true, c_techniques.clone())];
            for _ in 0..20 {
                let mut half = c_techniques.clone();
                half.shuffle(&mut rng);
                half.truncate(c_techniques.len().div_ceil(2));
                queries.push((false, half));
            }
            for (full, q) in queries {
                let v = vector(&catalog, q);
                let weighted = idx.weighted_rank_ids(&catalog, &v, CandidateKind::Group);
                let jaccard: Vec<String> =
                    idx.jaccard_rank(&v).into_iter().filter(|(id, _)| id.starts_with('G')).map(|(id, _)| id).collect();
                let (w, j) = if full { (&mut w_full, &mut j_full) } else { (&mut w_half, &mut j_half) };
                w.add(&weighted, group_id);
                j.add(&jaccard, group_id);
            }
        }
    }
    println!("{}", w_full.line("weighted cosine, full campaign"));
    println!("{}", j_full.line("Jaccard baseline, full campaign"));
    println!("{}", w_half.line("weighted cosine, random halves"));
    println!("{}", j_half.line("Jaccard baseline, random halves"));
}
