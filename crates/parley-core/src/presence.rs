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

/// What a node's handle remembers of its lease terms, so a heartbeat can tell the node to
/// register its sockets again whenever some of them sit in a term that is not current.
///
/// That happens when the lease lapses (the heartbeat finds it so: `Lost`), but also when a
/// `connect` arrives after a lapse and before the next heartbeat: it starts the new term,
/// so the heartbeat after it finds a live lease, though the sockets registered in the old
/// term no longer count. Backends call [`TermWatch::registered`] with the term each
/// `connect` used and [`TermWatch::heartbeat`] with what each heartbeat found.
#[derive(Debug, Default)]
pub struct TermWatch(parking_lot::Mutex<TermState>);

#[derive(Debug, Default)]
struct TermState {
    /// The term this node's sockets were last registered or renewed in.
    term: Option<u64>,
    /// A `connect` moved to a new term: the next heartbeat answers `Lost`.
    moved: bool,
}

impl TermWatch {
    /// A connection was registered under `term`.
    pub fn registered(&self, term: u64) {
        let mut state = self.0.lock();
        if state.term.is_some_and(|known| known != term) {
            state.moved = true;
        }
        state.term = Some(term);
    }

    /// A heartbeat found the lease `was_live` and now in `term`: `Renewed` only if the
    /// node's sockets all sit in that term.
    pub fn heartbeat(&self, term: u64, was_live: bool) -> Lease {
        let mut state = self.0.lock();
        let known = state.term.replace(term);
        let moved = std::mem::take(&mut state.moved);
        if was_live && !moved && known.is_none_or(|known| known == term) {
            Lease::Renewed
        } else {
            Lease::Lost
        }
    }
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
