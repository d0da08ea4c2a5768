//! The node's one receiving task: it reads every subscription of the node, decodes, and
//! hands events to the node's stream without ever waiting on it.
//!
//! A node holds a subscription per user with a socket on it and per watched presence,
//! tens of thousands on a busy node. They are read through one `SelectAll`, which polls
//! only the subscriptions that were woken (a map of streams polled in turn would touch
//! all of them for every message). Subscriptions come in through a command channel and go
//! out by being aborted: `remove_interest` flips the subscription's `AbortHandle`, its
//! stream ends at its next poll, `SelectAll` drops it, and dropping an async-nats
//! `Subscriber` closes its channel and sends `UNSUB` to the server.
//!
//! A `Deliver` to a big audience comes once on the subject every node reads, with all its
//! users: this task keeps the users the node holds a subscription for (it sees every
//! subscription come in, and an aborted one no longer counts) and passes the event on
//! for those only, or not at all, as if it had come on their subjects.
//!
//! The node's stream is bounded and this task uses `try_send`: a node that does not read
//! loses events (counted in `parley_bus_dropped_total` and in the stream's `losses`),
//! and neither NATS nor any other node is held up by it.

use crate::subject::Target;
use crate::wire::Decoder;
use futures::stream::{AbortHandle, AbortRegistration, Abortable, BoxStream, SelectAll};
use futures::StreamExt;
use parley_core::bus::BusEvent;
use parley_proto::UserId;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

/// The counter behind `BusReceiver::losses`, shared by this task (a full stream) and the
/// connection's event callback (a reconnect, a slow consumer).
pub(crate) struct Losses(watch::Sender<u64>);

impl Losses {
    pub(crate) fn new() -> Self {
        Self(watch::channel(0).0)
    }

    pub(crate) fn bump(&self, cause: &'static str) {
        metrics::counter!("parley_bus_losses_total", "cause" => cause).increment(1);
        self.0.send_modify(|count| *count += 1);
    }

    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// What one subscription is for, attached to every message it yields.
pub(crate) struct Route {
    target: Target,
    /// The subject's user as a `Deliver`'s `user_ids`, allocated once per subscription.
    user: Arc<[UserId]>,
    abort: AbortHandle,
}

impl Route {
    pub(crate) fn new(target: Target, abort: AbortHandle) -> Self {
        let user = match &target {
            Target::User(user_id) => Arc::from([user_id.clone()]),
            Target::Presence(_) | Target::All => Arc::from([]),
        };
        Self {
            target,
            user,
            abort,
        }
    }
}

pub(crate) enum Command {
    /// Read this subscription from now on (until its route's handle is aborted).
    Add {
        route: Arc<Route>,
        subscriber: async_nats::Subscriber,
        registration: AbortRegistration,
    },
    /// The node's stream is open: events go there from now on (before, they are dropped,
    /// as no one would read them).
    Open(mpsc::Sender<BusEvent>),
}

/// How many subscriptions may come in before `held` is swept of ended ones (or as many as
/// it holds, whichever is more: sweeping stays linear in the subscriptions added).
const SWEEP_EVERY: usize = 1024;

type Routed = BoxStream<'static, (Arc<Route>, async_nats::Message)>;

/// Runs until every sender of `commands` is gone (the `NatsBus` was dropped); then its
/// subscriptions are dropped (unsubscribed) and the node's stream ends.
pub(crate) async fn run(mut commands: mpsc::UnboundedReceiver<Command>, losses: Arc<Losses>) {
    let mut streams: SelectAll<Routed> = SelectAll::new();
    let mut forwarder = Forwarder {
        sink: None,
        decoder: Decoder::default(),
        dropping: false,
        losses,
        held: HashMap::new(),
        added: 0,
    };
    loop {
        tokio::select! {
            // Commands first: a subscription added is read from its first message.
            biased;
            command = commands.recv() => match command {
                Some(Command::Add { route, subscriber, registration }) => {
                    forwarder.hold(&route);
                    let tagged = route.clone();
                    let stream = Abortable::new(subscriber, registration)
                        .map(move |message| (tagged.clone(), message));
                    streams.push(stream.boxed());
                }
                Some(Command::Open(sink)) => forwarder.sink = Some(sink),
                None => break,
            },
            // An empty `SelectAll` is `Ready(None)` at once: not polled then, or this loop
            // would spin.
            Some((route, message)) = streams.next(), if !streams.is_empty() => {
                forwarder.forward(&route, &message.payload);
            }
        }
    }
}

struct Forwarder {
    sink: Option<mpsc::Sender<BusEvent>>,
    decoder: Decoder,
    /// Whether the last event was dropped for a full stream: a run of drops is one loss.
    dropping: bool,
    losses: Arc<Losses>,
    /// The users this node has a subscription for, by the handle that ends it: what a
    /// broadcast `Deliver` is narrowed to.
    held: HashMap<UserId, AbortHandle>,
    /// Subscriptions added since `held` was last swept of ended ones.
    added: usize,
}

impl Forwarder {
    /// Remembers a user subscription; now and then forgets the ended ones.
    fn hold(&mut self, route: &Route) {
        if let Target::User(user_id) = &route.target {
            self.held.insert(user_id.clone(), route.abort.clone());
            self.added += 1;
            if self.added >= SWEEP_EVERY.max(self.held.len()) {
                self.held.retain(|_, abort| !abort.is_aborted());
                self.added = 0;
            }
        }
    }

    /// A broadcast `Deliver` with only the users this node holds, or `None` if it holds
    /// none of them.
    fn narrow(&self, event: BusEvent) -> Option<BusEvent> {
        let BusEvent::Deliver {
            user_ids,
            except_connection,
            frame,
            created_at_ms,
        } = event
        else {
            return Some(event);
        };
        let held = |user_id: &&UserId| {
            self.held
                .get(*user_id)
                .is_some_and(|abort| !abort.is_aborted())
        };
        let ours: Arc<[UserId]> = user_ids.iter().filter(held).cloned().collect();
        (!ours.is_empty()).then_some(BusEvent::Deliver {
            user_ids: ours,
            except_connection,
            frame,
            created_at_ms,
        })
    }

    fn forward(&mut self, route: &Route, payload: &bytes::Bytes) {
        // Aborted since it yielded: `remove_interest` has returned, and what the
        // subscription still holds is not for this node any more.
        if route.abort.is_aborted() {
            return;
        }
        let Some(sink) = &self.sink else {
            return;
        };
        let event = match self.decoder.decode(payload, &route.target, &route.user) {
            Ok(event) if matches!(route.target, Target::All) => match self.narrow(event) {
                Some(event) => event,
                None => return,
            },
            Ok(event) => event,
            Err(error) => {
                metrics::counter!("parley_bus_dropped_total", "reason" => "undecodable")
                    .increment(1);
                tracing::warn!(%error, "bus message dropped");
                return;
            }
        };
        match sink.try_send(event) {
            Ok(()) => self.dropping = false,
            Err(TrySendError::Full(_)) => {
                metrics::counter!("parley_bus_dropped_total", "reason" => "stream_full")
                    .increment(1);
                if !std::mem::replace(&mut self.dropping, true) {
                    self.losses.bump("stream_full");
                }
            }
            // The node's dispatcher is gone: nobody reads, nothing to count.
            Err(TrySendError::Closed(_)) => self.sink = None,
        }
    }
}
