//! The shared `Bus` conformance suite, run against a real NATS server
//! (`PARLEY_TEST_NATS_URL`, default `nats://127.0.0.1:4222`): every node its own
//! connection, as separate processes would have, and each test under a fresh subject
//! prefix. A NATS that cannot be reached fails the test with the URL and the variable's
//! name: these tests never skip.

mod support;

use parley_core::bus::{Bus, NodeId};
use std::sync::Arc;

async fn new_buses(nodes: &[NodeId]) -> (Vec<Arc<dyn Bus>>, ()) {
    let (url, prefix) = (support::nats_url(), support::fresh_prefix());
    let mut buses: Vec<Arc<dyn Bus>> = Vec::with_capacity(nodes.len());
    for node in nodes {
        buses.push(Arc::new(
            support::connect(&url, &prefix, node.as_str()).await,
        ));
    }
    (buses, ())
}

mod bus {
    parley_testkit::bus_conformance!(super::new_buses, parley_testkit::bus::WhenFull::Drop);
}
