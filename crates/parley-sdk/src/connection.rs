//! The real-time connection: one WebSocket that heals itself, seen as a stream of events.
//!
//! [`Connection::connect`] opens `/ws?token=…` and waits for `ready`; a driver task then
//! owns the socket. It pings, reconnects with jittered backoff, `sync`s from the cursors
//! it tracks, resends unacknowledged sends with their `client_msg_id`, deduplicates
//! `new_message` and batches `ack`s. Apps talk to it through a cloneable
//! [`ConnectionHandle`]; it never reconnects after the token is refused (close 4001).

use crate::backoff::Backoff;
use crate::outbox::{AckWaiter, ErrorOutcome, Outbox};
use crate::tracker::{CursorTracker, Observation};
use crate::{CloseReason, Event, MsgAck, SdkError};
use futures::{SinkExt, Stream, StreamExt};
use parley_proto::{
    frames::Cursors, ClientFrame, ContentType, ConversationId, DeviceId, ServerFrame, UserId,
};
use rand::{rngs::StdRng, SeedableRng};
use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The close code the server uses when the token is revoked or unknown.
pub const CLOSE_CODE_UNAUTHORIZED: u16 = 4001;

/// How a [`Connection`] behaves. Build with [`ConnectionConfig::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// `http(s)://host:port` (the REST base) or `ws(s)://host:port`; `/ws` is appended.
    pub server_url: String,
    /// The bearer token from `register`/`login`.
    pub token: String,
    /// How often to `ping` (the protocol says every 30 s). A shorter interval announced
    /// by the server in `ready` wins.
    pub heartbeat_interval: Duration,
    /// Reconnect when nothing at all was received for this long.
    pub heartbeat_timeout: Duration,
    /// How long the upgrade plus `ready` may take.
    pub connect_timeout: Duration,
    /// Reconnect after the socket breaks. When `false` a break is terminal.
    pub reconnect: bool,
    /// First backoff ceiling; the ceiling doubles per failed attempt.
    pub backoff_base: Duration,
    /// Largest backoff ceiling.
    pub backoff_max: Duration,
    /// Give up after this many consecutive failed reconnects (`None`: never).
    pub max_reconnect_attempts: Option<u32>,
    /// Send `sync` with the tracked cursors after every (re)connect.
    pub auto_sync: bool,
    /// Cursors to start from (e.g. saved from [`ConnectionHandle::cursors`] last run).
    /// Conversations not listed start at the first message seen in them.
    pub initial_cursors: Cursors,
    /// Send `ack` for received messages automatically (batched, see `ack_interval`).
    pub auto_ack: bool,
    /// At most one `ack` batch per this interval: the highest contiguous `seq` of every
    /// conversation that advanced.
    pub ack_interval: Duration,
    /// Retry delay for a `rate_limited` send whose error carries no `retry_after_ms`.
    pub rate_limit_fallback: Duration,
    /// tungstenite's read buffer. Small keeps thousands of idle connections cheap; the
    /// buffer still grows for large frames.
    pub read_buffer_size: usize,
}

impl ConnectionConfig {
    /// Defaults from the protocol: 30 s heartbeat, backoff 250 ms … 30 s, auto sync and
    /// auto ack every 50 ms.
    pub fn new(server_url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            server_url: server_url.into(),
            token: token.into(),
            heartbeat_interval: Duration::from_secs(parley_proto::limits::HEARTBEAT_INTERVAL_SECS),
            heartbeat_timeout: Duration::from_secs(75),
            connect_timeout: Duration::from_secs(10),
            reconnect: true,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            max_reconnect_attempts: None,
            auto_sync: true,
            initial_cursors: Cursors::new(),
            auto_ack: true,
            ack_interval: Duration::from_millis(50),
            rate_limit_fallback: Duration::from_secs(1),
            read_buffer_size: 4 * 1024,
        }
    }

    /// The WebSocket URL: `ws(s)://host[:port][/base]/ws?token=…`.
    pub fn websocket_url(&self) -> Result<url::Url, SdkError> {
        websocket_url(&self.server_url, &self.token)
    }
}

/// Turns a REST base URL into the `/ws?token=` URL.
pub(crate) fn websocket_url(server_url: &str, token: &str) -> Result<url::Url, SdkError> {
    let mut url = url::Url::parse(server_url)
        .map_err(|error| SdkError::InvalidUrl(format!("{server_url}: {error}")))?;
    let websocket_scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(SdkError::InvalidUrl(format!("unsupported scheme {other}"))),
    };
    url.set_scheme(websocket_scheme)
        .map_err(|()| SdkError::InvalidUrl(server_url.to_owned()))?;
    let base_path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{base_path}/ws"));
    url.set_query(None);
    url.query_pairs_mut().append_pair("token", token);
    Ok(url)
}

/// A message to send, with the optional fields of `send_message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub conversation_id: ConversationId,
    pub content: String,
    /// `None` means [`ContentType::TEXT`].
    pub content_type: Option<ContentType>,
    pub reply_to_seq: Option<i64>,
    /// `None` lets the SDK make a ULID. Give one to make a retry across restarts safe.
    pub client_msg_id: Option<String>,
}

impl OutgoingMessage {
    /// A plain text message.
    pub fn text(conversation_id: ConversationId, content: impl Into<String>) -> Self {
        Self {
            conversation_id,
            content: content.into(),
            content_type: None,
            reply_to_seq: None,
            client_msg_id: None,
        }
    }
}

/// A fresh `client_msg_id` (a ULID string).
pub fn new_client_msg_id() -> String {
    ulid::Ulid::new().to_string()
}

/// A send in flight: its `client_msg_id` and, on demand, its `msg_ack`.
#[derive(Debug)]
pub struct SendHandle {
    client_msg_id: String,
    outcome: oneshot::Receiver<Result<MsgAck, SdkError>>,
}

impl SendHandle {
    /// The id the server deduplicates resends by.
    pub fn client_msg_id(&self) -> &str {
        &self.client_msg_id
    }

    /// Waits for the `msg_ack` (across reconnects and rate-limit retries). Fails with
    /// [`SdkError::Rejected`] if the server refused the send, or
    /// [`SdkError::ConnectionClosed`] if the connection ended first.
    pub async fn ack(self) -> Result<MsgAck, SdkError> {
        self.outcome
            .await
            .unwrap_or(Err(SdkError::ConnectionClosed))
    }
}

/// Counters of one connection, for tests and load generators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Successful reconnects (the first connection not counted).
    pub reconnects: u64,
    /// `send_message` frames written after a reconnect (unacknowledged, or queued while
    /// disconnected) or after a rate-limit wait.
    pub resent: u64,
    /// `new_message`s dropped because their `(conversation_id, seq)` was seen before.
    pub duplicates_suppressed: u64,
    /// Sends still waiting for their `msg_ack`.
    pub outbox_len: usize,
    /// `ack` frames written.
    pub acks_sent: u64,
}

enum Command {
    Send {
        client_msg_id: String,
        frame_text: Utf8Bytes,
        waiter: Option<AckWaiter>,
    },
    /// Ephemeral frames (`typing`, explicit `ack`, `ping`): dropped while disconnected.
    Ephemeral(ClientFrame),
    Read {
        conversation_id: ConversationId,
        up_to_seq: i64,
    },
    PresenceSubscribe(Vec<UserId>),
    Sync,
    Cursors(oneshot::Sender<Cursors>),
    Stats(oneshot::Sender<ConnectionStats>),
    Close(oneshot::Sender<()>),
}

/// The sending half of a connection: cheap to clone, usable from any task.
///
/// Every method only queues a command for the driver task, so none blocks on the
/// network; they fail only with [`SdkError::ConnectionClosed`] once the connection ended.
#[derive(Clone, Debug)]
pub struct ConnectionHandle {
    commands: mpsc::UnboundedSender<Command>,
    user_id: UserId,
    device_id: DeviceId,
}

impl ConnectionHandle {
    fn command(&self, command: Command) -> Result<(), SdkError> {
        self.commands
            .send(command)
            .map_err(|_| SdkError::ConnectionClosed)
    }

    /// The authenticated user (from `ready`).
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// This connection's device (from `ready`).
    pub fn device_id(&self) -> &DeviceId {
        &self.device_id
    }

    /// Sends a text message; await [`SendHandle::ack`] for its `msg_ack`.
    pub fn send(
        &self,
        conversation_id: ConversationId,
        content: impl Into<String>,
    ) -> Result<SendHandle, SdkError> {
        self.send_message(OutgoingMessage::text(conversation_id, content))
    }

    /// Sends a message with every option; kept in the outbox until its `msg_ack`.
    pub fn send_message(&self, message: OutgoingMessage) -> Result<SendHandle, SdkError> {
        let (waiter, outcome) = oneshot::channel();
        let client_msg_id = self.queue_send(message, Some(waiter))?;
        Ok(SendHandle {
            client_msg_id,
            outcome,
        })
    }

    /// Sends and waits for the `msg_ack`.
    pub async fn send_and_wait(
        &self,
        conversation_id: ConversationId,
        content: impl Into<String>,
    ) -> Result<MsgAck, SdkError> {
        self.send(conversation_id, content)?.ack().await
    }

    /// Sends without a waiter and returns the `client_msg_id`; the outcome arrives only
    /// as [`Event::MsgAck`] or an `error` frame ([`Event::Frame`]). The cheapest way to
    /// send (load generators).
    pub fn enqueue(&self, message: OutgoingMessage) -> Result<String, SdkError> {
        self.queue_send(message, None)
    }

    fn queue_send(
        &self,
        message: OutgoingMessage,
        waiter: Option<AckWaiter>,
    ) -> Result<String, SdkError> {
        let client_msg_id = message.client_msg_id.unwrap_or_else(new_client_msg_id);
        let frame = ClientFrame::SendMessage {
            client_msg_id,
            conversation_id: message.conversation_id,
            content: message.content,
            content_type: message.content_type,
            reply_to_seq: message.reply_to_seq,
        };
        let frame_text = Utf8Bytes::from(serde_json::to_string(&frame)?);
        let ClientFrame::SendMessage { client_msg_id, .. } = frame else {
            unreachable!("the frame was built as send_message above")
        };
        self.command(Command::Send {
            client_msg_id: client_msg_id.clone(),
            frame_text,
            waiter,
        })?;
        Ok(client_msg_id)
    }

    /// Marks the conversation read up to `up_to_seq` (kept and sent after a reconnect
    /// if the socket is down).
    pub fn read(&self, conversation_id: ConversationId, up_to_seq: i64) -> Result<(), SdkError> {
        self.command(Command::Read {
            conversation_id,
            up_to_seq,
        })
    }

    /// Starts or stops the typing indicator (dropped while disconnected).
    pub fn typing(&self, conversation_id: ConversationId, is_typing: bool) -> Result<(), SdkError> {
        self.command(Command::Ephemeral(ClientFrame::Typing {
            conversation_id,
            is_typing,
        }))
    }

    /// Sends an explicit `ack` (only needed with `auto_ack` off).
    pub fn ack(&self, conversation_id: ConversationId, seq: i64) -> Result<(), SdkError> {
        self.command(Command::Ephemeral(ClientFrame::Ack {
            conversation_id,
            seq,
        }))
    }

    /// Subscribes to these users' presence; replaces the previous set and is restored
    /// after every reconnect.
    pub fn presence_subscribe(&self, user_ids: Vec<UserId>) -> Result<(), SdkError> {
        self.command(Command::PresenceSubscribe(user_ids))
    }

    /// Sends a `sync` with the tracked cursors now (one is sent after every connect
    /// anyway when `auto_sync` is on); a `sync_done` frame ([`Event::Frame`]) follows.
    pub fn sync(&self) -> Result<(), SdkError> {
        self.command(Command::Sync)
    }

    /// Sends a `ping` now (one is sent every `heartbeat_interval` anyway).
    pub fn ping(&self) -> Result<(), SdkError> {
        self.command(Command::Ephemeral(ClientFrame::Ping {}))
    }

    /// The highest contiguous `seq` seen per conversation; save it to resume later
    /// through [`ConnectionConfig::initial_cursors`].
    pub async fn cursors(&self) -> Result<Cursors, SdkError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Cursors(reply))?;
        answer.await.map_err(|_| SdkError::ConnectionClosed)
    }

    /// The connection's counters.
    pub async fn stats(&self) -> Result<ConnectionStats, SdkError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Stats(reply))?;
        answer.await.map_err(|_| SdkError::ConnectionClosed)
    }

    /// Sends a close frame, waits (briefly) for the server's, and ends the connection;
    /// [`Event::Closed`] with [`CloseReason::ByClient`] is the last event. Unacknowledged
    /// sends fail with [`SdkError::ConnectionClosed`].
    pub async fn close(&self) -> Result<(), SdkError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Close(reply))?;
        answer.await.map_err(|_| SdkError::ConnectionClosed)
    }
}

/// The receiving half of a connection: every [`Event`] in order. Also a [`Stream`].
#[derive(Debug)]
pub struct EventStream {
    events: mpsc::UnboundedReceiver<Event>,
}

impl EventStream {
    /// The next event; `None` after [`Event::Closed`].
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Up to `limit` waiting events appended to `buffer` (waits for at least one);
    /// returns how many, 0 meaning the stream ended. Cheaper than one call per event.
    pub async fn next_events(&mut self, buffer: &mut Vec<Event>, limit: usize) -> usize {
        self.events.recv_many(buffer, limit).await
    }
}

impl Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Event>> {
        self.events.poll_recv(context)
    }
}

/// A real-time connection: a [`ConnectionHandle`] (via `Deref`) plus its [`EventStream`].
///
/// The app must keep reading events: they queue without bound until read.
#[derive(Debug)]
pub struct Connection {
    handle: ConnectionHandle,
    events: EventStream,
}

impl std::ops::Deref for Connection {
    type Target = ConnectionHandle;

    fn deref(&self) -> &ConnectionHandle {
        &self.handle
    }
}

impl Connection {
    /// Opens the socket and waits for `ready`. Errors here are returned, not retried:
    /// [`SdkError::Unauthorized`] for a refused token, transport errors otherwise.
    /// The first event is [`Event::Connected`].
    pub async fn connect(config: ConnectionConfig) -> Result<Connection, SdkError> {
        let opened = open_socket(&config).await?;
        let (commands_sender, commands) = mpsc::unbounded_channel();
        let (events_sender, events) = mpsc::unbounded_channel();
        let handle = ConnectionHandle {
            commands: commands_sender,
            user_id: opened.user_id.clone(),
            device_id: opened.device_id.clone(),
        };
        let driver = Driver {
            tracker: CursorTracker::from_cursors(&config.initial_cursors),
            backoff: Backoff::new(config.backoff_base, config.backoff_max),
            config,
            commands,
            events: events_sender,
            outbox: Outbox::default(),
            pending_reads: HashMap::new(),
            presence_subscription: Vec::new(),
            stats: ConnectionStats::default(),
            random: StdRng::from_os_rng(),
        };
        tokio::spawn(driver.run(opened));
        Ok(Connection {
            handle,
            events: EventStream { events },
        })
    }

    /// The next event; `None` after [`Event::Closed`].
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.next_event().await
    }

    /// The next event if one is waiting.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_next_event()
    }

    /// A clone of the sending half.
    pub fn handle(&self) -> ConnectionHandle {
        self.handle.clone()
    }

    /// Splits into the sending half and the event stream, e.g. to read events in one
    /// task and send from others.
    pub fn into_parts(self) -> (ConnectionHandle, EventStream) {
        (self.handle, self.events)
    }
}

/// A socket that has received `ready`.
struct OpenedSocket {
    socket: Socket,
    user_id: UserId,
    device_id: DeviceId,
    heartbeat_interval_ms: u64,
}

fn websocket_config(config: &ConnectionConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(0)
        .max_message_size(Some(4 * parley_proto::limits::MAX_FRAME_BYTES))
        .max_frame_size(Some(4 * parley_proto::limits::MAX_FRAME_BYTES))
}

/// Upgrades and waits for `ready`, within `connect_timeout`.
async fn open_socket(config: &ConnectionConfig) -> Result<OpenedSocket, SdkError> {
    let url = config.websocket_url()?;
    tokio::time::timeout(config.connect_timeout, async {
        let connected = tokio_tungstenite::connect_async_with_config(
            url.as_str(),
            Some(websocket_config(config)),
            true,
        )
        .await;
        let mut socket = match connected {
            Ok((socket, _response)) => socket,
            Err(tungstenite::Error::Http(response))
                if matches!(response.status().as_u16(), 401 | 403) =>
            {
                return Err(SdkError::Unauthorized)
            }
            Err(error) => return Err(error.into()),
        };
        loop {
            let Some(message) = socket.next().await else {
                return Err(SdkError::ConnectionClosed);
            };
            match message? {
                WsMessage::Text(text) => match serde_json::from_str::<ServerFrame>(&text) {
                    Ok(ServerFrame::Ready {
                        user_id,
                        device_id,
                        heartbeat_interval_ms,
                    }) => {
                        return Ok(OpenedSocket {
                            socket,
                            user_id,
                            device_id,
                            heartbeat_interval_ms,
                        })
                    }
                    Ok(ServerFrame::Error {
                        code: parley_proto::ErrorCode::Unauthorized,
                        ..
                    }) => return Err(SdkError::Unauthorized),
                    Ok(other) => tracing::debug!(?other, "frame before ready ignored"),
                    Err(error) => tracing::debug!(%error, "undecodable frame before ready"),
                },
                WsMessage::Close(close_frame) => {
                    if close_frame.is_some_and(|close_frame| {
                        u16::from(close_frame.code) == CLOSE_CODE_UNAUTHORIZED
                    }) {
                        return Err(SdkError::Unauthorized);
                    }
                    return Err(SdkError::ConnectionClosed);
                }
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| SdkError::Timeout("ready"))?
}

/// How one socket's life ended.
enum SessionEnd {
    /// Broken; reconnect if allowed.
    Lost(String),
    /// Ended for good.
    Terminal(CloseReason, Option<oneshot::Sender<()>>),
}

/// The task that owns the socket and all per-connection state.
struct Driver {
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
    fn emit(&self, event: Event) {
        // The app may have dropped the event stream and kept a handle; that is allowed.
        let _ = self.events.send(event);
    }

    async fn run(mut self, first: OpenedSocket) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// REST base URLs map to the WebSocket endpoint with the token URL-encoded.
    #[test]
    fn websocket_url_from_rest_base() {
        assert_eq!(
            websocket_url("http://127.0.0.1:8080", "t0k")
                .unwrap()
                .as_str(),
            "ws://127.0.0.1:8080/ws?token=t0k"
        );
        assert_eq!(
            websocket_url("https://chat.example/base/", "a b+c")
                .unwrap()
                .as_str(),
            "wss://chat.example/base/ws?token=a+b%2Bc"
        );
        assert_eq!(
            websocket_url("ws://h:1/?x=1", "t").unwrap().as_str(),
            "ws://h:1/ws?token=t"
        );
        assert!(matches!(
            websocket_url("ftp://h", "t"),
            Err(SdkError::InvalidUrl(_))
        ));
    }

    /// The frame the SDK writes for a send is the protocol's `send_message`.
    #[test]
    fn outgoing_message_encodes_as_send_message() {
        let (commands, mut queued) = mpsc::unbounded_channel();
        let handle = ConnectionHandle {
            commands,
            user_id: UserId::from("u"),
            device_id: DeviceId::from("d"),
        };
        let client_msg_id = handle
            .enqueue(OutgoingMessage {
                client_msg_id: Some("m-1".into()),
                reply_to_seq: Some(3),
                ..OutgoingMessage::text(ConversationId::from("c_1"), "hi")
            })
            .unwrap();
        assert_eq!(client_msg_id, "m-1");
        let Some(Command::Send { frame_text, .. }) = queued.try_recv().ok() else {
            panic!("expected a send command");
        };
        let value: serde_json::Value = serde_json::from_str(frame_text.as_str()).unwrap();
        assert_eq!(value["type"], "send_message");
        assert_eq!(value["client_msg_id"], "m-1");
        assert_eq!(value["conversation_id"], "c_1");
        assert_eq!(value["reply_to_seq"], 3);
        let generated = handle
            .enqueue(OutgoingMessage::text(ConversationId::from("c_1"), "x"))
            .unwrap();
        assert_eq!(generated.len(), 26, "a ULID string");
    }
}
