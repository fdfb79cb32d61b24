//! When a failed delivery is tried again, and when it is given up.

use std::time::Duration;

/// When to try again: Standard Webhooks' schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h,
/// about 27 h in all), each delay varied by ±20 % so that a receiver coming back is not hit by
/// every sender at once. `None` once the budget is spent.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub schedule: Vec<Duration>,
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let m = |x: u64| Duration::from_secs(x * 60);
        RetryPolicy {
            schedule: vec![Duration::from_secs(5), m(5), m(30), m(120), m(300), m(600), m(600)],
            budget: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt number `attempts + 1`, or `None` when the entry should die.
    pub fn next_delay(&self, attempts: u32, age: Duration, retry_after: Option<Duration>) -> Option<Duration> {
        if age >= self.budget {
            return None;
        }
        let base = self.schedule.get(attempts.saturating_sub(1) as usize).copied()?;
        let jitter = base.mul_f64(rand::Rng::random_range(&mut rand::rng(), 0.8..=1.2));
        let delay = retry_after.map_or(jitter, |r| r.max(jitter));
        (age + delay <= self.budget).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_honours_retry_after_and_stops_at_the_budget() {
        let p = RetryPolicy::default();
        let first = p.next_delay(1, Duration::ZERO, None).unwrap_or_default();
        assert!((4_000..=6_000).contains(&first.as_millis()), "{first:?}");
        let asked = p.next_delay(1, Duration::ZERO, Some(Duration::from_secs(90))).unwrap_or_default();
        assert_eq!(asked, Duration::from_secs(90), "a longer Retry-After wins over the schedule");
        assert_eq!(p.next_delay(1, p.budget, None), None, "past the budget the entry dies");
        assert_eq!(p.next_delay(99, Duration::ZERO, None), None, "past the schedule the entry dies");
        assert_eq!(
            p.next_delay(1, p.budget - Duration::from_secs(1), Some(Duration::from_secs(60))),
            None,
            "a retry that would land past the budget is not scheduled"
        );
    }
}
