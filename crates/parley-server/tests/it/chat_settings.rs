//! Each user's own control over their chats — mute, archive, pin, marked unread — end to
//! end over the SDK, in whichever mode the run is in; and across the nodes of a cluster
//! (a user's devices on two nodes).

use crate::harness::*;
use parley_proto::rest::ConversationSettingsRequest;
use parley_proto::{Conversation, ConversationId, ErrorCode, MutedUntil, ServerFrame, Timestamp};
use parley_sdk::OutgoingMessage;
use std::time::Duration;

/// The `conversation_updated` for `id` that carries this user's settings.
async fn settings_frame(
    connection: &mut parley_sdk::Connection,
    id: &ConversationId,
    what: &str,
) -> Conversation {
    let frame = expect_frame(connection, what, |frame| {
        matches!(frame, ServerFrame::ConversationUpdated { conversation }
            if &conversation.conversation_id == id && conversation.archived.is_some())
    })
    .await;
    let ServerFrame::ConversationUpdated { conversation } = frame else {
        unreachable!("expect_frame returns a matching frame")
    };
    conversation
}

fn ids(list: &[Conversation]) -> Vec<ConversationId> {
    list.iter()
        .map(|conversation| conversation.conversation_id.clone())
        .collect()
}

/// Settings follow the user to their other devices live, are the user's own (the other
/// member sees none of them), and come back in the list and in `GET`.
#[tokio::test]
async fn settings_reach_every_device_of_the_user_only() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let mut other_device = alice.connect_new_device().await;
    sync_done(&mut other_device).await;
    let mut bob_socket = bob.connect().await;
    sync_done(&mut bob_socket).await;

    let until = Timestamp(Timestamp::now().millis() + 8 * 3_600_000);
    let answer = alice
        .client
        .update_settings(
            &id,
            &ConversationSettingsRequest {
                muted_until: Some(Some(MutedUntil::Until(until))),
                marked_unread: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.muted_until, Some(Some(MutedUntil::Until(until))));
    assert_eq!(answer.marked_unread, Some(true));
    let live = settings_frame(&mut other_device, &id, "alice's settings").await;
    assert_eq!(live.muted_until, Some(Some(MutedUntil::Until(until))));
    assert_eq!(
        (live.archived, live.pinned, live.marked_unread),
        (Some(false), Some(false), Some(true))
    );
    expect_no_frame(
        &mut bob_socket,
        Duration::from_millis(300),
        "alice's settings on bob's socket",
        |frame| matches!(frame, ServerFrame::ConversationUpdated { .. }),
    )
    .await;
    let bobs = bob.client.conversation(&id).await.unwrap();
    assert_eq!(
        (bobs.muted_until, bobs.marked_unread),
        (Some(None), Some(false))
    );
    let listed = alice.client.conversations(None, None).await.unwrap();
    assert_eq!(listed.conversations[0].marked_unread, Some(true));

    alice
        .client
        .mute(&id, Some(MutedUntil::Forever))
        .await
        .unwrap();
    let forever = settings_frame(&mut other_device, &id, "muted forever").await;
    assert_eq!(forever.muted_until, Some(Some(MutedUntil::Forever)));
    let raw: serde_json::Value = serde_json::to_value(&forever).unwrap();
    assert_eq!(raw["muted_until"], "forever");
    alice.client.mute(&id, None).await.unwrap();
    let unmuted = settings_frame(&mut other_device, &id, "unmuted").await;
    assert_eq!(unmuted.muted_until, Some(None));
    let raw: serde_json::Value = serde_json::to_value(&unmuted).unwrap();
    assert!(raw["muted_until"].is_null() && raw.get("muted_until").is_some());
}

/// Archive and pin shape the list: pinned first (at most 5, a sixth is `too_many_pinned`),
/// archived ones only under `?archived=true`, brought back by a new message unless muted;
/// pinning takes a chat out of the archive and archiving unpins.
#[tokio::test]
async fn archive_and_pin_shape_the_list() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let mut chats = Vec::new();
    for index in 0..7 {
        chats.push(
            alice
                .group_with(&format!("g{index}"), &[&bob])
                .await
                .conversation_id,
        );
    }
    for chat in &chats[..5] {
        let pinned = alice.client.pin(chat, true).await.unwrap();
        assert_eq!(pinned.pinned, Some(true));
    }
    let sixth = alice.client.pin(&chats[5], true).await.unwrap_err();
    assert_eq!(sixth.code(), Some(ErrorCode::TooManyPinned));
    assert_eq!(sixth.status(), Some(409));
    let list = alice.client.conversations(None, Some(3)).await.unwrap();
    // Newest pin first; then page on through the rest.
    assert_eq!(
        ids(&list.conversations),
        vec![chats[4].clone(), chats[3].clone(), chats[2].clone()]
    );
    let rest = alice
        .client
        .conversations(list.next_cursor.as_deref(), Some(10))
        .await
        .unwrap();
    assert_eq!(
        ids(&rest.conversations),
        vec![
            chats[1].clone(),
            chats[0].clone(),
            chats[6].clone(),
            chats[5].clone()
        ]
    );

    // Archiving unpins; the archived chat leaves the list.
    let archived = alice.client.archive(&chats[4], true).await.unwrap();
    assert_eq!(
        (archived.archived, archived.pinned),
        (Some(true), Some(false))
    );
    alice.client.archive(&chats[6], true).await.unwrap();
    alice
        .client
        .mute(&chats[6], Some(MutedUntil::Forever))
        .await
        .unwrap();
    let main = alice.client.conversations(None, Some(50)).await.unwrap();
    assert!(!ids(&main.conversations).contains(&chats[4]));
    let archive = alice
        .client
        .archived_conversations(None, None)
        .await
        .unwrap();
    let mut in_archive = ids(&archive.conversations);
    in_archive.sort();
    let mut expected = vec![chats[4].clone(), chats[6].clone()];
    expected.sort();
    assert_eq!(in_archive, expected);
    assert!(archive
        .conversations
        .iter()
        .all(|c| c.archived == Some(true)));

    // A message brings back the unmuted one only.
    let bob_socket = bob.connect().await;
    for chat in [&chats[4], &chats[6]] {
        bob_socket
            .send_message(OutgoingMessage::text(chat.clone(), "news"))
            .unwrap()
            .ack()
            .await
            .unwrap();
    }
    let archive = alice
        .client
        .archived_conversations(None, None)
        .await
        .unwrap();
    assert_eq!(ids(&archive.conversations), vec![chats[6].clone()]);
    let main = alice.client.conversations(None, Some(50)).await.unwrap();
    assert!(ids(&main.conversations).contains(&chats[4]));

    // Pinning takes it out of the archive (a slot is free again after the unpin).
    let pinned = alice.client.pin(&chats[6], true).await.unwrap();
    assert_eq!((pinned.archived, pinned.pinned), (Some(false), Some(true)));
    let both = alice
        .client
        .update_settings(
            &chats[0],
            &ConversationSettingsRequest {
                archived: Some(true),
                pinned: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(both.code(), Some(ErrorCode::InvalidRequest));
}

/// Reading the conversation clears the unread mark; settings of a conversation one is not
/// in are refused like every other operation on it; a bad `muted_until` is a 400.
#[tokio::test]
async fn reading_clears_the_mark_and_bad_settings_are_refused() {
    let server = TestServer::start().await;
    let [alice, bob, mallory] = server.users(["alice", "bob", "mallory"]).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let bob_socket = bob.connect().await;
    let seq = bob_socket
        .send_message(OutgoingMessage::text(id.clone(), "hi"))
        .unwrap()
        .ack()
        .await
        .unwrap()
        .seq;
    alice.client.mark_unread(&id, true).await.unwrap();
    assert_eq!(
        alice.client.conversation(&id).await.unwrap().marked_unread,
        Some(true)
    );
    // Read pointers are stored by the receipt flusher, a moment later.
    alice.client.mark_read(&id, seq).await.unwrap();
    eventually(
        "the mark cleared by reading",
        Duration::from_millis(50),
        || async {
            let read = alice.client.conversation(&id).await.unwrap();
            (read.marked_unread == Some(false)).then_some(())
        },
    )
    .await;

    let stranger = mallory.client.pin(&id, true).await.unwrap_err();
    assert_eq!(stranger.code(), Some(ErrorCode::NotMember));
    let response = reqwest::Client::new()
        .patch(format!("{}/api/v1/conversations/{id}/settings", server.url))
        .bearer_auth(alice.token())
        .json(&serde_json::json!({"muted_until": "next tuesday"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
}

/// In a cluster, a settings change made through one node reaches the user's device on
/// another node live, and the other node lists the chat accordingly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_follow_the_user_across_nodes() {
    let cluster = crate::cluster::TestCluster::start(2).await;
    let [alice, bob] = cluster.nodes[0].users(["alice", "bob"]).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let alice_elsewhere = cluster.on(1, &alice).await;
    let mut far_device = alice_elsewhere.connect().await;
    sync_done(&mut far_device).await;
    alice.client.archive(&id, true).await.unwrap();
    let live = settings_frame(&mut far_device, &id, "the archive on the other node").await;
    assert_eq!(live.archived, Some(true));
    let archive = alice_elsewhere
        .client
        .archived_conversations(None, None)
        .await
        .unwrap();
    assert_eq!(ids(&archive.conversations), vec![id.clone()]);
    let main = alice_elsewhere
        .client
        .conversations(None, None)
        .await
        .unwrap();
    assert!(main.conversations.is_empty());
}

/// Delete chat for me: the chat's past leaves the user's history, search, list and
/// `sync` on every device (the other devices are told live), the other member keeps all
/// of it, and a new message brings the chat back with only what came after.
#[tokio::test]
async fn deleting_a_chat_for_me_hides_its_past_on_every_device() {
    let server = TestServer::start().await;
    let [alice, bob, mallory] = server.users(["alice", "bob", "mallory"]).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let alice_socket = alice.connect().await;
    for word in ["narwhal one", "narwhal two", "narwhal three"] {
        alice_socket.send_and_wait(id.clone(), word).await.unwrap();
    }
    let mut bob_phone = bob.connect_new_device().await;
    sync_done(&mut bob_phone).await;

    let cleared = bob.client.clear_conversation(&id).await.unwrap();
    assert_eq!(cleared.cleared_seq, Some(3));
    assert_eq!((cleared.unread_count, cleared.last_message), (0, None));
    let live = settings_frame(&mut bob_phone, &id, "the clear on bob's phone").await;
    assert_eq!(live.cleared_seq, Some(3));

    let page = bob.client.history(&id, None, None, None).await.unwrap();
    assert!(page.messages.is_empty() && !page.has_more);
    assert_eq!(
        alice
            .client
            .history(&id, None, None, None)
            .await
            .unwrap()
            .messages
            .len(),
        3,
        "alice keeps everything"
    );
    let found = bob
        .client
        .search("narwhal", None, None, None)
        .await
        .unwrap();
    assert!(found.results.is_empty());
    assert!(bob
        .client
        .conversations(None, None)
        .await
        .unwrap()
        .conversations
        .is_empty());
    assert_eq!(alice.client.unread().await.unwrap().total, 0);
    assert_eq!(bob.client.unread().await.unwrap().total, 0);
    // A device syncing from the start gets none of it.
    let mut fresh = connect_with(&bob.new_device().await, |config| {
        config.initial_cursors = [(id.clone(), 0)].into_iter().collect();
    })
    .await;
    let cursors = sync_done(&mut fresh).await;
    assert_eq!(cursors.get(&id), Some(&3));
    expect_none(
        &mut fresh,
        Duration::from_millis(200),
        "old messages",
        |event| matches!(event, parley_sdk::Event::NewMessage(_)),
    )
    .await;

    alice_socket
        .send_and_wait(id.clone(), "narwhal four")
        .await
        .unwrap();
    let arrived = messages(&mut bob_phone, &id, 1).await;
    assert_eq!(arrived[0].seq, 4);
    let list = bob
        .client
        .conversations(None, None)
        .await
        .unwrap()
        .conversations;
    assert_eq!(ids(&list), vec![id.clone()]);
    assert_eq!(list[0].unread_count, 1);
    let page = bob.client.history(&id, None, None, None).await.unwrap();
    let seqs: Vec<i64> = page.messages.iter().map(|message| message.seq).collect();
    assert_eq!(seqs, vec![4]);
    let found = bob
        .client
        .search("narwhal", None, None, None)
        .await
        .unwrap();
    assert_eq!(found.results.len(), 1);

    let stranger = mallory.client.clear_conversation(&id).await.unwrap_err();
    assert_eq!(stranger.code(), Some(ErrorCode::NotMember));
}
