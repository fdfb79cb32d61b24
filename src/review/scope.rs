//! The incident's scope: the entities of every alert merged across alerts, the products that
//! raised the alerts (named as Microsoft's portal names them), the alerts by title, the comments.
//!
//! The name tables live here, once: [`product_name`] for Graph's `serviceSource`,
//! [`detection_name`] for its `detectionSource`, [`entity_kind`] for evidence types; the
//! renderer and the story call them instead of keeping their own.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::model::*;
use crate::model::{Alert, Evidence, Incident};

/// Evidence types (`@odata.type` without its namespace) and the short kind a reader sees, in
/// the order the scope lists kinds. Types not here keep their `@odata.type` name.
const KINDS: &[(&str, &str)] = &[
    ("deviceEvidence", "device"),
    ("userEvidence", "user"),
    ("mailboxEvidence", "mailbox"),
    ("ipEvidence", "ip"),
    ("urlEvidence", "url"),
    ("fileEvidence", "file"),
    ("processEvidence", "process"),
    ("cloudApplicationEvidence", "cloud_app"),
    ("oauthApplicationEvidence", "oauth_app"),
    ("servicePrincipalEvidence", "service_principal"),
    ("registryKeyEvidence", "registry_key"),
    ("registryValueEvidence", "registry_value"),
    ("analyzedMessageEvidence", "analyzed_message"),
    ("mailClusterEvidence", "mail_cluster"),
    ("submissionMailEvidence", "submission_mail"),
    ("mailboxConfigurationEvidence", "mailbox_configuration"),
    ("securityGroupEvidence", "security_group"),
    ("cloudLogonSessionEvidence", "cloud_logon_session"),
    ("cloudLogonRequestEvidence", "cloud_logon_request"),
    ("hostLogonSessionEvidence", "host_logon_session"),
    ("azureResourceEvidence", "azure_resource"),
    ("amazonResourceEvidence", "amazon_resource"),
    ("googleCloudResourceEvidence", "google_cloud_resource"),
    ("blobContainerEvidence", "blob_container"),
    ("blobEvidence", "blob"),
    ("kubernetesClusterEvidence", "kubernetes_cluster"),
    ("kubernetesNamespaceEvidence", "kubernetes_namespace"),
    ("kubernetesControllerEvidence", "kubernetes_controller"),
    ("kubernetesPodEvidence", "kubernetes_pod"),
    ("kubernetesServiceEvidence", "kubernetes_service"),
    ("kubernetesServiceAccountEvidence", "kubernetes_service_account"),
    ("kubernetesSecretEvidence", "kubernetes_secret"),
    ("containerEvidence", "container"),
    ("containerImageEvidence", "container_image"),
    ("containerRegistryEvidence", "container_registry"),
    ("dnsEvidence", "dns"),
    ("networkConnectionEvidence", "network_connection"),
    ("nicEvidence", "nic"),
    ("malwareEvidence", "malware"),
];

/// The short kind of an evidence type (`deviceEvidence` → `device`); an unknown type is kept
/// by its `@odata.type` name.
pub(crate) fn entity_kind(evidence_kind: &str) -> &str {
    KINDS.iter().find(|(t, _)| t.eq_ignore_ascii_case(evidence_kind)).map_or(evidence_kind, |(_, k)| k)
}

/// Where a kind sorts: the order of [`KINDS`], unknown kinds after.
fn kind_rank(kind: &str) -> usize {
    KINDS.iter().position(|(_, k)| *k == kind).unwrap_or(KINDS.len())
}

/// Properties that identify an entity of a kind: two items sharing one are the same entity,
/// two items with different values of one are not.
fn merge_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "device" => &["mdeDeviceId", "azureAdDeviceId"],
        "user" | "mailbox" => &["azureAdUserId", "userSid", "userPrincipalName"],
        "file" => &["sha256", "sha1"],
        "cloud_app" => &["appId"],
        "oauth_app" => &["appId", "objectId"],
        "service_principal" => &["servicePrincipalObjectId", "appId"],
        "analyzed_message" | "submission_mail" => &["networkMessageId", "internetMessageId"],
        "security_group" => &["securityGroupId"],
        "cloud_logon_session" | "host_logon_session" => &["sessionId"],
        "cloud_logon_request" => &["requestId"],
        "azure_resource" => &["resourceId"],
        "amazon_resource" => &["amazonResourceId"],
        "google_cloud_resource" => &["fullResourceName"],
        "container" => &["containerId"],
        _ => &[],
    }
}

/// The identifiers an entity shows: its merge keys, and for a process its ID and image hashes
/// (which do not make two processes one).
fn id_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "process" => &["processId", "sha256", "sha1"],
        k => merge_keys(k),
    }
}

/// Worse verdicts rank higher; an unknown value above "unknown", below "suspicious".
fn verdict_rank(v: &str) -> u8 {
    match v.to_ascii_lowercase().as_str() {
        "malicious" => 4,
        "suspicious" => 3,
        "nothreatsfound" => 1,
        "unknown" | "unknownfuturevalue" => 0,
        _ => 2,
    }
}

/// A remediation seen in any alert outranks "none": the entity was acted on.
fn remediation_rank(v: &str) -> u8 {
    match v.to_ascii_lowercase().as_str() {
        "remediated" => 5,
        "prevented" | "blocked" => 4,
        "notfound" => 2,
        "none" | "unknownfuturevalue" => 0,
        _ => 1,
    }
}

/// Replaces `current` with `new` when `new` ranks higher.
fn keep_worst(current: &mut Option<String>, new: Option<&String>, rank: fn(&str) -> u8) {
    if let Some(n) = new
        && current.as_deref().is_none_or(|c| rank(n) > rank(c))
    {
        *current = Some(n.clone());
    }
}

/// Lower-cased identifier values of an item, as (key, value).
fn strong_ids(kind: &str, e: &Evidence) -> Vec<(&'static str, String)> {
    merge_keys(kind).iter().filter_map(|k| e.props.get(*k).map(|v| (*k, v.to_lowercase()))).collect()
}

/// Written for an item with no name: items of one kind without a name are listed together,
/// which says how many alerts carry one, not that they are one entity.
const UNNAMED: &str = "(not named in the evidence)";

/// Every evidence entity of every alert, merged: a device is one device however many alerts
/// name it. Items are the same entity when they share a strong identifier (Defender device ID,
/// Entra object ID, UPN, SHA-256, …), else when they have the same kind and name (ignoring
/// case) and no identifier that differs. Most alerts first, then by kind and name.
/// The short host names (lower case, no domain) of the devices in the alerts' evidence,
/// sorted, each once.
pub(crate) fn host_names<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> Vec<String> {
    let mut hosts: Vec<String> = alerts
        .into_iter()
        .flat_map(|a| &a.evidence)
        .filter(|e| e.kind == "deviceEvidence")
        .filter_map(|e| e.entity.as_deref())
        .map(|h| h.split('.').next().unwrap_or(h).to_ascii_lowercase())
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

pub(crate) fn entities(incident: &Incident) -> Vec<Entity> {
    let mut out: Vec<Entity> = Vec::new();
    let mut by_id: HashMap<(String, &'static str, String), usize> = HashMap::new();
    let mut by_name: HashMap<(String, String), usize> = HashMap::new();
    for alert in &incident.alerts {
        for e in &alert.evidence {
            let kind = entity_kind(&e.kind).to_owned();
            let name = e.entity.clone().unwrap_or_else(|| UNNAMED.to_owned());
            let ids = strong_ids(&kind, e);
            let name_key = (kind.clone(), name.to_lowercase());
            let conflicts =
                |x: &Entity| ids.iter().any(|(k, v)| x.ids.get(*k).is_some_and(|mine| mine.to_lowercase() != *v));
            let found = ids
                .iter()
                .find_map(|(k, v)| by_id.get(&(kind.clone(), *k, v.clone())).copied())
                .or_else(|| by_name.get(&name_key).copied().filter(|&i| !conflicts(&out[i])));
            let ix = match found {
                Some(i) => i,
                None => {
                    out.push(Entity {
                        kind: kind.clone(),
                        name: name.clone(),
                        ids: BTreeMap::new(),
                        verdict: None,
                        remediation_status: None,
                        roles: vec![],
                        alerts: vec![],
                    });
                    out.len() - 1
                }
            };
            merge(&mut out[ix], e, &name, &alert.id);
            for (k, v) in ids {
                by_id.entry((kind.clone(), k, v)).or_insert(ix);
            }
            by_name.entry(name_key).or_insert(ix);
        }
    }
    for e in &mut out {
        e.roles.sort_by_key(|r| r.to_lowercase());
    }
    out.sort_by(|a, b| {
        b.alerts
            .len()
            .cmp(&a.alerts.len())
            .then_with(|| kind_rank(&a.kind).cmp(&kind_rank(&b.kind)))
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

/// One more evidence item of `entity`, from `alert`.
fn merge(entity: &mut Entity, e: &Evidence, name: &str, alert: &str) {
    // A UPN or address is what a reader knows an account by; an item named `DOMAIN\account`
    // that turns out to be the same user takes it.
    if matches!(entity.kind.as_str(), "user" | "mailbox") && !entity.name.contains('@') && name.contains('@') {
        entity.name = name.to_owned();
    }
    for k in id_keys(&entity.kind) {
        if let Some(v) = e.props.get(*k) {
            entity.ids.entry((*k).to_owned()).or_insert_with(|| v.clone());
        }
    }
    keep_worst(&mut entity.verdict, e.verdict.as_ref(), verdict_rank);
    keep_worst(&mut entity.remediation_status, e.remediation_status.as_ref(), remediation_rank);
    for r in e.roles.iter().chain(&e.detailed_roles) {
        if !entity.roles.iter().any(|x| x.eq_ignore_ascii_case(r)) {
            entity.roles.push(r.clone());
        }
    }
    if !entity.alerts.iter().any(|a| a == alert) {
        entity.alerts.push(alert.to_owned());
    }
}

/// Graph's `serviceSource` as Microsoft's portal names the product; a value not known here
/// is spelled out from its camelCase.
pub(crate) fn product_name(service_source: &str) -> String {
    lookup_name(PRODUCTS, service_source)
}

/// Graph's `serviceSource` values and the portal's names for them.
const PRODUCTS: &[(&str, &str)] = &[
    ("microsoftDefenderForEndpoint", "Microsoft Defender for Endpoint"),
    ("microsoftDefenderForIdentity", "Microsoft Defender for Identity"),
    ("microsoftDefenderForCloudApps", "Microsoft Defender for Cloud Apps"),
    ("microsoftDefenderForOffice365", "Microsoft Defender for Office 365"),
    ("microsoft365Defender", "Microsoft Defender XDR"),
    ("azureAdIdentityProtection", "Microsoft Entra ID Protection"),
    ("microsoftAppGovernance", "App governance"),
    ("dataLossPrevention", "Data Loss Prevention"),
    ("microsoftDefenderForCloud", "Microsoft Defender for Cloud"),
    ("microsoftSentinel", "Microsoft Sentinel"),
    ("microsoftInsiderRiskManagement", "Insider Risk Management"),
    ("microsoftThreatIntelligence", "Microsoft Threat Intelligence"),
    ("unknown", "Unknown"),
    ("unknownFutureValue", "A product Graph did not name (unknownFutureValue)"),
];

/// Graph's `detectionSource` as Microsoft's portal names it (a `serviceSource` value as the
/// product); a value not known here is spelled out from its camelCase.
pub(crate) fn detection_name(detection_source: &str) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("unknown", "Unknown"),
        ("microsoftDefenderForEndpoint", "Microsoft Defender for Endpoint"),
        ("antivirus", "Antivirus"),
        ("smartScreen", "SmartScreen"),
        ("customTi", "Custom TI"),
        ("microsoftDefenderForOffice365", "Microsoft Defender for Office 365"),
        ("automatedInvestigation", "Automated investigation"),
        ("microsoftThreatExperts", "Microsoft Defender Experts"),
        ("customDetection", "Custom detection"),
        ("microsoftDefenderForIdentity", "Microsoft Defender for Identity"),
        ("cloudAppSecurity", "Microsoft Defender for Cloud Apps"),
        ("microsoft365Defender", "Microsoft Defender XDR"),
        ("azureAdIdentityProtection", "Microsoft Entra ID Protection"),
        ("manual", "Manual"),
        ("microsoftDataLossPrevention", "Data Loss Prevention"),
        ("appGovernancePolicy", "App governance policy"),
        ("appGovernanceDetection", "App governance detection"),
        ("unknownFutureValue", "A source Graph did not name (unknownFutureValue)"),
        ("microsoftDefenderForCloud", "Microsoft Defender for Cloud"),
        ("microsoftDefenderForIoT", "Microsoft Defender for IoT"),
        ("microsoftDefenderForServers", "Microsoft Defender for Servers"),
        ("microsoftDefenderForStorage", "Microsoft Defender for Storage"),
        ("microsoftDefenderForDNS", "Microsoft Defender for DNS"),
        ("microsoftDefenderForDatabases", "Microsoft Defender for Databases"),
        ("microsoftDefenderForContainers", "Microsoft Defender for Containers"),
        ("microsoftDefenderForNetwork", "Microsoft Defender for Network"),
        ("microsoftDefenderForAppService", "Microsoft Defender for App Service"),
        ("microsoftDefenderForKeyVault", "Microsoft Defender for Key Vault"),
        ("microsoftDefenderForResourceManager", "Microsoft Defender for Resource Manager"),
        ("microsoftDefenderForApiManagement", "Microsoft Defender for APIs"),
        ("nrtAlerts", "Microsoft Sentinel NRT analytics rule"),
        ("scheduledAlerts", "Microsoft Sentinel scheduled analytics rule"),
        ("microsoftDefenderThreatIntelligenceAnalytics", "Microsoft Defender Threat Intelligence analytics"),
        ("builtInMl", "Built-in machine learning"),
        ("microsoftInsiderRiskManagement", "Insider Risk Management"),
        ("microsoftThreatIntelligence", "Microsoft Threat Intelligence"),
        ("microsoftDefenderForAIServices", "Microsoft Defender for AI services"),
        ("securityCopilot", "Security Copilot"),
        ("microsoftSentinel", "Microsoft Sentinel"),
    ];
    // Payloads also carry service-source values here (`microsoftDefenderForCloudApps`).
    let known = NAMES.iter().chain(PRODUCTS).find(|(k, _)| k.eq_ignore_ascii_case(detection_source.trim()));
    known.map_or_else(|| spell_out(detection_source.trim()), |(_, n)| (*n).to_owned())
}

/// What an alert shows as its product: its detection source, else its service source, else
/// Graph's `productName`, as the portal names them.
pub(crate) fn alert_product(alert: &Alert) -> String {
    let given = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    given(&alert.detection_source)
        .map(|d| detection_name(&d))
        .or_else(|| given(&alert.service_source).map(|s| product_name(&s)))
        .or_else(|| given(&alert.product_name))
        .unwrap_or_else(|| "Not recorded".to_owned())
}

fn lookup_name(names: &[(&str, &str)], value: &str) -> String {
    let value = value.trim();
    names.iter().find(|(k, _)| k.eq_ignore_ascii_case(value)).map_or_else(|| spell_out(value), |(_, n)| (*n).to_owned())
}

/// `microsoftDefenderForIoT` → "Microsoft Defender for IoT", `microsoft365Defender` →
/// "Microsoft 365 Defender", `newAISource` → "New AI Source": words split where the case or
/// the digits change, an acronym kept whole, small words lower-cased.
fn spell_out(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let boundary = prev.is_some_and(|p| {
            // "IoT": an upper-case letter after "Io" ends an acronym, it starts no word.
            let mixed_acronym = word.chars().count() <= 2
                && word.starts_with(char::is_uppercase)
                && next.is_none_or(|n| !n.is_lowercase());
            (p.is_lowercase() && c.is_uppercase() && !mixed_acronym)
                || (p.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase))
                || (p.is_ascii_digit() != c.is_ascii_digit() && p.is_alphanumeric() && c.is_alphanumeric())
        });
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
        .iter()
        .enumerate()
        .map(|(i, w)| match (i, w.as_str()) {
            (0, _) => {
                let mut cs = w.chars();
                cs.next().map(|f| f.to_uppercase().chain(cs).collect()).unwrap_or_default()
            }
            (_, "For" | "Of" | "And" | "To" | "On" | "In") => w.to_lowercase(),
            _ => w.clone(),
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// The products that raised the alerts (by `serviceSource`), most alerts first.
pub(crate) fn products(incident: &Incident) -> Vec<Product> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for a in &incident.alerts {
        let source = a.service_source.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("unknown");
        // `MicrosoftDefenderForEndpoint` is `microsoftDefenderForEndpoint`: counted once, as Graph spells it.
        let source = PRODUCTS.iter().find(|(k, _)| k.eq_ignore_ascii_case(source)).map_or(source, |(k, _)| k);
        *counts.entry(source.to_owned()).or_default() += 1;
    }
    let mut out: Vec<Product> = counts
        .into_iter()
        .map(|(service_source, alerts)| Product { name: product_name(&service_source), service_source, alerts })
        .collect();
    out.sort_by(|a, b| b.alerts.cmp(&a.alerts).then_with(|| a.name.cmp(&b.name)));
    out
}

/// Every alert, in the order received, with its product named and its techniques by their
/// current IDs.
pub(crate) fn alerts(incident: &Incident, catalog: &crate::attack::Catalog) -> Vec<AlertSummary> {
    incident
        .alerts
        .iter()
        .map(|a| {
            let mut techniques: Vec<String> =
                a.mitre_techniques.iter().filter_map(|t| super::mapping::canonical_technique(catalog, t)).collect();
            techniques.sort();
            techniques.dedup();
            AlertSummary {
                id: a.id.clone(),
                title: a.title.clone(),
                severity: a.severity.as_str().to_owned(),
                status: a.status.as_str().to_owned(),
                category: a.category.clone(),
                created: a.created,
                first_activity: a.first_activity,
                last_activity: a.last_activity,
                resolved: a.resolved,
                service_source: a.service_source.clone(),
                detection_source: a.detection_source.clone(),
                product: alert_product(a),
                techniques,
                url: a.url.clone(),
            }
        })
        .collect()
}

/// The incident's comments and its alerts' comments, oldest first, each once (same author,
/// time and text); comments without a time last, in the order received.
pub(crate) fn comments(incident: &Incident) -> Vec<CommentRecord> {
    let all = incident.comments.iter().chain(incident.alerts.iter().flat_map(|a| &a.comments));
    let mut seen = HashSet::new();
    let mut out: Vec<CommentRecord> = all
        .filter(|c| seen.insert((c.author.as_deref(), c.created, c.comment.as_str())))
        .map(|c| CommentRecord { author: c.author.clone(), at: c.created, text: c.comment.clone() })
        .collect();
    // Stable: comments of the same time keep the order received.
    out.sort_by_key(|c| (c.at.is_none(), c.at));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Comment;
    use serde_json::{Value, json};

    fn ev(t: &str, fields: Value) -> Value {
        let mut v = fields;
        v["@odata.type"] = json!(format!("#microsoft.graph.security.{t}"));
        v
    }

    fn incident(alerts: Value) -> Incident {
        Incident::from_graph(&json!({"id": "1", "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": alerts}))
            .unwrap()
    }

    fn device(name: &str, id: &str, verdict: &str) -> Value {
        ev(
            "deviceEvidence",
            json!({"deviceDnsName": name, "hostName": name.split('.').next(), "mdeDeviceId": id, "verdict": verdict,
                "remediationStatus": "none", "roles": [], "detailedRoles": ["PrimaryDevice"]}),
        )
    }

    fn user(upn: Option<&str>, account: &str, oid: Option<&str>) -> Value {
        ev(
            "userEvidence",
            json!({"verdict": "suspicious", "roles": ["compromised"],
                "userAccount": {"accountName": account, "domainName": "CONTOSO", "userPrincipalName": upn, "azureAdUserId": oid}}),
        )
    }

    #[test]
    fn a_device_named_by_many_alerts_is_one_entity_with_the_worst_verdict() {
        let i = incident(json!([
            {"id": "a1", "evidence": [device("ts-gw-01.corp.contoso.com", "D1", "suspicious")]},
            // Same Defender ID, the name in another case and without its domain: still the same device.
            {"id": "a2", "evidence": [device("TS-GW-01", "d1", "malicious")]},
            {"id": "a3", "evidence": [device("fs-02.corp.contoso.com", "D2", "suspicious"),
                ev("fileEvidence", json!({"fileDetails": {"fileName": "locker.exe", "sha256": "AB12"}, "verdict": "malicious", "remediationStatus": "remediated"}))]},
            {"id": "a4", "evidence": [ev("fileEvidence", json!({"fileDetails": {"fileName": "invoice.exe", "sha256": "ab12"}, "remediationStatus": "none"}))]},
        ]));
        let e = entities(&i);
        assert_eq!(e.len(), 3, "{e:#?}");
        let gw = &e[0];
        assert_eq!((gw.kind.as_str(), gw.name.as_str()), ("device", "ts-gw-01.corp.contoso.com"));
        assert_eq!(gw.alerts, ["a1", "a2"]);
        assert_eq!(gw.verdict.as_deref(), Some("malicious"));
        assert_eq!(gw.ids["mdeDeviceId"], "D1");
        assert_eq!(gw.roles, ["PrimaryDevice"]);
        // One file under two names, by its hash; remediated in one alert is remediated.
        let file = &e[1];
        assert_eq!((file.kind.as_str(), file.name.as_str()), ("file", "locker.exe"));
        assert_eq!(file.alerts, ["a3", "a4"]);
        assert_eq!(file.remediation_status.as_deref(), Some("remediated"));
        assert_eq!(e[2].name, "fs-02.corp.contoso.com");
    }

    #[test]
    fn merges_by_name_ignoring_case_unless_an_identifier_differs() {
        let i = incident(json!([
            {"id": "a1", "evidence": [user(None, "svc-backup", Some("U1")), ev("ipEvidence", json!({"ipAddress": "45.141.87.12", "roles": ["attacker"]}))]},
            // The same account, now with its UPN: named by the UPN.
            {"id": "a2", "evidence": [user(Some("svc-backup@contoso.com"), "svc-backup", Some("u1")),
                ev("ipEvidence", json!({"ipAddress": "45.141.87.12", "roles": ["Source"]}))]},
            // Named as before but with no identifier: merged by name.
            {"id": "a3", "evidence": [user(None, "SVC-BACKUP", None)]},
            // Same name, different Entra object ID: another account.
            {"id": "a4", "evidence": [user(None, "svc-backup", Some("u2"))]},
        ]));
        let e = entities(&i);
        let users: Vec<&Entity> = e.iter().filter(|x| x.kind == "user").collect();
        assert_eq!(users.len(), 2, "{users:#?}");
        assert_eq!(users[0].name, "svc-backup@contoso.com");
        assert_eq!(users[0].alerts, ["a1", "a2", "a3"]);
        assert_eq!(users[0].ids["azureAdUserId"], "U1");
        assert_eq!(users[0].ids["userPrincipalName"], "svc-backup@contoso.com");
        assert_eq!(users[1].alerts, ["a4"]);
        let ip = e.iter().find(|x| x.kind == "ip").unwrap();
        assert_eq!(ip.alerts, ["a1", "a2"]);
        assert_eq!(ip.roles, ["attacker", "Source"]);
    }

    #[test]
    fn unknown_and_untyped_evidence_is_kept() {
        let i = incident(json!([{"id": "a1", "evidence": [
            ev("aiAgentEvidence", json!({"displayName": "Agent 7", "verdict": "suspicious"})),
            {"verdict": "malicious"},
            ev("oauthApplicationEvidence", json!({"appId": "app-1", "displayName": "MailSync"})),
            ev("registryValueEvidence", json!({"registryKey": "HKLM\\Run", "registryValueName": "u"})),
            ev("analyzedMessageEvidence", json!({"subject": "Invoice", "networkMessageId": "n1"})),
        ]}]));
        let kinds: Vec<(String, String)> = entities(&i).into_iter().map(|e| (e.kind, e.name)).collect();
        assert_eq!(
            kinds,
            [
                ("oauth_app".to_owned(), "MailSync".to_owned()),
                ("registry_value".into(), "HKLM\\Run\\u".into()),
                ("analyzed_message".into(), "Invoice".into()),
                ("aiAgentEvidence".into(), "Agent 7".into()),
                ("evidence".into(), UNNAMED.into()),
            ]
        );
    }

    #[test]
    fn order_is_most_alerts_then_kind_then_name_whatever_the_input_order() {
        let alerts = json!([
            {"id": "a1", "evidence": [ev("urlEvidence", json!({"url": "https://b.example"})), ev("urlEvidence", json!({"url": "https://A.example"})),
                device("zz.contoso.com", "D9", "suspicious"), ev("ipEvidence", json!({"ipAddress": "10.0.0.1"}))]},
            {"id": "a2", "evidence": [ev("ipEvidence", json!({"ipAddress": "10.0.0.1"}))]},
        ]);
        let names = |i: &Incident| entities(i).into_iter().map(|e| e.name).collect::<Vec<_>>();
        let i = incident(alerts.clone());
        assert_eq!(names(&i), ["10.0.0.1", "zz.contoso.com", "https://A.example", "https://b.example"]);
        let mut reversed = alerts;
        for a in reversed.as_array_mut().unwrap() {
            a["evidence"].as_array_mut().unwrap().reverse();
        }
        assert_eq!(names(&incident(reversed)), names(&i));
    }

    #[test]
    fn products_are_named_as_the_portal_names_them_and_counted() {
        let i = incident(json!([
            {"id": "a1", "serviceSource": "microsoftDefenderForEndpoint", "detectionSource": "antivirus"},
            {"id": "a2", "serviceSource": "MicrosoftDefenderForEndpoint", "detectionSource": "customDetection"},
            {"id": "a3", "serviceSource": "azureAdIdentityProtection"},
            {"id": "a4", "serviceSource": "microsoftDefenderForEndpoint", "detectionSource": "automatedInvestigation"},
            {"id": "a5", "serviceSource": "microsoftPurviewSomethingNew"},
            {"id": "a6"},
        ]));
        let p: Vec<(String, usize)> = products(&i).into_iter().map(|p| (p.name, p.alerts)).collect();
        assert_eq!(
            p,
            [
                ("Microsoft Defender for Endpoint".to_owned(), 3),
                ("Microsoft Entra ID Protection".to_owned(), 1),
                ("Microsoft Purview Something New".to_owned(), 1),
                ("Unknown".to_owned(), 1),
            ]
        );
        let products: Vec<String> = i.alerts.iter().map(alert_product).collect();
        assert_eq!(
            products,
            [
                "Antivirus",
                "Custom detection",
                "Microsoft Entra ID Protection",
                "Automated investigation",
                "Microsoft Purview Something New",
                "Not recorded"
            ]
        );
    }

    #[test]
    fn names_known_and_unknown_sources() {
        assert_eq!(product_name("microsoft365Defender"), "Microsoft Defender XDR");
        assert_eq!(product_name("dataLossPrevention"), "Data Loss Prevention");
        assert_eq!(product_name("microsoftInsiderRiskManagement"), "Insider Risk Management");
        assert_eq!(detection_name("microsoftDefenderForEndpoint"), "Microsoft Defender for Endpoint");
        assert_eq!(detection_name("SCHEDULEDALERTS"), "Microsoft Sentinel scheduled analytics rule");
        assert_eq!(detection_name("microsoftDefenderForCloudApps"), "Microsoft Defender for Cloud Apps");
        assert_eq!(detection_name("microsoftAppGovernance"), "App governance");
        assert_eq!(spell_out("microsoftDefenderForIoT"), "Microsoft Defender for IoT");
        assert_eq!(spell_out("microsoftDefenderForAIAgents"), "Microsoft Defender for AI Agents");
        assert_eq!(spell_out("microsoft365Copilot"), "Microsoft 365 Copilot");
        assert_eq!(spell_out("microsoftDefenderForDNS"), "Microsoft Defender for DNS");
        assert_eq!(spell_out("x"), "X");
        assert_eq!(spell_out(""), "");
    }

    #[test]
    fn alerts_carry_their_product_and_current_technique_ids() {
        let catalog = crate::attack::store::embedded().unwrap();
        let i = incident(
            json!([{"id": "a1", "title": "PowerShell", "severity": "High", "serviceSource": "microsoftDefenderForEndpoint",
            "detectionSource": "microsoftDefenderForEndpoint", "mitreTechniques": ["T1086", "t1059.001", " ", "T9999"]}]),
        );
        let a = alerts(&i, &catalog);
        assert_eq!(a[0].product, "Microsoft Defender for Endpoint");
        assert_eq!(a[0].severity, "high");
        // T1086 was revoked by T1059.001: one technique, by its current ID; an unknown one as received.
        assert_eq!(a[0].techniques, ["T1059.001", "T9999"]);
        let mapped = super::super::mapping::map(&i, &catalog);
        let ids: Vec<&str> = mapped.techniques.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, a[0].techniques, "the IDs the mapping names its findings by");
        assert_eq!(mapped.techniques[0].service_sources, ["microsoftDefenderForEndpoint"]);
        assert_eq!(mapped.techniques[0].products, ["Microsoft Defender for Endpoint"]);
    }

    #[test]
    fn comments_oldest_first_once_untimed_last() {
        let mut i = incident(json!([{"id": "a1"}, {"id": "a2"}]));
        let at = |s: &str| Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc));
        let c = |text: &str, who: Option<&str>, when: Option<chrono::DateTime<chrono::Utc>>| Comment {
            comment: text.into(),
            author: who.map(str::to_owned),
            created: when,
        };
        i.comments = vec![
            c("isolated fs-02", Some("ann"), at("2026-10-21T00:25:00Z")),
            c("no time", Some("bob"), None),
            c("first look", Some("bob"), at("2026-10-20T23:00:00Z")),
        ];
        i.alerts[0].comments = vec![
            c("isolated fs-02", Some("ann"), at("2026-10-21T00:25:00Z")),
            c("isolated fs-02", Some("carl"), at("2026-10-21T00:25:00Z")),
        ];
        i.alerts[1].comments = vec![c("also untimed", None, None), c("no time", Some("bob"), None)];
        let got: Vec<(String, Option<String>)> = comments(&i).into_iter().map(|c| (c.text, c.author)).collect();
        let want = [
            ("first look", Some("bob")),
            ("isolated fs-02", Some("ann")),
            ("isolated fs-02", Some("carl")),
            ("no time", Some("bob")),
            ("also untimed", None),
        ];
        assert_eq!(got, want.map(|(t, a)| (t.to_owned(), a.map(str::to_owned))));
    }
}
