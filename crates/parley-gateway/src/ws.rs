//! One WebSocket connection, from `ready` to close.
//!
//! Decodes `ClientFrame`s, calls `Chat`, encodes `ServerFrame`s. Owns the heartbeat and
//! per-connection limits; owns no conversation state. Sends are queued for group commit
//! in the order they arrive and their `msg_ack`s are written in that order as commits
//! land, so a client may pipeline. A bad frame gets an `error` frame; only a broken
//! socket, a revoked token, silence or shutdown closes the connection.

use crate::error::error_frame;
use crate::hub::Outbound;
use crate::rest::QueryParams;
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use futures::stream::FuturesOrdered;
use futures::{SinkExt, StreamExt};
use parley_core::chat::SendRequest;
use parley_core::ratelimit::{Quota, TokenBucket};
use parley_core::{ConnectionId, Error, Session};
use parley_proto::{ClientFrame, ErrorCode, ServerFrame, Timestamp};
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
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
/// Messages read per page while streaming a `sync`: with 64 KiB contents a page holds at
/// most ~4 MiB, and at most `max_concurrent_syncs` pages are held on a node at once.
const SYNC_PAGE: u32 = 64;
/// Longest a single socket write may take before the client counts as gone.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Sends awaiting their commit per connection; more are refused with `rate_limited`.
const MAX_IN_FLIGHT_SENDS: usize = 1024;
/// Longest wait for a sync permit, and longest time to read and write one sync page:
/// past it the socket is closed (the client reconnects and syncs again).
const SYNC_PAGE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a closing socket waits for the client's close before it is dropped.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

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

type AckFuture = Pin<Box<dyn Future<Output = ServerFrame> + Send>>;

struct Connection {
    socket: WebSocket,
    state: AppState,
    session: Session,
    connection_id: ConnectionId,
    last_heard: Instant,
    pending_acks: FuturesOrdered<AckFuture>,
    /// What this socket's typing frames relayed, and what is held for the next window;
    /// a socket that drops mid-typing is announced as stopped.
    typing: parley_core::typing::TypingThrottle,
    /// Frames this socket may still send: `frames_per_second`, bursts of twice that.
    frame_budget: TokenBucket,
    frame_quota: Quota,
}

async fn run(
    mut socket: WebSocket,
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
    // A logout that committed between this socket's authentication and its registration
    // dispatched its close before the hub knew the socket: look again now that it does.
    if state.chat.authenticate_session(&session).await.is_err() {
        state.hub.unregister(connection_id.serial);
        let error = ServerFrame::error(ErrorCode::Unauthorized, "token revoked");
        close_with(&mut socket, Some(error), 4001, "token revoked").await;
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
    let frame_quota = Quota::per_period(
        state.config.frames_per_second.max(1).saturating_mul(2),
        std::time::Duration::from_secs(2),
    );
    let mut connection = Connection {
        socket,
        state: state.clone(),
        session: session.clone(),
        connection_id: connection_id.clone(),
        last_heard: Instant::now(),
        pending_acks: FuturesOrdered::new(),
        typing: Default::default(),
        frame_budget: TokenBucket::full(frame_quota, tokio::time::Instant::now()),
        frame_quota,
    };
    let ready = ServerFrame::Ready {
        user_id: session.user_id.clone(),
        device_id: session.device_id.clone(),
        heartbeat_interval_ms: heartbeat_interval_ms(state.config.heartbeat_timeout),
    };
    if connection.write(&ready).await.is_ok() {
        connection.serve(outbound, evict).await;
    }
    state.hub.unregister(connection_id.serial);
    let typing_ttl = std::time::Duration::from_secs(parley_proto::limits::TYPING_TTL_SECS);
    for conversation_id in connection.typing.still_typing(Instant::now(), typing_ttl) {
        let _ = state.chat.typing(&session, &conversation_id, false).await;
    }
    state.chat.disconnected(&session, &connection_id).await;
}

/// Waits for `{"type":"auth","token":…}`; anything else is refused and closes.
async fn authenticate_first_frame(socket: &mut WebSocket, state: &AppState) -> Option<Session> {
    let first = tokio::time::timeout(state.config.auth_timeout, socket.recv()).await;
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

/// The close code for a frame the WebSocket layer refused: 1009 for one above the hard
/// limit, 1007 for text that is not UTF-8, 1002 for other protocol errors. `None` when
/// the socket itself broke.
fn protocol_violation(error: &axum::Error) -> Option<(u16, &'static str)> {
    use tungstenite::error::{CapacityError, Error as WsError};
    let inner = std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<WsError>())
        .or_else(|| {
            // axum's error may be the tungstenite error itself or wrap it.
            let any: &(dyn std::error::Error + 'static) = error;
            any.downcast_ref::<WsError>()
        })?;
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

/// Sends an optional `error` frame and a close frame, then waits briefly for the client
/// to close, discarding what it still sends: closing a TCP socket with unread bytes
/// would reset the connection and could lose the close frame.
async fn close_with(
    socket: &mut WebSocket,
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
async fn drain_after_close(socket: &mut WebSocket) {
    let deadline = tokio::time::Instant::now() + CLOSE_LINGER;
    for _ in 0..1024 {
        match tokio::time::timeout_at(deadline, socket.recv()).await {
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

/// What `ready` asks clients for: the protocol's 30 s, or a third of a shorter timeout,
/// so that two pings may be lost before the server gives up.
fn heartbeat_interval_ms(timeout: std::time::Duration) -> u64 {
    let protocol = parley_proto::limits::HEARTBEAT_INTERVAL_SECS * 1000;
    (timeout.as_millis() as u64 / 3).clamp(1, protocol)
}

/// Why the loop ended.
enum Ending {
    Closed,
    Close(u16, &'static str),
}

impl Connection {
    async fn serve(&mut self, mut outbound: mpsc::Receiver<Outbound>, evict: Arc<Notify>) {
        let timeout = self.state.config.heartbeat_timeout;
        let mut heartbeat =
            tokio::time::interval((timeout / 3).max(std::time::Duration::from_millis(10)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ending = loop {
            let typing_due = self.typing.next_due();
            tokio::select! {
                biased;
                _ = evict.notified() => break Ending::Close(1013, "too slow: reconnect and sync"),
                Some(ack) = self.pending_acks.next(), if !self.pending_acks.is_empty() => {
                    if self.write(&ack).await.is_err() { break Ending::Closed; }
                }
                Some(first) = outbound.recv() => {
                    match self.write_outbound(first, &mut outbound).await {
                        Ok(None) => {}
                        Ok(Some((code, reason))) => break Ending::Close(code, reason),
                        Err(()) => break Ending::Closed,
                    }
                }
                incoming = self.socket.recv() => {
                    let message = match incoming {
                        Some(Ok(message)) => message,
                        Some(Err(error)) => match protocol_violation(&error) {
                            Some((code, reason)) => break Ending::Close(code, reason),
                            None => break Ending::Closed,
                        },
                        None => break Ending::Closed,
                    };
                    self.last_heard = Instant::now();
                    match message {
                        Message::Text(text) => {
                            if self.handle_text(text).await.is_err() { break Ending::Closed; }
                        }
                        Message::Binary(_) => {
                            let refusal = match self.spend_frame_budget() {
                                Ok(()) => ServerFrame::error(ErrorCode::InvalidRequest, "binary frames are not supported; send JSON text"),
                                Err(retry_after_ms) => too_many_frames(None, retry_after_ms),
                            };
                            let outcome = self.write(&refusal).await;
                            if outcome.is_err() { break Ending::Closed; }
                        }
                        Message::Close(_) => break Ending::Closed,
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                _ = sleep_until_due(typing_due) => {
                    if self.relay_due_typing().await.is_err() { break Ending::Closed; }
                }
                _ = heartbeat.tick() => {
                    if self.last_heard.elapsed() > timeout {
                        break Ending::Close(1001, "heartbeat timeout");
                    }
                }
            }
        };
        if let Ending::Close(code, reason) = ending {
            // Finish in-flight sends first: their messages are committed or about to be.
            while let Some(ack) = self.pending_acks.next().await {
                if self.write(&ack).await.is_err() {
                    return;
                }
            }
            let close = Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }));
            if self.feed(close).await.is_ok() && self.flush().await.is_ok() {
                drain_after_close(&mut self.socket).await;
            }
        }
    }

    /// Spends one frame from the connection's budget, or answers how long to wait (ms).
    fn spend_frame_budget(&mut self) -> Result<(), u64> {
        self.frame_budget
            .take(self.frame_quota, tokio::time::Instant::now())
            .map_err(|wait| (wait.as_secs_f64() * 1000.0).ceil() as u64)
    }

    /// Relays typing states held back by the throttle whose window has ended.
    async fn relay_due_typing(&mut self) -> Result<(), ()> {
        let now = Instant::now();
        for (conversation_id, is_typing) in self.typing.take_due(now) {
            self.relay_typing(conversation_id, is_typing, now).await?;
        }
        Ok(())
    }

    async fn relay_typing(
        &mut self,
        conversation_id: parley_proto::ConversationId,
        is_typing: bool,
        now: Instant,
    ) -> Result<(), ()> {
        let outcome = self
            .state
            .chat
            .typing(&self.session, &conversation_id, is_typing)
            .await;
        match outcome {
            Ok(()) => {
                self.typing.relayed(&conversation_id, is_typing, now);
                Ok(())
            }
            Err(error) => {
                self.typing.forget(&conversation_id);
                self.write(&error_frame(&error, None)).await
            }
        }
    }

    /// Writes one queued item and whatever else is queued, with one flush.
    async fn write_outbound(
        &mut self,
        first: Outbound,
        outbound: &mut mpsc::Receiver<Outbound>,
    ) -> Result<Option<(u16, &'static str)>, ()> {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(item) = next.take() {
            match item {
                Outbound::Frame(frame, created_at_ms) => {
                    if let Some(created_at_ms) = created_at_ms {
                        let latency_ms = (Timestamp::now().millis() - created_at_ms).max(0);
                        metrics::histogram!("parley_delivery_latency_seconds")
                            .record(latency_ms as f64 / 1000.0);
                    }
                    self.feed(Message::Text(frame)).await?;
                    written += 1;
                }
                Outbound::Close(code, reason) => {
                    self.flush().await?;
                    return Ok(Some((code, reason)));
                }
            }
            if written < 64 {
                next = outbound.try_recv().ok();
            }
        }
        self.flush().await?;
        Ok(None)
    }

    async fn write(&mut self, frame: &ServerFrame) -> Result<(), ()> {
        self.feed(Message::Text(frame.to_json().into())).await?;
        self.flush().await
    }

    /// Queues a message in the socket's write buffer (writing if the buffer is full).
    /// Every socket write is bounded by `WRITE_TIMEOUT`: a client that stops reading
    /// must not pin its task, its hub entry and its presence forever.
    async fn feed(&mut self, message: Message) -> Result<(), ()> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.socket.feed(message)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    async fn flush(&mut self) -> Result<(), ()> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.socket.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    /// Handles one text frame. `Err` only when the socket broke.
    async fn handle_text(&mut self, text: Utf8Bytes) -> Result<(), ()> {
        metrics::counter!("parley_frames_received_total").increment(1);
        // Every frame, good or bad, spends from the connection's budget.
        let over_budget = self.spend_frame_budget().err();
        if text.len() > self.state.config.max_frame_bytes {
            let refusal = ServerFrame::error(
                ErrorCode::FrameTooLarge,
                format!(
                    "frames are limited to {} bytes",
                    self.state.config.max_frame_bytes
                ),
            );
            return self.write(&refusal).await;
        }
        let frame = match serde_json::from_str::<ClientFrame>(&text) {
            Ok(frame) => frame,
            Err(error) => return self.write(&decode_error(&text, &error)).await,
        };
        if let Some(retry_after_ms) = over_budget {
            // Name the send, so that clients retry it after the wait.
            let client_msg_id = match &frame {
                ClientFrame::SendMessage { client_msg_id, .. } => Some(client_msg_id.clone()),
                _ => None,
            };
            return self
                .write(&too_many_frames(client_msg_id, retry_after_ms))
                .await;
        }
        match frame {
            ClientFrame::SendMessage {
                client_msg_id,
                conversation_id,
                content,
                content_type,
                reply_to_seq,
            } => {
                if self.pending_acks.len() >= MAX_IN_FLIGHT_SENDS {
                    let refusal = ServerFrame::Error {
                        code: ErrorCode::RateLimited,
                        message: "too many sends awaiting their ack".into(),
                        client_msg_id: Some(client_msg_id),
                        retry_after_ms: Some(100),
                    };
                    return self.write(&refusal).await;
                }
                let request = SendRequest {
                    client_msg_id: client_msg_id.clone(),
                    conversation_id,
                    content,
                    content_type,
                    reply_to_seq,
                    origin_connection: Some(self.connection_id.clone()),
                };
                match self.state.chat.submit_message(&self.session, request).await {
                    Ok(outcome) => {
                        self.pending_acks.push_back(Box::pin(async move {
                            match outcome.await {
                                Ok(Ok(appended)) => ServerFrame::MsgAck {
                                    client_msg_id,
                                    conversation_id: appended.message.conversation_id,
                                    message_id: appended.message.message_id,
                                    seq: appended.message.seq,
                                    created_at: appended.message.created_at,
                                },
                                Ok(Err(error)) => error_frame(&error, Some(client_msg_id)),
                                Err(_) => error_frame(&Error::ShuttingDown, Some(client_msg_id)),
                            }
                        }));
                        Ok(())
                    }
                    Err(error) => self.write(&error_frame(&error, Some(client_msg_id))).await,
                }
            }
            ClientFrame::Ack {
                conversation_id,
                seq,
            } => {
                let outcome = self
                    .state
                    .chat
                    .ack(&self.session, &conversation_id, seq)
                    .await;
                self.refuse_on_error(outcome).await
            }
            ClientFrame::Read {
                conversation_id,
                up_to_seq,
            } => {
                let outcome = self
                    .state
                    .chat
                    .read(&self.session, &conversation_id, up_to_seq)
                    .await;
                self.refuse_on_error(outcome).await
            }
            ClientFrame::Typing {
                conversation_id,
                is_typing,
            } => {
                let now = Instant::now();
                match self.typing.on_frame(&conversation_id, is_typing, now) {
                    Some(state) => self.relay_typing(conversation_id, state, now).await,
                    None => Ok(()),
                }
            }
            ClientFrame::Sync { cursors } => self.sync(cursors).await,
            ClientFrame::PresenceSubscribe { user_ids } => {
                // The hub first, so no change announced from now on is missed.
                let hub = &self.state.hub;
                let previous = hub.watch_presence(self.connection_id.serial, user_ids.clone());
                let watched = self
                    .state
                    .chat
                    .watch_presence(&self.connection_id, user_ids)
                    .await;
                if watched.is_err() {
                    hub.watch_presence(self.connection_id.serial, previous);
                }
                match watched {
                    Ok(frames) => {
                        for frame in frames {
                            self.feed(Message::Text(frame.to_json().into())).await?;
                        }
                        self.flush().await
                    }
                    Err(error) => self.write(&error_frame(&error, None)).await,
                }
            }
            ClientFrame::Ping {} => self.write(&ServerFrame::Pong {}).await,
            ClientFrame::Auth { .. } => {
                let refusal =
                    ServerFrame::error(ErrorCode::InvalidRequest, "already authenticated");
                self.write(&refusal).await
            }
        }
    }

    async fn refuse_on_error(&mut self, outcome: Result<(), Error>) -> Result<(), ()> {
        match outcome {
            Ok(()) => Ok(()),
            Err(error) => self.write(&error_frame(&error, None)).await,
        }
    }

    /// Streams everything after the cursors, conversation by conversation in `seq`
    /// order, then `sync_done`.
    async fn sync(&mut self, cursors: parley_proto::frames::Cursors) -> Result<(), ()> {
        let plan = match self.state.chat.plan_sync(&self.session, &cursors).await {
            Ok(plan) => plan,
            Err(error) => return self.write(&error_frame(&error, None)).await,
        };
        for conversation_id in &plan.not_member {
            let refusal = ServerFrame::error(
                ErrorCode::NotMember,
                format!("not a member of {conversation_id}; cursor ignored"),
            );
            self.write(&refusal).await?;
        }
        let mut done = plan.done;
        for (conversation_id, mut after_seq, up_to_seq) in plan.ranges {
            while after_seq < up_to_seq {
                // Held while the page is read and written: bounds sync memory per node.
                let permit = tokio::time::timeout(
                    SYNC_PAGE_DEADLINE,
                    self.state.syncs.clone().acquire_owned(),
                )
                .await;
                let Ok(Ok(_permit)) = permit else {
                    let busy = ServerFrame::error(
                        ErrorCode::Unavailable,
                        "too many syncs on this server: reconnect and sync again",
                    );
                    let _ = self.write(&busy).await;
                    return Err(());
                };
                // One deadline for reading and writing the whole page, so a client that
                // reads slowly cannot hold a permit for long (each write alone has 10 s).
                let page = tokio::time::timeout(
                    SYNC_PAGE_DEADLINE,
                    self.sync_one_page(&conversation_id, after_seq),
                )
                .await
                .map_err(|_| ())??;
                match page {
                    PageOutcome::Sent(last_seq) => after_seq = last_seq,
                    PageOutcome::Empty => break,
                    PageOutcome::Failed => {
                        // Say only how far this conversation really got, so the client
                        // does not skip what it never received.
                        done.insert(conversation_id.clone(), after_seq);
                        break;
                    }
                }
            }
        }
        self.write(&ServerFrame::SyncDone { cursors: done }).await
    }

    /// Reads one page of `sync` after `after_seq` and writes it.
    async fn sync_one_page(
        &mut self,
        conversation_id: &parley_proto::ConversationId,
        after_seq: i64,
    ) -> Result<PageOutcome, ()> {
        let page = match self
            .state
            .chat
            .sync_page(&self.session, conversation_id, after_seq, SYNC_PAGE)
            .await
        {
            Ok(page) => page,
            Err(error) => {
                self.write(&error_frame(&error, None)).await?;
                return Ok(PageOutcome::Failed);
            }
        };
        let Some(last_seq) = page.last().map(|message| message.seq) else {
            return Ok(PageOutcome::Empty);
        };
        for message in page {
            let frame = ServerFrame::NewMessage(message).to_json();
            self.feed(Message::Text(frame.into())).await?;
        }
        self.flush().await?;
        Ok(PageOutcome::Sent(last_seq))
    }
}

/// What streaming one `sync` page did.
enum PageOutcome {
    /// Written, up to this `seq`.
    Sent(i64),
    /// Nothing more to send.
    Empty,
    /// The read failed; an `error` frame was written.
    Failed,
}

/// The refusal of a frame over the connection's budget.
fn too_many_frames(client_msg_id: Option<String>, retry_after_ms: u64) -> ServerFrame {
    ServerFrame::Error {
        code: ErrorCode::RateLimited,
        message: "too many frames on this connection".into(),
        client_msg_id,
        retry_after_ms: Some(retry_after_ms),
    }
}

/// Waits until `due`, or forever when nothing is due.
async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// The `error` frame for a frame that did not decode: bad JSON, unknown `type`, or
/// missing/invalid fields.
fn decode_error(text: &str, error: &serde_json::Error) -> ServerFrame {
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
