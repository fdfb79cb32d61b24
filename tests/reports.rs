//! The e-mails and cards as people receive them, checked by parsing the HTML (scraper), not by
//! searching strings: the order of the sections, where every link points, that nothing from an
//! incident becomes markup, the size budgets (Gmail clips an HTML part past 102 KB, Teams
//! refuses posts past about 28 KB), and that a site's template replaces the layout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hindsight::attack::store;
use hindsight::digest::{Period, Summary};
use hindsight::model::Incident;
use hindsight::notify::presets::{DEFAULT_PORTAL_HOSTS, TEAMS_MAX_BYTES};
use hindsight::notify::templates::{HTML_BUDGET_BYTES, Templates};
use hindsight::outbox::Payload;
use hindsight::review::render::view::attack_url;
use hindsight::review::{Engine, History, Review, ReviewLink, Settings, Subject};
use scraper::{ElementRef, Html, Selector};
use serde_json::{Value, json};

const EXAMPLES: [&str; 10] = [
    "phishing-credential-theft",
    "human-operated-ransomware",
    "business-email-compromise",
    "false-positive-admin-tool",
    "identity-only-intrusion",
    "legacy-technique-ids",
    "no-techniques",
    "ransomware-unattended-alert",
    "recurring-phishing-1",
    "recurring-phishing-2",
];

fn raw(name: &str) -> Value {
    let path = format!("{}/examples/incidents/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn review_of(raw: &Value, settings: Settings) -> Review {
    let catalog = Arc::new(store::embedded().unwrap());
    let engine = Engine::new(catalog, None, None, settings);
    let incident = Incident::from_graph(raw).unwrap();
    engine.review(
        &Subject { incident: &incident, source: "examples", revision: 1, transitions: &[] },
        &History::default(),
    )
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: ElementRef) -> String {
    e.text().collect::<String>()
}

/// The section anchors of the e-mail in document order.
fn anchors(doc: &Html) -> Vec<String> {
    doc.select(&sel("[id]")).map(|e| e.value().attr("id").unwrap().to_owned()).collect()
}

#[test]
fn every_sample_email_has_its_sections_in_reading_order_and_fits_the_budget() {
    for name in EXAMPLES {
        let r = review_of(&raw(name), Settings::default());
        let m = Templates::builtin().unwrap().review(&r, "n-1").unwrap();
        assert!(m.html.len() <= HTML_BUDGET_BYTES, "{name}: {} bytes", m.html.len());
        let doc = Html::parse_document(&m.html);
        assert!(doc.errors.len() < 5, "{name}: the HTML parses cleanly: {:?}", doc.errors);
        let ids = anchors(&doc);
        // REVIEW-V2 §6: outcome, summary, the stages at a glance, the first follow-ups, the
        // response, the timeline, the times, the techniques and gaps, attribution, appendix.
        let order = [
            "outcome",
            "summary",
            "kill-chain",
            "follow-ups",
            "containment-and-response",
            "timeline",
            "times",
            "techniques",
            "attribution",
            "appendix",
        ];
        let positions: Vec<usize> = order.iter().filter_map(|a| ids.iter().position(|i| i == a)).collect::<Vec<_>>();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{name}: sections out of order: {ids:?}");
        for always in ["outcome", "summary", "kill-chain", "follow-ups", "times", "appendix"] {
            assert!(ids.iter().any(|i| i == always), "{name}: no {always}: {ids:?}");
        }
        // The first five follow-ups in full, then "n more".
        let heading = text(doc.select(&sel("h2#follow-ups")).next().unwrap());
        if r.follow_ups.len() > 5 {
            assert_eq!(heading, format!("First follow-ups (5 of {})", r.follow_ups.len()), "{name}");
            let body = text(doc.root_element());
            assert!(body.contains(&format!("{} more follow-ups", r.follow_ups.len() - 5)), "{name}");
        }
        // Alert titles, never their GUIDs, in what a reader sees.
        let body = text(doc.root_element());
        for a in &r.alerts {
            assert!(!body.contains(&a.id), "{name}: alert ID {} shown", a.id);
        }
        // One strip cell per tactic, each observed, blind or outside.
        let cells = doc.select(&sel("#kill-chain ~ div span[class^=stage-]")).count();
        assert_eq!(cells, r.tactics.len(), "{name}");
    }
}

#[test]
fn every_link_points_where_it_says() {
    for name in EXAMPLES {
        let r = review_of(&raw(name), Settings::default());
        let doc = Html::parse_document(&Templates::builtin().unwrap().review(&r, "n-1").unwrap().html);
        let mut linked_techniques = Vec::new();
        for a in doc.select(&sel("a")) {
            let href = a.value().attr("href").unwrap_or_else(|| panic!("{name}: a link without href"));
            let url = reqwest::Url::parse(href).unwrap_or_else(|e| panic!("{name}: {href}: {e}"));
            assert_eq!(url.scheme(), "https", "{name}: {href}");
            let shown = text(a);
            match url.host_str().unwrap() {
                "attack.mitre.org" => {
                    // The text starts with the ID the address is of.
                    let id = shown.split_whitespace().next().unwrap();
                    assert_eq!(attack_url(id).as_deref(), Some(href), "{name}: {shown:?} → {href}");
                    linked_techniques.push(id.to_owned());
                }
                host => {
                    assert!(DEFAULT_PORTAL_HOSTS.contains(&host), "{name}: {href}");
                    if a.value().attr("id") == Some("incident-link") {
                        assert_eq!(Some(href), r.incident.url.as_deref(), "{name}");
                        assert!(shown.contains(&r.incident.id), "{name}: {shown}");
                    } else {
                        // An alert's title links to that alert.
                        let alert =
                            r.alerts.iter().find(|x| x.title == shown).unwrap_or_else(|| panic!("{name}: {shown}"));
                        assert_eq!(alert.url.as_deref(), Some(href), "{name}: {shown}");
                    }
                }
            }
        }
        for t in r.techniques.iter().filter(|t| t.name.is_some()) {
            assert!(linked_techniques.contains(&t.id), "{name}: {} not linked", t.id);
        }
        if let Some(u) = r.incident.url.as_deref().filter(|u| u.starts_with("https://security.microsoft.com/")) {
            let link = doc.select(&sel("a#incident-link")).next().unwrap_or_else(|| panic!("{name}: no incident link"));
            assert_eq!(link.value().attr("href"), Some(u));
        }
    }
}

fn hostile_incident() -> Value {
    let mut v = raw("phishing-credential-theft");
    v["displayName"] = json!("<script>alert(1)</script><img src=x onerror=alert(2)> & \"quoted\"");
    v["incidentWebUrl"] = json!("javascript:alert(3)");
    let alert = &mut v["alerts"][0];
    alert["title"] =
        json!("\"><a href=\"https://evil.example/\">Open in Microsoft Defender</a><style>*{display:none}</style>");
    alert["alertWebUrl"] = json!("https://evil.example/alerts/1");
    v["comments"] = json!([{"comment": "<iframe src=https://evil.example></iframe>", "createdByDisplayName": "<b>x</b>",
        "createdDateTime": "2026-10-14T10:00:00Z"}]);
    v
}

#[test]
fn nothing_from_the_incident_becomes_markup() {
    let r = review_of(&hostile_incident(), Settings::default());
    let m = Templates::builtin().unwrap().review(&r, "n-1").unwrap();
    let doc = Html::parse_document(&m.html);
    for tag in ["script", "img", "iframe", "b"] {
        assert_eq!(doc.select(&sel(tag)).count(), 0, "a <{tag}> from the incident");
    }
    // The one style element is the template's own (dark mode), in the head.
    assert_eq!(doc.select(&sel("style")).count(), 1);
    assert_eq!(doc.select(&sel("head style")).count(), 1);
    for e in doc.root_element().descendants().filter_map(ElementRef::wrap) {
        for (attr, _) in e.value().attrs() {
            assert!(!attr.starts_with("on"), "an event handler attribute: {attr}");
        }
    }
    for a in doc.select(&sel("a")) {
        let href = a.value().attr("href").unwrap();
        assert!(!href.contains("evil.example") && !href.starts_with("javascript"), "{href}");
    }
    let body = text(doc.root_element());
    assert!(body.contains("<script>alert(1)</script><img src=x onerror=alert(2)> & \"quoted\""), "shown as text");
    assert!(body.contains("<iframe src=https://evil.example></iframe>"), "the comment shown as text");
    // The address that is no Defender portal address is shown, not linked.
    assert!(body.contains("javascript:alert(3)"));
}

#[test]
fn an_incident_of_thousands_of_alerts_is_sent_compact_within_the_budget() {
    let mut v = raw("human-operated-ransomware");
    let template = v["alerts"][0].clone();
    let alerts: Vec<Value> = (0..3000)
        .map(|k| {
            let mut a = template.clone();
            a["id"] = json!(format!("da{k:08}-0000-0000-0000-000000000000"));
            a["title"] = json!(format!("Suspicious activity number {k} on a host with a long description"));
            a
        })
        .collect();
    v["alerts"] = json!(alerts);
    let r = review_of(&v, Settings::default());
    let m = Templates::builtin().unwrap().review(&r, "n-1").unwrap();
    assert!(m.compact, "{} bytes", m.html.len());
    assert!(m.html.len() <= HTML_BUDGET_BYTES, "{} bytes", m.html.len());
    let body = text(Html::parse_document(&m.html).root_element());
    assert!(body.contains("more in the attached review.json"), "says where the rest is");
}

#[test]
fn the_longest_silence_is_marked_in_the_compact_timeline() {
    let r = review_of(&raw("human-operated-ransomware"), Settings::default());
    let doc = Html::parse_document(&Templates::builtin().unwrap().review(&r, "n-1").unwrap().html);
    let marked: Vec<String> = doc.select(&sel("tr.longest-silence")).map(text).collect();
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert!(marked[0].contains("the longest silence after the first alert"), "{marked:?}");
    // Ten events at most, each its own row.
    let rows = doc.select(&sel("#timeline + table tr:not(.longest-silence)")).count();
    assert!(rows <= 10 + 3, "{rows} rows");
}

#[test]
fn a_site_template_replaces_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("review.html.j2"),
        "<p class=mine>{{ view.title }} · {{ view.follow_ups | length }} of {{ view.follow_ups_total }}</p>",
    )
    .unwrap();
    let templates = Templates::load(Some(dir.path())).unwrap();
    let r = review_of(&hostile_incident(), Settings::default());
    let html = templates.review(&r, "n-1").unwrap().html;
    let doc = Html::parse_fragment(&html);
    let p = doc.select(&sel("p.mine")).next().expect("the site's layout");
    assert!(text(p).starts_with("<script>alert(1)</script>"), "escaped in a site's template too: {html}");
    assert_eq!(doc.select(&sel("script")).count(), 0);
    // A template written before the view, which inserts the pre-rendered document, still gets it.
    std::fs::write(dir.path().join("review.html.j2"), "<div class=old>{{ body | safe }}</div>").unwrap();
    let html = Templates::load(Some(dir.path())).unwrap().review(&r, "n-1").unwrap().html;
    let doc = Html::parse_fragment(&html);
    let old = doc.select(&sel("div.old h2")).map(text).collect::<Vec<_>>();
    assert!(old.iter().any(|h| h == "Summary"), "{old:?}");
    assert_eq!(doc.select(&sel("script")).count(), 0);
    // A template that does not compile names the file.
    std::fs::write(dir.path().join("review.html.j2"), "{% if %}").unwrap();
    let e = Templates::load(Some(dir.path())).err().unwrap();
    assert!(format!("{e:?}").contains("review.html.j2"), "{e:?}");
}

#[test]
fn teams_and_slack_carry_the_summary_times_three_follow_ups_and_both_buttons() {
    let settings = Settings {
        review_link: Some(
            ReviewLink::parse("https://wiki.contoso.com/reviews/{source}/{incident}/{revision}").unwrap(),
        ),
        ..Settings::default()
    };
    for name in EXAMPLES {
        let r = review_of(&raw(name), settings.clone());
        assert_eq!(
            r.incident.review_url.as_deref(),
            Some(format!("https://wiki.contoso.com/reviews/examples/{}/1", r.incident.id).as_str())
        );
        let envelope = json!({"source": "examples", "event": "review.created", "id": "n-1"});
        let payload = Payload::Review(Box::new(r.clone()));
        let card = hindsight::notify::presets::teams(&envelope, &payload, DEFAULT_PORTAL_HOSTS);
        let size = serde_json::to_vec(&card).unwrap().len();
        assert!(size <= TEAMS_MAX_BYTES, "{name}: {size} bytes");
        let content = &card["attachments"][0]["content"];
        let body = content["body"].as_array().unwrap();
        let texts: Vec<&str> = body.iter().filter_map(|b| b["text"].as_str()).collect();
        for line in &r.story.summary {
            let lead = line.split(':').next().unwrap();
            assert!(texts.iter().any(|t| t.starts_with(lead)), "{name}: summary line {lead:?} missing");
        }
        let facts: Vec<&str> = body
            .iter()
            .flat_map(|b| b["facts"].as_array().into_iter().flatten())
            .filter_map(|f| f["title"].as_str())
            .collect();
        for t in ["Time to detect", "Time to acknowledge", "Time to contain", "Time to resolve"] {
            assert!(facts.contains(&t), "{name}: {facts:?}");
        }
        if let Some(list) = texts.iter().find(|t| t.starts_with("- [")) {
            assert_eq!(list.lines().count(), r.follow_ups.len().min(3), "{name}: {list}");
        }
        let actions: Vec<&str> =
            content["actions"].as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap()).collect();
        assert!(actions.contains(&"Open the full review"), "{name}: {actions:?}");
        let slack = hindsight::notify::presets::slack(&envelope, &payload, DEFAULT_PORTAL_HOSTS);
        let buttons = slack["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").unwrap();
        assert!(
            buttons["elements"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["url"] == r.incident.review_url.as_deref().unwrap())
        );
    }
}

#[test]
fn a_review_link_keeps_an_odd_incident_id_inside_its_path_segment() {
    let link = ReviewLink::parse("https://wiki.contoso.com/r/{source}/{incident}").unwrap();
    assert_eq!(link.fill("a b", "1/../x?y#z", 1), "https://wiki.contoso.com/r/a%20b/1%2F..%2Fx%3Fy%23z");
    for bad in
        ["http://wiki/{incident}", "https://wiki/{source}", "https://wiki/{incident}/{other}", "not a url {incident}"]
    {
        assert!(ReviewLink::parse(bad).is_err(), "{bad}");
    }
}

/// Thirteen weeks of summaries, more incidents and blind stages in the middle weeks.
fn quarter(end: chrono::DateTime<chrono::Utc>) -> Vec<Summary> {
    let mut out = Vec::new();
    for week in 0..13i64 {
        for k in 0..(2 + week % 5) {
            let blind = if (week + k) % 3 == 0 { vec!["initial-access".to_owned()] } else { vec![] };
            out.push(Summary {
                source: "contoso".into(),
                incident_id: format!("{week}-{k}"),
                revision: 1,
                severity: if k % 2 == 0 { "high" } else { "medium" }.into(),
                classification: if k == 3 { "falsePositive" } else { "truePositive" }.into(),
                determination: "malware".into(),
                resolved: end - chrono::Duration::weeks(13 - week) + chrono::Duration::hours(10 + 20 * k),
                time_to_detect_s: Some(600 * (k + 1)),
                time_to_resolve_s: Some(36_000 * (k + 1)),
                time_to_acknowledge_s: Some(1_200 * (week + 1)),
                benign: k == 3,
                techniques: vec!["T1566.001".into(), if k % 2 == 0 { "T1059.001" } else { "T1003.001" }.into()],
                tactics: vec!["initial-access".into(), "execution".into()],
                uncovered: vec![],
                blind_stages: blind,
                late_detections: 0,
                first_seen: vec![],
                attribution: vec![],
                follow_ups: vec![],
            });
        }
    }
    out
}

#[test]
fn the_digest_email_shows_the_quarter_at_a_glance() {
    let end = chrono::DateTime::parse_from_rfc3339("2026-11-30T07:00:00Z").unwrap().to_utc();
    let summaries = quarter(end);
    let views: Vec<_> = summaries.iter().map(Summary::view).collect();
    let catalog = store::embedded().unwrap();
    let settings = hindsight::digest::Settings {
        top: 10,
        attack_domain: "enterprise-attack".into(),
        attack_version: None,
        shard: None,
    };
    let d =
        hindsight::digest::compute(&views, Period::ending(end, chrono::Duration::days(7)), &[], &settings, &catalog);
    assert_eq!(d.trend.len(), 12);
    assert_eq!(
        d.trend.iter().map(|w| w.incidents).sum::<usize>(),
        summaries.iter().filter(|s| s.resolved >= end - chrono::Duration::weeks(12)).count()
    );
    assert!(d.time_to_acknowledge.median_s.is_some() && d.previous_time_to_acknowledge.median_s.is_some());
    let m = Templates::builtin().unwrap().digest(&d, "dg-1").unwrap();
    assert!(m.html.len() <= HTML_BUDGET_BYTES, "{} bytes", m.html.len());
    let doc = Html::parse_document(&m.html);
    // Twelve bars, each as tall as its week's incidents relative to the busiest week.
    let columns: Vec<ElementRef> = doc.select(&sel("#trend-chart > tbody > tr:first-child > td")).collect();
    assert_eq!(columns.len(), 12);
    for (c, w) in columns.iter().zip(&d.trend) {
        assert_eq!(text(c.select(&sel("div")).next().unwrap()).trim(), w.incidents.to_string());
        let red = c.select(&sel("td[bgcolor='#c50f1f']")).count();
        assert_eq!(red > 0, w.with_blind_stages > 0, "week {}", w.start);
    }
    // MTTD, MTTA and MTTR with medians and 90th percentiles against the period before.
    let rows: Vec<String> = doc.select(&sel("#times + table tr")).map(text).collect();
    for measure in ["Time to detect", "Time to acknowledge", "Time to resolve"] {
        assert!(rows.iter().any(|r| r.starts_with(measure)), "{rows:?}");
    }
    // The top techniques as bars, the most frequent full width, linked to ATT&CK.
    let first = doc.select(&sel("#top-techniques + table tr")).next().unwrap();
    assert_eq!(first.select(&sel("td[bgcolor]")).next().unwrap().value().attr("width"), Some("100%"));
    assert!(
        first
            .select(&sel("a"))
            .next()
            .unwrap()
            .value()
            .attr("href")
            .unwrap()
            .starts_with("https://attack.mitre.org/techniques/")
    );
    // Times per classification: an attack's and a false positive's are not mixed.
    let body = text(doc.root_element());
    assert!(body.contains("falsePositive") && body.contains("Medians by classification"), "{body}");
}
