//! The SDK's one error type, [`SdkError`], in the words of a client.
//!
//! REST failures carry the server's `ErrorCode` parsed from `{"error":{…}}`; WebSocket
//! refusals of a send carry the `error` frame's code. Transport and decoding failures keep
//! their source. Nothing here retries: retrying is the caller's (or `Connection`'s) job.

use parley_proto::ErrorCode;

/// Everything that can go wrong in a REST call or a real-time connection.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The server answered with an error body (`{"error":{"code","message"}}`).
    #[error("server refused the request ({status} {}): {message}", code.as_str())]
    Api {
        /// The HTTP status.
        status: u16,
        code: ErrorCode,
        message: String,
        /// Set with `rate_limited`: how long to wait before trying again.
        retry_after_ms: Option<u64>,
    },
    /// The server answered with an error status and a body that is not an error body.
    #[error("unexpected HTTP status {status}: {body}")]
    UnexpectedStatus { status: u16, body: String },
    /// An `error` frame refused a frame sent on the WebSocket (e.g. a `send_message`).
    #[error("server refused the frame ({}): {message}", code.as_str())]
    Rejected { code: ErrorCode, message: String },
    /// The token is missing, unknown or revoked (HTTP 401 on the upgrade, close code 4001).
    /// A `Connection` never reconnects after this.
    #[error("unauthorized: the token was refused")]
    Unauthorized,
    /// No token: call `login` or `register` first, or build the client with a token.
    #[error("not logged in")]
    NotLoggedIn,
    /// The base URL cannot be used.
    #[error("invalid server URL: {0}")]
    InvalidUrl(String),
    /// HTTP transport failure (connect, TLS, timeout, body read).
    #[error("HTTP transport: {0}")]
    Http(#[from] reqwest::Error),
    /// WebSocket transport failure.
    #[error("WebSocket transport: {0}")]
    WebSocket(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    /// A body or frame did not decode as the protocol says it should.
    #[error("cannot decode server data: {0}")]
    Decode(#[from] serde_json::Error),
    /// The server did not answer in time (e.g. no `ready` after the upgrade).
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The connection was closed (by `close()`, or terminally) before the operation finished.
    #[error("the connection is closed")]
    ConnectionClosed,
}

impl SdkError {
    /// The protocol error code, when the server gave one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            SdkError::Api { code, .. } | SdkError::Rejected { code, .. } => Some(*code),
            SdkError::Unauthorized => Some(ErrorCode::Unauthorized),
            _ => None,
        }
    }

    /// Whether trying the same request again may succeed: a transport failure, a time
    /// out, or a server error (5xx, `unavailable`, `rate_limited`); not a refusal.
    pub fn is_retryable(&self) -> bool {
        match self {
            SdkError::Http(_) | SdkError::WebSocket(_) | SdkError::Timeout(_) => true,
            SdkError::Api { status, code, .. } => {
                *status >= 500 || matches!(code, ErrorCode::RateLimited | ErrorCode::Unavailable)
            }
            SdkError::UnexpectedStatus { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// The HTTP status of a REST failure, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            SdkError::Api { status, .. } | SdkError::UnexpectedStatus { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for SdkError {
    fn from(error: tokio_tungstenite::tungstenite::Error) -> Self {
        SdkError::WebSocket(Box::new(error))
    }
}
