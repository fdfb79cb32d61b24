//! The tenant's Defender custom detection rules (`GET /v1.0/security/rules/detectionRules`,
//! application permission `CustomDetection.Read.All`), read whole: every page, following
//! `@odata.nextLink` on the configured Graph host only. The rules are returned as Graph gave
//! them; `crate::inventory` reads both their current and their old schema.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{GraphError, GraphSource, split_page};
use crate::store::{DeployedRecord, Store};

/// Pages read at most: 100 rules a page, so 100,000 rules. A tenant has hundreds; a service that
/// kept answering with nextLinks would otherwise hold the source for good.
const MAX_PAGES: usize = 1000;

/// Rules asked for per page (the documented examples use up to 100).
const PAGE: u32 = 100;

/// The latest stable api-version of Microsoft.SecurityInsights alertRules.
const SENTINEL_API_VERSION: &str = "2025-09-01";

/// `link` if it is on `base`'s origin: the ARM token goes with it.
fn same_origin(link: &str, base: &str) -> Result<String, GraphError> {
    let b = url::Url::parse(base).map_err(|e| GraphError::Setup(e.to_string()))?;
    let l = url::Url::parse(link).map_err(|e| GraphError::Protocol(format!("nextLink {link:?}: {e}")))?;
    if l.origin() != b.origin() {
        return Err(GraphError::Protocol(format!(
            "nextLink points to {}, not to the Azure Resource Manager host {}; not followed",
            l.origin().ascii_serialization(),
            b.origin().ascii_serialization()
        )));
    }
    Ok(link.to_owned())
}

impl GraphSource {
    /// Reads the tenant's rules again if `detection_rules` is on and this process has not read
    /// them within `detection_rules_refresh` (so at every start), and stores them. A failure is
    /// logged and leaves the last rules in place: they say when they were read, and the
    /// incidents are still polled. Nothing is read from the store on a poll that has nothing
    /// to do: when the rules were last read is kept in memory.
    pub async fn refresh_deployed(&mut self, store: &Store, now: DateTime<Utc>) {
        if !self.cfg.reads_deployed_rules() {
            if !self.rules_cleared {
                if let Err(e) = store.clear_deployed_rules(&self.cfg.name) {
                    tracing::warn!(source = %self.cfg.name, "cannot clear the stored detection rules: {e}");
                }
                self.rules_cleared = true;
            }
            return;
        }
        let refresh = chrono::Duration::from_std(self.cfg.detection_rules_refresh).unwrap_or(chrono::Duration::days(1));
        if self.rules_read_at.is_some_and(|t| now - t < refresh) || self.rules_retry_at.is_some_and(|t| now < t) {
            return;
        }
        match self.deployed_rules().await {
            Ok((rules, sentinel)) => {
                let (n, m) = (rules.len(), sentinel.len());
                match store.set_deployed_rules(&self.cfg.name, &DeployedRecord { read_at: now, rules, sentinel }).await
                {
                    Ok(()) => {
                        tracing::info!(source = %self.cfg.name, rules = n, sentinel_rules = m, "deployed detection rules read from the tenant");
                        self.rules_read_at = Some(now);
                        self.rules_retry_at = None;
                    }
                    // Tried again at the next poll.
                    Err(e) => tracing::warn!(source = %self.cfg.name, "cannot store the detection rules: {e}"),
                }
            }
            Err(e) => {
                let last = store.deployed_rules(&self.cfg.name).ok().flatten();
                tracing::warn!(
                    source = %self.cfg.name,
                    "cannot read the deployed detection rules; reviews use those read {}; tried again in an hour: {e}",
                    last.map_or("never".to_owned(), |r| r.read_at.format("%Y-%m-%d %H:%M UTC").to_string())
                );
                // A missing permission stays missing for a while: not asked at every poll.
                self.rules_retry_at = Some(now + chrono::Duration::hours(1));
            }
        }
    }

    /// The tenant's deployed rules: Defender's custom detection rules (`detection_rules`) and
    /// the analytics rules of each Sentinel workspace (`sentinel_workspaces`). All or nothing: a
    /// listing that fails leaves the last complete one in place.
    async fn deployed_rules(&mut self) -> Result<(Vec<Value>, Vec<Value>), GraphError> {
        let defender = if self.cfg.detection_rules { self.detection_rules().await? } else { vec![] };
        let mut sentinel = Vec::new();
        for w in self.cfg.sentinel_workspaces.clone() {
            sentinel.extend(self.sentinel_rules(&w).await?);
        }
        Ok((defender, sentinel))
    }

    /// The analytics rules of a Sentinel workspace, through Azure Resource Manager (a token for
    /// its own scope), every page: `nextLink` followed as given, on the ARM host only. A 403
    /// names the role to assign.
    pub async fn sentinel_rules(&mut self, workspace: &str) -> Result<Vec<Value>, GraphError> {
        let base = self.cfg.arm_base();
        let arm = match &mut self.arm {
            Some(a) => a,
            empty => empty.insert(super::client::Client::for_scope(&self.cfg, format!("{base}/.default"))?),
        };
        let mut url = format!(
            "{base}{}/providers/Microsoft.SecurityInsights/alertRules?api-version={SENTINEL_API_VERSION}",
            workspace.trim_end_matches('/')
        );
        let mut rules = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: serde_json::Value = arm.get_json(&url).await.map_err(|e| match e {
                GraphError::Forbidden { detail } => GraphError::Feature(format!(
                    "Azure Resource Manager denied reading the analytics rules of {workspace} (HTTP 403): {detail}. The app needs the Microsoft Sentinel Reader role on the workspace or its resource group"
                )),
                other => other,
            })?;
            let items = page
                .get("value")
                .and_then(Value::as_array)
                .ok_or_else(|| GraphError::Protocol("the alertRules response has no \"value\" array".into()))?;
            rules.extend(items.iter().cloned());
            match page.get("nextLink").and_then(Value::as_str) {
                Some(link) => url = same_origin(link, &base)?,
                None => return Ok(rules),
            }
        }
        Err(GraphError::Protocol(format!("the analytics rules of {workspace} ran past {MAX_PAGES} pages; not read")))
    }

    /// Every custom detection rule of the tenant. A 403 names the permission to grant.
    pub async fn detection_rules(&mut self) -> Result<Vec<Value>, GraphError> {
        let mut url = format!("{}/v1.0/security/rules/detectionRules?$top={PAGE}", self.cfg.graph_base());
        let mut rules = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.client.get_json(&url).await.map_err(|e| match e {
                GraphError::Forbidden { detail } => GraphError::Permission {
                    what: "reading the custom detection rules",
                    permission: "CustomDetection.Read.All",
                    detail,
                },
                other => other,
            })?;
            let (items, next) = split_page(&page)?;
            rules.extend(items.iter().cloned());
            match next {
                Some(link) => url = self.check_next_link(&link)?,
                None => return Ok(rules),
            }
        }
        Err(GraphError::Protocol(format!("the detection rules ran past {MAX_PAGES} pages; not read")))
    }
}
