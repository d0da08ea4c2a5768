//! Opening one socket: the WebSocket upgrade to `/ws?token=…` and the wait for `ready`.
//!
//! Used for the first connect and for every reconnect. A refused token (HTTP 401/403, an
//! `unauthorized` error or close 4001) becomes [`SdkError::Unauthorized`]; retrying is
//! the driver's decision, not this module's.

use super::{ConnectionConfig, CLOSE_CODE_UNAUTHORIZED};
use crate::SdkError;
use futures::StreamExt;
use parley_proto::{DeviceId, ServerFrame, UserId};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A socket that has received `ready`.
pub(super) struct OpenedSocket {
    pub(super) socket: Socket,
    pub(super) user_id: UserId,
    pub(super) device_id: DeviceId,
    pub(super) heartbeat_interval_ms: u64,
}

fn websocket_config(config: &ConnectionConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(0)
        .max_message_size(Some(4 * parley_proto::limits::MAX_FRAME_BYTES))
        .max_frame_size(Some(4 * parley_proto::limits::MAX_FRAME_BYTES))
}

/// Upgrades and waits for `ready`, within `connect_timeout`.
pub(super) async fn open_socket(config: &ConnectionConfig) -> Result<OpenedSocket, SdkError> {
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
