//! systemd integration, all of it a no-op outside systemd (no `$NOTIFY_SOCKET`): `READY=1` once
//! start-up is done, `STATUS=` lines with what the daemon is doing, `WATCHDOG=1` at half of
//! `WatchdogSec` — but only while no worker is stuck on one step, so that a hung daemon is
//! restarted by systemd instead of being kept alive by a timer — and `STOPPING=1` on shutdown.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::stages::health::Health;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing in-flight work")]);
}

/// Asks for more start-up time (a large inventory, a store migration).
pub fn extend_start(by: Duration) {
    send(&[NotifyState::ExtendTimeoutUsec(u32::try_from(by.as_micros()).unwrap_or(u32::MAX))]);
}

/// Feeds the watchdog while the workers make progress; returns when `stop` is cancelled.
pub async fn watchdog(health: Arc<Health>, clock: Arc<dyn Clock>, stall_limit: Duration, stop: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else { return };
    let every = interval / 2;
    let mut warned = false;
    loop {
        let stalled = health.stalled(clock.now(), stall_limit);
        if stalled.is_empty() {
            send(&[NotifyState::Watchdog]);
            warned = false;
        } else if !warned {
            tracing::error!(workers = %stalled.join(", "), "workers stuck; no longer feeding the systemd watchdog");
            warned = true;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
