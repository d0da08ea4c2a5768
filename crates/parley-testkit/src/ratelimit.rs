//! The `RateLimiter` conformance suite. Each function checks one behaviour on a fresh
//! limiter (no bucket used yet).
//!
//! Quotas are chosen so that refill cannot blur a count: bursts use periods of minutes or
//! hours, and only [`tokens_refill_over_time`] uses a short period, on the real clock (a
//! network backend keeps its own time). A `retry_after` is allowed one millisecond of
//! rounding, for backends that count in milliseconds.

use parley_core::ratelimit::{Admission, Bucket, Quota, RateLimiter};
use std::sync::Arc;
use std::time::Duration;

/// Slack for a backend that rounds `retry_after` up to whole milliseconds.
const ROUNDING: Duration = Duration::from_millis(1);

async fn granted(limiter: &Arc<dyn RateLimiter>, buckets: &[Bucket<'_>]) -> bool {
    match limiter.acquire(buckets).await.expect("acquire") {
        Admission::Granted => true,
        Admission::Denied { .. } => false,
    }
}

/// Acquires `bucket` until refused (at most `limit` times); how many were granted.
async fn drain(limiter: &Arc<dyn RateLimiter>, bucket: &Bucket<'_>, limit: u32) -> u32 {
    for count in 0..limit {
        if !granted(limiter, std::slice::from_ref(bucket)).await {
            return count;
        }
    }
    limit
}

/// A full bucket grants a burst of exactly its quota, then refuses with a `retry_after`
/// no longer than one token's refill (what the client is told to wait).
pub async fn a_burst_up_to_the_quota_then_denied(limiter: Arc<dyn RateLimiter>) {
    let quota = Quota::per_minute(5);
    let bucket = Bucket::new("sends", "u_alice", quota);
    for attempt in 0..5 {
        assert!(
            granted(&limiter, std::slice::from_ref(&bucket)).await,
            "attempt {attempt} is within the burst"
        );
    }
    match limiter
        .acquire(std::slice::from_ref(&bucket))
        .await
        .unwrap()
    {
        Admission::Denied { retry_after } => {
            let one_token = quota.period / quota.count;
            assert!(
                !retry_after.is_zero() && retry_after <= one_token + ROUNDING,
                "retry_after {retry_after:?} is within one token's refill ({one_token:?})"
            );
        }
        Admission::Granted => panic!("the sixth in a minute is refused"),
    }
}

/// Buckets are per limit and per key: exhausting one user's sends spends neither another
/// user's sends nor the same user's other limits.
pub async fn keys_and_limits_are_independent(limiter: Arc<dyn RateLimiter>) {
    let quota = Quota::per_minute(3);
    let alice_sends = Bucket::new("sends", "u_alice", quota);
    assert_eq!(drain(&limiter, &alice_sends, 10).await, 3);
    assert_eq!(
        drain(&limiter, &Bucket::new("sends", "u_bob", quota), 10).await,
        3,
        "another key"
    );
    assert_eq!(
        drain(&limiter, &Bucket::new("writes", "u_alice", quota), 10).await,
        3,
        "another limit, same key"
    );
    assert_eq!(
        drain(&limiter, &Bucket::new("sends", "u_alice/c_team", quota), 10).await,
        3,
        "a key that starts like another"
    );
    assert!(!granted(&limiter, &[alice_sends]).await, "still empty");
}

/// `acquire` is all or none: when one bucket refuses, none is spent, whichever place the
/// refusing bucket has in the list (a send refused by the group's limit does not spend
/// the user's).
pub async fn acquire_is_all_or_none(limiter: Arc<dyn RateLimiter>) {
    let user_bucket = Bucket::new("user_messages", "u_alice", Quota::per_minute(3));
    let group_bucket = Bucket::new("group_messages", "c_team", Quota::per_minute(1));
    assert!(granted(&limiter, &[user_bucket.clone(), group_bucket.clone()]).await);
    for _ in 0..3 {
        assert!(!granted(&limiter, &[user_bucket.clone(), group_bucket.clone()]).await);
        assert!(!granted(&limiter, &[group_bucket.clone(), user_bucket.clone()]).await);
    }
    assert_eq!(
        drain(&limiter, &user_bucket, 10).await,
        2,
        "only the granted acquire spent the user's bucket"
    );
}

/// A refusal's `retry_after` is the longest wait among the empty buckets: retrying after
/// it, and not before, can succeed.
pub async fn retry_after_is_the_longest_wait(limiter: Arc<dyn RateLimiter>) {
    let slow = Bucket::new(
        "slow",
        "u_alice",
        Quota::per_period(1, Duration::from_secs(600)),
    );
    let fast = Bucket::new("fast", "u_alice", Quota::per_minute(60));
    assert!(granted(&limiter, std::slice::from_ref(&slow)).await);
    assert_eq!(drain(&limiter, &fast, 100).await, 60);
    for buckets in [[fast.clone(), slow.clone()], [slow.clone(), fast.clone()]] {
        match limiter.acquire(&buckets).await.unwrap() {
            Admission::Denied { retry_after } => assert!(
                retry_after > Duration::from_secs(300)
                    && retry_after <= slow.quota.period + ROUNDING,
                "the slow bucket's wait, not the fast one's: {retry_after:?}"
            ),
            Admission::Granted => panic!("both buckets are empty"),
        }
    }
}

/// `refund` gives back one token (an operation that then did nothing costs nothing), but
/// never fills a bucket above its capacity, and refunding an unused bucket is no error.
pub async fn refund_restores_one_token_up_to_capacity(limiter: Arc<dyn RateLimiter>) {
    let quota = Quota::per_minute(2);
    let spent = Bucket::new("sends", "u_alice", quota);
    assert_eq!(drain(&limiter, &spent, 10).await, 2);
    limiter.refund(&spent).await.unwrap();
    assert_eq!(drain(&limiter, &spent, 10).await, 1, "one token back");

    let partly = Bucket::new("sends", "u_bob", quota);
    assert!(granted(&limiter, std::slice::from_ref(&partly)).await);
    for _ in 0..3 {
        limiter.refund(&partly).await.unwrap();
    }
    assert_eq!(drain(&limiter, &partly, 10).await, 2, "capped at capacity");

    let unused = Bucket::new("sends", "u_carol", quota);
    for _ in 0..3 {
        limiter.refund(&unused).await.unwrap();
    }
    assert_eq!(
        drain(&limiter, &unused, 10).await,
        2,
        "a full bucket stays full"
    );
}

/// Two callers cannot both take the last token: 50 tasks acquiring at once from a bucket
/// of 20 (that refills too slowly to matter) are granted exactly 20 times.
pub async fn concurrent_acquires_never_exceed_capacity(limiter: Arc<dyn RateLimiter>) {
    let quota = Quota::per_period(20, Duration::from_secs(3600));
    let start = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let limiter = limiter.clone();
            let start = start.clone();
            tokio::spawn(async move {
                let bucket = Bucket::new("sends", "u_alice", quota);
                let other = Bucket::new("group_sends", "c_team", quota);
                start.wait().await;
                granted(&limiter, &[bucket, other]).await
            })
        })
        .collect();
    let mut grants = 0;
    for task in tasks {
        if task.await.unwrap() {
            grants += 1;
        }
    }
    assert_eq!(grants, 20);
    let bucket = Bucket::new("sends", "u_alice", quota);
    assert!(!granted(&limiter, &[bucket]).await);
}

/// Buckets refill continuously: with 5 per 500 ms, a refused caller is granted again after
/// its `retry_after` (about 100 ms), and a whole period refills the whole burst.
pub async fn tokens_refill_over_time(limiter: Arc<dyn RateLimiter>) {
    let quota = Quota::per_period(5, Duration::from_millis(500));
    let bucket = Bucket::new("sends", "u_alice", quota);
    for _ in 0..5 {
        assert!(granted(&limiter, std::slice::from_ref(&bucket)).await);
    }
    let retry_after = match limiter
        .acquire(std::slice::from_ref(&bucket))
        .await
        .unwrap()
    {
        Admission::Denied { retry_after } => retry_after,
        Admission::Granted => panic!("the burst is spent"),
    };
    assert!(
        retry_after <= Duration::from_millis(100) + ROUNDING,
        "{retry_after:?}"
    );
    tokio::time::sleep(retry_after + Duration::from_millis(20)).await;
    assert!(
        granted(&limiter, std::slice::from_ref(&bucket)).await,
        "a token came back after retry_after"
    );
    tokio::time::sleep(quota.period + Duration::from_millis(100)).await;
    for attempt in 0..5 {
        assert!(
            granted(&limiter, std::slice::from_ref(&bucket)).await,
            "attempt {attempt}: a whole period refills the whole burst"
        );
    }
}
