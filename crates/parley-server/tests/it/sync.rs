//! Catching up: `sync` after a disconnect, history paging for a new device.

use crate::harness::*;
use parley_proto::frames::Cursors;
use parley_sdk::ServerFrame;
use std::time::Duration;

/// A device that was offline gets exactly what it missed, in `seq` order, then
/// `sync_done` with the cursors of all its conversations.
#[tokio::test]
async fn sync_after_disconnect_returns_exactly_what_was_missed() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation_id = alice.direct_with(&bob).await.conversation_id;
    let alice_connection = alice.connect().await;
    let mut bob_connection = bob.connect().await;
    for index in 0..3 {
        alice_connection
            .send_and_wait(conversation_id.clone(), format!("seen {index}"))
            .await
            .unwrap();
    }
    messages(&mut bob_connection, &conversation_id, 3).await;
    let cursors = bob_connection.cursors().await.unwrap();
    assert_eq!(cursors.get(&conversation_id), Some(&3));
    bob_connection.close().await.unwrap();

    for index in 0..20 {
        alice_connection
            .send_and_wait(conversation_id.clone(), format!("missed {index}"))
            .await
            .unwrap();
    }
    let mut resumed = connect_with(&bob.client, |config| config.initial_cursors = cursors).await;
    let missed = messages(&mut resumed, &conversation_id, 20).await;
    let seqs: Vec<i64> = missed.iter().map(|message| message.seq).collect();
    assert_eq!(seqs, (4..=23).collect::<Vec<_>>());
    assert_eq!(missed[0].content, "missed 0");
    let cursors = sync_done(&mut resumed).await;
    assert_eq!(cursors.get(&conversation_id), Some(&23));
}

/// The SDK reconnects by itself when the socket drops, resends what was not acked and
/// syncs: nothing is lost or doubled across a server restart.
#[tokio::test]
async fn sdk_resumes_across_a_server_restart() {
    let mut server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation_id = alice.direct_with(&bob).await.conversation_id;
    let address = server.server.as_ref().unwrap().address;
    // Restart on the same port so the SDK's reconnect finds it.
    let mut bob_connection = bob.connect().await;
    let alice_connection = alice.connect().await;
    alice_connection
        .send_and_wait(conversation_id.clone(), "before")
        .await
        .unwrap();
    messages(&mut bob_connection, &conversation_id, 1).await;

    server.server.take().unwrap().shutdown().await.unwrap();
    let mut config = server.config();
    config.listen = address;
    let restarted = eventually(
        "restart on the same port",
        Duration::from_millis(50),
        || {
            let config = config.clone();
            async move { parley_server::start(config).await.ok() }
        },
    )
    .await;
    let handle = alice_connection
        .send(conversation_id.clone(), "during the restart")
        .unwrap();
    let ack = within("ack after reconnect", handle.ack()).await.unwrap();
    assert_eq!(ack.seq, 2);
    let received = messages(&mut bob_connection, &conversation_id, 1).await;
    assert_eq!(received[0].content, "during the restart");
    let history = bob
        .client
        .history(&conversation_id, None, None, None)
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 2, "the resend stored nothing twice");
    restarted.shutdown().await.unwrap();
}

/// A new device pages back through history with `before_seq`; `after_seq` reads
/// forward; `has_more` tells when to stop.
#[tokio::test]
async fn a_new_device_pages_back_through_history() {
    let server =
        TestServer::start_with(|config| config.limits.user_messages_per_minute = 1000).await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation_id = alice.direct_with(&bob).await.conversation_id;
    let connection = alice.connect().await;
    for index in 1..=250 {
        connection
            .enqueue(parley_sdk::OutgoingMessage::text(
                conversation_id.clone(),
                format!("m{index}"),
            ))
            .unwrap();
    }
    eventually("250 sends acked", Duration::from_millis(20), || async {
        let page = alice
            .client
            .history(&conversation_id, None, None, Some(1))
            .await
            .unwrap();
        (page.messages.first().map(|m| m.seq) == Some(250)).then_some(())
    })
    .await;
    let new_device = bob.new_device().await;
    let mut before = None;
    let mut seen = Vec::new();
    loop {
        let page = new_device
            .history(&conversation_id, before, None, Some(100))
            .await
            .unwrap();
        let seqs: Vec<i64> = page.messages.iter().map(|m| m.seq).collect();
        assert!(
            seqs.windows(2).all(|pair| pair[1] == pair[0] + 1),
            "each page ascending, no gaps"
        );
        before = seqs.first().copied();
        seen.splice(0..0, seqs);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen, (1..=250).collect::<Vec<_>>());
    let forward = new_device
        .history(&conversation_id, None, Some(240), Some(5))
        .await
        .unwrap();
    let seqs: Vec<i64> = forward.messages.iter().map(|m| m.seq).collect();
    assert_eq!(
        (seqs, forward.has_more),
        (vec![241, 242, 243, 244, 245], true)
    );
    let window = new_device
        .history(&conversation_id, Some(10), Some(5), None)
        .await
        .unwrap();
    assert_eq!(
        window.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![6, 7, 8, 9]
    );
    let too_many = new_device
        .history(&conversation_id, None, None, Some(1000))
        .await
        .unwrap();
    assert_eq!(too_many.messages.len(), 100, "pages are capped at 100");
}

/// `sync` with a cursor for a conversation the user is not in is refused for that
/// cursor only; the rest of the sync goes on.
#[tokio::test]
async fn sync_refuses_foreign_cursors_and_goes_on() {
    let server = TestServer::start().await;
    let [alice, bob, mallory] = server.users(["alice", "bob", "mallory"]).await;
    let conversation = alice.direct_with(&bob).await;
    let own = mallory.direct_with(&alice).await;
    let mut cursors = Cursors::new();
    cursors.insert(conversation.conversation_id.clone(), 0);
    cursors.insert(own.conversation_id.clone(), 0);
    let mut connection =
        connect_with(&mallory.client, |config| config.initial_cursors = cursors).await;
    expect_frame(&mut connection, "not_member error", |frame| {
        matches!(
            frame,
            ServerFrame::Error {
                code: parley_proto::ErrorCode::NotMember,
                ..
            }
        )
    })
    .await;
    let cursors = sync_done(&mut connection).await;
    assert!(cursors.contains_key(&own.conversation_id));
    assert!(
        !cursors.contains_key(&conversation.conversation_id),
        "no leak of foreign conversations"
    );
}
