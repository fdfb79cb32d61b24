//! Hunts for the review: each blind-stage candidate gets the library's advanced hunting queries
//! for its technique, filled with this incident's entities and window; the incident's indicators
//! get estate-wide sweeps. Advanced hunting keeps 30 days, so every hunt says until when its
//! window is still there.

use super::model::{Hunt, HuntWindow, Review};
use crate::hunts::{Entities, Library, Scope, Template, Window, fill};
use crate::model::Incident;

/// Hunts per candidate technique: the first ones of the library (incident hunts first).
const PER_TECHNIQUE: usize = 3;

pub(crate) fn attach(review: &mut Review, incident: &Incident, library: &Library) {
    let Some((window, end_basis)) = window(review, incident) else {
        for l in review.gaps.blind_stages.iter_mut().flat_map(|s| s.likely.iter_mut()) {
            l.hunt_note = Some("No activity time is recorded: there is no window to hunt in.".into());
        }
        return;
    };
    let run_before = window.run_before();
    // Scoped hunts look at everything the incident touched; estate sweeps only for what
    // points to the attacker.
    let (entities, indicators) = (Entities::of(incident), Entities::indicators(incident));
    let platforms = &review.gaps.platforms;
    let filled = |t: &Template| -> Option<Hunt> {
        // Only tables the incident's platforms write to (everything when none is known).
        let fits = crate::hunts::table_platforms(&t.table)
            .is_none_or(|tp| platforms.is_empty() || tp.iter().any(|p| platforms.iter().any(|i| i == p)));
        if !fits {
            return None;
        }
        let kql = match t.scope {
            Scope::Incident => fill::fill(t, &entities, Some(&window))?,
            Scope::Estate => fill::fill(t, &indicators, None)?,
        };
        Some(Hunt {
            id: t.id.clone(),
            title: t.title.clone(),
            table: t.table.clone(),
            scope: t.scope.as_str().to_owned(),
            kql,
            origin: t.origin.clone(),
            run_before: Some(run_before),
        })
    };
    for l in review.gaps.blind_stages.iter_mut().flat_map(|s| s.likely.iter_mut()) {
        let own: Vec<&Template> = library.for_technique(&l.id).collect();
        // A sub-technique without hunts of its own borrows its parent's, and says so.
        let parent = l.id.split_once('.').map(|(p, _)| p);
        let (templates, borrowed) = match (own.is_empty(), parent) {
            (true, Some(p)) => (library.for_technique(p).collect::<Vec<_>>(), Some(p)),
            _ => (own, None),
        };
        let mut hunts: Vec<Hunt> = ordered(&templates).filter_map(&filled).take(PER_TECHNIQUE).collect();
        hunts.sort_by_key(|h| h.scope != "incident");
        l.hunt_note = match (templates.is_empty(), hunts.is_empty(), borrowed) {
            (true, _, _) => Some(format!("No hunt for {} in the library.", l.id)),
            (false, true, _) => Some(format!(
                "The library's hunts for {} read tables this incident's platforms do not write to, or filter on entities its evidence does not name ({}).",
                borrowed.unwrap_or(&l.id),
                lists(&templates)
            )),
            (false, false, Some(p)) => Some(format!("No hunt specific to {}; these are {p}'s.", l.id)),
            (false, false, None) => None,
        };
        l.hunts = hunts;
    }
    review.gaps.estate_hunts = library.sweeps().filter_map(filled).collect();
    review.gaps.hunt_window = Some(HuntWindow { start: window.start, end: window.end, end_basis, run_before });
}

/// Incident hunts before estate ones, library order within each.
fn ordered<'t>(templates: &'t [&'t Template]) -> impl Iterator<Item = &'t Template> + 't {
    let incident = templates.iter().filter(|t| t.scope == Scope::Incident);
    incident.chain(templates.iter().filter(|t| t.scope == Scope::Estate)).copied()
}

/// The entity lists the templates filter on, named as the README names them.
fn lists(templates: &[&Template]) -> String {
    let mut names: Vec<&str> =
        templates.iter().flat_map(|t| t.placeholders()).filter(|p| p.is_list()).map(|p| p.name()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// First activity − 1 day … full containment (else the latest it can have been, else the
/// resolution, else the last activity) + 1 hour.
fn window(review: &Review, incident: &Incident) -> Option<(Window, String)> {
    let first = review.metrics.first_activity.or_else(|| incident.first_activity())?;
    let full = review.metrics.containment.full.as_ref();
    let last_activity = incident.alerts.iter().filter_map(|a| a.last_activity.or(a.first_activity)).max();
    let (until, basis) = if let Some(at) = full.and_then(|c| c.at) {
        (at, "full containment")
    } else if let Some(at) = full.and_then(|c| c.at_latest) {
        (at, "the latest full containment can have been")
    } else if let Some(at) = review.incident.resolved {
        (at, "resolution")
    } else {
        (last_activity.unwrap_or(first), "last activity")
    };
    Some((Window::around(first, until), basis.to_owned()))
}
