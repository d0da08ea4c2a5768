//! The presence port: which users and devices have a live connection, on any node.
//!
//! The registry counts connections, not users, so a user goes offline only when their last
//! device does. Connections belong to a node and live as long as the node's **lease**:
//! every node renews it with [`PresenceRegistry::heartbeat`] well within the lease period.
//! When a node dies, its lease lapses, its connections stop counting at once, and the next
//! [`PresenceRegistry::reap`] on any node removes them and reports their users as gone
//! offline, to exactly one caller, who announces it. A node that starts a new lease after
//! its last one lapsed (it was cut off, or restarted under the same id) does not revive the
//! connections of the old one: only what it registers again counts. The registry keeps no history:
//! `last_seen` is stored by the core through the `Store`.

use crate::bus::{ConnectionId, NodeId};
use async_trait::async_trait;
use parley_proto::{DeviceId, UserId};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// The registry's backend cannot be reached; the call may be retried.
    #[error("presence registry unavailable")]
    Unavailable {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl PresenceError {
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        PresenceError::Unavailable {
            source: Box::new(error),
        }
    }
}

/// What a heartbeat found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// The lease was live and runs for another period.
    Renewed,
    /// The lease had lapsed (the node was too slow, or cut off) and its connections may
    /// have been reaped: the node has a new lease and must register its live connections
    /// again.
    Lost,
}

/// One user who went offline because their node's lease lapsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departure {
    pub user_id: UserId,
    pub node: NodeId,
}

#[async_trait]
pub trait PresenceRegistry: Send + Sync + 'static {
    /// The node this handle registers connections for.
    fn node_id(&self) -> &NodeId;

    /// Registers a connection of this node (and starts the node's lease if it has none);
    /// `true` if the user had no live connection before.
    async fn connect(
        &self,
        connection: &ConnectionId,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<bool, PresenceError>;

    /// Unregisters a connection; `true` if the user has no live connection left and this
    /// one was not reaped yet (so an offline is announced once, by `disconnect` or by
    /// `reap`). Unknown connections are not an error (`false`).
    async fn disconnect(
        &self,
        connection: &ConnectionId,
        user_id: &UserId,
    ) -> Result<bool, PresenceError>;

    /// Renews this node's lease for another period.
    async fn heartbeat(&self) -> Result<Lease, PresenceError>;

    /// Removes the connections of every node whose lease has lapsed and returns the users
    /// left with no live connection. Each such user is returned to one caller only, across
    /// all nodes.
    async fn reap(&self) -> Result<Vec<Departure>, PresenceError>;

    /// Whether each user has a live connection, in the order asked.
    async fn online(&self, user_ids: &[UserId]) -> Result<Vec<bool>, PresenceError>;

    /// The devices of `user_id` with a live connection, each once, in no set order
    /// (push goes to the others).
    async fn online_devices(&self, user_id: &UserId) -> Result<Vec<DeviceId>, PresenceError>;

    /// Whether the registry can be reached now (for `/readyz`).
    async fn ping(&self) -> Result<(), PresenceError>;
}
