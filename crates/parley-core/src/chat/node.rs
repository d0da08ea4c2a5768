//! This node's part in the cluster: its connections, the bus interests they need, the
//! presence lease that keeps them counted, and the ports it is built on.
//!
//! A socket is registered here when it opens ([`Chat::connected`]) and gone when it
//! closes ([`Chat::disconnected`]). The first socket of a user on this node makes the node
//! ask the bus for that user's events, the last one gives them up; the same for the users
//! a socket watches the presence of. A background task renews the node's presence lease
//! and reaps the users of nodes whose lease lapsed (they died): those go offline by
//! themselves, announced once.

use super::*;
use crate::presence::{Departure, Lease};
use parley_proto::DeviceId;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The backends a [`Chat`] runs on: in-process ones in the embedded mode, network ones in
/// a cluster. The bus and the presence registry name the same node.
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub presence: Arc<dyn PresenceRegistry>,
    pub limiter: Arc<dyn RateLimiter>,
    pub media: Arc<dyn crate::MediaStore>,
}

struct LocalConnection {
    user_id: UserId,
    device_id: DeviceId,
    watching: Vec<UserId>,
}

pub(super) struct NodeState {
    node: NodeId,
    next_serial: AtomicU64,
    connections: parking_lot::Mutex<HashMap<u64, LocalConnection>>,
    /// How many of this node's sockets need each interest. Held across the bus call, so a
    /// removal never overtakes the addition after it.
    interests: tokio::sync::Mutex<HashMap<Interest, usize>>,
}

impl NodeState {
    pub(super) fn new(node: NodeId) -> Self {
        let start_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_micros() as u64);
        Self {
            node,
            next_serial: AtomicU64::new(start_micros),
            connections: Default::default(),
            interests: Default::default(),
        }
    }
}

/// How often the lease is renewed and lapsed leases reaped: three times per lease period.
fn lease_tick(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_millis(50))
}

impl Chat {
    /// A name for a new socket of this node, unique in the cluster.
    pub fn new_connection_id(&self) -> ConnectionId {
        ConnectionId {
            node: self.inner.node.node.clone(),
            serial: self.inner.node.next_serial.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A socket of this node opened for `session`. Returns once the bus brings this node
    /// the user's events (so nothing committed from now on is missed live), and announces
    /// `online` when it is the user's first device anywhere.
    pub async fn connected(&self, session: &Session, connection: &ConnectionId) -> Result<()> {
        self.inner.node.connections.lock().insert(
            connection.serial,
            LocalConnection {
                user_id: session.user_id.clone(),
                device_id: session.device_id.clone(),
                watching: Vec::new(),
            },
        );
        if let Err(error) = self
            .change_interests(&[Interest::User(session.user_id.clone())], &[])
            .await
        {
            self.inner
                .node
                .connections
                .lock()
                .remove(&connection.serial);
            return Err(error);
        }
        match self
            .inner
            .presence
            .connect(connection, &session.user_id, &session.device_id)
            .await
        {
            Ok(true) => self.announce_online(&session.user_id).await,
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "presence connect failed"),
        }
        Ok(())
    }

    /// A socket of this node closed. Stores `last_seen` and announces `offline` when it
    /// was the user's last device anywhere.
    pub async fn disconnected(&self, session: &Session, connection: &ConnectionId) {
        let Some(gone) = self
            .inner
            .node
            .connections
            .lock()
            .remove(&connection.serial)
        else {
            return;
        };
        let mut released = vec![Interest::User(gone.user_id)];
        released.extend(gone.watching.into_iter().map(Interest::Presence));
        if let Err(error) = self.change_interests(&[], &released).await {
            tracing::warn!(%error, "bus interest release failed");
        }
        match self
            .inner
            .presence
            .disconnect(connection, &session.user_id)
            .await
        {
            Ok(true) => self.went_offline(&session.user_id).await,
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "presence disconnect failed"),
        }
    }

    /// `presence_subscribe`: from now on this socket's node receives the presence changes
    /// of `user_ids` (replacing what the socket watched before); returns their presence
    /// now, to send right away.
    pub async fn watch_presence(
        &self,
        connection: &ConnectionId,
        user_ids: Vec<UserId>,
    ) -> Result<Vec<ServerFrame>> {
        if user_ids.len() > MAX_PRESENCE_USERS {
            return Err(Error::Invalid(format!(
                "at most {MAX_PRESENCE_USERS} users per presence_subscribe"
            )));
        }
        let (watcher, previous) = {
            let mut connections = self.inner.node.connections.lock();
            let Some(local) = connections.get_mut(&connection.serial) else {
                return Err(Error::Unauthorized);
            };
            let previous = std::mem::replace(&mut local.watching, user_ids.clone());
            (local.user_id.clone(), previous)
        };
        let added: Vec<Interest> = user_ids.iter().cloned().map(Interest::Presence).collect();
        let removed: Vec<Interest> = previous.into_iter().map(Interest::Presence).collect();
        self.change_interests(&added, &removed).await?;
        self.presence_snapshot_for(&watcher, &user_ids).await
    }

    /// Counts interests up and down and asks the bus for those that go from 0 to 1 and
    /// gives up those that go from 1 to 0.
    async fn change_interests(&self, added: &[Interest], removed: &[Interest]) -> Result<()> {
        let mut counts = self.inner.node.interests.lock().await;
        for interest in added {
            let count = counts.entry(interest.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                if let Err(error) = self.inner.bus.add_interest(interest.clone()).await {
                    counts.remove(interest);
                    return Err(error.into());
                }
            }
        }
        for interest in removed {
            let Some(count) = counts.get_mut(interest) else {
                continue;
            };
            *count -= 1;
            if *count == 0 {
                counts.remove(interest);
                self.inner.bus.remove_interest(interest.clone()).await?;
            }
        }
        Ok(())
    }

    /// Registers this node's live connections again (after its lease was lost).
    async fn register_again(&self) {
        let connections: Vec<(u64, UserId, DeviceId)> = self
            .inner
            .node
            .connections
            .lock()
            .iter()
            .map(|(serial, local)| (*serial, local.user_id.clone(), local.device_id.clone()))
            .collect();
        for (serial, user_id, device_id) in connections {
            let connection = ConnectionId {
                node: self.inner.node.node.clone(),
                serial,
            };
            match self
                .inner
                .presence
                .connect(&connection, &user_id, &device_id)
                .await
            {
                Ok(true) => self.announce_online(&user_id).await,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "presence re-register failed"),
            }
        }
    }

    /// Users of dead nodes: offline now, with `last_seen` stored.
    async fn departed(&self, departures: Vec<Departure>) {
        for departure in departures {
            tracing::info!(user_id = %departure.user_id, node = %departure.node, "offline: node lease lapsed");
            self.went_offline(&departure.user_id).await;
        }
    }
}

/// Renews this node's presence lease and reaps lapsed ones, until the chat is dropped.
pub(super) async fn run_lease_keeper(inner: std::sync::Weak<Inner>) {
    let lease = match inner.upgrade() {
        Some(inner) => inner.config.presence_lease,
        None => return,
    };
    let mut ticker = tokio::time::interval(lease_tick(lease));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let chat = Chat { inner };
        match chat.inner.presence.heartbeat().await {
            Ok(Lease::Renewed) => {}
            Ok(Lease::Lost) => {
                if !chat.inner.node.connections.lock().is_empty() {
                    tracing::warn!(
                        "presence lease was lost; registering this node's sockets again"
                    );
                    chat.register_again().await;
                }
            }
            Err(error) => tracing::warn!(%error, "presence heartbeat failed"),
        }
        match chat.inner.presence.reap().await {
            Ok(departures) => chat.departed(departures).await,
            Err(error) => tracing::warn!(%error, "presence reap failed"),
        }
    }
}
