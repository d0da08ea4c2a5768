//! The core's error type, in the domain's words.
//!
//! The core does not know the wire: the gateway maps each variant to a wire code and a
//! text for clients in one place (`parley-gateway/src/error.rs`), and logs the internal
//! causes (the ports' errors) there. Port errors keep their sources.

use crate::bus::BusError;
use crate::presence::PresenceError;
use crate::ratelimit::RateLimitError;
use crate::store::StoreError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request breaks a rule of its fields; the text says which, for the client.
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("message content is larger than {limit} bytes")]
    ContentTooLarge { limit: usize },
    #[error("not authenticated")]
    Unauthorized,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("username is already taken")]
    UsernameTaken,
    #[error("client_msg_id was already used for a message in another conversation; make a new one per message")]
    ClientMsgIdReused,
    #[error("not a member of this conversation")]
    NotMember,
    /// A role or ownership rule refuses the change; the text says which.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("a group has at most {limit} members")]
    GroupFull { limit: usize },
    /// An edit, or the sender's delete, after the edit window.
    #[error("the message is too old to be edited or deleted by its sender")]
    EditWindowPassed,
    /// Only the message's sender may do this.
    #[error("only the sender may change this message")]
    NotSender,
    /// The message a change names does not exist, or was deleted.
    #[error("no such message (or it was deleted)")]
    TargetNotFound,
    /// A block between the caller and the other user refuses this.
    #[error("{0}")]
    Blocked(&'static str),
    #[error("at most {limit} conversations can be pinned")]
    TooManyPinned { limit: usize },
    /// An upload past the size limit, past the user's quota, or a picture with more pixels
    /// than the server decodes; the text says which.
    #[error("{0}")]
    MediaTooLarge(String),
    /// The upload has not arrived whole, or is not completed yet; the text says which.
    #[error("{0}")]
    MediaNotReady(String),
    /// The media backend failed or cannot be reached.
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    #[error("too many requests, retry in {} ms", retry_after.as_millis())]
    RateLimited { retry_after: Duration },
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Other nodes kept changing the conversation while this change was decided.
    #[error("the conversation is busy, retry")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Presence(#[from] PresenceError),
    #[error(transparent)]
    RateLimiter(#[from] RateLimitError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a message to a direct chat was refused by a block (either way).
pub const BLOCKED_DIRECT_CHAT: &str =
    "this direct chat takes no messages: one of you blocks the other, or the account was deleted";
