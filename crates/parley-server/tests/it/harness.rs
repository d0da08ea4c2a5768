//! Starting servers and users for the end-to-end tests.

use parley_sdk::{Client, Connection, ConnectionConfig, Event};
use parley_server::{Config, RunningServer};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// Every wait in these tests is bounded by this; a hang fails instead of stalling CI.
pub const WAIT: Duration = Duration::from_secs(15);

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub url: String,
    pub data_dir: PathBuf,
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

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path().to_path_buf());
        adjust(&mut config);
        let server = parley_server::start(config).await.expect("server starts");
        Self {
            url: server.url(),
            data_dir: dir.path().to_path_buf(),
            server: Some(server),
            _dir: Some(dir),
        }
    }

    /// Shuts down gracefully and starts again on the same data (a new port).
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        let server = parley_server::start(test_config(self.data_dir.clone()))
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

    pub fn ws_url(&self, token: &str) -> String {
        format!("{}/ws?token={token}", self.url.replacen("http", "ws", 1))
    }
}

pub struct TestUser {
    pub client: Client,
    pub user_id: parley_proto::UserId,
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

    pub fn token(&self) -> String {
        self.client.token().expect("logged in")
    }
}

/// Connects with test-friendly settings and waits for `Connected`.
pub async fn connect(client: &Client) -> Connection {
    let mut config: ConnectionConfig = client.connection_config().unwrap();
    config.backoff_base = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(500);
    config.ack_interval = Duration::from_millis(10);
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

pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}
