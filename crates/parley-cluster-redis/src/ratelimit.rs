//! `RedisRateLimiter`: the `RateLimiter` port on Redis, so a limit counts a user's
//! requests on every node together.
//!
//! Each bucket is a hash `{tokens, updated_us}` that expires when it would be full again;
//! `acquire` and `refund` are one Lua script each (`lua/bucket.lua`, the shared
//! arithmetic, before the method's own file), run atomically on Redis's clock with
//! `TokenBucket`'s arithmetic. This file names keys and passes quotas; it keeps no state.

use crate::connection::{key_space, open, Timeouts};
use async_trait::async_trait;
use parley_core::ratelimit::{Admission, Bucket, RateLimitError, RateLimiter};
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

macro_rules! bucket_script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/bucket.lua"),
                include_str!(concat!("lua/", $file))
            ))
        })
    };
}

static ACQUIRE: LazyLock<Script> = bucket_script!("acquire.lua");
static REFUND: LazyLock<Script> = bucket_script!("refund.lua");

/// Rate limits kept in Redis, shared by every node that connects with the same prefix.
/// Cheap to clone (one shared connection).
#[derive(Clone)]
pub struct RedisRateLimiter {
    redis: ConnectionManager,
    /// Whether Redis is known to be down (shared by every handle on this connection).
    health: Arc<crate::connection::Health>,
    /// `parley:{<prefix>}:rate:`, the start of every bucket's key.
    keys: Arc<str>,
}

impl RedisRateLimiter {
    /// Connects to the Redis at `url` (`redis://host:port/db`) for the limits named
    /// `prefix` (1-64 characters of `a-z A-Z 0-9 - _ .`; every node of one cluster uses the
    /// same).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RateLimitError> {
        Self::connect_with(url, prefix, Timeouts::default()).await
    }

    /// [`RedisRateLimiter::connect`] with other timeouts than the defaults.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        timeouts: Timeouts,
    ) -> Result<Self, RateLimitError> {
        let keys = key_space(prefix).map_err(RateLimitError::unavailable)? + "rate:";
        let redis = open(url, timeouts)
            .await
            .map_err(RateLimitError::unavailable)?;
        Ok(Self {
            redis,
            keys: keys.into(),
            health: Arc::default(),
        })
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RateLimitError> {
        self.health.admit().map_err(RateLimitError::unavailable)?;
        let mut redis = self.redis.clone();
        let outcome = invocation.invoke_async(&mut redis).await;
        self.health.record(&outcome);
        outcome.map_err(RateLimitError::unavailable)
    }
}

/// `<keys><limit>:<key>`, `keys` ending in `rate:`. A ':' (or '%') in the limit's name
/// is escaped, so the first ':' after it always ends the name and no limit and key can
/// spell another's.
fn bucket_key(keys: &str, limit: &str, key: &str) -> String {
    let mut name = String::with_capacity(keys.len() + limit.len() + 1 + key.len());
    name.push_str(keys);
    for character in limit.chars() {
        match character {
            ':' => name.push_str("%3A"),
            '%' => name.push_str("%25"),
            other => name.push(other),
        }
    }
    name.push(':');
    name.push_str(key);
    name
}

/// A bucket's quota as the scripts take it: capacity and period in microseconds.
fn quota_args(bucket: &Bucket<'_>) -> (u32, u64) {
    let period_us = u64::try_from(bucket.quota.period.as_micros()).unwrap_or(u64::MAX);
    (bucket.quota.count.max(1), period_us.max(1))
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    /// Takes one token from each bucket (each named at most once), all or none, in one
    /// atomic step (two callers
    /// cannot both take the last token; a refusal by the second bucket leaves the first
    /// untouched).
    async fn acquire(&self, buckets: &[Bucket<'_>]) -> Result<Admission, RateLimitError> {
        if buckets.is_empty() {
            return Ok(Admission::Granted);
        }
        let mut invocation = ACQUIRE.prepare_invoke();
        for bucket in buckets {
            let (capacity, period_us) = quota_args(bucket);
            invocation
                .key(bucket_key(&self.keys, bucket.limit, &bucket.key))
                .arg(capacity)
                .arg(period_us);
        }
        let wait_us: u64 = self.run(&invocation).await?;
        Ok(if wait_us == 0 {
            Admission::Granted
        } else {
            Admission::Denied {
                retry_after: Duration::from_micros(wait_us),
            }
        })
    }

    /// Gives back a token taken by `acquire` (an operation that then did nothing), up to
    /// the bucket's capacity.
    async fn refund(&self, bucket: &Bucket<'_>) -> Result<(), RateLimitError> {
        let (capacity, period_us) = quota_args(bucket);
        let mut invocation = REFUND.prepare_invoke();
        invocation
            .key(bucket_key(&self.keys, bucket.limit, &bucket.key))
            .arg(capacity)
            .arg(period_us);
        let _refunded: bool = self.run(&invocation).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), RateLimitError> {
        self.health.admit().map_err(RateLimitError::unavailable)?;
        let outcome = crate::connection::ping(&self.redis).await;
        self.health.record(&outcome);
        outcome.map_err(RateLimitError::unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_key;

    /// A limit name with a ':' cannot make one bucket's key equal another's.
    #[test]
    fn limit_names_are_escaped_in_keys() {
        let keys = "parley:{p}:rate:";
        assert_eq!(
            bucket_key(keys, "user_messages", "u_1/c_2"),
            "parley:{p}:rate:user_messages:u_1/c_2"
        );
        assert_ne!(bucket_key(keys, "a:b", "c"), bucket_key(keys, "a", "b:c"));
        assert_ne!(bucket_key(keys, "a%3Ab", "c"), bucket_key(keys, "a:b", "c"));
    }
}
