//! Internal events: one type per thing that happens in the pipeline, each logging and counting
//! in one place (Vector's `internal_events`). A stage says what happened —
//! `Delivered { .. }.emit()` — and never writes a log line or a metric of its own, so a branch
//! cannot log an outcome and forget to count it (a dead letter for a missing review once went
//! uncounted that way).
//!
//! Every metric name here is listed in the README; [`register`] makes each present from start.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Something that happened, logged and counted together.
pub trait Event {
    fn emit(self);
}

/// Makes every counter the README lists present (at 0) before anything happens, so that a
/// dashboard or an alert rule on `rate(...)` sees the series from the first scrape.
/// (`increment(0)`, not `absolute(0)`: it never resets a counter that already exists.)
pub fn register(sources: &[&str], destinations: &[&str]) {
    for s in sources {
        for outcome in ["ok", "error"] {
            metrics::counter!("hindsight_polls_total", "source" => s.to_string(), "outcome" => outcome).increment(0);
        }
        metrics::counter!("hindsight_poll_errors_total", "source" => s.to_string()).increment(0);
        metrics::counter!("hindsight_incidents_seen_total", "source" => s.to_string()).increment(0);
        metrics::counter!("hindsight_resolutions_total", "source" => s.to_string()).increment(0);
        metrics::counter!("hindsight_reviews_total", "source" => s.to_string()).increment(0);
    }
    for d in destinations {
        for outcome in ["delivered", "retry"] {
            metrics::counter!("hindsight_deliveries_total", "destination" => d.to_string(), "outcome" => outcome)
                .increment(0);
        }
        metrics::counter!("hindsight_dead_letters_total", "destination" => d.to_string()).increment(0);
    }
    metrics::counter!("hindsight_review_failures_total").increment(0);
    metrics::counter!("hindsight_delivery_passes_total").increment(0);
    metrics::counter!("hindsight_digests_total").increment(0);
    metrics::counter!("hindsight_digest_failures_total").increment(0);
    metrics::counter!("hindsight_task_panics_total", "stage" => "review").increment(0);
    metrics::counter!("hindsight_task_panics_total", "stage" => "deliver").increment(0);
    metrics::counter!("hindsight_review_log_packed_segments_total").increment(0);
    metrics::counter!("hindsight_review_log_packed_reviews_total").increment(0);
}

/// A source's pass ended and its results are stored.
pub struct PollSucceeded<'a> {
    pub source: &'a str,
    pub fetched: usize,
    pub stored: usize,
    pub resolutions: usize,
    pub rejected: usize,
    pub elapsed: Duration,
    pub at: DateTime<Utc>,
}

impl Event for PollSucceeded<'_> {
    fn emit(self) {
        let source = self.source.to_owned();
        metrics::histogram!("hindsight_poll_duration_seconds", "source" => source.clone())
            .record(self.elapsed.as_secs_f64());
        metrics::counter!("hindsight_polls_total", "source" => source.clone(), "outcome" => "ok").increment(1);
        metrics::counter!("hindsight_incidents_seen_total", "source" => source.clone()).increment(self.fetched as u64);
        metrics::counter!("hindsight_resolutions_total", "source" => source.clone()).increment(self.resolutions as u64);
        metrics::gauge!("hindsight_last_successful_poll_timestamp_seconds", "source" => source)
            .set(self.at.timestamp() as f64);
        let elapsed_ms = self.elapsed.as_millis() as u64;
        // A pass that found nothing new is routine: at debug, or the journal fills with them.
        if self.resolutions > 0 || self.rejected > 0 {
            tracing::info!(source = %self.source, fetched = self.fetched, stored = self.stored, resolutions = self.resolutions, rejected = self.rejected, elapsed_ms, "poll done");
        } else {
            tracing::debug!(source = %self.source, fetched = self.fetched, elapsed_ms, "poll done");
        }
    }
}

/// A source that signs in with a certificate, looked at again (once a day): when it expires,
/// for alerting, and a warning from 30 days before.
pub struct CertificateChecked<'a> {
    pub source: &'a str,
    pub not_after: DateTime<Utc>,
    pub warning: Option<String>,
}

impl Event for CertificateChecked<'_> {
    fn emit(self) {
        metrics::gauge!("hindsight_certificate_expiry_timestamp_seconds", "source" => self.source.to_owned())
            .set(self.not_after.timestamp() as f64);
        if let Some(w) = self.warning {
            tracing::warn!(source = %self.source, "{}", crate::text::printable(&w));
        }
    }
}

/// A source's pass failed; its cursor did not move.
pub struct PollFailed<'a> {
    pub source: &'a str,
    pub error: &'a dyn std::fmt::Display,
    pub elapsed: Duration,
}

impl Event for PollFailed<'_> {
    fn emit(self) {
        let source = self.source.to_owned();
        metrics::histogram!("hindsight_poll_duration_seconds", "source" => source.clone())
            .record(self.elapsed.as_secs_f64());
        metrics::counter!("hindsight_polls_total", "source" => source.clone(), "outcome" => "error").increment(1);
        metrics::counter!("hindsight_poll_errors_total", "source" => source).increment(1);
        tracing::error!(source = %self.source, "poll failed: {}; the cursor stays, the next poll reads the same window", self.error);
    }
}

/// A review and its notifications were committed.
pub struct ReviewStored<'a> {
    pub source: &'a str,
    pub incident_id: &'a str,
    pub revision: u32,
    pub follow_ups: usize,
    pub notifications: usize,
}

impl Event for ReviewStored<'_> {
    fn emit(self) {
        metrics::counter!("hindsight_reviews_total", "source" => self.source.to_owned()).increment(1);
        tracing::info!(
            incident_id = %self.incident_id,
            source = %self.source,
            revision = self.revision,
            follow_ups = self.follow_ups,
            notifications = self.notifications,
            "review stored"
        );
    }
}

/// One retro-hunt query came back (or did not run); `outcome` is `hits`, `no_rows` or the
/// reason it did not run.
pub struct HuntRan<'a> {
    pub source: &'a str,
    pub incident_id: &'a str,
    pub hunt: &'a str,
    pub outcome: &'a str,
    pub rows: usize,
    pub detail: Option<&'a str>,
}

impl Event for HuntRan<'_> {
    fn emit(self) {
        metrics::counter!("hindsight_hunts_total", "source" => self.source.to_owned(), "outcome" => self.outcome.to_owned())
            .increment(1);
        match self.detail {
            Some(detail) => {
                tracing::warn!(source = %self.source, incident_id = %self.incident_id, hunt = %self.hunt, outcome = %self.outcome, "retro-hunt not run: {detail}")
            }
            None => {
                tracing::info!(source = %self.source, incident_id = %self.incident_id, hunt = %self.hunt, outcome = %self.outcome, rows = self.rows, "retro-hunt ran")
            }
        }
    }
}

/// A review's retro-hunts are done and the review amended with them.
pub struct ReviewHunted<'a> {
    pub source: &'a str,
    pub incident_id: &'a str,
    pub ran: usize,
    pub with_hits: usize,
    pub notifications: usize,
}

impl Event for ReviewHunted<'_> {
    fn emit(self) {
        tracing::info!(
            source = %self.source,
            incident_id = %self.incident_id,
            ran = self.ran,
            with_hits = self.with_hits,
            notifications = self.notifications,
            "review amended with its retro-hunts"
        );
    }
}

/// A queued resolution can never be reviewed and left the queue.
pub struct ReviewFailed<'a> {
    pub key: &'a str,
    pub reason: &'a str,
}

impl Event for ReviewFailed<'_> {
    fn emit(self) {
        metrics::counter!("hindsight_review_failures_total").increment(1);
        tracing::error!(resolution = %self.key, "cannot be reviewed: {}; taken out of the queue (hindsight queue list --failed)", self.reason);
    }
}

/// A worker task panicked; what it held stays in the store for the next pass.
pub struct TaskPanicked<'a> {
    pub stage: &'static str,
    pub what: &'a str,
    pub error: &'a dyn std::fmt::Display,
}

impl Event for TaskPanicked<'_> {
    fn emit(self) {
        metrics::counter!("hindsight_task_panics_total", "stage" => self.stage).increment(1);
        tracing::error!(
            stage = self.stage,
            "{} panicked: {}; it stays in the store and is tried again",
            self.what,
            self.error
        );
    }
}

/// A notification reached its destination.
pub struct Delivered<'a> {
    pub destination: &'a str,
    pub id: &'a str,
    pub attempts: u32,
}

impl Event for Delivered<'_> {
    fn emit(self) {
        metrics::counter!("hindsight_deliveries_total", "destination" => self.destination.to_owned(), "outcome" => "delivered").increment(1);
        tracing::info!(destination = %self.destination, id = %self.id, attempts = self.attempts, "delivered");
    }
}

/// A delivery failed and will be tried again.
pub struct RetryScheduled<'a> {
    pub destination: &'a str,
    pub id: &'a str,
    pub attempts: u32,
    pub delay: Duration,
    pub reason: &'a str,
}

impl Event for RetryScheduled<'_> {
    fn emit(self) {
        metrics::counter!("hindsight_deliveries_total", "destination" => self.destination.to_owned(), "outcome" => "retry").increment(1);
        tracing::warn!(destination = %self.destination, id = %self.id, attempts = self.attempts, "{}; retrying in {:?}", self.reason, self.delay);
    }
}

/// A notification will never be delivered: refused for good, out of retries, or what it
/// carries is gone.
pub struct DeadLettered<'a> {
    pub destination: &'a str,
    pub id: &'a str,
    pub reason: &'a str,
}

impl Event for DeadLettered<'_> {
    fn emit(self) {
        metrics::counter!("hindsight_dead_letters_total", "destination" => self.destination.to_owned()).increment(1);
        tracing::error!(destination = %self.destination, id = %self.id, "dead-lettered: {}", self.reason);
    }
}

/// The deliverer finished a pass, whether or not anything was due: a counter that stops
/// moving is a stalled deliverer.
pub struct DeliveryPassEnded;

impl Event for DeliveryPassEnded {
    fn emit(self) {
        metrics::counter!("hindsight_delivery_passes_total").increment(1);
    }
}

/// A pending notification names a destination no longer configured; it is left pending.
pub struct Orphaned<'a> {
    pub destination: &'a str,
    pub id: &'a str,
}

impl Event for Orphaned<'_> {
    fn emit(self) {
        tracing::warn!(destination = %self.destination, id = %self.id, "no such destination configured; entry left pending");
    }
}

/// The digests of a scheduled occurrence were enqueued.
pub struct DigestEnqueued {
    pub occurrence: DateTime<Utc>,
    pub digests: usize,
    pub notifications: usize,
    pub late_by: chrono::Duration,
}

impl Event for DigestEnqueued {
    fn emit(self) {
        metrics::counter!("hindsight_digests_total").increment(1);
        tracing::info!(
            occurrence = %self.occurrence,
            digests = self.digests,
            notifications = self.notifications,
            late_by_s = self.late_by.num_seconds(),
            "digest enqueued"
        );
    }
}

/// The digest job could not make or store its digests; it looks again in a minute.
pub struct DigestFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl Event for DigestFailed<'_> {
    fn emit(self) {
        metrics::counter!("hindsight_digest_failures_total").increment(1);
        tracing::error!("digest failed: {}; trying again in a minute", self.error);
    }
}

/// Retention removed what was past its keep.
pub struct Pruned {
    pub reviews: usize,
    pub notifications: usize,
    pub dead_letters: usize,
    pub elapsed: Duration,
}

impl Event for Pruned {
    fn emit(self) {
        for (what, n) in
            [("reviews", self.reviews), ("notifications", self.notifications), ("dead_letters", self.dead_letters)]
        {
            metrics::counter!("hindsight_pruned_total", "kind" => what).increment(n as u64);
        }
        if self.reviews + self.notifications + self.dead_letters > 0 {
            tracing::info!(
                reviews = self.reviews,
                notifications = self.notifications,
                dead_letters = self.dead_letters,
                elapsed_ms = self.elapsed.as_millis() as u64,
                "retention: removed what is past its keep"
            );
        }
    }
}

/// Sealed review log segments were packed (`store::log_packing`).
pub struct Packed {
    pub packing: crate::store::Packing,
    pub elapsed: Duration,
}

impl Event for Packed {
    fn emit(self) {
        let p = self.packing;
        metrics::counter!("hindsight_review_log_packed_segments_total").increment(p.segments as u64);
        metrics::counter!("hindsight_review_log_packed_reviews_total").increment(p.reviews as u64);
        if p.segments > 0 {
            tracing::info!(
                segments = p.segments,
                reviews = p.reviews,
                snapshots = p.snapshots,
                before = %bytesize::ByteSize(p.before),
                after = %bytesize::ByteSize(p.after),
                elapsed_ms = self.elapsed.as_millis() as u64,
                "review log segments packed"
            );
        }
    }
}

/// The store's size on disk, and the sealed review log segments left unpacked (each one that
/// cannot be read whole was warned about when packing first met it; this keeps them counted).
pub struct StoreMeasured {
    pub usage: crate::store::DiskUsage,
    pub unpacked: usize,
}

impl Event for StoreMeasured {
    fn emit(self) {
        let u = self.usage;
        for (part, bytes) in [("trees", u.trees), ("review_log", u.segments), ("packs", u.packs)] {
            metrics::gauge!("hindsight_store_bytes", "part" => part).set(bytes as f64);
        }
        metrics::gauge!("hindsight_review_log_unpacked_segments").set(self.unpacked as f64);
    }
}
