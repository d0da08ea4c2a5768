//! Rate limits: the [`RateLimiter`] port and the token bucket every limit uses.
//!
//! A limit is a [`Quota`] ("200 a minute") applied per key ("user u_1's sends"). A bucket
//! holds `count` tokens and refills continuously, so "200 a minute" allows a burst of 200
//! and then one every 300 ms. The port is shared by every node ([`crate::local`] in one
//! process, Redis in a cluster), so limits do not multiply by the number of nodes. Limits
//! that belong to one socket (its frames per second) use a [`TokenBucket`] directly.

use async_trait::async_trait;
use std::borrow::Cow;
use std::time::Duration;

/// `count` requests per `period`, with bursts up to `count`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    pub count: u32,
    pub period: Duration,
}

impl Quota {
    pub fn per_minute(count: u32) -> Self {
        Self::per_period(count, Duration::from_secs(60))
    }

    pub fn per_period(count: u32, period: Duration) -> Self {
        Self {
            count: count.max(1),
            period: period.max(Duration::from_millis(1)),
        }
    }

    pub fn capacity(&self) -> f64 {
        f64::from(self.count)
    }

    pub fn refill_per_second(&self) -> f64 {
        self.capacity() / self.period.as_secs_f64()
    }
}

/// One bucket: which limit, whose, and how big.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket<'a> {
    /// The limit's name, e.g. `"user_messages"`; buckets of different limits never mix.
    pub limit: &'static str,
    /// Whose bucket, e.g. a user id, or `"u_1/c_2"` for a user in one group.
    pub key: Cow<'a, str>,
    pub quota: Quota,
}

impl<'a> Bucket<'a> {
    pub fn new(limit: &'static str, key: impl Into<Cow<'a, str>>, quota: Quota) -> Self {
        Self {
            limit,
            key: key.into(),
            quota,
        }
    }
}

/// The answer to [`RateLimiter::acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// One token was taken from every bucket.
    Granted,
    /// Some bucket was empty: nothing was taken. Retry after this long.
    Denied { retry_after: Duration },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// The limiter's backend cannot be reached.
    #[error("rate limiter unavailable")]
    Unavailable {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl RateLimitError {
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        RateLimitError::Unavailable {
            source: Box::new(error),
        }
    }
}

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Takes one token from each bucket (each named at most once), all or none, in one
    /// atomic step (two callers
    /// cannot both take the last token; a refusal by the second bucket leaves the first
    /// untouched).
    async fn acquire(&self, buckets: &[Bucket<'_>]) -> Result<Admission, RateLimitError>;

    /// Gives back a token taken by `acquire` (an operation that then did nothing), up to
    /// the bucket's capacity.
    async fn refund(&self, bucket: &Bucket<'_>) -> Result<(), RateLimitError>;

    /// Whether the limiter's backend can be reached now (for `/readyz`).
    async fn ping(&self) -> Result<(), RateLimitError>;
}

/// A token bucket's level at one moment. Pure arithmetic: the caller keeps the clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    updated: tokio::time::Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(quota: Quota, now: tokio::time::Instant) -> Self {
        Self {
            tokens: quota.capacity(),
            updated: now,
        }
    }

    /// The tokens there are at `now`.
    pub fn level(&self, quota: Quota, now: tokio::time::Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * quota.refill_per_second()).min(quota.capacity())
    }

    /// How long until a token is there (zero if one is).
    pub fn wait(&self, quota: Quota, now: tokio::time::Instant) -> Duration {
        let level = self.level(quota, now);
        if level >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - level) / quota.refill_per_second())
        }
    }

    /// Spends a token, or answers how long to wait for one.
    pub fn take(&mut self, quota: Quota, now: tokio::time::Instant) -> Result<(), Duration> {
        let wait = self.wait(quota, now);
        if !wait.is_zero() {
            return Err(wait);
        }
        self.tokens = self.level(quota, now) - 1.0;
        self.updated = now;
        Ok(())
    }

    pub fn give_back(&mut self, quota: Quota) {
        self.tokens = (self.tokens + 1.0).min(quota.capacity());
    }

    pub fn is_full(&self, quota: Quota, now: tokio::time::Instant) -> bool {
        self.level(quota, now) >= quota.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[test]
    fn a_bucket_allows_a_burst_then_answers_the_wait() {
        let quota = Quota::per_minute(3);
        let start = Instant::now();
        let mut bucket = TokenBucket::full(quota, start);
        for _ in 0..3 {
            assert!(bucket.take(quota, start).is_ok());
        }
        let wait = bucket.take(quota, start).unwrap_err();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20));
        let later = start + Duration::from_secs(20);
        assert!(bucket.take(quota, later).is_ok());
        assert!(bucket.take(quota, later).is_err());
        bucket.give_back(quota);
        assert!(bucket.take(quota, later).is_ok(), "a refund can be spent");
        assert!(bucket.is_full(quota, later + Duration::from_secs(60)));
    }
}
