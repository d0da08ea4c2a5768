//! Presence (multi-device, last seen, privacy) and typing.

use crate::harness::*;
use parley_proto::PresenceStatus;
use parley_sdk::ServerFrame;
use std::time::Duration;

/// A subscriber gets the current presence at once and every change after; a user goes
/// offline only when their last device does, with `last_seen`.
#[tokio::test]
async fn presence_is_multi_device_with_last_seen() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let mut bob_connection = bob.connect().await;
    bob_connection
        .presence_subscribe(vec![alice.user_id.clone()])
        .unwrap();
    let alice_id = &alice.user_id;
    expect_presence(
        &mut bob_connection,
        "alice offline (snapshot)",
        alice_id,
        PresenceStatus::Offline,
    )
    .await;

    let phone = alice.connect().await;
    expect_presence(
        &mut bob_connection,
        "alice online",
        alice_id,
        PresenceStatus::Online,
    )
    .await;
    let laptop = alice.connect_new_device().await;
    phone.close().await.unwrap();
    expect_no_frame(
        &mut bob_connection,
        Duration::from_millis(400),
        "offline while the laptop is on",
        |frame| matches!(frame, ServerFrame::Presence { user_id, status: PresenceStatus::Offline, .. } if user_id == alice_id),
    )
    .await;
    laptop.close().await.unwrap();
    let last_seen = expect_presence(
        &mut bob_connection,
        "alice offline",
        alice_id,
        PresenceStatus::Offline,
    )
    .await;
    assert!(last_seen.is_some(), "last seen is visible by default");
}

/// With v1's `last_seen_visible` off (`last_seen_privacy: nobody`), others see neither
/// the time nor the status: a frame that says nothing (`offline`, no `last_seen`).
#[tokio::test]
async fn last_seen_privacy_is_respected() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    alice
        .client
        .update_me(&parley_proto::rest::UpdateProfileRequest {
            last_seen_visible: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    let connection = alice.connect().await;
    connection.close().await.unwrap();
    let mut bob_connection = bob.connect().await;
    bob_connection
        .presence_subscribe(vec![alice.user_id.clone()])
        .unwrap();
    let snapshot = expect_frame(&mut bob_connection, "alice's presence", |frame| {
        matches!(frame, ServerFrame::Presence { .. })
    })
    .await;
    assert!(
        matches!(
            snapshot,
            ServerFrame::Presence {
                status: PresenceStatus::Offline,
                last_seen: None,
                ..
            }
        ),
        "{snapshot:?}"
    );
}

/// Typing is relayed to the other members, not back to the typist; it is not relayed
/// in groups over 20 members.
#[tokio::test]
async fn typing_is_relayed_to_others_only() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation_id = alice.direct_with(&bob).await.conversation_id;
    let mut alice_connection = alice.connect().await;
    let mut bob_connection = bob.connect().await;
    alice_connection
        .typing(conversation_id.clone(), true)
        .unwrap();
    expect_frame(&mut bob_connection, "alice typing", |frame| {
        matches!(frame, ServerFrame::Typing { is_typing: true, user_id, .. } if user_id == &alice.user_id)
    })
    .await;
    alice_connection
        .typing(conversation_id.clone(), false)
        .unwrap();
    expect_frame(&mut bob_connection, "alice stopped", |frame| {
        matches!(
            frame,
            ServerFrame::Typing {
                is_typing: false,
                ..
            }
        )
    })
    .await;
    expect_no_frame(
        &mut alice_connection,
        Duration::from_millis(300),
        "own typing echo",
        |frame| matches!(frame, ServerFrame::Typing { .. }),
    )
    .await;

    let mut members = Vec::new();
    for index in 0..21 {
        members.push(server.user(&format!("member{index}")).await.user_id);
    }
    members.push(bob.user_id.clone());
    let big = alice.client.create_group("big", &members).await.unwrap();
    alice_connection
        .typing(big.conversation_id.clone(), true)
        .unwrap();
    expect_no_frame(&mut bob_connection, Duration::from_millis(400), "typing in a big group", |frame| {
        matches!(frame, ServerFrame::Typing { conversation_id, .. } if conversation_id == &big.conversation_id)
    })
    .await;
}

/// A socket that drops while its user is typing is announced as stopped, so nobody sees
/// "typing…" from someone who is gone.
#[tokio::test]
async fn typing_stops_when_the_typist_disconnects() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation = alice.direct_with(&bob).await;
    let alice_connection = alice.connect().await;
    let mut bob_connection = bob.connect().await;
    alice_connection
        .typing(conversation.conversation_id.clone(), true)
        .unwrap();
    expect_frame(&mut bob_connection, "typing", |frame| {
        matches!(
            frame,
            ServerFrame::Typing {
                is_typing: true,
                ..
            }
        )
    })
    .await;
    alice_connection.close().await.unwrap();
    expect_frame(&mut bob_connection, "typing stopped", |frame| {
        matches!(frame, ServerFrame::Typing { is_typing: false, user_id, .. } if user_id == &alice.user_id)
    })
    .await;
}
