//! The one clock. Every "now" in Hindsight comes from a [`Clock`] handed in by the caller, so
//! tests can run a week of schedules in milliseconds and reviews stay pure functions. Waiting
//! goes through the same clock: a test that moves the clock on by an hour wakes whatever was
//! waiting for that hour at once, instead of sleeping through it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A future returned by [`Clock::sleep`]. Boxed so that the trait stays object-safe
/// (`Arc<dyn Clock>` is how the daemon hands its clock around).
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Completes once `d` has passed on this clock, measured from the call (not the first poll).
    fn sleep(&self, d: Duration) -> Sleep<'_>;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, d: Duration) -> Sleep<'_> {
        // tokio's timer, not the wall clock: a sleep is about elapsed time, and a wall-clock
        // step (NTP, a suspended VM) must not make it end early or late.
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that only moves when told to (tests, simulations). Its sleepers wake when
/// [`ManualClock::set`] or [`ManualClock::advance`] moves it to or past their deadline; a clock
/// nobody moves never wakes them.
#[derive(Debug)]
pub struct ManualClock(watch::Sender<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock(watch::Sender::new(at))
    }
    pub fn set(&self, at: DateTime<Utc>) {
        self.0.send_replace(at);
    }
    pub fn advance(&self, by: chrono::Duration) {
        self.0.send_modify(|t| *t += by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.borrow()
    }

    fn sleep(&self, d: Duration) -> Sleep<'_> {
        let mut rx = self.0.subscribe();
        // The deadline is fixed now, so a clock moved between this call and the first poll
        // counts. A deadline beyond what chrono can represent is never reached.
        let deadline = chrono::Duration::from_std(d).ok().and_then(|d| rx.borrow_and_update().checked_add_signed(d));
        Box::pin(async move {
            let Some(deadline) = deadline else {
                return std::future::pending().await;
            };
            loop {
                let now = *rx.borrow_and_update();
                if now >= deadline {
                    return;
                }
                // The sender lives in `self`, which outlives this future: `changed` cannot fail
                // while anyone can still move the clock.
                if rx.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    /// Polls `f` once without waiting: whether it is already done.
    fn ready<F: Future + Unpin>(f: &mut F) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        Pin::new(f).poll(&mut cx).is_ready()
    }

    #[test]
    fn manual_sleep_waits_for_the_clock_to_reach_the_deadline() {
        let clock = ManualClock::new(t0());
        let mut sleep = clock.sleep(Duration::from_secs(3600));
        assert!(!ready(&mut sleep));
        clock.advance(chrono::Duration::minutes(59));
        assert!(!ready(&mut sleep), "a minute short of the hour");
        clock.advance(chrono::Duration::minutes(1));
        assert!(ready(&mut sleep), "exactly at the deadline");
    }

    #[test]
    fn manual_sleep_counts_from_the_call_and_zero_is_at_once() {
        let clock = ManualClock::new(t0());
        let mut sleep = clock.sleep(Duration::from_secs(60));
        // Moved before the first poll: still counts.
        clock.set(t0() + chrono::Duration::hours(2));
        assert!(ready(&mut sleep));
        assert!(ready(&mut clock.sleep(Duration::ZERO)));
        // A clock set back does not wake a sleeper early.
        let mut sleep = clock.sleep(Duration::from_secs(1));
        clock.set(t0());
        assert!(!ready(&mut sleep));
        assert!(!ready(&mut clock.sleep(Duration::MAX)));
    }

    #[tokio::test]
    async fn advancing_by_an_hour_wakes_a_sleeping_task_at_once() {
        let clock = Arc::new(ManualClock::new(t0()));
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep(Duration::from_secs(3600)).await })
        };
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(chrono::Duration::hours(1));
        let woke = tokio::time::timeout(Duration::from_secs(5), sleeper).await;
        assert!(matches!(woke, Ok(Ok(()))), "the sleeper woke when the clock passed its deadline");
    }

    #[tokio::test]
    async fn system_sleep_sleeps() {
        let start = tokio::time::Instant::now();
        SystemClock.sleep(Duration::from_millis(30)).await;
        assert!(start.elapsed() >= Duration::from_millis(30));
    }
}
