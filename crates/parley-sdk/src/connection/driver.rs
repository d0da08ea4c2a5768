//! The driver: the task that owns the socket and all per-connection state.
//!
//! It runs one session per socket (heartbeat, frames in, commands out, batched `ack`s,
//! rate-limit retries) and, between sessions, backs off and reopens while queueing sends.
//! It applies each server frame to the cursor tracker and outbox before passing it on as
//! an [`Event`]; it ends for good only on close, a refused token or too many attempts.

use super::handle::{Command, ConnectionStats};
use super::socket::{open_socket, OpenedSocket, Socket};
use super::{ConnectionConfig, CLOSE_CODE_UNAUTHORIZED};
use crate::backoff::Backoff;
use crate::outbox::{ErrorOutcome, Outbox};
use crate::tracker::{CursorTracker, Observation};
use crate::{CloseReason, Event, MsgAck, SdkError};
use futures::{SinkExt, StreamExt};
use parley_proto::{ClientFrame, ConversationId, ServerFrame, UserId};
use rand::{rngs::StdRng, SeedableRng};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};

/// How one socket's life ended.
enum SessionEnd {
    /// Broken; reconnect if allowed.
    Lost(String),
    /// Ended for good.
    Terminal(CloseReason, Option<oneshot::Sender<()>>),
}

/// The task that owns the socket and all per-connection state.
pub(super) struct Driver {
    config: ConnectionConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
    tracker: CursorTracker,
    outbox: Outbox,
    backoff: Backoff,
    /// `read`s given while disconnected, highest per conversation, sent on reconnect.
    pending_reads: HashMap<ConversationId, i64>,
    /// The last `presence_subscribe`, restored after reconnects.
    presence_subscription: Vec<UserId>,
    stats: ConnectionStats,
    random: StdRng,
}

impl Driver {
    /// A driver for a fresh connection, resuming from `config.initial_cursors`.
    pub(super) fn new(
        config: ConnectionConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        Self {
            tracker: CursorTracker::from_cursors(&config.initial_cursors),
            backoff: Backoff::new(config.backoff_base, config.backoff_max),
            config,
            commands,
            events,
            outbox: Outbox::default(),
            pending_reads: HashMap::new(),
            presence_subscription: Vec::new(),
            stats: ConnectionStats::default(),
            random: StdRng::from_os_rng(),
        }
    }

    fn emit(&self, event: Event) {
        // The app may have dropped the event stream and kept a handle; that is allowed.
        let _ = self.events.send(event);
    }

    pub(super) async fn run(mut self, first: OpenedSocket) {
        let mut opened = first;
        let mut resumed = false;
        let (reason, close_reply) = loop {
            let session_end = self.run_session(opened, resumed).await;
            let lost_reason = match session_end {
                SessionEnd::Terminal(reason, close_reply) => break (reason, close_reply),
                SessionEnd::Lost(lost_reason) => lost_reason,
            };
            self.emit(Event::Disconnected {
                reason: lost_reason.clone(),
            });
            if !self.config.reconnect {
                break (CloseReason::Lost(lost_reason), None);
            }
            match self.reconnect().await {
                Ok(reopened) => {
                    opened = reopened;
                    resumed = true;
                    self.stats.reconnects += 1;
                }
                Err(SessionEnd::Terminal(reason, close_reply)) => break (reason, close_reply),
                Err(SessionEnd::Lost(_)) => unreachable!("reconnect ends only terminally"),
            }
        };
        let closed_error = match reason {
            CloseReason::Unauthorized => || SdkError::Unauthorized,
            _ => || SdkError::ConnectionClosed,
        };
        self.outbox.fail_all(closed_error);
        self.emit(Event::Closed { reason });
        if let Some(close_reply) = close_reply {
            let _ = close_reply.send(());
        }
    }

    /// Backs off and reopens until it works or must stop; queues sends meanwhile.
    async fn reconnect(&mut self) -> Result<OpenedSocket, SessionEnd> {
        loop {
            let failed_attempts = self.backoff.attempt();
            if self
                .config
                .max_reconnect_attempts
                .is_some_and(|max_attempts| failed_attempts >= max_attempts)
            {
                return Err(SessionEnd::Terminal(
                    CloseReason::GaveUp {
                        attempts: failed_attempts,
                    },
                    None,
                ));
            }
            let delay = self.backoff.next_delay(&mut self.random);
            self.emit(Event::Reconnecting {
                attempt: failed_attempts + 1,
                delay,
            });
            let wake_at = Instant::now() + delay;
            loop {
                tokio::select! {
                    () = sleep_until(wake_at) => break,
                    command = self.commands.recv() => match command {
                        None => return Err(SessionEnd::Terminal(CloseReason::ByClient, None)),
                        Some(Command::Close(reply)) => {
                            return Err(SessionEnd::Terminal(CloseReason::ByClient, Some(reply)))
                        }
                        Some(command) => self.queue_while_disconnected(command),
                    },
                }
            }
            match open_socket(&self.config).await {
                Ok(opened) => {
                    self.backoff.reset();
                    return Ok(opened);
                }
                Err(SdkError::Unauthorized) => {
                    return Err(SessionEnd::Terminal(CloseReason::Unauthorized, None))
                }
                Err(error) => tracing::debug!(%error, "reconnect attempt failed"),
            }
        }
    }

    fn queue_while_disconnected(&mut self, command: Command) {
        match command {
            Command::Send {
                client_msg_id,
                frame_text,
                waiter,
            } => self.outbox.insert(client_msg_id, frame_text, waiter),
            Command::Read {
                conversation_id,
                up_to_seq,
            } => {
                let pending = self.pending_reads.entry(conversation_id).or_insert(0);
                *pending = (*pending).max(up_to_seq);
            }
            Command::PresenceSubscribe(user_ids) => self.presence_subscription = user_ids,
            Command::Cursors(reply) => {
                let _ = reply.send(self.tracker.cursors());
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.current_stats());
            }
            // A sync happens after the reconnect anyway; ephemeral frames are stale then.
            Command::Sync | Command::Ephemeral(_) | Command::Close(_) => {}
        }
    }

    fn current_stats(&self) -> ConnectionStats {
        ConnectionStats {
            outbox_len: self.outbox.len(),
            ..self.stats.clone()
        }
    }

    /// One socket, from `ready` to break or close.
    async fn run_session(&mut self, opened: OpenedSocket, resumed: bool) -> SessionEnd {
        let OpenedSocket {
            mut socket,
            user_id,
            device_id,
            heartbeat_interval_ms,
        } = opened;
        self.emit(Event::Connected {
            user_id,
            device_id,
            resumed,
        });
        if let Err(error) = self.after_connect(&mut socket).await {
            return SessionEnd::Lost(error.to_string());
        }

        let mut heartbeat_interval = self.config.heartbeat_interval;
        if heartbeat_interval_ms > 0 {
            heartbeat_interval =
                heartbeat_interval.min(Duration::from_millis(heartbeat_interval_ms));
        }
        let mut heartbeat =
            tokio::time::interval_at(Instant::now() + heartbeat_interval, heartbeat_interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_received_at = Instant::now();
        let ack_timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(ack_timer);
        let mut ack_armed = false;
        let retry_timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(retry_timer);
        let mut retry_armed = false;
        if let Some(retry_at) = self.outbox.next_retry_at() {
            retry_timer.as_mut().reset(Instant::from_std(retry_at));
            retry_armed = true;
        }

        loop {
            tokio::select! {
                incoming = socket.next() => {
                    let message = match incoming {
                        None => return SessionEnd::Lost("the server closed the socket".into()),
                        Some(Err(error)) => return SessionEnd::Lost(error.to_string()),
                        Some(Ok(message)) => message,
                    };
                    last_received_at = Instant::now();
                    match message {
                        WsMessage::Text(text) => {
                            let reaction = self.handle_text(&text);
                            if let Some(session_end) = reaction.end {
                                let _ = socket.close(None).await;
                                return session_end;
                            }
                            if reaction.ack_needed && self.config.auto_ack && !ack_armed {
                                ack_timer.as_mut().reset(Instant::now() + self.config.ack_interval);
                                ack_armed = true;
                            }
                            if let Some(retry_at) = reaction.retry_at {
                                let retry_at = Instant::from_std(retry_at);
                                if !retry_armed || retry_at < retry_timer.deadline() {
                                    retry_timer.as_mut().reset(retry_at);
                                    retry_armed = true;
                                }
                            }
                        }
                        WsMessage::Close(close_frame) => {
                            return match close_frame {
                                Some(close_frame) if u16::from(close_frame.code) == CLOSE_CODE_UNAUTHORIZED => {
                                    SessionEnd::Terminal(CloseReason::Unauthorized, None)
                                }
                                Some(close_frame) => SessionEnd::Lost(format!(
                                    "closed by the server: {} {}", u16::from(close_frame.code), close_frame.reason
                                )),
                                None => SessionEnd::Lost("closed by the server".into()),
                            };
                        }
                        _ => {}
                    }
                }
                command = self.commands.recv() => {
                    let Some(command) = command else {
                        let _ = socket.close(None).await;
                        return SessionEnd::Terminal(CloseReason::ByClient, None);
                    };
                    if let Command::Close(reply) = command {
                        close_gracefully(&mut socket).await;
                        return SessionEnd::Terminal(CloseReason::ByClient, Some(reply));
                    }
                    if let Err(error) = self.handle_command(&mut socket, command).await {
                        return SessionEnd::Lost(error.to_string());
                    }
                    if !retry_armed {
                        if let Some(retry_at) = self.outbox.next_retry_at() {
                            retry_timer.as_mut().reset(Instant::from_std(retry_at));
                            retry_armed = true;
                        }
                    }
                }
                _ = heartbeat.tick() => {
                    if last_received_at.elapsed() > self.config.heartbeat_timeout {
                        return SessionEnd::Lost("heartbeat timeout: the server went silent".into());
                    }
                    if let Err(error) = send_frame(&mut socket, &ClientFrame::Ping {}).await {
                        return SessionEnd::Lost(error.to_string());
                    }
                }
                () = &mut ack_timer, if ack_armed => {
                    ack_armed = false;
                    for (conversation_id, seq) in self.tracker.take_pending_acks() {
                        self.stats.acks_sent += 1;
                        if let Err(error) = send_frame(&mut socket, &ClientFrame::Ack { conversation_id, seq }).await {
                            return SessionEnd::Lost(error.to_string());
                        }
                    }
                }
                () = &mut retry_timer, if retry_armed => {
                    retry_armed = false;
                    let due = self.outbox.take_due_retries(std::time::Instant::now());
                    self.stats.resent += due.len() as u64;
                    if let Err(error) = self.write_sends(&mut socket, due).await {
                        return SessionEnd::Lost(error.to_string());
                    }
                    if let Some(retry_at) = self.outbox.next_retry_at() {
                        retry_timer.as_mut().reset(Instant::from_std(retry_at));
                        retry_armed = true;
                    }
                }
            }
        }
    }

    /// `sync`, outbox resend, queued reads and the presence subscription.
    async fn after_connect(&mut self, socket: &mut Socket) -> Result<(), SdkError> {
        if self.config.auto_sync {
            send_frame(
                socket,
                &ClientFrame::Sync {
                    cursors: self.tracker.cursors(),
                },
            )
            .await?;
        }
        let resend = self.outbox.frames_to_resend();
        self.stats.resent += resend.len() as u64;
        self.write_sends(socket, resend).await?;
        for (conversation_id, up_to_seq) in std::mem::take(&mut self.pending_reads) {
            send_frame(
                socket,
                &ClientFrame::Read {
                    conversation_id,
                    up_to_seq,
                },
            )
            .await?;
        }
        if !self.presence_subscription.is_empty() {
            send_frame(
                socket,
                &ClientFrame::PresenceSubscribe {
                    user_ids: self.presence_subscription.clone(),
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn write_sends(
        &mut self,
        socket: &mut Socket,
        sends: Vec<(String, Utf8Bytes)>,
    ) -> Result<(), SdkError> {
        if sends.is_empty() {
            return Ok(());
        }
        for (client_msg_id, frame_text) in sends {
            self.outbox.mark_written(&client_msg_id);
            socket.feed(WsMessage::Text(frame_text)).await?;
        }
        socket.flush().await?;
        Ok(())
    }

    async fn handle_command(
        &mut self,
        socket: &mut Socket,
        command: Command,
    ) -> Result<(), SdkError> {
        match command {
            Command::Send {
                client_msg_id,
                frame_text,
                waiter,
            } => {
                self.outbox
                    .insert(client_msg_id.clone(), frame_text, waiter);
                if let Some(frame_text) = self.outbox.frame_of(&client_msg_id) {
                    self.outbox.mark_written(&client_msg_id);
                    socket.send(WsMessage::Text(frame_text)).await?;
                }
            }
            Command::Ephemeral(frame) => send_frame(socket, &frame).await?,
            Command::Read {
                conversation_id,
                up_to_seq,
            } => {
                send_frame(
                    socket,
                    &ClientFrame::Read {
                        conversation_id,
                        up_to_seq,
                    },
                )
                .await?
            }
            Command::PresenceSubscribe(user_ids) => {
                self.presence_subscription = user_ids.clone();
                send_frame(socket, &ClientFrame::PresenceSubscribe { user_ids }).await?;
            }
            Command::Sync => {
                send_frame(
                    socket,
                    &ClientFrame::Sync {
                        cursors: self.tracker.cursors(),
                    },
                )
                .await?
            }
            Command::Cursors(reply) => {
                let _ = reply.send(self.tracker.cursors());
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.current_stats());
            }
            Command::Close(_) => unreachable!("close is handled by the session loop"),
        }
        Ok(())
    }

    /// Applies one server frame to the state and forwards it as an event.
    fn handle_text(&mut self, text: &str) -> FrameReaction {
        let mut reaction = FrameReaction::default();
        let frame = match serde_json::from_str::<ServerFrame>(text) {
            Ok(frame) => frame,
            Err(error) => {
                // A newer server may send frame types this SDK does not know yet.
                tracing::debug!(%error, "ignoring undecodable server frame");
                return reaction;
            }
        };
        let event = match frame {
            ServerFrame::Ready { .. } => return reaction,
            ServerFrame::MsgAck {
                client_msg_id,
                conversation_id,
                message_id,
                seq,
                created_at,
            } => {
                let ack = MsgAck {
                    client_msg_id,
                    conversation_id,
                    message_id,
                    seq,
                    created_at,
                };
                self.outbox.acknowledge(&ack);
                // Our own message counts as seen (the cursor must not stall on it); it is
                // not acknowledged on its own, only as part of the next `ack` batch.
                self.tracker.observe(&ack.conversation_id, ack.seq);
                Event::MsgAck(ack)
            }
            ServerFrame::NewMessage(message) => {
                match self.tracker.observe(&message.conversation_id, message.seq) {
                    Observation::New => {
                        reaction.ack_needed = true;
                        Event::NewMessage(message)
                    }
                    Observation::Duplicate => {
                        self.stats.duplicates_suppressed += 1;
                        return reaction;
                    }
                }
            }
            ServerFrame::ConversationRemoved {
                ref conversation_id,
            } => {
                self.tracker.forget(conversation_id);
                Event::Frame(frame)
            }
            // This user deleted the chat for themselves up to `cleared_seq` (here or on
            // another device): nothing below it will come, so it is no gap to wait on.
            ServerFrame::ConversationUpdated { ref conversation }
                if conversation.cleared_seq.is_some_and(|cleared| cleared > 0) =>
            {
                if let Some(cleared) = conversation.cleared_seq {
                    self.tracker.skip_to(&conversation.conversation_id, cleared);
                }
                Event::Frame(frame)
            }
            ServerFrame::SyncDone { ref cursors } => {
                self.tracker.apply_sync_done(cursors);
                Event::Frame(frame)
            }
            ServerFrame::Error {
                code,
                ref message,
                ref client_msg_id,
                retry_after_ms,
            } => {
                if let Some(client_msg_id) = client_msg_id {
                    let outcome = self.outbox.refuse(
                        client_msg_id,
                        code,
                        message,
                        retry_after_ms.map(Duration::from_millis),
                        self.config.rate_limit_fallback,
                        std::time::Instant::now(),
                    );
                    if let ErrorOutcome::RetryAt(retry_at) = outcome {
                        reaction.retry_at = Some(retry_at);
                    }
                } else if code == parley_proto::ErrorCode::Unauthorized {
                    reaction.end = Some(SessionEnd::Terminal(CloseReason::Unauthorized, None));
                }
                Event::Frame(frame)
            }
            // Passed on untouched. No wildcard: a new server frame fails to compile
            // here, and naming it in this arm is all the SDK needs.
            ServerFrame::Receipt { .. }
            | ServerFrame::Typing { .. }
            | ServerFrame::Presence { .. }
            | ServerFrame::ConversationUpdated { .. }
            | ServerFrame::MessageHidden { .. }
            | ServerFrame::Pong {} => Event::Frame(frame),
        };
        self.emit(event);
        reaction
    }
}

/// What the session loop must do after a frame was applied.
#[derive(Default)]
struct FrameReaction {
    ack_needed: bool,
    retry_at: Option<std::time::Instant>,
    end: Option<SessionEnd>,
}

async fn send_frame(socket: &mut Socket, frame: &ClientFrame) -> Result<(), SdkError> {
    let text = serde_json::to_string(frame)?;
    socket.send(WsMessage::text(text)).await?;
    Ok(())
}

/// Sends a normal close and waits up to a second for the server's close.
async fn close_gracefully(socket: &mut Socket) {
    let close_frame = tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "client closed".into(),
    };
    if socket.close(Some(close_frame)).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}
