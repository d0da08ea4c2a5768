//! The defects found by hostile and new-user testing (issue 6), one test each, against the
//! real server: slow and silent clients, socket caps, close codes, frame budgets, limits on
//! REST writes, JSON errors everywhere, input validation, presence, ordering of
//! `conversation_updated`, the logout race and reserved client ids.

use crate::harness::*;
use crate::raw::Raw;
use futures::SinkExt;
use parley_proto::rest::{CreateConversationRequest, UpdateProfileRequest};
use parley_proto::PresenceStatus;
use parley_sdk::ServerFrame;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

fn rename(name: &str) -> parley_proto::rest::UpdateConversationRequest {
    parley_proto::rest::UpdateConversationRequest {
        name: Some(name.into()),
        description: None,
        disappearing_seconds: None,
        avatar_media_id: None,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Status and error code of a REST answer, checking the body is the protocol's JSON.
async fn refusal(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = response.json().await.unwrap_or_else(|error| {
        panic!("a {status} answer is JSON ({content_type}): {error}");
    });
    assert!(
        content_type.starts_with("application/json"),
        "{status}: {content_type}"
    );
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{status} has {{error:{{code}}}}: {body}"))
        .to_owned();
    assert!(body["error"]["message"].is_string(), "{body}");
    (status, code)
}

/// Reads a TCP connection until the server closes it; the time that took.
async fn time_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
        }
    }
}

/// Slowloris: a half-sent request head, a bare TCP connection and an idle kept-alive
/// connection are all closed after `request_timeout_secs`.
#[tokio::test]
async fn slow_and_silent_connections_are_closed() {
    let server = TestServer::start_with(|config| config.limits.request_timeout_secs = 1).await;
    let address = server.url.trim_start_matches("http://").to_owned();

    let mut half_sent = tokio::net::TcpStream::connect(&address).await.unwrap();
    half_sent
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut bare = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut kept_alive = tokio::net::TcpStream::connect(&address).await.unwrap();
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut slow_body = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow_body
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"username\":",
        )
        .await
        .unwrap();
    // Cleartext HTTP/2 (no header or idle timeout in hyper) is not served at all.
    let mut h2c = tokio::net::TcpStream::connect(&address).await.unwrap();
    h2c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();

    let limit = Duration::from_secs(5);
    for (what, stream) in [
        ("half-sent request", &mut half_sent),
        ("bare TCP", &mut bare),
        ("idle keep-alive", &mut kept_alive),
        ("trickled body", &mut slow_body),
        ("HTTP/2 preface", &mut h2c),
    ] {
        let took = time_until_closed(stream, limit).await;
        assert!(
            took < Duration::from_secs(4),
            "{what} closed after {took:?}"
        );
    }
    // Meanwhile a normal request is served.
    let ok = http()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// Unauthenticated sockets are capped per address (429 before the upgrade); sockets of
/// one device and of one user are capped too (`error` + close 1008).
#[tokio::test]
async fn sockets_are_capped_per_address_user_and_device() {
    let server = TestServer::start_with(|config| {
        config.limits.max_sockets_per_ip = 4;
        config.limits.max_sockets_per_device = 2;
        config.limits.max_sockets_per_user = 3;
        config.limits.max_unauthenticated_sockets = 1;
    })
    .await;
    let alice = server.user("alice").await;
    let bare = server.bare_ws_url();

    let mut device_sockets = Vec::new();
    for _ in 0..2 {
        device_sockets.push(Raw::authenticated(&server.ws_url(&alice.token())).await);
    }
    let mut third = Raw::open(&server.ws_url(&alice.token())).await;
    let error = third.next().await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("rate_limited")),
        "{error}"
    );
    assert_eq!(third.next().await["code"], 1008);
    // A refused socket gives its address slot back once closed.
    drop(third);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another device of alice: the user cap (3) allows one more socket, then refuses.
    let phone = alice.new_device().await;
    let phone_socket = Raw::authenticated(&server.ws_url(&phone.token().unwrap())).await;
    let mut over_user = Raw::open(&server.ws_url(&phone.token().unwrap())).await;
    assert_eq!(over_user.next().await["code"], "rate_limited");
    assert_eq!(over_user.next().await["code"], 1008);
    drop(over_user);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Three sockets held from this address plus one unauthenticated: the fifth is 429.
    let _waiting = Raw::open(&bare).await;
    drop(phone_socket);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second_unauthenticated = tokio_tungstenite::connect_async(&bare).await.unwrap_err();
    assert!(
        second_unauthenticated.to_string().contains("429"),
        "one socket may wait for auth on this node: {second_unauthenticated}"
    );
    let _phone_socket = Raw::authenticated(&server.ws_url(&phone.token().unwrap())).await;
    let refused = tokio_tungstenite::connect_async(&bare).await.unwrap_err();
    assert!(refused.to_string().contains("429"), "{refused}");

    // A closed socket gives its slot back.
    drop(device_sockets.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    Raw::authenticated(&server.ws_url(&alice.token())).await;
}

/// A node takes new WebSockets at `accepts_per_second` (bursts of twice that): past the
/// burst, an upgrade is refused with 429 and `Retry-After` before any work is done, and
/// once the budget refills, sockets are accepted again. This is what keeps survivors
/// healthy when a dead node's clients all reconnect at once.
#[tokio::test]
async fn new_sockets_beyond_the_accept_rate_get_429_with_retry_after() {
    let server = TestServer::start_with(|config| config.limits.accepts_per_second = 2).await;
    let alice = server.user("alice").await;
    let url = server.ws_url(&alice.token());
    let mut accepted = Vec::new();
    let refusal = loop {
        match tokio_tungstenite::connect_async(&url).await {
            Ok((socket, _)) => accepted.push(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => break response,
            Err(error) => panic!("unexpected failure: {error}"),
        }
        assert!(accepted.len() <= 5, "the burst is 4 sockets");
    };
    assert!(
        accepted.len() >= 3,
        "a burst of 4 is taken first, got {}",
        accepted.len()
    );
    assert_eq!(refusal.status(), 429);
    let retry_after: u64 = refusal.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    tokio_tungstenite::connect_async(&url)
        .await
        .expect("accepted again once the budget refilled");
}

/// A frame above the 1 MiB hard limit closes with 1009 (not a TCP reset); text that is
/// not UTF-8 closes with 1007; a binary frame or a ping before `auth` gets the promised
/// `error` and 4001.
#[tokio::test]
async fn protocol_violations_get_their_close_codes() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;

    let mut huge = Raw::authenticated(&server.ws_url(&alice.token())).await;
    let payload = json!({"type":"ping","padding":"x".repeat(2 * 1024 * 1024)}).to_string();
    // The write may fail once the server has closed: what matters is what it read.
    let _ = huge.0.send(Message::Text(payload.into())).await;
    assert_eq!(huge.next().await["code"], 1009);

    let mut not_utf8 = Raw::authenticated(&server.ws_url(&alice.token())).await;
    let frame = Frame::message(vec![b'"', 0xff, 0xfe, b'"'], OpCode::Data(Data::Text), true);
    not_utf8.0.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(not_utf8.next().await["code"], 1007);

    let bare = server.bare_ws_url();
    let mut binary_first = Raw::open(&bare).await;
    binary_first
        .0
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    binary_first.expect_error("not_authenticated").await;
    assert_eq!(binary_first.next().await["code"], 4001);

    let mut ping_first = Raw::open(&bare).await;
    ping_first
        .0
        .send(Message::Ping(vec![1].into()))
        .await
        .unwrap();
    ping_first.expect_error("not_authenticated").await;
    assert_eq!(ping_first.next().await["code"], 4001);
}

/// Binary frames spend the connection's frame budget like text frames.
#[tokio::test]
async fn binary_frames_spend_the_frame_budget() {
    let server = TestServer::start_with(|config| config.limits.frames_per_second = 10).await;
    let alice = server.user("alice").await;
    let mut socket = Raw::authenticated(&server.ws_url(&alice.token())).await;
    for _ in 0..40 {
        socket
            .0
            .send(Message::Binary(vec![0].into()))
            .await
            .unwrap();
    }
    let mut rate_limited = 0;
    for _ in 0..40 {
        let frame = socket.next().await;
        if frame["code"] == "rate_limited" {
            assert!(frame["retry_after_ms"].as_u64().is_some(), "{frame}");
            rate_limited += 1;
        }
    }
    assert!(
        rate_limited >= 15,
        "40 binary frames against a budget of 20: {rate_limited} refused"
    );
}

/// 100 typing toggles in under a second reach the other member as a handful of frames,
/// ending in the last state.
#[tokio::test]
async fn typing_toggles_are_throttled_and_end_in_the_last_state() {
    let server = TestServer::start_with(|config| config.limits.frames_per_second = 1000).await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation = alice.direct_with(&bob).await;
    let mut bob_connection = bob.connect().await;
    let mut socket = Raw::authenticated(&server.ws_url(&alice.token())).await;
    for index in 0..100 {
        let frame = json!({"type":"typing","conversation_id":conversation.conversation_id,"is_typing": index % 2 == 0});
        socket.send(frame.to_string()).await;
    }
    socket.still_alive().await;
    let seen: Vec<bool> = frames_within(&mut bob_connection, Duration::from_millis(2500))
        .await
        .into_iter()
        .filter_map(|frame| match frame {
            ServerFrame::Typing { is_typing, .. } => Some(is_typing),
            _ => None,
        })
        .collect();
    assert!(
        !seen.is_empty() && seen.len() <= 4,
        "100 toggles relayed as {} frames: {seen:?}",
        seen.len()
    );
    assert_eq!(
        seen.last(),
        Some(&false),
        "the last state arrives: {seen:?}"
    );
}

/// Conversation creation, renames and other writes count against a per-user limit; a new
/// account gets a tighter one on new groups.
#[tokio::test]
async fn rest_writes_are_rate_limited() {
    let server = TestServer::start_with(|config| {
        config.limits.writes_per_minute = 4;
        config.limits.new_account_groups_per_day = 2;
    })
    .await;
    let [alice, victim] = server.users(["alice", "victim"]).await;
    let make_group = |name: &str| CreateConversationRequest::Group {
        name: name.into(),
        member_ids: vec![victim.user_id.clone()],
        description: None,
    };
    let url = format!("{}/api/v1/conversations", server.url);
    let mut statuses = Vec::new();
    for index in 0..3 {
        let response = http()
            .post(&url)
            .bearer_auth(alice.token())
            .json(&make_group(&format!("group {index}")))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            let (_, code) = refusal(response).await;
            assert_eq!(code, "rate_limited");
        }
    }
    assert_eq!(
        statuses,
        vec![201, 201, 429],
        "a new account: 2 groups a day"
    );

    let conversations = alice.client.conversations(None, Some(10)).await.unwrap();
    let group_id = conversations.conversations[0].conversation_id.clone();
    let mut renames = Vec::new();
    for index in 0..4 {
        let response = http()
            .patch(format!("{url}/{}", group_id))
            .bearer_auth(alice.token())
            .json(&json!({"name": format!("BUY NOW {index}")}))
            .send()
            .await
            .unwrap();
        renames.push(response.status().as_u16());
    }
    assert_eq!(
        renames,
        vec![200, 200, 429, 429],
        "2 creations + 2 renames use the 4 writes a minute"
    );
    let unread = victim.client.unread().await.unwrap();
    assert_eq!(
        unread.total, 4,
        "the victim sees 2 creations and 2 renames, no more: {unread:?}"
    );
    // Leaving is always allowed, even over the limit.
    alice
        .client
        .leave(&group_id)
        .await
        .expect("leaving is not rate limited");
}

/// Path and query extraction failures answer the JSON error shape, not text/plain.
#[tokio::test]
async fn extraction_failures_are_json_errors() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let base = format!("{}/api/v1", server.url);
    for path in [
        "/conversations/c_x/messages/abc/receipts",
        "/conversations/%FF",
        "/conversations/c_x/messages?limit=-3",
        "/users?query=a&limit=x",
    ] {
        let response = http()
            .get(format!("{base}{path}"))
            .bearer_auth(alice.token())
            .send()
            .await
            .unwrap();
        let (status, code) = refusal(response).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{path}");
    }
    let ws = http()
        .get(format!("{}/ws?token=a&token=b", server.url))
        .send()
        .await
        .unwrap();
    let (status, code) = refusal(ws).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
}

/// Control characters in content and URLs, white-space-only content, and line breaks or
/// bidi overrides in names are refused.
#[tokio::test]
async fn spoofing_and_control_characters_are_refused() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation = alice.direct_with(&bob).await;
    let messages_url = format!(
        "{}/api/v1/conversations/{}/messages",
        server.url, conversation.conversation_id
    );
    for content in ["   ", "\u{0}", "\u{1b}[31mred", "\n\t ", "bell\u{7}"] {
        let response = http()
            .post(&messages_url)
            .bearer_auth(alice.token())
            .json(&json!({"client_msg_id": format!("c{}", content.len()), "content": content}))
            .send()
            .await
            .unwrap();
        assert_eq!(refusal(response).await.0, 400, "{content:?}");
    }
    let fine = http()
        .post(&messages_url)
        .bearer_auth(alice.token())
        .json(&json!({"client_msg_id": "fine", "content": "line one\n\ttabbed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 201);

    let me_url = format!("{}/api/v1/users/me", server.url);
    for update in [
        json!({"display_name": "\u{202e}nimdA"}),
        json!({"display_name": "Admin\n\n[system] reset"}),
        json!({"display_name": "Admin\u{2028}x"}),
        json!({"avatar_url": "https://example.com/\u{7}.png"}),
        json!({"avatar_url": "https://example.com/a b.png"}),
    ] {
        let response = http()
            .patch(&me_url)
            .bearer_auth(alice.token())
            .json(&update)
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(response).await,
            (400, "invalid_request".into()),
            "{update}"
        );
    }
    let group = http()
        .post(format!("{}/api/v1/conversations", server.url))
        .bearer_auth(alice.token())
        .json(&json!({"type":"group","name":"Team\u{2066}evil","member_ids":[]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(group).await.0, 400);
    let register = http()
        .post(format!("{}/api/v1/auth/register", server.url))
        .json(&json!({"username":"spoof","password":"password-123","display_name":"a\nb"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(register).await.0, 400);
}

/// A user's `client_msg_id` cannot take the `system:` prefix, so a send is never taken for
/// a duplicate of a system message (and silently dropped).
#[tokio::test]
async fn system_client_ids_are_reserved() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let group = alice.group_with("Team", &[&bob]).await;
    let history = alice
        .client
        .history(&group.conversation_id, None, None, Some(10))
        .await
        .unwrap();
    let system_id = history.messages[0].client_msg_id.clone();
    assert!(system_id.starts_with("system:"));
    let response = http()
        .post(format!(
            "{}/api/v1/conversations/{}/messages",
            server.url, group.conversation_id
        ))
        .bearer_auth(alice.token())
        .json(&json!({"client_msg_id": system_id, "content": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response).await, (400, "invalid_request".into()));
}

/// User search has a per-user limit.
#[tokio::test]
async fn user_search_is_rate_limited() {
    let server = TestServer::start_with(|config| config.limits.searches_per_minute = 3).await;
    let alice = server.user("alice").await;
    server.user("alfred").await;
    for _ in 0..3 {
        let found = alice.client.search_users("alf").await.unwrap();
        assert_eq!(found.len(), 1);
    }
    let refused = http()
        .get(format!("{}/api/v1/users?query=alf", server.url))
        .bearer_auth(alice.token())
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(refused).await, (429, "rate_limited".into()));
}

/// The `offline` after a user's only session carries `last_seen` (visible by default), and
/// one `presence_subscribe` may name 256 users.
#[tokio::test]
async fn offline_after_a_first_session_has_last_seen() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let mut bob_connection = bob.connect().await;
    let mut watched = vec![alice.user_id.clone()];
    watched.extend((0..255).map(|index| parley_proto::UserId(format!("u_nobody{index}"))));
    bob_connection.presence_subscribe(watched).unwrap();
    let alice_id = alice.user_id.clone();
    expect_frame(
        &mut bob_connection,
        "alice's snapshot",
        |frame| matches!(frame, ServerFrame::Presence { user_id, .. } if user_id == &alice_id),
    )
    .await;
    let connection = alice.connect().await;
    expect_presence(
        &mut bob_connection,
        "alice online",
        &alice_id,
        PresenceStatus::Online,
    )
    .await;
    connection.close().await.unwrap();
    let last_seen = expect_presence(
        &mut bob_connection,
        "alice offline",
        &alice_id,
        PresenceStatus::Offline,
    )
    .await;
    assert!(
        last_seen.is_some(),
        "offline after the first session has last_seen"
    );
}

/// Two quick renames: the last `conversation_updated` a member gets carries the last
/// name; a removed member gets `conversation_removed` and no `conversation_updated` after.
#[tokio::test]
async fn conversation_updates_arrive_in_commit_order() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let group = alice.group_with("Start", &[&bob, &carol]).await;
    let mut bob_connection = bob.connect().await;
    let mut carol_connection = carol.connect().await;
    let renames = (0..6).map(|index| {
        let client = alice.client.clone();
        let conversation_id = group.conversation_id.clone();
        async move {
            client
                .update_conversation(&conversation_id, &rename(&format!("name {index}")))
                .await
        }
    });
    for outcome in futures::future::join_all(renames).await {
        outcome.unwrap();
    }
    let stored = alice
        .client
        .conversation(&group.conversation_id)
        .await
        .unwrap();
    let last_seen_name = frames_within(&mut bob_connection, Duration::from_millis(800))
        .await
        .into_iter()
        .rev()
        .find_map(|frame| match frame {
            ServerFrame::ConversationUpdated { conversation } => Some(conversation.name),
            _ => None,
        })
        .flatten();
    assert_eq!(
        last_seen_name, stored.name,
        "the last update is the stored state"
    );

    alice
        .client
        .remove_member(&group.conversation_id, &carol.user_id)
        .await
        .unwrap();
    alice
        .client
        .update_conversation(&group.conversation_id, &rename("after carol"))
        .await
        .unwrap();
    let group_id = group.conversation_id.clone();
    expect_frame(&mut carol_connection, "conversation_removed", |frame| {
        matches!(frame, ServerFrame::ConversationRemoved { conversation_id } if conversation_id == &group_id)
    })
    .await;
    expect_no_frame(
        &mut carol_connection,
        Duration::from_millis(500),
        "an update after the removal",
        |frame| matches!(frame, ServerFrame::ConversationUpdated { conversation } if conversation.conversation_id == group_id),
    )
    .await;
}

/// A socket authenticated while its device logs out never stays open: it is closed with
/// 4001 whichever way the race goes.
#[tokio::test]
async fn logout_racing_a_new_socket_closes_it() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for _ in 0..10 {
        let device = alice.new_device().await;
        let token = device.token().unwrap();
        let url = server.ws_url(&token);
        let (socket, logout) = tokio::join!(tokio_tungstenite::connect_async(url), device.logout());
        logout.unwrap();
        let Ok((socket, _)) = socket else {
            continue; // refused at the upgrade: fine
        };
        let mut socket = Raw(socket);
        let closed = within("the revoked socket closes", async {
            loop {
                let frame = socket.next().await;
                if frame["type"] == "closed" {
                    return frame;
                }
            }
        })
        .await;
        assert_eq!(closed["code"], 4001, "{closed}");
    }
}

/// Many parallel wrong-password logins are verified a few at a time (Argon2 is bounded
/// for login as for register) and all get their answer.
#[tokio::test]
async fn parallel_logins_are_answered_and_bounded() {
    let server = TestServer::start_with(|config| {
        config.auth.argon2_memory_kib = 8 * 1024;
        config.auth.argon2_iterations = 1;
    })
    .await;
    server.user("alice").await;
    let attempts = (0..30).map(|index| {
        let client = parley_sdk::Client::new(&server.url).unwrap();
        async move {
            client
                .login("alice", &format!("wrong-password-{index}"))
                .await
        }
    });
    let outcomes = within("30 logins", futures::future::join_all(attempts)).await;
    assert!(outcomes.iter().all(|outcome| outcome.is_err()));
    let metrics = http()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let peak: f64 = metrics
        .lines()
        .find(|line| line.starts_with("parley_password_hashing_peak "))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .expect("parley_password_hashing_peak in /metrics");
    let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    assert!(
        peak >= 1.0 && peak <= cores as f64,
        "at most one hash per core at a time, saw {peak}"
    );
}

/// The same user's new account limit on direct chats; opening an existing one is free.
#[tokio::test]
async fn new_accounts_open_few_direct_chats() {
    let server =
        TestServer::start_with(|config| config.limits.new_account_direct_chats_per_hour = 2).await;
    let alice = server.user("alice").await;
    let mut others = Vec::new();
    for name in ["bob", "carol", "dave"] {
        others.push(server.user(name).await);
    }
    alice
        .client
        .create_direct(&others[0].user_id)
        .await
        .unwrap();
    alice
        .client
        .create_direct(&others[0].user_id)
        .await
        .expect("reopening is free");
    alice
        .client
        .create_direct(&others[1].user_id)
        .await
        .unwrap();
    let refused = http()
        .post(format!("{}/api/v1/conversations", server.url))
        .bearer_auth(alice.token())
        .json(&json!({"type":"direct","participant_ids":[others[2].user_id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(refused).await, (429, "rate_limited".into()));
    // Profile changes are writes too, but far from the limit here.
    alice
        .client
        .update_me(&UpdateProfileRequest {
            status_message: Some("hi".into()),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Found by schema fuzzing: a JSON array passed for an object body; a reused
/// `client_msg_id` was answered with a message of another (or no) conversation; lengths
/// counted in bytes where the contract says characters.
#[tokio::test]
async fn schema_fuzzing_findings_stay_fixed() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let base = format!("{}/api/v1", server.url);
    let array = http()
        .patch(format!("{base}/users/me"))
        .bearer_auth(alice.token())
        .json(&json!([null, "hacked status"]))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(array).await, (400, "invalid_request".into()));
    let register = http()
        .post(format!("{base}/auth/register"))
        .json(&json!(["zed_user", "password123"]))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(register).await, (400, "invalid_request".into()));

    let direct = alice.direct_with(&bob).await;
    let own = alice.direct_with(&alice).await;
    let send = |conversation: String, id: String| {
        let request = http()
            .post(format!("{base}/conversations/{conversation}/messages"))
            .bearer_auth(alice.token())
            .json(&json!({"client_msg_id": id, "content": "hi"}));
        async move { request.send().await.unwrap() }
    };
    let first = send(direct.conversation_id.to_string(), "m-1".into()).await;
    assert_eq!(first.status(), 201);
    let retry = send(direct.conversation_id.to_string(), "m-1".into()).await;
    assert_eq!(retry.status(), 200, "a retry in the same conversation");
    let elsewhere = send(own.conversation_id.to_string(), "m-1".into()).await;
    assert_eq!(
        refusal(elsewhere).await,
        (409, "client_msg_id_reused".into())
    );
    let nowhere = send("c_does_not_exist".into(), "m-1".into()).await;
    assert_eq!(refusal(nowhere).await, (403, "not_member".into()));

    let long_id = send(direct.conversation_id.to_string(), "é".repeat(100)).await;
    assert_eq!(long_id.status(), 201, "128 characters, not bytes");
    let search = http()
        .get(format!("{base}/users"))
        .query(&[("query", "é".repeat(33))])
        .bearer_auth(alice.token())
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 200, "64 characters, not bytes");
}

use parley_core::bus::BusError;

/// A bus that refuses every event once `failing` is set.
struct FlakyBus {
    inner: parley_core::local::LocalBus,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl parley_core::Bus for FlakyBus {
    fn node_id(&self) -> &parley_core::NodeId {
        self.inner.node_id()
    }

    async fn subscribe(&self) -> Result<parley_core::bus::BusReceiver, BusError> {
        self.inner.subscribe().await
    }

    async fn add_interest(&self, interest: parley_core::bus::Interest) -> Result<(), BusError> {
        self.inner.add_interest(interest).await
    }

    async fn remove_interest(&self, interest: parley_core::bus::Interest) -> Result<(), BusError> {
        self.inner.remove_interest(interest).await
    }

    async fn publish(&self, events: Vec<parley_core::BusEvent>) -> Result<(), BusError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            let down =
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "the bus is down");
            return Err(BusError::unavailable(down));
        }
        self.inner.publish(events).await
    }

    async fn ping(&self) -> Result<(), BusError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            let down =
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "the bus is down");
            return Err(BusError::unavailable(down));
        }
        self.inner.ping().await
    }
}

/// A change that is stored but cannot be announced answers `unavailable` (503) to its
/// caller, and stays stored: devices catch up with `sync`.
#[tokio::test]
async fn a_change_stored_but_not_announced_answers_unavailable() {
    use parley_core::local::{LocalBus, LocalPresence, LocalRateLimiter};
    use parley_core::{Chat, CoreConfig, Error, NodeId, Ports};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = parley_store_sqlite::SqliteStore::open(dir.path())
        .await
        .unwrap();
    let bus = Arc::new(FlakyBus {
        inner: LocalBus::new(NodeId::new("test").unwrap(), 1024),
        failing: Default::default(),
    });
    let config = CoreConfig {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        ..CoreConfig::default()
    };
    let presence = LocalPresence::new(NodeId::new("test").unwrap(), config.presence_lease);
    let chat = Chat::new(
        config,
        Ports {
            store: Arc::new(store),
            bus: bus.clone(),
            presence: Arc::new(presence),
            limiter: Arc::new(LocalRateLimiter::new()),
            media: Arc::new(
                parley_media::DiskMediaStore::open(&tempfile::tempdir().unwrap().keep(), "")
                    .await
                    .unwrap(),
            ),
        },
    );
    let alice = chat
        .register("alice", "password-123", None, None)
        .await
        .unwrap();
    let bob = chat
        .register("bob", "password-123", None, None)
        .await
        .unwrap();
    let session = chat.authenticate(&alice.token).await.unwrap();
    let (group, _) = chat
        .create_conversation(
            &session,
            parley_core::chat::NewChat::Group {
                name: "Team".into(),
                member_ids: vec![bob.user_id.clone()],
                description: None,
            },
        )
        .await
        .unwrap();
    bus.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let outcome = chat
        .update_conversation(
            &session,
            &group.conversation_id,
            parley_core::chat::GroupDetails {
                name: Some("Renamed".into()),
                description: None,
                disappearing_seconds: None,
                avatar_media_id: None,
            },
        )
        .await;
    let error = outcome.expect_err("the announcement failed");
    assert!(matches!(error, Error::Bus(_)), "{error:?}");
    let wire = parley_gateway::error::to_wire(&error, "test");
    assert_eq!(wire.code.http_status(), 503);
    let not_ready = chat
        .check_ready()
        .await
        .expect_err("not ready without a bus");
    assert_eq!(not_ready.to_string(), "message bus unavailable");
    bus.failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    chat.check_ready().await.expect("ready again");
    let stored = chat
        .conversation(&session, &group.conversation_id)
        .await
        .unwrap();
    assert_eq!(stored.name.as_deref(), Some("Renamed"), "the change stands");
}
