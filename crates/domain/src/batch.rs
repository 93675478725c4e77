//! Batch policy arithmetic: `max_parallel` / `fail_threshold` limits (a count or
//! a percentage of the targets), the action past the threshold, and a batch's status.

use serde::{Deserialize, Serialize};

/// A count (`5`) or a share of the batch's hosts (`"10%"`), as given by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Count(u64),
    Percent(u32),
}

impl Limit {
    /// Parse `"7"` or `"25%"`. Zero counts and percentages outside 1..=100 are refused.
    pub fn parse(s: &str) -> Result<Limit, String> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let n: u32 = p
                .trim()
                .parse()
                .map_err(|_| format!("`{s}` is not a percentage like \"10%\""))?;
            if !(1..=100).contains(&n) {
                return Err(format!("percentage `{s}` must be between 1% and 100%"));
            }
            return Ok(Limit::Percent(n));
        }
        let n: u64 = t
            .parse()
            .map_err(|_| format!("`{s}` is neither a count nor a percentage like \"10%\""))?;
        if n == 0 {
            return Err("a count must be at least 1".into());
        }
        Ok(Limit::Count(n))
    }

    /// The limit as a host count for a batch of `total` hosts: a percentage
    /// rounds up and is at least 1, a count is capped at `total`.
    pub fn resolve(self, total: u64) -> u64 {
        let total = total.max(1);
        match self {
            Limit::Count(n) => n.min(total),
            Limit::Percent(p) => (total * p as u64).div_ceil(100).max(1),
        }
    }
}

/// What happens once `fail_threshold` hosts failed or timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFail {
    /// Start no more hosts; running ones finish; the rest end `canceled` (`batch_stopped`).
    #[default]
    Stop,
    /// As `stop`, and cancel the running ones too.
    Abort,
}

impl OnFail {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFail::Stop => "stop",
            OnFail::Abort => "abort",
        }
    }
    pub fn parse(s: &str) -> Option<OnFail> {
        match s {
            "stop" => Some(OnFail::Stop),
            "abort" => Some(OnFail::Abort),
            _ => None,
        }
    }
}

/// The batch's own state as stored: `running` until stopped or canceled.
/// Its reported status derives from this and the hosts' statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Running,
    Completed,
    Failed,
    Stopped,
    Canceled,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Running => "running",
            BatchStatus::Completed => "completed",
            BatchStatus::Failed => "failed",
            BatchStatus::Stopped => "stopped",
            BatchStatus::Canceled => "canceled",
        }
    }
    pub fn parse(s: &str) -> Option<BatchStatus> {
        [
            BatchStatus::Running,
            BatchStatus::Completed,
            BatchStatus::Failed,
            BatchStatus::Stopped,
            BatchStatus::Canceled,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
}

/// Host counts of a batch by job status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub queued: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
    pub canceled: u64,
    pub timed_out: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.queued + self.running + self.completed + self.failed + self.canceled + self.timed_out
    }
    pub fn finished(&self) -> u64 {
        self.total() - self.queued - self.running
    }
    /// Hosts that count toward `fail_threshold`.
    pub fn failures(&self) -> u64 {
        self.failed + self.timed_out
    }
}

/// Whether `failures` failed or timed-out hosts reach the threshold
/// (`threshold` already resolved to a count; 0 means no threshold).
pub fn threshold_reached(failures: u64, threshold: u64) -> bool {
    threshold > 0 && failures >= threshold
}

/// The status a batch reports: `state` is what is stored (running, stopped or
/// canceled); while hosts remain queued or running it is that state, and once all
/// ended a running batch is `completed` if every host succeeded, else `failed`.
pub fn status(state: BatchStatus, c: &Counts) -> BatchStatus {
    if state != BatchStatus::Running {
        return state;
    }
    if c.queued + c.running > 0 {
        return BatchStatus::Running;
    }
    if c.completed == c.total() {
        BatchStatus::Completed
    } else {
        BatchStatus::Failed
    }
}

/// Remaining time in milliseconds from the mean pace so far: `elapsed_ms`
/// since the batch began over `finished` hosts, times what remains. `None`
/// before the first host ends or once none remain.
pub fn eta_ms(c: &Counts, elapsed_ms: i64) -> Option<i64> {
    let done = c.finished();
    let left = c.total() - done;
    if done == 0 || left == 0 {
        return None;
    }
    Some(((elapsed_ms.max(0) as u128 * left as u128) / done as u128) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_counts_and_percentages() {
        assert_eq!(Limit::parse("5"), Ok(Limit::Count(5)));
        assert_eq!(Limit::parse(" 10% "), Ok(Limit::Percent(10)));
        assert!(Limit::parse("0").is_err());
        assert!(Limit::parse("0%").is_err());
        assert!(Limit::parse("101%").is_err());
        assert!(Limit::parse("-1").is_err());
        assert!(Limit::parse("ten").is_err());
        assert!(Limit::parse("5.5%").is_err());
    }

    #[test]
    fn percentages_round_up_and_counts_cap_at_the_total() {
        assert_eq!(Limit::Percent(10).resolve(40), 4);
        assert_eq!(Limit::Percent(10).resolve(41), 5);
        assert_eq!(Limit::Percent(1).resolve(3), 1);
        assert_eq!(Limit::Percent(100).resolve(7), 7);
        assert_eq!(Limit::Count(50).resolve(40), 40);
        assert_eq!(Limit::Count(3).resolve(40), 3);
    }

    #[test]
    fn threshold_counts_failed_and_timed_out() {
        let c = Counts {
            failed: 2,
            timed_out: 1,
            ..Default::default()
        };
        assert!(threshold_reached(c.failures(), 3));
        assert!(!threshold_reached(c.failures(), 4));
        assert!(!threshold_reached(c.failures(), 0));
    }

    #[test]
    fn status_derives_from_state_and_counts() {
        let running = Counts {
            queued: 1,
            completed: 3,
            ..Default::default()
        };
        assert_eq!(status(BatchStatus::Running, &running), BatchStatus::Running);
        let ok = Counts {
            completed: 4,
            ..Default::default()
        };
        assert_eq!(status(BatchStatus::Running, &ok), BatchStatus::Completed);
        let bad = Counts {
            completed: 3,
            failed: 1,
            ..Default::default()
        };
        assert_eq!(status(BatchStatus::Running, &bad), BatchStatus::Failed);
        assert_eq!(status(BatchStatus::Stopped, &ok), BatchStatus::Stopped);
        assert_eq!(
            status(BatchStatus::Canceled, &running),
            BatchStatus::Canceled
        );
    }

    #[test]
    fn eta_scales_the_mean_pace() {
        let c = Counts {
            completed: 2,
            queued: 6,
            ..Default::default()
        };
        assert_eq!(eta_ms(&c, 1000), Some(3000));
        assert_eq!(eta_ms(&Counts::default(), 1000), None);
        let done = Counts {
            completed: 2,
            ..Default::default()
        };
        assert_eq!(eta_ms(&done, 1000), None);
    }
}
