//! The core's error type, in the domain's words.
//!
//! The gateway maps each variant to a wire `ErrorCode` in one place ([`Error::code`]);
//! internal causes (`Store`, `Bus`) are logged there and never sent to clients verbatim.

use crate::store::StoreError;
use parley_proto::ErrorCode;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("a group has at most {limit} members")]
    GroupFull { limit: usize },
    #[error("too many requests, retry in {} ms", retry_after.as_millis())]
    RateLimited { retry_after: Duration },
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("message bus: {0}")]
    Bus(String),
}

impl Error {
    /// The wire code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Invalid(_) => ErrorCode::InvalidRequest,
            Error::ContentTooLarge { .. } => ErrorCode::ContentTooLarge,
            Error::Unauthorized => ErrorCode::Unauthorized,
            Error::InvalidCredentials => ErrorCode::InvalidCredentials,
            Error::UsernameTaken => ErrorCode::UsernameTaken,
            Error::ClientMsgIdReused => ErrorCode::ClientMsgIdReused,
            Error::NotMember => ErrorCode::NotMember,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::GroupFull { .. } => ErrorCode::GroupFull,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::ShuttingDown => ErrorCode::Unavailable,
            Error::Store(StoreError::NotFound) => ErrorCode::NotFound,
            Error::Store(StoreError::Conflict(_)) => ErrorCode::InvalidRequest,
            Error::Store(StoreError::Unavailable(_)) => ErrorCode::Unavailable,
            Error::Bus(_) => ErrorCode::Unavailable,
        }
    }

    /// The message safe to show a client: internal causes are replaced by a generic text.
    pub fn public_message(&self) -> String {
        match self {
            Error::Store(StoreError::Unavailable(_)) | Error::Bus(_) => {
                "storage is temporarily unavailable".to_owned()
            }
            Error::Store(StoreError::Conflict(_)) => "conflicting request".to_owned(),
            Error::Store(StoreError::NotFound) => "not found".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after } => Some(retry_after.as_millis().max(1) as u64),
            _ => None,
        }
    }

    /// Whether the cause is on the server's side and worth a log line.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Error::Store(StoreError::Unavailable(_)) | Error::Bus(_)
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
