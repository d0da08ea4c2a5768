//! Blocking and `last_seen` privacy end to end over the SDK, in whichever mode the run is
//! in; and a block across the nodes of a cluster.

use crate::harness::*;
use parley_proto::{ErrorCode, LastSeenPrivacy, PresenceStatus, ServerFrame, UserId};
use parley_sdk::Connection;
use std::time::Duration;

/// How long a test waits to be sure a frame does not come.
const QUIET: Duration = Duration::from_millis(500);

/// Waits for the frame that says nothing about `user_id` (hidden: `offline`, no time).
async fn expect_hidden(connection: &mut Connection, what: &str, user_id: &UserId) {
    let last_seen = expect_presence(connection, what, user_id, PresenceStatus::Offline).await;
    assert_eq!(last_seen, None, "{what}: a hidden user shows no last seen");
}

async fn expect_no_presence(connection: &mut Connection, what: &str, user_id: &UserId) {
    expect_no_frame(
        connection,
        QUIET,
        what,
        |frame| matches!(frame, ServerFrame::Presence { user_id: id, .. } if id == user_id),
    )
    .await;
}

/// A blocked user cannot write to the blocker's direct chat (REST or WebSocket), start
/// one, or put the blocker in a group; the blocker cannot write there either until they
/// unblock; nothing refused is stored; group messages flow both ways.
#[tokio::test]
async fn a_block_stops_the_direct_chat_and_new_chats_with_the_blocker() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let chat = alice.direct_with(&bob).await.conversation_id;
    let team = alice
        .group_with("team", &[&bob, &carol])
        .await
        .conversation_id;
    bob.client
        .send_rest(&chat, &text_request("before", "before the block"))
        .await
        .unwrap();

    alice.client.block(&bob.user_id).await.unwrap();
    alice.client.block(&bob.user_id).await.unwrap();
    let blocked = alice.client.blocked_users().await.unwrap();
    assert_eq!(blocked.len(), 1);
    assert_eq!(
        (&blocked[0].user_id, blocked[0].username.as_str()),
        (&bob.user_id, "bob")
    );
    assert!(bob.client.blocked_users().await.unwrap().is_empty());

    let by_rest = bob
        .client
        .send_rest(&chat, &text_request("rest", "let me in"))
        .await
        .unwrap_err();
    assert_eq!(by_rest.code(), Some(ErrorCode::Blocked));
    assert_eq!(by_rest.status(), Some(403));
    let bob_socket = bob.connect().await;
    let by_socket = bob_socket
        .send_and_wait(chat.clone(), "over the socket")
        .await
        .unwrap_err();
    assert_eq!(by_socket.code(), Some(ErrorCode::Blocked));
    let own = alice
        .client
        .send_rest(&chat, &text_request("mine", "from the blocker"))
        .await
        .unwrap_err();
    assert_eq!(own.code(), Some(ErrorCode::Blocked));
    // No system message gets in either.
    let announced = bob
        .client
        .set_disappearing(&chat, 86_400)
        .await
        .unwrap_err();
    assert_eq!(announced.code(), Some(ErrorCode::Blocked));
    let history = alice.client.history(&chat, None, None, None).await.unwrap();
    let texts: Vec<&str> = history
        .messages
        .iter()
        .map(|message| message.content.as_str())
        .collect();
    assert_eq!(texts, vec!["before the block"], "nothing refused is stored");

    let reopen = bob.client.create_direct(&alice.user_id).await.unwrap_err();
    assert_eq!(reopen.code(), Some(ErrorCode::Blocked));
    let new_group = bob
        .client
        .create_group("bob's", std::slice::from_ref(&alice.user_id))
        .await
        .unwrap_err();
    assert_eq!(new_group.code(), Some(ErrorCode::Blocked));
    let bobs_group = bob.group_with("bob's own", &[&carol]).await.conversation_id;
    let added = bob
        .client
        .add_members(&bobs_group, std::slice::from_ref(&alice.user_id))
        .await
        .unwrap_err();
    assert_eq!(added.code(), Some(ErrorCode::Blocked));
    // The blocker may still put the blocked user in a group: only the blocked side is
    // kept from the blocker.
    let alices = alice.group_with("alice's", &[&carol]).await.conversation_id;
    let joined = alice
        .client
        .add_members(&alices, std::slice::from_ref(&bob.user_id))
        .await
        .unwrap();
    assert!(joined.iter().any(|member| member.user_id == bob.user_id));

    let mut alice_socket = alice.connect().await;
    sync_done(&mut alice_socket).await;
    bob_socket
        .send_and_wait(team.clone(), "still in the group")
        .await
        .unwrap();
    let seen = messages(&mut alice_socket, &team, 1).await;
    assert_eq!(seen[0].content, "still in the group");

    alice.client.unblock(&bob.user_id).await.unwrap();
    alice.client.unblock(&bob.user_id).await.unwrap();
    assert!(alice.client.blocked_users().await.unwrap().is_empty());
    bob_socket
        .send_and_wait(chat.clone(), "after the unblock")
        .await
        .unwrap();
    let unknown = alice
        .client
        .block(&UserId::from("u_01NOBODY0000000000000000000"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some(ErrorCode::NotFound));
    let myself = alice.client.block(&alice.user_id).await.unwrap_err();
    assert_eq!(myself.code(), Some(ErrorCode::Forbidden));
    let nobody = alice
        .client
        .unblock(&UserId::from("u_01NOBODY0000000000000000000"))
        .await
        .unwrap_err();
    assert_eq!(nobody.code(), Some(ErrorCode::NotFound));
}

/// Neither side of a block sees the other's presence, last seen or typing; someone
/// else still does. Unblocking shows presence again.
#[tokio::test]
async fn presence_and_typing_do_not_cross_a_block() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let team = alice
        .group_with("team", &[&bob, &carol])
        .await
        .conversation_id;
    let mut bob_socket = bob.connect().await;
    let mut carol_socket = carol.connect().await;
    for socket in [&mut bob_socket, &mut carol_socket] {
        sync_done(socket).await;
        socket
            .presence_subscribe(vec![alice.user_id.clone()])
            .unwrap();
        expect_presence(
            socket,
            "alice's snapshot",
            &alice.user_id,
            PresenceStatus::Offline,
        )
        .await;
    }
    let alice_socket = alice.connect().await;
    expect_presence(
        &mut bob_socket,
        "alice online",
        &alice.user_id,
        PresenceStatus::Online,
    )
    .await;
    expect_presence(
        &mut carol_socket,
        "alice online",
        &alice.user_id,
        PresenceStatus::Online,
    )
    .await;

    alice.client.block(&bob.user_id).await.unwrap();
    expect_hidden(&mut bob_socket, "alice hidden from bob", &alice.user_id).await;
    alice_socket.close().await.unwrap();
    let last_seen = expect_presence(
        &mut carol_socket,
        "alice offline for carol",
        &alice.user_id,
        PresenceStatus::Offline,
    )
    .await;
    assert!(last_seen.is_some(), "carol sees alice's last seen");
    let alice_socket = alice.connect().await;
    expect_presence(
        &mut carol_socket,
        "alice back",
        &alice.user_id,
        PresenceStatus::Online,
    )
    .await;
    expect_no_presence(
        &mut bob_socket,
        "alice's presence on bob's socket",
        &alice.user_id,
    )
    .await;
    // A new subscribe is answered, with nothing.
    bob_socket
        .presence_subscribe(vec![alice.user_id.clone()])
        .unwrap();
    expect_hidden(&mut bob_socket, "alice's snapshot for bob", &alice.user_id).await;
    // Bob's presence is hidden from alice too.
    let mut alice_watch = alice.connect_new_device().await;
    alice_watch
        .presence_subscribe(vec![bob.user_id.clone()])
        .unwrap();
    expect_hidden(&mut alice_watch, "bob's snapshot for alice", &bob.user_id).await;

    alice_socket.typing(team.clone(), true).unwrap();
    expect_frame(&mut carol_socket, "alice typing for carol", |frame| {
        matches!(frame, ServerFrame::Typing { user_id, is_typing: true, .. } if user_id == &alice.user_id)
    })
    .await;
    expect_no_frame(&mut bob_socket, QUIET, "alice typing for bob", |frame| {
        matches!(frame, ServerFrame::Typing { .. })
    })
    .await;

    alice.client.unblock(&bob.user_id).await.unwrap();
    expect_presence(
        &mut bob_socket,
        "alice visible again",
        &alice.user_id,
        PresenceStatus::Online,
    )
    .await;
}

/// `last_seen_privacy`: `contacts` shows presence only to people with a direct chat the
/// user has written in;
/// `nobody` to no one (those who saw it get the frame that says nothing); `everyone`
/// shows it again. v1's `last_seen_visible` follows.
#[tokio::test]
async fn last_seen_privacy_has_three_choices() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    // "People I chat with": a direct chat alice has written in (carol's, opened by
    // carol and silent on alice's side, does not count).
    let with_bob = alice.direct_with(&bob).await.conversation_id;
    alice
        .client
        .send_rest(&with_bob, &text_request("hi", "hi bob"))
        .await
        .unwrap();
    carol.direct_with(&alice).await;
    let profile = alice
        .client
        .set_last_seen_privacy(LastSeenPrivacy::Contacts)
        .await
        .unwrap();
    assert_eq!(profile.last_seen_privacy, LastSeenPrivacy::Contacts);
    assert!(!profile.last_seen_visible);
    assert_eq!(
        alice.client.me().await.unwrap().last_seen_privacy,
        LastSeenPrivacy::Contacts
    );
    let mut bob_socket = bob.connect().await;
    let mut carol_socket = carol.connect().await;
    for socket in [&mut bob_socket, &mut carol_socket] {
        sync_done(socket).await;
        socket
            .presence_subscribe(vec![alice.user_id.clone()])
            .unwrap();
    }
    expect_presence(
        &mut bob_socket,
        "snapshot",
        &alice.user_id,
        PresenceStatus::Offline,
    )
    .await;
    expect_hidden(&mut carol_socket, "snapshot for a stranger", &alice.user_id).await;
    let _alice_socket = alice.connect().await;
    expect_presence(
        &mut bob_socket,
        "alice online",
        &alice.user_id,
        PresenceStatus::Online,
    )
    .await;
    expect_no_presence(
        &mut carol_socket,
        "alice online for a stranger",
        &alice.user_id,
    )
    .await;

    alice
        .client
        .set_last_seen_privacy(LastSeenPrivacy::Nobody)
        .await
        .unwrap();
    expect_hidden(&mut bob_socket, "alice hides from bob", &alice.user_id).await;
    bob_socket
        .presence_subscribe(vec![alice.user_id.clone()])
        .unwrap();
    expect_hidden(&mut bob_socket, "the snapshot under nobody", &alice.user_id).await;

    let profile = alice
        .client
        .set_last_seen_privacy(LastSeenPrivacy::Everyone)
        .await
        .unwrap();
    assert!(profile.last_seen_visible);
    expect_presence(
        &mut bob_socket,
        "alice shows again",
        &alice.user_id,
        PresenceStatus::Online,
    )
    .await;
    expect_presence(
        &mut carol_socket,
        "alice shows to all",
        &alice.user_id,
        PresenceStatus::Online,
    )
    .await;
}

/// In a cluster, a block made through one node holds on the others: the blocked user's
/// send through another node is refused, and presence announced on one node is kept from
/// the blocked user's socket on another, while others there still get it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_holds_across_nodes() {
    let cluster = crate::cluster::TestCluster::start(2).await;
    let [alice, bob, carol] = cluster.nodes[0].users(["alice", "bob", "carol"]).await;
    let chat = alice.direct_with(&bob).await.conversation_id;
    alice.client.block(&bob.user_id).await.unwrap();
    let bob_far = cluster.on(1, &bob).await;
    let carol_far = cluster.on(1, &carol).await;
    let mut bob_socket = bob_far.connect().await;
    let mut carol_socket = carol_far.connect().await;
    for socket in [&mut bob_socket, &mut carol_socket] {
        sync_done(socket).await;
        socket
            .presence_subscribe(vec![alice.user_id.clone()])
            .unwrap();
    }
    expect_hidden(&mut bob_socket, "snapshot on node 2", &alice.user_id).await;
    expect_presence(
        &mut carol_socket,
        "snapshot",
        &alice.user_id,
        PresenceStatus::Offline,
    )
    .await;
    let refused = bob_socket
        .send_and_wait(chat.clone(), "through the other node")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Blocked));

    let _alice_socket = alice.connect().await;
    expect_presence(
        &mut carol_socket,
        "alice online",
        &alice.user_id,
        PresenceStatus::Online,
    )
    .await;
    expect_no_presence(
        &mut bob_socket,
        "alice online on bob's node",
        &alice.user_id,
    )
    .await;
}
