//! Reading what a client sent, and the refusals that answer it.
//!
//! `decode_error` turns a frame that did not decode into the one `error` frame the
//! protocol names for it (`malformed_json`, `unknown_type`, `invalid_request`);
//! `protocol_violation` recognises a frame the WebSocket layer itself refused and names
//! the close code. Pure functions: no socket, no `Chat`, no state.

use parley_proto::{ErrorCode, ServerFrame};

/// The frame types a client may send, to tell an unknown `type` from a bad field.
const KNOWN_TYPES: &[&str] = &[
    "auth",
    "send_message",
    "ack",
    "read",
    "typing",
    "sync",
    "presence_subscribe",
    "ping",
];

/// The close code for a frame the WebSocket layer refused: 1009 for one above the hard
/// limit, 1007 for text that is not UTF-8, 1002 for other protocol errors. `None` when
/// the socket itself broke. The tungstenite error is looked for in the failure's source
/// (axum's `Error` wraps it) and in the failure itself.
pub(super) fn protocol_violation<E>(error: &E) -> Option<(u16, &'static str)>
where
    E: std::error::Error + 'static,
{
    use tungstenite::error::{CapacityError, Error as WsError};
    let error: &(dyn std::error::Error + 'static) = error;
    let inner = error
        .source()
        .and_then(|source| source.downcast_ref::<WsError>())
        .or_else(|| error.downcast_ref::<WsError>())?;
    match inner {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            Some((1009, "frame above the 1 MiB limit"))
        }
        WsError::Capacity(_) => Some((1009, "frame too large")),
        WsError::Utf8(_) => Some((1007, "text frame is not valid UTF-8")),
        WsError::Protocol(_) => Some((1002, "protocol error")),
        _ => None,
    }
}

/// The refusal of a frame over the connection's budget.
pub(super) fn too_many_frames(client_msg_id: Option<String>, retry_after_ms: u64) -> ServerFrame {
    ServerFrame::Error {
        code: ErrorCode::RateLimited,
        message: "too many frames on this connection".into(),
        client_msg_id,
        retry_after_ms: Some(retry_after_ms),
    }
}

/// The `error` frame for a frame that did not decode: bad JSON, unknown `type`, or
/// missing/invalid fields.
pub(super) fn decode_error(text: &str, error: &serde_json::Error) -> ServerFrame {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ServerFrame::error(ErrorCode::MalformedJson, format!("malformed JSON: {error}"))
        }
        Category::Data => {
            let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            match value.get("type") {
                Some(serde_json::Value::String(kind)) if !KNOWN_TYPES.contains(&kind.as_str()) => {
                    ServerFrame::error(
                        ErrorCode::UnknownType,
                        format!("unknown frame type '{kind}'"),
                    )
                }
                Some(_) => {
                    ServerFrame::error(ErrorCode::InvalidRequest, format!("invalid frame: {error}"))
                }
                None => ServerFrame::error(
                    ErrorCode::InvalidRequest,
                    "a frame is a JSON object with a string 'type'",
                ),
            }
        }
    }
}
