//! Filling a template: the incident's entities as KQL string literals, its window as datetimes.
//! Every value is escaped: an account name like `CONTOSO\svc"x` cannot end a string literal early
//! or inject an operator.

use std::collections::BTreeSet;
use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};

use super::library::{Part, Template};
use crate::model::Incident;

/// Values per list: a query with thousands of literals is slow to run and unreadable; the first
/// ones (sorted) are kept and the review's entity list has the rest.
pub const MAX_VALUES: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Start,
    End,
    DeviceIds,
    DeviceNames,
    AccountUpns,
    AccountObjectIds,
    AccountSids,
    AccountNames,
    Ips,
    Mailboxes,
    Sha256s,
    Sha1s,
    FileNames,
    Urls,
    Domains,
    AppIds,
}

const NAMES: &[(&str, Placeholder)] = &[
    ("start", Placeholder::Start),
    ("end", Placeholder::End),
    ("device_ids", Placeholder::DeviceIds),
    ("device_names", Placeholder::DeviceNames),
    ("account_upns", Placeholder::AccountUpns),
    ("account_object_ids", Placeholder::AccountObjectIds),
    ("account_sids", Placeholder::AccountSids),
    ("account_names", Placeholder::AccountNames),
    ("ips", Placeholder::Ips),
    ("mailboxes", Placeholder::Mailboxes),
    ("sha256s", Placeholder::Sha256s),
    ("sha1s", Placeholder::Sha1s),
    ("file_names", Placeholder::FileNames),
    ("urls", Placeholder::Urls),
    ("domains", Placeholder::Domains),
    ("app_ids", Placeholder::AppIds),
];

impl Placeholder {
    pub fn named(name: &str) -> Option<Placeholder> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
    }

    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, p)| *p == self).map_or("", |(n, _)| n)
    }

    /// Every placeholder, in the README's order.
    pub fn all() -> impl Iterator<Item = Placeholder> {
        NAMES.iter().map(|(_, p)| *p)
    }

    /// An entity list (not the window).
    pub fn is_list(self) -> bool {
        !matches!(self, Placeholder::Start | Placeholder::End)
    }
}

/// The incident's entities, as advanced hunting's columns hold them; each list sorted and
/// without duplicates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entities {
    pub device_ids: Vec<String>,
    pub device_names: Vec<String>,
    pub account_upns: Vec<String>,
    pub account_object_ids: Vec<String>,
    pub account_sids: Vec<String>,
    pub account_names: Vec<String>,
    pub ips: Vec<String>,
    pub mailboxes: Vec<String>,
    pub sha256s: Vec<String>,
    pub sha1s: Vec<String>,
    pub file_names: Vec<String>,
    pub urls: Vec<String>,
    pub domains: Vec<String>,
    pub app_ids: Vec<String>,
}

impl Entities {
    pub fn list(&self, p: Placeholder) -> &[String] {
        match p {
            Placeholder::Start | Placeholder::End => &[],
            Placeholder::DeviceIds => &self.device_ids,
            Placeholder::DeviceNames => &self.device_names,
            Placeholder::AccountUpns => &self.account_upns,
            Placeholder::AccountObjectIds => &self.account_object_ids,
            Placeholder::AccountSids => &self.account_sids,
            Placeholder::AccountNames => &self.account_names,
            Placeholder::Ips => &self.ips,
            Placeholder::Mailboxes => &self.mailboxes,
            Placeholder::Sha256s => &self.sha256s,
            Placeholder::Sha1s => &self.sha1s,
            Placeholder::FileNames => &self.file_names,
            Placeholder::Urls => &self.urls,
            Placeholder::Domains => &self.domains,
            Placeholder::AppIds => &self.app_ids,
        }
    }

    /// Everything the incident's evidence names that advanced hunting can filter on: what an
    /// incident-scoped hunt looks at.
    pub fn of(incident: &Incident) -> Entities {
        Entities::collect(incident, |_| true)
    }

    /// The incident's indicators: evidence Defender judged malicious or suspicious, or in the
    /// attacker's role. What an estate-wide sweep looks for — the organisation's own SharePoint
    /// site or a user's mailbox in the evidence is no indicator, and sweeping for it is noise.
    pub fn indicators(incident: &Incident) -> Entities {
        Entities::collect(incident, |e| {
            e.verdict
                .as_deref()
                .is_some_and(|v| v.eq_ignore_ascii_case("malicious") || v.eq_ignore_ascii_case("suspicious"))
                || e.roles.iter().any(|r| r.eq_ignore_ascii_case("attacker"))
        })
    }

    fn collect(incident: &Incident, keep: impl Fn(&crate::model::Evidence) -> bool) -> Entities {
        #[derive(Default)]
        struct Sets {
            device_ids: BTreeSet<String>,
            device_names: BTreeSet<String>,
            account_upns: BTreeSet<String>,
            account_object_ids: BTreeSet<String>,
            account_sids: BTreeSet<String>,
            account_names: BTreeSet<String>,
            ips: BTreeSet<String>,
            mailboxes: BTreeSet<String>,
            sha256s: BTreeSet<String>,
            sha1s: BTreeSet<String>,
            file_names: BTreeSet<String>,
            urls: BTreeSet<String>,
            domains: BTreeSet<String>,
            app_ids: BTreeSet<String>,
        }
        let mut s = Sets::default();
        let put = |set: &mut BTreeSet<String>, v: Option<&String>, lower: bool| {
            if let Some(v) = v.map(|v| v.trim()).filter(|v| !v.is_empty()) {
                set.insert(if lower { v.to_lowercase() } else { v.to_owned() });
            }
        };
        for e in incident.alerts.iter().flat_map(|a| &a.evidence).filter(|e| keep(e)) {
            let p = |k: &str| e.props.get(k);
            match e.kind.as_str() {
                "deviceEvidence" => {
                    put(&mut s.device_ids, p("mdeDeviceId"), true);
                    // DeviceName holds the FQDN for joined devices and the host name for others.
                    for name in [e.entity.as_ref(), p("hostName")].into_iter().flatten() {
                        let name = name.to_lowercase();
                        if let Some((host, _)) = name.split_once('.') {
                            s.device_names.insert(host.to_owned());
                        }
                        put(&mut s.device_names, Some(&name), false);
                    }
                }
                "userEvidence" | "mailboxEvidence" => {
                    put(&mut s.account_upns, p("userPrincipalName"), true);
                    put(&mut s.account_object_ids, p("azureAdUserId"), true);
                    put(&mut s.account_sids, p("userSid"), false);
                    put(&mut s.account_names, p("accountName"), true);
                    if e.kind == "mailboxEvidence" {
                        put(&mut s.mailboxes, p("primaryAddress"), true);
                    }
                }
                "ipEvidence" => put(&mut s.ips, p("ipAddress").or(e.entity.as_ref()), false),
                "fileEvidence" | "processEvidence" => {
                    put(&mut s.sha256s, p("sha256"), true);
                    put(&mut s.sha1s, p("sha1"), true);
                    put(&mut s.file_names, p("fileName"), true);
                    put(&mut s.account_upns, p("userPrincipalName"), true);
                }
                "urlEvidence" => {
                    put(&mut s.urls, p("url").or(e.entity.as_ref()), false);
                    let host = p("url")
                        .or(e.entity.as_ref())
                        .and_then(|u| url::Url::parse(u).ok()?.host_str().map(str::to_owned));
                    put(&mut s.domains, host.as_ref(), true);
                }
                "dnsEvidence" => put(&mut s.domains, p("domainName").or(e.entity.as_ref()), true),
                "analyzedMessageEvidence" | "submissionMailEvidence" => {
                    for k in ["recipientEmailAddress", "p1Sender", "p2Sender"] {
                        put(&mut s.mailboxes, p(k), true);
                    }
                    put(&mut s.ips, p("senderIp"), false);
                }
                // Entra application (client) IDs, as the hunting tables' ApplicationId and
                // OAuthAppId hold them. A cloudApplicationEvidence's `appId` is Defender for Cloud
                // Apps' own number for the app (20893, Exchange Online): no table's GUID, and
                // `has_any` over raw events would match it anywhere.
                "oauthApplicationEvidence" | "servicePrincipalEvidence" => {
                    put(&mut s.app_ids, p("appId").filter(|v| is_guid(v)), true);
                }
                _ => {}
            }
        }
        let v = |set: BTreeSet<String>| set.into_iter().take(MAX_VALUES).collect::<Vec<_>>();
        Entities {
            device_ids: v(s.device_ids),
            device_names: v(s.device_names),
            account_upns: v(s.account_upns),
            account_object_ids: v(s.account_object_ids),
            account_sids: v(s.account_sids),
            account_names: v(s.account_names),
            ips: v(s.ips),
            mailboxes: v(s.mailboxes),
            sha256s: v(s.sha256s),
            sha1s: v(s.sha1s),
            file_names: v(s.file_names),
            urls: v(s.urls),
            domains: v(s.domains),
            app_ids: v(s.app_ids),
        }
    }
}

/// The time a scoped hunt looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// First activity − 1 day (how the attacker got there often precedes the first alert) …
    /// `until` (containment, else resolution, else last activity) + 1 hour.
    pub fn around(first_activity: DateTime<Utc>, until: DateTime<Utc>) -> Window {
        Window { start: first_activity - Duration::days(1), end: until.max(first_activity) + Duration::hours(1) }
    }

    /// After this, advanced hunting no longer holds the window's start.
    pub fn run_before(&self) -> DateTime<Utc> {
        self.start + Duration::days(super::RETENTION_DAYS)
    }
}

/// A KQL string literal of any text: `"` and `\` escaped, control characters as escapes.
pub fn kql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn kql_datetime(t: DateTime<Utc>) -> String {
    format!("datetime({})", t.format("%Y-%m-%dT%H:%M:%SZ"))
}

/// The name a filled query gives a placeholder's value: `incident_device_names`.
fn variable(p: Placeholder) -> String {
    format!("incident_{}", p.name())
}

/// The template filled, or `None` when it cannot filter on anything of this incident (every
/// entity list it uses is empty) or is an incident hunt without a window.
///
/// The values are declared once at the top (`let incident_device_names = dynamic([…]);`) and
/// the query names them, so that it reads as the template does however many hosts there are.
pub fn fill(t: &Template, entities: &Entities, window: Option<&Window>) -> Option<String> {
    let used = t.placeholders();
    let lists: Vec<_> = used.iter().filter(|p| p.is_list()).collect();
    if !lists.is_empty() && lists.iter().all(|p| entities.list(**p).is_empty()) {
        return None;
    }
    let mut out = String::with_capacity(t.kql.len() + 256);
    for p in &used {
        let _ = write!(out, "let {} = ", variable(*p));
        match p {
            Placeholder::Start => out.push_str(&kql_datetime(window?.start)),
            Placeholder::End => out.push_str(&kql_datetime(window?.end)),
            p => {
                out.push_str("dynamic([");
                for (i, v) in entities.list(*p).iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&kql_string(v));
                }
                out.push_str("])");
            }
        }
        out.push_str(";\n");
    }
    for part in &t.parts {
        match part {
            Part::Text(s) => out.push_str(s),
            Part::Hole(p) => out.push_str(&variable(*p)),
        }
    }
    Some(out)
}

/// An application (client) ID: 8-4-4-4-12 hexadecimal digits.
fn is_guid(v: &str) -> bool {
    let parts: Vec<&str> = v.trim().split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hunts::Library;
    use serde_json::json;

    #[test]
    fn string_literals_escape_quotes_backslashes_and_control_characters() {
        assert_eq!(kql_string(r#"CONTOSO\svc"x"#), r#""CONTOSO\\svc\"x""#);
        assert_eq!(kql_string("a\nb\u{1}"), "\"a\\nb\\u0001\"");
        assert_eq!(kql_string("Ünïcode"), "\"Ünïcode\"");
    }

    #[test]
    fn entities_come_from_the_evidence_as_advanced_hunting_holds_them() {
        let i = Incident::from_graph(&json!({"id": "1", "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": [
            {"id": "a", "evidence": [
                {"@odata.type": "#microsoft.graph.security.deviceEvidence", "deviceDnsName": "FS-02.corp.contoso.com", "mdeDeviceId": "ABC123"},
                {"@odata.type": "#microsoft.graph.security.userEvidence", "userAccount": {"accountName": "Svc-Backup", "userPrincipalName": "Svc-Backup@Contoso.com", "azureAdUserId": "9F1C", "userSid": "S-1-5-21-1"}},
                {"@odata.type": "#microsoft.graph.security.fileEvidence", "fileDetails": {"fileName": "Locker.EXE", "sha256": "AB12"}},
                {"@odata.type": "#microsoft.graph.security.urlEvidence", "url": "https://Evil.example/x?a=1"},
                {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "45.141.87.12"},
                {"@odata.type": "#microsoft.graph.security.cloudApplicationEvidence", "appId": 20893, "displayName": "Microsoft Exchange Online"},
                {"@odata.type": "#microsoft.graph.security.oauthApplicationEvidence", "appId": "D3590ED6-52B3-4102-AEFF-AAD2292AB01C", "displayName": "Mail Sync"},
                {"@odata.type": "#microsoft.graph.security.oauthApplicationEvidence", "appId": "not-an-id"}
            ]}
        ]}))
        .unwrap();
        let e = Entities::of(&i);
        // Defender for Cloud Apps' number for Exchange Online is no application ID.
        assert_eq!(e.app_ids, ["d3590ed6-52b3-4102-aeff-aad2292ab01c"]);
        assert_eq!(e.device_ids, ["abc123"]);
        assert_eq!(e.device_names, ["fs-02", "fs-02.corp.contoso.com"]);
        assert_eq!(e.account_upns, ["svc-backup@contoso.com"]);
        assert_eq!(e.account_object_ids, ["9f1c"]);
        assert_eq!(e.account_sids, ["S-1-5-21-1"]);
        assert_eq!(e.account_names, ["svc-backup"]);
        assert_eq!(e.sha256s, ["ab12"]);
        assert_eq!(e.file_names, ["locker.exe"]);
        assert_eq!(e.domains, ["evil.example"]);
        assert_eq!(e.ips, ["45.141.87.12"]);
    }

    #[test]
    fn a_hunt_is_filled_only_when_it_can_filter_on_something_of_the_incident() {
        let l = Library::from_toml(
            r#"format = 1
[[hunt]]
id = "a"
title = "t"
table = "DeviceProcessEvents"
scope = "incident"
kql = "DeviceProcessEvents | where Timestamp between ({{start}} .. {{end}}) | where DeviceId in ({{device_ids}}) or DeviceName in~ ({{device_names}}) | take 10"
"#,
            "t",
        )
        .unwrap();
        let t = &l.templates()[0];
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let w = Window::around(at("2026-11-02T09:00:00Z"), at("2026-11-02T12:30:00Z"));
        assert_eq!(w.run_before(), at("2026-12-01T09:00:00Z"));
        assert_eq!(fill(t, &Entities::default(), Some(&w)), None, "nothing to filter on");
        let e = Entities { device_names: vec![r#"fs"02"#.into()], ..Entities::default() };
        assert_eq!(
            fill(t, &e, Some(&w)).unwrap(),
            [
                "let incident_start = datetime(2026-11-01T09:00:00Z);",
                "let incident_end = datetime(2026-11-02T13:30:00Z);",
                "let incident_device_ids = dynamic([]);",
                r#"let incident_device_names = dynamic(["fs\"02"]);"#,
                "DeviceProcessEvents | where Timestamp between (incident_start .. incident_end) | where DeviceId in (incident_device_ids) or DeviceName in~ (incident_device_names) | take 10",
            ]
            .join("\n")
        );
        assert_eq!(fill(t, &e, None), None, "an incident hunt needs its window");
    }
}
