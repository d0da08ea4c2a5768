//! `Connection` against a scripted fake server: reconnect, resend, dedup, refusals.
//!
//! Each test plays the server side frame by frame over a real local WebSocket, so the
//! SDK's driver runs exactly as it would against parley, without needing parley.

use futures::{SinkExt, StreamExt};
use parley_sdk::proto::{
    frames::Cursors, ClientFrame, ContentType, ConversationId, DeviceId, ErrorCode, Message,
    MessageId, PresenceStatus, ReceiptStatus, ServerFrame, Timestamp, UserId,
};
use parley_sdk::{CloseReason, Connection, ConnectionConfig, Event, SdkError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

type ServerSocket = WebSocketStream<TcpStream>;

const PATIENCE: Duration = Duration::from_secs(5);

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    (listener, base_url)
}

async fn accept(listener: &TcpListener) -> ServerSocket {
    let (stream, _) = tokio::time::timeout(PATIENCE, listener.accept())
        .await
        .expect("the client should connect")
        .unwrap();
    tokio_tungstenite::accept_async(stream).await.unwrap()
}

async fn send(socket: &mut ServerSocket, frame: ServerFrame) {
    socket.send(WsMessage::text(frame.to_json())).await.unwrap();
}

async fn ready(socket: &mut ServerSocket) {
    send(
        socket,
        ServerFrame::Ready {
            user_id: UserId::from("u_me"),
            device_id: DeviceId::from("d_me"),
            heartbeat_interval_ms: 0,
        },
    )
    .await;
}

/// The next client frame other than `ping` and `ack`.
async fn next_frame(socket: &mut ServerSocket) -> ClientFrame {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("the client should send a frame")
            .expect("the socket should stay open")
            .unwrap();
        if let WsMessage::Text(text) = message {
            let frame: ClientFrame = serde_json::from_str(&text).unwrap();
            if !matches!(frame, ClientFrame::Ping {} | ClientFrame::Ack { .. }) {
                return frame;
            }
        }
    }
}

fn message(seq: i64) -> ServerFrame {
    ServerFrame::NewMessage(Message {
        message_id: MessageId::from(format!("m{seq}")),
        conversation_id: ConversationId::from("c_1"),
        seq,
        sender_id: UserId::from("u_other"),
        sender_device_id: DeviceId::from("d_other"),
        client_msg_id: format!("other-{seq}"),
        content: format!("message {seq}"),
        content_type: ContentType::TEXT,
        reply_to_seq: None,
        created_at: Timestamp(0),
        system: None,
        target_seq: None,
        mentions: Vec::new(),
        forwarded: false,
        attachments: Vec::new(),
        edited_at: None,
        deleted: false,
        reactions: Vec::new(),
        hidden: false,
        expires_at: None,
    })
}

fn msg_ack(client_msg_id: &str, seq: i64) -> ServerFrame {
    ServerFrame::MsgAck {
        client_msg_id: client_msg_id.into(),
        conversation_id: ConversationId::from("c_1"),
        message_id: MessageId::from(format!("m{seq}")),
        seq,
        created_at: Timestamp(0),
    }
}

fn fast_config(base_url: &str) -> ConnectionConfig {
    let mut config = ConnectionConfig::new(base_url, "token-1");
    config.backoff_base = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(50);
    config.ack_interval = Duration::from_millis(10);
    config
}

async fn next_event(connection: &mut Connection) -> Event {
    tokio::time::timeout(PATIENCE, connection.next_event())
        .await
        .expect("an event should arrive")
        .expect("the connection should not have ended")
}

/// The core promise: a send without `msg_ack` is resent with the same `client_msg_id`
/// after a reconnect, the reconnect `sync`s from the tracked cursor, and a message that
/// arrives both live and through the sync reaches the app once.
#[tokio::test]
async fn reconnect_resends_syncs_and_deduplicates() {
    let (listener, base_url) = listen().await;
    let server = tokio::spawn(async move {
        let mut first = accept(&listener).await;
        ready(&mut first).await;
        assert_eq!(
            next_frame(&mut first).await,
            ClientFrame::Sync {
                cursors: Cursors::new()
            }
        );
        send(&mut first, message(1)).await;
        let ClientFrame::SendMessage {
            client_msg_id,
            content,
            ..
        } = next_frame(&mut first).await
        else {
            panic!("expected send_message");
        };
        assert_eq!(content, "hello");
        drop(first); // the server "crashes" before acknowledging

        let mut second = accept(&listener).await;
        ready(&mut second).await;
        assert_eq!(
            next_frame(&mut second).await,
            ClientFrame::Sync {
                cursors: Cursors::from([(ConversationId::from("c_1"), 1)])
            }
        );
        let ClientFrame::SendMessage {
            client_msg_id: resent_id,
            ..
        } = next_frame(&mut second).await
        else {
            panic!("expected the resend");
        };
        assert_eq!(resent_id, client_msg_id);
        send(&mut second, message(1)).await;
        send(&mut second, message(2)).await;
        send(&mut second, msg_ack(&client_msg_id, 3)).await;
        send(
            &mut second,
            ServerFrame::SyncDone {
                cursors: Cursors::from([(ConversationId::from("c_1"), 3)]),
            },
        )
        .await;
        second
    });

    let mut connection = Connection::connect(fast_config(&base_url)).await.unwrap();
    assert_eq!(connection.user_id().as_str(), "u_me");
    assert!(matches!(
        next_event(&mut connection).await,
        Event::Connected { resumed: false, .. }
    ));
    assert!(matches!(next_event(&mut connection).await, Event::NewMessage(ref m) if m.seq == 1));
    let pending_send = connection
        .send(ConversationId::from("c_1"), "hello")
        .unwrap();
    assert!(matches!(
        next_event(&mut connection).await,
        Event::Disconnected { .. }
    ));
    assert!(matches!(
        next_event(&mut connection).await,
        Event::Reconnecting { attempt: 1, .. }
    ));
    assert!(matches!(
        next_event(&mut connection).await,
        Event::Connected { resumed: true, .. }
    ));
    assert!(matches!(next_event(&mut connection).await, Event::NewMessage(ref m) if m.seq == 2));
    assert!(matches!(next_event(&mut connection).await, Event::MsgAck(ref ack) if ack.seq == 3));
    assert!(matches!(
        next_event(&mut connection).await,
        Event::Frame(ServerFrame::SyncDone { .. })
    ));
    let ack = pending_send.ack().await.unwrap();
    assert_eq!(ack.seq, 3);

    let stats = connection.stats().await.unwrap();
    assert_eq!(
        (
            stats.reconnects,
            stats.duplicates_suppressed,
            stats.outbox_len
        ),
        (1, 1, 0)
    );
    assert_eq!(stats.resent, 1);
    assert_eq!(
        connection.cursors().await.unwrap(),
        Cursors::from([(ConversationId::from("c_1"), 3)])
    );
    let mut second = server.await.unwrap();
    // Auto-ack reports the highest contiguous seq this device has.
    let acked_seq = loop {
        let frame = tokio::time::timeout(PATIENCE, second.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let WsMessage::Text(text) = frame {
            if let Ok(ClientFrame::Ack { seq, .. }) = serde_json::from_str(&text) {
                break seq;
            }
        }
    };
    assert!(acked_seq >= 2, "acked {acked_seq}");
}

/// Close code 4001 (token revoked) is terminal: no reconnect, pending sends fail with
/// `Unauthorized`, and the event stream ends after `Closed`.
#[tokio::test]
async fn close_4001_is_terminal() {
    let (listener, base_url) = listen().await;
    let mut connection_task = tokio::spawn(async move {
        let mut socket = accept(&listener).await;
        ready(&mut socket).await;
        let _ = next_frame(&mut socket).await; // sync
        let _ = next_frame(&mut socket).await; // the send
        socket
            .close(Some(CloseFrame {
                code: CloseCode::from(4001),
                reason: "token revoked".into(),
            }))
            .await
            .unwrap();
        // Nobody must come back.
        tokio::time::timeout(Duration::from_millis(300), listener.accept())
            .await
            .is_err()
    });
    let mut connection = Connection::connect(fast_config(&base_url)).await.unwrap();
    let pending_send = connection.send(ConversationId::from("c_1"), "x").unwrap();
    assert!(matches!(
        next_event(&mut connection).await,
        Event::Connected { .. }
    ));
    assert_eq!(
        next_event(&mut connection).await,
        Event::Closed {
            reason: CloseReason::Unauthorized
        }
    );
    assert!(tokio::time::timeout(PATIENCE, connection.next_event())
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        pending_send.ack().await,
        Err(SdkError::Unauthorized)
    ));
    assert!(
        (&mut connection_task).await.unwrap(),
        "the SDK reconnected after 4001"
    );
    assert!(matches!(
        connection.send(ConversationId::from("c_1"), "y"),
        Err(SdkError::ConnectionClosed)
    ));
}

/// `rate_limited` with a `client_msg_id` parks the send and retries it after
/// `retry_after_ms` with the same id; any other refusal fails the send.
#[tokio::test]
async fn rate_limited_sends_are_retried_other_refusals_fail() {
    let (listener, base_url) = listen().await;
    tokio::spawn(async move {
        let mut socket = accept(&listener).await;
        ready(&mut socket).await;
        let _ = next_frame(&mut socket).await; // sync
        let ClientFrame::SendMessage { client_msg_id, .. } = next_frame(&mut socket).await else {
            panic!("expected send_message");
        };
        send(
            &mut socket,
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                message: "slow down".into(),
                client_msg_id: Some(client_msg_id.clone()),
                retry_after_ms: Some(30),
            },
        )
        .await;
        let ClientFrame::SendMessage {
            client_msg_id: retried_id,
            ..
        } = next_frame(&mut socket).await
        else {
            panic!("expected the retry");
        };
        assert_eq!(retried_id, client_msg_id);
        send(&mut socket, msg_ack(&client_msg_id, 1)).await;
        let ClientFrame::SendMessage {
            client_msg_id: refused_id,
            ..
        } = next_frame(&mut socket).await
        else {
            panic!("expected the second send");
        };
        send(
            &mut socket,
            ServerFrame::Error {
                code: ErrorCode::NotMember,
                message: "not a member".into(),
                client_msg_id: Some(refused_id),
                retry_after_ms: None,
            },
        )
        .await;
        // Keep the socket open until the test is done.
        while socket.next().await.is_some() {}
    });
    let connection = Connection::connect(fast_config(&base_url)).await.unwrap();
    let ack = connection
        .send_and_wait(ConversationId::from("c_1"), "one")
        .await
        .unwrap();
    assert_eq!(ack.seq, 1);
    let refused = connection
        .send_and_wait(ConversationId::from("c_1"), "two")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NotMember));
    assert_eq!(connection.stats().await.unwrap().outbox_len, 0);
    connection.close().await.unwrap();
}

/// A token refused at the upgrade (HTTP 401) is reported by `connect` as `Unauthorized`.
#[tokio::test]
#[allow(clippy::result_large_err)] // tungstenite's callback signature, not ours
async fn http_401_on_upgrade_is_unauthorized() {
    let (listener, base_url) = listen().await;
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let refuse = |_request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                      _response| {
            Err(tokio_tungstenite::tungstenite::http::Response::builder()
                .status(401)
                .body(None)
                .unwrap())
        };
        let _ = tokio_tungstenite::accept_hdr_async(stream, refuse).await;
    });
    let outcome = Connection::connect(fast_config(&base_url)).await;
    assert!(
        matches!(outcome, Err(SdkError::Unauthorized)),
        "{outcome:?}"
    );
}

/// Frames the SDK does not reshape reach the app as [`Event::Frame`], exactly as the
/// server sent them, in order.
#[tokio::test]
async fn other_frames_are_passed_on_as_sent() {
    let passed_on = vec![
        ServerFrame::Typing {
            conversation_id: ConversationId::from("c_1"),
            user_id: UserId::from("u_other"),
            is_typing: true,
        },
        ServerFrame::Receipt {
            conversation_id: ConversationId::from("c_1"),
            user_id: UserId::from("u_other"),
            status: ReceiptStatus::Read,
            up_to_seq: 4,
        },
        ServerFrame::Presence {
            user_id: UserId::from("u_other"),
            status: PresenceStatus::Offline,
            last_seen: Some(Timestamp(7)),
        },
        ServerFrame::ConversationRemoved {
            conversation_id: ConversationId::from("c_2"),
        },
        ServerFrame::Pong {},
    ];
    let (listener, base_url) = listen().await;
    let frames = passed_on.clone();
    tokio::spawn(async move {
        let mut socket = accept(&listener).await;
        ready(&mut socket).await;
        for frame in frames {
            send(&mut socket, frame).await;
        }
        while socket.next().await.is_some() {}
    });
    let mut connection = Connection::connect(fast_config(&base_url)).await.unwrap();
    assert!(matches!(
        next_event(&mut connection).await,
        Event::Connected { .. }
    ));
    for frame in passed_on {
        assert_eq!(next_event(&mut connection).await, Event::Frame(frame));
    }
    connection.close().await.unwrap();
}
