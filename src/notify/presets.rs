//! Bodies for the receivers people already use, built from the typed review or digest and the
//! event's envelope at delivery time:
//! a compact payload for Power Automate / Logic Apps flow conditions, a Teams Adaptive Card (the
//! Workflows webhook), and a Slack Block Kit message. Each summarises and links; none carries
//! the whole review (Teams refuses posts over about 28 KB).
//!
//! Text from the incident is hostile until shown otherwise: each field is put on one line and
//! clipped ([`field`]); in a Teams card it is escaped for Adaptive Cards' markdown
//! ([`card_text`]), in Slack for mrkdwn's `&`, `<` and `>`; and the "Open in Microsoft
//! Defender" link goes only to a Defender portal host ([`portal_link`]).

use serde_json::{Value, json};

use crate::digest::{Digest, Ranked};
use crate::outbox::Payload;
use crate::review::Review;
use crate::review::render::priority;

/// Largest Teams post we send; Teams refuses about 28 KB, and leaves room for its envelope.
pub const TEAMS_MAX_BYTES: usize = 24 * 1024;

/// The longest single field taken from an incident (its title, an alert title inside a
/// follow-up, an ID) in a Teams card or Slack message, in characters. A 101 KB title made a
/// 101 KB card, which Teams refuses.
const MAX_FIELD_CHARS: usize = 200;

/// A text from the incident as one line (no forged line breaks), clipped to
/// [`MAX_FIELD_CHARS`] with an ellipsis.
fn field(v: &str) -> String {
    crate::text::clip(&crate::text::one_line(v), MAX_FIELD_CHARS).into_owned()
}

/// A one-line text escaped for the markdown of Adaptive Card TextBlocks and fact values. The
/// subset Teams renders is bold (`**x**`), italic (`_x_`, `*x*`), bulleted (`- `, `* `) and
/// numbered (`1. `) lists, and links (`[text](url)`), so a backslash goes before `\`, `*`, `_`,
/// `[` and `]` anywhere (with both brackets escaped no `[text](url)` can form; the parentheses
/// stay readable: "stage(s)"), before `~` and `` ` `` (strikethrough and code in some hosts),
/// and before a list or heading marker (`-`, `+`, `#`, `>`, `1.`) that would start the block.
/// Line breaks are gone already ([`field`]), so no other line start can be forged. (Teams'
/// mobile clients have been reported to show the backslashes; a visible `\[` is the price of
/// no disguised link.)
fn card_text(t: &str) -> String {
    let mut out = String::with_capacity(t.len() + 8);
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    let numbered = digits > 0 && matches!(t[digits..].chars().next(), Some('.' | ')'));
    for (i, c) in t.char_indices() {
        let at_start = i == 0 && matches!(c, '-' | '+' | '#' | '>');
        if at_start || matches!(c, '\\' | '*' | '_' | '[' | ']' | '~' | '`') || (numbered && i == digits) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The Defender portal hosts: the commercial and GCC portal, GCC High, and DoD (Microsoft
/// Learn, "Microsoft Defender for Endpoint for US Government customers", portal URLs).
pub const DEFAULT_PORTAL_HOSTS: &[&str] = &["security.microsoft.com", "security.microsoft.us", "security.apps.mil"];

/// [`DEFAULT_PORTAL_HOSTS`], owned (the default of a webhook's `portal_hosts`).
pub fn default_portal_hosts() -> Vec<String> {
    DEFAULT_PORTAL_HOSTS.iter().map(|h| (*h).to_owned()).collect()
}

/// `url` if it may be offered as the link to the incident: `https://` to exactly one of
/// `hosts` (no user info, no other port). The URL comes from the incident, so anything else
/// (`https://evil.example`, `https://security.microsoft.com.evil.example`,
/// `https://security.microsoft.com@evil.example`) gets no link at all.
pub fn portal_link<S: AsRef<str>>(url: &str, hosts: &[S]) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?;
    let ok = u.scheme() == "https"
        && u.username().is_empty()
        && u.password().is_none()
        && u.port().is_none()
        && hosts.iter().any(|h| h.as_ref().eq_ignore_ascii_case(host));
    ok.then(|| u.to_string())
}

fn top_techniques(review: &Review, n: usize) -> Vec<String> {
    review.techniques.iter().filter_map(|t| Some(format!("{} {}", t.id, t.name.as_deref()?))).take(n).collect()
}

/// "[priority] title" of the first `n` follow-ups, the title escaped with `esc` for the target.
fn follow_up_titles(review: &Review, n: usize, esc: fn(&str) -> String) -> Vec<String> {
    review.follow_ups.iter().take(n).map(|f| format!("[{}] {}", priority(f.priority), esc(&field(&f.title)))).collect()
}

/// Hunts with rows listed in a card or message; the rest are in the review.
const HUNTS_SHOWN: usize = 5;

/// What the retro-hunts found, for a review amended with them (`review.hunted`): a heading
/// ("Retro-hunts: 2 of 5 returned rows, 1 could not run") and one line per hunt that returned
/// rows ("title — Lateral Movement, T1021.002: 12 row(s)"), escaped with `esc`. `None` for a
/// review the hunts have not amended. Without it, a channel that takes `review.hunted` got the
/// first card again, with nothing that said what the hunts found.
fn hunt_lines(review: &Review, esc: fn(&str) -> String) -> Option<(String, Vec<String>)> {
    let h = review.retro_hunts.as_ref()?;
    let not_run = h.results.len().saturating_sub(h.ran);
    let mut heading = format!("Retro-hunts: {} of {} returned rows", h.with_hits, h.results.len());
    if not_run > 0 {
        heading += &format!(", {not_run} could not run");
    }
    let hits: Vec<_> = h.results.iter().filter(|x| x.status == "hits").collect();
    let mut items: Vec<String> = hits
        .iter()
        .take(HUNTS_SHOWN)
        .map(|x| {
            // The stage as the review names it ("Lateral Movement"), its short name otherwise.
            let stage = review.gaps.blind_stages.iter().find(|b| b.tactic == x.stage).map_or(&x.stage, |b| &b.name);
            format!(
                "{} — {}, {}: {} row(s)",
                esc(&field(&x.title)),
                esc(&field(stage)),
                esc(&field(&x.technique)),
                x.rows
            )
        })
        .collect();
    if hits.len() > HUNTS_SHOWN {
        items.push(format!("{} more in the review", hits.len() - HUNTS_SHOWN));
    }
    Some((heading, items))
}

fn digest_techniques(list: &[Ranked], n: usize) -> Vec<String> {
    list.iter().take(n).map(|t| format!("{} {} ({})", t.id, t.name, t.incidents)).collect()
}

fn digest_follow_ups(d: &Digest, n: usize, esc: fn(&str) -> String) -> Vec<String> {
    d.follow_ups
        .iter()
        .take(n)
        .map(|f| format!("[{}] {} ({} incident(s))", priority(f.priority), esc(&field(&f.title)), f.incidents))
        .collect()
}

fn digest_title(d: &Digest) -> String {
    format!("Hindsight digest {} to {}", d.period.start.format("%Y-%m-%d"), d.period.end.format("%Y-%m-%d"))
}

/// The outcome headline of `review` ("true positive — multi-staged attack, resolved … by …"):
/// the story's, or, for a review that has none (read from a store written before v2), its
/// classification, determination and status as Graph gave them.
fn headline(review: &Review) -> String {
    let h = review.story.outcome.headline.trim();
    if !h.is_empty() {
        return h.to_owned();
    }
    let i = &review.incident;
    format!("{} / {} ({})", i.classification, i.determination, i.status)
}

/// The names under which a flow finds the story's five summary lines, in the order
/// `story.summary` has them (docs/review-v2.md).
pub const SUMMARY_FIELDS: [&str; 5] =
    ["summary_what_happened", "summary_impact", "summary_data_exposed", "summary_way_in", "summary_detection_response"];

/// The story's summary as flat fields: one per line (`null` when the review has fewer), and
/// all of them as one text for a message body.
fn summary_fields(review: &Review) -> serde_json::Map<String, Value> {
    let lines = &review.story.summary;
    let mut out: serde_json::Map<String, Value> =
        SUMMARY_FIELDS.iter().enumerate().map(|(n, k)| ((*k).to_owned(), json!(lines.get(n)))).collect();
    out.insert("summary_text".to_owned(), json!(lines.join("\n")));
    out
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

/// Flat fields a flow's conditions can test without parsing the whole review (or digest): for
/// a review, v2's outcome headline, the five summary lines, counts of entities and unattended
/// alerts, the times to acknowledge and contain (`null` when unknowable) and `recurring`.
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
    let mut out = flat(
        envelope,
        json!({
            "outcome_headline": headline(r),
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
            "time_to_acknowledge_s": r.metrics.time_to_acknowledge_s,
            "time_to_contain_s": r.metrics.time_to_contain_s,
            "entities": i.entities.len(),
            "unattended_alerts": r.unattended_alerts.len(),
            "recurring": r.story.recurring.is_some(),
            "techniques": r.techniques.iter().map(|t| &t.id).collect::<Vec<_>>(),
            "uncovered_techniques": r.gaps.uncovered.iter().map(|t| &t.id).collect::<Vec<_>>(),
            "blind_stages": r.gaps.blind_stages.iter().map(|b| &b.tactic).collect::<Vec<_>>(),
            "late_detections": r.gaps.late_detections.len(),
            "retro_hunts_ran": r.retro_hunts.as_ref().map(|h| h.ran),
            "retro_hunts_with_hits": r.retro_hunts.as_ref().map(|h| h.with_hits),
            "top_attribution": r.attribution.first().map(|c| format!("{} {}", c.id, c.name)),
            "follow_ups": r.follow_ups.iter().map(|f| json!({
                "id": f.id, "priority": priority(f.priority), "title": f.title
            })).collect::<Vec<_>>(),
        }),
    );
    if let Some(o) = out.as_object_mut() {
        o.extend(summary_fields(r));
    }
    out
}

/// A Teams message with one Adaptive Card (1.4), cut down until it fits [`TEAMS_MAX_BYTES`],
/// linking to the incident only on one of `portal_hosts` (a webhook's `portal_hosts`;
/// [`DEFAULT_PORTAL_HOSTS`] otherwise).
pub fn teams<S: AsRef<str>>(envelope: &Value, payload: &Payload, portal_hosts: &[S]) -> Value {
    let mut follow_ups = 8;
    loop {
        let card = teams_card(envelope, payload, follow_ups, portal_hosts);
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
    let items = digest_follow_ups(d, follow_ups, card_text);
    if !items.is_empty() {
        body.push(json!({"type": "TextBlock", "weight": "Bolder", "text": "Open follow-ups", "wrap": true}));
        body.push(json!({"type": "TextBlock", "wrap": true, "text": items.iter().map(|t| format!("- {t}")).collect::<Vec<_>>().join("\n")}));
    }
    body
}

/// The longest summary line shown in a card or message, in characters (the five lines are
/// about 200–400 characters; the whole text is in the review).
const SUMMARY_LINE_CHARS: usize = 500;

/// How many follow-ups a card or message lists by title; "n more" says the rest.
const FOLLOW_UPS_SHOWN: usize = 3;

/// The review's times as (label, value): detect, acknowledge, contain, resolve.
fn times(review: &Review) -> Vec<(&'static str, String)> {
    use crate::review::render::duration;
    let m = &review.metrics;
    let value = |v: Option<i64>| if v.is_some() { duration(v) } else { "not recorded".to_owned() };
    vec![
        ("Time to detect", value(m.time_to_detect_s)),
        ("Time to acknowledge", value(m.time_to_acknowledge_s)),
        ("Time to contain", value(m.time_to_contain_s)),
        ("Time to resolve", value(m.time_to_resolve_s)),
    ]
}

/// The full review's address (`review.link`), only if it is https.
fn review_link(review: &Review) -> Option<&str> {
    review.incident.review_url.as_deref().filter(|u| reqwest::Url::parse(u).is_ok_and(|u| u.scheme() == "https"))
}

/// The summary lines, each on one line and clipped.
fn summary_lines(review: &Review) -> Vec<String> {
    review
        .story
        .summary
        .iter()
        .map(|l| crate::text::clip(&crate::text::one_line(l), SUMMARY_LINE_CHARS).into_owned())
        .collect()
}

fn teams_card<S: AsRef<str>>(envelope: &Value, payload: &Payload, follow_ups: usize, portal_hosts: &[S]) -> Value {
    let r = match payload {
        Payload::Digest(d) => return teams_message(teams_digest_body(d, follow_ups), vec![]),
        Payload::Review(r) => r,
    };
    let i = &r.incident;
    let blind: Vec<&str> = r.gaps.blind_stages.iter().map(|b| b.name.as_str()).collect();
    let mut body = vec![
        // The outcome first: how it ended is what a channel reads before anything else.
        json!({"type": "TextBlock", "weight": "Bolder", "wrap": true, "text": card_text(&field(&headline(r)))}),
        json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
            "text": format!("Post-incident review: {}", card_text(&field(&i.title)))}),
        json!({"type": "FactSet", "facts": [
            {"title": "Incident", "value": format!("{} ({})", card_text(&field(&i.id)), card_text(&field(envelope["source"].as_str().unwrap_or_default())))},
            {"title": "Severity", "value": card_text(&field(&i.severity))},
            {"title": "Classification", "value": format!("{} / {}", card_text(&field(&i.classification)), card_text(&field(&i.determination)))},
            {"title": "Techniques", "value": top_techniques(r, 5).join(", ")},
            {"title": "Blind stages", "value": if blind.is_empty() { "none".to_owned() } else { blind.join(", ") }},
            {"title": "Not covered", "value": r.gaps.uncovered.len().to_string()},
        ]}),
    ];
    // What this event adds, when the hunts amended the review: before the summary the first
    // card already carried.
    if let Some((heading, items)) = hunt_lines(r, card_text) {
        let color = if items.is_empty() { "Default" } else { "Attention" };
        body.push(json!({"type": "TextBlock", "weight": "Bolder", "color": color, "text": heading, "wrap": true}));
        if !items.is_empty() {
            body.push(json!({"type": "TextBlock", "wrap": true, "text": items.iter().map(|t| format!("- {t}")).collect::<Vec<_>>().join("\n")}));
        }
    }
    let summary = summary_lines(r);
    if !summary.is_empty() {
        body.push(json!({"type": "TextBlock", "weight": "Bolder", "text": "Summary", "wrap": true}));
        // One TextBlock a line: a numbered markdown list would need the lines unescaped.
        body.extend(
            summary
                .iter()
                .map(|l| json!({"type": "TextBlock", "wrap": true, "spacing": "Small", "text": card_text(l)})),
        );
    }
    body.push(json!({"type": "FactSet", "facts": times(r).into_iter().map(|(t, v)| json!({"title": t, "value": v})).collect::<Vec<_>>()}));
    let items = follow_up_titles(r, follow_ups.min(FOLLOW_UPS_SHOWN), card_text);
    if !items.is_empty() {
        let more = r.follow_ups.len().saturating_sub(items.len());
        let heading =
            if more > 0 { format!("First follow-ups ({} more in the review)", more) } else { "Follow-ups".into() };
        body.push(json!({"type": "TextBlock", "weight": "Bolder", "text": heading, "wrap": true}));
        body.push(json!({"type": "TextBlock", "wrap": true, "text": items.iter().map(|t| format!("- {t}")).collect::<Vec<_>>().join("\n")}));
    }
    let mut actions = vec![];
    if let Some(url) = i.url.as_deref().and_then(|u| portal_link(u, portal_hosts)) {
        actions.push(json!({"type": "Action.OpenUrl", "title": "Open in Microsoft Defender", "url": url}));
    }
    if let Some(url) = review_link(r) {
        actions.push(json!({"type": "Action.OpenUrl", "title": "Open the full review", "url": url}));
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

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters: escaped, no `<url|text>`
/// link can be forged. (mrkdwn has no escape for `*`, `_` or `~`; with line breaks gone from
/// each field, they can only restyle text, not forge a line or a link.)
fn slack_escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn clip(t: &str, max: usize) -> String {
    if t.chars().count() <= max { t.to_owned() } else { format!("{}…", t.chars().take(max - 1).collect::<String>()) }
}

/// A Slack incoming-webhook message: a fallback text and a few Block Kit blocks, linking to the
/// incident only on one of `portal_hosts`.
pub fn slack<S: AsRef<str>>(envelope: &Value, payload: &Payload, portal_hosts: &[S]) -> Value {
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
            let items = digest_follow_ups(d, 10, slack_escape);
            if !items.is_empty() {
                let text = items.iter().map(|t| format!("• {t}")).collect::<Vec<_>>().join("\n");
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&format!("*Open follow-ups*\n{text}"), 2900)}}));
            }
            return json!({"text": clip(&title, 3000), "blocks": blocks});
        }
        Payload::Review(r) => r,
    };
    let i = &r.incident;
    let title = slack_escape(&field(&i.title));
    let source = envelope["source"].as_str().unwrap_or_default();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&format!("Post-incident review: {}", field(&i.title)), 150)}}),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Incident*\n{} ({})", slack_escape(&field(&i.id)), slack_escape(&field(source)))},
            {"type": "mrkdwn", "text": format!("*Severity*\n{}", slack_escape(&field(&i.severity)))},
            {"type": "mrkdwn", "text": format!("*Classification*\n{}", slack_escape(&field(&i.classification)))},
            {"type": "mrkdwn", "text": format!("*Techniques*\n{}", slack_escape(&clip(&top_techniques(r, 5).join(", "), 1900)))},
        ]}),
    ];
    if let Some((heading, items)) = hunt_lines(r, slack_escape) {
        let text =
            std::iter::once(format!("*{heading}*")).chain(items.iter().map(|t| format!("• {t}"))).collect::<Vec<_>>();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&text.join("\n"), 2900)}}));
    }
    let summary = summary_lines(r);
    if !summary.is_empty() {
        let text = summary
            .iter()
            .enumerate()
            .map(|(n, l)| format!("{}. {}", n + 1, slack_escape(l)))
            .collect::<Vec<_>>()
            .join("\n");
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&format!("*Summary*\n{text}"), 2900)}}),
        );
    }
    blocks.push(json!({"type": "section", "fields": times(r).into_iter().map(|(t, v)| json!({"type": "mrkdwn", "text": format!("*{t}*\n{v}")})).collect::<Vec<_>>()}));
    let items = follow_up_titles(r, FOLLOW_UPS_SHOWN, slack_escape);
    if !items.is_empty() {
        let more = r.follow_ups.len().saturating_sub(items.len());
        let mut text = items.iter().map(|t| format!("• {t}")).collect::<Vec<_>>().join("\n");
        if more > 0 {
            text += &format!("\n_{more} more in the review_");
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&format!("*First follow-ups*\n{text}"), 2900)}}));
    }
    // Buttons carry their address as data, never parsed as mrkdwn: no link can be forged.
    let mut buttons = Vec::new();
    if let Some(url) = i.url.as_deref().and_then(|u| portal_link(u, portal_hosts)) {
        buttons.push(json!({"type": "button", "text": {"type": "plain_text", "text": "Open in Microsoft Defender"}, "url": url, "style": "primary"}));
    }
    if let Some(url) = review_link(r) {
        buttons.push(
            json!({"type": "button", "text": {"type": "plain_text", "text": "Open the full review"}, "url": url}),
        );
    }
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    json!({"text": clip(&format!("Post-incident review: {title}"), 3000), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_text_escapes_what_adaptive_cards_markdown_acts_on() {
        assert_eq!(card_text("[x](https://e.example)"), "\\[x\\](https://e.example)");
        assert_eq!(card_text("**b** _i_ ~s~ `c` a\\b"), "\\*\\*b\\*\\* \\_i\\_ \\~s\\~ \\`c\\` a\\\\b");
        assert_eq!(card_text("- item"), "\\- item");
        assert_eq!(card_text("# h"), "\\# h");
        assert_eq!(card_text("12. n"), "12\\. n");
        assert_eq!(card_text("sign-in at 10.5 stage(s)"), "sign-in at 10.5 stage(s)", "nothing to act on");
    }

    #[test]
    fn links_go_only_to_the_portal_hosts() {
        let ok = |u: &str| portal_link(u, DEFAULT_PORTAL_HOSTS).is_some();
        assert!(ok("https://security.microsoft.com/incident2/29/overview?tid=x"));
        assert!(ok("https://SECURITY.microsoft.us/incident2/1"));
        assert!(ok("https://security.apps.mil/incident2/1"));
        for bad in [
            "http://security.microsoft.com/x",
            "https://evil.example/x",
            "https://security.microsoft.com.evil.example/x",
            "https://security.microsoft.com@evil.example/x",
            "https://user@security.microsoft.com/x",
            "https://security.microsoft.com:8443/x",
            "javascript:alert(1)",
            "not a url",
        ] {
            assert!(!ok(bad), "{bad}");
        }
        // A destination may name its own hosts (a reverse proxy, a sovereign cloud).
        let incident = crate::model::Incident::from_graph(&serde_json::json!({"id": "1", "title": "t",
            "incidentWebUrl": "https://defender.contoso.example/i/1", "lastUpdateDateTime": "2026-11-20T10:00:00Z"}))
        .unwrap();
        let catalog = std::sync::Arc::new(crate::attack::store::embedded().unwrap());
        let engine = crate::review::Engine::new(catalog, None, None, crate::review::Settings::default());
        let review = engine.review(
            &crate::review::Subject { incident: &incident, source: "s", revision: 1, transitions: &[] },
            &crate::review::History::default(),
        );
        let payload = Payload::Review(Box::new(review));
        let envelope = serde_json::json!({"source": "s"});
        let actions = |card: &Value| card["attachments"][0]["content"]["actions"].clone();
        assert_eq!(actions(&teams(&envelope, &payload, DEFAULT_PORTAL_HOSTS)), serde_json::json!([]));
        let card = teams(&envelope, &payload, &["defender.contoso.example"]);
        assert_eq!(actions(&card)[0]["url"], "https://defender.contoso.example/i/1");
        let msg = slack(&envelope, &payload, &["defender.contoso.example"]);
        let buttons =
            msg["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").unwrap()["elements"].clone();
        assert_eq!(buttons[0]["url"], "https://defender.contoso.example/i/1");
    }
}
