//! The v2 contract: every sample's review validates against `schemas/review.v2.json`; a review
//! with every optional field set and every list filled validates too, and names no field the
//! schema does not declare (this is what catches a field added to the model and forgotten in
//! the schema); a v1 consumer (`schemas/review.v1.json`) rejects a v2 review for its
//! `schema_version` and for nothing else; the webhook event v2 validates against its schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hindsight::attack::store;
use hindsight::model::Incident;
use hindsight::notify::{Subscription, entries_for};
use hindsight::outbox::{Payload, with_review};
use hindsight::review::*;
use hindsight::store::ResolutionKey;
use serde_json::Value;

const REVIEW_V1: &str = include_str!("../schemas/review.v1.json");
const REVIEW_V2: &str = include_str!("../schemas/review.v2.json");
const EVENT_V2: &str = include_str!("../schemas/webhook-event.v2.json");

fn schema(text: &str) -> Value {
    serde_json::from_str(text).expect("the schema is JSON")
}

/// Every error of `instance` against `schema`, with where it is.
fn errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("the schema is valid");
    validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path())).collect()
}

/// Every sample incident in examples/incidents, by file name.
fn samples() -> Vec<(String, Incident)> {
    let dir = format!("{}/examples/incidents", env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(String, Incident)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| {
            let path = f.unwrap().path();
            let raw: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            (path.file_name().unwrap().to_string_lossy().into_owned(), Incident::from_graph(&raw).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn engine() -> Engine {
    let catalog = std::sync::Arc::new(store::embedded().unwrap());
    Engine::new(catalog, None, None, Settings::default())
}

fn review_of(engine: &Engine, incident: &Incident) -> Review {
    engine.review(&Subject { incident, source: "examples", revision: 1, transitions: &[] }, &History::default())
}

#[test]
fn every_sample_review_validates_against_v2() {
    let v2 = schema(REVIEW_V2);
    let engine = engine();
    let samples = samples();
    assert!(samples.len() >= 10, "the samples are read: {}", samples.len());
    for (name, incident) in &samples {
        let review = review_of(&engine, incident);
        let json = serde_json::to_value(&review).unwrap();
        assert_eq!(json["schema_version"], 2, "{name}");
        let errs = errors(&v2, &json);
        assert!(errs.is_empty(), "{name}: {errs:#?}");
        // Every sample renders in every format, its title in each.
        for out in [render::text(&review), render::markdown(&review), render::html(&review)] {
            assert!(out.contains(&render::html_escape(&review.incident.title)) || out.contains(&review.incident.title));
        }
    }
}

#[test]
fn a_v1_consumer_rejects_a_v2_review_for_its_version_only() {
    let (v1, engine) = (schema(REVIEW_V1), engine());
    for (name, incident) in samples() {
        let json = serde_json::to_value(review_of(&engine, &incident)).unwrap();
        let errs = errors(&v1, &json);
        // v1 declares `schema_version` as `enum: [1]`: that is the one thing a v1 validator
        // refuses; every field v1 knows is where and what it was.
        assert_eq!(errs.len(), 1, "{name}: {errs:#?}");
        assert!(errs[0].ends_with("at /schema_version"), "{name}: {errs:#?}");
        let mut as_v1 = json.clone();
        as_v1["schema_version"] = 1.into();
        assert!(errors(&v1, &as_v1).is_empty(), "{name}");
    }
    // The fully populated review too: no v2 field breaks a v1 object.
    let mut full = serde_json::to_value(fully_populated()).unwrap();
    let errs = errors(&v1, &full);
    assert!(errs.len() == 1 && errs[0].ends_with("at /schema_version"), "{errs:#?}");
    full["schema_version"] = 1.into();
    assert!(errors(&v1, &full).is_empty());
}

#[test]
fn a_fully_populated_review_validates_and_names_no_undeclared_field() {
    let v2 = schema(REVIEW_V2);
    let json = serde_json::to_value(fully_populated()).unwrap();
    let errs = errors(&v2, &json);
    assert!(errs.is_empty(), "{errs:#?}");
    // Objects kept open since v1 accept any field; still, each field the review writes must be
    // declared (and so documented), wherever it is.
    let mut undeclared = Vec::new();
    undeclared_fields(&v2, &json, "", &mut undeclared);
    assert!(undeclared.is_empty(), "fields the schema does not declare: {undeclared:#?}");
    // A field the schema does not know, in an object new in v2, is refused: the schema is
    // strict there, so the check above cannot pass by accident.
    let mut extra = json.clone();
    extra["story"]["outcome"]["invented"] = "x".into();
    assert!(!errors(&v2, &extra).is_empty());
    // And a value of the wrong type where the model has an Option is refused.
    let mut wrong = json;
    wrong["metrics"]["time_to_contain_s"] = "soon".into();
    assert!(!errors(&v2, &wrong).is_empty());
}

#[test]
fn schema_v2_is_v1_plus_additions() {
    let (v1, v2) = (schema(REVIEW_V1), schema(REVIEW_V2));
    assert_eq!(v2["$schema"], v1["$schema"], "the same draft");
    assert_eq!(v2["properties"]["schema_version"]["const"], 2);
    // Every property of v1, at every depth, is in v2 with the same type, and still required.
    let mut missing = Vec::new();
    same_or_more(&v1, &v2, "", &mut missing);
    assert!(missing.is_empty(), "{missing:#?}");
}

#[test]
fn the_webhook_event_v2_validates_against_its_schema() {
    let (event_schema, engine) = (schema(EVENT_V2), engine());
    let (_, incident) = samples().into_iter().find(|(n, _)| n == "ransomware-unattended-alert.json").unwrap();
    let review = review_of(&engine, &incident);
    let key = ResolutionKey::new("examples", &incident.id, 1);
    let now: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().unwrap();
    let entry = entries_for(&key, &review, &[Subscription::everything("d")], now).remove(0);
    assert_eq!(entry.schema_version(), 2);
    let event = with_review(entry.clone(), &review).body;
    assert_eq!((event["schema_version"].as_u64(), event["review"]["schema_version"].as_u64()), (Some(2), Some(2)));
    let errs = errors(&event_schema, &event);
    assert!(errs.is_empty(), "{errs:#?}");
    // The event built at delivery (the typed payload joined to the envelope) is the same.
    assert_eq!(Payload::Review(Box::new(review)).event(&entry), event);
    // With the fully populated review inside.
    let full = with_review(entry, &fully_populated()).body;
    let errs = errors(&event_schema, &full);
    assert!(errs.is_empty(), "{errs:#?}");
    // The review inside the event is the review schema, word for word.
    let mut inner = schema(REVIEW_V2);
    let obj = inner.as_object_mut().unwrap();
    obj.remove("$schema");
    obj.remove("title");
    assert!(
        event_schema["properties"]["review"] == inner,
        "the review in schemas/webhook-event.v2.json must be schemas/review.v2.json without $schema and title"
    );
}

/// Each field of `instance` that `schema` does not list in `properties`, by JSON path. The
/// Navigator layer is a format of its own (ATT&CK Navigator 4.5), checked elsewhere.
fn undeclared_fields(schema: &Value, instance: &Value, path: &str, out: &mut Vec<String>) {
    if path == "/layer" {
        return;
    }
    match instance {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in map {
                let sub = props.and_then(|p| p.get(k)).or(additional);
                match sub {
                    Some(s) => undeclared_fields(s, v, &format!("{path}/{k}"), out),
                    None => out.push(format!("{path}/{k}")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (n, v) in items.iter().enumerate() {
                    undeclared_fields(s, v, &format!("{path}/{n}"), out);
                }
            }
        }
        _ => {}
    }
}

/// Each property `old` declares that `new` lacks, requires no more, or types differently.
fn same_or_more(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    if path.ends_with("/schema_version") {
        return;
    }
    if old.get("type") != new.get("type") {
        out.push(format!("{path}: type {:?} → {:?}", old.get("type"), new.get("type")));
    }
    for r in old.get("required").and_then(Value::as_array).into_iter().flatten() {
        let required = new.get("required").and_then(Value::as_array);
        if !required.is_some_and(|n| n.contains(r)) {
            out.push(format!("{path}: {r} no longer required"));
        }
    }
    if let Some(props) = old.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            match new.get("properties").and_then(|p| p.get(k)) {
                Some(n) => same_or_more(v, n, &format!("{path}/{k}"), out),
                None => out.push(format!("{path}/{k}: gone")),
            }
        }
    }
    if let (Some(o), Some(n)) = (old.get("items"), new.get("items")) {
        same_or_more(o, n, &format!("{path}/items"), out);
    }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn point(s: &str) -> ContainmentPoint {
    ContainmentPoint {
        at: Some(at(s)),
        at_latest: Some(at("2026-06-17T10:20:00Z")),
        entities: strings(&["fab-jump-01"]),
        basis: "comments".into(),
    }
}

/// A review with every `Option` set and every list non-empty, written out field by field: a
/// field added to the model fails to compile here until it is filled, and then fails the
/// schema tests until the schema declares it.
fn fully_populated() -> Review {
    let t = at("2026-06-12T09:04:00Z");
    let (engine, incident) = (engine(), samples().remove(0).1);
    // The Navigator layer is its own format; a real one is taken as it is.
    let layer = review_of(&engine, &incident).layer;
    let data_component = DataComponentRef {
        id: Some("DC0032".into()),
        name: "Process Creation".into(),
        data_source: Some("Process".into()),
    };
    let hunt = Hunt {
        id: "powershell-encoded".into(),
        title: "Encoded PowerShell on the incident's devices".into(),
        table: "DeviceProcessEvents".into(),
        scope: "incident".into(),
        kql: "DeviceProcessEvents | where DeviceName in~ (dynamic([\"fs-02\"])) | take 100".into(),
        origin: "library".into(),
        run_before: Some(t),
    };
    Review {
        schema_version: SCHEMA_VERSION,
        warnings: vec![Warning { kind: "alerts_active".into(), message: "1 alert still active".into() }],
        incident: IncidentSummary {
            id: "2214".into(),
            source: "examples".into(),
            revision: 2,
            title: "Human-operated ransomware attack on multiple endpoints".into(),
            severity: "high".into(),
            classification: "truePositive".into(),
            determination: "multiStagedAttack".into(),
            status: "resolved".into(),
            owner: Some("t.nguyen@fabrikam.com".into()),
            tenant_id: Some("9c4e2b7a-1d6f-4a38-b5e0-7f3a2c8d1e96".into()),
            created: Some(t),
            resolved: Some(t),
            url: Some("https://security.microsoft.com/incident2/2214/overview".into()),
            review_url: Some("https://wiki.contoso.com/reviews/contoso/2214/1".into()),
            tags: strings(&["Ransomware"]),
            resolving_comment: Some("Root cause: VPN".into()),
            alerts: 7,
            alerts_reviewed: Some(5),
            entities: vec![Entity {
                kind: "device".into(),
                name: "fab-dc-02".into(),
                ids: BTreeMap::from([("mdeDeviceId".to_owned(), "1d7e".to_owned())]),
                verdict: Some("suspicious".into()),
                remediation_status: Some("remediated".into()),
                roles: strings(&["PrimaryDevice"]),
                alerts: strings(&["a2"]),
            }],
            products: vec![Product {
                service_source: "microsoftDefenderForEndpoint".into(),
                name: "Microsoft Defender for Endpoint".into(),
                alerts: 5,
            }],
            comments: vec![CommentRecord {
                author: Some("t.nguyen@fabrikam.com".into()),
                at: Some(t),
                text: "Picked up".into(),
            }],
        },
        story: Story {
            summary: strings(&["what", "impact", "data", "way in", "detection and response"]),
            outcome: Outcome {
                status: "resolved".into(),
                classification: "truePositive".into(),
                determination: "multiStagedAttack".into(),
                resolved_by: Some("t.nguyen@fabrikam.com".into()),
                resolved_at: Some(t),
                resolving_comment: Some("Root cause: VPN".into()),
                headline: "true positive — multi-staged attack".into(),
            },
            impact: Impact {
                hosts: strings(&["fab-fs-01"]),
                effects: strings(&["encryption"]),
                outage: Some(Window {
                    start: t,
                    end: Some(t),
                    duration_s: Some(3600),
                    basis: "alert timestamps, comment".into(),
                }),
                data_exposed: DataExposure {
                    state: "confirmed".into(),
                    what: strings(&["D:\\Shares\\Finance"]),
                    alerts: strings(&["a6"]),
                    volume: Some("2.1 GB".into()),
                    basis: strings(&["comment by k.osei@contoso.com"]),
                },
                exfiltration_to_legal_s: Some(600),
                extortion: Some("ransom note".into()),
                not_recorded: strings(&["notification"]),
            },
            exposed_credentials: vec![ExposedCredential {
                host: Some("fab-dc-02".into()),
                how: "NTDS.dit copy".into(),
                technique: "T1003.003".into(),
                artefact: Some("C:\\PerfLogs\\n\\Active Directory\\ntds.dit".into()),
                accounts: strings(&["svc-scan@fabrikam.com"]),
                at: Some(t),
                alerts: strings(&["a2"]),
            }],
            what_worked: vec![Note { text: "Tamper protection blocked".into(), evidence: strings(&["a5"]) }],
            open_questions: vec![OpenQuestion {
                rule: "dump_file_fate".into(),
                question: "Where did ntds.dit go?".into(),
                evidence: strings(&["a2"]),
            }],
            root_cause: Some(RootCause {
                text: "VPN accepted password-only sign-in".into(),
                author: Some("r.alvarez@fabrikam.com".into()),
                at: Some(t),
                source: "resolving_comment".into(),
            }),
            initial_access: InitialAccess {
                detected: true,
                techniques: strings(&["T1133"]),
                first_activity: Some(t),
                evidence: strings(&["svc-scan@fabrikam.com"]),
                alerts: strings(&["a1"]),
            },
            response: vec![ResponseAction {
                at: Some(t),
                at_latest: Some(t),
                action: "Isolated fab-jump-01".into(),
                by: "t.nguyen@fabrikam.com".into(),
                basis: "comment".into(),
                kind: "partial".into(),
                entities: strings(&["fab-jump-01"]),
            }],
            similar_incidents: vec![SimilarIncident {
                id: "2388".into(),
                title: "Multi-stage incident".into(),
                created: Some(t),
                shared_entities: strings(&["p.andersen@fabrikam.com"]),
                shared_techniques: strings(&["T1566.002"]),
                shared_titles: strings(&["A potentially malicious URL click was detected"]),
                same_way_in: true,
            }],
            recurring: Some(Recurring {
                what: "T1566.002".into(),
                incidents: strings(&["2388"]),
                note: "twice within six months".into(),
            }),
        },
        alerts: vec![AlertSummary {
            id: "a2".into(),
            title: "Suspicious credential dump from NTDS.dit".into(),
            severity: "high".into(),
            status: "resolved".into(),
            category: Some("CredentialAccess".into()),
            created: Some(t),
            first_activity: Some(t),
            last_activity: Some(t),
            resolved: Some(t),
            service_source: Some("microsoftDefenderForEndpoint".into()),
            detection_source: Some("microsoftDefenderForEndpoint".into()),
            product: "Microsoft Defender for Endpoint".into(),
            techniques: strings(&["T1003.003"]),
            url: Some("https://security.microsoft.com/alerts/a2".into()),
        }],
        timeline: vec![TimelineEntry {
            at: t,
            kind: "alert".into(),
            text: "Suspicious credential dump from NTDS.dit (high)".into(),
            alert: Some("a2".into()),
            entity: Some("fab-dc-02".into()),
        }],
        timeline_untimed: 1,
        unattended_alerts: vec![UnattendedAlert {
            alert: "a2".into(),
            title: "Suspicious credential dump from NTDS.dit".into(),
            severity: "high".into(),
            created: t,
            acted_on: Some(t),
            delay_s: 108_480,
        }],
        metrics: Metrics {
            first_activity: Some(t),
            first_alert: Some(t),
            time_to_detect_s: Some(1),
            time_to_resolve_s: Some(2),
            dwell_time_s: Some(3),
            dwell_time_at_most_s: Some(4),
            time_to_acknowledge_s: Some(5),
            time_to_contain_s: Some(6),
            containment: Containment {
                partial: Some(point("2026-06-13T15:41:00Z")),
                full: Some(point("2026-06-14T01:50:00Z")),
            },
            basis: BTreeMap::from([("time_to_acknowledge_s".to_owned(), "comments".to_owned())]),
            observation_precision_s: Some(60),
        },
        basis: Basis {
            attack_domain: "enterprise-attack".into(),
            attack_version: Some("17.1".into()),
            inventory: Some(InventoryBasis {
                sources: 1,
                techniques: 2,
                deployed: Some(hindsight::review::DeployedRules {
                    kind: "defender-custom-detections".into(),
                    read_at: chrono::DateTime::parse_from_rfc3339("2026-11-20T06:00:00Z").unwrap().to_utc(),
                    rules: 40,
                    switched_off: 3,
                }),
            }),
            controls_attack_version: Some("16.1".into()),
            licence: Some("E3".into()),
            history_recorded: true,
        },
        techniques: vec![TechniqueFinding {
            id: "T1003.003".into(),
            name: Some("NTDS".into()),
            status: TechniqueStatus::Active,
            received_ids: strings(&["T1003.003"]),
            tactics: strings(&["credential-access"]),
            alerts: strings(&["a2"]),
            first_seen: Some(t),
            last_seen: Some(t),
            covered: Some(true),
            url: Some("https://attack.mitre.org/techniques/T1003/003/".into()),
            service_sources: strings(&["microsoftDefenderForEndpoint"]),
            detection_sources: strings(&["microsoftDefenderForEndpoint"]),
            products: strings(&["Microsoft Defender for Endpoint"]),
            platforms: strings(&["Windows"]),
        }],
        tactics: vec![TacticState {
            shortname: "credential-access".into(),
            name: "Credential Access".into(),
            state: StageState::Observed,
            techniques: strings(&["T1003.003"]),
            alerts: strings(&["a2"]),
            reason: Some("4 endpoint alerts on fs-02: something ran there, and no alert shows what started it.".into()),
        }],
        gaps: Gaps {
            uncovered: vec![UncoveredTechnique {
                id: "T1053.005".into(),
                name: "Scheduled Task".into(),
                alerts: strings(&["a1"]),
                data_components: vec![data_component.clone()],
                detection_strategies: strings(&["DET0001"]),
            }],
            coverage: vec![TechniqueCoverage {
                technique: "T1071.001".into(),
                name: Some("Web Protocols".into()),
                state: CoverageState::Vendor,
                alerts: vec![CoverageAlert {
                    id: "a2".into(),
                    title: "Cobalt Strike command and control detected".into(),
                    detection_source: Some("microsoftDefenderForEndpoint".into()),
                    product: "Microsoft Defender for Endpoint".into(),
                    own_rule: false,
                }],
                rules: strings(&["Beaconing to a rare domain"]),
                parent_rules: strings(&["Proxy beaconing rule"]),
                disabled_rules: strings(&["Defender custom detection \"HTTPS beacon\" (disabled)"]),
                note: Some("T1071 rule exists; not specific to T1071.001".into()),
            }],
            blind_stages: vec![BlindStage {
                tactic: "execution".into(),
                name: "Execution".into(),
                reason: "4 endpoint alerts on fs-02: something ran there, and no alert shows what started it.".into(),
                likely: vec![LikelyTechnique {
                    id: "T1059.001".into(),
                    name: "PowerShell".into(),
                    likelihood: 0.5,
                    used_by: strings(&["G1015"]),
                    reason: Some("software S0154 Cobalt Strike is known to use it".into()),
                    covered: Some(false),
                    data_components: vec![data_component],
                    hunts: vec![hunt.clone()],
                    hunt_note: Some("No hunt specific to T1059.001; these are T1059's.".into()),
                }],
            }],
            hunt_window: Some(HuntWindow { start: t, end: t, end_basis: "full containment".into(), run_before: t }),
            estate_hunts: vec![Hunt { scope: "estate".into(), ..hunt }],
            late_detections: vec![LateDetection {
                alert: "a1".into(),
                title: "Suspicious scheduled task".into(),
                first_activity: t,
                created: t,
                delay_s: 60,
                techniques: strings(&["T1053.005"]),
            }],
            platforms: strings(&["Windows", "Identity Provider"]),
        },
        mitigations: vec![MitigationFinding {
            id: "M1026".into(),
            name: "Privileged Account Management".into(),
            techniques: strings(&["T1003.003"]),
        }],
        controls: vec![ControlFinding {
            capability_id: "cap".into(),
            description: "Credential Guard".into(),
            group: "Defender for Endpoint".into(),
            licence: Some("E5".into()),
            techniques: vec![ControlUse {
                technique: "T1003.003".into(),
                category: "protect".into(),
                score: "significant".into(),
                observed: true,
            }],
        }],
        attribution: vec![Candidate {
            id: "G1015".into(),
            name: "Scattered Spider".into(),
            kind: CandidateKind::Group,
            score: 0.4,
            shared_techniques: strings(&["T1003.003"]),
            techniques_via_software: strings(&["T1486"]),
            actor_match: Some("Octo Tempest".into()),
            basis: strings(&["named", "software", "techniques"]),
            software: vec![SoftwareEvidence {
                id: "S1068".into(),
                name: "BlackCat".into(),
                kind: "malware".into(),
                matched: "Ransom:Win64/BlackCat".into(),
                alerts: strings(&["a9"]),
            }],
            confidence: Confidence::Low,
            against: strings(&["The actor label \"Octo Tempest\" is on the alerts that detected S1068 BlackCat."]),
            rivals: 6,
            hallmarks_missing: strings(&["T1621"]),
            attributed_to: vec![],
        }],
        attribution_note: ATTRIBUTION_NOTE.into(),
        knowledge_gaps: vec![
            KnowledgeGap::FirstSeen { technique: "T1003.003".into(), name: "NTDS".into() },
            KnowledgeGap::UnmappedAlert { alert: "a7".into(), title: "t".into(), category: Some("Ransomware".into()) },
            KnowledgeGap::UnknownTechnique { received: "T1999".into(), alerts: strings(&["a7"]) },
            KnowledgeGap::OutdatedId {
                received: "T1086".into(),
                current: Some("T1059.001".into()),
                alerts: strings(&["a7"]),
            },
            KnowledgeGap::OutdatedId { received: "T1064".into(), current: None, alerts: strings(&["a7"]) },
            KnowledgeGap::NoMitigation { technique: "T1".into(), name: "n".into() },
            KnowledgeGap::NoDetectionData { technique: "T1".into(), name: "n".into() },
        ],
        follow_ups: vec![FollowUp {
            id: "FU-1".into(),
            kind: "reset_credentials".into(),
            priority: Priority::High,
            title: "Reset svc-scan".into(),
            detail: "d".into(),
            evidence: Evidence {
                techniques: strings(&["T1003.003"]),
                alerts: strings(&["a2"]),
                tactics: strings(&["credential-access"]),
                data_components: strings(&["DC0032"]),
                mitigations: strings(&["M1026"]),
                entities: strings(&["svc-scan"]),
                hunts: strings(&["rdp-from-internet-estate"]),
            },
            category: "now".into(),
            done_when: "svc-scan's password last set after 2026-06-12 09:04 UTC.".into(),
            owner: Some("iam-team@fabrikam.com".into()),
            area: "identity".into(),
            due: Some(chrono::NaiveDate::from_ymd_opt(2026, 6, 24).unwrap()),
            status: "open".into(),
            raised_before: 1,
        }],
        layer,
        retro_hunts: Some(RetroHunts {
            finished_at: t,
            ran: 1,
            with_hits: 1,
            results: vec![
                HuntResult {
                    id: "web-shell-activity".into(),
                    title: "Shells started by web servers".into(),
                    stage: "initial-access".into(),
                    technique: "T1190".into(),
                    status: "hits".into(),
                    reason: None,
                    detail: Some("first rows only".into()),
                    timespan: Some("2026-06-01T03:18:00Z/2026-06-14T03:30:00Z".into()),
                    rows: 2,
                    columns: vec!["DeviceName".into()],
                    first_rows: vec![serde_json::from_value(serde_json::json!({"DeviceName": "fs-02"})).unwrap()],
                },
                HuntResult {
                    id: "signins-new-countries".into(),
                    title: "Sign-ins from new countries".into(),
                    stage: "initial-access".into(),
                    technique: "T1078".into(),
                    status: "not_run".into(),
                    reason: Some("quota".into()),
                    detail: None,
                    timespan: None,
                    rows: 0,
                    columns: vec![],
                    first_rows: vec![],
                },
            ],
        }),
    }
}
