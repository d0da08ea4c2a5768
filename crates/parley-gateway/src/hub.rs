//! The connection hub: which sockets of this node belong to which user and device, and
//! who watches whose presence.
//!
//! The dispatcher task reads this node's bus events (`Chat::events`) and hands each frame
//! to the matching connections' outbound queues without waiting: a socket whose queue is
//! full is closed (its device resumes with `sync`), so one slow reader never stalls anyone
//! else. A frame is serialized once per event on this node, whatever its fan-out.

use axum::extract::ws::Utf8Bytes;
use parking_lot::RwLock;
use parley_core::{BusEvent, Chat, ConnectionId, NodeId};
use parley_proto::{ConversationId, DeviceId, ServerFrame, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// What a connection task is asked to write.
#[derive(Debug)]
pub enum Outbound {
    /// A serialized server frame; for messages, with its commit time (ms) for the
    /// delivery-latency histogram and its place in its conversation (for the socket's
    /// position check).
    Frame(Utf8Bytes, Option<i64>, Option<Position>),
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
}

/// A message's conversation and `seq`, shared by every socket it is queued for.
pub type Position = Arc<(ConversationId, i64)>;

struct ConnectionEntry {
    user_id: UserId,
    device_id: DeviceId,
    outbound: mpsc::Sender<Outbound>,
    /// Woken when the queue overflowed: the connection must go.
    evict: Arc<Notify>,
    watching: Vec<UserId>,
}

#[derive(Default)]
struct Registry {
    connections: HashMap<u64, ConnectionEntry>,
    by_user: HashMap<UserId, Vec<u64>>,
    presence_watchers: HashMap<UserId, HashSet<u64>>,
}

/// How many sockets one user and one device may hold open on a node.
#[derive(Clone, Copy, Debug)]
pub struct SocketCaps {
    pub per_user: usize,
    pub per_device: usize,
}

/// This node's sockets, by the `serial` of their [`ConnectionId`].
pub struct Hub {
    node: NodeId,
    registry: RwLock<Registry>,
}

impl Hub {
    pub fn new(node: NodeId) -> Self {
        Self {
            node,
            registry: RwLock::default(),
        }
    }

    /// Adds a connection, unless its user or device already holds as many as `caps`
    /// allow on this node (then `Err` names which: `"user"` or `"device"`).
    pub fn register(
        &self,
        connection_id: u64,
        user_id: UserId,
        device_id: DeviceId,
        outbound: mpsc::Sender<Outbound>,
        evict: Arc<Notify>,
        caps: SocketCaps,
    ) -> Result<(), &'static str> {
        let mut registry = self.registry.write();
        if let Some(ids) = registry.by_user.get(&user_id) {
            if ids.len() >= caps.per_user {
                return Err("user");
            }
            let of_device = ids
                .iter()
                .filter_map(|id| registry.connections.get(id))
                .filter(|entry| entry.device_id == device_id)
                .count();
            if of_device >= caps.per_device {
                return Err("device");
            }
        }
        registry
            .by_user
            .entry(user_id.clone())
            .or_default()
            .push(connection_id);
        registry.connections.insert(
            connection_id,
            ConnectionEntry {
                user_id,
                device_id,
                outbound,
                evict,
                watching: Vec::new(),
            },
        );
        metrics::gauge!("parley_connections").set(registry.connections.len() as f64);
        Ok(())
    }

    pub fn unregister(&self, connection_id: u64) {
        let mut registry = self.registry.write();
        let Some(entry) = registry.connections.remove(&connection_id) else {
            return;
        };
        if let Some(ids) = registry.by_user.get_mut(&entry.user_id) {
            ids.retain(|id| *id != connection_id);
            if ids.is_empty() {
                registry.by_user.remove(&entry.user_id);
            }
        }
        for watched in entry.watching {
            unwatch(&mut registry, &watched, connection_id);
        }
        metrics::gauge!("parley_connections").set(registry.connections.len() as f64);
    }

    /// Replaces the set of users whose presence this connection receives; returns the
    /// set it replaced.
    pub fn watch_presence(&self, connection_id: u64, user_ids: Vec<UserId>) -> Vec<UserId> {
        let mut registry = self.registry.write();
        let Some(entry) = registry.connections.get_mut(&connection_id) else {
            return Vec::new();
        };
        let previous = std::mem::replace(&mut entry.watching, user_ids.clone());
        for watched in &previous {
            unwatch(&mut registry, watched, connection_id);
        }
        for watched in user_ids {
            registry
                .presence_watchers
                .entry(watched)
                .or_default()
                .insert(connection_id);
        }
        previous
    }

    pub fn connection_count(&self) -> usize {
        self.registry.read().connections.len()
    }

    /// Asks every connection to close (shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        let registry = self.registry.read();
        for entry in registry.connections.values() {
            if entry
                .outbound
                .try_send(Outbound::Close(code, reason))
                .is_err()
            {
                entry.evict.notify_one();
            }
        }
    }

    fn dispatch(&self, chat: &Chat, event: BusEvent) {
        chat.on_bus_event(&event);
        match event {
            BusEvent::Deliver {
                user_ids,
                except_connection,
                frame,
                created_at_ms,
            } => {
                let position = match &*frame {
                    ServerFrame::NewMessage(message) => {
                        Some(Arc::new((message.conversation_id.clone(), message.seq)))
                    }
                    _ => None,
                };
                let frame = Utf8Bytes::from(frame.to_json());
                // The sending socket, if it is on this node.
                let except_connection = except_connection
                    .filter(|connection| connection.node == self.node)
                    .map(|connection: ConnectionId| connection.serial);
                let registry = self.registry.read();
                for user_id in user_ids.iter() {
                    let Some(connection_ids) = registry.by_user.get(user_id) else {
                        continue;
                    };
                    for connection_id in connection_ids {
                        let Some(entry) = registry.connections.get(connection_id) else {
                            continue;
                        };
                        if except_connection == Some(*connection_id) {
                            continue;
                        }
                        offer(
                            entry,
                            Outbound::Frame(frame.clone(), created_at_ms, position.clone()),
                        );
                    }
                }
            }
            BusEvent::Presence {
                user_id,
                frame,
                audience,
            } => {
                let frame = Utf8Bytes::from(frame.to_json());
                let registry = self.registry.read();
                if let Some(watchers) = registry.presence_watchers.get(&user_id) {
                    for connection_id in watchers {
                        if let Some(entry) = registry.connections.get(connection_id) {
                            // Privacy and blocks: only the watchers the change admits.
                            if audience.admits(&entry.user_id) || entry.user_id == user_id {
                                offer(entry, Outbound::Frame(frame.clone(), None, None));
                            }
                        }
                    }
                }
            }
            BusEvent::CloseDevice { user_id, device_id } => {
                let registry = self.registry.read();
                let connections = registry.by_user.get(&user_id).into_iter().flatten();
                for entry in connections.filter_map(|id| registry.connections.get(id)) {
                    if entry.device_id == device_id {
                        offer(entry, Outbound::Close(4001, "token revoked"));
                    }
                }
            }
            BusEvent::MembershipChanged { .. } => {}
        }
    }
}

fn unwatch(registry: &mut Registry, watched: &UserId, connection_id: u64) {
    if let Some(watchers) = registry.presence_watchers.get_mut(watched) {
        watchers.remove(&connection_id);
        if watchers.is_empty() {
            registry.presence_watchers.remove(watched);
        }
    }
}

/// Queues without waiting; a full queue evicts the connection.
fn offer(entry: &ConnectionEntry, outbound: Outbound) {
    match entry.outbound.try_send(outbound) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics::counter!("parley_slow_consumer_evictions_total").increment(1);
            entry.evict.notify_one();
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// Most events taken off the bus at once.
const DISPATCH_BATCH: usize = 256;

/// Opens this node's bus stream and starts the task that feeds it to the connections;
/// answers the bus's count of possible losses (see `BusReceiver::losses`).
pub async fn spawn_dispatcher(
    hub: Arc<Hub>,
    chat: Chat,
) -> Result<tokio::sync::watch::Receiver<u64>, parley_core::Error> {
    let mut events = chat.events().await?;
    let losses = events.losses();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(DISPATCH_BATCH);
        while events.recv_many(&mut batch, DISPATCH_BATCH).await > 0 {
            for event in batch.drain(..) {
                hub.dispatch(&chat, event);
            }
        }
        tracing::error!("the bus stream ended: this node no longer delivers live frames");
    });
    Ok(losses)
}
