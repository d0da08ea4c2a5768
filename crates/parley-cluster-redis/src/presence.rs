//! `RedisPresence`: the `PresenceRegistry` port on Redis, shared by every node.
//!
//! Each method is one Lua script (`lua/presence.lua`, the shared helpers, before the
//! method's own file), run atomically by Redis on Redis's clock, so nodes with skewed
//! clocks agree on whose lease is current. This file only names keys, passes arguments
//! and reads answers; what counts as live and who departs is decided in the scripts, the
//! same way `parley_core::local::LocalPresence` decides it. It keeps no state of its own.

use crate::connection::{key_space, open, Timeouts};
use async_trait::async_trait;
use parley_core::bus::{ConnectionId, NodeId};
use parley_core::presence::{Departure, Lease, PresenceError, PresenceRegistry, TermWatch};
use parley_proto::{DeviceId, UserId};
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

macro_rules! presence_script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/presence.lua"),
                include_str!(concat!("lua/", $file))
            ))
        })
    };
}

static CONNECT: LazyLock<Script> = presence_script!("connect.lua");
static DISCONNECT: LazyLock<Script> = presence_script!("disconnect.lua");
static HEARTBEAT: LazyLock<Script> = presence_script!("heartbeat.lua");
static REAP: LazyLock<Script> = presence_script!("reap.lua");
static ONLINE: LazyLock<Script> = presence_script!("online.lua");
static ONLINE_DEVICES: LazyLock<Script> = presence_script!("online_devices.lua");

/// Connections one `reap` removes at most, so that one script run never holds Redis (and
/// every node's rate limits with it) for long after a big node dies. The rest, and the
/// users they leave offline, are reaped by the next run, a third of a lease later.
pub const DEFAULT_REAP_BATCH: usize = 10_000;

/// One node's handle on a presence registry in Redis ([`RedisPresence::join`] makes
/// another node's handle on the same connection and registry).
#[derive(Clone)]
pub struct RedisPresence {
    redis: ConnectionManager,
    /// Whether Redis is known to be down (shared by every handle on this connection).
    health: Arc<crate::connection::Health>,
    /// `parley:{<prefix>}:presence:`, the start of every key of this registry.
    keys: Arc<str>,
    node: NodeId,
    /// Whole milliseconds, as the scripts count; at least one.
    lease_ms: u64,
    reap_batch: usize,
    /// This node's terms, shared by the clones of one node's handle.
    terms: Arc<TermWatch>,
}

impl RedisPresence {
    /// Connects to the Redis at `url` (`redis://host:port/db`) for the registry named
    /// `prefix` (1-64 characters of `a-z A-Z 0-9 - _ .`; every node of one cluster uses the
    /// same), as `node`, with leases of `lease` (rounded down to milliseconds).
    pub async fn connect(
        url: &str,
        prefix: &str,
        node: NodeId,
        lease: Duration,
    ) -> Result<Self, PresenceError> {
        Self::connect_with(url, prefix, node, lease, Timeouts::default()).await
    }

    /// [`RedisPresence::connect`] with other timeouts than the defaults.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        node: NodeId,
        lease: Duration,
        timeouts: Timeouts,
    ) -> Result<Self, PresenceError> {
        let keys = key_space(prefix).map_err(PresenceError::unavailable)? + "presence:";
        let redis = open(url, timeouts)
            .await
            .map_err(PresenceError::unavailable)?;
        Ok(Self {
            redis,
            keys: keys.into(),
            health: Arc::default(),
            node,
            lease_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1),
            reap_batch: DEFAULT_REAP_BATCH,
            terms: Arc::default(),
        })
    }

    /// Another node's handle on the same registry, sharing this handle's connection.
    pub fn join(&self, node: NodeId) -> Self {
        Self {
            node,
            terms: Arc::default(),
            ..self.clone()
        }
    }

    /// Removes at most `connections` connections per `reap` (at least one) instead of
    /// [`DEFAULT_REAP_BATCH`].
    pub fn with_reap_batch(mut self, connections: usize) -> Self {
        self.reap_batch = connections.max(1);
        self
    }

    fn user_key(&self, user_id: &UserId) -> String {
        format!("{}user:{}", self.keys, user_id.as_str())
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, PresenceError> {
        self.health.admit().map_err(PresenceError::unavailable)?;
        let mut redis = self.redis.clone();
        let outcome = invocation.invoke_async(&mut redis).await;
        self.health.record(&outcome);
        outcome.map_err(PresenceError::unavailable)
    }
}

/// Read back from `reap`: a node id the scripts stored is not one (the registry's keys
/// were written by something else).
#[derive(Debug, thiserror::Error)]
#[error("the presence registry holds an invalid node id")]
struct CorruptRegistry(#[source] parley_core::bus::InvalidNodeId);

#[async_trait]
impl PresenceRegistry for RedisPresence {
    /// The node this handle registers connections for.
    fn node_id(&self) -> &NodeId {
        &self.node
    }

    /// Registers a connection of this node (and starts the node's lease if it has none);
    /// `true` if the user had no live connection before.
    async fn connect(
        &self,
        connection: &ConnectionId,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<bool, PresenceError> {
        let mut invocation = CONNECT.prepare_invoke();
        invocation
            .key(self.user_key(user_id))
            .arg(&*self.keys)
            .arg(connection.node.as_str())
            .arg(connection.serial)
            .arg(user_id.as_str())
            .arg(device_id.as_str())
            .arg(self.lease_ms);
        let (was_offline, term): (bool, u64) = self.run(&invocation).await?;
        self.terms.registered(term);
        Ok(was_offline)
    }

    /// Unregisters a connection; `true` if the user has no live connection left and this
    /// one was not reaped yet (so an offline is announced once, by `disconnect` or by
    /// `reap`). Unknown connections are not an error (`false`).
    async fn disconnect(
        &self,
        connection: &ConnectionId,
        user_id: &UserId,
    ) -> Result<bool, PresenceError> {
        let mut invocation = DISCONNECT.prepare_invoke();
        invocation
            .key(self.user_key(user_id))
            .arg(&*self.keys)
            .arg(connection.node.as_str())
            .arg(connection.serial)
            .arg(user_id.as_str());
        self.run(&invocation).await
    }

    /// Renews this node's lease for another period.
    async fn heartbeat(&self) -> Result<Lease, PresenceError> {
        let mut invocation = HEARTBEAT.prepare_invoke();
        invocation
            .key(format!("{}lease:{}", self.keys, self.node))
            .arg(&*self.keys)
            .arg(self.node.as_str())
            .arg(self.lease_ms);
        let (renewed, term): (bool, u64) = self.run(&invocation).await?;
        Ok(self.terms.heartbeat(term, renewed))
    }

    /// Removes the connections of every node whose lease has lapsed and returns the users
    /// left with no live connection. Each such user is returned to one caller only, across
    /// all nodes.
    async fn reap(&self) -> Result<Vec<Departure>, PresenceError> {
        let mut invocation = REAP.prepare_invoke();
        invocation
            .key(format!("{}nodes", self.keys))
            .arg(&*self.keys)
            .arg(self.reap_batch);
        let flat: Vec<String> = self.run(&invocation).await?;
        flat.chunks_exact(2)
            .map(|pair| {
                let node = NodeId::new(&pair[1])
                    .map_err(|error| PresenceError::unavailable(CorruptRegistry(error)))?;
                Ok(Departure {
                    user_id: UserId::from(pair[0].as_str()),
                    node,
                })
            })
            .collect()
    }

    /// Whether each user has a live connection, in the order asked.
    async fn online(&self, user_ids: &[UserId]) -> Result<Vec<bool>, PresenceError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = ONLINE.prepare_invoke();
        invocation.arg(&*self.keys);
        for user_id in user_ids {
            invocation.key(self.user_key(user_id)).arg(user_id.as_str());
        }
        self.run(&invocation).await
    }

    /// The devices of `user_id` with a live connection, each once, in no set order
    /// (push goes to the others).
    async fn online_devices(&self, user_id: &UserId) -> Result<Vec<DeviceId>, PresenceError> {
        let mut invocation = ONLINE_DEVICES.prepare_invoke();
        invocation
            .key(self.user_key(user_id))
            .arg(&*self.keys)
            .arg(user_id.as_str());
        let devices: Vec<String> = self.run(&invocation).await?;
        Ok(devices.into_iter().map(DeviceId::from).collect())
    }

    async fn ping(&self) -> Result<(), PresenceError> {
        self.health.admit().map_err(PresenceError::unavailable)?;
        let outcome = crate::connection::ping(&self.redis).await;
        self.health.record(&outcome);
        outcome.map_err(PresenceError::unavailable)
    }
}
