//! One WebSocket connection, from the upgrade to close.
//!
//! `upgrade` (`GET /ws`) is the only code that knows axum's `WebSocket`; `run` and all
//! below it work over any `Socket`, so one socket's behaviour is unit-tested over
//! in-memory channels (`ws/tests.rs`). `run` authenticates, registers with the hub, says
//! `ready` and hands over to `connection` (the serve loop: decode, call `Chat`, encode;
//! heartbeat; pipelined sends acked in order), which streams `sync`s with `sync`; `frames`
//! holds decoding and refusals, `close` the closing handshake. Owns no conversation state:
//! a bad frame gets an `error` frame; only a broken socket, a revoked token, silence or
//! shutdown closes the connection.

mod close;
mod connection;
mod frames;
mod positions;
mod sync;
#[cfg(test)]
mod tests;

use crate::error::error_frame;
use crate::rest::QueryParams;
use crate::AppState;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use close::close_with;
use connection::Connection;
use frames::protocol_violation;
use futures::{Sink, Stream, StreamExt};
use parley_core::{Error, Session};
use parley_proto::{ClientFrame, ErrorCode, ServerFrame};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

/// Socket buffers, sized so an idle connection costs a few KiB (tungstenite's defaults
/// are 128 KiB each way); they grow on demand for large frames.
const READ_BUFFER_BYTES: usize = 1024;
const WRITE_BUFFER_BYTES: usize = 8 * 1024;
/// Frames above this are cut off by the WebSocket layer itself (close 1009); frames
/// between `max_frame_bytes` and this get an `error` frame and the connection lives on.
const HARD_FRAME_LIMIT: usize = 1024 * 1024;
/// Longest a single socket write may take before the client counts as gone.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What one connection runs over: a stream of incoming messages and a sink for outgoing
/// ones, failing with the same error. axum's `WebSocket` is one; the unit tests use a pair
/// of channels. A failure that carries a tungstenite error is read as the WebSocket layer
/// refusing a frame (see `protocol_violation`); any other means the socket broke.
trait Socket:
    Sink<Message, Error = <Self as Socket>::Failure>
    + Stream<Item = Result<Message, <Self as Socket>::Failure>>
    + Unpin
    + Send
{
    type Failure: std::error::Error + Send + Sync + 'static;
}

impl<S, E> Socket for S
where
    S: Sink<Message, Error = E> + Stream<Item = Result<Message, E>> + Unpin + Send,
    E: std::error::Error + Send + Sync + 'static,
{
    type Failure = E;
}

/// # `GET /ws`
///
/// Upgrades to a WebSocket. The token comes as `?token=` (checked before upgrading: 401
/// if wrong) or in a first `auth` frame.
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<std::net::SocketAddr>,
    QueryParams(query): QueryParams<WsQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if state.is_shutting_down() {
        return crate::error::ApiError::new(ErrorCode::Unavailable, "server shutting down")
            .into_response();
    }
    if let Err(wait) = state.admit_socket() {
        metrics::counter!("parley_sockets_refused_total", "limit" => "accept_rate").increment(1);
        return crate::error::ApiError::from(Error::RateLimited {
            retry_after: wait.max(std::time::Duration::from_millis(100)),
        })
        .with_message("this server is taking new connections slowly; retry")
        .into_response();
    }
    // Counted from before authentication, so unauthenticated sockets are capped too.
    let Some(ip_slot) = state
        .sockets_per_ip
        .try_open(address.ip(), state.config.max_sockets_per_ip)
    else {
        metrics::counter!("parley_sockets_refused_total", "limit" => "ip").increment(1);
        return crate::error::ApiError::from(Error::RateLimited {
            retry_after: std::time::Duration::from_secs(1),
        })
        .with_message("too many connections from this address")
        .into_response();
    };
    let (session, waiting_for_auth) = match query.token {
        Some(token) => match state.chat.authenticate(&token).await {
            Ok(session) => (Some(session), None),
            Err(error) => return crate::error::ApiError::from(error).into_response(),
        },
        // Node-wide: sockets that have not authenticated cannot add up without bound
        // however many addresses they come from.
        None => match state.unauthenticated.clone().try_acquire_owned() {
            Ok(permit) => (None, Some(permit)),
            Err(_) => {
                metrics::counter!("parley_sockets_refused_total", "limit" => "unauthenticated")
                    .increment(1);
                return crate::error::ApiError::from(Error::RateLimited {
                    retry_after: std::time::Duration::from_secs(1),
                })
                .with_message("too many connections waiting to authenticate; retry")
                .into_response();
            }
        },
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return crate::error::ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
                .into_response()
        }
    };
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| async move {
            run(socket, state, session, waiting_for_auth).await;
            drop(ip_slot);
        })
}

/// One socket's whole life: authenticate (unless `?token=` did), register with the hub,
/// say `ready`, serve, then unregister and announce the device gone.
async fn run<S: Socket>(
    mut socket: S,
    state: AppState,
    session: Option<Session>,
    waiting_for_auth: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let session = match session {
        Some(session) => session,
        None => match authenticate_first_frame(&mut socket, &state).await {
            Some(session) => session,
            None => return,
        },
    };
    drop(waiting_for_auth);
    let connection_id = state.chat.new_connection_id();
    let (outbound_sender, outbound) = mpsc::channel(state.config.outbound_queue);
    let evict = Arc::new(Notify::new());
    if let Err(refusal) = state.hub.register(
        connection_id.serial,
        session.user_id.clone(),
        session.device_id.clone(),
        outbound_sender,
        evict.clone(),
        crate::hub::SocketCaps {
            per_user: state.config.max_sockets_per_user,
            per_device: state.config.max_sockets_per_device,
        },
    ) {
        metrics::counter!("parley_sockets_refused_total", "limit" => refusal).increment(1);
        let error = ServerFrame::Error {
            code: ErrorCode::RateLimited,
            message: format!("too many open connections for this {refusal}"),
            client_msg_id: None,
            retry_after_ms: Some(1000),
        };
        close_with(&mut socket, Some(error), 1008, "too many connections").await;
        return;
    }
    if let Err(error) = state.chat.connected(&session, &connection_id).await {
        // The bus would not bring this socket its frames: it is better closed, and the
        // client retries (on another node, behind a load balancer).
        state.hub.unregister(connection_id.serial);
        let frame = error_frame(&error, None);
        close_with(&mut socket, Some(frame), 1013, "try again later").await;
        return;
    }
    // A logout that committed between this socket's authentication and now announced its
    // close before this node asked the bus for the user's events (`connected`), so the
    // close may never come: look again now that any later one would.
    if state.chat.authenticate_session(&session).await.is_err() {
        state.hub.unregister(connection_id.serial);
        state.chat.disconnected(&session, &connection_id).await;
        let error = ServerFrame::error(ErrorCode::Unauthorized, "token revoked");
        close_with(&mut socket, Some(error), 4001, "token revoked").await;
        return;
    }
    let mut connection = Connection::new(
        socket,
        state.clone(),
        session.clone(),
        connection_id.clone(),
    );
    let ready = ServerFrame::Ready {
        user_id: session.user_id.clone(),
        device_id: session.device_id.clone(),
        heartbeat_interval_ms: heartbeat_interval_ms(state.config.heartbeat_timeout),
    };
    if connection.write(&ready).await.is_ok() {
        connection.serve(outbound, evict).await;
    }
    state.hub.unregister(connection_id.serial);
    connection.stop_typing().await;
    state.chat.disconnected(&session, &connection_id).await;
}

/// Waits for `{"type":"auth","token":…}`; anything else is refused and closes.
async fn authenticate_first_frame<S: Socket>(socket: &mut S, state: &AppState) -> Option<Session> {
    let first = tokio::time::timeout(state.config.auth_timeout, socket.next()).await;
    let refuse = |code: ErrorCode, message: &str| ServerFrame::error(code, message);
    let reply = match first {
        Ok(Some(Ok(Message::Text(text)))) => {
            if text.len() > state.config.max_frame_bytes {
                refuse(ErrorCode::FrameTooLarge, "expected an auth frame")
            } else {
                match serde_json::from_str::<ClientFrame>(&text) {
                    Ok(ClientFrame::Auth { token }) => {
                        match state.chat.authenticate(&token).await {
                            Ok(session) => return Some(session),
                            Err(error) => error_frame(&error, None),
                        }
                    }
                    Ok(_) => refuse(
                        ErrorCode::NotAuthenticated,
                        "authenticate first: send an auth frame or use ?token=",
                    ),
                    Err(_) => refuse(ErrorCode::MalformedJson, "expected an auth frame"),
                }
            }
        }
        Ok(Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_)))) => refuse(
            ErrorCode::NotAuthenticated,
            "authenticate first: the first frame must be a JSON text auth frame",
        ),
        Ok(Some(Err(error))) => {
            if let Some((code, reason)) = protocol_violation(&error) {
                close_with(socket, None, code, reason).await;
            }
            return None;
        }
        Ok(Some(Ok(Message::Close(_))) | None) => return None,
        Err(_) => refuse(ErrorCode::NotAuthenticated, "no auth frame in time"),
    };
    close_with(socket, Some(reply), 4001, "unauthorized").await;
    None
}

/// What `ready` asks clients for: the protocol's 30 s, or a third of a shorter timeout,
/// so that two pings may be lost before the server gives up.
fn heartbeat_interval_ms(timeout: std::time::Duration) -> u64 {
    let protocol = parley_proto::limits::HEARTBEAT_INTERVAL_SECS * 1000;
    (timeout.as_millis() as u64 / 3).clamp(1, protocol)
}
