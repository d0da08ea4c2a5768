//! In-process implementations of the `Bus`, `PresenceRegistry` and `RateLimiter` ports.
//!
//! Used by the embedded mode (one process, no external service) and as the reference the
//! conformance suites in `parley-testkit` hold cluster adapters to. Each shared backend
//! (a bus network, a registry) can hand out handles for several nodes, so the suites can
//! check the behaviour between nodes in one process. Clocks are tokio's, so tests may
//! pause and advance time.

use crate::bus::ConnectionId;
use crate::bus::{Bus, BusError, BusEvent, BusReceiver, Interest, NodeId};
use crate::presence::{Departure, Lease, PresenceError, PresenceRegistry, TermWatch};
use crate::ratelimit::{Admission, Bucket, Quota, RateLimitError, RateLimiter, TokenBucket};
use async_trait::async_trait;
use parking_lot::Mutex;
use parley_proto::{DeviceId, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Events a node's stream holds before publishers wait.
pub const DEFAULT_BUS_CAPACITY: usize = 16 * 1024;

// ---- bus ----------------------------------------------------------------------------

#[derive(Default)]
struct NodeSlot {
    sender: Option<mpsc::Sender<BusEvent>>,
    subscribed: bool,
    users: HashSet<UserId>,
    presence: HashSet<UserId>,
}

impl NodeSlot {
    fn wants(&self, event: &BusEvent) -> bool {
        match event {
            BusEvent::Deliver { user_ids, .. } => {
                user_ids.iter().any(|user_id| self.users.contains(user_id))
            }
            BusEvent::CloseDevice { user_id, .. } => self.users.contains(user_id),
            BusEvent::Presence { user_id, .. } => self.presence.contains(user_id),
            BusEvent::MembershipChanged { .. } => true,
        }
    }
}

struct Network {
    capacity: usize,
    nodes: Mutex<HashMap<NodeId, NodeSlot>>,
}

/// A bus inside one process: one node's handle on a network of nodes in this process
/// ([`LocalBus::join`] adds one).
pub struct LocalBus {
    network: Arc<Network>,
    node: NodeId,
}

impl LocalBus {
    /// A new network with one node, whose streams hold `capacity` events.
    pub fn new(node: NodeId, capacity: usize) -> Self {
        let network = Arc::new(Network {
            capacity: capacity.max(1),
            nodes: Mutex::new(HashMap::new()),
        });
        network
            .nodes
            .lock()
            .insert(node.clone(), NodeSlot::default());
        Self { network, node }
    }

    /// Another node on the same network.
    pub fn join(&self, node: NodeId) -> Self {
        self.network.nodes.lock().entry(node.clone()).or_default();
        Self {
            network: self.network.clone(),
            node,
        }
    }

    fn with_slot<T>(&self, change: impl FnOnce(&mut NodeSlot) -> T) -> T {
        let mut nodes = self.network.nodes.lock();
        change(nodes.entry(self.node.clone()).or_default())
    }
}

#[async_trait]
impl Bus for LocalBus {
    fn node_id(&self) -> &NodeId {
        &self.node
    }

    async fn subscribe(&self) -> Result<BusReceiver, BusError> {
        let (sender, receiver) = mpsc::channel(self.network.capacity);
        self.with_slot(|slot| {
            if slot.subscribed {
                return Err(BusError::Subscription);
            }
            slot.subscribed = true;
            slot.sender = Some(sender);
            Ok(BusReceiver::new(receiver))
        })
    }

    async fn add_interest(&self, interest: Interest) -> Result<(), BusError> {
        self.with_slot(|slot| match interest {
            Interest::User(user_id) => slot.users.insert(user_id),
            Interest::Presence(user_id) => slot.presence.insert(user_id),
        });
        Ok(())
    }

    async fn remove_interest(&self, interest: Interest) -> Result<(), BusError> {
        self.with_slot(|slot| match interest {
            Interest::User(user_id) => slot.users.remove(&user_id),
            Interest::Presence(user_id) => slot.presence.remove(&user_id),
        });
        Ok(())
    }

    async fn publish(&self, events: Vec<BusEvent>) -> Result<(), BusError> {
        for event in events {
            let targets: Vec<mpsc::Sender<BusEvent>> = {
                let nodes = self.network.nodes.lock();
                nodes
                    .values()
                    .filter(|slot| slot.wants(&event))
                    .filter_map(|slot| slot.sender.clone())
                    .collect()
            };
            // Awaited outside the lock: a full stream makes this publisher wait
            // (backpressure); a node whose stream is gone is skipped.
            for target in targets {
                let _ = target.send(event.clone()).await;
            }
        }
        Ok(())
    }

    /// In one process the bus is always there.
    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}

// ---- presence -------------------------------------------------------------------------

/// One term of a node's lease. A node whose lease lapsed starts a new term, and the
/// connections of the old term never count again (they are reaped), so a node restarted
/// under the same id, or one that was cut off for a while, cannot bring dead connections
/// back to life.
#[derive(Clone, Copy)]
struct Term {
    number: u64,
    until: Instant,
}

struct Registry {
    lease: Duration,
    /// Every node's current lease term (also lapsed ones not reaped yet).
    leases: HashMap<NodeId, Term>,
    /// Connections per user: their device and the lease term they were registered in.
    users: HashMap<UserId, HashMap<ConnectionId, (DeviceId, u64)>>,
}

impl Registry {
    fn is_live(&self, connection: &ConnectionId, term: u64, now: Instant) -> bool {
        self.leases
            .get(&connection.node)
            .is_some_and(|lease| lease.number == term && lease.until > now)
    }

    fn live_connections<'a>(
        &'a self,
        user_id: &UserId,
        now: Instant,
    ) -> impl Iterator<Item = (&'a ConnectionId, &'a DeviceId)> + 'a {
        self.users
            .get(user_id)
            .into_iter()
            .flatten()
            .filter(move |(connection, (_, term))| self.is_live(connection, *term, now))
            .map(|(connection, (device, _))| (connection, device))
    }

    fn is_online(&self, user_id: &UserId, now: Instant) -> bool {
        self.live_connections(user_id, now).next().is_some()
    }

    /// The node's current term, renewed; a new term if the last one lapsed. Answers
    /// whether the previous term was still live.
    fn renew(&mut self, node: &NodeId, now: Instant) -> (u64, bool) {
        let until = now + self.lease;
        match self.leases.get_mut(node) {
            Some(term) if term.until > now => {
                term.until = until;
                (term.number, true)
            }
            Some(term) => {
                term.number += 1;
                term.until = until;
                (term.number, false)
            }
            None => {
                self.leases.insert(node.clone(), Term { number: 0, until });
                (0, false)
            }
        }
    }
}

/// Presence for one process: one node's handle on a registry ([`LocalPresence::join`] adds
/// one), with leases on tokio's clock.
pub struct LocalPresence {
    registry: Arc<Mutex<Registry>>,
    node: NodeId,
    terms: TermWatch,
}

impl LocalPresence {
    pub fn new(node: NodeId, lease: Duration) -> Self {
        Self {
            registry: Arc::new(Mutex::new(Registry {
                lease,
                leases: HashMap::new(),
                users: HashMap::new(),
            })),
            node,
            terms: TermWatch::default(),
        }
    }

    /// Another node's handle on the same registry.
    pub fn join(&self, node: NodeId) -> Self {
        Self {
            registry: self.registry.clone(),
            node,
            terms: TermWatch::default(),
        }
    }
}

#[async_trait]
impl PresenceRegistry for LocalPresence {
    fn node_id(&self) -> &NodeId {
        &self.node
    }

    async fn connect(
        &self,
        connection: &ConnectionId,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<bool, PresenceError> {
        let now = Instant::now();
        let mut registry = self.registry.lock();
        let term = match registry.leases.get(&self.node) {
            Some(term) if term.until > now => term.number,
            _ => registry.renew(&self.node, now).0,
        };
        let was_offline = !registry.is_online(user_id, now);
        registry
            .users
            .entry(user_id.clone())
            .or_default()
            .insert(connection.clone(), (device_id.clone(), term));
        drop(registry);
        self.terms.registered(term);
        Ok(was_offline)
    }

    async fn disconnect(
        &self,
        connection: &ConnectionId,
        user_id: &UserId,
    ) -> Result<bool, PresenceError> {
        let now = Instant::now();
        let mut registry = self.registry.lock();
        let Some(connections) = registry.users.get_mut(user_id) else {
            return Ok(false);
        };
        let removed = connections.remove(connection).is_some();
        // A connection of a lapsed term not reaped yet is announced here, not by `reap`:
        // when this leaves the user offline, what is left of them (dead connections only)
        // goes too, so `reap` cannot report them a second time.
        let offline = removed && !registry.is_online(user_id, now);
        if offline || registry.users.get(user_id).is_some_and(HashMap::is_empty) {
            registry.users.remove(user_id);
        }
        Ok(offline)
    }

    async fn heartbeat(&self) -> Result<Lease, PresenceError> {
        let now = Instant::now();
        let (term, was_live) = self.registry.lock().renew(&self.node, now);
        Ok(self.terms.heartbeat(term, was_live))
    }

    async fn reap(&self) -> Result<Vec<Departure>, PresenceError> {
        let now = Instant::now();
        let mut registry = self.registry.lock();
        let registry = &mut *registry;
        let leases = &registry.leases;
        let mut departures = Vec::new();
        registry.users.retain(|user_id, connections| {
            let mut gone_from = None;
            connections.retain(|connection, (_, term)| {
                let live = leases
                    .get(&connection.node)
                    .is_some_and(|lease| lease.number == *term && lease.until > now);
                if !live {
                    gone_from = Some(connection.node.clone());
                }
                live
            });
            if let Some(node) = gone_from {
                if connections.is_empty() {
                    departures.push(Departure {
                        user_id: user_id.clone(),
                        node,
                    });
                }
            }
            !connections.is_empty()
        });
        // Lapsed leases are kept (one small entry per node id ever seen), so a node's
        // term numbers never repeat and a heartbeat can tell a new term from its own.
        Ok(departures)
    }

    async fn online(&self, user_ids: &[UserId]) -> Result<Vec<bool>, PresenceError> {
        let now = Instant::now();
        let registry = self.registry.lock();
        Ok(user_ids
            .iter()
            .map(|user_id| registry.is_online(user_id, now))
            .collect())
    }

    async fn online_devices(&self, user_id: &UserId) -> Result<Vec<DeviceId>, PresenceError> {
        let now = Instant::now();
        let registry = self.registry.lock();
        let devices: HashSet<&DeviceId> = registry
            .live_connections(user_id, now)
            .map(|(_, device)| device)
            .collect();
        Ok(devices.into_iter().cloned().collect())
    }

    async fn ping(&self) -> Result<(), PresenceError> {
        Ok(())
    }
}

// ---- rate limits ------------------------------------------------------------------------

/// Above this many buckets, full ones are swept out, so memory follows the number of
/// recently active keys.
const SWEEP_THRESHOLD: usize = 50_000;

/// A bucket's limit name and key.
type BucketKey = (&'static str, String);

/// Rate limits kept in this process's memory: each bucket's level and the quota it was
/// last used with (to sweep out full ones).
#[derive(Default)]
pub struct LocalRateLimiter {
    buckets: Mutex<HashMap<BucketKey, (TokenBucket, Quota)>>,
}

impl LocalRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn acquire(&self, buckets: &[Bucket<'_>]) -> Result<Admission, RateLimitError> {
        // The keys are made before taking the lock, once each; a bucket named twice counts
        // once.
        let mut keys: Vec<BucketKey> = Vec::with_capacity(buckets.len());
        let mut named = Vec::with_capacity(buckets.len());
        for bucket in buckets {
            let key = (bucket.limit, bucket.key.to_string());
            if !keys.contains(&key) {
                keys.push(key);
                named.push(bucket);
            }
        }
        let buckets = named;
        let now = Instant::now();
        let mut state = self.buckets.lock();
        if state.len() > SWEEP_THRESHOLD {
            state.retain(|_, (bucket, quota)| !bucket.is_full(*quota, now));
        }
        let mut retry_after = Duration::ZERO;
        for (key, bucket) in keys.iter().zip(&buckets) {
            if let Some((level, _)) = state.get(key) {
                retry_after = retry_after.max(level.wait(bucket.quota, now));
            }
        }
        if !retry_after.is_zero() {
            return Ok(Admission::Denied { retry_after });
        }
        for (key, bucket) in keys.into_iter().zip(buckets) {
            let (level, quota) = state
                .entry(key)
                .or_insert_with(|| (TokenBucket::full(bucket.quota, now), bucket.quota));
            *quota = bucket.quota;
            // Cannot fail: every bucket was checked above, under the same lock.
            let _ = level.take(bucket.quota, now);
        }
        Ok(Admission::Granted)
    }

    async fn refund(&self, bucket: &Bucket<'_>) -> Result<(), RateLimitError> {
        if let Some((level, _)) = self
            .buckets
            .lock()
            .get_mut(&(bucket.limit, bucket.key.to_string()))
        {
            level.give_back(bucket.quota);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), RateLimitError> {
        Ok(())
    }
}
