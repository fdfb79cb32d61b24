//! Bodies for the receivers people already use, built from the typed review or digest and the
//! event's envelope at delivery time:
//! a compact payload for Power Automate / Logic Apps flow conditions, a Teams Adaptive Card (the
//! Workflows webhook), and a Slack Block Kit message. Each summarises and links; none carries
//! the whole review (Teams refuses posts over about 28 KB).

use serde_json::{Value, json};

use crate::digest::{Digest, Ranked};
use crate::outbox::Payload;
use crate::review::{Priority, Review};

/// Largest Teams post we send; Teams refuses about 28 KB, and leaves room for its envelope.
pub const TEAMS_MAX_BYTES: usize = 24 * 1024;

fn priority(p: Priority) -> &'static str {
    match p {
        Priority::High => "high",
        Priority::Medium => "medium",
        Priority::Low => "low",
    }
}

fn top_techniques(review: &Review, n: usize) -> Vec<String> {
    review.techniques.iter().filter_map(|t| Some(format!("{} {}", t.id, t.name.as_deref()?))).take(n).collect()
}

fn follow_up_titles(review: &Review, n: usize) -> Vec<String> {
    review.follow_ups.iter().take(n).map(|f| format!("[{}] {}", priority(f.priority), f.title)).collect()
}

fn digest_techniques(list: &[Ranked], n: usize) -> Vec<String> {
    list.iter().take(n).map(|t| format!("{} {} ({})", t.id, t.name, t.incidents)).collect()
}

fn digest_follow_ups(d: &Digest, n: usize) -> Vec<String> {
    d.follow_ups
        .iter()
        .take(n)
        .map(|f| format!("[{}] {} ({} incident(s))", priority(f.priority), f.title, f.incidents))
        .collect()
}

fn digest_title(d: &Digest) -> String {
    format!("Hindsight digest {} to {}", d.period.start.format("%Y-%m-%d"), d.period.end.format("%Y-%m-%d"))
}

/// The envelope of every event (`envelope`: the outbox entry's body) and `fields`, flat.
fn flat(envelope: &Value, fields: Value) -> Value {
    let mut out = json!({
        "schema_version": envelope["schema_version"],
        "event": envelope["event"],
        "id": envelope["id"],
        "occurred_at": envelope["occurred_at"],
        "source": envelope["source"],
    });
    if let (Some(o), Value::Object(f)) = (out.as_object_mut(), fields) {
        o.extend(f);
    }
    out
}

/// Flat fields a flow's conditions can test without parsing the whole review (or digest).
pub fn power_automate(envelope: &Value, payload: &Payload) -> Value {
    let r = match payload {
        Payload::Digest(d) => {
            return flat(
                envelope,
                json!({
                    "period_start": d.period.start,
                    "period_end": d.period.end,
                    "incidents": d.incidents.total,
                    "previous_incidents": d.previous_incidents.total,
                    "false_positives": d.incidents.benign,
                    "by_severity": d.incidents.by_severity,
                    "mttd_median_s": d.time_to_detect.median_s,
                    "mttd_p90_s": d.time_to_detect.p90_s,
                    "mttr_median_s": d.time_to_resolve.median_s,
                    "mttr_p90_s": d.time_to_resolve.p90_s,
                    "top_techniques": d.top_techniques.iter().map(|t| &t.id).collect::<Vec<_>>(),
                    "new_techniques": d.new_techniques.iter().map(|t| &t.id).collect::<Vec<_>>(),
                    "recurring_gaps": d.recurring_gaps.iter().map(|g| &g.id).collect::<Vec<_>>(),
                    "follow_ups": d.follow_ups.iter().map(|f| json!({
                        "id": f.id, "priority": priority(f.priority), "title": f.title, "incidents": f.incidents
                    })).collect::<Vec<_>>(),
                }),
            );
        }
        Payload::Review(r) => r,
    };
    let i = &r.incident;
    flat(
        envelope,
        json!({
            "incident_id": i.id,
            "title": i.title,
            "severity": i.severity,
            "classification": i.classification,
            "determination": i.determination,
            "owner": i.owner,
            "incident_url": i.url,
            "revision": i.revision,
            "time_to_detect_s": r.metrics.time_to_detect_s,
            "time_to_resolve_s": r.metrics.time_to_resolve_s,
            "techniques": r.techniques.iter().map(|t| &t.id).collect::<Vec<_>>(),
            "uncovered_techniques": r.gaps.uncovered.iter().map(|t| &t.id).collect::<Vec<_>>(),
            "blind_stages": r.gaps.blind_stages.iter().map(|b| &b.tactic).collect::<Vec<_>>(),
            "late_detections": r.gaps.late_detections.len(),
            "top_attribution": r.attribution.first().map(|c| format!("{} {}", c.id, c.name)),
            "follow_ups": r.follow_ups.iter().map(|f| json!({
                "id": f.id, "priority": priority(f.priority), "title": f.title
            })).collect::<Vec<_>>(),
        }),
    )
}

/// A Teams message with one Adaptive Card (1.4), cut down until it fits [`TEAMS_MAX_BYTES`].
pub fn teams(envelope: &Value, payload: &Payload) -> Value {
    let mut follow_ups = 8;
    loop {
        let card = teams_card(envelope, payload, follow_ups);
        if follow_ups == 0 || serde_json::to_vec(&card).map_or(0, |b| b.len()) <= TEAMS_MAX_BYTES {
            return card;
        }
        follow_ups /= 2;
    }
}

fn teams_digest_body(d: &Digest, follow_ups: usize) -> Vec<Value> {
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true, "text": digest_title(d)}),
        json!({"type": "FactSet", "facts": [
            {"title": "Incidents", "value": format!("{} (before: {})", d.incidents.total, d.previous_incidents.total)},
            {"title": "False positives", "value": d.incidents.benign.to_string()},
            {"title": "Top techniques", "value": digest_techniques(&d.top_techniques, 5).join(", ")},
            {"title": "Rising", "value": digest_techniques(&d.rising, 3).join(", ")},
            {"title": "Recurring gaps", "value": d.recurring_gaps.len().to_string()},
        ]}),
    ];
    let items = digest_follow_ups(d, follow_ups);
    if !items.is_empty() {
        body.push(json!({"type": "TextBlock", "weight": "Bolder", "text": "Open follow-ups", "wrap": true}));
        body.push(json!({"type": "TextBlock", "wrap": true, "text": items.iter().map(|t| format!("- {t}")).collect::<Vec<_>>().join("\n")}));
    }
    body
}

fn teams_card(envelope: &Value, payload: &Payload, follow_ups: usize) -> Value {
    let r = match payload {
        Payload::Digest(d) => return teams_message(teams_digest_body(d, follow_ups), vec![]),
        Payload::Review(r) => r,
    };
    let i = &r.incident;
    let blind: Vec<&str> = r.gaps.blind_stages.iter().map(|b| b.name.as_str()).collect();
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
            "text": format!("Post-incident review: {}", i.title)}),
        json!({"type": "FactSet", "facts": [
            {"title": "Incident", "value": format!("{} ({})", i.id, envelope["source"].as_str().unwrap_or_default())},
            {"title": "Severity", "value": i.severity},
            {"title": "Classification", "value": format!("{} / {}", i.classification, i.determination)},
            {"title": "Techniques", "value": top_techniques(r, 5).join(", ")},
            {"title": "Blind stages", "value": if blind.is_empty() { "none".to_owned() } else { blind.join(", ") }},
            {"title": "Not covered", "value": r.gaps.uncovered.len().to_string()},
        ]}),
    ];
    let items = follow_up_titles(r, follow_ups);
    if !items.is_empty() {
        body.push(json!({"type": "TextBlock", "weight": "Bolder", "text": "Follow-ups", "wrap": true}));
        body.push(json!({"type": "TextBlock", "wrap": true, "text": items.iter().map(|t| format!("- {t}")).collect::<Vec<_>>().join("\n")}));
    }
    let mut actions = vec![];
    if let Some(url) = i.url.as_deref().filter(|u| u.starts_with("https://")) {
        actions.push(json!({"type": "Action.OpenUrl", "title": "Open in Microsoft Defender", "url": url}));
    }
    teams_message(body, actions)
}

fn teams_message(body: Vec<Value>, actions: Vec<Value>) -> Value {
    json!({"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": null,
        "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body, "actions": actions}
    }]})
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn slack_escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn clip(t: &str, max: usize) -> String {
    if t.chars().count() <= max { t.to_owned() } else { format!("{}…", t.chars().take(max - 1).collect::<String>()) }
}

/// A Slack incoming-webhook message: a fallback text and a few Block Kit blocks.
pub fn slack(envelope: &Value, payload: &Payload) -> Value {
    let r = match payload {
        Payload::Digest(d) => {
            let title = digest_title(d);
            let mut blocks = vec![
                json!({"type": "header", "text": {"type": "plain_text", "text": clip(&title, 150)}}),
                json!({"type": "section", "fields": [
                    {"type": "mrkdwn", "text": format!("*Incidents*\n{} (before: {})", d.incidents.total, d.previous_incidents.total)},
                    {"type": "mrkdwn", "text": format!("*Top techniques*\n{}", slack_escape(&clip(&digest_techniques(&d.top_techniques, 5).join(", "), 1900)))},
                ]}),
            ];
            let items = digest_follow_ups(d, 10);
            if !items.is_empty() {
                let text = items.iter().map(|t| format!("• {}", slack_escape(t))).collect::<Vec<_>>().join("\n");
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&format!("*Open follow-ups*\n{text}"), 2900)}}));
            }
            return json!({"text": clip(&title, 3000), "blocks": blocks});
        }
        Payload::Review(r) => r,
    };
    let i = &r.incident;
    let title = slack_escape(&i.title);
    let source = envelope["source"].as_str().unwrap_or_default();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&format!("Post-incident review: {}", i.title), 150)}}),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Incident*\n{} ({})", slack_escape(&i.id), slack_escape(source))},
            {"type": "mrkdwn", "text": format!("*Severity*\n{}", slack_escape(&i.severity))},
            {"type": "mrkdwn", "text": format!("*Classification*\n{}", slack_escape(&i.classification))},
            {"type": "mrkdwn", "text": format!("*Techniques*\n{}", slack_escape(&clip(&top_techniques(r, 5).join(", "), 1900)))},
        ]}),
    ];
    let items = follow_up_titles(r, 10);
    if !items.is_empty() {
        let text = items.iter().map(|t| format!("• {}", slack_escape(t))).collect::<Vec<_>>().join("\n");
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&format!("*Follow-ups*\n{text}"), 2900)}}));
    }
    if let Some(url) = i.url.as_deref().filter(|u| u.starts_with("https://")) {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("<{}|Open in Microsoft Defender>", slack_escape(url))}]}));
    }
    json!({"text": clip(&format!("Post-incident review: {title}"), 3000), "blocks": blocks})
}
