//! Mapping errors to the wire, in one place: `ApiError` for REST and
//! [`error_frame`] for WebSocket.
//!
//! Internal causes are logged here once and replaced by a generic message; clients see
//! the code, the status and a text meant for them.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use parley_proto::{ErrorBody, ErrorCode, ErrorDetail, ServerFrame};

/// A REST error: status from the code, body `{"error":{…}}`.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

impl ApiError {
    /// The same error with another text for the client.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

/// How a core error shows on the wire: its code, the text a client sees and, for rate
/// limits, when to retry. The ports' errors (storage, bus, presence, limiter) are the
/// server's own trouble: they are logged with their causes and shown as `unavailable`.
pub struct WireError {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

pub fn to_wire(error: &parley_core::Error, context: &'static str) -> WireError {
    use parley_core::store::StoreError;
    use parley_core::Error;
    let plain = |code: ErrorCode| (code, error.to_string());
    let (code, message) = match error {
        Error::Invalid(_) => plain(ErrorCode::InvalidRequest),
        Error::ContentTooLarge { .. } => plain(ErrorCode::ContentTooLarge),
        Error::Unauthorized => plain(ErrorCode::Unauthorized),
        Error::InvalidCredentials => plain(ErrorCode::InvalidCredentials),
        Error::UsernameTaken => plain(ErrorCode::UsernameTaken),
        Error::ClientMsgIdReused => plain(ErrorCode::ClientMsgIdReused),
        Error::NotMember => plain(ErrorCode::NotMember),
        Error::Forbidden(_) => plain(ErrorCode::Forbidden),
        Error::NotFound(_) => plain(ErrorCode::NotFound),
        Error::GroupFull { .. } => plain(ErrorCode::GroupFull),
        Error::EditWindowPassed => plain(ErrorCode::EditWindowPassed),
        Error::TooManyPinned { .. } => plain(ErrorCode::TooManyPinned),
        Error::Blocked(_) => plain(ErrorCode::Blocked),
        Error::NotSender => plain(ErrorCode::NotSender),
        Error::TargetNotFound => plain(ErrorCode::TargetNotFound),
        Error::RateLimited { .. } => plain(ErrorCode::RateLimited),
        Error::MediaTooLarge(_) => plain(ErrorCode::MediaTooLarge),
        Error::MediaNotReady(_) => plain(ErrorCode::MediaNotReady),
        Error::Media(parley_core::media::MediaError::NotFound) => (
            ErrorCode::MediaNotReady,
            "the upload has not arrived".to_owned(),
        ),
        Error::ShuttingDown | Error::Busy => plain(ErrorCode::Unavailable),
        Error::Store(StoreError::NotFound) => (ErrorCode::NotFound, "not found".to_owned()),
        Error::Store(StoreError::Conflict(_)) => {
            (ErrorCode::InvalidRequest, "conflicting request".to_owned())
        }
        Error::Store(StoreError::MissingReference) => (
            ErrorCode::NotFound,
            "a referenced item does not exist".to_owned(),
        ),
        // Every port failure, and what a newer core may add: the server's trouble.
        _ => {
            tracing::error!(error = %error_chain(error), "{context} failed");
            (
                ErrorCode::Unavailable,
                "storage is temporarily unavailable".to_owned(),
            )
        }
    };
    let retry_after_ms = match error {
        Error::RateLimited { retry_after } => Some(retry_after.as_millis().max(1) as u64),
        _ => None,
    };
    WireError {
        code,
        message,
        retry_after_ms,
    }
}

/// An error with its causes, for the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<parley_core::Error> for ApiError {
    fn from(error: parley_core::Error) -> Self {
        let wire = to_wire(&error, "request");
        Self {
            code: wire.code,
            message: wire.message,
            retry_after_ms: wire.retry_after_ms,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let code = match &rejection {
            JsonRejection::JsonSyntaxError(_) => ErrorCode::MalformedJson,
            JsonRejection::JsonDataError(_) => ErrorCode::InvalidRequest,
            JsonRejection::MissingJsonContentType(_) => ErrorCode::InvalidRequest,
            JsonRejection::BytesRejection(_)
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ErrorCode::FrameTooLarge
            }
            _ => ErrorCode::InvalidRequest,
        };
        Self::new(code, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(ErrorCode::InvalidRequest, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(ErrorCode::InvalidRequest, rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        metrics::counter!("parley_errors_total", "code" => self.code.as_str()).increment(1);
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code,
                    message: self.message,
                    retry_after_ms: self.retry_after_ms,
                },
            }),
        )
            .into_response();
        if let Some(retry_after_ms) = self.retry_after_ms {
            let seconds = retry_after_ms.div_ceil(1000).to_string();
            if let Ok(value) = seconds.parse() {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}

/// The WebSocket `error` frame for a core error.
pub fn error_frame(error: &parley_core::Error, client_msg_id: Option<String>) -> ServerFrame {
    let wire = to_wire(error, "frame");
    metrics::counter!("parley_errors_total", "code" => wire.code.as_str()).increment(1);
    ServerFrame::Error {
        code: wire.code,
        message: wire.message,
        client_msg_id,
        retry_after_ms: wire.retry_after_ms,
    }
}
