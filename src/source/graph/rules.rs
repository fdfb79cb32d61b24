//! The tenant's Defender custom detection rules (`GET /v1.0/security/rules/detectionRules`,
//! application permission `CustomDetection.Read.All`), read whole: every page, following
//! `@odata.nextLink` on the configured Graph host only. The rules are returned as Graph gave
//! them; `crate::inventory` reads both their current and their old schema.

use serde_json::Value;

use super::{GraphError, GraphSource, split_page};

/// Pages read at most: 100 rules a page, so 100,000 rules. A tenant has hundreds; a service that
/// kept answering with nextLinks would otherwise hold the source for good.
const MAX_PAGES: usize = 1000;

/// Rules asked for per page (the documented examples use up to 100).
const PAGE: u32 = 100;

impl GraphSource {
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
