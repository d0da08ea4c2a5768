//! Presence (multi-device, last seen, privacy) and typing.

use crate::harness::*;
use parley_proto::PresenceStatus;
use parley_sdk::{Event, ServerFrame};
use std::time::Duration;

/// A subscriber gets the current presence at once and every change after; a user goes
/// offline only when their last device does, with `last_seen`.
#[tokio::test]
async fn presence_is_multi_device_with_last_seen() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut bob_connection = bob.connect().await;
    bob_connection
        .presence_subscribe(vec![alice.user_id.clone()])
        .unwrap();
    let is_alice = |status: PresenceStatus| {
        let alice_id = alice.user_id.clone();
        move |event: &Event| matches!(event, Event::Frame(ServerFrame::Presence { user_id, status: s, .. }) if user_id == &alice_id && *s == status)
    };
    expect(
        &mut bob_connection,
        "alice offline (snapshot)",
        is_alice(PresenceStatus::Offline),
    )
    .await;

    let phone = alice.connect().await;
    expect(
        &mut bob_connection,
        "alice online",
        is_alice(PresenceStatus::Online),
    )
    .await;
    let laptop = connect(&alice.new_device().await).await;
    phone.close().await.unwrap();
    expect_none(
        &mut bob_connection,
        Duration::from_millis(400),
        "offline while the laptop is on",
        is_alice(PresenceStatus::Offline),
    )
    .await;
    laptop.close().await.unwrap();
    let offline = expect(
        &mut bob_connection,
        "alice offline",
        is_alice(PresenceStatus::Offline),
    )
    .await;
    let Event::Frame(ServerFrame::Presence { last_seen, .. }) = offline else {
        unreachable!()
    };
    assert!(last_seen.is_some(), "last seen is visible by default");
}

/// With `last_seen_visible` off, others see online/offline but never the time.
#[tokio::test]
async fn last_seen_privacy_is_respected() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
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
    let snapshot = expect(&mut bob_connection, "alice's presence", |event| {
        matches!(event, Event::Frame(ServerFrame::Presence { .. }))
    })
    .await;
    assert!(
        matches!(
            snapshot,
            Event::Frame(ServerFrame::Presence {
                status: PresenceStatus::Offline,
                last_seen: None,
                ..
            })
        ),
        "{snapshot:?}"
    );
}

/// Typing is relayed to the other members, not back to the typist; it is not relayed
/// in groups over 20 members.
#[tokio::test]
async fn typing_is_relayed_to_others_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conversation = alice.client.create_direct(&bob.user_id).await.unwrap();
    let conversation_id = conversation.conversation_id.clone();
    let mut alice_connection = alice.connect().await;
    let mut bob_connection = bob.connect().await;
    alice_connection
        .typing(conversation_id.clone(), true)
        .unwrap();
    expect(&mut bob_connection, "alice typing", |event| {
        matches!(event, Event::Frame(ServerFrame::Typing { is_typing: true, user_id, .. }) if user_id == &alice.user_id)
    })
    .await;
    alice_connection
        .typing(conversation_id.clone(), false)
        .unwrap();
    expect(&mut bob_connection, "alice stopped", |event| {
        matches!(
            event,
            Event::Frame(ServerFrame::Typing {
                is_typing: false,
                ..
            })
        )
    })
    .await;
    expect_none(
        &mut alice_connection,
        Duration::from_millis(300),
        "own typing echo",
        |event| matches!(event, Event::Frame(ServerFrame::Typing { .. })),
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
    expect_none(&mut bob_connection, Duration::from_millis(400), "typing in a big group", |event| {
        matches!(event, Event::Frame(ServerFrame::Typing { conversation_id, .. }) if conversation_id == &big.conversation_id)
    })
    .await;
}

/// A socket that drops while its user is typing is announced as stopped, so nobody sees
/// "typing…" from someone who is gone.
#[tokio::test]
async fn typing_stops_when_the_typist_disconnects() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conversation = alice.client.create_direct(&bob.user_id).await.unwrap();
    let alice_connection = alice.connect().await;
    let mut bob_connection = bob.connect().await;
    alice_connection
        .typing(conversation.conversation_id.clone(), true)
        .unwrap();
    expect(&mut bob_connection, "typing", |event| {
        matches!(
            event,
            Event::Frame(ServerFrame::Typing {
                is_typing: true,
                ..
            })
        )
    })
    .await;
    alice_connection.close().await.unwrap();
    expect(&mut bob_connection, "typing stopped", |event| {
        matches!(event, Event::Frame(ServerFrame::Typing { is_typing: false, user_id, .. }) if user_id == &alice.user_id)
    })
    .await;
}
