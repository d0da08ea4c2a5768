//! Closing a socket politely: an optional last `error` frame, the close frame, then a
//! short linger reading what the client still sends.
//!
//! Closing a TCP socket with unread bytes resets the connection and can lose the close
//! frame, so the close is written and the socket drained until the client's own close or
//! `CLOSE_LINGER`, whichever comes first; every write is bounded by `WRITE_TIMEOUT`.

use super::frames::protocol_violation;
use super::{Socket, WRITE_TIMEOUT};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures::{SinkExt, StreamExt};
use parley_proto::ServerFrame;

/// How long a closing socket waits for the client's close before it is dropped.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Sends an optional `error` frame and a close frame, then waits briefly for the client
/// to close, discarding what it still sends: closing a TCP socket with unread bytes
/// would reset the connection and could lose the close frame.
pub(super) async fn close_with<S: Socket>(
    socket: &mut S,
    error: Option<ServerFrame>,
    code: u16,
    reason: &'static str,
) {
    let write = async {
        if let Some(error) = error {
            socket
                .send(Message::Text(error.to_json().into()))
                .await
                .ok()?;
        }
        socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            })))
            .await
            .ok()
    };
    if tokio::time::timeout(WRITE_TIMEOUT, write).await.is_err() {
        return;
    }
    drain_after_close(socket).await;
}

/// Reads and drops what the client sends after our close frame, until it closes or
/// `CLOSE_LINGER` passes.
pub(super) async fn drain_after_close<S: Socket>(socket: &mut S) {
    let deadline = tokio::time::Instant::now() + CLOSE_LINGER;
    for _ in 0..1024 {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Err(_) => return,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => {
                if protocol_violation(&error).is_none() {
                    return;
                }
            }
        }
    }
}
