//! The test harness for one socket: an in-memory socket, its client end, and a node.
//!
//! `MemorySocket` is the server's end of a pair of channels, a `Sink`/`Stream` like axum's
//! `WebSocket`; `Client` is the other end with the task running `run` on it; `Node` is a
//! `Chat` on the in-process ports (SQLite in a temp dir) with the gateway's `AppState`.
//! Every wait is bounded by `PATIENCE`, so a missing frame fails a test, never hangs it.

use crate::ws::run;
use crate::{AppState, GatewayConfig};
use axum::extract::ws::Message;
use futures::channel::mpsc;
use futures::{Sink, Stream, StreamExt};
use parley_core::chat::NewChat;
use parley_core::local::{LocalBus, LocalPresence, LocalRateLimiter};
use parley_core::{Bus, Chat, CoreConfig, NodeId, Ports, Session};
use parley_proto::ConversationId;
use serde_json::{json, Value};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tungstenite::error::Error as WsError;

/// The server's end of an in-memory socket: what the client sent (or a failure, as the
/// WebSocket layer would report it) comes in on `incoming`; what the server writes goes
/// out on `outgoing`. Writes never wait, so flushing is a no-op.
struct MemorySocket {
    incoming: mpsc::UnboundedReceiver<Result<Message, axum::Error>>,
    outgoing: mpsc::UnboundedSender<Message>,
}

impl Stream for MemorySocket {
    type Item = Result<Message, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.incoming.poll_next_unpin(cx)
    }
}

impl Sink<Message> for MemorySocket {
    type Error = axum::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.outgoing.poll_ready(cx).map_err(axum::Error::new)
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        self.outgoing.start_send(message).map_err(axum::Error::new)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.outgoing.close_channel();
        Poll::Ready(Ok(()))
    }
}

/// Longest a test waits for the server's next message (on the paused clock in the tests
/// that pause it), so that a missing frame fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(60);

/// The client's end of a `MemorySocket`, and the task serving the other end.
pub(super) struct Client {
    to_server: mpsc::UnboundedSender<Result<Message, axum::Error>>,
    from_server: mpsc::UnboundedReceiver<Message>,
    served: tokio::task::JoinHandle<()>,
}

impl Client {
    pub(super) fn send(&self, frame: Value) {
        self.send_raw(text(&frame.to_string()));
    }

    pub(super) fn send_raw(&self, message: Message) {
        self.to_server
            .unbounded_send(Ok(message))
            .expect("the server still reads");
    }

    /// What the WebSocket layer reports when it refuses a frame or the socket breaks.
    pub(super) fn fail(&self, error: WsError) {
        self.to_server
            .unbounded_send(Err(axum::Error::new(error)))
            .expect("the server still reads");
    }

    /// The server's next message; `None` once it dropped its socket.
    pub(super) async fn receive(&mut self) -> Option<Message> {
        tokio::time::timeout(PATIENCE, self.from_server.next())
            .await
            .expect("the server writes or hangs up in time")
    }

    pub(super) async fn frame(&mut self) -> Value {
        match self.receive().await {
            Some(Message::Text(text)) => serde_json::from_str(&text).expect("frames are JSON"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    pub(super) async fn close_frame(&mut self) -> (u16, String) {
        match self.receive().await {
            Some(Message::Close(Some(close))) => (close.code, close.reason.to_string()),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    /// Answers the server's close, as a browser does; the server writes nothing more and
    /// its task ends.
    pub(super) async fn answer_close(mut self) {
        let _ = self.to_server.unbounded_send(Ok(Message::Close(None)));
        self.ends().await;
    }

    /// Goes away without a close frame; the server notices and its task ends.
    pub(super) async fn hang_up(mut self) {
        self.to_server.close_channel();
        self.ends().await;
    }

    pub(super) async fn ends(&mut self) {
        if let Some(message) = self.receive().await {
            panic!("expected the socket to end, got {message:?}");
        }
        (&mut self.served)
            .await
            .expect("the socket's task ends cleanly");
    }
}

pub(super) fn text(text: &str) -> Message {
    Message::Text(text.into())
}

pub(super) fn ping() -> Value {
    json!({"type": "ping"})
}

pub(super) fn send_message(
    client_msg_id: &str,
    conversation_id: &ConversationId,
    content: &str,
) -> Value {
    json!({
        "type": "send_message",
        "client_msg_id": client_msg_id,
        "conversation_id": conversation_id,
        "content": content,
    })
}

/// A node of its own: `Chat` on the in-process ports over SQLite in `_dir`, and the
/// gateway's state around it.
pub(super) struct Node {
    pub(super) state: AppState,
    _dir: tempfile::TempDir,
}

pub(super) async fn node(config: GatewayConfig) -> Node {
    let bus = Arc::new(LocalBus::new(NodeId::new("test").unwrap(), 1024));
    node_with_bus(config, bus).await
}

/// A node whose bus is `bus` (a test double around `LocalBus`, say).
pub(super) async fn node_with_bus(config: GatewayConfig, bus: Arc<dyn Bus>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = parley_store_sqlite::SqliteStore::open(dir.path())
        .await
        .unwrap();
    let node_id = NodeId::new("test").unwrap();
    let core = CoreConfig {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        ..CoreConfig::default()
    };
    let ports = Ports {
        store: Arc::new(store),
        bus,
        presence: Arc::new(LocalPresence::new(node_id, core.presence_lease)),
        limiter: Arc::new(LocalRateLimiter::new()),
        media: Arc::new(
            parley_media::DiskMediaStore::open(&dir.path().join("media"), "")
                .await
                .unwrap(),
        ),
    };
    let chat = Chat::new(core, ports);
    let state = AppState::new(chat, config, None).await.unwrap();
    Node { state, _dir: dir }
}

impl Node {
    /// A new user's first device: its token and session.
    pub(super) async fn account(&self, username: &str) -> (String, Session) {
        let chat = &self.state.chat;
        let auth = chat
            .register(username, "password-123", None, None)
            .await
            .unwrap();
        let session = chat.authenticate(&auth.token).await.unwrap();
        (auth.token, session)
    }

    /// A socket served by this node; `session` stands for a good `?token=`.
    pub(super) fn connect(&self, session: Option<Session>) -> Client {
        let (to_server, incoming) = mpsc::unbounded();
        let (outgoing, from_server) = mpsc::unbounded();
        let socket = MemorySocket { incoming, outgoing };
        let served = tokio::spawn(run(socket, self.state.clone(), session, None));
        Client {
            to_server,
            from_server,
            served,
        }
    }

    /// A new user's socket that sent its `auth` frame and got `ready`.
    pub(super) async fn ready_socket(&self, username: &str) -> (Client, Session) {
        let (token, session) = self.account(username).await;
        let mut client = self.connect(None);
        client.send(json!({"type": "auth", "token": token}));
        assert_eq!(client.frame().await["type"], "ready");
        (client, session)
    }

    /// The user's direct chat with themselves, empty, once `client` (one of their
    /// sockets) has been told about it with `conversation_updated`.
    pub(super) async fn conversation(
        &self,
        session: &Session,
        client: &mut Client,
    ) -> ConversationId {
        let request = NewChat::Direct {
            participant_ids: vec![],
        };
        let (conversation, _) = self
            .state
            .chat
            .create_conversation(session, request)
            .await
            .unwrap();
        let announced = client.frame().await;
        assert_eq!(announced["type"], "conversation_updated");
        assert_eq!(
            announced["conversation"]["conversation_id"],
            json!(conversation.conversation_id)
        );
        conversation.conversation_id
    }
}
