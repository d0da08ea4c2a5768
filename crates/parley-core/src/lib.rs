//! parley's core domain, independent of transport and storage.
//!
//! Layout:
//! - [`store`], [`bus`], [`presence`]: the ports. Backends (SQLite, PostgreSQL, NATS, Redis)
//!   implement them; [`local`] holds the in-process `Bus` and `PresenceRegistry` used by the
//!   embedded mode and as the reference for the conformance suites.
//! - [`chat`]: the operations a user can do ([`Chat`]), with every membership and limit
//!   check; the gateway calls nothing else.
//! - [`commit`]: group commit of messages (many sends, one transaction) and the fan-out
//!   that follows a commit.
//! - [`receipts`]: delivered/read pointers, coalesced in memory and flushed in batches.
//! - [`auth`], [`ratelimit`], [`ids`], [`error`]: supporting pieces.
//!
//! Invariant: this crate imports no transport or storage crate (a test checks it); only
//! the store assigns `seq`; no ack is produced before the store has committed.

pub mod auth;
pub mod bus;
pub mod chat;
pub mod commit;
pub mod config;
pub mod error;
pub mod ids;
pub mod local;
pub mod media;
pub mod membership;
pub mod message_state;
pub mod presence;
pub mod push;
pub mod ratelimit;
pub mod receipts;
pub mod rules;
pub mod search;
pub mod store;
pub mod typing;

pub use bus::{Bus, BusEvent, ConnectionId, NodeId};
pub use chat::{Chat, Ports, Session};
pub use config::CoreConfig;
pub use error::Error;
pub use media::MediaStore;
pub use presence::PresenceRegistry;
pub use ratelimit::RateLimiter;
pub use store::{Store, StoreError};
