//! When a digest is due: a cron expression in an IANA time zone (default Monday 08:00 in the
//! machine's zone), evaluated afresh against the clock each time instead of by a timer that
//! keeps the UTC offset of its creation — so 08:00 stays 08:00 across daylight-saving changes —
//! and against the occurrence the last digest was sent for, which the store keeps. That makes a
//! missed digest (the daemon was down at the time) go out once at the next start: not skipped,
//! and not once per missed week.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

pub const DEFAULT_CRON: &str = "0 8 * * Mon";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// The machine's zone (`TZ`, else `/etc/localtime`).
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    pub fn parse(name: &str) -> Result<Zone, String> {
        if name.eq_ignore_ascii_case("local") || name.is_empty() {
            return Ok(Zone::Local);
        }
        chrono_tz::Tz::from_str(name)
            .map(Zone::Named)
            .map_err(|_| format!("{name:?} is not an IANA time zone (e.g. \"Europe/Berlin\", \"UTC\") or \"local\""))
    }
}

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Zone,
    pub expression: String,
}

/// What the digest job should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Send the digest for this occurrence (its period ends there).
    Send(DateTime<Utc>),
    /// Nothing yet; the next occurrence is then.
    Wait(Option<DateTime<Utc>>),
}

impl Schedule {
    /// Five fields (`minute hour day month weekday`, as crontab has them) or six (seconds
    /// first); `@weekly` and the like too.
    pub fn parse(expression: &str, zone: &str) -> Result<Schedule, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|e| format!("{expression:?} is not a cron expression ({e}); e.g. \"0 8 * * Mon\""))?;
        Ok(Schedule { cron, zone: Zone::parse(zone)?, expression: expression.to_owned() })
    }

    fn find<Tz: TimeZone>(&self, tz: Tz, t: DateTime<Utc>, forward: bool) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&tz);
        let found = if forward {
            self.cron.find_next_occurrence(&local, false)
        } else {
            self.cron.find_previous_occurrence(&local, true)
        };
        found.ok().map(|d| d.with_timezone(&Utc))
    }

    /// The first occurrence strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.zone {
            Zone::Local => self.find(chrono::Local, t, true),
            Zone::Named(tz) => self.find(tz, t, true),
        }
    }

    /// The latest occurrence at or before `t`.
    pub fn latest_until(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.zone {
            Zone::Local => self.find(chrono::Local, t, false),
            Zone::Named(tz) => self.find(tz, t, false),
        }
    }

    /// Given the occurrence the last digest was sent for (or, before the first one, when the
    /// daemon first started), what to do at `now`. Only the latest missed occurrence is sent.
    pub fn due(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Due {
        match self.latest_until(now) {
            Some(latest) if latest > last => Due::Send(latest),
            _ => Due::Wait(self.next_after(now.max(last))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn monday_eight_stays_eight_across_daylight_saving() {
        let s = Schedule::parse(DEFAULT_CRON, "Europe/Berlin").unwrap();
        // Summer time (UTC+2) until 25 October 2026, then UTC+1.
        assert_eq!(s.next_after(t("2026-10-20T00:00:00Z")), Some(t("2026-10-26T07:00:00Z")));
        assert_eq!(s.next_after(t("2026-10-10T00:00:00Z")), Some(t("2026-10-12T06:00:00Z")));
    }

    #[test]
    fn a_missed_digest_is_sent_once_for_the_latest_occurrence() {
        let s = Schedule::parse("0 8 * * Mon", "UTC").unwrap();
        let last = t("2026-11-02T08:00:00Z");
        // Down for three Mondays: one digest, for the latest.
        assert_eq!(s.due(last, t("2026-11-25T12:00:00Z")), Due::Send(t("2026-11-23T08:00:00Z")));
        // Sent: nothing more until next Monday.
        assert_eq!(
            s.due(t("2026-11-23T08:00:00Z"), t("2026-11-25T12:00:00Z")),
            Due::Wait(Some(t("2026-11-30T08:00:00Z")))
        );
    }

    #[test]
    fn six_fields_and_bad_input() {
        assert!(Schedule::parse("*/5 * * * * *", "UTC").is_ok());
        let e = Schedule::parse("every monday", "UTC").unwrap_err();
        assert!(e.contains("not a cron expression"), "{e}");
        let e = Schedule::parse(DEFAULT_CRON, "Mars/Olympus").unwrap_err();
        assert!(e.contains("IANA"), "{e}");
    }
}
