//! Renderings of a review for people: plain text (terminals, e-mail text parts), Markdown
//! (tickets, wikis, Teams) and HTML (e-mail). All three come from one outline, so they say the
//! same things in the same order: what to do first, then the evidence.
//!
//! Everything that comes from the incident (titles, names, comments) is attacker-influenced and
//! is escaped for the target format; the outline itself holds only plain text.

use super::model::*;

/// One element of an outline; the digest builds its outlines from the same blocks.
pub(crate) enum Block {
    Heading(u8, String),
    Para(String),
    /// A paragraph set in bold where the format has bold: the outcome headline.
    Strong(String),
    Bullets(Vec<String>),
    Numbered(Vec<String>),
    Table(Vec<String>, Vec<Vec<String>>),
    /// A query to copy as it is: KQL.
    Code(String),
}

pub mod comment;
mod gaps;
pub mod view;

fn ts(t: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or("—".to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// A time in a table whose heading says UTC: month, day, hour, minute.
fn short(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%m-%d %H:%M").to_string()
}

/// A duration as a person writes it: "22 min", "1 h 58 min", "1 d 23 h 37 min"; never a
/// decimal fraction of an hour, which reads as minutes.
pub fn duration(secs: Option<i64>) -> String {
    let Some(s) = secs else { return "unknown".into() };
    let (neg, s) = (s < 0, s.unsigned_abs());
    let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    // Zero parts left out ("2 d", not "2 d 0 h 0 min"); under a minute in seconds.
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "min")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    let text = if parts.is_empty() { format!("{s} s") } else { parts.join(" ") };
    if neg { format!("-{text}") } else { text }
}

/// The title of an alert by its ID: people read titles; the ID stays in the JSON.
fn alert_title<'r>(r: &'r Review, id: &'r str) -> &'r str {
    r.alerts.iter().find(|a| a.id == id).map_or(id, |a| a.title.as_str())
}

fn alert_titles(r: &Review, ids: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for t in ids.iter().map(|i| alert_title(r, i)) {
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    seen.join("; ")
}

fn is_benign(r: &Review) -> bool {
    matches!(r.incident.classification.as_str(), "falsePositive" | "informationalExpectedActivity")
}

/// How many timeline entries the text formats show; the JSON has them all.
const TIMELINE_SHOWN: usize = 25;
/// A gap between two timeline entries at least this long is shown as a silence.
const SILENCE_S: i64 = 4 * 3600;

/// Where a format puts the hunting queries: under each blind stage (text and Markdown, read by
/// analysts), or in an appendix (the HTML e-mail, read first by people who do not run them).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hunts {
    Inline,
    Appendix,
}

fn outline(r: &Review, hunts: Hunts) -> Vec<Block> {
    let i = &r.incident;
    let mut b = vec![Block::Heading(1, format!("Post-incident review: {}", i.title))];
    if !r.warnings.is_empty() {
        b.push(Block::Bullets(r.warnings.iter().map(|w| format!("Warning: {}", w.message)).collect()));
    }
    b.extend(header(r));
    b.extend(summary(r));
    b.extend(follow_ups(r));
    b.extend(gaps::retro_hunts(r));
    b.extend(response(r));
    b.extend(scope(r));
    b.extend(timeline(r));
    b.extend(times(r));
    b.extend(similar(r));
    b.extend(detection(r, hunts));
    b.extend(attribution(r));
    b.extend(appendix(r));
    if hunts == Hunts::Appendix {
        b.extend(gaps::hunt_appendix(r));
    }
    b.push(Block::Para(made_against(r)));
    b
}

/// The catalog and mappings the review was made against, and ATT&CK's trademark notice.
fn made_against(r: &Review) -> String {
    format!(
        "Made against ATT&CK {} {}{}. ATT&CK® is a registered trademark of The MITRE Corporation.",
        r.basis.attack_domain,
        r.basis.attack_version.as_deref().unwrap_or(""),
        r.basis
            .controls_attack_version
            .as_ref()
            .map(|v| {
                let licence =
                    r.basis.licence.as_ref().map(|l| format!(", filtered for licence {l}")).unwrap_or_default();
                format!(" · Microsoft 365 control mappings for ATT&CK {v} (CTID){licence}")
            })
            .unwrap_or_default()
    )
}

/// The outcome headline, the incident's facts and the root cause as the analysts recorded it.
fn header(r: &Review) -> Vec<Block> {
    let i = &r.incident;
    let outcome = if r.story.outcome.headline.is_empty() {
        format!("{} / {} · status {}", i.classification, i.determination, i.status)
    } else {
        r.story.outcome.headline.clone()
    };
    // The outcome is the headline, on a line of its own; the incident's facts follow.
    let mut facts = vec![
        format!("Incident {} ({}, resolution {})", i.id, i.source, i.revision),
        format!("severity {}", i.severity),
    ];
    if !i.tags.is_empty() {
        facts.push(format!("tags: {}", i.tags.join(", ")));
    }
    facts.push(format!("created {}", ts(&i.created)));
    if let Some(u) = &i.url {
        facts.push(u.clone());
    }
    let mut b = vec![Block::Strong(outcome), Block::Para(facts.join(" · "))];
    if let Some(n) = i.alerts_reviewed {
        b.push(Block::Para(format!(
            "Only the first {n} alerts of {} were reviewed (review.max_alerts): every finding below leaves the others out.",
            i.alerts
        )));
    }
    if let Some(c) = &r.story.outcome.resolving_comment {
        b.push(Block::Para(format!("Resolving comment: “{c}”")));
    }
    match &r.story.root_cause {
        Some(rc) => b.push(Block::Para(format!(
            "Root cause, as recorded{}: “{}”",
            rc.author.as_ref().map(|a| format!(" by {a}")).unwrap_or_default(),
            rc.text
        ))),
        None if !is_benign(r) => b.push(Block::Para("Root cause: not recorded.".into())),
        None => {}
    }
    b
}

fn summary(r: &Review) -> Vec<Block> {
    let mut b = vec![Block::Heading(2, "Summary".into())];
    if !r.story.summary.is_empty() {
        b.push(Block::Numbered(r.story.summary.clone()));
        return b;
    }
    // A review without a story (stored before v2): the counts v1 gave.
    b.push(Block::Bullets(vec![format!(
        "{} alert(s), {} ATT&CK technique(s). Time to detect {}; time to resolve {}.",
        r.incident.alerts,
        r.techniques.iter().filter(|t| t.name.is_some()).count(),
        duration(r.metrics.time_to_detect_s),
        duration(r.metrics.time_to_resolve_s)
    )]));
    b
}

/// The first five follow-ups in full, then every other title: nothing is left to the JSON.
fn follow_ups(r: &Review) -> Vec<Block> {
    let n = r.follow_ups.len();
    let heading = match n {
        0 => "Follow-ups".to_owned(),
        1..=5 => "Follow-ups".to_owned(),
        _ => format!("First follow-ups (5 of {n})"),
    };
    let mut b = vec![Block::Heading(2, heading)];
    if n == 0 {
        b.push(Block::Para("None.".into()));
        return b;
    }
    b.push(Block::Numbered(
        r.follow_ups
            .iter()
            .take(5)
            .map(|f| {
                let who = match (&f.owner, &f.due) {
                    (Some(o), Some(d)) => format!(" Owner: {o}, due {d}."),
                    (Some(o), None) => format!(" Owner: {o}."),
                    (None, Some(d)) => format!(" Due {d}."),
                    (None, None) => String::new(),
                };
                let done = if f.done_when.is_empty() { String::new() } else { format!(" Done when: {}", f.done_when) };
                format!("[{}] {} — {}{done}{who}", priority(f.priority), f.title, f.detail)
            })
            .collect(),
    ));
    if n > 5 {
        let rest: Vec<String> = r
            .follow_ups
            .iter()
            .enumerate()
            .skip(5)
            .map(|(k, f)| format!("{}. [{}] {}", k + 1, priority(f.priority), f.title))
            .collect();
        b.push(Block::Para(format!("Also: {}", rest.join(" · "))));
    }
    b
}

/// A priority as every rendering writes it: `high`, `medium`, `low`.
pub(crate) fn priority(p: Priority) -> &'static str {
    match p {
        Priority::High => "high",
        Priority::Medium => "medium",
        Priority::Low => "low",
    }
}

fn when(at: &Option<chrono::DateTime<chrono::Utc>>, at_latest: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    match (at, at_latest) {
        (Some(t), _) => short(t),
        (None, Some(l)) => format!("time not recorded (by {})", short(l)),
        (None, None) => "time not recorded".into(),
    }
}

/// Where a fact came from, without the author and time its row already shows.
pub(crate) fn short_basis(basis: &str) -> &str {
    ["comment", "resolving comment", "evidence status"]
        .into_iter()
        .rev()
        .find(|k| basis.starts_with(k))
        .unwrap_or(basis)
}

/// Containment and response, what worked, open questions, impact and exposed credentials.
fn response(r: &Review) -> Vec<Block> {
    let s = &r.story;
    let mut b = Vec::new();
    if is_benign(r) && s.response.is_empty() {
        return b;
    }
    b.push(Block::Heading(2, "Containment and response".into()));
    if s.response.is_empty() {
        b.push(Block::Para(
            "No containment or remediation action is recorded in the incident (comments, evidence status, automatic actions)."
                .into(),
        ));
    } else {
        let rows = s
            .response
            .iter()
            .map(|a| {
                let mut what = a.action.clone();
                match a.kind.as_str() {
                    "partial" => what += " — partial containment",
                    "full" => what += " — full containment",
                    _ => {}
                }
                vec![when(&a.at, &a.at_latest), what, a.by.clone(), short_basis(&a.basis).to_owned()]
            })
            .collect();
        b.push(Block::Table(["when (UTC)", "what", "by", "basis"].map(String::from).to_vec(), rows));
    }
    let c = &r.metrics.containment;
    let on = |p: &ContainmentPoint| {
        if p.entities.is_empty() { String::new() } else { format!(" of {}", p.entities.join(", ")) }
    };
    // "at 10-21 00:25", or "at a time not recorded (by 10-22 22:05)".
    let at_when = |p: &ContainmentPoint| match p.at {
        Some(t) => format!("at {}", short(&t)),
        None => format!("at a {}", when(&p.at, &p.at_latest)),
    };
    let statement = match (&c.partial, &c.full) {
        // A false positive had nothing to contain: the remediation rows say what was done.
        (None, None) if is_benign(r) => None,
        (Some(p), Some(f)) => Some(format!(
            "Partial containment{} {} ({}); full containment{} {} ({}).",
            on(p),
            at_when(p),
            short_basis(&p.basis),
            on(f),
            at_when(f),
            short_basis(&f.basis)
        )),
        (None, Some(f)) => Some(format!("Full containment{} {} ({}).", on(f), at_when(f), short_basis(&f.basis))),
        (Some(p), None) => Some(format!(
            "Partial containment only{} {} ({}); full containment of the entry point and the accounts is not recorded.",
            on(p),
            at_when(p),
            short_basis(&p.basis)
        )),
        (None, None) => Some("Containment: not recorded.".into()),
    };
    b.extend(statement.map(Block::Para));
    let impact = impact_lines(r);
    if !impact.is_empty() {
        b.push(Block::Heading(3, "Impact".into()));
        b.push(Block::Bullets(impact));
    }
    if !s.exposed_credentials.is_empty() {
        b.push(Block::Heading(3, "Exposed credentials".into()));
        b.push(Block::Bullets(
            s.exposed_credentials
                .iter()
                .map(|e| {
                    let mut line = e.how.clone();
                    if let Some(h) = &e.host {
                        line += &format!(" on {h}");
                    }
                    if let Some(t) = &e.at {
                        line += &format!(" at {}", short(t));
                    }
                    if let Some(a) = &e.artefact {
                        line += &format!(", to {a}");
                    }
                    line += &format!(" ({})", e.technique);
                    if !e.accounts.is_empty() {
                        line += &format!("; accounts known exposed: {}", e.accounts.join(", "));
                    }
                    line
                })
                .collect(),
        ));
    }
    if !s.what_worked.is_empty() {
        b.push(Block::Heading(3, "What worked".into()));
        b.push(Block::Bullets(s.what_worked.iter().map(|n| n.text.clone()).collect()));
    }
    if !s.open_questions.is_empty() {
        b.push(Block::Heading(3, "Open questions (from gaps in the data)".into()));
        b.push(Block::Bullets(
            s.open_questions
                .iter()
                .map(|q| {
                    if q.evidence.is_empty() {
                        q.question.clone()
                    } else {
                        format!("{} (evidence: {})", q.question, q.evidence.join("; "))
                    }
                })
                .collect(),
        ));
    }
    b
}

fn impact_lines(r: &Review) -> Vec<String> {
    if is_benign(r) {
        return vec![];
    }
    let im = &r.story.impact;
    let mut out = Vec::new();
    if !im.effects.is_empty() || !im.hosts.is_empty() {
        let mut line = im.effects.join(", ");
        if !im.hosts.is_empty() {
            line += &format!(" on {}", im.hosts.join(", "));
        }
        out.push(line.trim().to_owned());
    }
    if let Some(w) = &im.outage {
        out.push(match w.end {
            Some(e) => {
                format!("Outage: from {} to {} ({}), {}", short(&w.start), short(&e), duration(w.duration_s), w.basis)
            }
            None => format!("Outage: from {}; end not recorded", short(&w.start)),
        });
    }
    let d = &im.data_exposed;
    match d.state.as_str() {
        "" => {}
        "none_observed" => out.push("Data exposed: none observed in the alerts or comments.".into()),
        state => {
            let mut line = format!("Data exposed ({}): {}", state.replace('_', " "), d.what.join(", "));
            line += &format!("; volume {}", d.volume.as_deref().unwrap_or("not recorded"));
            out.push(line);
        }
    }
    if let Some(s) = im.exfiltration_to_legal_s {
        out.push(format!("Exfiltration alert → legal informed: {}", duration(Some(s))));
    }
    if let Some(e) = &im.extortion {
        out.push(format!("Extortion: {e}"));
    }
    if !im.not_recorded.is_empty() {
        out.push(format!("Not recorded: {}", im.not_recorded.join(", ")));
    }
    out
}

/// The scope: entities by kind, the most-named first, and the products that saw them.
fn scope(r: &Review) -> Vec<Block> {
    let i = &r.incident;
    if i.entities.is_empty() && i.products.is_empty() {
        return vec![];
    }
    let mut b = vec![Block::Heading(2, "Scope".into())];
    if let Some(counts) = entity_counts(r) {
        b.push(Block::Para(counts));
        let rows = i
            .entities
            .iter()
            .take(12)
            .map(|e| {
                vec![
                    e.kind.replace('_', " "),
                    e.name.clone(),
                    e.verdict.clone().unwrap_or_default(),
                    e.remediation_status.clone().filter(|s| s != "none").unwrap_or_default(),
                    e.roles.join(", "),
                    e.alerts.len().to_string(),
                ]
            })
            .collect();
        b.push(Block::Table(
            ["kind", "name", "verdict", "remediation", "roles", "alerts"].map(String::from).to_vec(),
            rows,
        ));
        if i.entities.len() > 12 {
            b.push(Block::Para(format!("{} more entities in the JSON (incident.entities).", i.entities.len() - 12)));
        }
    }
    b.extend(seen_by(r).map(Block::Para));
    b
}

/// "Entities: 3 device, 1 user.", the most-named kind first; `None` without entities.
fn entity_counts(r: &Review) -> Option<String> {
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for e in &r.incident.entities {
        match kinds.iter_mut().find(|(k, _)| *k == e.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((&e.kind, 1)),
        }
    }
    let counts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {}", k.replace('_', " "))).collect();
    (!counts.is_empty()).then(|| format!("Entities: {}.", counts.join(", ")))
}

/// "Seen by: Microsoft Defender for Endpoint (11 alerts), …"; `None` without products.
fn seen_by(r: &Review) -> Option<String> {
    let p: Vec<String> = r
        .incident
        .products
        .iter()
        .map(|p| format!("{} ({} alert{})", p.name, p.alerts, if p.alerts == 1 { "" } else { "s" }))
        .collect();
    (!p.is_empty()).then(|| format!("Seen by: {}.", p.join(", ")))
}

/// The first entries in order, with long silences shown as rows of their own: the hours
/// between an alert and the first action are the review's most important fact.
fn timeline(r: &Review) -> Vec<Block> {
    if r.timeline.is_empty() {
        return vec![];
    }
    let mut b = vec![Block::Heading(2, "Timeline (UTC)".into())];
    let (gaps, longest) = silences(r);
    let mut rows = Vec::new();
    for (k, e) in r.timeline.iter().enumerate().take(TIMELINE_SHOWN) {
        rows.push(vec![short(&e.at), e.text.clone()]);
        if let Some(&g) = gaps.get(k)
            && g >= SILENCE_S
            && k + 1 < TIMELINE_SHOWN
        {
            let mark = if Some(k) == longest { " — the longest silence" } else { "" };
            rows.push(vec![String::new(), format!("… {} with nothing recorded{mark} …", duration(Some(g)))]);
        }
    }
    b.push(Block::Table(["time", "what"].map(String::from).to_vec(), rows));
    let mut notes = Vec::new();
    if r.timeline.len() > TIMELINE_SHOWN {
        notes.push(format!("{} more entries in the JSON (timeline).", r.timeline.len() - TIMELINE_SHOWN));
    }
    if r.timeline_untimed > 0 {
        notes.push(format!("{} entries have no recorded time and are not placed.", r.timeline_untimed));
    }
    if !notes.is_empty() {
        b.push(Block::Para(notes.join(" ")));
    }
    b
}

/// The seconds between each timeline entry and the next, and the entry after which the longest
/// silence of four hours or more since the first alert begins.
fn silences(r: &Review) -> (Vec<i64>, Option<usize>) {
    let first_alert = r.metrics.first_alert;
    let gaps: Vec<i64> = r.timeline.windows(2).map(|w| (w[1].at - w[0].at).num_seconds()).collect();
    let longest = gaps
        .iter()
        .enumerate()
        .filter(|(k, _)| first_alert.is_some_and(|f| r.timeline[*k].at >= f))
        .max_by_key(|(_, g)| **g)
        .filter(|(_, g)| **g >= SILENCE_S)
        .map(|(k, _)| k);
    (gaps, longest)
}

/// Every measure with its value and where it came from.
fn times(r: &Review) -> Vec<Block> {
    let m = &r.metrics;
    let basis = |k: &str| m.basis.get(k).cloned().unwrap_or_default();
    let value = |v: Option<i64>, at_most: Option<i64>| match (v, at_most) {
        (Some(v), _) => duration(Some(v)),
        (None, Some(a)) => format!("not recorded; at most {}", duration(Some(a))),
        (None, None) => "not recorded".into(),
    };
    let mut rows = vec![
        vec![
            "time to detect (first activity → first alert)".into(),
            value(m.time_to_detect_s, None),
            basis("time_to_detect_s"),
        ],
        vec![
            "time to acknowledge (first alert → first recorded human action)".into(),
            value(m.time_to_acknowledge_s, None),
            basis("time_to_acknowledge_s"),
        ],
        vec![
            "time to contain (first alert → first containment)".into(),
            value(m.time_to_contain_s, None),
            basis("time_to_contain_s"),
        ],
        vec![
            "dwell time (first activity → full containment)".into(),
            value(m.dwell_time_s, m.dwell_time_at_most_s),
            basis("dwell_time_s"),
        ],
        vec![
            "time to resolve (created → resolved)".into(),
            value(m.time_to_resolve_s, None),
            basis("time_to_resolve_s"),
        ],
    ];
    if is_benign(r) {
        // Nothing was attacked: containment and dwell would only say "not recorded".
        rows.retain(|row| !row[0].starts_with("time to contain") && !row[0].starts_with("dwell"));
    }
    if let Some(w) = &r.story.impact.outage {
        rows.push(vec!["outage (impact → restore recorded)".into(), value(w.duration_s, None), w.basis.clone()]);
    }
    if let Some(s) = r.story.impact.exfiltration_to_legal_s {
        rows.push(vec!["exfiltration alert → legal informed".into(), duration(Some(s)), "alert, comment".into()]);
    }
    let mut b = vec![Block::Heading(2, "Times".into())];
    b.push(Block::Table(["measure", "value", "basis"].map(String::from).to_vec(), rows));
    if let Some(p) = m.observation_precision_s {
        b.push(Block::Para(format!(
            "Observed transitions are timed to within {} (the interval between the polls that saw them).",
            duration(Some(p))
        )));
    }
    if !r.unattended_alerts.is_empty() {
        b.push(Block::Heading(3, "Alerts left unattended".into()));
        let rows = r
            .unattended_alerts
            .iter()
            .map(|u| {
                vec![
                    u.title.clone(),
                    u.severity.clone(),
                    short(&u.created),
                    u.acted_on.as_ref().map_or("none before resolution".into(), short),
                    duration(Some(u.delay_s)),
                ]
            })
            .collect();
        b.push(Block::Table(
            ["alert", "severity", "raised", "first action", "waited"].map(String::from).to_vec(),
            rows,
        ));
    }
    b
}

fn similar(r: &Review) -> Vec<Block> {
    let s = &r.story;
    if s.similar_incidents.is_empty() && s.recurring.is_none() {
        return vec![];
    }
    let mut b = vec![Block::Heading(2, "Similar earlier incidents".into())];
    if let Some(rec) = &s.recurring {
        b.push(Block::Strong(format!("Recurring — {}", rec.note)));
    }
    b.push(Block::Bullets(
        s.similar_incidents
            .iter()
            .map(|p| {
                let mut shared = Vec::new();
                if !p.shared_techniques.is_empty() {
                    shared.push(format!("techniques {}", p.shared_techniques.join(", ")));
                }
                if !p.shared_entities.is_empty() {
                    shared.push(format!("entities {}", p.shared_entities.join(", ")));
                }
                if !p.shared_titles.is_empty() {
                    shared.push(format!("alerts “{}”", p.shared_titles.join("”, “")));
                }
                format!(
                    "Incident {} “{}” ({}){}: shares {}",
                    p.id,
                    p.title,
                    ts(&p.created),
                    if p.same_way_in { ", same way in" } else { "" },
                    shared.join("; ")
                )
            })
            .collect(),
    ));
    b
}

/// ATT&CK: the attack chain, blind stages, late detections, knowledge gaps, mitigations and
/// Microsoft 365 controls.
fn detection(r: &Review, hunts: Hunts) -> Vec<Block> {
    let mut b = attack_chain(r);
    b.extend(detection_gaps(r, hunts));
    b
}

/// The techniques in the order first seen, the stages as a strip, and the stages a reader might
/// expect blind with why they are not.
fn attack_chain(r: &Review) -> Vec<Block> {
    let mut b = vec![Block::Heading(2, "Attack chain".into())];
    let mut rows: Vec<Vec<String>> = r
        .techniques
        .iter()
        .map(|t| {
            vec![
                ts(&t.first_seen),
                t.id.clone(),
                t.name.clone().unwrap_or_else(|| "(unknown to ATT&CK)".into()),
                t.tactics.join(", "),
                technique_notes(t),
                alert_titles(r, &t.alerts),
            ]
        })
        .collect();
    rows.sort();
    b.push(Block::Table(
        ["first seen", "technique", "name", "tactics", "notes", "alerts"].map(String::from).to_vec(),
        rows,
    ));
    b.push(Block::Para(
        r.tactics
            .iter()
            .map(|t| {
                let mark = match t.state {
                    StageState::Observed => "●",
                    StageState::Blind => "◌ BLIND",
                    StageState::Outside => "·",
                };
                format!("{} {mark}", t.shortname)
            })
            .collect::<Vec<_>>()
            .join(" → "),
    ));
    // A stage a reader might expect blind, and why it is not (an RDP session is the channel).
    for t in r.tactics.iter().filter(|t| t.state != StageState::Blind) {
        if let Some(why) = &t.reason {
            b.push(Block::Para(format!("{} is not a blind stage: {why}", t.name)));
        }
    }
    b
}

/// Coverage, blind stages, late detections, knowledge gaps, mitigations and controls.
fn detection_gaps(r: &Review, hunts: Hunts) -> Vec<Block> {
    let mut b = gaps::coverage(r);
    b.extend(gaps::blind_stages(r, hunts));
    if !r.gaps.late_detections.is_empty() {
        b.push(Block::Heading(2, "Late detections".into()));
        b.push(Block::Bullets(
            r.gaps
                .late_detections
                .iter()
                .map(|l| {
                    format!(
                        "“{}”: raised {}, {} after the activity began ({})",
                        l.title,
                        short(&l.created),
                        duration(Some(l.delay_s)),
                        short(&l.first_activity)
                    )
                })
                .collect(),
        ));
    }
    let mut gaps: Vec<String> = Vec::new();
    // Offline, what is new to the team cannot be known: said once, for a review that would
    // otherwise have listed techniques met for the first time.
    if !r.basis.history_recorded && !is_benign(r) && r.techniques.iter().any(|t| t.name.is_some()) {
        gaps.push(NO_HISTORY.into());
    }
    gaps.extend(r.knowledge_gaps.iter().map(|g| knowledge_line(r, g)));
    if !gaps.is_empty() {
        b.push(Block::Heading(2, "Knowledge gaps".into()));
        b.push(Block::Bullets(gaps));
    }
    if !r.mitigations.is_empty() {
        b.push(Block::Heading(2, "Mitigations".into()));
        b.push(Block::Bullets(
            r.mitigations
                .iter()
                .take(8)
                .map(|m| format!("{} {} — {}", m.id, m.name, m.techniques.join(", ")))
                .collect(),
        ));
    }
    if !r.controls.is_empty() {
        let heading = match &r.basis.licence {
            Some(l) => format!("Microsoft 365 controls available with {l}"),
            None => "Microsoft 365 controls".into(),
        };
        b.push(Block::Heading(2, heading));
        b.push(Block::Bullets(
            r.controls
                .iter()
                .take(8)
                .map(|c| {
                    let uses: Vec<String> =
                        c.techniques.iter().map(|u| format!("{} {} ({})", u.category, u.technique, u.score)).collect();
                    format!(
                        "{} [{}] {} — {}",
                        c.capability_id,
                        c.licence.as_deref().unwrap_or("-"),
                        c.description,
                        uses.join(", ")
                    )
                })
                .collect(),
        ));
    }
    b
}

fn technique_notes(t: &TechniqueFinding) -> String {
    if t.status == TechniqueStatus::Unknown {
        return "unknown ID".into();
    }
    let mut v = Vec::new();
    if t.status != TechniqueStatus::Active {
        v.push(format!("received as {}", t.received_ids.join(", ")));
    }
    if !t.products.is_empty() {
        v.push(format!("seen by {}", t.products.join(", ")));
    }
    v.join("; ")
}

fn attribution(r: &Review) -> Vec<Block> {
    // Nothing listed: said only when attribution was assessed and nothing cleared the bar (a
    // false positive's review is not assessed, and says so with the gaps).
    if r.attribution.is_empty() && r.attribution_note != crate::review::NO_RESEMBLANCE {
        return vec![];
    }
    let mut b = vec![
        Block::Heading(2, "Attribution hypothesis (below the fold)".into()),
        Block::Para(r.attribution_note.clone()),
    ];
    if !r.attribution.is_empty() {
        b.push(Block::Bullets(r.attribution.iter().map(candidate).collect()));
    }
    b
}

/// One candidate: who, how sure, the evidence for, the case against.
pub fn candidate(c: &crate::review::model::Candidate) -> String {
    let kind = match c.kind {
        crate::review::CandidateKind::Group => "group".to_owned(),
        crate::review::CandidateKind::Campaign if c.attributed_to.is_empty() => "campaign".to_owned(),
        crate::review::CandidateKind::Campaign => format!("campaign attributed to {}", c.attributed_to.join(", ")),
    };
    let mut evidence = Vec::new();
    if let Some(a) = &c.actor_match {
        evidence.push(format!("alerts name the actor \"{a}\""));
    }
    if !c.software.is_empty() {
        let named: Vec<String> =
            c.software.iter().map(|s| format!("{} {} (named as \"{}\")", s.id, s.name, s.matched)).collect();
        evidence.push(format!("uses {}", named.join(", ")));
    }
    if !c.shared_techniques.is_empty() {
        evidence.push(format!(
            "shares {} of the incident's techniques (strength {:.2}): {}",
            c.shared_techniques.len(),
            c.score,
            c.shared_techniques.join(", ")
        ));
    }
    if !c.techniques_via_software.is_empty() {
        evidence.push(format!(
            "{} more through the software it uses: {}",
            c.techniques_via_software.len(),
            c.techniques_via_software.join(", ")
        ));
    }
    let mut s = format!("{} {} ({kind}) — confidence {}.", c.id, c.name, c.confidence.as_str());
    if !evidence.is_empty() {
        s.push_str(&format!(" For: {}.", evidence.join("; ")));
    }
    if !c.against.is_empty() {
        s.push_str(&format!(" Against: {}", c.against.join(" ")));
    }
    s
}

/// For analysts: the comments as recorded, the alerts with their products.
fn appendix(r: &Review) -> Vec<Block> {
    let mut b = Vec::new();
    if !r.alerts.is_empty() {
        b.push(Block::Heading(2, "Alerts".into()));
        let rows = r
            .alerts
            .iter()
            .map(|a| {
                vec![
                    a.created.as_ref().map_or("—".into(), short),
                    a.title.clone(),
                    a.severity.clone(),
                    a.product.clone(),
                    a.techniques.join(", "),
                ]
            })
            .collect();
        b.push(Block::Table(
            ["raised (UTC)", "alert", "severity", "detected by", "techniques"].map(String::from).to_vec(),
            rows,
        ));
    }
    if !r.incident.comments.is_empty() {
        b.push(Block::Heading(2, "Comments".into()));
        b.push(Block::Bullets(comment_lines(r)));
    }
    b
}

/// Each comment as recorded: when, who, what.
fn comment_lines(r: &Review) -> Vec<String> {
    r.incident
        .comments
        .iter()
        .map(|c| {
            format!(
                "{} {}: {}",
                c.at.as_ref().map_or("time not recorded".into(), short),
                c.author.as_deref().unwrap_or("author not recorded"),
                c.text
            )
        })
        .collect()
}

/// The knowledge-gap line of a review made without the organisation's recorded history.
pub const NO_HISTORY: &str = "No history of earlier reviews: what is new to the team is not assessed (offline review).";

fn knowledge_line(r: &Review, g: &KnowledgeGap) -> String {
    match g {
        KnowledgeGap::FirstSeen { technique, name } => format!("First time for this organisation: {technique} {name}"),
        KnowledgeGap::UnmappedAlert { alert: _, title, category } => format!(
            "Alert “{title}” has no ATT&CK mapping{}",
            category.as_ref().map(|c| format!(" (category {c})")).unwrap_or_default()
        ),
        KnowledgeGap::UnknownTechnique { received, alerts } => {
            format!("Unknown technique ID \"{received}\" in {}", alert_titles(r, alerts))
        }
        KnowledgeGap::OutdatedId { received, current, alerts } => match current {
            // Reviews stored before deprecated IDs were told apart name the ID as its own current.
            Some(c) if !c.eq_ignore_ascii_case(received.trim()) => {
                format!("Outdated technique ID {received} (now {c}) in {}", alert_titles(r, alerts))
            }
            _ => format!(
                "Deprecated technique ID {received} (ATT&CK no longer maintains it; no replacement) in {}",
                alert_titles(r, alerts)
            ),
        },
        // Not produced any more; kept for reviews stored before.
        KnowledgeGap::NoMitigation { technique, name } => format!("ATT&CK lists no mitigation for {technique} {name}"),
        KnowledgeGap::NoDetectionData { technique, name } => {
            format!("ATT&CK has no detection data for {technique} {name}")
        }
    }
}

pub fn text(r: &Review) -> String {
    blocks_text(outline(r, Hunts::Inline))
}

/// The plain-text form, as printed on a terminal and sent as an e-mail's text part. Every text
/// that comes from the incident or the catalog is escaped ([`crate::text::printable`]): an
/// ESC, an OSC 8 link, a NUL, a U+202E or a newline in an alert title shows as `\u{..}`
/// instead of acting on the terminal or starting a line of its own. The format's own line
/// structure is the only place a newline comes from.
pub(crate) fn blocks_text(blocks: Vec<Block>) -> String {
    use crate::text::printable;
    let mut s = String::new();
    for block in blocks {
        match block {
            Block::Heading(1, t) => {
                let t = printable(&t);
                s += &format!("{t}\n{}\n", "=".repeat(t.chars().count().min(100)));
            }
            Block::Heading(2, t) => {
                let t = printable(&t);
                s += &format!("\n{t}\n{}\n", "-".repeat(t.chars().count()));
            }
            Block::Heading(_, t) => s += &format!("\n{}:\n", printable(&t)),
            Block::Para(p) | Block::Strong(p) => s += &format!("{}\n", printable(&p)),
            // Indented, one line at a time: a query's own newlines are its structure.
            Block::Code(code) => code.lines().for_each(|l| s += &format!("      {}\n", printable(l))),
            Block::Bullets(items) => items.iter().for_each(|i| s += &format!("  - {}\n", printable(i))),
            Block::Numbered(items) => {
                items.iter().enumerate().for_each(|(n, i)| s += &format!("  {}. {}\n", n + 1, printable(i)))
            }
            Block::Table(head, rows) => {
                let rows: Vec<Vec<String>> =
                    rows.iter().map(|r| r.iter().map(|c| printable(c).into_owned()).collect()).collect();
                // A column is as wide as its longest word (an ID, a path) and at most 48
                // characters otherwise: longer cells wrap at spaces, never mid-word.
                let widths: Vec<usize> = (0..head.len())
                    .map(|c| {
                        let cells = || rows.iter().map(|r| r[c].as_str()).chain([head[c].as_str()]);
                        let longest_word = cells().flat_map(str::split_whitespace).map(|w| w.chars().count()).max();
                        let longest = cells().map(|x| x.chars().count()).max().unwrap_or(0);
                        // The last column (the text of a row) may run wider.
                        let cap = if c + 1 == head.len() { 96 } else { 48 };
                        longest.min(cap).max(longest_word.unwrap_or(0))
                    })
                    .collect();
                let line = |cells: &[String]| {
                    let wrapped: Vec<Vec<String>> = cells.iter().zip(&widths).map(|(c, w)| wrap(c, *w)).collect();
                    let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
                    (0..height)
                        .map(|k| {
                            wrapped
                                .iter()
                                .zip(&widths)
                                .map(|(c, w)| format!("{:w$}", c.get(k).map_or("", String::as_str), w = w))
                                .collect::<Vec<_>>()
                                .join("  ")
                                .trim_end()
                                .to_owned()
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                s += &format!("{}\n", line(&head));
                for r in &rows {
                    s += &format!("{}\n", line(r));
                }
            }
        }
    }
    s
}

/// Splits `s` into lines of at most `w` characters at spaces; a word longer than `w` stays
/// whole on its own line.
fn wrap(s: &str, w: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > w {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// Escapes what Markdown would interpret, so that an alert title cannot inject links, images
/// or HTML into a ticket.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // `(` only means something after `]`, `#` and `-` only at the start of a line: escaping
    // `[`, `]` and a leading character is enough, and keeps the text readable as plain text.
    if s.starts_with(['#', '-', '+', '=']) {
        out.push('\\');
    }
    for c in s.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|') {
            out.push('\\');
        }
        if c == '\n' || c == '\r' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// The longest run of `c` in `s`.
fn longest_run(s: &str, c: char) -> usize {
    s.split(|x| x != c).map(str::len).max().unwrap_or(0)
}

pub fn markdown(r: &Review) -> String {
    blocks_markdown(outline(r, Hunts::Inline))
}

pub(crate) fn blocks_markdown(blocks: Vec<Block>) -> String {
    let mut s = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, t) => s += &format!("{} {}\n\n", "#".repeat(level as usize), md_escape(&t)),
            Block::Para(p) => s += &format!("{}\n\n", md_escape(&p)),
            Block::Strong(p) => s += &format!("**{}**\n\n", md_escape(&p)),
            Block::Code(code) => {
                // A fence longer than any run of backticks in the query (an entity value may
                // hold some) cannot be closed by it.
                let fence = "`".repeat(longest_run(&code, '`').max(2) + 1);
                s += &format!("{fence}kusto\n{}\n{fence}\n\n", code.replace('\r', ""));
            }
            Block::Bullets(items) => {
                items.iter().for_each(|i| s += &format!("- {}\n", md_escape(i)));
                s += "\n";
            }
            Block::Numbered(items) => {
                items.iter().enumerate().for_each(|(n, i)| s += &format!("{}. {}\n", n + 1, md_escape(i)));
                s += "\n";
            }
            Block::Table(head, rows) => {
                s += &format!("| {} |\n", head.iter().map(|h| md_escape(h)).collect::<Vec<_>>().join(" | "));
                s += &format!("|{}\n", "---|".repeat(head.len()));
                for r in rows {
                    s += &format!("| {} |\n", r.iter().map(|c| md_escape(c)).collect::<Vec<_>>().join(" | "));
                }
                s += "\n";
            }
        }
    }
    s
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The review as the e-mail's HTML part (the built-in templates; notification id "preview"):
/// what `hindsight review --format html` prints is what a destination sends.
pub fn html(r: &Review) -> String {
    match crate::notify::templates::Templates::builtin().and_then(|t| t.review(r, "preview")) {
        Ok(m) => m.html,
        // The built-in templates are tested to render every review; should one ever fail,
        // the plain document says everything the e-mail would.
        Err(e) => {
            tracing::error!("{e}");
            html_page("Post-incident review", &html_fragment(r))
        }
    }
}

pub(crate) fn html_page(title: &str, fragment: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body style=\"font-family:Segoe UI,Arial,sans-serif;font-size:14px\">\n{fragment}</body></html>\n",
        html_escape(title)
    )
}

/// The review as HTML elements, for embedding in a page or an e-mail template; everything from
/// the incident is escaped.
pub fn html_fragment(r: &Review) -> String {
    blocks_html(outline(r, Hunts::Appendix))
}

pub(crate) fn blocks_html(blocks: Vec<Block>) -> String {
    let mut s = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, t) => s += &format!("<h{level}>{}</h{level}>\n", html_escape(&t)),
            Block::Para(p) => s += &format!("<p>{}</p>\n", html_escape(&p)),
            Block::Strong(p) => s += &format!("<p><strong>{}</strong></p>\n", html_escape(&p)),
            Block::Code(code) => {
                s += &format!(
                    "<pre style=\"white-space:pre-wrap;font-family:Consolas,monospace;font-size:12px\">{}</pre>\n",
                    html_escape(&code)
                )
            }
            Block::Bullets(items) => {
                s += "<ul>\n";
                items.iter().for_each(|i| s += &format!("<li>{}</li>\n", html_escape(i)));
                s += "</ul>\n";
            }
            Block::Numbered(items) => {
                s += "<ol>\n";
                items.iter().for_each(|i| s += &format!("<li>{}</li>\n", html_escape(i)));
                s += "</ol>\n";
            }
            Block::Table(head, rows) => {
                s += "<table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\">\n<tr>";
                head.iter().for_each(|h| s += &format!("<th>{}</th>", html_escape(h)));
                s += "</tr>\n";
                for r in rows {
                    s += "<tr>";
                    r.iter().for_each(|c| s += &format!("<td>{}</td>", html_escape(c)));
                    s += "</tr>\n";
                }
                s += "</table>\n";
            }
        }
    }
    s
}
