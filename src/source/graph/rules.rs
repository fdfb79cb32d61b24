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

impl GraphSource {
    /// Reads the tenant's rules again if `detection_rules` is on and this process has not read
    /// them within `detection_rules_refresh` (so at every start), and stores them. A failure is
    /// logged and leaves the last rules in place: they say when they were read, and the
    /// incidents are still polled. Nothing is read from the store on a poll that has nothing
    /// to do: when the rules were last read is kept in memory.
    pub async fn refresh_deployed(&mut self, store: &Store, now: DateTime<Utc>) {
        if !self.cfg.detection_rules {
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
        match self.detection_rules().await {
            Ok(rules) => {
                let n = rules.len();
                match store.set_deployed_rules(&self.cfg.name, &DeployedRecord { read_at: now, rules }).await {
                    Ok(()) => {
                        tracing::info!(source = %self.cfg.name, rules = n, "custom detection rules read from the tenant");
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
                    "cannot read the custom detection rules; reviews use those read {}; tried again in an hour: {e}",
                    last.map_or("never".to_owned(), |r| r.read_at.format("%Y-%m-%d %H:%M UTC").to_string())
                );
                // A missing permission stays missing for a while: not asked at every poll.
                self.rules_retry_at = Some(now + chrono::Duration::hours(1));
            }
        }
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
