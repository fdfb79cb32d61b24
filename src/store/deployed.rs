//! A source's deployed detection rules as last read from its tenant (tree `deployed`, keyed by
//! the source name): the rules as Graph listed them and when. One value per source, replaced
//! whole at each refresh; a failed refresh keeps the last one, which says when it was read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::incidents::encode;
use super::{Result, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployedRecord {
    pub read_at: DateTime<Utc>,
    /// The rules as Graph returned them (`security/rules/detectionRules`).
    pub rules: Vec<serde_json::Value>,
    /// The Sentinel workspaces' analytics rules as ARM returned them (`alertRules`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sentinel: Vec<serde_json::Value>,
}

impl Store {
    pub fn deployed_rules(&self, source: &str) -> Result<Option<DeployedRecord>> {
        match self.deployed.get(source.as_bytes()).map_err(|e| self.io(e))? {
            Some(v) => self.decode("deployed", source.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    /// Forgets the source's deployed rules (its `detection_rules` was turned off): its reviews
    /// are no longer made against rules that are not read any more.
    pub fn clear_deployed_rules(&self, source: &str) -> Result<()> {
        self.deployed.remove(source.as_bytes()).map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Replaces the source's deployed rules, durably.
    pub async fn set_deployed_rules(&self, source: &str, record: &DeployedRecord) -> Result<()> {
        self.ensure_room()?;
        self.deployed.insert(source.as_bytes(), encode(record)).map_err(|e| self.io(e))?;
        self.flush_async().await
    }
}
