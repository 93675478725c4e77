//! Retry times: exponential backoff with jitter, capped, within a delivery's retry window.

use std::time::Duration;

/// Delay before attempt `attempt + 1` after attempt `attempt` (1-based) failed:
/// `base * 2^(attempt-1)`, at most `max`, minus up to 20% jitter so many
/// deliveries failing together do not retry together.
pub fn delay(attempt: i64, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = (attempt.max(1) - 1).min(32) as u32;
    let d = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    d.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
}

/// When to try again (epoch ms), or `None` when the next attempt would fall
/// past `give_up_at`.
pub fn next_attempt(
    now_ms: i64,
    attempt: i64,
    give_up_at: i64,
    base: Duration,
    max: Duration,
    jitter: f64,
) -> Option<i64> {
    let at = now_ms + delay(attempt, base, max, jitter).as_millis() as i64;
    (at <= give_up_at).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_gives_up_after_the_window() {
        let (b, m) = (Duration::from_secs(10), Duration::from_secs(3600));
        let secs: Vec<u64> = (1..=11).map(|a| delay(a, b, m, 0.0).as_secs()).collect();
        assert_eq!(
            secs,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(delay(1, b, m, 1.0), Duration::from_secs(8));
        assert_eq!(delay(i64::MAX, b, m, 0.0), m);
        // Attempts over a 24 h window: the schedule ends with the window.
        let window = 24 * 3600 * 1000;
        let (mut now, mut attempt, mut n) = (0i64, 1i64, 1);
        while let Some(at) = next_attempt(now, attempt, window, b, m, 0.0) {
            now = at;
            attempt += 1;
            n += 1;
        }
        assert!(now <= window && now > window - 3_600_000, "last try {now}");
        assert_eq!(n, 32, "attempts within 24 h");
    }
}
