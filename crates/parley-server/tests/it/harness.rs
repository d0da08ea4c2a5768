//! Starting servers, users and connections for the end-to-end tests, and waiting for
//! what they should see.
//!
//! Each helper is one step that scenarios repeat (users, a chat, a connected device,
//! "the next frame like this", "poll until"), so a test reads as its scenario; the
//! assertions that make a test's point stay in the test. Every wait is bounded by
//! [`WAIT`] and fails naming what it waited for. Time is real, never paused: the server
//! runs in the test's runtime behind real sockets and with its own timeouts, which paused
//! time would fire at once.

use crate::backends::{cluster_mode, ClusterBackends};
use parley_proto::frames::Cursors;
use parley_proto::rest::SendMessageRequest;
use parley_proto::{Conversation, PresenceStatus, Timestamp, UserId};
use parley_sdk::{Client, Connection, ConnectionConfig, Event, ServerFrame};
use parley_server::{Config, RunningServer};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// Every wait in these tests is bounded by this; a hang fails instead of stalling CI.
pub const WAIT: Duration = Duration::from_secs(15);

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub url: String,
    /// What it was started with, to start again the same way.
    config: Config,
    /// In cluster mode, the services it runs on (shared with the other nodes of its
    /// cluster); dropped after the server.
    _backends: Option<std::sync::Arc<ClusterBackends>>,
    _dir: Option<tempfile::TempDir>,
}

/// Test defaults: fast password hashing, everything else as shipped.
pub fn test_config(data_dir: PathBuf) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir,
        ..Config::default()
    };
    config.auth.argon2_memory_kib = 1024;
    config.auth.argon2_iterations = 1;
    config.limits.auth_attempts_per_minute = 10_000;
    config
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server with the test defaults changed by `adjust`: embedded, or in the cluster
    /// run (`PARLEY_TEST_MODE=cluster`) a one-node cluster on services of its own.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let backends = match cluster_mode() {
            true => Some(std::sync::Arc::new(ClusterBackends::create().await)),
            false => None,
        };
        Self::start_node(backends, "n1", adjust).await
    }

    /// A server on `backends` (a cluster's node named `node_id`), or embedded without.
    pub async fn start_node(
        backends: Option<std::sync::Arc<ClusterBackends>>,
        node_id: &str,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path().to_path_buf());
        if let Some(backends) = &backends {
            backends.apply(&mut config, node_id);
        }
        adjust(&mut config);
        let server = parley_server::start(config.clone())
            .await
            .expect("server starts");
        Self {
            url: server.url(),
            server: Some(server),
            config,
            _backends: backends,
            _dir: Some(dir),
        }
    }

    /// What it was started with (in cluster mode, a node of its cluster).
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    /// Shuts down gracefully and starts again on the same data and settings (a new port).
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        let server = parley_server::start(self.config.clone())
            .await
            .expect("server restarts");
        self.url = server.url();
        self.server = Some(server);
    }

    /// A new registered user, logged in on one device.
    pub async fn user(&self, username: &str) -> TestUser {
        let client = Client::new(&self.url).unwrap();
        let auth = client
            .register(
                username,
                "password-123",
                Some(&format!("{username} display")),
            )
            .await
            .expect("register");
        TestUser {
            client,
            user_id: auth.user_id,
            username: username.to_owned(),
            url: self.url.clone(),
        }
    }

    /// New registered users, one per name, in that order.
    pub async fn users<const N: usize>(&self, usernames: [&str; N]) -> [TestUser; N] {
        let mut users = Vec::with_capacity(N);
        for username in usernames {
            users.push(self.user(username).await);
        }
        users
            .try_into()
            .unwrap_or_else(|_| unreachable!("one user per name"))
    }

    /// The socket URL with `token` in the query (authenticated at the upgrade).
    pub fn ws_url(&self, token: &str) -> String {
        format!("{}?token={token}", self.bare_ws_url())
    }

    /// The socket URL without a token: the first frame must be `auth`.
    pub fn bare_ws_url(&self) -> String {
        format!("{}/ws", self.url.replacen("http", "ws", 1))
    }
}

pub struct TestUser {
    pub client: Client,
    pub user_id: UserId,
    pub username: String,
    pub url: String,
}

impl TestUser {
    /// Another device of the same user (a new login).
    pub async fn new_device(&self) -> Client {
        let client = Client::new(&self.url).unwrap();
        client
            .login(&self.username, "password-123")
            .await
            .expect("login");
        client
    }

    pub async fn connect(&self) -> Connection {
        connect(&self.client).await
    }

    /// A connection from another device of this user (a new login).
    pub async fn connect_new_device(&self) -> Connection {
        connect(&self.new_device().await).await
    }

    pub fn token(&self) -> String {
        self.client.token().expect("logged in")
    }

    /// The direct chat with `other` (created, or the existing one).
    pub async fn direct_with(&self, other: &TestUser) -> Conversation {
        self.client
            .create_direct(&other.user_id)
            .await
            .expect("create direct")
    }

    /// A group named `name` that this user owns, with `members`.
    pub async fn group_with(&self, name: &str, members: &[&TestUser]) -> Conversation {
        let member_ids: Vec<UserId> = members.iter().map(|user| user.user_id.clone()).collect();
        self.client
            .create_group(name, &member_ids)
            .await
            .expect("create group")
    }
}

/// A REST send of plain text (no content type, no reply).
pub fn text_request(client_msg_id: &str, content: &str) -> SendMessageRequest {
    SendMessageRequest {
        client_msg_id: client_msg_id.into(),
        content: content.into(),
        content_type: None,
        reply_to_seq: None,
        target_seq: None,
        mentions: Vec::new(),
        attachments: Vec::new(),
    }
}

/// Connects with test-friendly settings and waits for `Connected`.
pub async fn connect(client: &Client) -> Connection {
    connect_with(client, |_| {}).await
}

/// [`connect`], with `adjust` applied to the settings last (cursors, no reconnect, …).
pub async fn connect_with(
    client: &Client,
    adjust: impl FnOnce(&mut ConnectionConfig),
) -> Connection {
    let mut config: ConnectionConfig = client.connection_config().unwrap();
    config.backoff_base = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(500);
    config.ack_interval = Duration::from_millis(10);
    adjust(&mut config);
    let mut connection = Connection::connect(config).await.expect("connect");
    expect(&mut connection, "connected", |event| {
        matches!(event, Event::Connected { .. })
    })
    .await;
    connection
}

/// Waits for the first event matching `predicate`, skipping others; fails after `WAIT`.
pub async fn expect(
    connection: &mut Connection,
    what: &str,
    mut predicate: impl FnMut(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, connection.next_event())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("connection ended while waiting for {what}"));
        if predicate(&event) {
            return event;
        }
    }
}

/// Waits for the first frame the SDK passed on ([`Event::Frame`]) that matches
/// `predicate`, skipping other events; fails after `WAIT`.
pub async fn expect_frame(
    connection: &mut Connection,
    what: &str,
    mut predicate: impl FnMut(&ServerFrame) -> bool,
) -> ServerFrame {
    let event = expect(
        connection,
        what,
        |event| matches!(event, Event::Frame(frame) if predicate(frame)),
    )
    .await;
    let Event::Frame(frame) = event else {
        unreachable!("expect returns a matching event")
    };
    frame
}

/// Waits for `sync_done` and returns its cursors.
pub async fn sync_done(connection: &mut Connection) -> Cursors {
    let frame = expect_frame(connection, "sync_done", |frame| {
        matches!(frame, ServerFrame::SyncDone { .. })
    })
    .await;
    let ServerFrame::SyncDone { cursors } = frame else {
        unreachable!("expect_frame returns a matching frame")
    };
    cursors
}

/// Waits for `user_id`'s presence with `status` and returns its `last_seen`.
pub async fn expect_presence(
    connection: &mut Connection,
    what: &str,
    user_id: &UserId,
    status: PresenceStatus,
) -> Option<Timestamp> {
    let frame = expect_frame(connection, what, |frame| {
        matches!(frame, ServerFrame::Presence { user_id: id, status: s, .. } if id == user_id && *s == status)
    })
    .await;
    let ServerFrame::Presence { last_seen, .. } = frame else {
        unreachable!("expect_frame returns a matching frame")
    };
    last_seen
}

/// Collects `count` new messages of one conversation, in arrival order.
pub async fn messages(
    connection: &mut Connection,
    conversation_id: &parley_proto::ConversationId,
    count: usize,
) -> Vec<parley_proto::Message> {
    let mut received = Vec::new();
    while received.len() < count {
        if let Event::NewMessage(message) = expect(connection, "new_message", |event| {
            matches!(event, Event::NewMessage(message) if &message.conversation_id == conversation_id)
        })
        .await
        {
            received.push(message);
        }
    }
    received
}

/// Asserts that no event matching `predicate` arrives within `window`.
pub async fn expect_none(
    connection: &mut Connection,
    window: Duration,
    what: &str,
    mut predicate: impl FnMut(&Event) -> bool,
) {
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, connection.next_event()).await {
        assert!(!predicate(&event), "unexpected {what}: {event:?}");
    }
}

/// [`expect_none`] for the frames the SDK passes on.
pub async fn expect_no_frame(
    connection: &mut Connection,
    window: Duration,
    what: &str,
    mut predicate: impl FnMut(&ServerFrame) -> bool,
) {
    expect_none(
        connection,
        window,
        what,
        |event| matches!(event, Event::Frame(frame) if predicate(frame)),
    )
    .await;
}

/// Every frame the SDK passes on during `window`, in order (other events dropped).
pub async fn frames_within(connection: &mut Connection, window: Duration) -> Vec<ServerFrame> {
    let deadline = tokio::time::Instant::now() + window;
    let mut frames = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, connection.next_event()).await {
        if let Event::Frame(frame) = event {
            frames.push(frame);
        }
    }
    frames
}

/// Polls `probe` every `interval` until it answers `Some`; fails after `WAIT`. For state
/// the test can only ask about (a row stored, a process gone, a port free again).
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    interval: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    within(what, async {
        loop {
            if let Some(found) = probe().await {
                return found;
            }
            tokio::time::sleep(interval).await;
        }
    })
    .await
}

/// `future`, failing after `WAIT`.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Fails if `word` is in any of the store's files in `data_dir` (`parley.db`, the search
/// index `parley-search.db`, and their WALs), read as bytes: `what` was overwritten, not
/// just unlinked. With `PARLEY_TEST_KEEP_DB=path` the offending file is kept there.
pub fn assert_gone_from_files(data_dir: &std::path::Path, word: &str, what: &str) {
    let mut scanned = 0;
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("parley") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        scanned += bytes.len();
        let found = bytes
            .windows(word.len())
            .position(|window| window == word.as_bytes());
        if let Some(offset) = found {
            if let Ok(keep) = std::env::var("PARLEY_TEST_KEEP_DB") {
                std::fs::copy(&path, keep).unwrap();
            }
            panic!("{name} still holds {what} at byte {offset}");
        }
    }
    assert!(scanned > 0, "no database file in {}", data_dir.display());
}
