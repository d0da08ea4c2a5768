//! The shared `PresenceRegistry` and `RateLimiter` conformance suites, run against a real
//! Redis (`PARLEY_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`), each test under a
//! fresh key prefix that its guard deletes afterwards. A Redis that cannot be reached
//! fails the test with the URL and the variable's name: these tests never skip.

mod support;

use parley_cluster_redis::{RedisPresence, RedisRateLimiter};
use parley_core::bus::NodeId;
use parley_core::presence::PresenceRegistry;
use parley_core::ratelimit::RateLimiter;
use std::sync::Arc;
use std::time::Duration;
use support::Prefix;

async fn new_registries(
    nodes: &[NodeId],
    lease: Duration,
) -> (Vec<Arc<dyn PresenceRegistry>>, Prefix) {
    let prefix = Prefix::fresh();
    let first = RedisPresence::connect(&prefix.url, &prefix.name, nodes[0].clone(), lease)
        .await
        .unwrap_or_else(|error| prefix.unreachable(error));
    let mut registries: Vec<Arc<dyn PresenceRegistry>> = nodes[1..]
        .iter()
        .map(|node| Arc::new(first.join(node.clone())) as Arc<dyn PresenceRegistry>)
        .collect();
    registries.insert(0, Arc::new(first));
    (registries, prefix)
}

async fn new_limiter() -> (Arc<dyn RateLimiter>, Prefix) {
    let prefix = Prefix::fresh();
    let limiter = RedisRateLimiter::connect(&prefix.url, &prefix.name)
        .await
        .unwrap_or_else(|error| prefix.unreachable(error));
    (Arc::new(limiter), prefix)
}

mod presence {
    parley_testkit::presence_conformance!(super::new_registries);
}

mod rate_limiter {
    parley_testkit::rate_limiter_conformance!(super::new_limiter);
}
