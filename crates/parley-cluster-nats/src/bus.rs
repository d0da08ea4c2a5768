//! `NatsBus`: one node's handle on the bus, over its own NATS connection.
//!
//! Calls that wait on NATS are bounded ([`NatsOptions`]) and fail as `Unavailable`: a
//! NATS that is down fails `publish`, `add_interest` and `ping` within their bound,
//! never hangs them. While the connection is down async-nats queues what it is given
//! (up to its command channel, 2048, then the caller waits) and sends it after the
//! reconnect; so `publish` refuses at once while the client knows it is disconnected (a
//! doorbell rung minutes late is worth less than the `sync` a loss triggers anyway).
//! What was queued before the client noticed still goes out late.

use crate::receiver::{self, Command, Losses, Route};
use crate::subject::{InvalidPrefix, Subjects, Target};
use crate::wire;
use async_nats::connection::State;
use async_nats::{Client, Event};
use async_trait::async_trait;
use futures::stream::AbortHandle;
use futures::StreamExt;
use parking_lot::Mutex;
use parley_core::bus::{Bus, BusError, BusEvent, BusReceiver, Interest, NodeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How a [`NatsBus`] waits and buffers; [`NatsOptions::default`] suits a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsOptions {
    /// Events the node's stream holds before the bus drops events for it.
    pub capacity: usize,
    /// Messages async-nats holds per subscription before it drops them (a "slow
    /// consumer", counted as a loss). The receiving task only decodes and `try_send`s, so
    /// this fills only if that task cannot get a core. Memory past the first 32 messages
    /// (allocated with the subscription, ~6 KB) is taken as it fills.
    pub subscription_capacity: usize,
    /// Longest wait for one step that waits on NATS: `add_interest`'s and `subscribe`'s
    /// subscription and round trip, the round trip after a reconnect, and each message
    /// `publish` hands to the client (a batch that NATS keeps taking may take longer).
    pub timeout: Duration,
    /// Longest wait for `ping`'s round trip.
    pub ping_timeout: Duration,
    /// One attempt to open the connection (TCP, TLS, handshake).
    pub connect_timeout: Duration,
    /// Longest pause between reconnect attempts (they never stop).
    pub max_reconnect_delay: Duration,
    /// How often the client pings the server; two unanswered pings drop the connection,
    /// so a server that vanished without closing the socket is noticed within about three.
    pub ping_interval: Duration,
    /// A `Deliver` to at least this many users is published once, whole, on the subject
    /// every node reads, and each node keeps the users it holds; smaller ones go to each
    /// user's subject. Per-user subjects are exact but cost a NATS message per user; for a
    /// big group one message per node is far cheaper (`LAYOUT.md`).
    pub broadcast_at: usize,
}

/// See [`NatsOptions::broadcast_at`]: from 32 users, publishing per user costs more than
/// the nodes' filtering on any cluster of up to 32 nodes.
pub const DEFAULT_BROADCAST_AT: usize = 32;

impl Default for NatsOptions {
    fn default() -> Self {
        Self {
            capacity: parley_core::local::DEFAULT_BUS_CAPACITY,
            subscription_capacity: 4096,
            timeout: Duration::from_secs(2),
            ping_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            max_reconnect_delay: Duration::from_secs(2),
            ping_interval: Duration::from_secs(10),
            broadcast_at: DEFAULT_BROADCAST_AT,
        }
    }
}

/// Why [`NatsBus::connect`] failed. It names the server with any user and password in
/// the URL replaced by `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsBusError {
    #[error(transparent)]
    InvalidPrefix(#[from] InvalidPrefix),
    #[error("cannot connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
}

/// Not connected to NATS now (reconnecting, or never was).
#[derive(Debug, thiserror::Error)]
#[error("not connected to NATS ({0:?})")]
struct NotConnected(State);

#[derive(Debug, thiserror::Error)]
#[error("no answer from NATS within {0:?}")]
struct TimedOut(Duration);

/// The connection, shared with the connection's event callback (weakly: a dropped
/// `NatsBus` closes its connection).
struct Link {
    client: Client,
    subjects: Subjects,
    node: NodeId,
    next_barrier: AtomicU64,
}

impl Link {
    fn check_connected(&self) -> Result<(), BusError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            state => Err(BusError::unavailable(NotConnected(state))),
        }
    }

    /// One round trip through the server on this connection: a message to a subject of
    /// our own, back to us. The server handles a connection's commands in order, so when
    /// it returns the server has every `SUB` sent before it. (async-nats' `flush` only
    /// writes the socket; a request to a subject with no responders would do too, but
    /// hangs until its timeout if anyone, a `nats sub '>'` say, listens there.)
    async fn barrier(&self) -> Result<(), BusError> {
        let serial = self.next_barrier.fetch_add(1, Ordering::Relaxed);
        let subject = self.subjects.barrier(self.node.as_str(), serial);
        let mut probe = self
            .client
            .subscribe(subject.clone())
            .await
            .map_err(BusError::unavailable)?;
        self.client
            .publish(subject, bytes::Bytes::new())
            .await
            .map_err(BusError::unavailable)?;
        match probe.next().await {
            Some(_) => Ok(()),
            None => Err(BusError::unavailable(NotConnected(State::Disconnected))),
        }
    }
}

/// `future` within `limit`, a timeout being `Unavailable`.
async fn bounded<T>(
    limit: Duration,
    future: impl std::future::Future<Output = Result<T, BusError>>,
) -> Result<T, BusError> {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| Err(BusError::unavailable(TimedOut(limit))))
}

/// An interest of this node: being subscribed (its waiters wake when the sender, held by
/// the adding call, is dropped), or held.
enum Slot {
    Adding { id: u64, done: watch::Receiver<()> },
    Held(AbortHandle),
}

/// One node's handle on the bus: its connection to NATS and its subscriptions.
pub struct NatsBus {
    link: Arc<Link>,
    options: NatsOptions,
    slots: Mutex<HashMap<Interest, Slot>>,
    next_slot: AtomicU64,
    commands: mpsc::UnboundedSender<Command>,
    subscribed: tokio::sync::Mutex<bool>,
    losses: Arc<Losses>,
}

impl NatsBus {
    /// Connects to the NATS server at `url` (`nats://host:4222`; several separated by
    /// commas; `user:password@` or `token@` for auth) as `node`, for the deployment named
    /// `prefix` (1-64 characters of `a-z A-Z 0-9 - _`, the same on every node of one
    /// cluster). Fails at once if NATS cannot be reached now: a node should not start
    /// without its bus. After that it reconnects by itself, forever.
    pub async fn connect(url: &str, prefix: &str, node: NodeId) -> Result<Self, NatsBusError> {
        Self::connect_with(url, prefix, node, NatsOptions::default()).await
    }

    /// [`NatsBus::connect`] with other options than the defaults.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        node: NodeId,
        options: NatsOptions,
    ) -> Result<Self, NatsBusError> {
        let subjects = Subjects::new(prefix)?;
        let losses = Arc::new(Losses::new());
        let watcher = Arc::new(Watcher {
            link: OnceLock::new(),
            disconnected: AtomicBool::new(false),
            losses: losses.clone(),
            timeout: options.timeout,
        });
        let max_delay = options.max_reconnect_delay;
        let callback = watcher.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("parley-{node}"))
            .connection_timeout(options.connect_timeout)
            .ping_interval(options.ping_interval)
            .subscription_capacity(options.subscription_capacity.max(1))
            .max_reconnects(None)
            .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, max_delay))
            .event_callback(move |event| {
                let watcher = callback.clone();
                async move { watcher.on(event) }
            })
            .connect(url)
            .await
            .map_err(|source| NatsBusError::Connect {
                url: redact(url),
                source,
            })?;
        let link = Arc::new(Link {
            client,
            subjects,
            node,
            // Not from 0: a handle made again under the same node name (a restart) does
            // not reuse the subjects of round trips the old one may still have in flight.
            next_barrier: AtomicU64::new(start_micros()),
        });
        let _ = watcher.link.set(Arc::downgrade(&link));
        let (commands, receiving) = mpsc::unbounded_channel();
        tokio::spawn(receiver::run(receiving, losses.clone()));
        Ok(Self {
            link,
            options: NatsOptions {
                capacity: options.capacity.max(1),
                ..options
            },
            slots: Default::default(),
            next_slot: AtomicU64::new(0),
            commands,
            subscribed: tokio::sync::Mutex::new(false),
            losses,
        })
    }

    /// Subscribes to `target`'s subject and waits until the server has the subscription.
    async fn subscribe_to(&self, target: &Target) -> Result<async_nats::Subscriber, BusError> {
        let subject = self.link.subjects.of(target)?;
        self.link.check_connected()?;
        bounded(self.options.timeout, async {
            let subscriber = self
                .link
                .client
                .subscribe(subject)
                .await
                .map_err(BusError::unavailable)?;
            self.link.barrier().await?;
            Ok(subscriber)
        })
        .await
    }

    fn start_reading(&self, target: Target, subscriber: async_nats::Subscriber) -> AbortHandle {
        let (abort, registration) = AbortHandle::new_pair();
        let route = Arc::new(Route::new(target, abort.clone()));
        // The task outlives every handle's use of it; if it is gone, so is this bus.
        let _ = self.commands.send(Command::Add {
            route,
            subscriber,
            registration,
        });
        abort
    }
}

/// Exponential from nothing (the first retry is at once) to `max`, with jitter so that
/// the nodes of a cluster do not all come back to a restarted server in the same instant.
fn reconnect_delay(attempts: usize, max: Duration) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let exponent = (attempts - 2).min(16) as u32;
    let full = Duration::from_millis(50)
        .saturating_mul(1 << exponent)
        .min(max);
    full / 2 + full.mul_f64(rand::random::<f64>() / 2.0)
}

fn start_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as u64)
}

/// `url` with the user info of each server replaced by `***`: everything between the
/// scheme and the last `@`, so a password with an unescaped `/` or `@` is hidden too.
fn redact(url: &str) -> String {
    url.split(',')
        .map(|server| {
            let start = server.find("://").map_or(0, |scheme| scheme + 3);
            match server[start..].rfind('@') {
                Some(at) => format!("{}***{}", &server[..start], &server[start + at..]),
                None => server.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What the connection's events mean for the node's stream.
struct Watcher {
    link: OnceLock<Weak<Link>>,
    disconnected: AtomicBool,
    losses: Arc<Losses>,
    timeout: Duration,
}

impl Watcher {
    fn on(&self, event: Event) {
        match event {
            Event::Disconnected => {
                self.disconnected.store(true, Ordering::Relaxed);
                tracing::warn!("NATS connection lost; reconnecting");
            }
            // async-nats sends the subscriptions again as it reconnects; once a round trip
            // shows the server has them, whatever was published meanwhile is the loss.
            Event::Connected if self.disconnected.swap(false, Ordering::Relaxed) => {
                tracing::info!("NATS connection back");
                let link = self.link.get().and_then(Weak::upgrade);
                let (losses, timeout) = (self.losses.clone(), self.timeout);
                tokio::spawn(async move {
                    if let Some(link) = link {
                        let _ = bounded(timeout, link.barrier()).await;
                    }
                    losses.bump("reconnect");
                });
            }
            Event::SlowConsumer(_) => self.losses.bump("slow_consumer"),
            _ => {}
        }
    }
}

#[async_trait]
impl Bus for NatsBus {
    fn node_id(&self) -> &NodeId {
        &self.link.node
    }

    async fn subscribe(&self) -> Result<BusReceiver, BusError> {
        let mut subscribed = self.subscribed.lock().await;
        if *subscribed {
            return Err(BusError::Subscription);
        }
        let everyone = self.subscribe_to(&Target::All).await?;
        let (sender, events) = mpsc::channel(self.options.capacity);
        let _ = self.commands.send(Command::Open(sender));
        self.start_reading(Target::All, everyone);
        *subscribed = true;
        Ok(BusReceiver::with_losses(events, self.losses.watch()))
    }

    async fn add_interest(&self, interest: Interest) -> Result<(), BusError> {
        let target = Target::from(&interest);
        self.link.subjects.of(&target)?;
        // Claim the interest, or wait for whoever is adding it and look again.
        let (id, _done) = loop {
            let mut pending = {
                let mut slots = self.slots.lock();
                match slots.get(&interest) {
                    Some(Slot::Held(_)) => return Ok(()),
                    Some(Slot::Adding { done, .. }) => done.clone(),
                    None => {
                        let id = self.next_slot.fetch_add(1, Ordering::Relaxed);
                        let (done, waiting) = watch::channel(());
                        slots.insert(interest.clone(), Slot::Adding { id, done: waiting });
                        break (id, done);
                    }
                }
            };
            let _ = pending.changed().await;
        };
        // If this call fails or is dropped midway, the claim goes (and `_done` wakes the
        // waiters, who try themselves).
        let mut claim = Claim {
            slots: &self.slots,
            interest: &interest,
            id,
            settled: false,
        };
        let subscriber = self.subscribe_to(&target).await?;
        let mut slots = self.slots.lock();
        match slots.get_mut(&interest) {
            Some(slot @ Slot::Adding { .. }) if claim.is_ours(slot) => {
                *slot = Slot::Held(self.start_reading(target, subscriber));
                claim.settled = true;
            }
            // Removed while being added: dropping the subscriber unsubscribes.
            _ => {}
        }
        Ok(())
    }

    async fn remove_interest(&self, interest: Interest) -> Result<(), BusError> {
        if let Some(Slot::Held(abort)) = self.slots.lock().remove(&interest) {
            abort.abort();
        }
        Ok(())
    }

    async fn publish(&self, events: Vec<BusEvent>) -> Result<(), BusError> {
        if events.is_empty() {
            return Ok(());
        }
        // Every subject is checked before anything is sent: an id that is not one token
        // refuses the whole call rather than leave half of it published.
        for event in &events {
            self.link.subjects.check(event)?;
        }
        self.link.check_connected()?;
        // Bounded per message, not per call: async-nats takes a message at once while its
        // queue to the socket has room and waits only while NATS takes nothing (down, or
        // not reading), which `timeout` ends. A slow but working NATS slows a big batch
        // down (backpressure on the fan-out) instead of failing it.
        let limit = self.options.timeout;
        for event in &events {
            let broadcast = wire::is_broadcast(event, self.options.broadcast_at);
            let payload = wire::encode(event, broadcast)?;
            for subject in self.link.subjects.for_event(event, broadcast)? {
                let sent = self.link.client.publish(subject, payload.clone());
                bounded(limit, async { sent.await.map_err(publish_error) }).await?;
            }
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.link.check_connected()?;
        bounded(self.options.ping_timeout, self.link.barrier()).await
    }
}

fn publish_error(error: async_nats::PublishError) -> BusError {
    match error.kind() {
        async_nats::client::PublishErrorKind::Send => BusError::unavailable(error),
        _ => BusError::Codec {
            source: Box::new(error),
        },
    }
}

/// An interest being added by one call: dropped before that call makes it `Held`, it
/// leaves the slot to the next caller.
struct Claim<'a> {
    slots: &'a Mutex<HashMap<Interest, Slot>>,
    interest: &'a Interest,
    id: u64,
    /// Made `Held`: nothing to undo.
    settled: bool,
}

impl Claim<'_> {
    fn is_ours(&self, slot: &Slot) -> bool {
        matches!(slot, Slot::Adding { id, .. } if *id == self.id)
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut slots = self.slots.lock();
        if slots
            .get(self.interest)
            .is_some_and(|slot| self.is_ours(slot))
        {
            slots.remove(self.interest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_named_without_credentials() {
        assert_eq!(
            redact("nats://alice:s3cret@nats-1:4222,tls://tok@nats-2,nats-3:4222"),
            "nats://***@nats-1:4222,tls://***@nats-2,nats-3:4222"
        );
        assert_eq!(redact("user:pw@host"), "***@host");
        assert_eq!(redact("nats://u:a/b@c@host:4222"), "nats://***@host:4222");
    }

    #[test]
    fn reconnects_back_off_to_the_cap_with_jitter() {
        let max = Duration::from_secs(2);
        assert_eq!(reconnect_delay(1, max), Duration::ZERO);
        let second = reconnect_delay(2, max);
        assert!(second >= Duration::from_millis(25) && second <= Duration::from_millis(50));
        for attempts in [10, 1000, usize::MAX] {
            let delay = reconnect_delay(attempts, max);
            assert!(delay >= max / 2 && delay <= max, "{delay:?}");
        }
    }
}
