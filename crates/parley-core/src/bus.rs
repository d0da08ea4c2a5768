//! The message-bus port: how an event reaches the nodes that hold its recipients' sockets.
//!
//! Embedded mode uses [`crate::local::LocalBus`] (one process); cluster mode a network
//! bus (NATS). The store is the truth and the bus only rings the doorbell: a lost event
//! costs latency, never a message, because every device detects `seq` gaps and catches up
//! with `sync`. What the bus does promise, and what every implementation is checked for by
//! the conformance suite in `parley-testkit`:
//!
//! - **Addressed.** An event goes only to nodes that hold an [`Interest`] in its
//!   [`Audience`] (the sockets of one of its users, a watcher of one user's presence), or
//!   to every node for [`Audience::Everyone`]. Each user of a `Deliver` is served once per
//!   node: the node receives the event whole, or split into events for parts of its
//!   users (a bus routing per user, like NATS subjects, does that), never one user twice.
//! - **Ordered per publisher and addressee**: a node receives one publisher's events for
//!   one user (`Deliver`, `CloseDevice`), or about one user's presence, in publish order.
//!   Events for everyone (`MembershipChanged`, a cache hint) may overtake others, and a
//!   network bus may carry `Deliver`s to big audiences on a path of their own, ordered
//!   among themselves (one conversation's messages have one audience).
//! - **Bounded**: nothing queues without limit. In one process `publish` waits while a
//!   node's stream is full (backpressure); a network bus may instead drop for a node that
//!   does not keep up (a missed doorbell), but never waits on it forever.
//! - **Serializable**: events are plain data (`serde`), so a network bus can carry them.
//!   Frames travel as typed [`ServerFrame`]s and are encoded once per node.

use async_trait::async_trait;
use parley_proto::{ConversationId, DeviceId, ServerFrame, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// The name of a node in a cluster, from configuration (`node_id`). Two live nodes never
/// share one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// A node id is 1-64 characters of `a-z A-Z 0-9 - _` (it appears in bus subjects and
    /// registry keys).
    pub fn new(name: &str) -> Result<Self, InvalidNodeId> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if valid {
            Ok(NodeId(name.into()))
        } else {
            Err(InvalidNodeId(name.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid node id {0:?}: use 1-64 characters of a-z A-Z 0-9 - _")]
pub struct InvalidNodeId(String);

/// One WebSocket connection, named across the cluster: its node and a number unique on
/// that node. The numbers start at the node's start time in microseconds, so a node
/// restarted under the same id does not reuse the numbers of its previous life (whose
/// presence leases may not have lapsed yet).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConnectionId {
    pub node: NodeId,
    pub serial: u64,
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.node, self.serial)
    }
}

/// What a node asks the bus to bring it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Interest {
    /// Events for this user's sockets (held while the node has one).
    User(UserId),
    /// Changes of this user's presence (held while a socket on the node watches it).
    Presence(UserId),
}

/// Who an event is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience<'a> {
    /// Nodes holding `Interest::User` for any of these users.
    Users(&'a [UserId]),
    /// Nodes holding `Interest::Presence` for this user.
    PresenceWatchers(&'a UserId),
    /// Every node.
    Everyone,
}

impl Audience<'_> {
    /// Whether a node holding `interest` should receive the event. `Everyone` reaches
    /// every node, also those that hold no interest at all: check it before looking at a
    /// node's interests.
    pub fn wants(&self, interest: &Interest) -> bool {
        match (self, interest) {
            (Audience::Users(user_ids), Interest::User(user_id)) => user_ids.contains(user_id),
            (Audience::PresenceWatchers(watched), Interest::Presence(user_id)) => {
                *watched == user_id
            }
            (Audience::Everyone, _) => true,
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusEvent {
    /// Send `frame` to every socket of `user_ids`, except `except_connection` (the socket a
    /// message was sent on: it gets `msg_ack` instead). Other sockets of the same device,
    /// such as a second browser tab, do get the frame.
    Deliver {
        user_ids: Arc<[UserId]>,
        except_connection: Option<ConnectionId>,
        frame: Arc<ServerFrame>,
        /// For messages: the commit time in ms, to measure delivery latency.
        created_at_ms: Option<i64>,
    },
    /// Send `frame` to every socket that subscribed to `user_id`'s presence and whose
    /// user `audience` admits.
    Presence {
        user_id: UserId,
        frame: Arc<ServerFrame>,
        #[serde(default)]
        audience: PresenceAudience,
    },
    /// The device's token was revoked: close its sockets now.
    CloseDevice {
        user_id: UserId,
        device_id: DeviceId,
    },
    /// Membership changed: drop cached member lists of this conversation. Only a hint: the
    /// recipients of a message are checked against the `members_version` its commit saw.
    MembershipChanged { conversation_id: ConversationId },
}

/// Which watchers may see a presence change: decided where the change happens (from the
/// user's `last_seen_privacy` and blocks), applied by each node to its watching sockets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum PresenceAudience {
    /// Every watcher but these users.
    AllBut { user_ids: Arc<[UserId]> },
    /// These users only.
    Only { user_ids: Arc<[UserId]> },
}

impl Default for PresenceAudience {
    fn default() -> Self {
        PresenceAudience::AllBut {
            user_ids: Arc::from(Vec::new()),
        }
    }
}

impl PresenceAudience {
    pub fn admits(&self, user_id: &UserId) -> bool {
        match self {
            PresenceAudience::AllBut { user_ids } => !user_ids.contains(user_id),
            PresenceAudience::Only { user_ids } => user_ids.contains(user_id),
        }
    }

    /// Whether nobody at all may see it.
    pub fn is_nobody(&self) -> bool {
        matches!(self, PresenceAudience::Only { user_ids } if user_ids.is_empty())
    }
}

impl BusEvent {
    pub fn audience(&self) -> Audience<'_> {
        match self {
            BusEvent::Deliver { user_ids, .. } => Audience::Users(user_ids),
            BusEvent::Presence { user_id, .. } => Audience::PresenceWatchers(user_id),
            BusEvent::CloseDevice { user_id, .. } => Audience::Users(std::slice::from_ref(user_id)),
            BusEvent::MembershipChanged { .. } => Audience::Everyone,
        }
    }
}

/// Why the bus could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The bus (or the connection to it) is down; the call may be retried.
    #[error("message bus unavailable")]
    Unavailable {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An event could not be encoded or decoded.
    #[error("message bus event could not be encoded or decoded")]
    Codec {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// This node's event stream is already open, or was closed.
    #[error("this node's bus subscription is already taken or closed")]
    Subscription,
}

impl BusError {
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        BusError::Unavailable {
            source: Box::new(error),
        }
    }
}

/// This node's stream of events, bounded: while the node does not read, publishers wait
/// (in-process) or the network bus drops (a doorbell missed, caught up by `sync`).
///
/// A bus that can lose events (a full stream, a connection to the bus that broke and came
/// back) counts the occasions in [`BusReceiver::losses`], so the node can look for what
/// its sockets missed instead of waiting for their next message to reveal the gap.
pub struct BusReceiver {
    events: mpsc::Receiver<BusEvent>,
    losses: watch::Receiver<u64>,
}

impl BusReceiver {
    /// A stream that never loses events (the in-process bus waits instead).
    pub fn new(events: mpsc::Receiver<BusEvent>) -> Self {
        let (_never, losses) = watch::channel(0);
        Self { events, losses }
    }

    /// A stream whose bus bumps `losses` each time events for this node may have been
    /// lost.
    pub fn with_losses(events: mpsc::Receiver<BusEvent>, losses: watch::Receiver<u64>) -> Self {
        Self { events, losses }
    }

    /// The next event; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<BusEvent> {
        self.events.recv().await
    }

    /// Up to `limit` events at once, waiting for the first: fewer wake-ups under load.
    pub async fn recv_many(&mut self, buffer: &mut Vec<BusEvent>, limit: usize) -> usize {
        self.events.recv_many(buffer, limit).await
    }

    /// A counter of the occasions on which events for this node may have been lost; it
    /// changes (`watch::Receiver::changed`) on each one.
    pub fn losses(&self) -> watch::Receiver<u64> {
        self.losses.clone()
    }
}

/// One node's handle on the bus.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// The node this handle publishes and subscribes for.
    fn node_id(&self) -> &NodeId;

    /// Opens this node's event stream; once per node (`Subscription` after that).
    async fn subscribe(&self) -> Result<BusReceiver, BusError>;

    /// From now on, events for `interest` reach this node. Returns once that holds, so an
    /// event published after the call returns is not missed. Idempotent.
    async fn add_interest(&self, interest: Interest) -> Result<(), BusError>;

    /// Events for `interest` stop reaching this node. Idempotent.
    async fn remove_interest(&self, interest: Interest) -> Result<(), BusError>;

    /// Publishes events, in order, to the nodes of each one's audience. Returns once the
    /// bus has taken them (see "Bounded" above).
    async fn publish(&self, events: Vec<BusEvent>) -> Result<(), BusError>;

    /// Whether the bus can be reached now (for `/readyz`); returns within a second or so.
    async fn ping(&self) -> Result<(), BusError>;
}
