//! Token-bucket rate limits, kept in memory per key.
//!
//! A bucket holds `capacity` tokens and refills continuously, so "200 a minute" allows a
//! burst of 200 and then one every 300 ms. Full buckets are forgotten now and then, so
//! memory follows the number of recently active keys. Cluster mode may move this to Redis.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct RateLimiter<K> {
    capacity: f64,
    refill_per_second: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

/// Above this many buckets, full ones are swept out.
const SWEEP_THRESHOLD: usize = 50_000;

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `per_minute` requests a minute, with bursts up to `per_minute`.
    pub fn per_minute(per_minute: u32) -> Self {
        Self::per_period(per_minute, Duration::from_secs(60))
    }

    /// `count` requests per `period`, with bursts up to `count`.
    pub fn per_period(count: u32, period: Duration) -> Self {
        let capacity = f64::from(count.max(1));
        Self {
            capacity,
            refill_per_second: capacity / period.as_secs_f64().max(0.001),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn level(&self, bucket: &Bucket, now: Instant) -> f64 {
        bucket_level(bucket, now, self.refill_per_second, self.capacity)
    }

    /// Spends one token if there is one, in one step under the lock (so concurrent
    /// callers cannot both spend the last token); otherwise `Err(wait)`.
    pub fn try_take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock();
        if buckets.len() > SWEEP_THRESHOLD {
            let (refill, capacity) = (self.refill_per_second, self.capacity);
            buckets.retain(|_, bucket| bucket_level(bucket, now, refill, capacity) < capacity);
        }
        let tokens = match buckets.get(key) {
            Some(bucket) => self.level(bucket, now),
            None => self.capacity,
        };
        if tokens < 1.0 {
            return Err(Duration::from_secs_f64(
                (1.0 - tokens) / self.refill_per_second,
            ));
        }
        buckets.insert(
            key.clone(),
            Bucket {
                tokens: tokens - 1.0,
                updated: now,
            },
        );
        Ok(())
    }

    /// Gives back a token spent by `try_take` (when a second limit then refused).
    pub fn refund(&self, key: &K) {
        if let Some(bucket) = self.buckets.lock().get_mut(key) {
            bucket.tokens = (bucket.tokens + 1.0).min(self.capacity);
        }
    }
}

fn bucket_level(bucket: &Bucket, now: Instant, refill_per_second: f64, capacity: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * refill_per_second).min(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses_with_a_wait() {
        let limiter = RateLimiter::per_minute(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.try_take(&"alice", start).is_ok());
        }
        let wait = limiter.try_take(&"alice", start).unwrap_err();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20));
        assert!(
            limiter.try_take(&"bob", start).is_ok(),
            "keys are independent"
        );
        assert!(limiter
            .try_take(&"alice", start + Duration::from_secs(20))
            .is_ok());
        assert!(limiter
            .try_take(&"alice", start + Duration::from_secs(20))
            .is_err());
        limiter.refund(&"alice");
        assert!(
            limiter
                .try_take(&"alice", start + Duration::from_secs(20))
                .is_ok(),
            "a refunded token can be spent again"
        );
    }
}
