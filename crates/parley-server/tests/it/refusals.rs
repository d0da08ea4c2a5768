//! Bad input is refused with a clear error and never fatal: the connection, and
//! everyone else's traffic, go on.

use crate::harness::*;
use crate::raw::Raw;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Malformed JSON, unknown types, missing fields, binary and oversize frames each get
/// their `error`, and the connection keeps working after every one.
#[tokio::test]
async fn bad_frames_are_refused_and_the_connection_survives() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut socket = Raw::authenticated(&server.ws_url(&alice.token())).await;

    socket.send("{not json").await;
    socket.expect_error("malformed_json").await;
    socket.still_alive().await;
    socket.send(r#"{"type":"teleport"}"#).await;
    socket.expect_error("unknown_type").await;
    socket.send(r#"{"no_type":1}"#).await;
    socket.expect_error("invalid_request").await;
    socket
        .send(r#"{"type":"send_message","content":"missing ids"}"#)
        .await;
    socket.expect_error("invalid_request").await;
    socket.send(r#"[1,2,3]"#).await;
    socket.expect_error("invalid_request").await;
    socket
        .0
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    socket.expect_error("invalid_request").await;
    let oversize = json!({"type":"ping","padding":"x".repeat(200 * 1024)}).to_string();
    socket.send(oversize).await;
    socket.expect_error("frame_too_large").await;
    socket.still_alive().await;
}

/// Sends that break a rule are refused with the send's `client_msg_id`.
#[tokio::test]
async fn refused_sends_name_their_client_msg_id() {
    let server = TestServer::start().await;
    let [alice, bob, mallory] = server.users(["alice", "bob", "mallory"]).await;
    let conversation = alice.direct_with(&bob).await;
    let conversation_id = conversation.conversation_id.as_str();
    let mut socket = Raw::authenticated(&server.ws_url(&alice.token())).await;

    let too_big = json!({"type":"send_message","client_msg_id":"big","conversation_id":conversation_id,"content":"x".repeat(70 * 1024)});
    socket.send(too_big.to_string()).await;
    assert_eq!(
        socket.expect_error("content_too_large").await["client_msg_id"],
        "big"
    );
    let empty = json!({"type":"send_message","client_msg_id":"empty","conversation_id":conversation_id,"content":""});
    socket.send(empty.to_string()).await;
    assert_eq!(
        socket.expect_error("invalid_request").await["client_msg_id"],
        "empty"
    );
    let spoofed = json!({"type":"send_message","client_msg_id":"sys","conversation_id":conversation_id,"content":"x","content_type":"system"});
    socket.send(spoofed.to_string()).await;
    socket.expect_error("invalid_request").await;

    let mut intruder = Raw::authenticated(&server.ws_url(&mallory.token())).await;
    let foreign = json!({"type":"send_message","client_msg_id":"in","conversation_id":conversation_id,"content":"hi"});
    intruder.send(foreign.to_string()).await;
    assert_eq!(
        intruder.expect_error("not_member").await["client_msg_id"],
        "in"
    );
    for frame in [
        json!({"type":"ack","conversation_id":conversation_id,"seq":1}),
        json!({"type":"read","conversation_id":conversation_id,"up_to_seq":1}),
        json!({"type":"typing","conversation_id":conversation_id,"is_typing":true}),
        json!({"type":"send_message","client_msg_id":"x","conversation_id":"c_does_not_exist","content":"hi"}),
    ] {
        intruder.send(frame.to_string()).await;
        intruder.expect_error("not_member").await;
    }
    intruder.still_alive().await;

    // Alice's traffic was never disturbed.
    let fine = json!({"type":"send_message","client_msg_id":"ok","conversation_id":conversation_id,"content":"hello"});
    socket.send(fine.to_string()).await;
    let ack = socket.next().await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_i64()),
        (Some("msg_ack"), Some(1))
    );
}

/// Rate limits answer `rate_limited` with `retry_after_ms`, per user and per group.
#[tokio::test]
async fn rate_limits_say_when_to_retry() {
    let server = TestServer::start_with(|config| {
        config.limits.user_messages_per_minute = 5;
        config.limits.group_messages_per_minute = 2;
    })
    .await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let group = alice.group_with("g", &[&bob]).await;
    let direct = alice.direct_with(&bob).await;
    let mut socket = Raw::authenticated(&server.ws_url(&alice.token())).await;
    let send = |conversation_id: &str, id: &str| {
        json!({"type":"send_message","client_msg_id":id,"conversation_id":conversation_id,"content":"hi"}).to_string()
    };
    for id in ["g1", "g2"] {
        socket.send(send(group.conversation_id.as_str(), id)).await;
        assert_eq!(socket.next().await["type"], "msg_ack");
    }
    socket
        .send(send(group.conversation_id.as_str(), "g3"))
        .await;
    let refused = socket.expect_error("rate_limited").await;
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0);
    for id in ["d1", "d2", "d3"] {
        socket.send(send(direct.conversation_id.as_str(), id)).await;
        assert_eq!(
            socket.next().await["type"],
            "msg_ack",
            "the group limit does not touch direct chats"
        );
    }
    socket
        .send(send(direct.conversation_id.as_str(), "d4"))
        .await;
    socket.expect_error("rate_limited").await;
    let rest = alice
        .client
        .send_rest(
            &direct.conversation_id,
            &parley_proto::rest::SendMessageRequest {
                client_msg_id: "r1".into(),
                content: "hi".into(),
                content_type: None,
                reply_to_seq: None,
                target_seq: None,
                mentions: Vec::new(),
                attachments: Vec::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (rest.status(), rest.code()),
        (Some(429), Some(parley_proto::ErrorCode::RateLimited))
    );
}

/// Authentication on the socket: a bad token is refused before the upgrade; without a
/// token the first frame must be `auth`.
#[tokio::test]
async fn websocket_authentication() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let refused = tokio_tungstenite::connect_async(server.ws_url("pt_wrong"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");

    let bare = server.bare_ws_url();
    let mut socket = Raw::open(&bare).await;
    socket
        .send(json!({"type":"auth","token":alice.token()}).to_string())
        .await;
    assert_eq!(socket.next().await["type"], "ready");
    socket
        .send(json!({"type":"auth","token":alice.token()}).to_string())
        .await;
    socket.expect_error("invalid_request").await;

    let mut early = Raw::open(&bare).await;
    early.send(r#"{"type":"ping"}"#).await;
    early.expect_error("not_authenticated").await;
    assert_eq!(early.next().await["code"], 4001);
}

/// REST refusals: the right status and `{"error":{code,message}}`.
#[tokio::test]
async fn rest_refusals_have_status_and_json_body() {
    let server = TestServer::start().await;
    let [alice, bob, mallory] = server.users(["alice", "bob", "mallory"]).await;
    let conversation = alice.direct_with(&bob).await;
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1{path}", server.url);
    let conversation_path = format!("/conversations/{}", conversation.conversation_id);
    let messages_path = format!("{conversation_path}/messages");
    let json_post = |path: &str, body: &'static str| {
        http.post(api(path))
            .bearer_auth(alice.token())
            .header("content-type", "application/json")
            .body(body)
    };
    let huge_password = json!({"username": "x".repeat(10), "password": "p".repeat(300 * 1024)});
    // (what, request, status, code)
    let cases = vec![
        ("no token", http.get(api("/users/me")), 401, "unauthorized"),
        (
            "unknown token",
            http.get(api("/users/me")).bearer_auth("pt_nope"),
            401,
            "unauthorized",
        ),
        (
            "a stranger's conversation",
            http.get(api(&conversation_path))
                .bearer_auth(mallory.token()),
            403,
            "not_member",
        ),
        (
            "a stranger's history",
            http.get(api(&messages_path)).bearer_auth(mallory.token()),
            403,
            "not_member",
        ),
        (
            "broken JSON",
            json_post("/conversations", "{oops"),
            400,
            "malformed_json",
        ),
        (
            "a group without a name",
            json_post("/conversations", r#"{"type":"group"}"#),
            400,
            "invalid_request",
        ),
        (
            "an oversize body",
            http.post(api("/auth/register")).json(&huge_password),
            413,
            "frame_too_large",
        ),
        (
            "a bad query",
            http.get(api(&format!("{messages_path}?limit=lots")))
                .bearer_auth(alice.token()),
            400,
            "invalid_request",
        ),
        (
            "an unknown route",
            http.get(api("/no/such/route")),
            404,
            "not_found",
        ),
        (
            "an unknown user",
            http.get(api("/users/u_missing")).bearer_auth(alice.token()),
            404,
            "not_found",
        ),
    ];
    for (what, request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(body["error"]["message"].is_string(), "{what}");
    }
    let health = http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = http
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("parley_errors_total"), "{metrics}");
}

/// Graceful shutdown closes every socket with a close frame (1001) after in-flight sends
/// are acked.
#[tokio::test]
async fn shutdown_closes_sockets_with_a_close_frame() {
    let mut server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation = alice.direct_with(&bob).await;
    let mut socket = Raw::authenticated(&server.ws_url(&alice.token())).await;
    socket
        .send(json!({"type":"send_message","client_msg_id":"last","conversation_id":conversation.conversation_id,"content":"bye"}).to_string())
        .await;
    let ack = socket.next().await;
    assert_eq!(ack["type"], "msg_ack");
    let shutdown = tokio::spawn(server.server.take().unwrap().shutdown());
    let closed = socket.next().await;
    assert_eq!(closed, json!({"type":"closed","code":1001}));
    within("shutdown", shutdown).await.unwrap().unwrap();
}

/// One connection may not flood the server: past its frame budget, frames get
/// `rate_limited` (a send names its `client_msg_id`) and the connection lives on.
#[tokio::test]
async fn a_flooding_connection_is_throttled_not_dropped() {
    let server = TestServer::start_with(|config| config.limits.frames_per_second = 5).await;
    let alice = server.user("alice").await;
    let mut socket = Raw::authenticated(&server.ws_url(&alice.token())).await;
    for _ in 0..30 {
        socket.send(r#"{"type":"ping"}"#).await;
    }
    let mut pongs = 0;
    let mut refused = 0;
    for _ in 0..30 {
        let frame = socket.next().await;
        match (frame["type"].as_str(), frame["code"].as_str()) {
            (Some("pong"), _) => pongs += 1,
            (Some("error"), Some("rate_limited")) => {
                assert!(frame["retry_after_ms"].as_u64().unwrap() > 0);
                refused += 1;
            }
            other => panic!("unexpected {other:?}: {frame}"),
        }
    }
    assert!(pongs >= 10, "the burst allowance is served ({pongs})");
    assert!(refused > 0, "the flood is refused");
    socket.send(r#"{"type":"send_message","client_msg_id":"over","conversation_id":"c_x","content":"x"}"#).await;
    let frame = socket.next().await;
    assert_eq!(
        (frame["code"].as_str(), frame["client_msg_id"].as_str()),
        (Some("rate_limited"), Some("over"))
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    socket.still_alive().await;
}
