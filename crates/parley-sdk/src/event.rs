//! What a [`Connection`](crate::Connection) tells the app: [`Event`].
//!
//! An event is either the connection's own lifecycle (`Connected`, `Disconnected`,
//! `Reconnecting`, `Closed`), one of the two frames the SDK reshapes (`msg_ack`, which
//! settles a send, and `new_message`, delivered at most once per
//! `(conversation_id, seq)`), or any other server frame carried as the protocol's own
//! [`ServerFrame`] in [`Event::Frame`], after the SDK applied it to its state.
//!
//! So the SDK never restates a frame's fields: a new server frame is one name added to
//! the pass-through arm of the exhaustive match in `Driver::handle_text`
//! (`connection.rs`), which the compiler points at.

use parley_proto::{ConversationId, DeviceId, Message, MessageId, ServerFrame, Timestamp, UserId};
use std::time::Duration;

/// The server's `msg_ack`: the message is stored durably.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgAck {
    pub client_msg_id: String,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub seq: i64,
    pub created_at: Timestamp,
}

/// Why a connection ended for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The app called `close()`, or dropped every handle.
    ByClient,
    /// The token was refused (close code 4001, HTTP 401 on the upgrade, or an
    /// `unauthorized` error frame). Log in again to get a new token.
    Unauthorized,
    /// The connection was lost and reconnecting is disabled.
    Lost(String),
    /// `max_reconnect_attempts` consecutive reconnects failed.
    GaveUp { attempts: u32 },
}

/// One thing that happened on a connection, in the order it happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// `ready` was received; `resumed` is `false` for the first connection and `true`
    /// after every reconnect. A `sync` and the resend of unacknowledged sends follow.
    Connected {
        user_id: UserId,
        device_id: DeviceId,
        resumed: bool,
    },
    /// The socket broke; a [`Event::Reconnecting`] follows unless reconnecting is off.
    Disconnected { reason: String },
    /// Waiting `delay` before reconnect attempt `attempt` (from 1).
    Reconnecting { attempt: u32, delay: Duration },
    /// Terminal: no more events follow.
    Closed { reason: CloseReason },
    /// One of this device's sends was stored (`msg_ack`).
    MsgAck(MsgAck),
    /// A message, seen for the first time by this device (`new_message` or `sync`).
    /// This device's own sends are reported by [`Event::MsgAck`] instead.
    NewMessage(Message),
    /// Any other server frame, as the server sent it: `receipt`, `typing`, `presence`,
    /// `conversation_updated`, `pong`, and three the SDK acts on first:
    /// `conversation_removed` (the conversation's cursor is forgotten), `sync_done` (the
    /// cursors are applied) and `error` (a refused send is retried after
    /// `retry_after_ms` when `rate_limited`, else its `SendHandle` gets the error;
    /// `unauthorized` without a `client_msg_id` ends the connection). Never `ready`,
    /// `msg_ack` or `new_message`, which are the variants above.
    Frame(ServerFrame),
}

impl Event {
    /// Whether no event follows this one.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Closed { .. })
    }
}
