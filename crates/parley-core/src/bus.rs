//! The message-bus port: how an event reaches the gateways that hold the recipients'
//! sockets.
//!
//! Embedded mode uses [`crate::local::LocalBus`] (one process); cluster mode a NATS
//! implementation. Frames travel already serialized (`Arc<str>`), so a message is encoded
//! once, whatever its fan-out. The bus carries no durable state: a lost event costs only
//! liveness, never data, because every device catches up with `sync`.

use async_trait::async_trait;
use parley_proto::{ConversationId, DeviceId, UserId};
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusEvent {
    /// Send `frame` to every connection of `user_ids`, except `except_connection` (the
    /// socket a message was sent on: it gets `msg_ack` instead). Other sockets of the
    /// same device, such as a second browser tab, do get the frame.
    Deliver {
        user_ids: Arc<[UserId]>,
        except_connection: Option<u64>,
        frame: Arc<str>,
        /// For messages: the commit time in ms, to measure delivery latency.
        created_at_ms: Option<i64>,
    },
    /// Send `frame` to every connection that subscribed to `user_id`'s presence.
    Presence { user_id: UserId, frame: Arc<str> },
    /// The device's token was revoked: close its sockets now.
    CloseDevice { device_id: DeviceId },
    /// Membership changed: drop cached member lists of this conversation.
    MembershipChanged { conversation_id: ConversationId },
}

#[derive(Debug, thiserror::Error)]
#[error("bus unavailable: {0}")]
pub struct BusError(pub String);

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes to every node (this one included). Returns once the bus has accepted it.
    async fn publish(&self, event: BusEvent) -> Result<(), BusError>;

    /// This node's stream of events. Each call returns a new receiver that gets every
    /// event published after it.
    fn subscribe(&self) -> mpsc::UnboundedReceiver<BusEvent>;
}
