//! Capped exponential backoff, for the client's reconnects and the server's accept retries.

use std::time::Duration;

/// Capped exponential backoff: `min`, `2·min`, `4·min`, ... never above `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Option<Duration>,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        // A swapped pair must not make the cap smaller than the floor.
        let min = min.max(Duration::from_millis(1));
        Self {
            min,
            max: max.max(min),
            current: None,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = match self.current {
            None => self.min,
            Some(c) => c.saturating_mul(2).min(self.max),
        };
        self.current = Some(d);
        d
    }

    /// Call after a success: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_min_and_caps_at_max() {
        let mut b = Backoff::new(Duration::from_millis(20), Duration::from_millis(150));
        let seq: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(seq, [20, 40, 80, 150, 150, 150]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(20));
    }

    #[test]
    fn backoff_with_swapped_bounds_never_goes_below_min() {
        let mut b = Backoff::new(Duration::from_secs(2), Duration::from_millis(10));
        for _ in 0..5 {
            assert_eq!(b.next_delay(), Duration::from_secs(2));
        }
        let mut z = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(
            z.next_delay(),
            Duration::from_millis(1),
            "a zero floor would spin"
        );
    }

    #[test]
    fn backoff_never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::MAX);
        for _ in 0..200 {
            assert!(b.next_delay() >= Duration::from_secs(1));
        }
    }
}
