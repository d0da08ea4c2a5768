//! Reactions, edits, deletes for everyone and for me, mentions, forwarding and search,
//! end to end over the SDK, in whichever mode the run is in.

use crate::backends::cluster_mode;
use crate::harness::*;
use parley_proto::rest::ForwardRequest;
use parley_proto::{ContentType, ConversationId, ErrorCode, Message, ServerFrame};
use parley_sdk::{Connection, Event, OutgoingMessage};
use std::time::Duration;

/// Sends and returns the ack's seq, or the refusal's code.
async fn send(connection: &Connection, message: OutgoingMessage) -> Result<i64, ErrorCode> {
    connection
        .send_message(message)
        .unwrap()
        .ack()
        .await
        .map(|ack| ack.seq)
        .map_err(|error| error.code().expect("a refusal with a code"))
}

/// The current state of the message `seq` as `client`'s user reads it.
async fn state_of(
    client: &parley_sdk::Client,
    conversation_id: &ConversationId,
    seq: i64,
) -> Message {
    let page = client
        .history(conversation_id, Some(seq + 1), None, Some(1))
        .await
        .unwrap();
    let message = page.messages.into_iter().next().expect("the message");
    assert_eq!(message.seq, seq);
    message
}

/// Reactions: one per user, replaced by the next, cleared by `""`; counts with `me` per
/// reader; who reacted; entries delivered live but never unread, never the preview.
#[tokio::test]
async fn reactions_set_replace_clear_and_never_count_as_unread() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let mut alice_socket = alice.connect().await;
    let bob_socket = bob.connect().await;
    let seq = send(&alice_socket, OutgoingMessage::text(id.clone(), "lunch?"))
        .await
        .unwrap();

    let reaction = send(
        &bob_socket,
        OutgoingMessage::reaction(id.clone(), seq, "👍"),
    )
    .await
    .unwrap();
    let live = messages(&mut alice_socket, &id, 1).await.remove(0);
    assert_eq!(live.seq, reaction);
    assert_eq!(live.content_type, ContentType::REACTION);
    assert_eq!((live.target_seq, live.content.as_str()), (Some(seq), "👍"));

    let seen_by_alice = state_of(&alice.client, &id, seq).await;
    assert_eq!(seen_by_alice.reactions.len(), 1);
    assert_eq!(seen_by_alice.reactions[0].emoji, "👍");
    assert_eq!(
        (
            seen_by_alice.reactions[0].count,
            seen_by_alice.reactions[0].me
        ),
        (1, false)
    );
    assert!(state_of(&bob.client, &id, seq).await.reactions[0].me);

    // Replaced, not added; then alice adds hers.
    send(
        &bob_socket,
        OutgoingMessage::reaction(id.clone(), seq, "❤️"),
    )
    .await
    .unwrap();
    send(
        &alice_socket,
        OutgoingMessage::reaction(id.clone(), seq, "❤️"),
    )
    .await
    .unwrap();
    let both = state_of(&alice.client, &id, seq).await.reactions;
    assert_eq!(both.len(), 1, "{both:?}");
    assert_eq!(
        (both[0].emoji.as_str(), both[0].count, both[0].me),
        ("❤️", 2, true)
    );
    let who = alice.client.reactions(&id, seq).await.unwrap();
    assert_eq!(who.len(), 1);
    assert_eq!(
        who[0].user_ids,
        vec![bob.user_id.clone(), alice.user_id.clone()]
    );

    // Cleared.
    send(&bob_socket, OutgoingMessage::reaction(id.clone(), seq, ""))
        .await
        .unwrap();
    let left = state_of(&alice.client, &id, seq).await.reactions;
    assert_eq!((left.len(), left[0].count), (1, 1));

    // Bad reactions are refused.
    for (emoji, target, code) in [
        ("ok", seq, ErrorCode::InvalidRequest),
        ("👍👍", seq, ErrorCode::InvalidRequest),
        ("👍", 99, ErrorCode::TargetNotFound),
        ("👍", reaction, ErrorCode::TargetNotFound),
    ] {
        let refused = send(
            &bob_socket,
            OutgoingMessage::reaction(id.clone(), target, emoji),
        )
        .await;
        assert_eq!(refused, Err(code), "{emoji} on #{target}");
    }

    // Nothing unread for alice (bob only reacted); the preview is still her message.
    let conversation = alice.client.conversation(&id).await.unwrap();
    assert_eq!(conversation.unread_count, 0);
    assert_eq!(conversation.last_message.unwrap().seq, seq);
    let for_bob = bob.client.conversation(&id).await.unwrap();
    assert_eq!(for_bob.last_message.unwrap().content, "lunch?");
}

/// Edits: the sender only, within the window; the target carries the new text and
/// `edited_at`, every edit entry the newest text; system messages cannot be edited.
#[tokio::test]
async fn edits_by_the_sender_within_the_window() {
    let server = TestServer::start_with(|config| config.limits.edit_window_secs = 3).await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let id = alice
        .group_with("trip", &[&bob, &carol])
        .await
        .conversation_id;
    let alice_socket = alice.connect().await;
    let mut bob_socket = bob.connect().await;
    let seq = send(
        &alice_socket,
        OutgoingMessage::text(id.clone(), "meet at 9"),
    )
    .await
    .unwrap();
    send(
        &alice_socket,
        OutgoingMessage::edit(id.clone(), seq, "meet at 10"),
    )
    .await
    .unwrap();
    let second = send(
        &alice_socket,
        OutgoingMessage::edit(id.clone(), seq, "meet at 11"),
    )
    .await
    .unwrap();
    // The group's creation (#1, from the socket's sync), the message and two edits.
    let live = messages(&mut bob_socket, &id, 4).await;
    assert_eq!(live[3].seq, second);
    assert_eq!(live[3].content_type, ContentType::EDIT);

    let edited = state_of(&bob.client, &id, seq).await;
    assert_eq!(edited.content, "meet at 11");
    assert!(edited.edited_at.is_some());
    // No older text is readable anywhere in the stream.
    let page = bob.client.history(&id, None, None, None).await.unwrap();
    assert!(page
        .messages
        .iter()
        .all(|message| !message.content.contains("at 9") && !message.content.contains("at 10")));

    assert_eq!(
        send(
            &bob_socket,
            OutgoingMessage::edit(id.clone(), seq, "hijacked")
        )
        .await,
        Err(ErrorCode::NotSender)
    );
    // #1 is the group's creation.
    assert_eq!(
        send(
            &alice_socket,
            OutgoingMessage::edit(id.clone(), 1, "renamed")
        )
        .await,
        Err(ErrorCode::TargetNotFound)
    );
    assert_eq!(
        send(&alice_socket, OutgoingMessage::edit(id.clone(), seq, " ")).await,
        Err(ErrorCode::InvalidRequest)
    );
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    assert_eq!(
        send(
            &alice_socket,
            OutgoingMessage::edit(id.clone(), seq, "too late")
        )
        .await,
        Err(ErrorCode::EditWindowPassed)
    );
    // A group owner deletes any message at any age; its sender only within the window.
    send(&alice_socket, OutgoingMessage::text(id.clone(), "x"))
        .await
        .unwrap();
    let bob_old = send(&bob_socket, OutgoingMessage::text(id.clone(), "old news"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    assert_eq!(
        send(&bob_socket, OutgoingMessage::delete(id.clone(), bob_old)).await,
        Err(ErrorCode::EditWindowPassed)
    );
    send(&alice_socket, OutgoingMessage::delete(id.clone(), bob_old))
        .await
        .unwrap();
    assert!(state_of(&carol.client, &id, bob_old).await.deleted);
}

/// Deletes for everyone: by the sender or a group admin; the text, mentions and
/// reactions go; later changes to it are refused; search forgets it.
#[tokio::test]
async fn deletes_for_everyone_remove_the_content() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let id = alice
        .group_with("team", &[&bob, &carol])
        .await
        .conversation_id;
    let alice_socket = alice.connect().await;
    let bob_socket = bob.connect().await;
    let carol_socket = carol.connect().await;
    let secret = send(
        &bob_socket,
        OutgoingMessage::text(id.clone(), "the password is swordfish, @carol")
            .with_mentions(vec![carol.user_id.clone()]),
    )
    .await
    .unwrap();
    send(
        &carol_socket,
        OutgoingMessage::reaction(id.clone(), secret, "😮"),
    )
    .await
    .unwrap();
    assert_eq!(
        carol
            .client
            .conversation(&id)
            .await
            .unwrap()
            .unread_mentions,
        1
    );
    assert_eq!(
        send(&carol_socket, OutgoingMessage::delete(id.clone(), secret)).await,
        Err(ErrorCode::NotSender)
    );
    // Alice owns the group: she deletes bob's message.
    send(&alice_socket, OutgoingMessage::delete(id.clone(), secret))
        .await
        .unwrap();
    let deleted = state_of(&carol.client, &id, secret).await;
    assert!(deleted.deleted);
    assert_eq!(deleted.content, "");
    assert!(deleted.mentions.is_empty() && deleted.reactions.is_empty());
    assert_eq!(
        carol
            .client
            .conversation(&id)
            .await
            .unwrap()
            .unread_mentions,
        0
    );
    let found = carol
        .client
        .search("swordfish", None, None, None)
        .await
        .unwrap();
    assert!(found.results.is_empty(), "{:?}", found.results);
    for change in [
        OutgoingMessage::edit(id.clone(), secret, "x"),
        OutgoingMessage::reaction(id.clone(), secret, "👍"),
        OutgoingMessage::delete(id.clone(), secret),
    ] {
        assert_eq!(
            send(&bob_socket, change).await,
            Err(ErrorCode::TargetNotFound)
        );
    }
    // The sender deletes their own.
    let own = send(&bob_socket, OutgoingMessage::text(id.clone(), "oops"))
        .await
        .unwrap();
    send(&bob_socket, OutgoingMessage::delete(id.clone(), own))
        .await
        .unwrap();
    assert!(state_of(&alice.client, &id, own).await.deleted);
    // The preview of a chat whose last message was deleted says so, without its text.
    let preview = alice
        .client
        .conversation(&id)
        .await
        .unwrap()
        .last_message
        .unwrap();
    assert!(preview.deleted && preview.content.is_empty());
}

/// A deleted message's words are not in the database files (nor their WALs) once the
/// server has stopped: the row, the edit entries and the search index are overwritten,
/// not just unlinked. (SQLite, the embedded store; the cluster run checks PostgreSQL's rows
/// through the conformance suite.)
#[tokio::test]
async fn a_deleted_message_is_gone_from_the_database_file() {
    if cluster_mode() {
        return;
    }
    let mut server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let socket = alice.connect().await;
    let word = "zqxjvortexglimmer";
    let seq = send(
        &socket,
        OutgoingMessage::text(id.clone(), format!("{word} one")),
    )
    .await
    .unwrap();
    send(
        &socket,
        OutgoingMessage::edit(id.clone(), seq, format!("{word} two")),
    )
    .await
    .unwrap();
    let found = bob
        .client
        .search(&word[..8], None, None, None)
        .await
        .unwrap();
    assert_eq!(found.results.len(), 1);
    send(&socket, OutgoingMessage::delete(id.clone(), seq))
        .await
        .unwrap();
    drop(socket);
    let data_dir = server.config().data_dir;
    server.server.take().unwrap().shutdown().await.unwrap();
    assert_gone_from_files(&data_dir, word, "the deleted text");
}

/// Mentions: members only; `unread_mentions` until read; the list shows them.
#[tokio::test]
async fn mentions_count_until_read() {
    let server = TestServer::start().await;
    let [alice, bob, carol, dave] = server.users(["alice", "bob", "carol", "dave"]).await;
    let id = alice
        .group_with("crew", &[&bob, &carol])
        .await
        .conversation_id;
    let alice_socket = alice.connect().await;
    let mut bob_socket = bob.connect().await;
    let seq = send(
        &alice_socket,
        OutgoingMessage::text(id.clone(), "@bob can you check?")
            .with_mentions(vec![bob.user_id.clone()]),
    )
    .await
    .unwrap();
    // The group's creation (#1, from the socket's sync), then the message.
    let live = messages(&mut bob_socket, &id, 2).await.remove(1);
    assert_eq!(live.mentions, vec![bob.user_id.clone()]);
    assert_eq!(
        bob.client.conversation(&id).await.unwrap().unread_mentions,
        1
    );
    assert_eq!(
        carol
            .client
            .conversation(&id)
            .await
            .unwrap()
            .unread_mentions,
        0
    );
    let listed = bob.client.conversations(None, None).await.unwrap();
    assert_eq!(listed.conversations[0].unread_mentions, 1);
    assert_eq!(
        send(
            &alice_socket,
            OutgoingMessage::text(id.clone(), "@dave?").with_mentions(vec![dave.user_id.clone()])
        )
        .await,
        Err(ErrorCode::InvalidRequest)
    );
    bob.client.mark_read(&id, seq).await.unwrap();
    eventually("the mention is read", Duration::from_millis(50), || async {
        (bob.client.conversation(&id).await.unwrap().unread_mentions == 0).then_some(())
    })
    .await;
}

/// Delete for me: that user's devices all hear it and read it as hidden; the others
/// keep the message; it leaves that user's search.
#[tokio::test]
async fn hidden_messages_leave_only_that_users_view() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let alice_socket = alice.connect().await;
    let mut bob_other_device = bob.connect_new_device().await;
    let seq = send(
        &alice_socket,
        OutgoingMessage::text(id.clone(), "embarrassing photo"),
    )
    .await
    .unwrap();
    bob.client.hide_message(&id, seq).await.unwrap();
    bob.client.hide_message(&id, seq).await.unwrap();
    expect_frame(&mut bob_other_device, "message_hidden", |frame| {
        matches!(frame, ServerFrame::MessageHidden { conversation_id, seq: hidden } if conversation_id == &id && *hidden == seq)
    })
    .await;
    let for_bob = state_of(&bob.client, &id, seq).await;
    assert!(for_bob.hidden);
    assert_eq!(for_bob.content, "");
    assert_eq!(
        state_of(&alice.client, &id, seq).await.content,
        "embarrassing photo"
    );
    assert!(bob
        .client
        .search("embarrassing", None, None, None)
        .await
        .unwrap()
        .results
        .is_empty());
    assert_eq!(
        alice
            .client
            .search("embarrassing", None, None, None)
            .await
            .unwrap()
            .results
            .len(),
        1
    );
    assert!(bob
        .client
        .conversation(&id)
        .await
        .unwrap()
        .last_message
        .is_none());
    let missing = bob.client.hide_message(&id, 99).await.unwrap_err();
    assert_eq!(missing.code(), Some(ErrorCode::NotFound));
    let [eve] = server.users(["eve"]).await;
    let stranger = eve.client.hide_message(&id, seq).await.unwrap_err();
    assert_eq!(stranger.code(), Some(ErrorCode::NotMember));
}

/// Forward: to up to five chats of the forwarder, each copy `forwarded` with the text
/// and no link back; memberships all checked first; a retry with the same client id
/// makes no new copies.
#[tokio::test]
async fn forwards_copy_into_the_forwarders_chats() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let source = alice.direct_with(&bob).await.conversation_id;
    let to_carol = alice.direct_with(&carol).await.conversation_id;
    let group = alice
        .group_with("all", &[&bob, &carol])
        .await
        .conversation_id;
    let bob_and_carol = bob.direct_with(&carol).await.conversation_id;
    let bob_socket = bob.connect().await;
    let mut carol_socket = carol.connect().await;
    let seq = send(
        &bob_socket,
        OutgoingMessage::text(source.clone(), "the address is 5 Elm St"),
    )
    .await
    .unwrap();
    let request = ForwardRequest {
        from_conversation_id: source.clone(),
        seq,
        to_conversation_ids: vec![to_carol.clone(), group.clone()],
        client_msg_id: Some("fwd-1".into()),
    };
    let copies = alice.client.forward(&request).await.unwrap();
    assert_eq!(copies.len(), 2);
    for (copy, target) in copies.iter().zip([&to_carol, &group]) {
        assert_eq!(&copy.conversation_id, target);
        assert!(copy.forwarded);
        assert_eq!(copy.content, "the address is 5 Elm St");
        assert_eq!(copy.sender_id, alice.user_id);
        assert_eq!(copy.reply_to_seq, None);
    }
    let live = messages(&mut carol_socket, &to_carol, 1).await.remove(0);
    assert!(live.forwarded);
    // The same request again: the same copies.
    let again = alice.client.forward(&request).await.unwrap();
    assert_eq!(
        again.iter().map(|copy| copy.seq).collect::<Vec<_>>(),
        copies.iter().map(|copy| copy.seq).collect::<Vec<_>>()
    );
    // Not a member of one target: nothing is sent anywhere.
    let before = alice.client.conversation(&to_carol).await.unwrap().last_seq;
    let refused = alice
        .client
        .forward(&ForwardRequest {
            from_conversation_id: source.clone(),
            seq,
            to_conversation_ids: vec![to_carol.clone(), bob_and_carol.clone()],
            client_msg_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NotMember));
    assert_eq!(
        alice.client.conversation(&to_carol).await.unwrap().last_seq,
        before
    );
    let too_many = alice
        .client
        .forward(&ForwardRequest {
            from_conversation_id: source.clone(),
            seq,
            to_conversation_ids: (0..6).map(|n| ConversationId(format!("c_{n}"))).collect(),
            client_msg_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Some(ErrorCode::InvalidRequest));
    let missing = alice
        .client
        .forward(&ForwardRequest {
            from_conversation_id: source,
            seq: 99,
            to_conversation_ids: vec![group],
            client_msg_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some(ErrorCode::NotFound));
}

/// Search: whole words by prefix, any case or accent, all words, newest first, paged;
/// only in the caller's conversations; snippets mark the matches.
#[tokio::test]
async fn search_finds_words_in_the_callers_conversations() {
    let server = TestServer::start().await;
    let [alice, bob, eve] = server.users(["alice", "bob", "eve"]).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let other = alice.direct_with(&eve).await.conversation_id;
    let socket = alice.connect().await;
    for text in [
        "Our holiday in Crète was great",
        "HOLIDAY photos are up",
        "alcohol is not a holiday",
        "nothing to see",
    ] {
        send(&socket, OutgoingMessage::text(id.clone(), text))
            .await
            .unwrap();
    }
    send(
        &socket,
        OutgoingMessage::text(other.clone(), "holiday plans with eve"),
    )
    .await
    .unwrap();

    let found = bob.client.search("hol", None, None, None).await.unwrap();
    let texts: Vec<&str> = found
        .results
        .iter()
        .map(|r| r.message.content.as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "alcohol is not a holiday",
            "HOLIDAY photos are up",
            "Our holiday in Crète was great"
        ]
    );
    assert_eq!(found.results[2].snippet, "Our «holiday» in Crète was great");
    let accents = bob
        .client
        .search("CRETE holi", None, None, None)
        .await
        .unwrap();
    assert_eq!(accents.results.len(), 1);
    assert!(accents.results[0].snippet.contains("«Crète»"));
    assert!(bob
        .client
        .search("liday", None, None, None)
        .await
        .unwrap()
        .results
        .is_empty());
    // Alice sees both chats; within one only that one.
    assert_eq!(
        alice
            .client
            .search("holiday", None, None, None)
            .await
            .unwrap()
            .results
            .len(),
        4
    );
    let only = alice
        .client
        .search("holiday", Some(&other), None, None)
        .await
        .unwrap();
    assert_eq!(only.results.len(), 1);
    assert_eq!(only.results[0].conversation_id, other);
    // Paging: one at a time, newest first, no repeats.
    let mut cursor = None;
    let mut paged = Vec::new();
    loop {
        let page = alice
            .client
            .search("holiday", None, cursor.as_deref(), Some(1))
            .await
            .unwrap();
        paged.extend(page.results.into_iter().map(|r| (r.conversation_id, r.seq)));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged.len(), 4);
    // Bob is not in alice and eve's chat.
    let stranger = bob
        .client
        .search("holiday", Some(&other), None, None)
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Some(ErrorCode::NotMember));
    for (query, cursor, limit) in [
        ("", None, None),
        ("!!", None, None),
        ("x", Some("bogus"), None),
        ("x", None, Some(0)),
        ("x", None, Some(51)),
    ] {
        let refused = bob
            .client
            .search(query, None, cursor, limit)
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Some(ErrorCode::InvalidRequest),
            "{query:?} {cursor:?} {limit:?}"
        );
    }
}

/// A device that was offline gets every change through `sync`, in `seq` order, and
/// history gives the same final state.
#[tokio::test]
async fn offline_devices_get_changes_through_sync_in_order() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let alice_socket = alice.connect().await;
    let bob_phone = bob.connect().await;
    let first = send(&alice_socket, OutgoingMessage::text(id.clone(), "first"))
        .await
        .unwrap();
    let second = send(&alice_socket, OutgoingMessage::text(id.clone(), "second"))
        .await
        .unwrap();
    drop(bob_phone);
    let changes = [
        OutgoingMessage::edit(id.clone(), first, "first, edited"),
        OutgoingMessage::reaction(id.clone(), second, "🎉"),
        OutgoingMessage::delete(id.clone(), second),
    ];
    let mut expected = vec![first, second];
    for change in changes {
        expected.push(send(&alice_socket, change).await.unwrap());
    }
    let mut laptop = bob.connect_new_device().await;
    let mut seen: Vec<Message> = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.len() < expected.len() {
        match tokio::time::timeout_at(deadline, laptop.next_event()).await {
            Ok(Some(Event::NewMessage(message))) if message.conversation_id == id => {
                seen.push(message)
            }
            Ok(Some(_)) => {}
            _ => panic!(
                "sync delivered {} of {} entries",
                seen.len(),
                expected.len()
            ),
        }
    }
    assert_eq!(seen.iter().map(|m| m.seq).collect::<Vec<_>>(), expected);
    assert_eq!(
        seen.iter()
            .map(|m| m.content_type.as_str())
            .collect::<Vec<_>>(),
        ["text", "text", "edit", "reaction", "delete"]
    );
    // Entries come in their current state: the edit carries the current text.
    assert_eq!(seen[0].content, "first, edited");
    assert_eq!(seen[2].content, "first, edited");
    assert!(seen[1].deleted);
    assert_eq!(bob.client.conversation(&id).await.unwrap().unread_count, 2);
}
