//! What a [`Connection`](crate::Connection) tells the app: [`Event`].
//!
//! One variant per server frame (minus `ready`, which becomes [`Event::Connected`]) plus
//! the connection's lifecycle. `new_message` arrives here at most once per
//! `(conversation_id, seq)`; everything else is passed through as the server sent it.

use parley_proto::{
    frames::Cursors, Conversation, ConversationId, DeviceId, ErrorCode, Message, MessageId,
    PresenceStatus, ReceiptStatus, Timestamp, UserId,
};
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
    /// Someone received / read up to `up_to_seq`.
    Receipt {
        conversation_id: ConversationId,
        user_id: UserId,
        status: ReceiptStatus,
        up_to_seq: i64,
    },
    Typing {
        conversation_id: ConversationId,
        user_id: UserId,
        is_typing: bool,
    },
    Presence {
        user_id: UserId,
        status: PresenceStatus,
        last_seen: Option<Timestamp>,
    },
    /// A conversation was created, renamed or its members changed.
    ConversationUpdated(Conversation),
    /// This user is no longer a member of the conversation.
    ConversationRemoved { conversation_id: ConversationId },
    /// A `sync` is complete; `cursors` holds the last `seq` of every conversation.
    SyncDone { cursors: Cursors },
    /// The server refused a frame. For a send, `client_msg_id` says which; a
    /// `rate_limited` send is retried by the SDK after `retry_after_ms`, any other
    /// refused send is dropped from the outbox (its `SendHandle` gets the error).
    Error {
        code: ErrorCode,
        message: String,
        client_msg_id: Option<String>,
        retry_after_ms: Option<u64>,
    },
    /// The answer to a heartbeat `ping`.
    Pong,
}

impl Event {
    /// Whether no event follows this one.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Closed { .. })
    }
}
