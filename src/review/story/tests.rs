//! Tests of the story's rules: an incident modelled on the ransomware sample, with the fields
//! the scope, response and times modules fill set by hand.

use std::sync::OnceLock;

use serde_json::{Value, json};

use super::*;
use crate::review::{Engine, Settings, Subject};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let catalog = std::sync::Arc::new(crate::attack::store::embedded().unwrap());
        Engine::new(catalog, None, None, Settings::default())
    })
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn review_of(v: &Value) -> (Review, Incident) {
    let incident = Incident::from_graph(v).unwrap();
    let r = engine()
        .review(&Subject { incident: &incident, source: "t", revision: 1, transitions: &[] }, &History::default());
    (r, incident)
}

fn entity(kind: &str, name: &str, alerts: &[&str]) -> Entity {
    Entity {
        kind: kind.into(),
        name: name.into(),
        ids: Default::default(),
        verdict: None,
        remediation_status: None,
        roles: vec![],
        alerts: alerts.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn alert(id: &str, title: &str, category: &str, techniques: &[&str], first: &str, created: &str) -> Value {
    json!({"id": id, "title": title, "severity": "high", "category": category, "mitreTechniques": techniques,
           "firstActivityDateTime": first, "createdDateTime": created, "status": "resolved"})
}

/// The ransomware sample, shortened: six alerts, two comments, a resolving comment that names
/// no cause.
fn ransomware() -> Value {
    json!({
        "id": "1077", "displayName": "Human-operated ransomware attack on multiple endpoints", "status": "resolved",
        "severity": "high", "classification": "truePositive", "determination": "multiStagedAttack",
        "assignedTo": "ir.oncall@contoso.com", "lastModifiedBy": "ir.oncall@contoso.com",
        "createdDateTime": "2026-10-20T22:28:00Z", "lastUpdateDateTime": "2026-10-22T22:05:00Z",
        "resolvingComment": "Contained: gateway isolated, svc-backup disabled, servers restored from offline backups. External RDP on ts-gw-01 closed.",
        "comments": [
            {"comment": "Isolated fs-02 and sql-01; engaging DFIR retainer.", "createdByDisplayName": "ir.oncall@contoso.com", "createdDateTime": "2026-10-21T00:25:00Z"},
            {"comment": "Restore complete; exfiltration of D:\\Finance confirmed, legal informed.", "createdByDisplayName": "ir.oncall@contoso.com", "createdDateTime": "2026-10-22T21:45:00Z"}
        ],
        "alerts": [
            alert("a1", "Multiple failed sign-ins followed by a successful RDP sign-in", "InitialAccess", &["T1133", "T1078"], "2026-10-20T22:05:00Z", "2026-10-20T22:27:00Z"),
            alert("a2", "Suspicious access to LSASS service", "CredentialAccess", &["T1003.001"], "2026-10-20T23:26:00Z", "2026-10-21T03:16:00Z"),
            alert("a3", "Possible lateral movement using remote service creation", "LateralMovement", &["T1021.002"], "2026-10-20T23:41:00Z", "2026-10-20T23:48:00Z"),
            alert("a4", "File backups were deleted", "Impact", &["T1490"], "2026-10-21T00:06:00Z", "2026-10-21T00:08:00Z"),
            alert("a5", "Ransomware behavior detected in the file system", "Impact", &["T1486"], "2026-10-21T00:09:00Z", "2026-10-21T00:12:00Z"),
            alert("a6", "Suspicious data upload to a file-sharing service", "Exfiltration", &["T1567.002"], "2026-10-20T23:05:00Z", "2026-10-21T05:40:00Z")
        ]
    })
}

/// What the scope and times modules find for it, set by hand.
fn with_scope_and_times(r: &mut Review) {
    let mut locker = entity("file", "locker.exe", &["a5"]);
    locker.remediation_status = Some("remediated".into());
    r.incident.entities = vec![
        entity("device", "ts-gw-01.corp.contoso.com", &["a1", "a2", "a3"]),
        entity("device", "fs-02.corp.contoso.com", &["a3", "a4", "a5", "a6"]),
        entity("device", "sql-01.corp.contoso.com", &["a5"]),
        entity("user", "svc-backup@contoso.com", &["a1"]),
        entity("ip", "45.141.87.12", &["a1"]),
        entity(
            "process",
            "rundll32.exe C:\\windows\\System32\\comsvcs.dll, MiniDump 624 C:\\perflogs\\l.dmp full",
            &["a2"],
        ),
        entity("process", "vssadmin.exe delete shadows /all /quiet", &["a4"]),
        entity("url", "https://mega.nz/file/q8xZ", &["a6"]),
        locker,
    ];
    r.metrics.time_to_acknowledge_s = Some(7_080);
    r.metrics.basis.insert("time_to_acknowledge_s".into(), "comment".into());
    r.metrics.containment = Containment {
        partial: Some(ContainmentPoint {
            at: Some(t("2026-10-21T00:25:00Z")),
            at_latest: None,
            entities: vec!["fs-02.corp.contoso.com".into(), "sql-01.corp.contoso.com".into()],
            basis: "comment".into(),
        }),
        full: Some(ContainmentPoint {
            at: None,
            at_latest: Some(t("2026-10-22T22:05:00Z")),
            entities: vec!["ts-gw-01.corp.contoso.com".into(), "svc-backup@contoso.com".into()],
            basis: "resolving comment".into(),
        }),
    };
}

fn told(v: &Value) -> (Story, Review) {
    let (mut r, i) = review_of(v);
    with_scope_and_times(&mut r);
    (tell(&r, &i, &History::default()), r)
}

#[test]
fn the_outcome_reads_in_words_with_who_resolved_it() {
    let (s, _) = told(&ransomware());
    assert_eq!(
        s.outcome.headline,
        "True positive — multi-staged attack. Resolved 2026-10-22 22:05 UTC by ir.oncall@contoso.com."
    );
    assert_eq!(s.outcome.resolved_by.as_deref(), Some("ir.oncall@contoso.com"));
    assert_eq!(s.outcome.resolved_at, Some(t("2026-10-22T22:05:00Z")));

    // No assignee: the author of the last comment.
    let mut v = ransomware();
    v["assignedTo"] = Value::Null;
    v["comments"][1]["createdByDisplayName"] = json!("bob@contoso.com");
    assert_eq!(told(&v).0.outcome.resolved_by.as_deref(), Some("bob@contoso.com"));

    let active = json!({"id": "9", "status": "active", "lastUpdateDateTime": "2026-10-22T22:05:00Z"});
    let (s, _) = told(&active);
    assert_eq!(s.outcome.headline, "Not resolved (status: active). Not classified.");
    assert_eq!(s.outcome.resolved_by, None);
}

#[test]
fn five_lines_and_a_partial_isolation_never_reads_as_contained() {
    let (s, _) = told(&ransomware());
    assert_eq!(s.summary.len(), 5, "{:#?}", s.summary);
    let text = s.summary.join("\n");
    assert!(s.summary[0].starts_with("What happened: Human-operated ransomware"), "{text}");
    assert!(s.summary[0].contains("3 hosts (fs-02, sql-01 and ts-gw-01) and 1 account (svc-backup)"), "{text}");
    assert!(s.summary[0].contains("initial access") && s.summary[0].contains("impact"), "{text}");
    assert!(s.summary[1].contains("on fs-02 and sql-01"), "{text}");
    assert!(s.summary[1].contains("an outage of up to 1 d 21 h 36 min"), "{text}");
    assert!(s.summary[2].contains("exfiltration confirmed by the analysts"), "{text}");
    assert!(s.summary[2].contains("volume not recorded"), "{text}");
    assert!(s.summary[2].contains("1 d 16 h 5 min after the exfiltration alert"), "{text}");
    assert!(s.summary[3].starts_with("Way in: T1078 Valid Accounts and T1133 External Remote Services"), "{text}");
    assert!(s.summary[3].contains("No root cause recorded"), "{text}");
    let last = &s.summary[4];
    assert!(last.contains("First alert 22 min after the first recorded activity"), "{last}");
    assert!(last.contains("first recorded sign of an analyst 1 h 58 min after it"), "{last}");
    assert!(
        last.contains("partial containment (fs-02 and sql-01) 1 h 58 min after the first alert (comment)"),
        "{last}"
    );
    assert!(last.contains("full containment (svc-backup and ts-gw-01) at a time not recorded (by 10-22 22:05 UTC at the latest; resolving comment)"), "{last}");

    // Only the partial isolation recorded: nothing says contained.
    let (mut r, i) = review_of(&ransomware());
    with_scope_and_times(&mut r);
    r.metrics.containment.full = None;
    let s = tell(&r, &i, &History::default());
    let all = format!("{}\n{:?}", s.summary.join("\n"), s.what_worked);
    assert!(s.summary[4].contains("full containment not recorded"), "{}", s.summary[4]);
    assert!(!all.to_lowercase().contains(" contained"), "a partial isolation read as containment: {all}");
    assert!(!all.to_lowercase().contains("first action"), "{all}");
}

#[test]
fn unknowns_say_not_recorded() {
    let bare = json!({
        "id": "5", "status": "resolved", "classification": "truePositive", "lastUpdateDateTime": "2026-10-22T22:05:00Z",
        "alerts": [{"id": "x", "title": "Suspicious upload", "category": "Exfiltration", "mitreTechniques": ["T1567.002"],
                    "createdDateTime": "2026-10-21T05:40:00Z"}]
    });
    let (mut r, i) = review_of(&bare);
    r.metrics = Metrics::default();
    let s = tell(&r, &i, &History::default());
    assert_eq!(s.summary.len(), 5);
    assert!(s.summary[0].contains("1 alert; no host or account in the evidence"), "{}", s.summary[0]);
    assert!(s.summary[2].contains("exfiltration alerted") && s.summary[2].contains("volume not recorded"));
    assert!(s.summary[2].contains("No legal or notification step recorded"), "{}", s.summary[2]);
    assert_eq!(
        s.summary[4],
        "Detection and response: Time to detect not recorded; acknowledgement not recorded; full containment not recorded."
    );
    assert_eq!(s.impact.data_exposed.state, "alerted");
    for unknown in ["data volume", "legal or notification", "ransom or extortion contact"] {
        assert!(s.impact.not_recorded.iter().any(|n| n == unknown), "{unknown}: {:?}", s.impact.not_recorded);
    }
    assert!(s.outcome.headline.contains("who resolved it is not recorded"), "{}", s.outcome.headline);
    assert!(!s.initial_access.detected);
    assert!(s.summary[3].starts_with("Way in: not detected"), "{}", s.summary[3]);
}

#[test]
fn impact_data_and_the_legal_clock() {
    let (s, _) = told(&ransomware());
    let i = &s.impact;
    assert_eq!(i.hosts, ["fs-02", "sql-01"]);
    assert_eq!(i.effects, ["data encrypted", "shadow copies deleted"]);
    let outage = i.outage.as_ref().unwrap();
    assert_eq!((outage.start, outage.end), (t("2026-10-21T00:09:00Z"), Some(t("2026-10-22T21:45:00Z"))));
    assert_eq!(outage.duration_s, Some(45 * 3600 + 36 * 60));
    assert_eq!(i.data_exposed.state, "confirmed");
    assert_eq!(i.data_exposed.what, ["https://mega.nz/file/q8xZ"]);
    assert_eq!(i.exfiltration_to_legal_s, Some(40 * 3600 + 5 * 60));
    assert!(i.not_recorded.contains(&"data volume".to_owned()) && i.extortion.is_none());

    // A comment that says no data left, and no alert: none observed, with the comment as basis.
    let v = json!({"id": "6", "status": "resolved", "classification": "truePositive", "lastUpdateDateTime": "2026-10-22T22:05:00Z",
        "comments": [{"comment": "No exfiltration observed in proxy logs; about 40 GB staged.", "createdByDisplayName": "ann", "createdDateTime": "2026-10-22T10:00:00Z"}]});
    let (s, _) = told(&v);
    assert_eq!(s.impact.data_exposed.state, "none_observed");
    assert!(s.impact.data_exposed.basis[0].contains("No exfiltration observed"), "{:?}", s.impact.data_exposed.basis);
    assert_eq!(super::impact::volume("about 40 GB staged"), Some("40 GB".into()));
    assert_eq!(super::impact::volume("350MB, via rclone"), Some("350 MB".into()));
    assert_eq!(super::impact::volume("3 hosts"), None);
}

#[test]
fn credentials_exposed_by_an_lsass_dump() {
    let (s, _) = told(&ransomware());
    assert_eq!(s.exposed_credentials.len(), 1, "{:#?}", s.exposed_credentials);
    let c = &s.exposed_credentials[0];
    assert_eq!(
        (c.host.as_deref(), c.how.as_str(), c.technique.as_str()),
        (Some("ts-gw-01"), "LSASS memory dump", "T1003.001")
    );
    assert_eq!(c.artefact.as_deref(), Some("C:\\perflogs\\l.dmp"));
    assert_eq!(c.at, Some(t("2026-10-20T23:26:00Z")));
    assert_eq!(c.alerts, ["a2"]);
    assert!(c.accounts.is_empty(), "no user evidence on the LSASS alert");
}

#[test]
fn no_root_cause_gives_none_an_open_question_and_the_follow_up() {
    let (s, _) = told(&ransomware());
    assert_eq!(s.root_cause, None);
    assert!(s.open_questions.iter().any(|q| q.rule == "no_root_cause"));
    // The engine's review of the same incident asks for it.
    let (r, _) = review_of(&ransomware());
    let f = r.follow_ups.iter().find(|f| f.kind == "record_root_cause").expect("the follow-up");
    assert_eq!((f.title.as_str(), f.priority), ("Record the root cause", Priority::Medium));
    assert!(f.detail.contains("resolving comment"));

    // A cause said not to be known is no root cause.
    let mut v = ransomware();
    v["resolvingComment"] = json!("Root cause unknown; closed.");
    assert_eq!(told(&v).0.root_cause, None);
    // A false positive asks for none.
    v["classification"] = json!("falsePositive");
    assert!(!review_of(&v).0.follow_ups.iter().any(|f| f.kind == "record_root_cause"));
}

#[test]
fn a_root_cause_goes_on_past_a_semicolon_to_its_full_stop() {
    let mut v = ransomware();
    v["resolvingComment"] = json!("Root cause: same lure as 2388; the block-list entry had expired. Password reset.");
    let (s, _) = told(&v);
    assert_eq!(s.root_cause.unwrap().text, "Root cause: same lure as 2388; the block-list entry had expired.");
}

#[test]
fn the_root_cause_is_the_analysts_words_attributed() {
    let mut v = ransomware();
    v["resolvingComment"] =
        json!("Servers restored. Root cause: internet-exposed RDP on ts-gw-01 and a guessed svc-backup password.");
    let (s, r) = told(&v);
    let rc = s.root_cause.unwrap();
    assert_eq!(rc.text, "Root cause: internet-exposed RDP on ts-gw-01 and a guessed svc-backup password.");
    assert_eq!((rc.source.as_str(), rc.author.as_deref()), ("resolving_comment", Some("ir.oncall@contoso.com")));
    assert_eq!(rc.at, r.incident.resolved);

    let mut v = ransomware();
    v["comments"][0]["comment"] = json!("Checked the gateway. The attacker came in via the exposed RDP port.");
    let rc = told(&v).0.root_cause.unwrap();
    assert_eq!(rc.text, "The attacker came in via the exposed RDP port.");
    assert_eq!((rc.source.as_str(), rc.at), ("comment", Some(t("2026-10-21T00:25:00Z"))));
    let (r, _) = review_of(&v);
    assert!(!r.follow_ups.iter().any(|f| f.kind == "record_root_cause"));
}

#[test]
fn the_way_in_detected_or_not() {
    let (s, _) = told(&ransomware());
    let ia = &s.initial_access;
    assert!(ia.detected);
    assert_eq!(ia.techniques, ["T1078", "T1133"]);
    assert_eq!(ia.first_activity, Some(t("2026-10-20T22:05:00Z")));
    assert_eq!(ia.alerts, ["a1"]);
    assert_eq!(ia.evidence, ["device ts-gw-01.corp.contoso.com", "ip 45.141.87.12", "user svc-backup@contoso.com"]);

    let mut v = ransomware();
    v["alerts"].as_array_mut().unwrap().remove(0);
    let (s, _) = told(&v);
    assert!(!s.initial_access.detected);
    assert_eq!(s.initial_access.alerts, ["a6"], "the first recorded activity's alert");
    assert_eq!(s.initial_access.first_activity, Some(t("2026-10-20T23:05:00Z")));
    let q = s.open_questions.iter().find(|q| q.rule == "no_initial_access").unwrap();
    assert!(q.question.contains("Suspicious data upload"), "{}", q.question);
}

#[test]
fn open_questions_name_their_evidence() {
    let (s, _) = told(&ransomware());
    let rules: Vec<&str> = s.open_questions.iter().map(|q| q.rule.as_str()).collect();
    for rule in [
        "activity_before_entry",
        "lateral_account_unknown",
        "sign_in_after_failures",
        "exfiltration_volume_unknown",
        "credential_dump_fate",
        "no_root_cause",
        "containment_time_unknown",
    ] {
        assert!(rules.contains(&rule), "{rule} missing from {rules:?}");
    }
    let entry = s.open_questions.iter().find(|q| q.rule == "activity_before_entry").unwrap();
    assert_eq!(
        entry.question,
        "How was fs-02 reached? \"Suspicious data upload to a file-sharing service\" began there at 10-20 23:05 UTC, 36 min before the first recorded movement to it (10-20 23:41 UTC)."
    );
    assert!(s.open_questions.iter().all(|q| !q.evidence.is_empty()), "{:#?}", s.open_questions);
    assert_eq!(rules.iter().filter(|r| **r == "activity_before_entry").count(), 1, "ts-gw-01 is the entry host");
}

#[test]
fn what_worked_are_facts_with_evidence() {
    let (mut r, i) = review_of(&ransomware());
    with_scope_and_times(&mut r);
    r.story.response = vec![ResponseAction {
        at: Some(t("2026-10-21T00:13:00Z")),
        at_latest: None,
        action: "user svc-backup disabled by attack disruption".into(),
        by: "automatic".into(),
        basis: "alert".into(),
        kind: "partial".into(),
        entities: vec!["svc-backup".into()],
    }];
    let s = tell(&r, &i, &History::default());
    let texts: Vec<&str> = s.what_worked.iter().map(|n| n.text.as_str()).collect();
    assert!(texts.contains(&"3 of the 6 alerts with an activity time fired within 15 minutes of it."), "{texts:#?}");
    assert!(texts.iter().any(|t| t.starts_with("Automatic response contained (svc-backup)")), "{texts:#?}");
    assert!(texts.contains(&"Defender remediated file locker.exe (evidence remediation status)."), "{texts:#?}");
    assert!(
        texts.iter().any(|t| t.starts_with("Recovery from backups recorded: \"Contained: gateway isolated")),
        "{texts:#?}"
    );
    assert!(!texts.iter().any(|t| t.contains("target")), "1 h 58 min is over the 1 h target: {texts:#?}");
    assert!(s.what_worked.iter().all(|n| !n.evidence.is_empty()));

    r.metrics.time_to_acknowledge_s = Some(600);
    let s = tell(&r, &i, &History::default());
    assert!(s.what_worked.iter().any(|n| n.text.contains("within the 1 h target for high severity")));
}

#[test]
fn a_false_positive_has_no_attack_story() {
    let mut v = ransomware();
    v["classification"] = json!("falsePositive");
    v["determination"] = json!("notMalicious");
    let (s, _) = told(&v);
    assert!(s.outcome.headline.starts_with("False positive — not malicious. Resolved"), "{}", s.outcome.headline);
    assert!(s.open_questions.is_empty() && s.exposed_credentials.is_empty() && s.impact.hosts.is_empty());
    assert_eq!(s.impact.data_exposed.state, "none_observed");
    assert_eq!(s.summary.len(), 5);
    assert!(s.summary[1].starts_with("Impact: none — the incident was classified false positive"), "{}", s.summary[1]);
}

#[test]
fn negations_and_sentences() {
    assert!(mentions("Exfiltration of D:\\Finance confirmed", &["exfiltrat"]));
    assert!(!mentions("No exfiltration observed", &["exfiltrat"]));
    assert!(!mentions("servers were not restored yet", &["restored"]));
    assert_eq!(
        sentences("Restore complete; legal informed. Done.\nNext"),
        ["Restore complete", "legal informed.", "Done.", "Next"]
    );
    assert_eq!(sentences("Copied D:\\Finance.zip to mega.nz"), ["Copied D:\\Finance.zip to mega.nz"]);
}

#[test]
fn impact_before_the_first_recorded_action_is_said() {
    let (s, _) = told(&ransomware());
    assert!(s.summary[4].contains("the impact began 16 min before the first recorded action"), "{}", s.summary[4]);
    // Acknowledged before the impact began: nothing to say.
    let (mut r, i) = review_of(&ransomware());
    with_scope_and_times(&mut r);
    r.metrics.time_to_acknowledge_s = Some(600);
    let s = tell(&r, &i, &History::default());
    assert!(!s.summary[4].contains("before the first recorded action"), "{}", s.summary[4]);
}

/// A BEC: the fraud mail maps to T1566 Phishing and comes last, four hours after the password
/// spray that let the attacker in. The way in says so; an Initial Access alert that comes first
/// reads as before.
#[test]
fn a_way_in_seen_after_other_activity_says_what_came_first() {
    let bec = |spray_first: &str| {
        json!({"id": "5", "status": "resolved", "classification": "truePositive", "lastUpdateDateTime": "2026-11-03T23:10:00Z",
        "alerts": [
            alert("a1", "Password spray", "CredentialAccess", &["T1110.003"], spray_first, "2026-11-03T16:50:00Z"),
            alert("a2", "Suspicious email forwarding activity", "Exfiltration", &["T1114.003"], "2026-11-03T13:10:00Z", "2026-11-03T13:45:00Z"),
            alert("a3", "BEC financial fraud", "Impact", &["T1656", "T1566"], "2026-11-03T14:15:00Z", "2026-11-03T14:35:00Z"),
        ]})
    };
    let way_in = |v: &Value| told(v).0.summary[3].clone();
    let line = way_in(&bec("2026-11-03T10:10:00Z"));
    assert!(
        line.starts_with("Way in: T1566 Phishing (\"BEC financial fraud\"), first activity 11-03 14:15 UTC — but \"Password spray\" (T1110.003 Password Spraying) began 4 h 5 min before it: a sign-in with the guessed password is the likelier way in."),
        "{line}"
    );
    // Without the spray, the forwarding rule still came first: the way in may be earlier.
    let mut v = bec("2026-11-03T10:10:00Z");
    v["alerts"].as_array_mut().unwrap().remove(0);
    let line = way_in(&v);
    assert!(
        line.contains(
            "— but \"Suspicious email forwarding activity\" began 1 h 5 min before it, so the way in may be earlier."
        ),
        "{line}"
    );
    // The phishing mail first: the way in as it was.
    let mut v = bec("2026-11-03T14:20:00Z");
    v["alerts"][1]["firstActivityDateTime"] = json!("2026-11-03T14:30:00Z");
    let line = way_in(&v);
    assert!(
        line.starts_with("Way in: T1566 Phishing (\"BEC financial fraud\"), first activity 11-03 14:15 UTC."),
        "{line}"
    );
    assert!(!line.contains("but"), "{line}");
}

/// Lateral movement by mail is sent from a mailbox: that mailbox is the account, and no
/// question asks for it. An alert that names neither a user nor a mailbox leaves it unknown.
#[test]
fn a_mailbox_names_the_account_of_mail_borne_lateral_movement() {
    let incident = |evidence: Value| {
        let mut a = alert(
            "a1",
            "Internal phishing campaign",
            "LateralMovement",
            &["T1534"],
            "2026-11-03T13:30:00Z",
            "2026-11-03T13:55:00Z",
        );
        a["evidence"] = evidence;
        json!({"id": "6", "status": "resolved", "classification": "truePositive", "lastUpdateDateTime": "2026-11-03T23:10:00Z", "alerts": [a]})
    };
    let asked = |v: &Value| {
        let (r, i) = review_of(v);
        tell(&r, &i, &History::default()).open_questions.iter().any(|q| q.rule == "lateral_account_unknown")
    };
    let mailbox = json!([{"@odata.type": "#microsoft.graph.security.mailboxEvidence", "primaryAddress": "j.devries@contoso.com", "verdict": "suspicious"}]);
    assert!(!asked(&incident(mailbox)));
    assert!(asked(&incident(json!([]))));
}
