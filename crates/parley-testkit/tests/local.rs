//! The port suites against `parley_core::local`, the in-process reference: every node's
//! handle is a `join` on one `LocalBus` / `LocalPresence`.

use parley_core::bus::{Bus, NodeId};
use parley_core::local::{LocalBus, LocalPresence, LocalRateLimiter};
use parley_core::presence::PresenceRegistry;
use parley_core::ratelimit::RateLimiter;
use std::sync::Arc;
use std::time::Duration;

/// Small, so the backpressure case fills a stream quickly and the order case exercises
/// publishers waiting on readers.
const BUS_CAPACITY: usize = 8;

async fn new_buses(nodes: &[NodeId]) -> (Vec<Arc<dyn Bus>>, ()) {
    let first = LocalBus::new(nodes[0].clone(), BUS_CAPACITY);
    let mut buses: Vec<Arc<dyn Bus>> = nodes[1..]
        .iter()
        .map(|node| Arc::new(first.join(node.clone())) as Arc<dyn Bus>)
        .collect();
    buses.insert(0, Arc::new(first));
    (buses, ())
}

async fn new_registries(nodes: &[NodeId], lease: Duration) -> (Vec<Arc<dyn PresenceRegistry>>, ()) {
    let first = LocalPresence::new(nodes[0].clone(), lease);
    let mut registries: Vec<Arc<dyn PresenceRegistry>> = nodes[1..]
        .iter()
        .map(|node| Arc::new(first.join(node.clone())) as Arc<dyn PresenceRegistry>)
        .collect();
    registries.insert(0, Arc::new(first));
    (registries, ())
}

async fn new_limiter() -> (Arc<dyn RateLimiter>, ()) {
    (Arc::new(LocalRateLimiter::new()), ())
}

mod bus {
    parley_testkit::bus_conformance!(
        super::new_buses,
        parley_testkit::bus::WhenFull::Wait {
            capacity: super::BUS_CAPACITY
        }
    );
}

mod presence {
    parley_testkit::presence_conformance!(super::new_registries);
}

mod rate_limiter {
    parley_testkit::rate_limiter_conformance!(super::new_limiter);
}
