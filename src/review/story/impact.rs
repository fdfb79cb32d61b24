//! Impact: the hosts hit and how, the outage window, the data exposed and the notification
//! position, extortion. Every fact that is not recorded is named in `not_recorded`.

use chrono::{DateTime, Utc};

use super::{Ctx, Statement, secs, short_host, uniq};
use crate::review::model::{DataExposure, Impact, Window};

/// Impact techniques in words. Only what the technique says: T1490 is recovery inhibited, not
/// "backups deleted".
const EFFECTS: &[(&str, &str, bool)] = &[
    // (technique prefix, effect, whether it takes systems or data out of service)
    ("T1486", "data encrypted", true),
    ("T1485", "data destroyed", true),
    ("T1561", "disks wiped", true),
    ("T1489", "services stopped", true),
    ("T1529", "systems shut down or rebooted", true),
    ("T1499", "endpoint denial of service", true),
    ("T1498", "network denial of service", true),
    ("T1491", "defacement", false),
    ("T1490", "system recovery inhibited", false),
    ("T1496", "resources hijacked", false),
    ("T1531", "account access removed", false),
    ("T1565", "data manipulated", false),
    ("T1657", "financial theft", false),
    ("T1667", "e-mail bombing", false),
];

const RESTORE: &[&str] =
    &["restore", "restoring", "restored", "back online", "recovered", "back in service", "service resumed"];
const EXFILTRATION: &[&str] =
    &["exfiltrat", "data was taken", "data taken", "data stolen", "data was stolen", "data left", "leaked"];
const DOWNLOADED: &[&str] = &["downloaded", "copied out", "uploaded to", "forwarded to"];
const LEGAL: &[&str] = &[
    "legal",
    "dpo",
    "data protection",
    "regulator",
    "supervisory authority",
    "counsel",
    "notification",
    "notified",
    "notify",
];
const EXTORTION: &[&str] = &["ransom note", "ransom demand", "ransom request", "extortion", "extort", "leak site"];

pub(in crate::review) fn impact(c: &Ctx) -> Impact {
    if !c.real {
        let why = format!("classified {}", c.review.incident.classification);
        return Impact {
            data_exposed: DataExposure { state: "none_observed".into(), basis: vec![why], ..Default::default() },
            ..Impact::default()
        };
    }
    let alerts = c.tactic_alerts("impact");
    let mut not_recorded = Vec::new();
    let hosts = uniq(c.entities(&["device"], &alerts).into_iter().map(|e| short_host(&e.name)).collect());
    if !alerts.is_empty() && hosts.is_empty() {
        not_recorded.push("impacted hosts".to_owned());
    }
    let mut effects = Vec::new();
    let mut disruptive = Vec::new();
    for a in &alerts {
        for t in c.techniques_of(a) {
            if let Some((_, effect, stops)) = EFFECTS.iter().find(|(p, ..)| t == *p || t.starts_with(&format!("{p}.")))
            {
                effects.push(effect_words(c, a, effect));
                if *stops {
                    disruptive.push(*a);
                }
            }
        }
    }
    let outage = outage(c, &disruptive);
    if outage.as_ref().is_some_and(|w| w.end.is_none()) {
        not_recorded.push("restore".to_owned());
    }
    let data_exposed = exposure(c);
    if data_exposed.state != "none_observed" && data_exposed.volume.is_none() {
        not_recorded.push("data volume".to_owned());
    }
    let legal = legal_step(c, &data_exposed);
    let exfiltration_to_legal_s = legal.as_ref().and_then(|(alert, l)| secs(*alert, l.at));
    if data_exposed.state != "none_observed" && legal.is_none() {
        not_recorded.push("legal or notification".to_owned());
    }
    let extortion = c.mentions(EXTORTION).first().map(|s| format!("\"{}\" ({})", s.text, s.source()));
    if extortion.is_none() && (!alerts.is_empty() || data_exposed.state != "none_observed") {
        not_recorded.push("ransom or extortion contact".to_owned());
    }
    Impact { hosts, effects: uniq(effects), outage, data_exposed, exfiltration_to_legal_s, extortion, not_recorded }
}

/// "shadow copies deleted" when a process of the alert says so; the technique's words else.
fn effect_words(c: &Ctx, alert: &str, effect: &str) -> String {
    let shadow = c.entities(&["process"], &[alert]).iter().any(|p| {
        let n = p.name.to_lowercase();
        n.contains("shadow") && (n.contains("delete") || n.contains("resize"))
    });
    if effect == "system recovery inhibited" && shadow { "shadow copies deleted".to_owned() } else { effect.to_owned() }
}

/// Disruptive impact began → the first restore a comment records after it.
fn outage(c: &Ctx, disruptive: &[&str]) -> Option<Window> {
    let start = disruptive.iter().filter_map(|a| c.began(a)).min()?;
    let restore = c.mentions(RESTORE).into_iter().find(|s| s.at.is_some_and(|t| t >= start));
    let end = restore.and_then(|s| s.at);
    let basis = match restore {
        Some(s) => format!("impact alert activity; restore recorded in the {}", s.source()),
        None => "impact alert activity; no restore recorded".to_owned(),
    };
    Some(Window { start, end, duration_s: secs(Some(start), end), basis })
}

/// Exfiltration alerts and what the analysts wrote of data leaving.
fn exposure(c: &Ctx) -> DataExposure {
    // Exfiltration by technique, or by the category Defender gave the alert (forwarding rules
    // map to Collection in ATT&CK but are filed as Exfiltration).
    let mut alerts = c.tactic_alerts("exfiltration");
    for a in &c.incident.alerts {
        if a.category.as_deref().is_some_and(|k| k.eq_ignore_ascii_case("exfiltration"))
            && !alerts.contains(&a.id.as_str())
        {
            alerts.push(a.id.as_str());
        }
    }
    // What the analysts wrote of data leaving: the words for it, or data downloaded with its
    // volume ("412 files (2.1 GB) downloaded"), which is an analyst saying how much left.
    let said: Vec<&Statement> = c
        .said
        .iter()
        .filter(|s| {
            super::mentions(&s.text, EXFILTRATION)
                || (super::mentions(&s.text, DOWNLOADED) && volume(&s.text).is_some())
        })
        .collect();
    let confirmed =
        said.iter().find(|s| s.text.to_lowercase().contains("confirm") || volume(&s.text).is_some()).copied();
    let denied = c.said.iter().find(|s| {
        let l = s.text.to_lowercase();
        EXFILTRATION.iter().any(|k| l.contains(k)) && !super::mentions(&s.text, EXFILTRATION)
    });
    let mut basis: Vec<String> = alerts.iter().map(|a| format!("alert: {}", c.title(a))).collect();
    let state = match (confirmed, alerts.is_empty()) {
        (Some(s), _) => {
            basis.push(s.source());
            "confirmed"
        }
        (None, false) => "alerted",
        (None, true) => {
            if let Some(d) = denied {
                basis.push(format!("\"{}\" ({})", d.text, d.source()));
            }
            "none_observed"
        }
    };
    let what = uniq(
        c.entities(&["url", "file", "mailbox", "cloud_app"], &alerts).into_iter().map(|e| e.name.clone()).collect(),
    );
    let volume = said.iter().find_map(|s| volume(&s.text));
    DataExposure {
        state: state.to_owned(),
        what,
        alerts: alerts.iter().map(|a| (*a).to_owned()).collect(),
        volume,
        basis,
    }
}

/// The first legal or notification step recorded, with the exfiltration alert it follows.
fn legal_step<'c>(c: &'c Ctx, data: &DataExposure) -> Option<(Option<DateTime<Utc>>, &'c Statement)> {
    if data.state == "none_observed" {
        return None;
    }
    let alerted = data.alerts.iter().filter_map(|a| c.alert(a).and_then(|a| a.created)).min();
    let step = c.mentions(LEGAL).into_iter().find(|s| match (alerted, s.at) {
        (Some(a), Some(t)) => t >= a,
        _ => true,
    })?;
    Some((alerted, step))
}

/// "40 GB", "1.2 TB", "350MB", "412 files (2.1 GB)": a data volume written in a sentence; a
/// count of files and a size both, when both are written.
pub(super) fn volume(text: &str) -> Option<String> {
    const UNITS: &[&str] = &["kb", "mb", "gb", "tb", "kib", "mib", "gib", "tib", "bytes", "files"];
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut found: Vec<String> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let t = t.trim_matches(|c: char| c == '(' || c == ')' || c == ',' || c == '.' || c == '~');
        let digits = t.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ',')).unwrap_or(t.len());
        if digits == 0 {
            continue;
        }
        let (number, unit) = t.split_at(digits);
        let unit = if unit.is_empty() {
            tokens.get(i + 1).map(|u| u.trim_matches(|c: char| !c.is_alphanumeric())).unwrap_or_default()
        } else {
            unit
        };
        if UNITS.contains(&unit.to_lowercase().as_str()) && number.chars().any(|c| c.is_ascii_digit()) {
            found.push(format!("{number} {unit}"));
        }
    }
    // The size first, then the count of files: "2.1 GB (412 files)".
    let (files, sizes): (Vec<String>, Vec<String>) = found.into_iter().partition(|v| v.ends_with("files"));
    match (sizes.first(), files.first()) {
        (Some(s), Some(f)) => Some(format!("{s} ({f})")),
        (Some(v), None) | (None, Some(v)) => Some(v.clone()),
        (None, None) => None,
    }
}
