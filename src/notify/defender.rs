//! The Defender sink: a review written back onto its incident in the tenant it came from — a
//! comment with the summary, the blind stages, the first follow-ups and the link to the full
//! review, and `hindsight:` tags merged into the incident's `customTags`.
//!
//! It is not configured as a `[[destinations]]` table: a Graph source with `write_back = true`
//! brings one, named `defender:<source>` ([`destination_name`]) and routed that source's
//! reviews. Being an outbox destination like any other, a write-back is durable, retried on
//! the retry policy and dead-lettered when it cannot be done; what makes a retry safe (the
//! comment's marker, the merged tags) is in `crate::source::graph::writeback`.

use chrono::{DateTime, Utc};

use super::DeliveryError;
use crate::outbox::{OutboxEntry, Payload};
use crate::review::render::comment;
use crate::source::graph::GraphError;
use crate::source::graph::writeback::{IncidentWriter, Writing};

/// The name under which a source's write-back waits in the outbox.
pub fn destination_name(source: &str) -> String {
    format!("{PREFIX}{source}")
}

/// Destination names that start with this are write-backs; a `[[destinations]]` table may not
/// take one.
pub const PREFIX: &str = "defender:";

pub struct DefenderSink {
    writer: IncidentWriter,
}

impl DefenderSink {
    pub fn new(writer: IncidentWriter) -> DefenderSink {
        DefenderSink { writer }
    }

    pub async fn deliver(
        &self,
        entry: &OutboxEntry,
        payload: &Payload,
        _now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let Payload::Review(review) = payload else {
            return Err(DeliveryError::Permanent { reason: "a digest has no incident to be written back to".into() });
        };
        let text = comment::comment(review);
        let tags = comment::tags(review);
        let writing = Writing {
            incident_id: &review.incident.id,
            revision: review.incident.revision,
            comment: &text,
            tags: &tags,
        };
        match self.writer.write(&writing).await {
            Ok(w) => {
                match &w.skipped {
                    Some(why) => {
                        tracing::info!(source = %self.writer.source(), incident_id = %entry.incident_id, "review not written back: {why}")
                    }
                    None => tracing::info!(
                        source = %self.writer.source(),
                        incident_id = %entry.incident_id,
                        commented = w.commented,
                        tagged = w.tagged,
                        "review written back to the incident"
                    ),
                }
                Ok(())
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// Signs in and reads the incident list's first item (`hindsight check` probes the source
    /// itself; this only says what write-back needs, as it cannot be tried without writing).
    pub fn probe(&self) -> Result<String, String> {
        Ok(format!(
            "writes reviews back to {}'s incidents (needs SecurityIncident.ReadWrite.All; not tried: a probe would write)",
            self.writer.source()
        ))
    }
}

/// Whether another attempt can help: throttling, server errors, lost connections and sign-in
/// trouble can pass; a refused permission, a missing incident or a rejected body will not.
pub fn classify(e: GraphError) -> DeliveryError {
    let reason = e.to_string();
    match e {
        GraphError::Transient { after, .. } => DeliveryError::Retry { after, reason },
        GraphError::Status { status, .. } if status >= 500 || status == 408 || status == 429 => {
            DeliveryError::Retry { after: None, reason }
        }
        GraphError::Permission { .. }
        | GraphError::Forbidden { .. }
        | GraphError::BadRequest { .. }
        | GraphError::Status { .. }
        | GraphError::TooLarge { .. }
        | GraphError::Feature(_) => DeliveryError::Permanent { reason },
        GraphError::Setup(_)
        | GraphError::Auth { .. }
        | GraphError::Credential(_)
        | GraphError::Unauthorized { .. }
        | GraphError::Exhausted { .. }
        | GraphError::Protocol(_) => DeliveryError::Retry { after: None, reason },
    }
}
