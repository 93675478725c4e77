//! Schedules: cron expressions in an IANA time zone, their next run times across DST, and
//! what a scheduler tick does with a due time (fire, catch up, or let it pass).
//!
//! Cron parsing and DST rules are `croner`'s (the Open Cron Pattern Specification): a fixed
//! time that a spring-forward gap skips runs once, at the first instant after the gap; a fixed
//! time in a repeated (fall-back) hour runs once, at its first occurrence; interval patterns
//! (`*/15 * * * *`) run on real instants, both passes of a repeated hour included.

use chrono::TimeZone;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Most run times `next_runs` returns.
pub const MAX_NEXT_RUNS: usize = 100;
/// Longest jitter a schedule may ask for, in seconds (one hour).
pub const MAX_JITTER_SECS: i64 = 3600;

/// What a due time does while the schedule's previous run is still queued or running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// The due time is recorded as skipped (default).
    #[default]
    Skip,
    /// The due time waits, and starts once the previous run has finished.
    Queue,
    /// It starts anyway, beside the previous run.
    Allow,
}

impl Overlap {
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        }
    }
    pub fn parse(s: &str) -> Option<Overlap> {
        match s {
            "skip" => Some(Overlap::Skip),
            "queue" => Some(Overlap::Queue),
            "allow" => Some(Overlap::Allow),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("cron `{0}`: {1} (5 fields: minute hour day-of-month month day-of-week, or @hourly, @daily, @weekly, @monthly, @yearly)")]
    Cron(String, String),
    #[error("unknown time zone `{0}` (an IANA name such as Europe/Berlin or UTC)")]
    Zone(String),
    #[error("cron `{0}` never runs")]
    Never(String),
}

/// A parsed cron expression in its time zone.
#[derive(Debug, Clone)]
pub struct CronSpec {
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl CronSpec {
    /// Parse 5 fields (no seconds, no year) or an `@hourly`-style macro, and an IANA zone.
    pub fn parse(expr: &str, zone: &str) -> Result<CronSpec, ScheduleError> {
        let tz = chrono_tz::Tz::from_str(zone).map_err(|_| ScheduleError::Zone(zone.into()))?;
        let trimmed = expr.trim();
        if !trimmed.starts_with('@') && trimmed.split_whitespace().count() != 5 {
            return Err(ScheduleError::Cron(
                expr.into(),
                format!("{} fields", trimmed.split_whitespace().count()),
            ));
        }
        if trimmed.eq_ignore_ascii_case("@reboot") {
            return Err(ScheduleError::Cron(
                expr.into(),
                "@reboot is not a time".into(),
            ));
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(trimmed)
            .map_err(|e| ScheduleError::Cron(expr.into(), e.to_string()))?;
        let spec = CronSpec { cron, tz };
        if spec.next_after(crate::time::now_ms()).is_none() {
            return Err(ScheduleError::Never(expr.into()));
        }
        Ok(spec)
    }

    /// The first run strictly after `after_ms` (epoch milliseconds), if any.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let t = self.tz.timestamp_millis_opt(after_ms).single()?;
        self.cron
            .find_next_occurrence(&t, false)
            .ok()
            .map(|d| d.timestamp_millis())
    }

    /// The next `n` (at most `MAX_NEXT_RUNS`) runs after `after_ms`.
    pub fn next_runs(&self, after_ms: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::new();
        let mut t = after_ms;
        while out.len() < n.min(MAX_NEXT_RUNS) {
            match self.next_after(t) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    /// The expression in English, e.g. "At 02:30 every day" (croner's wording).
    pub fn describe(&self) -> String {
        self.cron.describe()
    }
}

/// What a tick does with a schedule whose run time has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickPlan {
    /// Fire for this due time (`None`: the missed run is let pass, `catch_up` off).
    pub fire: Option<i64>,
    /// The due time missed runs are recorded under when none fires.
    pub missed: Option<i64>,
    /// The next cron time after `now` (`None`: the expression never runs again).
    pub next_due: Option<i64>,
}

/// Plan a tick at `now_ms` for a schedule due at `due_ms` that was to run at `run_ms`
/// (`due_ms` plus jitter). On time (`now - run <= grace_ms`): it fires for `due_ms`.
/// Later than that (the scheduler was down): with `catch_up` one run fires for the latest
/// missed due time, without it none; either way the next due time is the first after `now`,
/// so a long outage never fires a burst.
pub fn plan_tick(
    spec: &CronSpec,
    due_ms: i64,
    run_ms: i64,
    now_ms: i64,
    grace_ms: i64,
    catch_up: bool,
) -> TickPlan {
    let next_due = spec.next_after(now_ms);
    if now_ms - run_ms <= grace_ms {
        return TickPlan {
            fire: Some(due_ms),
            missed: None,
            next_due,
        };
    }
    // The latest cron time at or before now: walk forward from the missed due time.
    let mut latest = due_ms;
    while let Some(n) = spec.next_after(latest).filter(|n| *n <= now_ms) {
        latest = n;
    }
    TickPlan {
        fire: catch_up.then_some(latest),
        missed: (!catch_up).then_some(latest),
        next_due,
    }
}

/// A jitter in `0..=jitter_secs` seconds, as milliseconds, derived from the schedule and due
/// time (the same on every instance, so the claim's next_run_at agrees).
pub fn jitter_ms(schedule_id: &str, due_ms: i64, jitter_secs: i64) -> i64 {
    if jitter_secs <= 0 {
        return 0;
    }
    // FNV-1a over id and due time: stable, spread, no shared RNG state.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in schedule_id.bytes().chain(due_ms.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % (jitter_secs as u64 * 1000 + 1)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(zone: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        let tz = chrono_tz::Tz::from_str(zone).unwrap();
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .timestamp_millis()
    }

    fn utc(t: i64) -> String {
        chrono::DateTime::from_timestamp_millis(t)
            .unwrap()
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    fn local(zone: &str, t: i64) -> String {
        let tz = chrono_tz::Tz::from_str(zone).unwrap();
        tz.timestamp_millis_opt(t)
            .unwrap()
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    #[test]
    fn daily_0230_across_both_dst_changes_in_berlin() {
        // Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (02:30 does not exist);
        // 2026-10-25 03:00 CEST -> 02:00 CET (02:30 happens twice).
        let z = "Europe/Berlin";
        let s = CronSpec::parse("30 2 * * *", z).unwrap();
        let spring: Vec<String> = s
            .next_runs(ms(z, 2026, 3, 27, 12, 0), 4)
            .into_iter()
            .map(|t| local(z, t))
            .collect();
        assert_eq!(
            spring,
            [
                "2026-03-28 02:30 CET",
                "2026-03-29 03:00 CEST", // once, the first instant after the gap
                "2026-03-30 02:30 CEST",
                "2026-03-31 02:30 CEST",
            ]
        );
        let fall: Vec<String> = s
            .next_runs(ms(z, 2026, 10, 24, 12, 0), 3)
            .into_iter()
            .map(|t| format!("{} = {} UTC", local(z, t), utc(t)))
            .collect();
        assert_eq!(
            fall,
            [
                "2026-10-25 02:30 CEST = 2026-10-25 00:30 UTC", // once, the first pass
                "2026-10-26 02:30 CET = 2026-10-26 01:30 UTC",
                "2026-10-27 02:30 CET = 2026-10-27 01:30 UTC",
            ]
        );
    }

    #[test]
    fn new_york_both_changes_and_hourly_interval() {
        // New York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
        let z = "America/New_York";
        let daily = CronSpec::parse("30 2 * * *", z).unwrap();
        let got: Vec<String> = daily
            .next_runs(ms(z, 2026, 3, 7, 12, 0), 2)
            .into_iter()
            .map(|t| local(z, t))
            .collect();
        assert_eq!(got, ["2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT"]);
        // 01:30 happens twice on 2026-11-01: a fixed time runs once.
        let fixed = CronSpec::parse("30 1 * * *", z).unwrap();
        let got: Vec<String> = fixed
            .next_runs(ms(z, 2026, 10, 31, 12, 0), 2)
            .into_iter()
            .map(|t| utc(t))
            .collect();
        assert_eq!(got, ["2026-11-01 05:30", "2026-11-02 06:30"]);
        // @hourly is an interval: real hours, 25 of them on the long day, 23 on the short one.
        let hourly = CronSpec::parse("@hourly", z).unwrap();
        let long_day = hourly.next_runs(ms(z, 2026, 11, 1, 0, 0) - 1, 100);
        let end = ms(z, 2026, 11, 2, 0, 0);
        assert_eq!(long_day.iter().filter(|t| **t < end).count(), 25);
        let short_day = hourly.next_runs(ms(z, 2026, 3, 8, 0, 0) - 1, 100);
        let end = ms(z, 2026, 3, 9, 0, 0);
        assert_eq!(short_day.iter().filter(|t| **t < end).count(), 23);
        // Strictly increasing, an hour apart in real time.
        assert!(long_day.windows(2).all(|w| w[1] - w[0] == 3_600_000));
    }

    #[test]
    fn bad_expressions_and_zones() {
        let e = |c: &str, z: &str| CronSpec::parse(c, z).unwrap_err().to_string();
        assert!(e("* * * *", "UTC").contains("4 fields"));
        assert!(e("0 * * * * *", "UTC").contains("6 fields"));
        assert!(e("61 * * * *", "UTC").starts_with("cron `61 * * * *`"));
        assert!(e("0 0 * * *", "Mars/Olympus").contains("unknown time zone"));
        assert!(e("@reboot", "UTC").contains("not a time"));
        assert!(
            e("0 0 30 2 *", "UTC").contains("never runs")
                || e("0 0 30 2 *", "UTC").starts_with("cron")
        );
        assert!(CronSpec::parse("@daily", "Europe/Berlin").is_ok());
        assert!(CronSpec::parse("*/5 9-17 * * MON-FRI", "UTC").is_ok());
    }

    #[test]
    fn tick_fires_on_time_and_catches_up_once() {
        let s = CronSpec::parse("0 * * * *", "UTC").unwrap();
        let h = 3_600_000;
        let due = 100 * h;
        // On time: fires for its due time, next is the following hour.
        let p = plan_tick(&s, due, due, due + 5_000, 60_000, false);
        assert_eq!(
            p,
            TickPlan {
                fire: Some(due),
                missed: None,
                next_due: Some(due + h)
            }
        );
        // Down for 5 hours: one catch-up run for the latest due time, or none.
        let now = due + 5 * h + 10_000;
        let p = plan_tick(&s, due, due, now, 60_000, true);
        assert_eq!(
            p,
            TickPlan {
                fire: Some(due + 5 * h),
                missed: None,
                next_due: Some(due + 6 * h)
            }
        );
        let p = plan_tick(&s, due, due, now, 60_000, false);
        assert_eq!(
            p,
            TickPlan {
                fire: None,
                missed: Some(due + 5 * h),
                next_due: Some(due + 6 * h)
            }
        );
    }

    #[test]
    fn jitter_is_bounded_and_stable() {
        for d in 0..200 {
            let j = jitter_ms("s1", d * 60_000, 30);
            assert!((0..=30_000).contains(&j));
            assert_eq!(j, jitter_ms("s1", d * 60_000, 30));
        }
        assert_eq!(jitter_ms("s1", 0, 0), 0);
        let distinct: std::collections::HashSet<i64> =
            (0..50).map(|d| jitter_ms("s1", d * 60_000, 30)).collect();
        assert!(distinct.len() > 40, "spread over the window");
    }
}
