//! The cluster seams, with two nodes in one process: two `Chat`s on one store, one bus
//! network and one presence registry (the in-process backends; the next issue runs the same
//! scenarios on PostgreSQL, NATS and Redis). These are the guarantees that must not lean on
//! a reliable bus: a removed member receives nothing even when the invalidation is lost,
//! and a dead node's users go offline by themselves.

use parley_core::bus::{BusError, BusReceiver, Interest};
use parley_core::chat::SendRequest;
use parley_core::local::{LocalBus, LocalPresence, LocalRateLimiter};
use parley_core::{Bus, BusEvent, Chat, CoreConfig, NodeId, Ports, PresenceRegistry, Session};
use parley_proto::{PresenceStatus, ServerFrame, UserId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A node's bus handle that loses every `MembershipChanged` it publishes while `lossy`.
struct LossyBus {
    inner: LocalBus,
    lossy: AtomicBool,
}

#[async_trait::async_trait]
impl Bus for LossyBus {
    fn node_id(&self) -> &NodeId {
        self.inner.node_id()
    }

    async fn subscribe(&self) -> Result<BusReceiver, BusError> {
        self.inner.subscribe().await
    }

    async fn add_interest(&self, interest: Interest) -> Result<(), BusError> {
        self.inner.add_interest(interest).await
    }

    async fn remove_interest(&self, interest: Interest) -> Result<(), BusError> {
        self.inner.remove_interest(interest).await
    }

    async fn publish(&self, mut events: Vec<BusEvent>) -> Result<(), BusError> {
        if self.lossy.load(Ordering::SeqCst) {
            events.retain(|event| !matches!(event, BusEvent::MembershipChanged { .. }));
        }
        self.inner.publish(events).await
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.inner.ping().await
    }
}

struct Node {
    chat: Chat,
    bus: Arc<LossyBus>,
}

/// Two nodes, "a" and "b", sharing a fresh SQLite store, a bus network, a presence
/// registry (with `lease`) and a rate limiter.
async fn two_nodes(dir: &std::path::Path, lease: Duration) -> (Node, Node, LocalPresence) {
    let store = Arc::new(parley_store_sqlite::SqliteStore::open(dir).await.unwrap());
    let network = LocalBus::new(NodeId::new("a").unwrap(), 1024);
    let registry = LocalPresence::new(NodeId::new("registry").unwrap(), lease);
    let limiter = Arc::new(LocalRateLimiter::new());
    let config = CoreConfig {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        presence_lease: lease,
        ..CoreConfig::default()
    };
    let media_dir = tempfile::tempdir().unwrap().keep();
    let media: Arc<dyn parley_core::MediaStore> = Arc::new(
        parley_media::DiskMediaStore::open(&media_dir, "")
            .await
            .unwrap(),
    );
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let node = NodeId::new(name).unwrap();
        let bus = Arc::new(LossyBus {
            inner: network.join(node.clone()),
            lossy: AtomicBool::new(false),
        });
        let chat = Chat::new(
            config.clone(),
            Ports {
                store: store.clone(),
                bus: bus.clone(),
                presence: Arc::new(registry.join(node)),
                limiter: limiter.clone(),
                media: media.clone(),
            },
        );
        nodes.push(Node { chat, bus });
    }
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    (a, b, registry)
}

async fn account(chat: &Chat, username: &str) -> Session {
    let auth = chat
        .register(username, "password-123", None, None)
        .await
        .unwrap();
    chat.authenticate(&auth.token).await.unwrap()
}

fn send(conversation_id: &parley_proto::ConversationId, text: &str) -> SendRequest {
    SendRequest {
        client_msg_id: format!("{text}-{}", ulid_like()),
        conversation_id: conversation_id.clone(),
        content: text.to_owned(),
        content_type: None,
        reply_to_seq: None,
        target_seq: None,
        mentions: Vec::new(),
        attachments: Vec::new(),
        forwarded: false,
        origin_connection: None,
    }
}

fn ulid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The next `new_message` with this content on a node's stream, and its recipients.
async fn recipients_of(events: &mut BusReceiver, content: &str) -> Vec<UserId> {
    let wait = async {
        loop {
            let event = events.recv().await.expect("the bus stream is open");
            if let BusEvent::Deliver {
                user_ids, frame, ..
            } = &event
            {
                if let ServerFrame::NewMessage(message) = frame.as_ref() {
                    if message.content == content {
                        return user_ids.to_vec();
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or_else(|_| panic!("no new_message {content:?} on the stream"))
}

/// Node b caches the group's members; node a removes bob and the bus loses the
/// invalidation. A message committed on node b after the removal must still not go to
/// bob: its commit saw the new `members_version`, newer than b's cached list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_receives_nothing_when_the_invalidation_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _registry) = two_nodes(dir.path(), Duration::from_secs(30)).await;
    let alice = account(&a.chat, "alice").await;
    let bob = account(&a.chat, "bob").await;
    let carol = account(&b.chat, "carol").await;
    let (group, _) = a
        .chat
        .create_conversation(
            &alice,
            parley_core::chat::NewChat::Group {
                name: "Team".into(),
                member_ids: vec![bob.user_id.clone(), carol.user_id.clone()],
                description: None,
            },
        )
        .await
        .unwrap();
    let group = group.conversation_id;
    // Bob's and carol's sockets are on node b.
    let mut b_events = b.chat.events().await.unwrap();
    let bob_socket = b.chat.new_connection_id();
    b.chat.connected(&bob, &bob_socket).await.unwrap();
    let carol_socket = b.chat.new_connection_id();
    b.chat.connected(&carol, &carol_socket).await.unwrap();

    b.chat
        .send_message(&carol, send(&group, "before"))
        .await
        .unwrap();
    let before = recipients_of(&mut b_events, "before").await;
    assert!(
        before.contains(&bob.user_id),
        "node b cached bob as a member"
    );

    a.bus.lossy.store(true, Ordering::SeqCst);
    a.chat
        .remove_member(&alice, &group, &bob.user_id)
        .await
        .unwrap();
    b.chat
        .send_message(&carol, send(&group, "after"))
        .await
        .unwrap();
    let after = recipients_of(&mut b_events, "after").await;
    assert!(
        !after.contains(&bob.user_id),
        "a removed member must not receive, even with the invalidation lost: {after:?}"
    );
    assert!(after.contains(&carol.user_id) && after.contains(&alice.user_id));
}

/// A node that dies stops renewing its lease: its users go offline by themselves, and a
/// watcher on a live node hears `offline` once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_users_go_offline_after_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let lease = Duration::from_millis(400);
    let (a, _b, registry) = two_nodes(dir.path(), lease).await;
    let alice = account(&a.chat, "alice").await;
    let bob = account(&a.chat, "bob").await;
    // Bob's only socket is on a node that dies right after registering it.
    let dead = registry.join(NodeId::new("dead").unwrap());
    let bob_socket = parley_core::ConnectionId {
        node: NodeId::new("dead").unwrap(),
        serial: 1,
    };
    assert!(dead
        .connect(&bob_socket, &bob.user_id, &bob.device_id)
        .await
        .unwrap());

    let mut a_events = a.chat.events().await.unwrap();
    let alice_socket = a.chat.new_connection_id();
    a.chat.connected(&alice, &alice_socket).await.unwrap();
    let snapshot = a
        .chat
        .watch_presence(&alice_socket, vec![bob.user_id.clone()])
        .await
        .unwrap();
    assert!(
        matches!(
            &snapshot[..],
            [ServerFrame::Presence {
                status: PresenceStatus::Online,
                ..
            }]
        ),
        "{snapshot:?}"
    );

    let offline = async {
        loop {
            if let Some(BusEvent::Presence { user_id, frame, .. }) = a_events.recv().await {
                if user_id == bob.user_id {
                    return frame;
                }
            }
        }
    };
    let frame = tokio::time::timeout(lease * 10, offline)
        .await
        .expect("bob goes offline once the dead node's lease lapses");
    assert!(
        matches!(
            frame.as_ref(),
            ServerFrame::Presence {
                status: PresenceStatus::Offline,
                ..
            }
        ),
        "{frame:?}"
    );
    assert_eq!(
        registry
            .online(std::slice::from_ref(&bob.user_id))
            .await
            .unwrap(),
        vec![false]
    );
    // Alice's node renews its lease: she stays online.
    tokio::time::sleep(lease * 2).await;
    assert_eq!(
        registry
            .online(std::slice::from_ref(&alice.user_id))
            .await
            .unwrap(),
        vec![true]
    );
}
