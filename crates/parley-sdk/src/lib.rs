//! parley's Rust client SDK: a REST [`Client`] and a self-healing real-time [`Connection`].
//!
//! `Client` wraps every `/api/v1` call with `parley_proto::rest` types. `Connection` owns
//! one WebSocket and turns it into a stream of [`Event`]s, keeping the protocol's promises
//! on the client side: heartbeat, reconnect with backoff, `sync` from tracked cursors,
//! resend of unacknowledged sends, dedup by `(conversation_id, seq)` and batched `ack`s.
//!
//! ```no_run
//! # async fn demo() -> Result<(), parley_sdk::SdkError> {
//! use parley_sdk::{Client, Event};
//! let client = parley_sdk::Client::new("http://127.0.0.1:8080")?;
//! client.login("alice", "correct horse").await?;
//! let mut connection = client.connect().await?;
//! let conversation = client.conversations(None, None).await?.conversations.remove(0);
//! let ack = connection.send_and_wait(conversation.conversation_id, "hello").await?;
//! println!("stored as seq {}", ack.seq);
//! while let Some(event) = connection.next_event().await {
//!     if let Event::NewMessage(message) = event {
//!         println!("{}: {}", message.sender_id, message.content);
//!     }
//! }
//! # Ok(()) }
//! ```

mod backoff;
mod client;
mod connection;
mod error;
mod event;
mod outbox;
mod tracker;

pub use backoff::Backoff;
pub use client::Client;
pub use connection::{
    new_client_msg_id, Connection, ConnectionConfig, ConnectionHandle, ConnectionStats,
    EventStream, OutgoingMessage, SendHandle, CLOSE_CODE_UNAUTHORIZED,
};
pub use error::SdkError;
pub use event::{CloseReason, Event, MsgAck};
pub use tracker::{CursorTracker, Observation};

/// The wire types, re-exported so apps need not depend on `parley-proto` themselves.
pub use parley_proto as proto;
/// What [`Event::Frame`] carries: the server frames the SDK passes on as they came.
pub use parley_proto::ServerFrame;
