//! A WebSocket speaking raw frames, for tests that send what the SDK never would.

use crate::harness::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket speaking raw frames, for what the SDK would never send.
pub struct Raw(pub Socket);

impl Raw {
    pub async fn open(url: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade");
        Raw(socket)
    }

    /// Opens with the token in `url` and reads the `ready` frame.
    pub async fn authenticated(url: &str) -> Self {
        let mut socket = Self::open(url).await;
        let ready = socket.next().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        socket
    }

    pub async fn send(&mut self, text: impl Into<String>) {
        self.0
            .send(Message::Text(text.into().into()))
            .await
            .unwrap();
    }

    /// The next JSON frame whose type is not in `skip`.
    pub async fn next(&mut self) -> Value {
        within("a frame", async {
            loop {
                match self.0.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let value: Value = serde_json::from_str(&text).unwrap();
                        if !matches!(value["type"].as_str(), Some("presence" | "receipt")) {
                            return value;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return json!({"type": "closed", "code": frame.map(|f| u16::from(f.code))})
                    }
                    Some(Ok(_)) => continue,
                    other => panic!("socket ended: {other:?}"),
                }
            }
        })
        .await
    }

    pub async fn expect_error(&mut self, code: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(
            (frame["type"].as_str(), frame["code"].as_str()),
            (Some("error"), Some(code)),
            "{frame}"
        );
        assert!(frame["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty()));
        frame
    }

    /// Proves the connection is still usable.
    pub async fn still_alive(&mut self) {
        self.send(r#"{"type":"ping"}"#).await;
        assert_eq!(self.next().await["type"], "pong");
    }
}
