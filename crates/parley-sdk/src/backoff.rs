//! Reconnect delays: exponential backoff with full jitter.
//!
//! Attempt `n` (from 0) waits a uniformly random time in `[0, min(max, base * 2^n)]`
//! (AWS's "full jitter"), so thousands of clients dropped at once by a restarting server
//! do not come back in lockstep. Owns only the attempt counter; sleeping is the caller's.

use rand::Rng;
use std::time::Duration;

/// The backoff state of one connection.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff whose first ceiling is `base` and whose ceiling never exceeds `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            attempt: 0,
        }
    }

    /// How many delays have been handed out since the last [`Backoff::reset`].
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The upper bound of the delay for attempt `attempt`: `min(max, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .map_or(self.max, |ceiling| ceiling.min(self.max))
    }

    /// The next delay (random in `[0, ceiling]`), advancing the attempt counter.
    pub fn next_delay(&mut self, random: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(random.random_range(0..=ceiling_micros))
    }

    /// Start over after a successful connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    /// The ceiling doubles from `base` and is capped at `max`, even for huge attempts.
    #[test]
    fn ceiling_doubles_then_caps() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(1), Duration::from_millis(200));
        assert_eq!(backoff.ceiling(4), Duration::from_millis(1600));
        assert_eq!(backoff.ceiling(6), Duration::from_secs(5));
        assert_eq!(backoff.ceiling(40), Duration::from_secs(5));
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(5));
    }

    /// Every delay lies within its attempt's ceiling, and the delays are actually spread
    /// (full jitter), not all equal to the ceiling.
    #[test]
    fn delays_are_jittered_within_the_ceiling() {
        let mut random = StdRng::seed_from_u64(7);
        let mut distinct_delays = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
            for attempt in 0..10 {
                let ceiling = backoff.ceiling(attempt);
                let delay = backoff.next_delay(&mut random);
                assert!(
                    delay <= ceiling,
                    "attempt {attempt}: {delay:?} > {ceiling:?}"
                );
                distinct_delays.insert(delay);
            }
        }
        assert!(distinct_delays.len() > 1000);
    }

    /// `reset` brings the ceiling back to `base`.
    #[test]
    fn reset_starts_over() {
        let mut random = StdRng::seed_from_u64(1);
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        for _ in 0..5 {
            backoff.next_delay(&mut random);
        }
        assert_eq!(backoff.attempt(), 5);
        backoff.reset();
        assert_eq!(backoff.attempt(), 0);
        assert!(backoff.next_delay(&mut random) <= Duration::from_millis(10));
    }
}
