//! The tenant's earlier incidents that resemble this one, and whether its way in recurs.
//!
//! The history is an argument (the store keeps a compact [`PastIncident`] per reviewed
//! incident and source): the review stays a pure function.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::model::*;
use super::{History, PastIncident};

/// How far back similar incidents are looked for.
pub const WINDOW_DAYS: i64 = super::SIMILAR_WINDOW_DAYS;
/// "Within six months" for recurrence.
const RECURRENCE_DAYS: i64 = 183;
/// How many similar incidents a review lists.
const MAX_SIMILAR: usize = 5;

pub const NIS2_NOTE: &str = "EU NIS2 implementing rules (Commission Implementing Regulation (EU) 2024/2690) treat incidents that recur within six months with the same apparent root cause as one significant incident: assess them together for reporting.";

/// What a later review needs of this one.
pub fn past_incident(review: &Review) -> PastIncident {
    let s = &review.incident;
    PastIncident {
        id: s.id.clone(),
        title: s.title.clone(),
        created: s.created.or(review.metrics.first_alert),
        alert_titles: sorted(review.alerts.iter().map(|a| a.title.clone())),
        techniques: sorted(review.techniques.iter().filter(|t| t.name.is_some()).map(|t| t.id.clone())),
        entities: entity_keys(review),
        initial_access: review.story.initial_access.techniques.clone(),
        root_cause: review.story.root_cause.as_ref().map(|r| r.text.clone()),
        tenant_id: s.tenant_id.clone(),
        follow_ups: sorted(review.follow_ups.iter().map(|f| f.id.clone())),
    }
}

/// Similar incidents of a review already told (its story's way in and root cause).
#[allow(dead_code)] // Engine::review calls `find_for` with the story being told; tests call this.
pub(crate) fn find(review: &Review, history: &History) -> (Vec<SimilarIncident>, Option<Recurring>) {
    find_for(review, &review.story, history)
}

/// [`find`] with the story being told (the way in and root cause found so far).
pub(crate) fn find_for(review: &Review, story: &Story, history: &History) -> (Vec<SimilarIncident>, Option<Recurring>) {
    let me = Probe::of(review, story);
    let earlier: Vec<&PastIncident> = history.incidents.iter().filter(|p| me.precedes(p, WINDOW_DAYS)).collect();
    let mut found: Vec<(u32, SimilarIncident)> =
        earlier.iter().filter_map(|p| me.compare(p)).map(|s| (score(&s), s)).collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.created.cmp(&a.1.created)).then_with(|| a.1.id.cmp(&b.1.id)));
    let similar: Vec<SimilarIncident> = found.into_iter().take(MAX_SIMILAR).map(|(_, s)| s).collect();
    (similar, recurring(review, &me, &earlier))
}

/// This incident's side of the comparison.
struct Probe<'a> {
    id: &'a str,
    tenant: Option<&'a str>,
    at: Option<DateTime<Utc>>,
    titles: BTreeSet<String>,
    techniques: BTreeSet<String>,
    entities: BTreeSet<String>,
    initial_access: BTreeSet<String>,
    root_cause: Option<String>,
}

impl<'a> Probe<'a> {
    fn of(review: &'a Review, story: &Story) -> Self {
        let s = &review.incident;
        Probe {
            id: &s.id,
            tenant: s.tenant_id.as_deref(),
            at: s.created.or(review.metrics.first_alert).or(review.metrics.first_activity),
            titles: review.alerts.iter().map(|a| a.title.to_lowercase()).collect(),
            techniques: review.techniques.iter().filter(|t| t.name.is_some()).map(|t| t.id.clone()).collect(),
            entities: entity_keys(review).into_iter().collect(),
            initial_access: story.initial_access.techniques.iter().cloned().collect(),
            root_cause: story.root_cause.as_ref().map(|r| normal(&r.text)),
        }
    }

    /// An earlier incident of the same tenant, within `days` before this one (any stored one
    /// when this incident's time is unknown), and not this incident.
    fn precedes(&self, p: &PastIncident, days: i64) -> bool {
        if p.id == self.id || matches!((self.tenant, p.tenant_id.as_deref()), (Some(a), Some(b)) if a != b) {
            return false;
        }
        match (self.at, p.created) {
            (Some(me), Some(then)) => then <= me && me - then <= Duration::days(days),
            (None, _) => true,
            (Some(_), None) => false,
        }
    }

    fn same_way_in(&self, p: &PastIncident) -> bool {
        let technique = p.initial_access.iter().any(|t| self.initial_access.contains(t));
        let cause = matches!((&self.root_cause, &p.root_cause), (Some(a), Some(b)) if *a == normal(b));
        technique || cause
    }

    fn compare(&self, p: &PastIncident) -> Option<SimilarIncident> {
        let shared_entities: Vec<String> = p.entities.iter().filter(|e| self.entities.contains(*e)).cloned().collect();
        let shared_techniques: Vec<String> =
            p.techniques.iter().filter(|t| self.techniques.contains(*t)).cloned().collect();
        let shared_titles: Vec<String> =
            p.alert_titles.iter().filter(|t| self.titles.contains(&t.to_lowercase())).cloned().collect();
        let same_way_in = self.same_way_in(p);
        // One common technique alone (T1059 in half of all incidents) is no resemblance.
        let alike =
            same_way_in || !shared_entities.is_empty() || !shared_titles.is_empty() || shared_techniques.len() >= 2;
        alike.then(|| SimilarIncident {
            id: p.id.clone(),
            title: p.title.clone(),
            created: p.created,
            shared_entities,
            shared_techniques,
            shared_titles,
            same_way_in,
        })
    }
}

/// Rank by what is shared: the way in first, then entities, titles, techniques.
fn score(s: &SimilarIncident) -> u32 {
    let n = |v: &Vec<String>| u32::try_from(v.len()).unwrap_or(u32::MAX);
    u32::from(s.same_way_in) * 1_000 + n(&s.shared_entities) * 3 + n(&s.shared_titles) * 2 + n(&s.shared_techniques)
}

/// The same way in seen in at least one earlier incident within six months (so twice or more
/// with this one). Not for false positives or expected activity: no attack recurred.
fn recurring(review: &Review, me: &Probe, earlier: &[&PastIncident]) -> Option<Recurring> {
    if matches!(review.incident.classification.as_str(), "falsePositive" | "informationalExpectedActivity") {
        return None;
    }
    let back: Vec<&PastIncident> =
        earlier.iter().copied().filter(|p| me.precedes(p, RECURRENCE_DAYS) && me.same_way_in(p)).collect();
    if back.is_empty() {
        return None;
    }
    let techniques: BTreeSet<&String> =
        back.iter().flat_map(|p| p.initial_access.iter()).filter(|t| me.initial_access.contains(*t)).collect();
    let what = if techniques.is_empty() {
        format!("root cause \"{}\"", review.story.root_cause.as_ref().map_or("", |r| r.text.as_str()))
    } else {
        let names: Vec<String> = techniques.iter().map(|t| label(review, t)).collect();
        format!("Initial Access {}", names.join(", "))
    };
    let mut incidents: Vec<String> = back.iter().map(|p| p.id.clone()).collect();
    incidents.sort();
    incidents.dedup();
    let note = format!(
        "The same way in ({what}) was seen in {} earlier incident{} of this tenant within six months ({}): {} times with this one. {NIS2_NOTE}",
        incidents.len(),
        if incidents.len() == 1 { "" } else { "s" },
        incidents.join(", "),
        incidents.len() + 1
    );
    Some(Recurring { what, incidents, note })
}

fn label(review: &Review, id: &str) -> String {
    match review.techniques.iter().find(|t| t.id == id).and_then(|t| t.name.as_deref()) {
        Some(name) => format!("{id} {name}"),
        None => id.to_owned(),
    }
}

/// "kind:name" in lower case: how entities are matched across incidents.
fn entity_keys(review: &Review) -> Vec<String> {
    sorted(review.incident.entities.iter().map(|e| format!("{}:{}", e.kind, e.name).to_lowercase()))
}

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let set: BTreeSet<String> = items.collect();
    set.into_iter().collect()
}

/// A root cause compared as words: case, spaces and punctuation aside.
fn normal(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ").to_lowercase()
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use serde_json::{Value, json};

    use super::*;
    use crate::model::Incident;
    use crate::review::{Engine, Settings, Subject};

    fn engine() -> &'static Engine {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        ENGINE.get_or_init(|| {
            let catalog = std::sync::Arc::new(crate::attack::store::embedded().unwrap());
            Engine::new(catalog, None, None, Settings::default())
        })
    }

    /// A phishing incident of the tenant: a link clicked, then a mailbox rule.
    fn phishing(id: &str, created: &str, user: &str) -> Value {
        json!({
            "id": id, "displayName": format!("Phishing {id}"), "status": "resolved", "classification": "truePositive",
            "tenantId": "contoso", "createdDateTime": created, "lastUpdateDateTime": created,
            "alerts": [
                {"id": format!("{id}-1"), "title": "A user clicked through to a potentially malicious URL", "category": "InitialAccess",
                 "mitreTechniques": ["T1566.002"], "createdDateTime": created, "firstActivityDateTime": created,
                 "evidence": [{"@odata.type": "#microsoft.graph.security.userEvidence", "userAccount": {"userPrincipalName": user}}]},
                {"id": format!("{id}-2"), "title": "Suspicious inbox manipulation rule", "category": "Persistence",
                 "mitreTechniques": ["T1564.008"], "createdDateTime": created}
            ]
        })
    }

    /// The engine's review, with the entity the scope module would find.
    fn review(v: &Value, history: &History) -> Review {
        let incident = Incident::from_graph(v).unwrap();
        let subject = Subject { incident: &incident, source: "t", revision: 1, transitions: &[] };
        let mut r = engine().review(&subject, history);
        let user = v["alerts"][0]["evidence"][0]["userAccount"]["userPrincipalName"].as_str().unwrap();
        r.incident.entities = vec![Entity {
            kind: "user".into(),
            name: user.into(),
            ids: Default::default(),
            verdict: None,
            remediation_status: None,
            roles: vec![],
            alerts: vec![format!("{}-1", r.incident.id)],
        }];
        r.alerts = incident
            .alerts
            .iter()
            .map(|a| AlertSummary {
                id: a.id.clone(),
                title: a.title.clone(),
                severity: "medium".into(),
                status: "resolved".into(),
                category: a.category.clone(),
                created: a.created,
                first_activity: a.first_activity,
                last_activity: None,
                resolved: None,
                service_source: None,
                detection_source: None,
                product: "Microsoft Defender for Office 365".into(),
                techniques: a.mitre_techniques.clone(),
                url: None,
            })
            .collect();
        r
    }

    fn history_of(reviews: &[&Review]) -> History {
        History { incidents: reviews.iter().map(|r| past_incident(r)).collect(), ..History::default() }
    }

    #[test]
    fn two_incidents_sharing_the_way_in_are_similar_and_recurring() {
        let first = review(&phishing("100", "2026-06-01T09:00:00Z", "ann@contoso.com"), &History::default());
        let past = past_incident(&first);
        assert_eq!(past.initial_access, ["T1566.002"]);
        assert_eq!(past.entities, ["user:ann@contoso.com"]);
        assert_eq!(past.alert_titles.len(), 2);

        let history = history_of(&[&first]);
        let second = review(&phishing("200", "2026-09-01T09:00:00Z", "ann@contoso.com"), &history);
        let (similar, recurring) = find(&second, &history);
        assert_eq!(similar.len(), 1);
        let s = &similar[0];
        assert_eq!(s.id, "100");
        assert!(s.same_way_in);
        assert_eq!(s.shared_entities, ["user:ann@contoso.com"]);
        assert_eq!(s.shared_techniques, ["T1564.008", "T1566.002"]);
        assert_eq!(s.shared_titles.len(), 2);
        let rec = recurring.expect("the same way in twice within six months");
        assert_eq!(rec.incidents, ["100"]);
        assert!(rec.what.starts_with("Initial Access T1566.002"), "{}", rec.what);
        assert!(rec.note.contains("NIS2") && rec.note.contains("2 times with this one"), "{}", rec.note);
        // Engine::review tells it from the same history (without the entities and alert
        // titles set here by hand, which the scope module finds).
        let told: Vec<(&str, bool)> =
            second.story.similar_incidents.iter().map(|s| (s.id.as_str(), s.same_way_in)).collect();
        assert_eq!(told, [("100", true)]);
        assert_eq!(second.story.recurring.as_ref(), Some(&rec));
    }

    #[test]
    fn only_earlier_incidents_of_the_tenant_within_the_window() {
        let old = review(&phishing("1", "2025-12-01T09:00:00Z", "ann@contoso.com"), &History::default());
        let later = review(&phishing("3", "2026-10-01T09:00:00Z", "ann@contoso.com"), &History::default());
        let mut other =
            past_incident(&review(&phishing("4", "2026-08-01T09:00:00Z", "ann@contoso.com"), &History::default()));
        other.tenant_id = Some("fabrikam".into());
        let now = review(&phishing("2", "2026-09-01T09:00:00Z", "bob@contoso.com"), &History::default());
        let mut history = history_of(&[&old, &later, &now]);
        history.incidents.push(other);
        let (similar, recurring) = find(&now, &history);
        assert!(similar.is_empty(), "older than 180 days, later, itself or another tenant: {similar:#?}");
        assert!(recurring.is_none());
    }

    #[test]
    fn one_common_technique_is_no_resemblance_and_a_shared_cause_is_the_same_way_in() {
        let a = review(&phishing("1", "2026-08-01T09:00:00Z", "ann@contoso.com"), &History::default());
        let mut p = past_incident(&a);
        p.initial_access.clear();
        p.alert_titles.clear();
        p.entities.clear();
        p.techniques = vec!["T1564.008".into()];
        let b = review(&phishing("2", "2026-09-01T09:00:00Z", "bob@contoso.com"), &History::default());
        let history = History { incidents: vec![p.clone()], ..History::default() };
        assert!(find(&b, &history).0.is_empty());

        // The same recorded root cause, however it is written, is the same way in.
        p.root_cause = Some("Root cause: MFA fatigue on a VPN account".into());
        let mut b = b;
        b.story.root_cause = Some(RootCause {
            text: "root cause - MFA fatigue on a VPN account.".into(),
            author: None,
            at: None,
            source: "comment".into(),
        });
        b.story.initial_access.techniques.clear();
        let history = History { incidents: vec![p], ..History::default() };
        let (similar, recurring) = find(&b, &history);
        assert!(similar[0].same_way_in);
        assert!(recurring.unwrap().what.starts_with("root cause"));
    }

    #[test]
    fn ranked_by_what_is_shared_and_capped() {
        let mut history = History::default();
        for i in 0..8 {
            let user = if i == 6 { "ann@contoso.com" } else { "someone@contoso.com" };
            let r = review(
                &phishing(&format!("p{i}"), &format!("2026-08-0{}T09:00:00Z", i + 1), user),
                &History::default(),
            );
            history.incidents.push(past_incident(&r));
        }
        let now = review(&phishing("now", "2026-09-01T09:00:00Z", "ann@contoso.com"), &History::default());
        let (similar, _) = find(&now, &history);
        assert_eq!(similar.len(), MAX_SIMILAR);
        assert_eq!(similar[0].id, "p6", "the one sharing the user first");
        assert_eq!(similar[1].id, "p7", "then the newest");
    }
}
