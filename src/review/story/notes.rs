//! What worked (facts with their evidence: a review that only lists failures is read as blame)
//! and the open questions (gaps in the data turned into questions by rules, each naming its
//! evidence).

use super::{Ctx, duration, short_host, short_time, some_of, uniq};
use crate::review::model::{Note, OpenQuestion, Story};

/// An alert raised within this long of its activity "fired within minutes".
const PROMPT_S: i64 = 15 * 60;

pub(in crate::review) fn what_worked(c: &Ctx) -> Vec<Note> {
    let mut out = Vec::new();
    prompt_alerts(c, &mut out);
    // In a false or benign positive, an automatic response removed something legitimate: not a
    // success (the tuning follow-up says to restore it).
    if !c.real {
        acknowledged(c, &mut out);
        return out;
    }
    for r in c.review.story.response.iter().filter(|r| r.by == "automatic") {
        let what = match r.kind.as_str() {
            "partial" | "full" => "contained",
            "remediation" => "remediated",
            _ => "acted on",
        };
        let on = if r.entities.is_empty() { String::new() } else { format!(" ({})", some_of(&r.entities, 4)) };
        out.push(Note {
            text: format!("Automatic response {what}{on}: {}.", r.action),
            evidence: vec![r.basis.clone()],
        });
    }
    // One note per status, each entity named once (two copies of one message are one line).
    for verb in ["prevented", "blocked", "remediated"] {
        let hit: Vec<_> = c
            .review
            .incident
            .entities
            .iter()
            .filter(|e| e.remediation_status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(verb)))
            .collect();
        if hit.is_empty() {
            continue;
        }
        let names = uniq(hit.iter().map(|e| format!("{} {}", e.kind.replace('_', " "), e.name)).collect());
        let alerts = uniq(hit.iter().flat_map(|e| e.alerts.iter().map(|a| c.title(a))).collect());
        out.push(Note {
            text: format!("Defender {verb} {} (evidence remediation status).", super::and_list(&names)),
            evidence: alerts,
        });
    }
    acknowledged(c, &mut out);
    if let Some(s) = c.mentions(&["backup"]).into_iter().find(|s| super::mentions(&s.text, &["restor", "recover"])) {
        out.push(Note { text: format!("Recovery from backups recorded: \"{}\"", s.text), evidence: vec![s.source()] });
    }
    out
}

/// Alerts that fired within minutes of the activity they report.
fn prompt_alerts(c: &Ctx, out: &mut Vec<Note>) {
    let timed: Vec<_> = c
        .incident
        .alerts
        .iter()
        .filter_map(|a| Some((a, (a.created? - a.first_activity?).num_seconds())))
        .filter(|(_, d)| *d >= 0)
        .collect();
    let prompt: Vec<String> = timed.iter().filter(|(_, d)| *d <= PROMPT_S).map(|(a, _)| a.title.clone()).collect();
    if prompt.is_empty() {
        return;
    }
    let text = if prompt.len() == timed.len() {
        format!("Every alert whose activity time is recorded ({}) fired within 15 minutes of it.", timed.len())
    } else {
        format!("{} of the {} alerts with an activity time fired within 15 minutes of it.", prompt.len(), timed.len())
    };
    out.push(Note { text, evidence: uniq(prompt) });
}

/// A first recorded sign of a human within the severity's target (1 h high, 4 h medium).
fn acknowledged(c: &Ctx, out: &mut Vec<Note>) {
    let target = match c.review.incident.severity.as_str() {
        "high" => 3_600,
        "medium" => 4 * 3_600,
        _ => return,
    };
    let Some(ack) = c.review.metrics.time_to_acknowledge_s.filter(|s| *s <= target) else { return };
    let basis = c.review.metrics.basis.get("time_to_acknowledge_s").cloned().unwrap_or_else(|| "metrics".to_owned());
    out.push(Note {
        text: format!(
            "The first recorded sign of an analyst came {} after the first alert, within the {} target for {} severity.",
            duration(ack),
            duration(target),
            c.review.incident.severity
        ),
        evidence: vec![basis],
    });
}

pub(in crate::review) fn open_questions(c: &Ctx, story: &Story) -> Vec<OpenQuestion> {
    if !c.real {
        return vec![];
    }
    let mut out = Vec::new();
    let q = |rule: &str, question: String, evidence: Vec<String>| OpenQuestion {
        rule: rule.to_owned(),
        question,
        evidence,
    };
    let ia = &story.initial_access;
    if ia.detected {
        if let Some(entry) = ia.first_activity {
            let before: Vec<String> = c.before_way_in(ia).iter().map(|a| a.title.clone()).collect();
            if !before.is_empty() {
                let question = format!(
                    "What happened before the way in was seen? {} began before the first Initial Access activity ({}).",
                    some_of(&quoted(&before), 3),
                    short_time(entry)
                );
                out.push(q("activity_before_way_in", question, uniq(before)));
            }
        }
    } else if let Some(first) = c.first_alert_by_activity() {
        let at = first.first_activity.or(first.created).map_or_else(|| "time not recorded".to_owned(), short_time);
        let question = format!(
            "How did the attacker get in? No alert maps to Initial Access; the first recorded activity is \"{}\" ({at}).",
            first.title
        );
        out.push(q("no_initial_access", question, vec![first.title.clone()]));
    }
    activity_before_entry(c, story, &mut out);
    for a in c.tactic_alerts("lateral-movement") {
        // A mailbox is the account of mail-borne movement (internal spearphishing is sent from
        // one): only an alert that names neither leaves the account unknown.
        if c.entities(&["user", "mailbox"], &[a]).is_empty() {
            let t = c.title(a);
            let question = format!("Which account was used to move laterally? \"{t}\" has no user evidence.");
            out.push(q("lateral_account_unknown", question, vec![t]));
        }
    }
    sign_in_after_failures(c, &mut out);
    let data = &story.impact.data_exposed;
    if !data.alerts.is_empty() && data.volume.is_none() {
        let titles: Vec<String> = data.alerts.iter().map(|a| c.title(a)).collect();
        let question = format!("How much data left? {} records no volume.", some_of(&quoted(&titles), 3));
        out.push(q("exfiltration_volume_unknown", question, uniq(titles)));
    }
    for cred in story.exposed_credentials.iter().filter(|x| x.artefact.is_some()) {
        let (Some(file), Some(host)) = (&cred.artefact, &cred.host) else { continue };
        let question = format!("Did {file} leave {host}? Its fate is not recorded.");
        out.push(q("credential_dump_fate", question, cred.alerts.iter().map(|a| c.title(a)).collect()));
    }
    if story.root_cause.is_none() && c.review.incident.classification == "truePositive" {
        let question = "What was the root cause? Neither the resolving comment nor any comment records one.".to_owned();
        out.push(q("no_root_cause", question, vec!["resolving comment".to_owned(), "comments".to_owned()]));
    }
    for (name, point) in
        [("partial", &c.review.metrics.containment.partial), ("full", &c.review.metrics.containment.full)]
    {
        if let Some(p) = point.as_ref().filter(|p| p.at.is_none() && p.basis.contains("resolving")) {
            let what = if p.entities.is_empty() { "it".to_owned() } else { some_of(&p.entities, 4) };
            let question = format!(
                "When was {what} contained ({name} containment)? Only the resolving comment mentions it, without a time."
            );
            out.push(q("containment_time_unknown", question, vec![p.basis.clone()]));
        }
    }
    out
}

/// Activity on a host before the first recorded movement to it: how was it reached?
fn activity_before_entry(c: &Ctx, story: &Story, out: &mut Vec<OpenQuestion>) {
    let lateral = c.tactic_alerts("lateral-movement");
    let ia: Vec<&str> = story.initial_access.alerts.iter().map(String::as_str).collect();
    // The hosts the attack began on were not moved to.
    let entry_hosts: Vec<String> = c.entities(&["device"], &ia).iter().map(|e| e.name.clone()).collect();
    for host in c.entities(&["device"], &lateral) {
        if entry_hosts.contains(&host.name) {
            continue;
        }
        let moved = host.alerts.iter().filter(|a| lateral.contains(&a.as_str())).filter_map(|a| c.began(a)).min();
        let Some(moved) = moved else { continue };
        let earlier = host
            .alerts
            .iter()
            .filter(|a| !lateral.contains(&a.as_str()))
            .filter_map(|a| Some((a, c.alert(a)?.first_activity?)))
            .filter(|(_, f)| *f < moved)
            .min_by_key(|(_, f)| *f);
        let Some((alert, at)) = earlier else { continue };
        let h = short_host(&host.name);
        let title = c.title(alert);
        let question = format!(
            "How was {h} reached? \"{title}\" began there at {}, {} before the first recorded movement to it ({}).",
            short_time(at),
            duration((moved - at).num_seconds()),
            short_time(moved)
        );
        out.push(OpenQuestion { rule: "activity_before_entry".into(), question, evidence: vec![title, h] });
    }
}

/// A sign-in after failed attempts with no brute-force technique alerted.
fn sign_in_after_failures(c: &Ctx, out: &mut Vec<OpenQuestion>) {
    let guessed = c.review.techniques.iter().any(|t| t.id == "T1110" || t.id.starts_with("T1110."));
    if guessed {
        return;
    }
    for a in &c.incident.alerts {
        let t = a.title.to_lowercase();
        let failed = t.contains("failed") || t.contains("unsuccessful");
        if failed && ["sign-in", "sign in", "logon", "log on", "login"].iter().any(|k| t.contains(k)) {
            let question = format!(
                "How was the password obtained? \"{}\" records failed attempts before a success; no brute-force or spraying alert (T1110) on its own.",
                a.title
            );
            out.push(OpenQuestion { rule: "sign_in_after_failures".into(), question, evidence: vec![a.title.clone()] });
        }
    }
}

fn quoted(titles: &[String]) -> Vec<String> {
    uniq(titles.to_vec()).into_iter().map(|t| format!("\"{t}\"")).collect()
}
