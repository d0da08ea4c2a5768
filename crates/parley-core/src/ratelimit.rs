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
        Self {
            capacity: f64::from(per_minute.max(1)),
            refill_per_second: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn level(&self, bucket: &Bucket, now: Instant) -> f64 {
        bucket_level(bucket, now, self.refill_per_second, self.capacity)
    }

    /// `Err(wait)` if a request now would be refused.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let buckets = self.buckets.lock();
        match buckets.get(key) {
            Some(bucket) => {
                let tokens = self.level(bucket, now);
                if tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(Duration::from_secs_f64(
                        (1.0 - tokens) / self.refill_per_second,
                    ))
                }
            }
            None => Ok(()),
        }
    }

    /// Spends one token (after a successful `check`).
    pub fn take(&self, key: &K, now: Instant) {
        let mut buckets = self.buckets.lock();
        if buckets.len() > SWEEP_THRESHOLD {
            let (refill, capacity) = (self.refill_per_second, self.capacity);
            buckets.retain(|_, bucket| bucket_level(bucket, now, refill, capacity) < capacity);
        }
        let tokens = match buckets.get(key) {
            Some(bucket) => self.level(bucket, now),
            None => self.capacity,
        };
        buckets.insert(
            key.clone(),
            Bucket {
                tokens: (tokens - 1.0).max(0.0),
                updated: now,
            },
        );
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
            assert!(limiter.check(&"alice", start).is_ok());
            limiter.take(&"alice", start);
        }
        let wait = limiter.check(&"alice", start).unwrap_err();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20));
        assert!(limiter.check(&"bob", start).is_ok(), "keys are independent");
        assert!(limiter
            .check(&"alice", start + Duration::from_secs(20))
            .is_ok());
    }
}
