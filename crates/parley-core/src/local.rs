//! In-process implementations of the `Bus` and `PresenceRegistry` ports.
//!
//! Used by the embedded mode (one process, no external service) and as the reference
//! implementation the conformance suites compare cluster adapters against.

use crate::bus::{Bus, BusError, BusEvent};
use crate::presence::{PresenceError, PresenceRegistry};
use async_trait::async_trait;
use parking_lot::Mutex;
use parley_proto::{DeviceId, UserId};
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc;

/// A bus inside one process: every subscriber gets every event, unbounded, in order.
#[derive(Default)]
pub struct LocalBus {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<BusEvent>>>,
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, event: BusEvent) -> Result<(), BusError> {
        let mut subscribers = self.subscribers.lock();
        subscribers.retain(|subscriber| subscriber.send(event.clone()).is_ok());
        Ok(())
    }

    fn subscribe(&self) -> mpsc::UnboundedReceiver<BusEvent> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.subscribers.lock().push(sender);
        receiver
    }
}

/// Presence for one process: a set of connection ids per user.
#[derive(Default)]
pub struct LocalPresence {
    connections: Mutex<HashMap<UserId, HashSet<u64>>>,
}

impl LocalPresence {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PresenceRegistry for LocalPresence {
    async fn connect(
        &self,
        user_id: &UserId,
        _device_id: &DeviceId,
        connection_id: u64,
    ) -> Result<bool, PresenceError> {
        let mut connections = self.connections.lock();
        let entry = connections.entry(user_id.clone()).or_default();
        let was_offline = entry.is_empty();
        entry.insert(connection_id);
        Ok(was_offline)
    }

    async fn disconnect(
        &self,
        user_id: &UserId,
        connection_id: u64,
    ) -> Result<bool, PresenceError> {
        let mut connections = self.connections.lock();
        let Some(entry) = connections.get_mut(user_id) else {
            return Ok(false);
        };
        let removed = entry.remove(&connection_id);
        if entry.is_empty() {
            connections.remove(user_id);
            return Ok(removed);
        }
        Ok(false)
    }

    async fn online(&self, user_ids: &[UserId]) -> Result<Vec<bool>, PresenceError> {
        let connections = self.connections.lock();
        Ok(user_ids
            .iter()
            .map(|user_id| connections.contains_key(user_id))
            .collect())
    }
}
