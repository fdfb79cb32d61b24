//! The Microsoft Graph security incidents source (`GET /v1.0/security/incidents?$expand=alerts`).
//!
//! Each pass reads every incident updated since the stored cursor minus an overlap, pages through
//! `@odata.nextLink` to the end, stores page by page (the store de-duplicates on incident id and
//! `lastUpdateDateTime`), and only then moves the cursor to the largest update time stored and
//! flushes. A pass that fails anywhere leaves the cursor where it was, so the next pass reads the
//! same window again: nothing is skipped, and nothing is reviewed twice.
//!
//! Status is not filtered on the server: `status eq 'resolved'` would hide the transition from
//! active to resolved that makes a re-opened incident's second resolution a new revision.

mod client;
pub mod config;
pub mod hunting;
mod rules;
pub mod writeback;

pub use config::{Cloud, GraphConfig};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{PollReport, SourceError};
use crate::clock::Clock;
use crate::model::Incident;
use crate::store::{Cursor, Observed, Store};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    #[error("sign-in failed (HTTP {status}): {detail}. {hint}")]
    Auth { status: u16, detail: String, hint: &'static str },
    /// The credential could not be used on this side (a token file missing, not on Azure).
    #[error("sign-in failed: {0}")]
    Credential(String),
    #[error("Graph refused the token (HTTP 401) again after a new one was issued: {detail}")]
    Unauthorized { detail: String },
    #[error(
        "Graph denied access (HTTP 403): {detail}. The app needs the application permission SecurityIncident.Read.All with admin consent"
    )]
    Forbidden { detail: String },
    #[error(
        "Graph denied {what} (HTTP 403): {detail}. The app needs the application permission {permission} with admin consent"
    )]
    Permission { what: &'static str, permission: &'static str, detail: String },
    #[error("Graph rejected the request (HTTP 400): {detail}")]
    BadRequest { detail: String },
    #[error("Graph answered HTTP {status}: {detail}")]
    Status { status: u16, detail: String },
    #[error("{what} failed {attempts} times; last: {last}")]
    Exhausted { what: String, attempts: u32, last: String },
    /// A write that failed in a way another attempt may get past (429, 5xx, a lost
    /// connection); it was sent once, and `after` is the service's `Retry-After`.
    #[error("Graph did not take the write: {detail}")]
    Transient { after: Option<std::time::Duration>, status: Option<u16>, detail: String },
    /// An enabled feature that does not work (`hindsight check`), in its own words.
    #[error("{0}")]
    Feature(String),
    #[error("unexpected response: {0}")]
    Protocol(String),
    #[error("the response is larger than max_page_bytes ({limit} bytes)")]
    TooLarge { limit: u64 },
}

pub struct GraphSource {
    cfg: GraphConfig,
    client: client::Client,
    page_size: u32,
    /// The page size before this pass read smaller pages past a large incident; restored at
    /// the start of the next pass.
    full_page_size: Option<u32>,
    /// When this process last read and stored the tenant's detection rules.
    rules_read_at: Option<DateTime<Utc>>,
    /// With `detection_rules` off: any rules stored before have been cleared.
    rules_cleared: bool,
    /// After a failed read of the rules, not before this.
    rules_retry_at: Option<DateTime<Utc>>,
    /// Azure Resource Manager, for Sentinel's analytics rules: built at the first read.
    arm: Option<client::Client>,
    /// When the certificate's expiry was last reported (a certificate credential only).
    certificate_checked_at: Option<DateTime<Utc>>,
}

impl GraphConfig {
    /// The source, with its HTTP client (nothing is sent before the first poll or probe).
    pub fn build(&self) -> Result<GraphSource, Vec<crate::config::Invalid>> {
        let problems = self.validate();
        if !problems.is_empty() {
            return Err(problems);
        }
        let client = client::Client::new(self).map_err(|e| vec![crate::config::Invalid::new("", e.to_string())])?;
        Ok(GraphSource {
            client,
            page_size: self.page_size,
            full_page_size: None,
            rules_read_at: None,
            rules_cleared: false,
            rules_retry_at: None,
            arm: None,
            certificate_checked_at: None,
            cfg: self.clone(),
        })
    }
}

impl GraphSource {
    /// [`GraphConfig::build`], its errors as one.
    pub fn new(cfg: GraphConfig) -> Result<GraphSource, GraphError> {
        cfg.build().map_err(|e| GraphError::Setup(crate::config::Invalid::join(&e)))
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Requests sent since the source was built (token requests included).
    pub fn requests(&self) -> usize {
        self.client.requests()
    }

    fn first_page(&self, from: DateTime<Utc>) -> String {
        self.list_url(from, self.page_size, None, true)
    }

    /// A page starting at `position` in this pass's window, paged with `$skip` from there on.
    fn page_at(&self, from: DateTime<Utc>, position: usize) -> String {
        self.list_url(from, self.page_size, Some(position), true)
    }

    /// The incidents updated since `from`, `top` a page, from `skip` on; without `alerts` they
    /// come without their alerts (small whatever their size).
    fn list_url(&self, from: DateTime<Utc>, top: u32, skip: Option<usize>, alerts: bool) -> String {
        // Unquoted ISO-8601 UTC, as the $filter grammar wants; micro-seconds round down, so the
        // boundary incident is read again rather than missed.
        let ts = from.to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut url = format!(
            "{}/v1.0/security/incidents?$filter=lastUpdateDateTime%20ge%20{ts}&$top={top}",
            self.cfg.graph_base()
        );
        if alerts {
            url.push_str("&$expand=alerts");
        }
        if let Some(n) = skip {
            url.push_str(&format!("&$skip={n}"));
        }
        url
    }

    /// The incident at `position` is larger than `limit` with its alerts: reads it without
    /// them to name it, and moves the cursor past it like any incident read.
    async fn refuse_oversized(
        &mut self,
        from: DateTime<Utc>,
        position: usize,
        limit: u64,
        now: DateTime<Utc>,
        newest: &mut Option<DateTime<Utc>>,
    ) -> Result<String, GraphError> {
        let url = self.list_url(from, 1, Some(position), false);
        let page: IncidentPage = self.client.get_json(&url).await?;
        let (items, _) = page.into_parts()?;
        let Some(text) = items.first() else {
            return Ok(format!(
                "an incident at position {position} of the window was larger than max_page_bytes ({limit} bytes) with its alerts and is gone now; not reviewed"
            ));
        };
        // Asked for without its alerts: a small tree, read for the fields as Graph wrote them.
        let raw: Value = serde_json::from_str(text.get()).unwrap_or_default();
        let id = raw.get("id").and_then(Value::as_str).unwrap_or("?");
        let updated = raw.get("lastUpdateDateTime").and_then(Value::as_str).unwrap_or("?");
        if let Ok(i) = Incident::header_from_graph_str(text.get()) {
            *newest = (*newest).max(Some(i.last_update.min(now)));
        }
        Ok(format!(
            "incident {id} (updated {updated}) is larger than max_page_bytes ({limit} bytes) with its alerts; refused, not reviewed. Raise max_page_bytes for this source to review it"
        ))
    }

    /// A nextLink is followed as it is, but only on the Graph host we were configured for: the
    /// bearer token goes with it.
    fn check_next_link(&self, link: &str) -> Result<String, GraphError> {
        let base = url::Url::parse(&self.cfg.graph_base()).map_err(|e| GraphError::Setup(e.to_string()))?;
        let next = url::Url::parse(link).map_err(|e| GraphError::Protocol(format!("@odata.nextLink {link:?}: {e}")))?;
        if next.origin() != base.origin() {
            return Err(GraphError::Protocol(format!(
                "@odata.nextLink points to {}, not to the configured Graph host {}; not followed",
                next.origin().ascii_serialization(),
                base.origin().ascii_serialization()
            )));
        }
        Ok(link.to_owned())
    }

    /// The stored cursor; on the very first start, the floor fixed at `now` minus the backfill
    /// window, durably, so that a failing first pass does not push it forward and lose what was
    /// resolved in between. The daemon calls this at start-up, before the first poll is due.
    pub async fn start(&self, store: &Store, now: DateTime<Utc>) -> Result<Cursor, SourceError> {
        if let Some(c) = store.cursor(&self.cfg.name)? {
            return Ok(c);
        }
        let backfill = chrono::Duration::from_std(self.cfg.backfill).unwrap_or_default();
        let c = Cursor { floor: now - backfill, last_update: None, passes: 0, updated_at: now };
        store.advance_cursor(&self.cfg.name, &c).await?;
        Ok(c)
    }

    /// Signs in and reads one incident, storing nothing (`hindsight check`).
    pub async fn probe(&mut self, now: DateTime<Utc>) -> Result<String, GraphError> {
        let credential = self.cfg.sign_in().describe();
        // The credential goes with a refusal: which certificate (thumbprint) or token file.
        let token = self.client.access_token().await.map_err(|e| GraphError::Feature(format!("{e} [{credential}]")))?;
        let granted = self.check_roles(secrecy::ExposeSecret::expose_secret(&token), &credential)?;
        let url = self.list_url(now - chrono::Duration::days(30), 1, None, true);
        let page: IncidentPage = self.client.get_json(&url).await?;
        let (items, _) = page.into_parts()?;
        let mut said = format!(
            "signed in to {} with {credential}{granted}; {} answered ({} incident(s) updated in the last 30 days on the first page of one)",
            self.cfg.login_base(),
            self.cfg.graph_base(),
            items.len()
        );
        // Each enabled feature's permission is tried: a missing one is named here, not found
        // later in a log line.
        if self.cfg.detection_rules {
            let rules = self.detection_rules().await?;
            said += &format!("; {} custom detection rules readable (CustomDetection.Read.All)", rules.len());
        }
        for w in self.cfg.sentinel_workspaces.clone() {
            let rules = self.sentinel_rules(&w).await?;
            said += &format!("; {} analytics rules readable in {w}", rules.len());
        }
        if self.cfg.hunts {
            let runner = hunting::HuntRunner::new(&self.cfg, self.cfg.hunt_timeout)?;
            match runner.run("print hindsight_check = 1", "P1D").await {
                hunting::HuntAnswer::Rows { .. } => said += "; advanced hunting answers (ThreatHunting.Read.All)",
                hunting::HuntAnswer::NotRun { detail, .. } => {
                    return Err(GraphError::Feature(format!("advanced hunting (hunts = true): {detail}")));
                }
            }
        }
        Ok(said)
    }

    /// Once a day, a certificate credential's expiry: a gauge for alerting, and a warning in
    /// the log from 30 days before (an unattended daemon has no `hindsight check` run).
    fn report_certificate(&mut self, now: DateTime<Utc>) {
        if self.certificate_checked_at.is_some_and(|at| now - at < chrono::Duration::days(1)) {
            return;
        }
        let sign_in = self.cfg.sign_in();
        if let Some(not_after) = sign_in.certificate_expiry() {
            let warning = sign_in.notes(now).into_iter().next();
            crate::events::Event::emit(crate::events::CertificateChecked {
                source: &self.cfg.name,
                not_after,
                warning,
            });
        }
        self.certificate_checked_at = Some(now);
    }

    /// What the access token's `roles` claim grants against what the enabled features need,
    /// and whose tenant it is: every missing permission named at once, with its feature. An
    /// opaque token (not a JWT) is not judged; the requests that follow try each feature.
    fn check_roles(&self, token: &str, credential: &str) -> Result<String, GraphError> {
        use crate::entra::claims;
        let Some(claims) = claims::decode(token) else {
            return Ok(String::new());
        };
        let tenant = &self.cfg.tenant_id;
        if let Some(tid) = &claims.tid
            && is_guid(tenant)
            && !tid.eq_ignore_ascii_case(tenant)
        {
            return Err(GraphError::Feature(format!(
                "signed in with {credential}, but the token is from tenant {tid}, not {tenant}: a managed identity reads only its own tenant; for another tenant use a multi-tenant app with a certificate or a workload identity (docs/connect-a-tenant.md)"
            )));
        }
        let mut wanted = vec![claims::INCIDENTS];
        for (on, feature) in [
            (self.cfg.hunts, claims::HUNTS),
            (self.cfg.detection_rules, claims::DETECTION_RULES),
            (self.cfg.write_back, claims::WRITE_BACK),
        ] {
            if on {
                wanted.push(feature);
            }
        }
        let missing = claims::missing(&claims.roles, &wanted);
        if missing.is_empty() {
            return Ok(format!(" (roles: {})", claims.roles.join(", ")));
        }
        let granted =
            if claims.roles.is_empty() { "no application permission".to_owned() } else { claims.roles.join(", ") };
        let needed: Vec<String> =
            missing.iter().map(|f| format!("{} for {} ({})", f.permissions[0], f.name, f.setting)).collect();
        Err(GraphError::Feature(format!(
            "signed in with {credential}; the token grants {granted}. Missing: {}. Add the application permission(s) to the app registration and grant admin consent in this tenant (docs/connect-a-tenant.md); a new token carries them within minutes",
            needed.join("; ")
        )))
    }

    pub async fn poll(&mut self, store: &Store, clock: &dyn Clock) -> Result<PollReport, SourceError> {
        let now = clock.now();
        let name = self.cfg.name.clone();
        self.report_certificate(now);
        // Before the incidents: a resolution read in this pass is reviewed against rules as
        // fresh as the refresh interval allows.
        self.refresh_deployed(store, now).await;
        let cursor = self.start(store, now).await?;
        let overlap = chrono::Duration::from_std(self.cfg.overlap).unwrap_or_default();
        let from = cursor.next_from(overlap);
        let requests_before = self.client.requests();
        if let Some(p) = self.full_page_size.take() {
            self.page_size = p;
        }
        let mut report = PollReport { source: name.clone(), ..Default::default() };
        let mut newest = cursor.last_update;
        let mut ahead = 0usize;
        let mut url = self.first_page(from);
        let mut first = true;
        // Items read so far in this pass: where a smaller page starts again ($skip) after a
        // page too large for max_page_bytes.
        let mut position = 0usize;
        loop {
            let page: IncidentPage = match self.client.get_json(&url).await {
                Err(GraphError::BadRequest { detail }) if first && self.page_size > 1 => {
                    self.page_size /= 2;
                    tracing::warn!(source = %name, page_size = self.page_size, "Graph refused the page size ({detail}); halving it");
                    url = self.first_page(from);
                    continue;
                }
                Err(GraphError::TooLarge { limit }) if self.page_size > 1 => {
                    // One very large incident (thousands of alerts) must not hold the source
                    // back for good: smaller pages from where this one began.
                    self.full_page_size.get_or_insert(self.page_size);
                    self.page_size /= 2;
                    tracing::warn!(source = %name, page_size = self.page_size, "a page was larger than max_page_bytes ({limit} bytes); reading smaller pages for the rest of this pass");
                    url = self.page_at(from, position);
                    continue;
                }
                Err(GraphError::TooLarge { limit }) => {
                    // A single incident with its alerts is over the limit: refused by name, and
                    // the pass goes on past it.
                    let why = self.refuse_oversized(from, position, limit, now, &mut newest).await?;
                    tracing::error!(source = %name, "{why}");
                    report.fetched += 1;
                    report.rejected.push(why);
                    position += 1;
                    url = self.page_at(from, position);
                    continue;
                }
                other => other?,
            };
            first = false;
            let (items, next) = page.into_parts()?;
            position += items.len();
            let mut observed = Vec::with_capacity(items.len());
            for (i, raw) in items.into_iter().enumerate() {
                report.fetched += 1;
                match Observed::read(raw) {
                    Ok(o) => {
                        // A timestamp ahead of our clock (Defender's clock skewed, or a bad
                        // record) must not carry the cursor past incidents that are updated
                        // later with a right timestamp: the cursor never goes beyond now.
                        // Re-reading the skewed window costs a few unchanged items per pass.
                        if o.header.last_update > now + chrono::Duration::minutes(5) {
                            ahead += 1;
                        }
                        newest = newest.max(Some(o.header.last_update.min(now)));
                        observed.push(o);
                    }
                    Err(e) => {
                        tracing::error!(source = %name, "incident {i} of a page set aside: {e}");
                        report.rejected.push(format!("page item {i}: {e}"));
                    }
                }
            }
            let (s, source, floor) = (store.clone(), name.clone(), cursor.floor);
            let out =
                super::off_the_runtime(store, move || s.ingest(&source, &observed, Some(floor), None, now)).await?;
            report.stored += out.stored;
            report.unchanged += out.unchanged;
            report.before_floor += out.before_floor;
            report.resolutions += out.resolutions.len();
            match next {
                Some(link) => url = self.check_next_link(&link)?,
                None => break,
            }
        }
        if ahead > 0 {
            tracing::warn!(
                source = %name,
                incidents = ahead,
                "incident(s) stamped more than 5 minutes ahead of this host's clock; the cursor stays at the host's time (check NTP on this host)"
            );
        }
        let done = Cursor { last_update: newest, passes: cursor.passes + 1, updated_at: now, ..cursor };
        store.advance_cursor(&name, &done).await?;
        report.requests = self.client.requests() - requests_before;
        Ok(report)
    }
}

/// A page of incidents as the poll reads it: each incident kept as the text Graph sent (what
/// the store keeps) and read on its own. Parsing the page into one JSON tree and writing each
/// incident back out as text took half of the 20 µs of reading an incident (`cargo bench
/// --bench backlog`, 2026-12-07), and held the tree of a whole page at once.
#[derive(serde::Deserialize)]
struct IncidentPage {
    #[serde(default, deserialize_with = "incident_texts")]
    value: Option<Vec<Box<RawValue>>>,
    #[serde(rename = "@odata.nextLink", default)]
    next: Option<Value>,
}

impl IncidentPage {
    fn into_parts(self) -> Result<(Vec<Box<RawValue>>, Option<String>), GraphError> {
        let items = self.value.ok_or_else(|| GraphError::Protocol("the response has no \"value\" array".into()))?;
        Ok((items, self.next.as_ref().and_then(Value::as_str).map(str::to_owned)))
    }
}

/// `value` as the text of each item when it is an array; `None` when it is anything else (a
/// protocol error for the caller to name, not a body to fetch again).
fn incident_texts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<Box<RawValue>>>, D::Error> {
    use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
    struct Texts;
    impl<'de> Visitor<'de> for Texts {
        type Value = Option<Vec<Box<RawValue>>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of incidents")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1000));
            while let Some(item) = seq.next_element::<Box<RawValue>>()? {
                items.push(item);
            }
            Ok(Some(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(Texts)
}

/// The items of a list response and its nextLink (the detection rules' pages; incident pages are
/// [`IncidentPage`]).
fn split_page(page: &Value) -> Result<(&[Value], Option<String>), GraphError> {
    let items = page
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| GraphError::Protocol("the response has no \"value\" array".into()))?;
    let next = page.get("@odata.nextLink").and_then(Value::as_str).map(str::to_owned);
    Ok((items, next))
}

/// Whether `s` is a tenant ID (a GUID) rather than a domain name.
fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> Result<(Vec<String>, Option<String>), String> {
        let page: IncidentPage = serde_json::from_str(body).map_err(|e| format!("not parsed: {e}"))?;
        let (items, next) = page.into_parts().map_err(|e| e.to_string())?;
        Ok((items.iter().map(|r| r.get().to_owned()).collect(), next))
    }

    #[test]
    fn a_page_keeps_each_incident_as_sent_and_refuses_a_value_that_is_no_array() {
        let (items, next) = page(
            r#"{"@odata.context": "x", "value": [{"id": "1", "b": [1, 2]}, {"id":"2"}], "@odata.nextLink": "https://graph/next"}"#,
        )
        .unwrap();
        assert_eq!(items, [r#"{"id": "1", "b": [1, 2]}"#, r#"{"id":"2"}"#]);
        assert_eq!(next.as_deref(), Some("https://graph/next"));
        let (items, next) = page(r#"{"value": [], "@odata.nextLink": 7}"#).unwrap();
        assert!(items.is_empty() && next.is_none(), "a nextLink that is no string is none");
        for body in [r#"{}"#, r#"{"value": null}"#, r#"{"value": "x"}"#, r#"{"value": {"id": "1"}}"#, r#"{"value": 3}"#]
        {
            let e = page(body).unwrap_err();
            assert!(e.contains(r#"no "value" array"#), "{body}: {e}");
        }
        assert!(page(r#"{"value": [{"id": "1"}"#).unwrap_err().starts_with("not parsed"), "a cut body");
    }
}
