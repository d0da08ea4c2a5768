//! Delivered and read receipts, unread counts.

use crate::harness::*;
use parley_proto::ReceiptStatus;
use parley_sdk::ServerFrame;
use std::time::Duration;

/// Direct chat: the recipient's acks become `delivered` and its read becomes `read` for
/// the sender; the read pointer is echoed to the reader's other devices; unread counts
/// follow the read pointer.
#[tokio::test]
async fn direct_receipts_reach_the_sender_and_the_readers_devices() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation_id = alice.direct_with(&bob).await.conversation_id;
    let mut alice_connection = alice.connect().await;
    let mut bob_phone = bob.connect().await;
    let mut bob_laptop = bob.connect_new_device().await;

    for text in ["one", "two"] {
        alice_connection
            .send_and_wait(conversation_id.clone(), text)
            .await
            .unwrap();
    }
    messages(&mut bob_phone, &conversation_id, 2).await;
    expect_frame(&mut alice_connection, "delivered up to 2", |frame| {
        matches!(frame, ServerFrame::Receipt { status: ReceiptStatus::Delivered, up_to_seq: 2, user_id, .. } if user_id == &bob.user_id)
    })
    .await;
    assert_eq!(alice.client.unread().await.unwrap().total, 0);
    assert_eq!(bob.client.unread().await.unwrap().total, 2);

    bob_phone.read(conversation_id.clone(), 2).unwrap();
    expect_frame(&mut alice_connection, "read up to 2", |frame| {
        matches!(
            frame,
            ServerFrame::Receipt {
                status: ReceiptStatus::Read,
                up_to_seq: 2,
                ..
            }
        )
    })
    .await;
    expect_frame(&mut bob_laptop, "read echo on the other device", |frame| {
        matches!(frame, ServerFrame::Receipt { status: ReceiptStatus::Read, up_to_seq: 2, user_id, .. } if user_id == &bob.user_id)
    })
    .await;
    assert_eq!(bob.client.unread().await.unwrap().total, 0);
    let receipts = alice.client.receipts(&conversation_id, 2).await.unwrap();
    assert_eq!(receipts.read_by, vec![bob.user_id.clone()]);
    assert_eq!(receipts.delivered_to, vec![bob.user_id.clone()]);

    // Pointers never go back; a read beyond the end is clamped.
    bob.client.mark_read(&conversation_id, 1).await.unwrap();
    bob.client.mark_read(&conversation_id, 1000).await.unwrap();
    let list = bob.client.conversations(None, None).await.unwrap();
    assert_eq!(list.conversations[0].last_read_seq, 2);
    let missing = alice
        .client
        .receipts(&conversation_id, 99)
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(404));
}

/// Groups: no N² fan-out. A member's read reaches the senders of the messages it covers
/// (and the reader's devices), not every member; `GET …/receipts` lists who read.
#[tokio::test]
async fn group_receipts_go_to_senders_and_are_served_by_rest() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let group = alice.group_with("g", &[&bob, &carol]).await;
    let conversation_id = group.conversation_id.clone();
    let mut alice_connection = alice.connect().await;
    let mut carol_connection = carol.connect().await;
    let ack = alice_connection
        .send_and_wait(conversation_id.clone(), "hello group")
        .await
        .unwrap();
    bob.client
        .mark_read(&conversation_id, ack.seq)
        .await
        .unwrap();
    expect_frame(&mut alice_connection, "bob's read", |frame| {
        matches!(frame, ServerFrame::Receipt { status: ReceiptStatus::Read, user_id, .. } if user_id == &bob.user_id)
    })
    .await;
    expect_no_frame(&mut carol_connection, Duration::from_millis(600), "bob's read at carol", |frame| {
        matches!(frame, ServerFrame::Receipt { user_id, status: ReceiptStatus::Read, .. } if user_id == &bob.user_id)
    })
    .await;
    // Carol's SDK acks on its own schedule: wait until the server has her pointer.
    let receipts = eventually(
        "carol's delivery receipt",
        Duration::from_millis(20),
        || async {
            let receipts = alice
                .client
                .receipts(&conversation_id, ack.seq)
                .await
                .unwrap();
            receipts
                .delivered_to
                .contains(&carol.user_id)
                .then_some(receipts)
        },
    )
    .await;
    assert_eq!(receipts.read_by, vec![bob.user_id.clone()]);
    assert!(
        receipts.delivered_to.contains(&bob.user_id),
        "read implies delivered"
    );
}
