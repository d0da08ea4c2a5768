//! The serve loop of one authenticated socket, from `ready` to close.
//!
//! `Connection` reads client frames, spends the per-connection frame budget, calls
//! `Chat` and writes the answers; it also writes what the hub queued for it, the `msg_ack`s
//! of its sends in the order they were sent (as commits land, so a client may pipeline),
//! and relays typing through the throttle. Silence past `heartbeat_timeout` closes it.
//! Every write is bounded by `WRITE_TIMEOUT`. Streaming a `sync` is in `sync.rs`.

use super::close::drain_after_close;
use super::frames::{decode_error, protocol_violation, too_many_frames};
use super::positions::{Check, Positions};
use super::{Socket, WRITE_TIMEOUT};
use crate::error::error_frame;
use crate::hub::Outbound;
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures::stream::FuturesOrdered;
use futures::{SinkExt, StreamExt};
use parley_core::chat::SendRequest;
use parley_core::ratelimit::{Quota, TokenBucket};
use parley_core::{ConnectionId, Error, Session};
use parley_proto::{ClientFrame, ErrorCode, ServerFrame, Timestamp};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch, Notify};

/// Sends awaiting their commit per connection; more are refused with `rate_limited`.
const MAX_IN_FLIGHT_SENDS: usize = 1024;

type AckFuture = Pin<Box<dyn Future<Output = ServerFrame> + Send>>;

pub(super) struct Connection<S> {
    socket: S,
    pub(super) state: AppState,
    pub(super) session: Session,
    connection_id: ConnectionId,
    /// On tokio's clock, like the heartbeat that reads it (the same instant in production;
    /// a paused clock in tests).
    last_heard: tokio::time::Instant,
    pending_acks: FuturesOrdered<AckFuture>,
    /// What this socket's typing frames relayed, and what is held for the next window;
    /// a socket that drops mid-typing is announced as stopped.
    typing: parley_core::typing::TypingThrottle,
    /// Frames this socket may still send: `frames_per_second`, bursts of twice that.
    frame_budget: TokenBucket,
    frame_quota: Quota,
    /// How far this socket holds each conversation, and the next step of its position
    /// check (`positions.rs`).
    pub(super) positions: Positions,
    pub(super) check: Option<Check>,
    /// Bumped when the bus may have lost events for this node; `None` once the bus is
    /// gone (or never loses any).
    bus_losses: Option<watch::Receiver<u64>>,
}

/// Why the loop ended.
enum Ending {
    Closed,
    Close(u16, &'static str),
}

impl<S: Socket> Connection<S> {
    pub(super) fn new(
        socket: S,
        state: AppState,
        session: Session,
        connection_id: ConnectionId,
    ) -> Self {
        let frame_quota = Quota::per_period(
            state.config.frames_per_second.max(1).saturating_mul(2),
            std::time::Duration::from_secs(2),
        );
        let mut bus_losses = state.bus_losses.clone();
        bus_losses.mark_unchanged();
        let mut connection = Self {
            bus_losses: Some(bus_losses),
            positions: Positions::new(),
            check: None,
            socket,
            state,
            session,
            connection_id,
            last_heard: tokio::time::Instant::now(),
            pending_acks: FuturesOrdered::new(),
            typing: Default::default(),
            frame_budget: TokenBucket::full(frame_quota, tokio::time::Instant::now()),
            frame_quota,
        };
        connection.check = connection.first_check();
        connection
    }

    /// Serves until the socket breaks or closes, the hub evicts or closes it, or the
    /// client falls silent. A close of ours first writes the acks still in flight.
    pub(super) async fn serve(
        &mut self,
        mut outbound: mpsc::Receiver<Outbound>,
        evict: Arc<Notify>,
    ) {
        let timeout = self.state.config.heartbeat_timeout;
        let mut heartbeat =
            tokio::time::interval((timeout / 3).max(std::time::Duration::from_millis(10)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ending = loop {
            let typing_due = self.typing.next_due();
            let check_due = self.check.as_ref().map(|check| check.due().into_std());
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
                incoming = self.socket.next() => {
                    let message = match incoming {
                        Some(Ok(message)) => message,
                        Some(Err(error)) => match protocol_violation(&error) {
                            Some((code, reason)) => break Ending::Close(code, reason),
                            None => break Ending::Closed,
                        },
                        None => break Ending::Closed,
                    };
                    self.last_heard = tokio::time::Instant::now();
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
                _ = sleep_until_due(check_due) => {
                    if self.run_check().await.is_err() { break Ending::Closed; }
                }
                changed = watch_losses(&mut self.bus_losses) => {
                    match changed {
                        Ok(()) => self.check_after_loss(),
                        Err(_) => self.bus_losses = None,
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

    /// Announces as stopped every conversation this socket was still typing in.
    pub(super) async fn stop_typing(&mut self) {
        let typing_ttl = std::time::Duration::from_secs(parley_proto::limits::TYPING_TTL_SECS);
        for conversation_id in self.typing.still_typing(Instant::now(), typing_ttl) {
            let _ = self
                .state
                .chat
                .typing(&self.session, &conversation_id, false)
                .await;
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
                Outbound::Frame(frame, created_at_ms, position) => {
                    if let Some(position) = position {
                        self.positions.received(&position.0, position.1);
                    }
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

    pub(super) async fn write(&mut self, frame: &ServerFrame) -> Result<(), ()> {
        if let ServerFrame::MsgAck {
            conversation_id,
            seq,
            ..
        } = frame
        {
            self.positions.received(conversation_id, *seq);
        }
        self.feed(Message::Text(frame.to_json().into())).await?;
        self.flush().await
    }

    /// Queues a message in the socket's write buffer (writing if the buffer is full).
    /// Every socket write is bounded by `WRITE_TIMEOUT`: a client that stops reading
    /// must not pin its task, its hub entry and its presence forever.
    pub(super) async fn feed(&mut self, message: Message) -> Result<(), ()> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.socket.feed(message)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    pub(super) async fn flush(&mut self) -> Result<(), ()> {
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
                target_seq,
                mentions,
                attachments,
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
                    target_seq,
                    mentions,
                    attachments,
                    forwarded: false,
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
}

/// Waits until `due`, or forever when nothing is due.
async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// The bus's next report of a possible loss; never, once it is gone.
async fn watch_losses(
    losses: &mut Option<watch::Receiver<u64>>,
) -> Result<(), watch::error::RecvError> {
    match losses {
        Some(losses) => losses.changed().await,
        None => std::future::pending().await,
    }
}
