//! The five summary lines a CISO reads alone: what happened, impact, data and notification,
//! the way in, detection and response. Deterministic; each says "not recorded" where the data
//! is silent, and none claims more than the data ("partial containment", never "contained";
//! "first recorded sign", never "first action").

use super::{Ctx, and_list, duration, secs, short_account, short_host, short_name, short_time, some_of, uniq, when};
use crate::review::model::{ContainmentPoint, Story};

pub(in crate::review) fn lines(c: &Ctx, story: &Story) -> Vec<String> {
    vec![what_happened(c), impact(c, story), data(c, story), way_in(c, story), detection(c, story)]
}

fn counted(n: usize, one: &str, many: &str, names: &[String]) -> String {
    let noun = if n == 1 { one } else { many };
    format!("{n} {noun} ({})", some_of(names, 3))
}

fn what_happened(c: &Ctx) -> String {
    let s = &c.review.incident;
    let hosts = uniq(c.all_entities(&["device"]).iter().map(|e| short_host(&e.name)).collect());
    let mut accounts = uniq(c.all_entities(&["user"]).iter().map(|e| short_account(&e.name)).collect());
    if accounts.is_empty() {
        accounts = uniq(c.all_entities(&["mailbox"]).iter().map(|e| short_account(&e.name)).collect());
    }
    let scope = match (hosts.is_empty(), accounts.is_empty()) {
        (true, true) => "; no host or account in the evidence".to_owned(),
        (false, true) => format!(" on {}", counted(hosts.len(), "host", "hosts", &hosts)),
        (true, false) => format!(" on {}", counted(accounts.len(), "account", "accounts", &accounts)),
        (false, false) => format!(
            " on {} and {}",
            counted(hosts.len(), "host", "hosts", &hosts),
            counted(accounts.len(), "account", "accounts", &accounts)
        ),
    };
    let tactics: Vec<String> = c
        .review
        .tactics
        .iter()
        .filter(|t| t.state == crate::review::model::StageState::Observed)
        .map(|t| t.name.to_lowercase())
        .collect();
    let reached = if tactics.is_empty() {
        "no alert maps to an ATT&CK tactic".to_owned()
    } else {
        format!("the alerts reach {}", and_list(&tactics))
    };
    let alerts = s.alerts;
    let verdict = if c.real { String::new() } else { format!("Classified {}: ", super::words(&s.classification)) };
    let plural = if alerts == 1 { "" } else { "s" };
    format!("What happened: {verdict}{} — {alerts} alert{plural}{scope}; {reached}.", s.title)
}

fn impact(c: &Ctx, story: &Story) -> String {
    if !c.real {
        return format!(
            "Impact: none — the incident was classified {}.",
            super::words(&c.review.incident.classification)
        );
    }
    let i = &story.impact;
    if i.effects.is_empty() && i.hosts.is_empty() {
        return "Impact: no impact alert (encryption, wiping, service stop, …) recorded.".to_owned();
    }
    let on =
        if i.hosts.is_empty() { " (hosts not recorded)".to_owned() } else { format!(" on {}", and_list(&i.hosts)) };
    let what = if i.effects.is_empty() { "impact alerted".to_owned() } else { and_list(&i.effects) };
    let outage = match &i.outage {
        Some(w) => match (w.end, w.duration_s) {
            (Some(end), Some(d)) => format!(
                " from {}; restore recorded {} — an outage of up to {}",
                short_time(w.start),
                short_time(end),
                duration(d)
            ),
            _ => format!(" from {}; restore not recorded", short_time(w.start)),
        },
        None => String::new(),
    };
    format!("Impact: {what}{on}{outage}.")
}

fn data(c: &Ctx, story: &Story) -> String {
    let d = &story.impact.data_exposed;
    let titles: Vec<String> = d.alerts.iter().map(|a| format!("\"{}\"", c.title(a))).collect();
    let what = if d.what.is_empty() { String::new() } else { format!(" ({})", some_of(&d.what, 2)) };
    let volume = d.volume.as_deref().map_or_else(|| "volume not recorded".to_owned(), |v| format!("volume {v}"));
    let exposed = match d.state.as_str() {
        "confirmed" => format!("exfiltration confirmed by the analysts{what}; {volume}"),
        "alerted" => {
            format!("exfiltration alerted{what} by {}, not confirmed in any comment; {volume}", some_of(&titles, 2))
        }
        _ if !c.real => return "Data: nothing exposed (not an attack).".to_owned(),
        _ => return "Data: no exfiltration alerted or recorded in the comments.".to_owned(),
    };
    let legal = match story.impact.exfiltration_to_legal_s {
        Some(s) => format!("legal or notification step recorded {} after the exfiltration alert", duration(s)),
        None if story.impact.not_recorded.iter().any(|n| n == "legal or notification") => {
            "no legal or notification step recorded".to_owned()
        }
        None => "a legal or notification step is recorded; its delay from the alert is not known".to_owned(),
    };
    format!("Data: {exposed}. {}{}.", legal[..1].to_uppercase(), &legal[1..])
}

fn way_in(c: &Ctx, story: &Story) -> String {
    let ia = &story.initial_access;
    let cause = match &story.root_cause {
        Some(r) => format!(" Analysts: \"{}\"", crate::text::clip(&r.text, 160)),
        None => " No root cause recorded.".to_owned(),
    };
    let titles: Vec<String> = ia.alerts.iter().map(|a| format!("\"{}\"", c.title(a))).collect();
    if !c.real {
        // No intrusion, so no way in: say where the activity that raised the alerts began.
        let first = if titles.is_empty() { String::new() } else { format!(" ({})", titles.join(", ")) };
        let why = story
            .outcome
            .resolving_comment
            .as_deref()
            .map(|r| format!(" Resolving comment: \"{}\"", crate::text::clip(r, 160)))
            .unwrap_or_default();
        return format!(
            "Way in: none — classified {}; the activity began {}{first}.{why}",
            super::words(&c.review.incident.classification),
            when(ia.first_activity)
        );
    }
    if ia.detected {
        let ts: Vec<String> = ia.techniques.iter().map(|t| c.technique_label(t)).collect();
        let ts = if ts.is_empty() { "Initial Access".to_owned() } else { and_list(&ts) };
        let earlier = earlier_than_way_in(c, story).map(|e| format!(" — {e}")).unwrap_or_default();
        format!("Way in: {ts} ({}), first activity {}{earlier}.{cause}", some_of(&titles, 2), when(ia.first_activity))
    } else {
        let first = if titles.is_empty() { String::new() } else { format!(" ({})", titles.join(", ")) };
        format!(
            "Way in: not detected — no alert maps to Initial Access; first recorded activity {}{first}.{cause}",
            when(ia.first_activity)
        )
    }
}

/// When another alert's activity began before the Initial Access alerts' (a BEC's fraud mail
/// maps to T1566 Phishing and comes last, hours after the password spray that let the attacker
/// in), the way in named may not be the one: say what came first and how long before. A
/// password guessed (T1110: brute force, spraying, stuffing) and then used is the likelier way
/// in, and is named as such.
fn earlier_than_way_in(c: &Ctx, story: &Story) -> Option<String> {
    let ia = &story.initial_access;
    let entry = ia.first_activity?;
    let alert = c.before_way_in(ia).into_iter().min_by_key(|a| a.first_activity)?;
    let at = alert.first_activity?;
    let guessed: Vec<String> = alert
        .mitre_techniques
        .iter()
        .filter(|t| t.to_ascii_uppercase().starts_with("T1110"))
        .map(|t| c.technique_label(&t.to_ascii_uppercase()))
        .collect();
    let ago = duration((entry - at).num_seconds());
    Some(if guessed.is_empty() {
        format!("but \"{}\" began {ago} before it, so the way in may be earlier", alert.title)
    } else {
        format!(
            "but \"{}\" ({}) began {ago} before it: a sign-in with the guessed password is the likelier way in",
            alert.title,
            and_list(&guessed)
        )
    })
}

fn detection(c: &Ctx, story: &Story) -> String {
    let m = &c.review.metrics;
    let detect = match m.time_to_detect_s {
        Some(s) => format!("first alert {} after the first recorded activity", duration(s)),
        None => "time to detect not recorded".to_owned(),
    };
    let ack = match m.time_to_acknowledge_s {
        Some(s) if m.time_to_detect_s.is_some() => {
            format!("first recorded sign of an analyst {} after it", duration(s))
        }
        Some(s) => format!("first recorded sign of an analyst {} after the first alert", duration(s)),
        None => "acknowledgement not recorded".to_owned(),
    };
    let partial = m.containment.partial.as_ref().map(|p| containment("partial containment", p, m.first_alert));
    let full = match &m.containment.full {
        Some(p) => containment("full containment", p, m.first_alert),
        None => "full containment not recorded".to_owned(),
    };
    let mut parts = vec![detect, ack];
    // A false positive or expected activity had nothing to contain.
    if c.real {
        parts.extend(partial);
        parts.push(full);
        parts.extend(impact_before_action(c, story));
    }
    let text = parts.join("; ");
    format!("Detection and response: {}{}.", text[..1].to_uppercase(), &text[1..])
}

/// Targets met can still be too slow: when the impact began before the first recorded action,
/// how long before it, and how long after the first high-severity alert.
fn impact_before_action(c: &Ctx, story: &Story) -> Option<String> {
    let m = &c.review.metrics;
    let impact = story
        .impact
        .outage
        .as_ref()
        .map(|w| w.start)
        .or_else(|| c.tactic_alerts("impact").iter().filter_map(|a| c.began(a)).min())?;
    let action = m.first_alert? + chrono::Duration::seconds(m.time_to_acknowledge_s?);
    if impact >= action {
        return None;
    }
    let high = c
        .incident
        .alerts
        .iter()
        .filter(|a| a.severity == crate::model::Severity::High)
        .filter_map(|a| a.created)
        .filter(|t| *t <= impact)
        .min();
    let mut text =
        format!("the impact began {} before the first recorded action", duration((action - impact).num_seconds()));
    if let Some(h) = high {
        text += &format!(", {} after the first high-severity alert", duration((impact - h).num_seconds()));
    }
    Some(text)
}

/// "partial containment (fs-02, sql-01) 1 h 58 min after the first alert (comment)".
fn containment(what: &str, p: &ContainmentPoint, first_alert: Option<chrono::DateTime<chrono::Utc>>) -> String {
    let names = uniq(p.entities.iter().map(|e| short_name(e)).collect());
    let on = if names.is_empty() { String::new() } else { format!(" ({})", some_of(&names, 3)) };
    match (p.at, secs(first_alert, p.at)) {
        (Some(_), Some(s)) => format!(
            "{what}{on} {} after the first alert ({})",
            duration(s),
            crate::review::render::short_basis(&p.basis)
        ),
        (Some(at), None) => {
            format!("{what}{on} at {} ({})", short_time(at), crate::review::render::short_basis(&p.basis))
        }
        (None, _) => match p.at_latest {
            Some(l) => format!(
                "{what}{on} at a time not recorded (by {} at the latest; {})",
                short_time(l),
                crate::review::render::short_basis(&p.basis)
            ),
            None => format!("{what}{on} at a time not recorded ({})", crate::review::render::short_basis(&p.basis)),
        },
    }
}
