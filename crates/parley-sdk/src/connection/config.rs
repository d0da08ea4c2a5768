//! What the app configures and what it sends: [`ConnectionConfig`] (with the `/ws` URL it
//! derives) and [`OutgoingMessage`] with its `client_msg_id`.
//!
//! Plain data, no I/O: the socket and driver modules read these, the handle turns an
//! [`OutgoingMessage`] into the `send_message` frame.

use crate::SdkError;
use parley_proto::{frames::Cursors, ContentType, ConversationId, MediaId, UserId};
use std::time::Duration;

/// How a [`Connection`] behaves. Build with [`ConnectionConfig::new`] and adjust fields.
///
/// [`Connection`]: super::Connection
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
    ///
    /// [`ConnectionHandle::cursors`]: super::ConnectionHandle::cursors
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
    /// For [`ContentType::REACTION`], [`ContentType::EDIT`] and [`ContentType::DELETE`]:
    /// the message changed.
    pub target_seq: Option<i64>,
    /// For text: members mentioned.
    pub mentions: Vec<UserId>,
    /// Completed media (`Client::upload`); `content` is their caption.
    pub attachments: Vec<MediaId>,
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
            target_seq: None,
            mentions: Vec::new(),
            attachments: Vec::new(),
            client_msg_id: None,
        }
    }

    /// Sets (an emoji) or clears (`""`) this user's reaction on the message `target_seq`.
    pub fn reaction(
        conversation_id: ConversationId,
        target_seq: i64,
        emoji: impl Into<String>,
    ) -> Self {
        Self::change(conversation_id, ContentType::REACTION, target_seq, emoji)
    }

    /// Replaces the text of one's own message `target_seq` (within the edit window).
    pub fn edit(conversation_id: ConversationId, target_seq: i64, text: impl Into<String>) -> Self {
        Self::change(conversation_id, ContentType::EDIT, target_seq, text)
    }

    /// Deletes the message `target_seq` for everyone (its sender within the edit window,
    /// or a group admin).
    pub fn delete(conversation_id: ConversationId, target_seq: i64) -> Self {
        Self::change(conversation_id, ContentType::DELETE, target_seq, "")
    }

    fn change(
        conversation_id: ConversationId,
        kind: ContentType,
        target_seq: i64,
        content: impl Into<String>,
    ) -> Self {
        Self {
            content_type: Some(kind),
            target_seq: Some(target_seq),
            ..Self::text(conversation_id, content)
        }
    }

    /// The same message carrying these media (at most 10).
    pub fn with_attachments(mut self, attachments: Vec<MediaId>) -> Self {
        self.attachments = attachments;
        self
    }

    /// The same message mentioning these members.
    pub fn with_mentions(mut self, mentions: Vec<UserId>) -> Self {
        self.mentions = mentions;
        self
    }
}

/// A fresh `client_msg_id` (a ULID string).
pub fn new_client_msg_id() -> String {
    ulid::Ulid::new().to_string()
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
}
