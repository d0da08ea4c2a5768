//! The parley wire protocol, v1: every type that crosses a socket.
//!
//! This crate is the contract of `shared/protocol.md` (and its compatible extensions in
//! `docs/protocol.md`) written as serde types. It owns names and shapes only: no I/O, and
//! no validation beyond what serde does except pure predicates on a wire value that both
//! sides must agree on (`ContentType::is_sendable`), so the SDK, CLI and load generator
//! can use it without compiling a server. Field and variant names match the protocol text exactly,
//! so one grep finds both.

pub mod error;
pub mod frames;
pub mod ids;
pub mod push;
pub mod rest;
pub mod time;
pub mod types;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use frames::{ClientFrame, ServerFrame};
pub use ids::{ConversationId, DeviceId, MediaId, MessageId, UserId};
pub use push::PushKind;
pub use time::Timestamp;
pub use types::*;

/// Protocol limits and timings that both sides must agree on (defaults; the server's
/// configuration may change the server-side ones).
pub mod limits {
    /// Maximum size of a message `content`, in bytes.
    pub const MAX_CONTENT_BYTES: usize = 64 * 1024;
    /// Maximum size of one WebSocket text frame, in bytes.
    pub const MAX_FRAME_BYTES: usize = 128 * 1024;
    /// Maximum number of members of a group.
    pub const MAX_GROUP_MEMBERS: usize = 1024;
    /// A client sends `ping` this often.
    pub const HEARTBEAT_INTERVAL_SECS: u64 = 30;
    /// The server drops a connection that has been silent this long.
    pub const HEARTBEAT_TIMEOUT_SECS: u64 = 90;
    /// A typing indicator is shown at most this long without a new `typing`.
    pub const TYPING_TTL_SECS: u64 = 5;
    /// Typing is not relayed in groups larger than this.
    pub const TYPING_MAX_GROUP: usize = 20;
    /// Maximum `client_msg_id` length.
    pub const MAX_CLIENT_MSG_ID: usize = 128;
    /// Maximum page size of history calls.
    pub const MAX_HISTORY_PAGE: u32 = 100;
    /// How long after sending the sender may edit or delete a message for everyone.
    pub const EDIT_WINDOW_SECS: u64 = 48 * 3600;
    /// Most conversations one forward may copy a message to.
    pub const MAX_FORWARD_TARGETS: usize = 5;
    /// Most users one message may mention.
    pub const MAX_MENTIONS: usize = 64;
    /// Maximum page size of search.
    pub const MAX_SEARCH_PAGE: u32 = 50;
    /// Longest search query, in characters.
    pub const MAX_SEARCH_QUERY: usize = 256;
    /// Largest upload, in bytes (100 MiB; a server may be configured lower or higher).
    pub const MAX_MEDIA_BYTES: u64 = 100 * 1024 * 1024;
    /// The size of each part of an upload sent in parts (`GET /media/{id}/parts`), the
    /// last one excepted (8 MiB).
    pub const MEDIA_PART_BYTES: u64 = 8 * 1024 * 1024;
    /// Most attachments one message carries.
    pub const MAX_ATTACHMENTS: usize = 10;
    /// Longest media `filename`, in bytes.
    pub const MAX_FILENAME_BYTES: usize = 255;
    /// What disappearing messages may be set to, in seconds, besides 0 (off): 24 h, 7 d,
    /// 90 d.
    pub const DISAPPEARING_CHOICES: [u32; 3] = [86_400, 604_800, 7_776_000];
}
