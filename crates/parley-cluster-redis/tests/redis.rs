//! What only a Redis backend can get wrong, beyond the shared suites: Redis down or
//! silent, `reap` in batches, buckets that expire, scripts Redis has forgotten, nodes on
//! connections of their own, and the announcement a slow node's `disconnect` already made.

mod support;

use parley_cluster_redis::{RedisPresence, RedisRateLimiter, Timeouts};
use parley_core::bus::{ConnectionId, NodeId};
use parley_core::presence::{PresenceError, PresenceRegistry};
use parley_core::ratelimit::{Admission, Bucket, Quota, RateLimitError, RateLimiter};
use parley_proto::{DeviceId, UserId};
use parley_testkit::presence::{keep_alive, LAPSE, LEASE};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use support::Prefix;

/// Short, so the cases with no Redis behind the address end soon.
const SHORT: Timeouts = Timeouts {
    connect: Duration::from_millis(300),
    response: Duration::from_millis(300),
};

/// Far above what the timeouts allow: only a hang reaches it.
const HANG: Duration = Duration::from_secs(30);

fn node(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

fn connection(node_name: &str, serial: u64) -> ConnectionId {
    ConnectionId {
        node: node(node_name),
        serial,
    }
}

async fn presence(prefix: &Prefix, node_name: &str) -> RedisPresence {
    RedisPresence::connect(&prefix.url, &prefix.name, node(node_name), LEASE)
        .await
        .unwrap_or_else(|error| prefix.unreachable(error))
}

async fn limiter(prefix: &Prefix) -> RedisRateLimiter {
    RedisRateLimiter::connect(&prefix.url, &prefix.name)
        .await
        .unwrap_or_else(|error| prefix.unreachable(error))
}

async fn raw_connection(prefix: &Prefix) -> redis::aio::MultiplexedConnection {
    redis::Client::open(prefix.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|error| prefix.unreachable(error))
}

/// Both backends against `url`: each either fails to connect or fails its first call, as
/// `Unavailable`, within the timeouts (never a panic, never a hang).
async fn assert_unavailable(url: &str) {
    let presence = tokio::time::timeout(HANG, async {
        let registry =
            RedisPresence::connect_with(url, "unreachable", node("node-a"), LEASE, SHORT).await?;
        registry.heartbeat().await
    })
    .await
    .expect("no hang");
    assert!(
        matches!(presence, Err(PresenceError::Unavailable { .. })),
        "{presence:?}"
    );
    let limits = tokio::time::timeout(HANG, async {
        let limiter = RedisRateLimiter::connect_with(url, "unreachable", SHORT).await?;
        let bucket = Bucket::new("sends", "u_alice", Quota::per_minute(5));
        limiter.acquire(&[bucket]).await
    })
    .await
    .expect("no hang");
    assert!(
        matches!(limits, Err(RateLimitError::Unavailable { .. })),
        "{limits:?}"
    );
}

/// A closed port (Redis down): connecting fails as `Unavailable`, after a bounded number
/// of attempts.
#[tokio::test]
async fn a_redis_that_is_down_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_unavailable(&format!("redis://127.0.0.1:{port}")).await;
}

/// A server that accepts connections and never answers (Redis stuck, a black hole): the
/// connect or response timeout ends the call as `Unavailable`.
#[tokio::test]
async fn a_redis_that_never_answers_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    assert_unavailable(&format!("redis://127.0.0.1:{port}")).await;
    silent.abort();
}

/// `reap` removes a bounded batch per run; over several runs every connection of a dead
/// node goes and every user is reported once, including one whose connections span runs
/// (reported by the run that removes the last one), and nothing of the node is left.
#[tokio::test]
async fn reap_in_batches_reports_each_departure_once() {
    let prefix = Prefix::fresh();
    let a = presence(&prefix, "node-a").await.with_reap_batch(2);
    let c = a.join(node("node-c"));
    let mut users: Vec<UserId> = (0..5)
        .map(|index| UserId::from(format!("u_{index}")))
        .collect();
    for (serial, user_id) in (1..).zip(&users) {
        a.connect(
            &connection("node-a", serial),
            user_id,
            &DeviceId::from("d_phone"),
        )
        .await
        .unwrap();
    }
    let alice = UserId::from("u_alice");
    for serial in 100..103 {
        a.connect(
            &connection("node-a", serial),
            &alice,
            &DeviceId::from("d_tab"),
        )
        .await
        .unwrap();
    }
    users.push(alice);
    tokio::time::sleep(LEASE + LAPSE).await;
    let mut reported = Vec::new();
    let mut runs = 0;
    loop {
        runs += 1;
        let departures = c.reap().await.unwrap();
        if departures.is_empty() || runs > 20 {
            break;
        }
        reported.extend(departures.into_iter().map(|departure| departure.user_id));
    }
    assert!(runs > 4, "8 connections, 2 a run: {runs} runs");
    let unique: HashSet<&UserId> = reported.iter().collect();
    assert_eq!(unique.len(), reported.len(), "each once: {reported:?}");
    assert_eq!(unique, users.iter().collect::<HashSet<_>>());
    let mut redis = raw_connection(&prefix).await;
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(prefix.pattern())
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(
        left,
        [format!("parley:{{{}}}:presence:lease:node-a", prefix.name)],
        "only the lease (the term counter) outlives the node's connections"
    );
}

/// A bucket's key expires when the bucket would be full again (a missing bucket is full),
/// and a refund that fills it deletes it: idle limits cost Redis nothing.
#[tokio::test]
async fn idle_buckets_vanish() {
    let prefix = Prefix::fresh();
    let limiter = limiter(&prefix).await;
    let mut redis = raw_connection(&prefix).await;
    let quota = Quota::per_period(5, Duration::from_millis(400));
    let bucket = Bucket::new("sends", "u_alice", quota);
    let key = format!("parley:{{{}}}:rate:sends:u_alice", prefix.name);
    let pttl = |mut redis: redis::aio::MultiplexedConnection, key: String| async move {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
        ttl
    };

    assert_eq!(
        limiter
            .acquire(std::slice::from_ref(&bucket))
            .await
            .unwrap(),
        Admission::Granted
    );
    let ttl = pttl(redis.clone(), key.clone()).await;
    assert!(ttl > 0 && ttl <= 80, "one token's refill (80 ms): {ttl} ms");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        pttl(redis.clone(), key.clone()).await,
        -2,
        "expired once full"
    );

    assert_eq!(
        limiter
            .acquire(std::slice::from_ref(&bucket))
            .await
            .unwrap(),
        Admission::Granted
    );
    limiter.refund(&bucket).await.unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!exists, "a refund that fills the bucket deletes it");
}

/// Redis may forget the scripts (a restart, `SCRIPT FLUSH`): the next call loads its
/// script again instead of failing (EVALSHA falls back to EVAL).
#[tokio::test]
async fn scripts_redis_forgot_are_loaded_again() {
    let prefix = Prefix::fresh();
    let limiter = limiter(&prefix).await;
    let registry = presence(&prefix, "node-a").await;
    let bucket = Bucket::new("sends", "u_alice", Quota::per_minute(5));
    limiter
        .acquire(std::slice::from_ref(&bucket))
        .await
        .unwrap();
    registry.heartbeat().await.unwrap();
    let mut redis = raw_connection(&prefix).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(
        limiter.acquire(&[bucket]).await.unwrap(),
        Admission::Granted
    );
    registry.heartbeat().await.unwrap();
}

/// Nodes that connect on their own (as separate processes would) share one registry
/// through Redis alone: a handle holds nothing but its connection and names.
#[tokio::test]
async fn nodes_on_their_own_connections_share_the_registry() {
    let prefix = Prefix::fresh();
    let a = presence(&prefix, "node-a").await;
    let b = presence(&prefix, "node-b").await;
    let alice = UserId::from("u_alice");
    assert!(a
        .connect(&connection("node-a", 1), &alice, &DeviceId::from("d_phone"))
        .await
        .unwrap());
    assert!(!b
        .connect(
            &connection("node-b", 1),
            &alice,
            &DeviceId::from("d_laptop")
        )
        .await
        .unwrap());
    assert!(!a
        .disconnect(&connection("node-a", 1), &alice)
        .await
        .unwrap());
    assert_eq!(
        b.online(std::slice::from_ref(&alice)).await.unwrap(),
        [true]
    );
    assert!(b
        .disconnect(&connection("node-b", 1), &alice)
        .await
        .unwrap());
    assert_eq!(a.online(&[alice]).await.unwrap(), [false]);
}

/// A user with a connection on a lapsed node and one on a live node: when the live one
/// closes, that `disconnect` announces the offline, and a later `reap` of the lapsed
/// connection does not announce it again (the contract's "by `disconnect` or by `reap`",
/// once; `LocalPresence` reports this user from both).
#[tokio::test]
async fn an_offline_announced_by_disconnect_is_not_reaped_again() {
    let prefix = Prefix::fresh();
    let a = presence(&prefix, "node-a").await;
    let b: Arc<dyn PresenceRegistry> = Arc::new(a.join(node("node-b")));
    let alice = UserId::from("u_alice");
    a.connect(&connection("node-a", 1), &alice, &DeviceId::from("d_phone"))
        .await
        .unwrap();
    b.connect(
        &connection("node-b", 1),
        &alice,
        &DeviceId::from("d_laptop"),
    )
    .await
    .unwrap();
    let heartbeats = keep_alive(&b, LEASE);
    tokio::time::sleep(LEASE + LAPSE).await;
    assert!(b
        .disconnect(&connection("node-b", 1), &alice)
        .await
        .unwrap());
    assert!(b.reap().await.unwrap().is_empty());
    heartbeats.stop().await;
}
