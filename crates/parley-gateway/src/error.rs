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

impl From<parley_core::Error> for ApiError {
    fn from(error: parley_core::Error) -> Self {
        if error.is_internal() {
            tracing::error!(%error, "request failed");
        }
        Self {
            code: error.code(),
            message: error.public_message(),
            retry_after_ms: error.retry_after_ms(),
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
    if error.is_internal() {
        tracing::error!(%error, "frame failed");
    }
    metrics::counter!("parley_errors_total", "code" => error.code().as_str()).increment(1);
    ServerFrame::Error {
        code: error.code(),
        message: error.public_message(),
        client_msg_id,
        retry_after_ms: error.retry_after_ms(),
    }
}
