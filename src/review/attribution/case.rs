//! How far a candidate's evidence goes, and the case against it: what a careful analyst says
//! before anyone repeats a name. Points for each kind of evidence, taken away for what
//! weakens it, make the confidence:
//!
//! - named (an alert's actor label): 2;
//! - software: 2 when at most 3 groups and campaigns use it, 1 when at most
//!   [`DISTINCTIVE_SOFTWARE`], else 0; a tool half (rounded down). An actor label on the same
//!   alerts as the software detection (or within the hour of it) is one observation: the two
//!   count as the stronger one alone;
//! - techniques: 1 over the evidence bar ([`MIN_SHARED`] shared, one of them rare), 2 when
//!   five or more are shared, two of them rare, and no other candidate of its kind shares as
//!   many;
//! - for a claim resting on techniques, minus 1 when three or more others of its kind share as
//!   many; minus 1 when none of its hallmarks (its five rarest techniques) is in an incident
//!   that shows ten techniques or more.
//!
//! 4 or more is high, 2–3 medium, less is low. Technique overlap alone never reaches high.

use super::{Actor, DISTINCTIVE_SOFTWARE, Evidence, MIN_SHARED};
use crate::attack::Catalog;
use crate::review::model::{Candidate, CandidateKind, Confidence};

/// The incident shows enough techniques for a group's hallmarks to be expected in it.
const HALLMARK_EVIDENCE: usize = 10;

/// What [`weigh`] needs besides the candidate.
pub(super) struct Facts<'a> {
    pub actor: Option<&'a Actor>,
    pub evidence: &'a Evidence,
    /// How many groups and campaigns use a software (S-ID).
    pub software_users: &'a dyn Fn(&str) -> usize,
    /// How many of the shared techniques are rare.
    pub rare_shared: usize,
    /// How many hallmarks the candidate has (0: too few techniques known to have any).
    pub hallmarks: usize,
    /// The first rivals (name, shared techniques), most shared first.
    pub rivals: Vec<(String, u32)>,
    /// The incident's own techniques.
    pub observed: usize,
}

/// Sets the candidate's `confidence` and `against`.
pub(super) fn weigh(c: &mut Candidate, catalog: &Catalog, f: &Facts) {
    let mut against = Vec::new();
    let named = if f.actor.is_some() { 2 } else { 0 };
    let mut software = 0;
    let mut common = Vec::new();
    for s in &c.software {
        let users = (f.software_users)(&s.id);
        let p = match users {
            0..=3 => 2,
            _ if users <= DISTINCTIVE_SOFTWARE => 1,
            _ => 0,
        };
        software = software.max(if s.kind == "tool" { p / 2 } else { p });
        if users >= 3 {
            common.push(format!("{} {} ({})", s.id, s.name, users - 1));
        }
    }
    if !common.is_empty() {
        against.push(format!(
            "Other groups and campaigns use the same software in ATT&CK (how many): {}.",
            common.join(", ")
        ));
    }
    let mut points = named + software;
    if let Some(actor) = f.actor
        && let Some(s) = c.software.iter().find(|s| f.evidence.same_observation(actor, s))
    {
        points = named.max(software);
        against.insert(
            0,
            format!(
                "The actor label \"{}\" is on the alerts that detected {} {} (or within the hour of them): probably one piece of evidence seen twice.",
                actor.name, s.id, s.name
            ),
        );
    }
    let shared = c.shared_techniques.len();
    let over_bar = shared >= MIN_SHARED && f.rare_shared > 0;
    points += match (over_bar, shared >= 5 && f.rare_shared >= 2 && c.rivals == 0) {
        (true, true) => 2,
        (true, false) => 1,
        _ => 0,
    };
    // Rivals and hallmarks weigh on a claim that rests on techniques; against a name or a
    // software they are background, stated but not counted.
    let technique_claim = over_bar || (named == 0 && c.software.is_empty());
    if technique_claim && c.rivals >= 3 {
        points -= 1;
    }
    let others = match (c.kind, c.rivals) {
        (CandidateKind::Group, 1) => "group shares",
        (CandidateKind::Group, _) => "groups share",
        (CandidateKind::Campaign, 1) => "campaign shares",
        (CandidateKind::Campaign, _) => "campaigns share",
    };
    if technique_claim && c.rivals > 0 {
        let names: Vec<String> = f.rivals.iter().map(|(n, k)| format!("{n} {k}")).collect();
        let more = (c.rivals as usize).saturating_sub(names.len());
        against.push(format!(
            "{} other {others} as many or more of its techniques: {}{}.",
            c.rivals,
            names.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ));
    }
    if f.hallmarks > 0 && c.hallmarks_missing.len() == f.hallmarks {
        // A small incident shows few techniques: the absence of a group's rarest ones says
        // little until the incident shows [`HALLMARK_EVIDENCE`] or more.
        if f.observed >= HALLMARK_EVIDENCE {
            points -= 1;
        }
        let names: Vec<String> = c
            .hallmarks_missing
            .iter()
            .map(|t| match catalog.technique(t) {
                Some(x) => format!("{t} {}", x.name),
                None => t.clone(),
            })
            .collect();
        against.push(format!("None of its most distinctive techniques is in the incident: {}.", names.join(", ")));
    }
    if shared == 0 {
        against.push("It shares none of the incident's techniques.".into());
    } else if !over_bar {
        let only = if shared < MIN_SHARED { "only " } else { "" };
        let rare = match (f.rare_shared, shared) {
            (0, 1) => ", not a rare one",
            (0, _) => ", none of them rare",
            _ => "",
        };
        against.push(if shared == f.observed {
            format!("It shares {only}{shared} technique{} with the incident{rare}.", if shared == 1 { "" } else { "s" })
        } else {
            format!("It shares {only}{shared} of the incident's {} techniques{rare}.", f.observed)
        });
    }
    if named == 0 && c.software.is_empty() {
        against.push(
            "No alert names it and no software it uses was seen: technique overlap alone does not attribute an intrusion."
                .into(),
        );
    }
    c.confidence = match points {
        4.. => Confidence::High,
        2..=3 => Confidence::Medium,
        _ => Confidence::Low,
    };
    c.against = against;
}
