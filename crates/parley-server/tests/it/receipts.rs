//! Delivered and read receipts, unread counts.

use crate::harness::*;
use parley_proto::ReceiptStatus;
use parley_sdk::{Event, ServerFrame};

/// Direct chat: the recipient's acks become `delivered` and its read becomes `read` for
/// the sender; the read pointer is echoed to the reader's other devices; unread counts
/// follow the read pointer.
#[tokio::test]
async fn direct_receipts_reach_the_sender_and_the_readers_devices() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conversation = alice.client.create_direct(&bob.user_id).await.unwrap();
    let conversation_id = conversation.conversation_id.clone();
    let mut alice_connection = alice.connect().await;
    let mut bob_phone = bob.connect().await;
    let mut bob_laptop = connect(&bob.new_device().await).await;

    for text in ["one", "two"] {
        alice_connection
            .send_and_wait(conversation_id.clone(), text)
            .await
            .unwrap();
    }
    messages(&mut bob_phone, &conversation_id, 2).await;
    expect(&mut alice_connection, "delivered up to 2", |event| {
        matches!(event, Event::Frame(ServerFrame::Receipt { status: ReceiptStatus::Delivered, up_to_seq: 2, user_id, .. }) if user_id == &bob.user_id)
    })
    .await;
    assert_eq!(alice.client.unread().await.unwrap().total, 0);
    assert_eq!(bob.client.unread().await.unwrap().total, 2);

    bob_phone.read(conversation_id.clone(), 2).unwrap();
    expect(&mut alice_connection, "read up to 2", |event| {
        matches!(
            event,
            Event::Frame(ServerFrame::Receipt {
                status: ReceiptStatus::Read,
                up_to_seq: 2,
                ..
            })
        )
    })
    .await;
    expect(&mut bob_laptop, "read echo on the other device", |event| {
        matches!(event, Event::Frame(ServerFrame::Receipt { status: ReceiptStatus::Read, up_to_seq: 2, user_id, .. }) if user_id == &bob.user_id)
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
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let group = alice
        .client
        .create_group("g", &[bob.user_id.clone(), carol.user_id.clone()])
        .await
        .unwrap();
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
    expect(&mut alice_connection, "bob's read", |event| {
        matches!(event, Event::Frame(ServerFrame::Receipt { status: ReceiptStatus::Read, user_id, .. }) if user_id == &bob.user_id)
    })
    .await;
    expect_none(&mut carol_connection, std::time::Duration::from_millis(600), "bob's read at carol", |event| {
        matches!(event, Event::Frame(ServerFrame::Receipt { user_id, status: ReceiptStatus::Read, .. }) if user_id == &bob.user_id)
    })
    .await;
    // Carol's SDK acks on its own schedule: wait until the server has her pointer.
    let receipts = within("carol's delivery receipt", async {
        loop {
            let receipts = alice
                .client
                .receipts(&conversation_id, ack.seq)
                .await
                .unwrap();
            if receipts.delivered_to.contains(&carol.user_id) {
                break receipts;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(receipts.read_by, vec![bob.user_id.clone()]);
    assert!(
        receipts.delivered_to.contains(&bob.user_id),
        "read implies delivered"
    );
}
