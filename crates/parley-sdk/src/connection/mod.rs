//! The real-time connection: one WebSocket that heals itself, seen as a stream of events.
//!
//! [`Connection::connect`] opens `/ws?token=…` and waits for `ready`; a driver task then
//! owns the socket. It pings, reconnects with jittered backoff, `sync`s from the cursors
//! it tracks, resends unacknowledged sends with their `client_msg_id`, deduplicates
//! `new_message` and batches `ack`s. Apps talk to it through a cloneable
//! [`ConnectionHandle`]; it never reconnects after the token is refused (close 4001).
//!
//! Layout: [`config`] holds what the app configures and sends ([`ConnectionConfig`],
//! [`OutgoingMessage`]); [`handle`] the app-facing halves ([`ConnectionHandle`],
//! [`EventStream`]) and the commands they queue; [`socket`] the upgrade up to `ready`;
//! [`driver`] the task that owns the socket afterwards. This file ties them together.

mod config;
mod driver;
mod handle;
mod socket;

pub use config::{new_client_msg_id, ConnectionConfig, OutgoingMessage};
pub use handle::{ConnectionHandle, ConnectionStats, EventStream, SendHandle};

use crate::{Event, SdkError};
use driver::Driver;
use socket::open_socket;
use tokio::sync::mpsc;

/// The close code the server uses when the token is revoked or unknown.
pub const CLOSE_CODE_UNAUTHORIZED: u16 = 4001;

/// A real-time connection: a [`ConnectionHandle`] (via `Deref`) plus its [`EventStream`].
///
/// The app must keep reading events: they queue without bound until read.
#[derive(Debug)]
pub struct Connection {
    handle: ConnectionHandle,
    events: EventStream,
}

impl std::ops::Deref for Connection {
    type Target = ConnectionHandle;

    fn deref(&self) -> &ConnectionHandle {
        &self.handle
    }
}

impl Connection {
    /// Opens the socket and waits for `ready`. Errors here are returned, not retried:
    /// [`SdkError::Unauthorized`] for a refused token, transport errors otherwise.
    /// The first event is [`Event::Connected`].
    pub async fn connect(config: ConnectionConfig) -> Result<Connection, SdkError> {
        let opened = open_socket(&config).await?;
        let (commands_sender, commands) = mpsc::unbounded_channel();
        let (events_sender, events) = mpsc::unbounded_channel();
        let handle = ConnectionHandle {
            commands: commands_sender,
            user_id: opened.user_id.clone(),
            device_id: opened.device_id.clone(),
        };
        let driver = Driver::new(config, commands, events_sender);
        tokio::spawn(driver.run(opened));
        Ok(Connection {
            handle,
            events: EventStream { events },
        })
    }

    /// The next event; `None` after [`Event::Closed`].
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.next_event().await
    }

    /// The next event if one is waiting.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_next_event()
    }

    /// A clone of the sending half.
    pub fn handle(&self) -> ConnectionHandle {
        self.handle.clone()
    }

    /// Splits into the sending half and the event stream, e.g. to read events in one
    /// task and send from others.
    pub fn into_parts(self) -> (ConnectionHandle, EventStream) {
        (self.handle, self.events)
    }
}
