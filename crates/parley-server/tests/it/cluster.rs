//! Several nodes on one PostgreSQL, NATS and Redis (`backends.rs`), each a real server
//! on its own port: users on different nodes see one conversation as if there were one
//! server. These run in every mode and fail, never skip, when a service is missing.

use crate::backends::ClusterBackends;
use crate::harness::*;
use parley_proto::{PresenceStatus, ReceiptStatus, UserId};
use parley_sdk::{Client, Event, ServerFrame};
use std::sync::Arc;
use std::time::Duration;

/// The content of the next message in `id` that is not a system message.
async fn next_text(
    connection: &mut parley_sdk::Connection,
    id: &parley_proto::ConversationId,
) -> String {
    loop {
        let message = messages(connection, id, 1).await.remove(0);
        if message.system.is_none() {
            return message.content;
        }
    }
}

/// `count` nodes, `n1`…, of one cluster on fresh services.
pub struct TestCluster {
    pub nodes: Vec<TestServer>,
}

impl TestCluster {
    pub async fn start(count: usize) -> Self {
        Self::start_with(count, |_| {}).await
    }

    pub async fn start_with(count: usize, adjust: impl Fn(&mut parley_server::Config)) -> Self {
        let backends = Arc::new(ClusterBackends::create().await);
        let mut nodes = Vec::with_capacity(count);
        for index in 1..=count {
            let name = format!("n{index}");
            nodes.push(TestServer::start_node(Some(backends.clone()), &name, &adjust).await);
        }
        Self { nodes }
    }

    /// `user` logged in again through node `index` (the same account, another device).
    pub async fn on(&self, index: usize, user: &TestUser) -> TestUser {
        let client = Client::new(&self.nodes[index].url).unwrap();
        client
            .login(&user.username, "password-123")
            .await
            .expect("login on another node");
        TestUser {
            client,
            user_id: user.user_id.clone(),
            username: user.username.clone(),
            url: self.nodes[index].url.clone(),
        }
    }
}

/// 1:1 across nodes: a message sent on n1 reaches n2 live, in order; delivered and read
/// receipts come back to n1; typing is relayed; each sees the other's presence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_different_nodes_chat_one_to_one() {
    let cluster = TestCluster::start(2).await;
    let [alice, bob] = cluster.nodes[0].users(["alice", "bob"]).await;
    let bob = cluster.on(1, &bob).await;
    let conversation = alice.direct_with(&bob).await;
    let id = conversation.conversation_id.clone();
    let mut alice_connection = alice.connect().await;
    let mut bob_connection = bob.connect().await;

    alice_connection
        .presence_subscribe(vec![bob.user_id.clone()])
        .unwrap();
    expect_presence(
        &mut alice_connection,
        "bob online",
        &bob.user_id,
        PresenceStatus::Online,
    )
    .await;

    bob_connection.typing(id.clone(), true).unwrap();
    expect_frame(&mut alice_connection, "bob typing", |frame| {
        matches!(frame, ServerFrame::Typing { user_id, is_typing: true, .. } if *user_id == bob.user_id)
    })
    .await;

    for number in 1..=20 {
        alice_connection
            .send(id.clone(), format!("message {number}"))
            .unwrap();
    }
    let received = messages(&mut bob_connection, &id, 20).await;
    let seqs: Vec<i64> = received.iter().map(|message| message.seq).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "one order, no gaps");
    assert!(received
        .iter()
        .enumerate()
        .all(|(index, message)| message.content == format!("message {}", index + 1)));

    expect_frame(&mut alice_connection, "delivered up to 20", |frame| {
        matches!(frame, ServerFrame::Receipt { status: ReceiptStatus::Delivered, up_to_seq: 20, user_id, .. } if *user_id == bob.user_id)
    })
    .await;
    bob_connection.read(id.clone(), 20).unwrap();
    expect_frame(&mut alice_connection, "read up to 20", |frame| {
        matches!(frame, ServerFrame::Receipt { status: ReceiptStatus::Read, up_to_seq: 20, user_id, .. } if *user_id == bob.user_id)
    })
    .await;

    drop(bob_connection);
    expect_presence(
        &mut alice_connection,
        "bob offline",
        &bob.user_id,
        PresenceStatus::Offline,
    )
    .await;
}

/// A user with devices on three nodes: a message from one reaches the other two; a
/// `sync` on any node gives the same history; logging out one device closes its sockets
/// on every node, and only its.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_on_every_node_share_one_history_and_logout_closes_everywhere() {
    let cluster = TestCluster::start(3).await;
    let [alice, bob] = cluster.nodes[0].users(["alice", "bob"]).await;
    let conversation = alice.direct_with(&bob).await;
    let id = conversation.conversation_id.clone();
    // One device (one token) with a socket on each node, and a second device on n3.
    let mut sockets = Vec::new();
    for node in &cluster.nodes {
        let client = Client::new(&node.url).unwrap().with_token(alice.token());
        sockets.push(connect_with(&client, |config| config.reconnect = false).await);
    }
    let mut other_device = cluster.on(2, &alice).await.connect().await;
    let bob_connection = cluster.on(1, &bob).await.connect().await;

    bob_connection
        .send_and_wait(id.clone(), "hello every node")
        .await
        .unwrap();
    for socket in sockets.iter_mut().chain([&mut other_device]) {
        let received = messages(socket, &id, 1).await;
        assert_eq!(received[0].content, "hello every node");
    }
    for node in &cluster.nodes {
        let client = Client::new(&node.url).unwrap().with_token(alice.token());
        let history = client.history(&id, None, None, Some(10)).await.unwrap();
        assert_eq!(
            history.messages.len(),
            1,
            "the same history on {}",
            node.url
        );
    }

    alice.client.logout().await.unwrap();
    for (index, socket) in sockets.iter_mut().enumerate() {
        let closed = expect(socket, "the socket closes", |event| {
            matches!(event, Event::Closed { .. } | Event::Disconnected { .. })
        })
        .await;
        assert!(
            matches!(closed, Event::Closed { .. } | Event::Disconnected { .. }),
            "socket on n{} closed: {closed:?}",
            index + 1
        );
    }
    bob_connection
        .send_and_wait(id.clone(), "still here?")
        .await
        .unwrap();
    let received = messages(&mut other_device, &id, 1).await;
    assert_eq!(
        received[0].content, "still here?",
        "the other device lives on"
    );
}

/// A group spread over three nodes: a removal on n1 takes effect on every node at once
/// (the removed member's node delivers nothing after it), and the others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_takes_effect_on_every_node() {
    let cluster = TestCluster::start(3).await;
    let [alice, bob, carol] = cluster.nodes[0].users(["alice", "bob", "carol"]).await;
    let group = alice.group_with("Team", &[&bob, &carol]).await;
    let id = group.conversation_id.clone();
    let alice_connection = alice.connect().await;
    let mut bob_connection = cluster.on(1, &bob).await.connect().await;
    let mut carol_connection = cluster.on(2, &carol).await.connect().await;

    alice_connection
        .send_and_wait(id.clone(), "before")
        .await
        .unwrap();
    assert_eq!(next_text(&mut carol_connection, &id).await, "before");
    alice
        .client
        .remove_member(&id, &carol.user_id)
        .await
        .unwrap();
    let after = alice_connection
        .send_and_wait(id.clone(), "after")
        .await
        .unwrap();

    // Bob (on n2) gets both texts, with the removal between them.
    assert_eq!(next_text(&mut bob_connection, &id).await, "before");
    assert_eq!(next_text(&mut bob_connection, &id).await, "after");
    expect_none(
        &mut carol_connection,
        Duration::from_millis(500),
        "a message after the removal",
        |event| matches!(event, Event::NewMessage(message) if message.seq >= after.seq),
    )
    .await;
    let refused = carol
        .client
        .history(&id, None, None, Some(10))
        .await
        .expect_err("carol is no longer a member");
    assert_eq!(refused.status(), Some(403));
}

/// A group of 1024 spread over three nodes: messages sent at once from members on every
/// node reach every member once, in one `seq` order with no gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_1024_over_three_nodes_sees_one_order() {
    const MEMBERS: usize = 1024;
    const SENDERS: usize = 6;
    const PER_SENDER: usize = 5;
    let cluster = TestCluster::start_with(3, |config| {
        config.limits.writes_per_minute = 10_000;
        config.limits.group_messages_per_minute = 10_000;
        config.limits.user_messages_per_minute = 10_000;
        config.limits.max_sockets_per_ip = 10_000;
    })
    .await;
    let mut users = Vec::with_capacity(MEMBERS);
    for index in 0..MEMBERS {
        let node = &cluster.nodes[index % 3];
        users.push(node.user(&format!("member{index}")).await);
    }
    let owner = &users[0];
    let others: Vec<&TestUser> = users[1..100].iter().collect();
    let group = owner.group_with("Everyone", &others).await;
    let id = group.conversation_id.clone();
    let rest: Vec<UserId> = users[100..]
        .iter()
        .map(|user| user.user_id.clone())
        .collect();
    for chunk in rest.chunks(100) {
        owner.client.add_members(&id, chunk).await.unwrap();
    }
    let mut connections = Vec::with_capacity(MEMBERS);
    for user in &users {
        connections.push(user.connect().await);
    }
    let last_system_seq = owner
        .client
        .history(&id, None, None, Some(1))
        .await
        .unwrap()
        .messages[0]
        .seq;

    let mut acks = Vec::new();
    for sender in 0..SENDERS {
        let connection = &connections[sender * 170];
        for number in 0..PER_SENDER {
            acks.push(
                connection
                    .send(id.clone(), format!("{sender}-{number}"))
                    .unwrap(),
            );
        }
    }
    for ack in acks {
        within("the ack", ack.ack()).await.unwrap();
    }
    let total = SENDERS * PER_SENDER;
    let expected: Vec<i64> = (last_system_seq + 1..=last_system_seq + total as i64).collect();
    // Live frames of one conversation come from the node that committed each message,
    // so across nodes they may arrive out of `seq` order; every device orders by `seq`
    // (the SDK's tracker, the web client's store). What must hold: every member gets
    // every message once, and all agree on which message has which `seq`.
    let mut first_order: Option<Vec<String>> = None;
    for (index, connection) in connections.iter_mut().enumerate() {
        if (0..SENDERS).any(|sender| sender * 170 == index) {
            continue; // a sender hears its own messages as acks
        }
        let mut received = Vec::new();
        while received.len() < total {
            let message = messages(connection, &id, 1).await.remove(0);
            if message.seq > last_system_seq {
                received.push(message);
            }
        }
        received.sort_by_key(|message| message.seq);
        let seqs: Vec<i64> = received.iter().map(|message| message.seq).collect();
        assert_eq!(
            seqs,
            expected,
            "member {index} (node n{}): each once, no gaps",
            index % 3 + 1
        );
        let order: Vec<String> = received
            .into_iter()
            .map(|message| message.content)
            .collect();
        match &first_order {
            None => first_order = Some(order),
            Some(first) => assert_eq!(&order, first, "member {index} sees the same order"),
        }
    }
}
