//! Writing a review back onto its Defender incident through Graph (application permission
//! `SecurityIncident.ReadWrite.All`): one comment (`POST /security/incidents/{id}/comments`)
//! and tags merged into `customTags` (`PATCH /security/incidents/{id}`; the list is replaced
//! as a whole, so it is read, merged and written).
//!
//! Each write first reads the incident as it is now, so that a retried write (an answer lost
//! in transit, a crash before the outcome was recorded) finds its own comment by the marker
//! and does not post it twice, and so that nothing is written to an incident that is no
//! longer resolved or that already carries a later revision's review.

use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::client::Client;
use super::{GraphConfig, GraphError};
use crate::review::render::comment::{is_marked, marker_revision, merge_tags};

/// The Graph calls of write-back for one source (one tenant).
pub struct IncidentWriter {
    source: String,
    base: String,
    /// One write at a time per tenant: the read-merge-write of the tags must not interleave
    /// with another of ours.
    client: Mutex<Client>,
}

/// What a write-back did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// The comment was posted now (false: the incident already carried it).
    pub commented: bool,
    /// The tags were written now (false: the incident already had them all).
    pub tagged: bool,
    /// Why nothing was written, when nothing was.
    pub skipped: Option<String>,
    /// The incident's `lastUpdateDateTime` after our last write, as Graph returned it.
    pub last_update: Option<String>,
}

/// What is written: the comment of one revision and the tags it earns.
pub struct Writing<'a> {
    pub incident_id: &'a str,
    pub revision: u32,
    pub comment: &'a str,
    pub tags: &'a [String],
}

impl IncidentWriter {
    pub fn new(cfg: &GraphConfig) -> Result<IncidentWriter, GraphError> {
        Ok(IncidentWriter { source: cfg.name.clone(), base: cfg.graph_base(), client: Mutex::new(Client::new(cfg)?) })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    fn incident_url(&self, id: &str) -> String {
        let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        format!("{}/v1.0/security/incidents/{}", self.base, id.replace('+', "%20"))
    }

    /// Writes the comment (unless the incident carries it) and merges the tags (unless they are
    /// there), on a resolved incident only.
    pub async fn write(&self, w: &Writing<'_>) -> Result<Written, GraphError> {
        let mut client = self.client.lock().await;
        let url = self.incident_url(w.incident_id);
        let incident: Value =
            client.get_json(&url).await.map_err(|e| permission(e, "reading the incident to write back"))?;
        let mut out = Written::default();
        let status = incident.get("status").and_then(Value::as_str).unwrap_or("unknown");
        if status != "resolved" {
            out.skipped =
                Some(format!("the incident is {status} now; a review is written back only to a resolved incident"));
            return Ok(out);
        }
        let comments = texts(&incident, "comments", Some("comment"));
        if let Some(later) = comments.iter().filter_map(|c| marker_revision(c)).filter(|r| *r > w.revision).max() {
            out.skipped = Some(format!("the incident already carries the review of revision {later}"));
            return Ok(out);
        }
        if !comments.iter().any(|c| is_marked(c, w.revision)) {
            let body = json!({"@odata.type": "microsoft.graph.security.alertComment", "comment": w.comment});
            client
                .send_json(reqwest::Method::POST, &format!("{url}/comments"), &body)
                .await
                .map_err(|e| permission(e, "posting the review as a comment"))?;
            out.commented = true;
        }
        // The tags are read again just before they are written when a comment went first:
        // the list is replaced whole and no ETag guards it, so the window in which an
        // analyst's tag could be lost is kept as short as one round trip.
        let incident = if out.commented {
            client.get_json(&url).await.map_err(|e| permission(e, "reading the incident to write back"))?
        } else {
            incident
        };
        let current = texts(&incident, "customTags", None);
        let merged = merge_tags(&current, w.tags);
        if merged != current {
            let answer = client
                .send_json(reqwest::Method::PATCH, &url, &json!({"customTags": merged}))
                .await
                .map_err(|e| permission(e, "writing the incident's tags"))?;
            out.tagged = true;
            out.last_update = answer.get("lastUpdateDateTime").and_then(Value::as_str).map(str::to_owned);
            // No ETag guards the list: an analyst's edit between our read and our write wins
            // or loses as Graph orders them. What came back says whether ours held.
            let written = texts(&answer, "customTags", None);
            if answer.is_object() && answer.get("customTags").is_some() && !w.tags.iter().all(|t| written.contains(t)) {
                return Err(GraphError::Transient {
                    after: None,
                    status: None,
                    detail: "the incident's tags changed while they were written; merged again at the next attempt"
                        .into(),
                });
            }
        }
        Ok(out)
    }

    /// Signs in and reads one incident (`hindsight check`); writes nothing, so the write
    /// permission itself is not tried.
    pub async fn probe(&self, incident_id: &str) -> Result<(), GraphError> {
        self.client.lock().await.get_json::<serde::de::IgnoredAny>(&self.incident_url(incident_id)).await.map(|_| ())
    }
}

/// The strings of `field` (an array of strings, or of objects whose `key` is a string).
fn texts(v: &Value, field: &str, key: Option<&str>) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| match key {
            Some(k) => x.get(k).and_then(Value::as_str),
            None => x.as_str(),
        })
        .map(str::to_owned)
        .collect()
}

/// A 403 on a write-back call names the permission it needs.
fn permission(e: GraphError, what: &'static str) -> GraphError {
    match e {
        GraphError::Forbidden { detail } => {
            GraphError::Permission { what, permission: "SecurityIncident.ReadWrite.All", detail }
        }
        other => other,
    }
}
