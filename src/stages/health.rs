//! What the daemon knows of its own health, shared by the workers (which report), `/readyz`
//! (which judges), the systemd watchdog (which is fed only while workers make progress) and the
//! status line.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct SourceHealth {
    pub poll_interval_s: u64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
}

/// What the deliverer found of one destination.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DestinationHealth {
    pub last_success: Option<DateTime<Utc>>,
    /// When the current run of passes in which every attempt failed began (`None`: not failing).
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub failed_passes: u32,
    pub pending: usize,
    pub dead: usize,
}

#[derive(Debug, Default)]
struct State {
    ready: bool,
    started: Option<DateTime<Utc>>,
    sources: BTreeMap<String, SourceHealth>,
    destinations: BTreeMap<String, DestinationHealth>,
    /// How long a destination may refuse every attempt before `/readyz` reports not ready.
    delivery_grace: Duration,
    /// Worker name → since when it has been busy on its current step (absent: idle).
    busy: BTreeMap<String, DateTime<Utc>>,
    store_error: Option<String>,
    reviewed: u64,
    outbox: OutboxCounts,
    next_digest: Option<DateTime<Utc>>,
    /// Queued resolutions, and those given up (the store's `failed` tree).
    review_queue: (usize, usize),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: usize,
    pub delivered: usize,
    pub dead: usize,
}

#[derive(Debug, Default)]
pub struct Health(Mutex<State>);

/// The verdict of `/readyz`, each check with what it found.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Health {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn add_source(&self, name: &str, interval: Duration) {
        self.with(|s| {
            s.sources.insert(
                name.to_owned(),
                SourceHealth {
                    poll_interval_s: interval.as_secs(),
                    last_success: None,
                    last_error: None,
                    last_error_at: None,
                    consecutive_failures: 0,
                },
            )
        });
    }

    pub fn add_destination(&self, name: &str) {
        self.with(|s| s.destinations.insert(name.to_owned(), DestinationHealth::default()));
    }

    pub fn set_delivery_grace(&self, grace: Duration) {
        self.with(|s| s.delivery_grace = grace);
    }

    /// The outcome of a delivery pass per destination tried: `None` when something went
    /// through, else the last failure. Returns the destinations that were failing and now
    /// took a delivery: their backlog can go out at once.
    pub fn deliveries(&self, outcomes: &BTreeMap<String, Option<String>>, now: DateTime<Utc>) -> Vec<String> {
        self.with(|s| {
            let mut recovered = Vec::new();
            for (name, outcome) in outcomes {
                let h = s.destinations.entry(name.clone()).or_default();
                match outcome {
                    None => {
                        if h.failing_since.is_some() {
                            recovered.push(name.clone());
                        }
                        h.last_success = Some(now);
                        h.failing_since = None;
                        h.failed_passes = 0;
                    }
                    Some(e) => {
                        h.failing_since.get_or_insert(now);
                        h.last_error = Some(e.clone());
                        h.failed_passes += 1;
                    }
                }
            }
            recovered
        })
    }

    /// Outbox entries of one destination in one state ("pending", "delivered", "dead").
    pub fn set_destination_count(&self, name: &str, state: &str, n: usize) {
        self.with(|s| {
            if let Some(h) = s.destinations.get_mut(name) {
                match state {
                    "pending" => h.pending = n,
                    "dead" => h.dead = n,
                    _ => {}
                }
            }
        });
    }

    pub fn set_ready(&self, now: DateTime<Utc>) {
        self.with(|s| {
            s.ready = true;
            s.started = Some(now);
        });
    }

    pub fn poll_succeeded(&self, name: &str, now: DateTime<Utc>) {
        self.with(|s| {
            if let Some(h) = s.sources.get_mut(name) {
                h.last_success = Some(now);
                h.consecutive_failures = 0;
            }
        });
    }

    pub fn poll_failed(&self, name: &str, error: &str, now: DateTime<Utc>) {
        self.with(|s| {
            if let Some(h) = s.sources.get_mut(name) {
                h.last_error = Some(error.to_owned());
                h.last_error_at = Some(now);
                h.consecutive_failures += 1;
            }
        });
    }

    pub fn busy(&self, worker: &str, now: DateTime<Utc>) {
        self.with(|s| s.busy.insert(worker.to_owned(), now));
    }

    pub fn idle(&self, worker: &str) {
        self.with(|s| s.busy.remove(worker));
    }

    /// A store operation failed (disk full, read-only, I/O error) or, with `None`, worked again.
    pub fn store_result(&self, error: Option<String>) {
        self.with(|s| s.store_error = error);
    }

    pub fn reviewed(&self, n: usize) {
        self.with(|s| s.reviewed += n as u64);
    }

    /// The review queue's length and how many resolutions were given up (`failed`).
    pub fn set_review_queue(&self, queued: usize, failed: usize) {
        self.with(|s| s.review_queue = (queued, failed));
    }

    pub fn reviewed_total(&self) -> u64 {
        self.with(|s| s.reviewed)
    }

    pub fn set_outbox(&self, counts: OutboxCounts) {
        self.with(|s| s.outbox = counts);
    }

    pub fn set_next_digest(&self, at: Option<DateTime<Utc>>) {
        self.with(|s| s.next_digest = at);
    }

    /// The systemd status line: what the daemon is doing, in one line.
    pub fn status_line(&self) -> String {
        self.with(|s| {
            let failing = s.sources.values().filter(|h| h.consecutive_failures > 0).count();
            let mut line = format!(
                "{} source(s){}; {} review(s) since start; outbox {} pending, {} dead",
                s.sources.len(),
                if failing > 0 { format!(" ({failing} failing)") } else { String::new() },
                s.reviewed,
                s.outbox.pending,
                s.outbox.dead
            );
            if let Some(t) = s.next_digest {
                line += &format!("; next digest {}", t.format("%Y-%m-%d %H:%M UTC"));
            }
            if s.review_queue.1 > 0 {
                line += &format!("; {} incident(s) could not be reviewed", s.review_queue.1);
            }
            if let Some(e) = &s.store_error {
                line += &format!("; STORE FAILING: {e}");
            }
            line
        })
    }

    /// Workers busy on one step for longer than `limit`.
    pub fn stalled(&self, now: DateTime<Utc>, limit: Duration) -> Vec<String> {
        let limit = chrono::Duration::from_std(limit).unwrap_or(chrono::Duration::MAX);
        self.with(|s| s.busy.iter().filter(|(_, since)| now - **since > limit).map(|(w, _)| w.clone()).collect())
    }

    pub fn sources(&self) -> BTreeMap<String, SourceHealth> {
        self.with(|s| s.sources.clone())
    }

    /// Ready when start-up is done, the store works, no worker is stuck, and every source has
    /// been polled successfully recently: within three poll intervals plus a minute (time for a
    /// pass with retries), counted from the start for a source not yet polled.
    pub fn readiness(&self, now: DateTime<Utc>, stall_limit: Duration, store_ok: Result<(), String>) -> Readiness {
        let stalled = self.stalled(now, stall_limit);
        self.with(|s| {
            let mut checks = vec![Check {
                name: "started".into(),
                ok: s.ready,
                detail: if s.ready { "start-up complete; catalog loaded".into() } else { "starting".into() },
            }];
            let store = match (&store_ok, &s.store_error) {
                (Err(e), _) | (Ok(()), Some(e)) => (false, e.clone()),
                // A read and the free-space reserve (the check before every write); nothing is
                // written for a probe, so "writable" would claim more than was shown.
                (Ok(()), None) => (true, "open and readable; free space above the reserve".into()),
            };
            checks.push(Check { name: "store".into(), ok: store.0, detail: store.1 });
            checks.push(Check {
                name: "workers".into(),
                ok: stalled.is_empty(),
                detail: if stalled.is_empty() {
                    "all making progress".into()
                } else {
                    format!("stuck for over {}: {}", humantime::format_duration(stall_limit), stalled.join(", "))
                },
            });
            // Informational: a resolution that cannot be reviewed stays so across restarts, so
            // it must not make the daemon unready (a restart loop would not fix it).
            let (queued, failed) = s.review_queue;
            checks.push(Check {
                name: "review queue".into(),
                ok: true,
                detail: if failed == 0 {
                    format!("{queued} queued")
                } else {
                    format!("{queued} queued; {failed} could not be reviewed (hindsight queue list --failed)")
                },
            });
            for (name, h) in &s.sources {
                let allowed = chrono::Duration::seconds(3 * h.poll_interval_s as i64 + 60);
                let since = h.last_success.or(s.started);
                let ok = since.is_some_and(|t| now - t <= allowed);
                let detail = match (&h.last_success, &h.last_error) {
                    (Some(t), None) => format!("last successful poll {t}"),
                    (Some(t), Some(e)) if h.consecutive_failures == 0 => {
                        format!("last successful poll {t} (earlier error: {e})")
                    }
                    (last, Some(e)) => format!(
                        "{} failed poll(s) in a row, last: {e}; last success {}",
                        h.consecutive_failures,
                        last.map_or("never".to_owned(), |t| t.to_string())
                    ),
                    (None, None) => "not polled yet".into(),
                };
                checks.push(Check { name: format!("source {name}"), ok, detail });
            }
            let grace = chrono::Duration::from_std(s.delivery_grace).unwrap_or(chrono::Duration::MAX);
            for (name, h) in &s.destinations {
                let queue = format!("{} pending, {} dead-lettered", h.pending, h.dead);
                let last = h.last_success.map_or("never".to_owned(), |t| t.to_string());
                let (ok, detail) = match (h.failing_since, &h.last_error) {
                    (Some(since), Some(e)) => (
                        now - since <= grace,
                        format!(
                            "every attempt failing since {since} ({} pass(es)), last: {e}; {queue}; last delivery {last}",
                            h.failed_passes
                        ),
                    ),
                    _ => (true, format!("{queue}; last delivery {last}")),
                };
                checks.push(Check { name: format!("destination {name}"), ok, detail });
            }
            Readiness { ready: checks.iter().all(|c| c.ok), checks }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn readiness_follows_start_up_sources_workers_and_the_store() {
        let h = Health::default();
        h.add_source("contoso", Duration::from_secs(60));
        let stall = Duration::from_secs(600);
        let r = h.readiness(t("2026-12-01T10:00:00Z"), stall, Ok(()));
        assert!(!r.ready, "not before start-up is done");
        h.set_ready(t("2026-12-01T10:00:00Z"));
        // Not polled yet, but within three intervals and a minute of the start.
        assert!(h.readiness(t("2026-12-01T10:03:00Z"), stall, Ok(())).ready);
        let late = h.readiness(t("2026-12-01T10:04:01Z"), stall, Ok(()));
        assert!(!late.ready);
        assert!(late.checks.iter().any(|c| c.name == "source contoso" && !c.ok && c.detail == "not polled yet"));
        h.poll_succeeded("contoso", t("2026-12-01T10:04:00Z"));
        assert!(h.readiness(t("2026-12-01T10:04:01Z"), stall, Ok(())).ready);
        // Failing polls: ready until the last success is too old, and the error is shown.
        h.poll_failed("contoso", "sign-in failed (HTTP 401)", t("2026-12-01T10:05:00Z"));
        let r = h.readiness(t("2026-12-01T10:09:00Z"), stall, Ok(()));
        assert!(!r.ready);
        assert!(
            r.checks.iter().any(|c| c.detail.starts_with("1 failed poll(s) in a row, last: sign-in failed")),
            "{r:?}"
        );
        h.poll_succeeded("contoso", t("2026-12-01T10:09:30Z"));
        // A worker stuck on one step, and a failing store.
        h.busy("deliver", t("2026-12-01T10:00:00Z"));
        assert!(!h.readiness(t("2026-12-01T10:10:01Z"), stall, Ok(())).ready);
        assert_eq!(h.stalled(t("2026-12-01T10:10:01Z"), stall), vec!["deliver".to_owned()]);
        h.idle("deliver");
        assert!(h.readiness(t("2026-12-01T10:10:01Z"), stall, Ok(())).ready);
        assert!(!h.readiness(t("2026-12-01T10:10:01Z"), stall, Err("disk full".into())).ready);
        h.store_result(Some("No space left on device".into()));
        assert!(h.status_line().contains("STORE FAILING: No space left on device"));
        h.store_result(None);

        // A destination refusing every attempt: ready through the grace, then not, until one
        // attempt goes through.
        h.add_destination("soc-hook");
        h.set_delivery_grace(Duration::from_secs(600));
        let failed = BTreeMap::from([("soc-hook".to_owned(), Some("HTTP 503".to_owned()))]);
        h.deliveries(&failed, t("2026-12-01T10:11:00Z"));
        h.set_destination_count("soc-hook", "pending", 7);
        h.poll_succeeded("contoso", t("2026-12-01T10:19:00Z"));
        let r = h.readiness(t("2026-12-01T10:20:00Z"), stall, Ok(()));
        let check = r.checks.iter().find(|c| c.name == "destination soc-hook").unwrap();
        assert!(r.ready && check.ok, "{r:?}");
        assert!(check.detail.starts_with("every attempt failing since 2026-12-01 10:11:00 UTC"), "{}", check.detail);
        assert!(check.detail.contains("HTTP 503; 7 pending"), "{}", check.detail);
        h.deliveries(&failed, t("2026-12-01T10:21:00Z"));
        assert!(!h.readiness(t("2026-12-01T10:21:01Z"), stall, Ok(())).ready);
        h.deliveries(&BTreeMap::from([("soc-hook".to_owned(), None)]), t("2026-12-01T10:22:00Z"));
        assert!(h.readiness(t("2026-12-01T10:22:01Z"), stall, Ok(())).ready);
    }
}
