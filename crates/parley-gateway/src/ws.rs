//! One WebSocket connection, from `ready` to close.
//!
//! Decodes `ClientFrame`s, calls `Chat`, encodes `ServerFrame`s. Owns the heartbeat and
//! per-connection limits; owns no conversation state. Sends are queued for group commit
//! in the order they arrive and their `msg_ack`s are written in that order as commits
//! land, so a client may pipeline. A bad frame gets an `error` frame; only a broken
//! socket, a revoked token, silence or shutdown closes the connection.

use crate::error::error_frame;
use crate::hub::Outbound;
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures::stream::FuturesOrdered;
use futures::{SinkExt, StreamExt};
use parley_core::chat::SendRequest;
use parley_core::{Error, Session};
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
/// Messages read per page while streaming a `sync`.
const SYNC_PAGE: u32 = 256;
/// Longest a single socket write may take before the client counts as gone.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Repeated `is_typing:true` frames closer than this are not relayed.
const TYPING_REPEAT: std::time::Duration = std::time::Duration::from_secs(1);
/// Conversations whose typing state one socket tracks for the stop-on-disconnect.
const MAX_TRACKED_TYPING: usize = 64;
/// Sends awaiting their commit per connection; more are refused with `rate_limited`.
const MAX_IN_FLIGHT_SENDS: usize = 1024;

/// # `GET /ws`
///
/// Upgrades to a WebSocket. The token comes as `?token=` (checked before upgrading: 401
/// if wrong) or in a first `auth` frame.
pub async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<WsQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if state.is_shutting_down() {
        return crate::error::ApiError::new(ErrorCode::Unavailable, "server shutting down")
            .into_response();
    }
    let session = match query.token {
        Some(token) => match state.chat.authenticate(&token).await {
            Ok(session) => Some(session),
            Err(error) => return crate::error::ApiError::from(error).into_response(),
        },
        None => None,
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
        .on_upgrade(move |socket| run(socket, state, session))
}

type AckFuture = Pin<Box<dyn Future<Output = ServerFrame> + Send>>;

struct Connection {
    socket: WebSocket,
    state: AppState,
    session: Session,
    connection_id: u64,
    last_heard: Instant,
    pending_acks: FuturesOrdered<AckFuture>,
    /// Conversations where this socket said `is_typing:true` and not yet `false`, with
    /// when: a socket that drops mid-typing is announced as stopped.
    typing: Vec<(parley_proto::ConversationId, Instant)>,
    /// Token bucket of frames this socket may still send (refilled continuously).
    frame_budget: f64,
    frame_budget_at: Instant,
}

async fn run(mut socket: WebSocket, state: AppState, session: Option<Session>) {
    let session = match session {
        Some(session) => session,
        None => match authenticate_first_frame(&mut socket, &state).await {
            Some(session) => session,
            None => return,
        },
    };
    let connection_id = state.hub.next_connection_id();
    let (outbound_sender, outbound) = mpsc::channel(state.config.outbound_queue);
    let evict = Arc::new(Notify::new());
    state.hub.register(
        connection_id,
        session.user_id.clone(),
        session.device_id.clone(),
        outbound_sender,
        evict.clone(),
    );
    state.chat.connected(&session, connection_id).await;
    let mut connection = Connection {
        socket,
        state: state.clone(),
        session: session.clone(),
        connection_id,
        last_heard: Instant::now(),
        pending_acks: FuturesOrdered::new(),
        typing: Vec::new(),
        frame_budget: f64::from(state.config.frames_per_second) * 2.0,
        frame_budget_at: Instant::now(),
    };
    let ready = ServerFrame::Ready {
        user_id: session.user_id.clone(),
        device_id: session.device_id.clone(),
        heartbeat_interval_ms: heartbeat_interval_ms(state.config.heartbeat_timeout),
    };
    if connection.write(&ready).await.is_ok() {
        connection.serve(outbound, evict).await;
    }
    state.hub.unregister(connection_id);
    let typing_ttl = std::time::Duration::from_secs(parley_proto::limits::TYPING_TTL_SECS);
    for (conversation_id, since) in connection.typing {
        if since.elapsed() < typing_ttl {
            let _ = state.chat.typing(&session, &conversation_id, false).await;
        }
    }
    state.chat.disconnected(&session, connection_id).await;
}

/// Waits for `{"type":"auth","token":…}`; anything else is refused and closes.
async fn authenticate_first_frame(socket: &mut WebSocket, state: &AppState) -> Option<Session> {
    let first = tokio::time::timeout(state.config.auth_timeout, socket.recv()).await;
    let refuse = |code: ErrorCode, message: &str| ServerFrame::error(code, message).to_json();
    let reply = match first {
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str::<ClientFrame>(&text) {
            Ok(ClientFrame::Auth { token }) => match state.chat.authenticate(&token).await {
                Ok(session) => return Some(session),
                Err(error) => error_frame(&error, None).to_json(),
            },
            Ok(_) => refuse(
                ErrorCode::NotAuthenticated,
                "authenticate first: send an auth frame or use ?token=",
            ),
            Err(_) => refuse(ErrorCode::MalformedJson, "expected an auth frame"),
        },
        Ok(_) => return None,
        Err(_) => refuse(ErrorCode::NotAuthenticated, "no auth frame in time"),
    };
    let _ = socket.send(Message::Text(reply.into())).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 4001,
            reason: Utf8Bytes::from_static("unauthorized"),
        })))
        .await;
    None
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
                    let Some(Ok(message)) = incoming else { break Ending::Closed };
                    self.last_heard = Instant::now();
                    match message {
                        Message::Text(text) => {
                            if self.handle_text(text).await.is_err() { break Ending::Closed; }
                        }
                        Message::Binary(_) => {
                            let refusal = ServerFrame::error(ErrorCode::InvalidRequest, "binary frames are not supported; send JSON text");
                            if self.write(&refusal).await.is_err() { break Ending::Closed; }
                        }
                        Message::Close(_) => break Ending::Closed,
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
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
            if self.feed(close).await.is_ok() {
                let _ = self.flush().await;
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
        let per_second = f64::from(self.state.config.frames_per_second.max(1));
        let now = Instant::now();
        self.frame_budget = (self.frame_budget
            + now.duration_since(self.frame_budget_at).as_secs_f64() * per_second)
            .min(per_second * 2.0);
        self.frame_budget_at = now;
        let over_budget = self.frame_budget < 1.0;
        if !over_budget {
            self.frame_budget -= 1.0;
        }
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
        if over_budget {
            // Name the send, so that clients retry it after the wait.
            let refusal = ServerFrame::Error {
                code: ErrorCode::RateLimited,
                message: "too many frames on this connection".into(),
                client_msg_id: match &frame {
                    ClientFrame::SendMessage { client_msg_id, .. } => Some(client_msg_id.clone()),
                    _ => None,
                },
                retry_after_ms: Some(
                    (((1.0 - self.frame_budget) / per_second) * 1000.0).ceil() as u64
                ),
            };
            return self.write(&refusal).await;
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
                    origin_connection: Some(self.connection_id),
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
                // `is_typing:true` again within a second of the last one relayed adds
                // nothing for the others: drop it.
                let repeated = is_typing
                    && self.typing.iter().any(|(typing_in, since)| {
                        typing_in == &conversation_id && since.elapsed() < TYPING_REPEAT
                    });
                if repeated {
                    return Ok(());
                }
                let outcome = self
                    .state
                    .chat
                    .typing(&self.session, &conversation_id, is_typing)
                    .await;
                if outcome.is_ok() {
                    self.typing
                        .retain(|(typing_in, _)| typing_in != &conversation_id);
                    if is_typing && self.typing.len() < MAX_TRACKED_TYPING {
                        self.typing.push((conversation_id, Instant::now()));
                    }
                }
                self.refuse_on_error(outcome).await
            }
            ClientFrame::Sync { cursors } => self.sync(cursors).await,
            ClientFrame::PresenceSubscribe { user_ids } => {
                match self.state.chat.presence_snapshot(&user_ids).await {
                    Ok(frames) => {
                        self.state.hub.watch_presence(self.connection_id, user_ids);
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
                let page = match self
                    .state
                    .chat
                    .sync_page(&self.session, &conversation_id, after_seq, SYNC_PAGE)
                    .await
                {
                    Ok(page) => page,
                    Err(error) => {
                        // Say only how far this conversation really got, so the client
                        // does not skip what it never received.
                        done.insert(conversation_id.clone(), after_seq);
                        self.write(&error_frame(&error, None)).await?;
                        break;
                    }
                };
                let Some(last) = page.last() else { break };
                after_seq = last.seq;
                for message in page {
                    let frame = ServerFrame::NewMessage(message).to_json();
                    self.feed(Message::Text(frame.into())).await?;
                }
                self.flush().await?;
            }
        }
        self.write(&ServerFrame::SyncDone { cursors: done }).await
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
