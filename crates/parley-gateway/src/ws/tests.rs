//! Unit tests of one socket's behaviour, over an in-memory socket.
//!
//! Each test runs `run` on a `MemorySocket` (a pair of channels; see `harness`) against a
//! real `Chat` on the in-process ports with SQLite in a temp dir, and reads what a client
//! would see, frame by frame: no listener, no network. Tests about time pause tokio's
//! clock only where no store round trip follows: SQLite answers on its own threads, and a
//! paused clock jumps to the next timer whenever the runtime is left waiting for them.

mod harness;
mod positions;

use crate::GatewayConfig;
use axum::extract::ws::Message;
use harness::{node, ping, send_message, text};
use parley_proto::ConversationId;
use serde_json::{json, Value};
use std::time::Duration;
use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};

/// The first frame must be a JSON text `auth` frame with a good token, within the frame
/// limit: anything else gets one `error` frame that says why, then close 4001. A frame the
/// WebSocket layer refused closes with its own code and no `error` frame.
#[tokio::test]
async fn first_frame_must_be_auth() {
    let config = GatewayConfig {
        max_frame_bytes: 64,
        ..GatewayConfig::default()
    };
    let node = node(config).await;
    let long_token = format!(r#"{{"type":"auth","token":"{}"}}"#, "t".repeat(64));
    let cases = [
        (text(r#"{"type":"ping"}"#), "not_authenticated"),
        (text(r#"{"type":"sync","cursors":{}}"#), "not_authenticated"),
        (Message::Binary(vec![1, 2, 3].into()), "not_authenticated"),
        (Message::Ping(vec![].into()), "not_authenticated"),
        (text("{not json"), "malformed_json"),
        (text(r#"{"type":"auth","token":"t_wrong"}"#), "unauthorized"),
        (text(&long_token), "frame_too_large"),
    ];
    for (first, code) in cases {
        let mut client = node.connect(None);
        client.send_raw(first.clone());
        let refusal = client.frame().await;
        assert_eq!(refusal["type"], "error", "after {first:?}");
        assert_eq!(refusal["code"], code, "after {first:?}");
        assert_eq!(client.close_frame().await, (4001, "unauthorized".into()));
        client.answer_close().await;
    }
    let mut client = node.connect(None);
    client.fail(WsError::Utf8("invalid utf-8 sequence".into()));
    let expected = (1007, "text frame is not valid UTF-8".into());
    assert_eq!(client.close_frame().await, expected);
    client.answer_close().await;
    assert_eq!(node.state.hub.connection_count(), 0);
}

/// A good `auth` frame is answered with `ready`: the device's ids and the heartbeat
/// interval asked of the client (a third of the timeout, at most the protocol's 30 s).
/// The socket is in the hub until the client goes away.
#[tokio::test]
async fn valid_auth_answers_ready() {
    let config = GatewayConfig {
        heartbeat_timeout: Duration::from_secs(9),
        ..GatewayConfig::default()
    };
    let node = node(config).await;
    let (token, session) = node.account("alice").await;
    let mut client = node.connect(None);
    client.send(json!({"type": "auth", "token": token}));
    let expected = json!({
        "type": "ready",
        "user_id": session.user_id,
        "device_id": session.device_id,
        "heartbeat_interval_ms": 3000,
    });
    assert_eq!(client.frame().await, expected);
    assert_eq!(node.state.hub.connection_count(), 1);
    client.hang_up().await;
    assert_eq!(node.state.hub.connection_count(), 0);
}

/// A socket whose token came with the upgrade (`?token=`) gets `ready` without an `auth`
/// frame; an `auth` frame after that is refused, and the socket lives on.
#[tokio::test]
async fn token_in_the_query_skips_the_auth_frame() {
    let node = node(GatewayConfig::default()).await;
    let (token, session) = node.account("alice").await;
    let mut client = node.connect(Some(session.clone()));
    let ready = client.frame().await;
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["device_id"], json!(session.device_id));
    client.send(json!({"type": "auth", "token": token}));
    let refusal = client.frame().await;
    assert_eq!(refusal["code"], "invalid_request");
    assert_eq!(refusal["message"], "already authenticated");
    client.send(ping());
    assert_eq!(client.frame().await, json!({"type": "pong"}));
    client.hang_up().await;
}

/// `ping` is answered with `pong`, in order with the frames around it.
#[tokio::test]
async fn ping_answers_pong() {
    let node = node(GatewayConfig::default()).await;
    let (mut client, _) = node.ready_socket("alice").await;
    for _ in 0..3 {
        client.send(ping());
    }
    for _ in 0..3 {
        assert_eq!(client.frame().await, json!({"type": "pong"}));
    }
    client.hang_up().await;
}

/// A frame that does not decode, or that the core refuses, gets one `error` frame saying
/// why, and the socket lives on: the next `ping` still gets its `pong`.
#[tokio::test]
async fn bad_frames_get_an_error_and_the_socket_lives_on() {
    let config = GatewayConfig {
        max_frame_bytes: 256,
        ..GatewayConfig::default()
    };
    let node = node(config).await;
    let (mut client, _) = node.ready_socket("alice").await;
    let cases = [
        (text("{not json"), "malformed_json"),
        (text(r#"{"type":"shout"}"#), "unknown_type"),
        (text(r#"{"kind":"ping"}"#), "invalid_request"),
        (
            text(r#"{"type":"send_message","content":"hi"}"#),
            "invalid_request",
        ),
        (Message::Binary(vec![0xff].into()), "invalid_request"),
        (text(&"x".repeat(257)), "frame_too_large"),
        (
            text(r#"{"type":"read","conversation_id":"c_nope","up_to_seq":1}"#),
            "not_member",
        ),
    ];
    for (frame, code) in cases {
        client.send_raw(frame.clone());
        let refusal = client.frame().await;
        assert_eq!(refusal["type"], "error", "after {frame:?}");
        assert_eq!(refusal["code"], code, "after {frame:?}");
        client.send(ping());
        assert_eq!(
            client.frame().await,
            json!({"type": "pong"}),
            "after {frame:?}"
        );
    }
    client.hang_up().await;
}

/// `send_message` is answered with `msg_ack` once committed, with the `seq` the store
/// gave it; pipelined sends are acked in the order they were sent, with consecutive
/// `seq`s, and a resent `client_msg_id` gets the first ack again.
#[tokio::test]
async fn send_message_is_acked_with_its_seq() {
    let node = node(GatewayConfig::default()).await;
    let (mut client, session) = node.ready_socket("alice").await;
    let conversation_id = node.conversation(&session, &mut client).await;
    for n in 1..=3 {
        client.send(send_message(&format!("m{n}"), &conversation_id, "hello"));
    }
    let mut first_message_id = Value::Null;
    for n in 1..=3 {
        let ack = client.frame().await;
        assert_eq!(ack["type"], "msg_ack");
        assert_eq!(ack["client_msg_id"], format!("m{n}"));
        assert_eq!(ack["conversation_id"], json!(conversation_id));
        assert_eq!(ack["seq"], n);
        assert!(ack["message_id"].is_string() && ack["created_at"].is_string());
        if n == 1 {
            first_message_id = ack["message_id"].clone();
        }
    }
    client.send(send_message("m1", &conversation_id, "hello"));
    let again = client.frame().await;
    assert_eq!(
        (&again["seq"], &again["message_id"]),
        (&json!(1), &first_message_id)
    );
    client.hang_up().await;
}

/// Every frame spends from the connection's budget (twice `frames_per_second` at most),
/// bad ones too: past it a frame gets `rate_limited` with the wait in `retry_after_ms`,
/// naming the refused send so the client can retry it, and is served again once the
/// budget has refilled. On a paused clock, so the budget refills only when the test says.
#[tokio::test]
async fn frames_over_the_budget_are_rate_limited() {
    let config = GatewayConfig {
        frames_per_second: 1,
        ..GatewayConfig::default()
    };
    let node = node(config).await;
    let (mut client, _) = node.ready_socket("alice").await;
    tokio::time::pause();
    client.send(ping());
    client.send_raw(text("{not json"));
    client.send(send_message("m3", &ConversationId::from("c_any"), "hello"));
    assert_eq!(client.frame().await, json!({"type": "pong"}));
    assert_eq!(client.frame().await["code"], "malformed_json");
    let expected = json!({
        "type": "error",
        "code": "rate_limited",
        "message": "too many frames on this connection",
        "client_msg_id": "m3",
        "retry_after_ms": 1000,
    });
    assert_eq!(client.frame().await, expected);
    tokio::time::advance(Duration::from_millis(500)).await;
    client.send(ping());
    let refusal = client.frame().await;
    assert_eq!(
        (&refusal["code"], &refusal["retry_after_ms"]),
        (&json!("rate_limited"), &json!(500))
    );
    tokio::time::advance(Duration::from_millis(500)).await;
    client.send(ping());
    assert_eq!(client.frame().await, json!({"type": "pong"}));
}

/// Logging the device out closes its socket with 4001 "token revoked": the revocation
/// reaches the socket through the bus and the hub, as it would from another node.
#[tokio::test]
async fn logout_closes_the_socket_4001() {
    let node = node(GatewayConfig::default()).await;
    let (mut client, session) = node.ready_socket("alice").await;
    node.state.chat.logout(&session).await.unwrap();
    assert_eq!(client.close_frame().await, (4001, "token revoked".into()));
    client.answer_close().await;
    assert_eq!(node.state.hub.connection_count(), 0);
}

/// A socket that sends nothing for `heartbeat_timeout` is closed 1001 "heartbeat
/// timeout", at the first check past the timeout and not before; any frame counts as a
/// heartbeat, so a talking socket outlives the timeout many times. On a paused clock.
#[tokio::test]
async fn silent_socket_closes_after_the_heartbeat_timeout() {
    let timeout = Duration::from_secs(9);
    let config = GatewayConfig {
        heartbeat_timeout: timeout,
        ..GatewayConfig::default()
    };
    let node = node(config).await;
    let (mut client, _) = node.ready_socket("alice").await;
    tokio::time::pause();
    for _ in 0..6 {
        tokio::time::advance(timeout * 2 / 3).await;
        client.send(ping());
        assert_eq!(client.frame().await, json!({"type": "pong"}));
    }
    let silent_since = tokio::time::Instant::now();
    assert_eq!(
        client.close_frame().await,
        (1001, "heartbeat timeout".into())
    );
    let silence = silent_since.elapsed();
    assert!(
        silence > timeout && silence <= timeout + timeout / 3,
        "closed after {silence:?} of silence"
    );
}

/// A socket that sends no `auth` frame within `auth_timeout` gets `not_authenticated`
/// "no auth frame in time" and close 4001 once the deadline has passed, not before. On a
/// paused clock; the store is never asked.
#[tokio::test]
async fn no_auth_frame_in_time_closes_4001() {
    let node = node(GatewayConfig::default()).await;
    let deadline = node.state.config.auth_timeout;
    tokio::time::pause();
    let connected_at = tokio::time::Instant::now();
    let mut client = node.connect(None);
    let expected = json!({
        "type": "error",
        "code": "not_authenticated",
        "message": "no auth frame in time",
    });
    assert_eq!(client.frame().await, expected);
    let waited = connected_at.elapsed();
    assert!(
        waited >= deadline && waited < deadline + Duration::from_secs(1),
        "refused after {waited:?}"
    );
    assert_eq!(client.close_frame().await, (4001, "unauthorized".into()));
    client.answer_close().await;
}

/// A frame the WebSocket layer refused closes the socket with the code that says why
/// (1009 too large, 1007 not UTF-8, 1002 protocol error); any other failure means the
/// socket broke, and it ends without a close frame.
#[tokio::test]
async fn websocket_layer_refusals_close_with_their_code() {
    let node = node(GatewayConfig::default()).await;
    let too_long = CapacityError::MessageTooLong {
        size: 2 << 20,
        max_size: 1 << 20,
    };
    let cases = [
        (
            WsError::Capacity(too_long),
            Some((1009, "frame above the 1 MiB limit")),
        ),
        (
            WsError::Utf8("invalid utf-8 sequence".into()),
            Some((1007, "text frame is not valid UTF-8")),
        ),
        (
            WsError::Protocol(ProtocolError::UnmaskedFrameFromClient),
            Some((1002, "protocol error")),
        ),
        (WsError::ConnectionClosed, None),
    ];
    for (number, (failure, close)) in cases.into_iter().enumerate() {
        let (mut client, _) = node.ready_socket(&format!("user{number}")).await;
        client.fail(failure);
        match close {
            Some((code, reason)) => {
                assert_eq!(client.close_frame().await, (code, reason.into()));
                client.answer_close().await;
            }
            None => client.ends().await,
        }
    }
    assert_eq!(node.state.hub.connection_count(), 0);
}

/// A device holds at most `max_sockets_per_device` sockets on a node: one more gets
/// `rate_limited` (retry after 1 s) and close 1008, and the open one is left alone.
#[tokio::test]
async fn one_socket_too_many_for_a_device_is_refused() {
    let config = GatewayConfig {
        max_sockets_per_device: 1,
        ..GatewayConfig::default()
    };
    let node = node(config).await;
    let (mut first, session) = node.ready_socket("alice").await;
    let mut second = node.connect(Some(session));
    let refusal = second.frame().await;
    assert_eq!(refusal["code"], "rate_limited");
    assert_eq!(refusal["retry_after_ms"], 1000);
    assert_eq!(
        second.close_frame().await,
        (1008, "too many connections".into())
    );
    second.answer_close().await;
    first.send(ping());
    assert_eq!(first.frame().await, json!({"type": "pong"}));
    first.hang_up().await;
}

/// `sync` streams every message after the cursor as `new_message` in `seq` order, then
/// `sync_done` with the cursors reached; a cursor for a conversation the user is not in
/// is answered `not_member` first and left out of `sync_done`.
#[tokio::test]
async fn sync_streams_the_tail_then_sync_done() {
    let node = node(GatewayConfig::default()).await;
    let (mut client, session) = node.ready_socket("alice").await;
    let conversation_id = node.conversation(&session, &mut client).await;
    for n in 1..=3 {
        client.send(send_message(
            &format!("m{n}"),
            &conversation_id,
            &format!("hello {n}"),
        ));
    }
    for _ in 1..=3 {
        assert_eq!(client.frame().await["type"], "msg_ack");
    }
    let mut cursors = serde_json::Map::new();
    cursors.insert(conversation_id.to_string(), json!(1));
    cursors.insert("c_elsewhere".into(), json!(0));
    client.send(json!({"type": "sync", "cursors": cursors}));
    let refusal = client.frame().await;
    assert_eq!(refusal["code"], "not_member");
    for seq in 2..=3 {
        let message = client.frame().await;
        assert_eq!(message["type"], "new_message");
        assert_eq!(message["seq"], seq);
        assert_eq!(message["content"], format!("hello {seq}"));
    }
    let mut done = serde_json::Map::new();
    done.insert(conversation_id.to_string(), json!(3));
    let expected = json!({"type": "sync_done", "cursors": done});
    assert_eq!(client.frame().await, expected);
    client.hang_up().await;
}

/// Shutdown closes every socket 1001 "server shutting down", but only after the
/// `msg_ack`s of the sends it already took: those messages are committed, and a client
/// that never saw their acks would send them again.
#[tokio::test]
async fn shutdown_writes_pending_acks_before_closing() {
    let node = node(GatewayConfig::default()).await;
    let (mut client, session) = node.ready_socket("alice").await;
    let conversation_id = node.conversation(&session, &mut client).await;
    client.send(send_message("m1", &conversation_id, "hello"));
    client.send(ping());
    let mut acked = false;
    // The send was read before the ping; its ack may come before or after the pong.
    loop {
        let frame = client.frame().await;
        acked |= frame["type"] == "msg_ack";
        if frame["type"] == "pong" {
            break;
        }
    }
    node.state.begin_shutdown();
    if !acked {
        assert_eq!(client.frame().await["type"], "msg_ack");
    }
    let expected = (1001, "server shutting down".into());
    assert_eq!(client.close_frame().await, expected);
    client.answer_close().await;
}
