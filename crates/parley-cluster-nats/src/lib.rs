//! The cluster backend of the `Bus` port on core NATS: [`NatsBus`], one node's handle,
//! over a NATS connection of its own.
//!
//! It behaves as its in-process reference `parley_core::local::LocalBus` within the
//! port's contract and passes the same conformance suite (`tests/conformance.rs`), with
//! one declared difference: a node that does not read its stream loses events instead of
//! holding publishers up (`WhenFull::Drop`), and says so through `BusReceiver::losses`.
//! Core NATS keeps nothing: the bus is a doorbell, the store is the truth, and nothing
//! here needs JetStream.
//!
//! # Subject layout
//!
//! Every subject starts with `parley.<prefix>.`, the prefix given at `connect` (the same
//! on every node of one cluster; tests use a fresh one each):
//!
//! | subject | who subscribes | what is published there |
//! |---|---|---|
//! | `u.<user_id>` | nodes with `Interest::User` (a socket of the user) | `Deliver` to fewer than `broadcast_at` users (32), once per user; `CloseDevice` |
//! | `p.<user_id>` | nodes with `Interest::Presence` (a socket watching the user) | `Presence` about the user |
//! | `all` | every node, from `subscribe` | `MembershipChanged`; `Deliver` to `broadcast_at` users or more, once, whole |
//! | `barrier.<node>.<n>` | that node, for one round trip | nothing but the round trip's empty message |
//!
//! A subject per user makes NATS do the addressing: a message goes exactly to the nodes
//! with a socket of its user, and a node takes or drops one user's events with one
//! `SUB`/`UNSUB`. The price is that a group message is `M` NATS messages for `M` members
//! (all with the one payload encoded once, see `wire`); the alternative, one subject all
//! nodes read and filter, would cost every 1:1 message `N - 1` useless deliveries and
//! every node the decoding of the whole cluster's traffic. So both are used: per user
//! below `NatsOptions::broadcast_at` users (32: 1:1 chats and small groups, the bulk of
//! traffic), and from there one message on `all` that each node narrows to the users it
//! holds (a subscription it has, not aborted) or drops, since a big group has members on
//! most nodes anyway. `LAYOUT.md` has the measurements. User ids go into subjects as they are, so an id that is not exactly one
//! subject token (empty, or with `.`, `*`, `>`, whitespace) is refused as `Codec` before
//! anything is sent: a bad id can never become a wildcard.
//!
//! # The contract on NATS
//!
//! - **Addressed, once per user per node.** A node holds one subscription per interest (a
//!   set, not a count), so it receives a group message as one event per local member,
//!   each with that one user in `user_ids`: split, as the port allows.
//! - **Ordered per publisher and addressee.** NATS keeps one connection's messages to one
//!   subscription in order, and each node publishes on its own connection. Events on
//!   different subjects (two users, a user and `all`) have no order between them: one
//!   conversation's messages keep their order while its audience stays on one side of
//!   `broadcast_at`.
//! - **Effective when it returns.** `add_interest` subscribes, then waits for a round trip
//!   through the server on the same connection: the server handles one connection's
//!   commands in order, so it has the `SUB` before anything published later. That holds
//!   on one NATS server. In a NATS *cluster* of several servers, interest travels between
//!   servers asynchronously: an event published on another server just after may miss the
//!   node (a lost doorbell, caught up by `sync`; the node's next event for that user
//!   arrives as usual).
//! - **Bounded.** The node's stream is a bounded channel filled with `try_send`: when
//!   full, events are dropped (`parley_bus_dropped_total{reason="stream_full"}`) and
//!   `losses` moves once per run of drops. `losses` also moves when the connection comes
//!   back after a break (events published meanwhile are gone; async-nats re-subscribes by
//!   itself, and `losses` moves once the server has the subscriptions again) and when
//!   async-nats drops messages for a subscription that is full (a slow consumer).
//!   `add_interest`, `subscribe` and `ping` wait at most their bound ([`NatsOptions`]),
//!   `publish` at most that bound for each message NATS does not take, and they fail as
//!   `Unavailable`; while disconnected they fail at once.
//!
//! # What NATS must be
//!
//! A NATS server (core NATS only; tested on 2.9) that all nodes reach, with echo allowed
//! (the publisher's node is often a recipient too). A node's connection carries every
//! event of its users, so the server's `max_pending` for a client must exceed a burst
//! (the default 64 MB does); a node that falls further behind is cut off by the server
//! and reconnects, which counts as a loss. The maximum payload (1 MB by default) must
//! exceed the largest frame.

mod bus;
mod receiver;
mod subject;
mod wire;

pub use bus::{NatsBus, NatsBusError, NatsOptions};
pub use subject::InvalidPrefix;
