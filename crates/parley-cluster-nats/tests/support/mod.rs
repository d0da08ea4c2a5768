//! What the NATS tests share: the server's URL (`PARLEY_TEST_NATS_URL`), a fresh subject
//! prefix per test (core NATS keeps nothing, so there is nothing to delete afterwards).
//! A private `nats-server` a test may stop and start again is `parley_testkit::services`.

#![allow(dead_code)] // each test file uses its part

use parley_cluster_nats::{NatsBus, NatsOptions};
use parley_core::bus::NodeId;

pub const URL_VARIABLE: &str = "PARLEY_TEST_NATS_URL";

pub fn nats_url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A subject prefix no other test uses.
pub fn fresh_prefix() -> String {
    format!("test-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Fails the test: NATS is required, never skipped.
pub fn unreachable(url: &str, error: impl std::fmt::Debug) -> ! {
    panic!(
        "cannot reach NATS at {url} (set {URL_VARIABLE} to another URL, or start \
         nats-server): {error:?}"
    )
}

pub fn node(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

pub async fn connect(url: &str, prefix: &str, name: &str) -> NatsBus {
    connect_with(url, prefix, name, NatsOptions::default()).await
}

pub async fn connect_with(url: &str, prefix: &str, name: &str, options: NatsOptions) -> NatsBus {
    NatsBus::connect_with(url, prefix, node(name), options)
        .await
        .unwrap_or_else(|error| unreachable(url, error))
}

/// A plain async-nats client on the shared server, to look at the subjects from outside.
pub async fn raw_client(url: &str) -> async_nats::Client {
    async_nats::connect(url)
        .await
        .unwrap_or_else(|error| unreachable(url, error))
}
