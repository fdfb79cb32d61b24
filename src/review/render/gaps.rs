//! The gap analysis as a reader sees it: what covered each observed technique, the blind stages
//! with what implies them, the techniques likely there and the hunts that would show them.

use super::{Block, Hunts, is_benign};
use crate::review::model::{CoverageState, Hunt, Review, TechniqueCoverage};

fn day(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn minute(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// What covered each observed technique, and what that means for the follow-ups.
pub(super) fn coverage(r: &Review) -> Vec<Block> {
    if is_benign(r) {
        return vec![Block::Para(format!(
            "Classified {}: coverage gaps and attribution are not assessed; the follow-ups are about tuning.",
            r.incident.classification
        ))];
    }
    let c = &r.gaps.coverage;
    if c.is_empty() {
        return vec![];
    }
    let mut b = vec![Block::Heading(2, "Detection coverage".into())];
    let rows = c.iter().map(|t| vec![technique(t), state(t).into(), by(t)]).collect();
    b.push(Block::Table(["technique", "covered by", "detections and rules"].map(String::from).to_vec(), rows));
    let count = |s: CoverageState| c.iter().filter(|t| t.state == s).count();
    let mut parts = vec![];
    for (s, what) in [
        (CoverageState::Vendor, "Microsoft's built-in detections only"),
        (CoverageState::Inventory, "your own rules only"),
        (CoverageState::Both, "both"),
        (CoverageState::None, "nothing"),
    ] {
        let n = count(s);
        if n > 0 {
            parts.push(format!("{n} by {what}"));
        }
    }
    let mut summary = format!("Of {} observed techniques: {}.", c.len(), parts.join(", "));
    match &r.basis.inventory {
        None => summary += " Your own rules are not assessed: no detection inventory is configured.",
        Some(_) if count(CoverageState::None) == 0 => {
            summary += " Every observed technique was detected: no detection needs adding for them."
        }
        Some(_) => {}
    }
    if let Some(d) = r.basis.inventory.as_ref().and_then(|i| i.deployed.as_ref()) {
        let what = match (d.kind.contains("defender"), d.kind.contains("sentinel")) {
            (true, true) => "deployed rules (Defender custom detections and Sentinel analytics rules)",
            (false, true) => "Sentinel analytics rules",
            _ => "custom detection rules",
        };
        summary += &format!(
            " Counted against the tenant's {} {what} as read {}{}, with the inventory files.",
            d.rules,
            minute(&d.read_at),
            if d.switched_off > 0 { format!(" ({} of them switched off)", d.switched_off) } else { String::new() }
        );
    }
    b.push(Block::Para(summary));
    let notes: Vec<String> = c
        .iter()
        .filter_map(|t| {
            let note = t.note.as_ref()?;
            Some(if t.parent_rules.is_empty() {
                format!("{}: {note}.", t.technique)
            } else {
                format!("{}: {note} ({}).", t.technique, t.parent_rules.join(", "))
            })
        })
        .collect();
    if !notes.is_empty() {
        b.push(Block::Bullets(notes));
    }
    b
}

fn technique(t: &TechniqueCoverage) -> String {
    match &t.name {
        Some(n) => format!("{} {n}", t.technique),
        None => t.technique.clone(),
    }
}

fn state(t: &TechniqueCoverage) -> &'static str {
    match t.state {
        CoverageState::Vendor => "Microsoft",
        CoverageState::Inventory => "your rules",
        CoverageState::Both => "Microsoft and your rules",
        CoverageState::None => "nothing",
    }
}

/// The products that alerted, then the inventory's rules (the first three).
fn by(t: &TechniqueCoverage) -> String {
    let mut products: Vec<&str> = t.alerts.iter().map(|a| a.product.as_str()).collect();
    products.sort_unstable();
    products.dedup();
    let mut parts: Vec<String> = products.into_iter().map(str::to_owned).collect();
    if !t.rules.is_empty() {
        let more = t.rules.len().saturating_sub(3);
        let mut rules = t.rules.iter().take(3).map(|r| format!("“{r}”")).collect::<Vec<_>>().join(", ");
        if more > 0 {
            rules += &format!(" and {more} more");
        }
        parts.push(format!("rules: {rules}"));
    }
    if parts.is_empty() { "—".into() } else { parts.join("; ") }
}

/// The window and the date after which advanced hunting no longer holds it.
fn window_line(r: &Review) -> Option<Block> {
    let w = r.gaps.hunt_window.as_ref()?;
    Some(Block::Para(format!(
        "The incident's hunts look at {} – {} UTC (first activity − 1 day … {} + 1 h). Advanced hunting keeps 30 days: run them before {}.",
        minute(&w.start),
        minute(&w.end),
        w.end_basis,
        day(&w.run_before)
    )))
}

fn any_hunt(r: &Review) -> bool {
    !r.gaps.estate_hunts.is_empty() || r.gaps.blind_stages.iter().flat_map(|s| &s.likely).any(|l| !l.hunts.is_empty())
}

fn hunt_line(h: &Hunt) -> String {
    let scope = if h.scope == "estate" { "every device and account, last 30 days" } else { "this incident" };
    format!("Hunt: {} ({}; {scope})", h.title, h.table)
}

/// The stages the activity implies and no alert covers, each with its reason, the techniques
/// likely there and (inline) the first hunt for each.
pub(super) fn blind_stages(r: &Review, hunts: Hunts) -> Vec<Block> {
    let g = &r.gaps;
    if g.blind_stages.is_empty() {
        return vec![];
    }
    let mut b = vec![Block::Heading(2, "Blind stages".into())];
    if any_hunt(r) {
        b.extend(window_line(r));
    }
    if !g.platforms.is_empty() {
        b.push(Block::Para(format!(
            "Techniques listed run on this incident's platforms ({}), as ATT&CK records them.",
            g.platforms.join(", ")
        )));
    }
    let mut shown: Vec<(&str, &str)> = Vec::new();
    for s in &g.blind_stages {
        b.push(Block::Heading(3, s.name.clone()));
        if !s.reason.is_empty() {
            b.push(Block::Para(s.reason.clone()));
        }
        if s.likely.is_empty() {
            b.push(Block::Para(
                "No technique of this stage that resembling groups use runs on these platforms.".into(),
            ));
            continue;
        }
        if hunts == Hunts::Appendix {
            b.push(Block::Bullets(
                s.likely
                    .iter()
                    .map(|l| {
                        let hunt = match (l.hunts.len(), &l.hunt_note) {
                            (0, Some(n)) => format!(" {n}"),
                            (0, None) => String::new(),
                            (1, _) => " One hunt in the appendix.".into(),
                            (n, _) => format!(" {n} hunts in the appendix."),
                        };
                        format!("{}.{hunt}", candidate(l))
                    })
                    .collect(),
            ));
            continue;
        }
        for l in &s.likely {
            b.push(Block::Bullets(vec![candidate(l)]));
            if let Some(n) = &l.hunt_note {
                b.push(Block::Para(format!("    {n}")));
            }
            if let Some(h) = l.hunts.first() {
                // One query serves several techniques (Office spawning a shell is both a
                // malicious attachment and a malicious file): printed once.
                match shown.iter().find(|(id, _)| *id == h.id.as_str()) {
                    Some((_, first)) => {
                        b.push(Block::Para(format!("    {}: the query above, for {first}.", hunt_line(h))))
                    }
                    None => {
                        shown.push((h.id.as_str(), l.id.as_str()));
                        b.push(Block::Para(format!("    {}:", hunt_line(h))));
                        b.push(Block::Code(h.kql.clone()));
                    }
                }
            }
            if l.hunts.len() > 1 {
                b.push(Block::Para(format!(
                    "    {} for {} in the JSON (gaps.blind_stages[].likely[].hunts).",
                    more_hunts(l.hunts.len() - 1),
                    l.id
                )));
            }
        }
    }
    if hunts == Hunts::Inline {
        b.extend(sweeps(r));
    }
    b
}

fn more_hunts(n: usize) -> String {
    if n == 1 { "1 more hunt".into() } else { format!("{n} more hunts") }
}

fn candidate(l: &crate::review::model::LikelyTechnique) -> String {
    format!(
        "{} {} — {}{}",
        l.id,
        l.name,
        match &l.reason {
            Some(r) => r.clone(),
            None => format!("likelihood {:.2}", l.likelihood),
        },
        if l.used_by.is_empty() { String::new() } else { format!("; used by {}", l.used_by.join(", ")) }
    )
}

/// Estate-wide sweeps for the incident's indicators.
fn sweeps(r: &Review) -> Vec<Block> {
    if r.gaps.estate_hunts.is_empty() {
        return vec![];
    }
    let mut b = vec![Block::Heading(3, "Did it happen elsewhere? (every device and account, last 30 days)".into())];
    for h in &r.gaps.estate_hunts {
        b.push(Block::Para(format!("{} ({}):", h.title, h.table)));
        b.push(Block::Code(h.kql.clone()));
    }
    b
}

/// For the e-mail: every hunt, for the analysts who run them.
pub(super) fn hunt_appendix(r: &Review) -> Vec<Block> {
    if !any_hunt(r) {
        return vec![];
    }
    let mut b = vec![Block::Heading(2, "Hunting queries (for analysts)".into())];
    b.extend(window_line(r));
    let mut shown: Vec<(&str, &str)> = Vec::new();
    for s in &r.gaps.blind_stages {
        for l in s.likely.iter().filter(|l| !l.hunts.is_empty()) {
            b.push(Block::Heading(3, format!("{} · {} {}", s.name, l.id, l.name)));
            for h in &l.hunts {
                match shown.iter().find(|(id, _)| *id == h.id.as_str()) {
                    Some((_, first)) => b.push(Block::Para(format!("{}: the query given for {first}.", hunt_line(h)))),
                    None => {
                        shown.push((h.id.as_str(), l.id.as_str()));
                        b.push(Block::Para(format!("{}:", hunt_line(h))));
                        b.push(Block::Code(h.kql.clone()));
                    }
                }
            }
        }
    }
    b.extend(sweeps(r));
    b
}

/// What the retro-hunts found in the tenant, when they ran: a count, a table of each hunt's
/// outcome (a hunt that did not run says why, never "clean"), and the first rows of each hunt
/// that returned some.
pub(super) fn retro_hunts(r: &Review) -> Vec<Block> {
    let Some(h) = &r.retro_hunts else { return vec![] };
    let not_run = h.results.len() - h.ran;
    let mut b = vec![Block::Heading(2, "Retro-hunts in the tenant".into())];
    b.push(Block::Para(format!(
        "After the review, Hindsight ran the blind stages' hunts in advanced hunting (finished {}): {} returned rows, {} found nothing in the incident's window{}.",
        h.finished_at.format("%Y-%m-%d %H:%M UTC"),
        h.with_hits,
        h.ran - h.with_hits,
        if not_run > 0 { format!(", {not_run} could not run") } else { String::new() }
    )));
    let rows: Vec<Vec<String>> = h
        .results
        .iter()
        .map(|x| {
            let outcome = match (x.status.as_str(), &x.reason) {
                ("hits", _) => format!("{} row(s)", x.rows),
                ("no_rows", _) => "nothing in the window".to_owned(),
                (_, Some(reason)) => format!("not run: {}", not_run_words(reason)),
                _ => "not run".to_owned(),
            };
            // The stage as the review names it ("Initial Access"), its short name otherwise.
            let stage = r.gaps.blind_stages.iter().find(|b| b.tactic == x.stage).map_or(&x.stage, |b| &b.name);
            vec![x.title.clone(), stage.clone(), x.technique.clone(), outcome]
        })
        .collect();
    b.push(Block::Table(vec!["Hunt".into(), "Stage".into(), "Technique".into(), "Outcome".into()], rows));
    for x in h.results.iter().filter(|x| x.status == "hits") {
        b.push(Block::Strong(format!("{}: first rows", x.title)));
        b.push(Block::Bullets(
            x.first_rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|(k, v)| match v {
                            serde_json::Value::String(s) => format!("{k}: {s}"),
                            other => format!("{k}: {other}"),
                        })
                        .collect::<Vec<_>>()
                        .join(" · ")
                })
                .collect(),
        ));
    }
    b
}

fn not_run_words(reason: &str) -> &'static str {
    match reason {
        "retention" => "the data is older than the 30 days advanced hunting keeps",
        "quota" => "the tenant's hunting quota stayed spent",
        "timeout" => "it ran past the time limit",
        "rejected" => "the service refused the query",
        "permission" => "the app lacks ThreatHunting.Read.All",
        _ => "the service failed",
    }
}
