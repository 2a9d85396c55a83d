//! How long the uploader waits before trying a server that did not answer:
//! 0.5 s, doubling up to 60 s, each wait drawn between half and the whole of
//! it (so clients cut off together do not come back together), and back to
//! the start after a success. A `Retry-After` from the server is honoured
//! when it asks for longer.

use std::time::Duration;

/// The first wait.
pub const FIRST: Duration = Duration::from_millis(500);
/// The longest wait.
pub const MAX: Duration = Duration::from_mins(1);

/// The state of one server's backoff.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: FIRST,
            failures: 0,
        }
    }
}

impl Backoff {
    /// The wait after one more failure, given a random number in `[0, 1)`
    /// for the jitter and what the server asked for, if anything.
    pub fn fail_with(&mut self, unit: f64, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(MAX);
        self.failures = self.failures.saturating_add(1);
        let jittered = ceiling.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0));
        match retry_after {
            Some(asked) if asked > jittered => asked.min(MAX),
            _ => jittered,
        }
    }

    /// The wait after one more failure, with a random jitter.
    pub fn fail(&mut self, retry_after: Option<Duration>) -> Duration {
        self.fail_with(random_unit(), retry_after)
    }

    /// A request went through: the next failure waits the shortest again.
    pub fn succeed(&mut self) {
        *self = Self::default();
    }

    /// Failures since the last success.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// A number in `[0, 1)`; 0.5 when the system gives no randomness.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_half_a_second_to_a_minute_and_starts_over() {
        let mut b = Backoff::default();
        let tops: Vec<Duration> = (0..10).map(|_| b.fail_with(1.0, None)).collect();
        let secs: Vec<f64> = tops.iter().map(Duration::as_secs_f64).collect();
        assert_eq!(
            secs,
            [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
        );
        assert_eq!(b.failures(), 10);
        b.succeed();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.fail_with(1.0, None), FIRST);
    }

    #[test]
    fn jitter_keeps_within_half_and_whole() {
        let mut b = Backoff::default();
        assert_eq!(b.fail_with(0.0, None), Duration::from_millis(250));
        let mut b = Backoff::default();
        for _ in 0..100 {
            let wait = b.fail(None);
            assert!(wait >= FIRST / 2 && wait <= MAX, "{wait:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_longest_wait() {
        let mut b = Backoff::default();
        assert_eq!(
            b.fail_with(1.0, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        // A shorter ask does not shorten the backoff.
        assert_eq!(
            b.fail_with(1.0, Some(Duration::from_millis(10))),
            Duration::from_secs(1)
        );
        assert_eq!(b.fail_with(1.0, Some(Duration::from_hours(1))), MAX);
    }
}
