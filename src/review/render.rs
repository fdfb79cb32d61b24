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
    Bullets(Vec<String>),
    Numbered(Vec<String>),
    Table(Vec<String>, Vec<Vec<String>>),
}

fn ts(t: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or("—".to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

pub fn duration(secs: Option<i64>) -> String {
    match secs {
        None => "unknown".into(),
        Some(s) if s >= 86_400 => format!("{:.1} days", s as f64 / 86_400.0),
        Some(s) if s >= 3_600 => format!("{:.1} h", s as f64 / 3_600.0),
        Some(s) if s >= 60 => format!("{} min", s / 60),
        Some(s) => format!("{s} s"),
    }
}

fn outline(r: &Review) -> Vec<Block> {
    let i = &r.incident;
    let mut b = vec![Block::Heading(1, format!("Post-incident review: {}", i.title))];
    b.push(Block::Para(format!(
        "Incident {} ({}, resolution {}) · severity {} · {} / {} · owner {} · created {} · resolved {}{}",
        i.id,
        i.source,
        i.revision,
        i.severity,
        i.classification,
        i.determination,
        i.owner.as_deref().unwrap_or("unassigned"),
        ts(&i.created),
        ts(&i.resolved),
        i.url.as_ref().map(|u| format!(" · {u}")).unwrap_or_default()
    )));
    if let Some(n) = i.alerts_reviewed {
        b.push(Block::Para(format!(
            "Only the first {n} alerts of {} were reviewed (review.max_alerts): every finding below leaves the others out.",
            i.alerts
        )));
    }

    let observed = r.tactics.iter().filter(|t| t.state == StageState::Observed).count();
    let mut summary = vec![format!(
        "{} alert(s), {} ATT&CK technique(s) across {} tactic(s). Time to detect {}; time to resolve {}.",
        i.alerts,
        r.techniques.iter().filter(|t| t.name.is_some()).count(),
        observed,
        duration(r.metrics.time_to_detect_s),
        duration(r.metrics.time_to_resolve_s)
    )];
    let benign = matches!(i.classification.as_str(), "falsePositive" | "informationalExpectedActivity");
    summary.push(match &r.basis.inventory {
        _ if benign => format!(
            "Classified {}: coverage gaps and attribution are not assessed; the follow-ups are about tuning.",
            i.classification
        ),
        None => "Detection coverage not assessed: no detection inventory is configured.".into(),
        Some(_) => format!(
            "{} of the observed techniques are covered by no rule of the detection inventory.",
            r.gaps.uncovered.len()
        ),
    });
    let blind: Vec<&str> = r.gaps.blind_stages.iter().map(|s| s.name.as_str()).collect();
    if !blind.is_empty() {
        summary.push(format!("Blind stage(s), passed without any alert: {}.", blind.join(", ")));
    }
    if !r.gaps.late_detections.is_empty() {
        summary.push(format!("{} late detection(s).", r.gaps.late_detections.len()));
    }
    if !r.attribution.is_empty() {
        let top: Vec<String> =
            r.attribution.iter().take(3).map(|c| format!("{} {} ({:.2})", c.id, c.name, c.score)).collect();
        summary.push(format!("Resembles (hypothesis, not attribution): {}.", top.join(", ")));
    }
    b.push(Block::Heading(2, "Summary".into()));
    b.push(Block::Bullets(summary));

    b.push(Block::Heading(2, "Follow-ups".into()));
    if r.follow_ups.is_empty() {
        b.push(Block::Para("None.".into()));
    } else {
        b.push(Block::Numbered(
            r.follow_ups
                .iter()
                .map(|f| {
                    format!("[{}] {} — {} ({})", format!("{:?}", f.priority).to_lowercase(), f.title, f.detail, f.id)
                })
                .collect(),
        ));
    }

    b.push(Block::Heading(2, "Attack chain".into()));
    let rows: Vec<Vec<String>> = r
        .techniques
        .iter()
        .map(|t| {
            vec![
                ts(&t.first_seen),
                t.id.clone(),
                t.name.clone().unwrap_or_else(|| "(unknown to ATT&CK)".into()),
                t.tactics.join(", "),
                match (t.status, t.covered) {
                    (TechniqueStatus::Unknown, _) => "unknown ID".into(),
                    (s, c) => {
                        let mut v = Vec::new();
                        if s != TechniqueStatus::Active {
                            v.push(format!("received as {}", t.received_ids.join(", ")));
                        }
                        match c {
                            Some(true) => v.push("covered".into()),
                            Some(false) => v.push("NOT covered".into()),
                            None => {}
                        }
                        v.join("; ")
                    }
                },
                t.alerts.join(", "),
            ]
        })
        .collect();
    let mut rows = rows;
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

    if !r.gaps.blind_stages.is_empty() {
        b.push(Block::Heading(2, "Blind stages".into()));
        for s in &r.gaps.blind_stages {
            b.push(Block::Heading(3, s.name.clone()));
            b.push(Block::Bullets(
                s.likely
                    .iter()
                    .map(|l| {
                        format!(
                            "{} {} — likelihood {:.2}{}",
                            l.id,
                            l.name,
                            l.likelihood,
                            if l.used_by.is_empty() {
                                String::new()
                            } else {
                                format!("; used by {}", l.used_by.join(", "))
                            }
                        )
                    })
                    .collect(),
            ));
        }
    }
    if !r.gaps.late_detections.is_empty() {
        b.push(Block::Heading(2, "Late detections".into()));
        b.push(Block::Bullets(
            r.gaps
                .late_detections
                .iter()
                .map(|l| format!("{} \"{}\": {} after the activity began", l.alert, l.title, duration(Some(l.delay_s))))
                .collect(),
        ));
    }
    if !r.attribution.is_empty() {
        b.push(Block::Heading(2, "Attribution hypothesis".into()));
        b.push(Block::Para(r.attribution_note.clone()));
        b.push(Block::Bullets(
            r.attribution
                .iter()
                .map(|c| {
                    format!(
                        "{} {} ({:?}) {:.2} — shares {}{}",
                        c.id,
                        c.name,
                        c.kind,
                        c.score,
                        c.shared_techniques.join(", "),
                        c.actor_match.as_ref().map(|a| format!("; alerts name the actor \"{a}\"")).unwrap_or_default()
                    )
                })
                .collect(),
        ));
    }
    let gaps: Vec<String> = r.knowledge_gaps.iter().map(knowledge_line).collect();
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
        b.push(Block::Heading(2, "Microsoft 365 controls".into()));
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
    b.push(Block::Para(format!(
        "Made against ATT&CK {} {}. ATT&CK® is a registered trademark of The MITRE Corporation.",
        r.basis.attack_domain,
        r.basis.attack_version.as_deref().unwrap_or("")
    )));
    b
}

fn knowledge_line(g: &KnowledgeGap) -> String {
    match g {
        KnowledgeGap::FirstSeen { technique, name } => format!("First time for this organisation: {technique} {name}"),
        KnowledgeGap::UnmappedAlert { alert, title, category } => format!(
            "Alert {alert} \"{title}\" has no ATT&CK mapping{}",
            category.as_ref().map(|c| format!(" (category {c})")).unwrap_or_default()
        ),
        KnowledgeGap::UnknownTechnique { received, alerts } => {
            format!("Unknown technique ID \"{received}\" in {}", alerts.join(", "))
        }
        KnowledgeGap::OutdatedId { received, current, alerts } => format!(
            "Outdated technique ID {received}{} in {}",
            current.as_ref().map(|c| format!(" (now {c})")).unwrap_or_default(),
            alerts.join(", ")
        ),
        KnowledgeGap::NoMitigation { technique, name } => format!("ATT&CK lists no mitigation for {technique} {name}"),
        KnowledgeGap::NoDetectionData { technique, name } => {
            format!("ATT&CK has no detection data for {technique} {name}")
        }
    }
}

pub fn text(r: &Review) -> String {
    blocks_text(outline(r))
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
            Block::Para(p) => s += &format!("{}\n", printable(&p)),
            Block::Bullets(items) => items.iter().for_each(|i| s += &format!("  - {}\n", printable(i))),
            Block::Numbered(items) => {
                items.iter().enumerate().for_each(|(n, i)| s += &format!("  {}. {}\n", n + 1, printable(i)))
            }
            Block::Table(head, rows) => {
                let rows: Vec<Vec<String>> =
                    rows.iter().map(|r| r.iter().map(|c| printable(c).into_owned()).collect()).collect();
                let widths: Vec<usize> = (0..head.len())
                    .map(|c| {
                        rows.iter().map(|r| r[c].chars().count()).chain([head[c].len()]).max().unwrap_or(0).min(48)
                    })
                    .collect();
                let line = |cells: &[String]| {
                    cells
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{:w$}", truncate(c, *w), w = w))
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_owned()
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

fn truncate(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(w.saturating_sub(1)).collect::<String>())
    }
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

pub fn markdown(r: &Review) -> String {
    blocks_markdown(outline(r))
}

pub(crate) fn blocks_markdown(blocks: Vec<Block>) -> String {
    let mut s = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, t) => s += &format!("{} {}\n\n", "#".repeat(level as usize), md_escape(&t)),
            Block::Para(p) => s += &format!("{}\n\n", md_escape(&p)),
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

pub fn html(r: &Review) -> String {
    html_page("Post-incident review", &html_fragment(r))
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
    blocks_html(outline(r))
}

pub(crate) fn blocks_html(blocks: Vec<Block>) -> String {
    let mut s = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, t) => s += &format!("<h{level}>{}</h{level}>\n", html_escape(&t)),
            Block::Para(p) => s += &format!("<p>{}</p>\n", html_escape(&p)),
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
