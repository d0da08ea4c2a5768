//! What the NATS tests share: the server's URL (`PARLEY_TEST_NATS_URL`), a fresh subject
//! prefix per test (core NATS keeps nothing, so there is nothing to delete afterwards),
//! and a private `nats-server` a test may stop and start again.

#![allow(dead_code)] // each test file uses its part

use parley_cluster_nats::{NatsBus, NatsOptions};
use parley_core::bus::NodeId;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const URL_VARIABLE: &str = "PARLEY_TEST_NATS_URL";
pub const SERVER_VARIABLE: &str = "PARLEY_TEST_NATS_SERVER";

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

/// A port nothing listens on (now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `nats-server` of the test's own on a free port, killed when dropped.
pub struct PrivateServer {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateServer {
    pub fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
        };
        server.start_again();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let binary =
            std::env::var(SERVER_VARIABLE).unwrap_or_else(|_| "/usr/sbin/nats-server".to_owned());
        let child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {binary} (install the nats-server package, or set \
                     {SERVER_VARIABLE} to its path): {error}"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{binary} does not listen on port {} after 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (no goodbye to its clients, as a crash).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.stop();
    }
}
