//! Sending and fan-out: direct, groups, several devices, dedup, ordering.

use crate::harness::*;
use parley_sdk::{Event, OutgoingMessage};
use std::collections::HashSet;

/// A direct message is acked to the sender and delivered once to the other side, with
/// the stored fields (seq, ids, time); replies reference an earlier seq.
#[tokio::test]
async fn direct_chat_delivers_and_acks() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation = alice.direct_with(&bob).await;
    let alice_connection = alice.connect().await;
    let mut bob_connection = bob.connect().await;

    let ack = alice_connection
        .send_and_wait(conversation.conversation_id.clone(), "Hello, Bob!")
        .await
        .unwrap();
    assert_eq!(ack.seq, 1);
    let received = messages(&mut bob_connection, &conversation.conversation_id, 1)
        .await
        .remove(0);
    assert_eq!(received.content, "Hello, Bob!");
    assert_eq!(received.seq, 1);
    assert_eq!(received.message_id, ack.message_id);
    assert_eq!(received.sender_id, alice.user_id);
    assert_eq!(received.content_type, parley_proto::ContentType::TEXT);

    let mut reply = OutgoingMessage::text(conversation.conversation_id.clone(), "Hi!");
    reply.reply_to_seq = Some(1);
    let reply_ack = bob_connection
        .send_message(reply)
        .unwrap()
        .ack()
        .await
        .unwrap();
    assert_eq!(reply_ack.seq, 2);
    let history = alice
        .client
        .history(&conversation.conversation_id, None, None, None)
        .await
        .unwrap();
    assert_eq!(history.messages[1].reply_to_seq, Some(1));

    let mut bad_reply = OutgoingMessage::text(conversation.conversation_id.clone(), "?");
    bad_reply.reply_to_seq = Some(99);
    let refused = bob_connection
        .send_message(bad_reply)
        .unwrap()
        .ack()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(parley_proto::ErrorCode::NotFound));
}

/// Three devices of one user: a send from one reaches the other two (and every device
/// of the other member), never echoing `new_message` to the sending device.
#[tokio::test]
async fn three_devices_of_one_user_all_see_everything() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation_id = alice.direct_with(&bob).await.conversation_id;
    let mut first = alice.connect().await;
    let mut second = alice.connect_new_device().await;
    let mut third = alice.connect_new_device().await;
    let mut bob_connection = bob.connect().await;

    first
        .send_and_wait(conversation_id.clone(), "from the phone")
        .await
        .unwrap();
    for device in [&mut second, &mut third, &mut bob_connection] {
        let message = messages(device, &conversation_id, 1).await.remove(0);
        assert_eq!(message.content, "from the phone");
    }
    bob_connection
        .send_and_wait(conversation_id.clone(), "to all of you")
        .await
        .unwrap();
    for device in [&mut first, &mut second, &mut third] {
        let message = messages(device, &conversation_id, 1).await.remove(0);
        assert_eq!(
            (message.seq, message.content.as_str()),
            (2, "to all of you")
        );
    }
    expect_none(
        &mut first,
        std::time::Duration::from_millis(300),
        "echo of own message",
        |event| matches!(event, Event::NewMessage(m) if m.seq == 1),
    )
    .await;
}

/// A group message reaches every member, including members who joined later, and the
/// sender's other devices.
#[tokio::test]
async fn group_chat_fans_out_to_every_member() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let conversation_id = alice
        .group_with("trio", &[&bob, &carol])
        .await
        .conversation_id;
    let alice_connection = alice.connect().await;
    let mut bob_connection = bob.connect().await;
    let mut carol_connection = carol.connect().await;
    for index in 0..5 {
        alice_connection
            .send_and_wait(conversation_id.clone(), format!("message {index}"))
            .await
            .unwrap();
    }
    for connection in [&mut bob_connection, &mut carol_connection] {
        let seqs: Vec<i64> = messages(connection, &conversation_id, 6)
            .await
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(
            seqs,
            vec![1, 2, 3, 4, 5, 6],
            "creation message then five, in order"
        );
    }
}

/// Retrying with the same `client_msg_id` (over WebSocket, over REST, and after a server
/// restart) returns the first message's ack and stores nothing new.
#[tokio::test]
async fn dedup_holds_across_transports_and_restarts() {
    let mut server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation_id = alice.direct_with(&bob).await.conversation_id;
    let connection = alice.connect().await;
    let mut message = OutgoingMessage::text(conversation_id.clone(), "only once");
    message.client_msg_id = Some("retry-me".into());
    let first = connection
        .send_message(message.clone())
        .unwrap()
        .ack()
        .await
        .unwrap();
    let second = connection
        .send_message(message.clone())
        .unwrap()
        .ack()
        .await
        .unwrap();
    assert_eq!(
        (first.seq, &first.message_id),
        (second.seq, &second.message_id)
    );
    let over_rest = alice
        .client
        .send_rest(&conversation_id, &text_request("retry-me", "only once"))
        .await
        .unwrap();
    assert_eq!(over_rest.message_id, first.message_id);
    connection.close().await.unwrap();

    server.restart().await;
    let alice_again = parley_sdk::Client::new(&server.url)
        .unwrap()
        .with_token(alice.token());
    let after_restart = connect(&alice_again).await;
    let third = after_restart
        .send_message(message)
        .unwrap()
        .ack()
        .await
        .unwrap();
    assert_eq!(
        third.message_id, first.message_id,
        "dedup survives a restart"
    );
    let history = alice_again
        .history(&conversation_id, None, None, None)
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 1);
}

/// Concurrent senders into one group: every member device sees one gap-free order, the
/// same on every device and the same as history, with each sender's messages in the
/// order that sender sent them.
#[tokio::test]
async fn ordering_under_concurrent_senders() {
    let server = TestServer::start_with(|config| {
        config.limits.group_messages_per_minute = 10_000;
        config.limits.user_messages_per_minute = 10_000;
    })
    .await;
    let owner = server.user("owner").await;
    let mut senders = Vec::new();
    for index in 0..4 {
        senders.push(server.user(&format!("sender{index}")).await);
    }
    let group = owner
        .group_with("race", &senders.iter().collect::<Vec<_>>())
        .await;
    let conversation_id = group.conversation_id.clone();
    let mut watcher = owner.connect().await;
    let per_sender = 50;
    let tasks = senders.iter().map(|sender| {
        let client = sender.client.clone();
        let conversation_id = conversation_id.clone();
        let name = sender.username.clone();
        tokio::spawn(async move {
            let connection = connect(&client).await;
            let handles: Vec<_> = (0..per_sender)
                .map(|index| {
                    connection
                        .send(conversation_id.clone(), format!("{name}:{index}"))
                        .unwrap()
                })
                .collect();
            let mut seqs = Vec::new();
            for handle in handles {
                seqs.push(handle.ack().await.unwrap().seq);
            }
            seqs
        })
    });
    for seqs in futures::future::join_all(tasks).await {
        let seqs = seqs.unwrap();
        assert!(
            seqs.windows(2).all(|pair| pair[0] < pair[1]),
            "a sender's messages keep their order"
        );
    }
    let total = 1 + 4 * per_sender;
    let live = messages(&mut watcher, &conversation_id, total).await;
    let seqs: Vec<i64> = live.iter().map(|message| message.seq).collect();
    assert_eq!(
        seqs,
        (1..=total as i64).collect::<Vec<_>>(),
        "live order is seq order, no gaps"
    );
    let unique: HashSet<_> = live
        .iter()
        .map(|message| message.message_id.clone())
        .collect();
    assert_eq!(unique.len(), total);
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let page = owner
            .client
            .history(&conversation_id, None, Some(after), Some(100))
            .await
            .unwrap();
        after = page.messages.last().map_or(after, |message| message.seq);
        stored.extend(page.messages);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(stored, live, "history equals what was delivered live");
}

/// Two sockets of one device (two browser tabs with one token): a message sent on one
/// reaches the other live; only the sending socket gets `msg_ack` instead.
#[tokio::test]
async fn a_second_socket_of_the_same_device_gets_the_message() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation = alice.direct_with(&bob).await;
    let first_tab = alice.connect().await;
    let mut second_tab = alice.connect().await;
    first_tab
        .send_and_wait(conversation.conversation_id.clone(), "from tab one")
        .await
        .unwrap();
    let received = messages(&mut second_tab, &conversation.conversation_id, 1).await;
    assert_eq!(received[0].content, "from tab one");
}

/// A retry of a stored message gets its first ack even when a new send would now be
/// refused: the sender ran out of rate-limit tokens, or has left the group since.
#[tokio::test]
async fn a_retry_gets_its_first_ack_even_when_a_new_send_would_be_refused() {
    let server = TestServer::start_with(|config| config.limits.user_messages_per_minute = 2).await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation_id = bob.group_with("g", &[&alice]).await.conversation_id;
    let send = |client_msg_id: &str| text_request(client_msg_id, "hello");
    let first = alice
        .client
        .send_rest(&conversation_id, &send("first"))
        .await
        .unwrap();
    alice
        .client
        .send_rest(&conversation_id, &send("second"))
        .await
        .unwrap();
    let limited = alice
        .client
        .send_rest(&conversation_id, &send("third"))
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Some(parley_proto::ErrorCode::RateLimited));
    let retry = alice
        .client
        .send_rest(&conversation_id, &send("first"))
        .await
        .unwrap();
    assert_eq!(
        retry.message_id, first.message_id,
        "the retry is answered, not rate limited"
    );

    alice.client.leave(&conversation_id).await.unwrap();
    let after_leaving = alice
        .client
        .send_rest(&conversation_id, &send("first"))
        .await
        .unwrap();
    assert_eq!(after_leaving.message_id, first.message_id);
    let new_send = alice
        .client
        .send_rest(&conversation_id, &send("fourth"))
        .await
        .unwrap_err();
    assert_eq!(new_send.code(), Some(parley_proto::ErrorCode::NotMember));
}
