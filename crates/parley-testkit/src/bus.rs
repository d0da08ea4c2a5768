//! The `Bus` conformance suite. Each function checks one behaviour between the nodes of a
//! fresh bus: three handles on one backend (`node-a`, `node-b`, `node-c`), none
//! subscribed yet, with no interests.
//!
//! The cases hold for a network bus too: they wait for an event with a deadline
//! ([`PATIENCE`]) and never prove an absence by sleeping long. An event that must not
//! arrive is checked either by a short quiet period ([`QUIET`]) or, better, by a marker
//! published after it by the same publisher *to the same addressee* (the same user, the
//! same user's presence): order holds per publisher and addressee, so receiving the
//! marker first proves the event was not delivered. A marker for everyone
//! (`MembershipChanged`) may overtake other events, so it closes only checks about
//! everyone's events.
//!
//! A node may receive a `Deliver` whole or split per user (a bus routing per user does
//! that), so cases compare what the node's users are [`served`], however it was cut.
//!
//! What happens when a node stops reading differs by backend and is declared by it
//! ([`WhenFull`]): the in-process bus makes publishers wait, a network bus drops.

use parley_core::bus::{
    Audience, Bus, BusError, BusEvent, BusReceiver, ConnectionId, Interest, NodeId,
    PresenceAudience,
};
use parley_proto::{
    ConversationId, DeviceId, Message, MessageId, PresenceStatus, ServerFrame, SystemEvent,
    Timestamp, UserId,
};
use std::sync::Arc;
use std::time::Duration;

/// How long an event that must arrive may take.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// How long a node must stay quiet to show that an event did not reach it.
pub const QUIET: Duration = Duration::from_millis(200);

/// The nodes every case gets handles for, in this order.
pub fn node_ids() -> Vec<NodeId> {
    ["node-a", "node-b", "node-c"]
        .into_iter()
        .map(|name| NodeId::new(name).expect("valid node id"))
        .collect()
}

/// What a backend does while a node does not read its stream (see `BusReceiver`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Publishers wait until the node reads; nothing is lost. The node's stream holds
    /// `capacity` events (the in-process bus: the factory's `LocalBus` capacity).
    Wait { capacity: usize },
    /// Events for that node are dropped (a missed doorbell, caught up by `sync`);
    /// publishers never wait for a slow node (a network bus).
    Drop,
}

/// A deliver event for `user_ids`, numbered by `created_at_ms` so cases can tell events
/// apart.
pub fn deliver(user_ids: &[UserId], number: i64) -> BusEvent {
    BusEvent::Deliver {
        user_ids: user_ids.into(),
        except_connection: None,
        frame: Arc::new(ServerFrame::Pong {}),
        created_at_ms: Some(number),
    }
}

/// A deliver event for `user_id` alone.
pub fn deliver_to(user_id: &UserId, number: i64) -> BusEvent {
    deliver(std::slice::from_ref(user_id), number)
}

/// A presence event about `user_id`.
pub fn presence(user_id: &UserId) -> BusEvent {
    BusEvent::Presence {
        user_id: user_id.clone(),
        frame: Arc::new(ServerFrame::Presence {
            user_id: user_id.clone(),
            status: PresenceStatus::Online,
            last_seen: None,
        }),
        audience: PresenceAudience::default(),
    }
}

/// Numbers the marker `Deliver`s that close negative checks.
pub const MARKER: i64 = -1;

/// An event for every node.
pub fn membership_changed(conversation: &str) -> BusEvent {
    BusEvent::MembershipChanged {
        conversation_id: ConversationId::from(conversation),
    }
}

/// The next event on `receiver`; panics if none comes within [`PATIENCE`].
pub async fn next_event(receiver: &mut BusReceiver) -> BusEvent {
    match tokio::time::timeout(PATIENCE, receiver.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the bus closed the stream"),
        Err(_) => panic!("no event within {PATIENCE:?}"),
    }
}

/// Panics if `receiver` gets an event within [`QUIET`].
pub async fn assert_quiet(receiver: &mut BusReceiver, node: &str) {
    if let Ok(event) = tokio::time::timeout(QUIET, receiver.recv()).await {
        panic!("{node} should have received nothing, got {event:?}");
    }
}

/// Publishes `events` from `bus`; panics if that fails or does not return within
/// [`PATIENCE`], so a bus that misbehaves fails the case rather than hanging it.
pub async fn publish(bus: &Arc<dyn Bus>, events: Vec<BusEvent>) {
    tokio::time::timeout(PATIENCE, bus.publish(events))
        .await
        .expect("publish returns")
        .expect("publish");
}

/// The result of a case's helper task, which must end within six [`PATIENCE`]s.
async fn finished<T>(task: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(6 * PATIENCE, task)
        .await
        .expect("the task ends")
        .expect("the task succeeds")
}

async fn subscribe_all(buses: &[Arc<dyn Bus>]) -> Vec<BusReceiver> {
    let mut receivers = Vec::with_capacity(buses.len());
    for bus in buses {
        receivers.push(bus.subscribe().await.expect("first subscription"));
    }
    receivers
}

fn user(name: &str) -> UserId {
    UserId::from(name)
}

async fn add(bus: &Arc<dyn Bus>, interests: impl IntoIterator<Item = Interest>) {
    for interest in interests {
        bus.add_interest(interest).await.expect("add_interest");
    }
}

/// What `event` serves a node interested in `users`: a `Deliver` becomes one copy per
/// user of it among `users`, with that user alone in `user_ids`; any other event stays
/// as it is. Equal for a bus that delivers whole events and one that splits them.
pub fn served(event: &BusEvent, users: &[UserId]) -> Vec<BusEvent> {
    let BusEvent::Deliver { user_ids, .. } = event else {
        return vec![event.clone()];
    };
    let alone = |user_id: &UserId| {
        let mut copy = event.clone();
        if let BusEvent::Deliver { user_ids, .. } = &mut copy {
            *user_ids = Arc::from([user_id.clone()]);
        }
        copy
    };
    let ours = user_ids.iter().filter(|id| users.contains(id));
    ours.map(alone).collect()
}

/// Receives events until they serve `count` copies (see [`served`]) to a node
/// interested in `users`; a `Deliver` for none of them is misaddressed.
pub async fn receive_served(
    receiver: &mut BusReceiver,
    users: &[UserId],
    count: usize,
) -> Vec<BusEvent> {
    let mut copies = Vec::with_capacity(count);
    while copies.len() < count {
        let event = next_event(receiver).await;
        let more = served(&event, users);
        assert!(!more.is_empty(), "not for this node's users: {event:?}");
        copies.extend(more);
    }
    copies
}

fn assert_same_copies(mut got: Vec<BusEvent>, expected: Vec<BusEvent>, what: &str) {
    for copy in &expected {
        let index = got.iter().position(|event| event == copy);
        got.remove(index.unwrap_or_else(|| panic!("{what}: no {copy:?} in {got:?}")));
    }
    assert!(got.is_empty(), "{what}: more than expected: {got:?}");
}

/// A node interested in `users` is served `event` once for each of them: all its copies
/// arrive, then a marker `Deliver` to the same users from the same publisher is the next
/// thing each one is served (a second copy for a user would come before its marker).
pub async fn assert_served_once(
    receiver: &mut BusReceiver,
    users: &[UserId],
    event: &BusEvent,
    publisher: &Arc<dyn Bus>,
) {
    let expected = served(event, users);
    let got = receive_served(receiver, users, expected.len()).await;
    assert_same_copies(got, expected, "the event's copies");
    let marker = deliver(users, MARKER);
    publish(publisher, vec![marker.clone()]).await;
    let got = receive_served(receiver, users, users.len()).await;
    let markers = served(&marker, users);
    assert_same_copies(got, markers, "nothing twice, then the marker");
}

/// Addressing of `Deliver` and `CloseDevice`: only nodes holding `Interest::User` for one
/// of the event's users get it, the publisher's own node included, served once for each
/// of those users; a presence interest in the same user does not attract it. This is
/// what keeps fan-out off nodes without a recipient.
pub async fn deliver_reaches_only_nodes_interested_in_one_of_its_users(buses: Vec<Arc<dyn Bus>>) {
    let mut receivers = subscribe_all(&buses).await;
    let (alice, bob, dave) = (user("u_alice"), user("u_bob"), user("u_dave"));
    add(&buses[0], [Interest::User(alice.clone())]).await;
    add(&buses[1], [Interest::User(bob.clone())]).await;
    add(&buses[2], [Interest::Presence(alice.clone())]).await;
    let (only_alice, only_bob) = ([alice.clone()], [bob.clone()]);

    let bob_dave = deliver(&[bob.clone(), dave], 1);
    publish(&buses[2], vec![bob_dave.clone()]).await;
    assert_served_once(&mut receivers[1], &only_bob, &bob_dave, &buses[2]).await;

    let alice_bob = deliver(&[alice.clone(), bob.clone()], 2);
    publish(&buses[0], vec![alice_bob.clone()]).await;
    // The publisher's own node is interested in alice.
    assert_served_once(&mut receivers[0], &only_alice, &alice_bob, &buses[0]).await;
    assert_served_once(&mut receivers[1], &only_bob, &alice_bob, &buses[0]).await;

    let close = BusEvent::CloseDevice {
        user_id: alice.clone(),
        device_id: DeviceId::from("d_laptop"),
    };
    publish(&buses[1], vec![close.clone()]).await;
    assert_eq!(next_event(&mut receivers[0]).await, close);

    assert_quiet(&mut receivers[1], "node-b (bob only)").await;
    assert_quiet(&mut receivers[2], "node-c (alice's presence only)").await;
}

/// Addressing of `Presence`: only nodes watching that user's presence get it; holding
/// the user's sockets (`Interest::User`) or watching someone else is not enough.
pub async fn presence_reaches_only_its_watchers(buses: Vec<Arc<dyn Bus>>) {
    let mut receivers = subscribe_all(&buses).await;
    let (alice, bob) = (user("u_alice"), user("u_bob"));
    add(&buses[0], [Interest::Presence(alice.clone())]).await;
    add(&buses[1], [Interest::User(alice.clone())]).await;
    add(&buses[2], [Interest::Presence(bob.clone())]).await;
    let event = presence(&alice);
    publish(&buses[2], vec![event.clone()]).await;
    assert_eq!(next_event(&mut receivers[0]).await, event);
    assert_quiet(&mut receivers[1], "node-b (alice's sockets only)").await;
    assert_quiet(&mut receivers[2], "node-c (bob's presence only)").await;
}

/// `MembershipChanged` is for `Audience::Everyone`: every node drops its cached member
/// list, including nodes with no interest at all and the publisher's own node.
pub async fn membership_changes_reach_every_node(buses: Vec<Arc<dyn Bus>>) {
    let mut receivers = subscribe_all(&buses).await;
    add(&buses[0], [Interest::User(user("u_alice"))]).await;
    let event = membership_changed("c_team");
    publish(&buses[0], vec![event.clone()]).await;
    for receiver in &mut receivers {
        assert_eq!(next_event(receiver).await, event);
    }
}

/// A node interested in several users of one `Deliver` is served it once per user
/// (whole, or split per user), never twice for one: each socket gets the frame once; a
/// presence interest in one of them adds nothing. Checked with a marker to the same users
/// published after it, not by waiting.
pub async fn a_node_interested_in_several_users_receives_an_event_once(buses: Vec<Arc<dyn Bus>>) {
    let mut receivers = subscribe_all(&buses).await;
    let users = [user("u_alice"), user("u_bob"), user("u_carol")];
    add(&buses[1], users.iter().cloned().map(Interest::User)).await;
    add(&buses[1], [Interest::Presence(users[0].clone())]).await;
    let event = deliver(&users, 1);
    publish(&buses[0], vec![event.clone()]).await;
    assert_served_once(&mut receivers[1], &users, &event, &buses[0]).await;
}

/// Per-publisher order: a node receives each publisher's events in publish order, across
/// many events and publish calls, while another publisher interleaves its own. Receivers
/// read as events arrive, so a bounded stream never holds the publishers up for good.
pub async fn one_publishers_events_arrive_in_publish_order(buses: Vec<Arc<dyn Bus>>) {
    const PER_PUBLISHER: i64 = 1000;
    const SECOND_PUBLISHER: i64 = 1_000_000;
    let mut receivers = subscribe_all(&buses).await;
    let bob = user("u_bob");
    add(&buses[1], [Interest::User(bob.clone())]).await;
    add(&buses[2], [Interest::User(bob.clone())]).await;
    let readers: Vec<_> = receivers
        .drain(1..)
        .map(|mut receiver| {
            tokio::spawn(async move {
                let mut numbers = Vec::new();
                while numbers.len() < 2 * PER_PUBLISHER as usize {
                    match next_event(&mut receiver).await {
                        BusEvent::Deliver {
                            created_at_ms: Some(number),
                            ..
                        } => numbers.push(number),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                numbers
            })
        })
        .collect();
    let publishers = [(0usize, 0i64), (2, SECOND_PUBLISHER)].map(|(index, base)| {
        let bus = buses[index].clone();
        let bob = bob.clone();
        tokio::spawn(async move {
            // Batches of 1, 2, 3, … events: order must hold within and across calls.
            let mut number = 0;
            let mut batch_size = 1;
            while number < PER_PUBLISHER {
                let end = (number + batch_size).min(PER_PUBLISHER);
                let batch = (number..end).map(|n| deliver_to(&bob, base + n)).collect();
                publish(&bus, batch).await;
                number = end;
                batch_size += 1;
            }
        })
    });
    for publisher in publishers {
        finished(publisher).await;
    }
    for reader in readers {
        let (first, second): (Vec<i64>, Vec<i64>) = finished(reader)
            .await
            .into_iter()
            .partition(|n| *n < SECOND_PUBLISHER);
        let second: Vec<i64> = second.iter().map(|n| n - SECOND_PUBLISHER).collect();
        assert_eq!(first, (0..PER_PUBLISHER).collect::<Vec<_>>());
        assert_eq!(second, (0..PER_PUBLISHER).collect::<Vec<_>>());
    }
}

/// `remove_interest` stops delivery for that interest only; adding twice then removing
/// once stops it too (interests are a set, not a count), and removing one not held is
/// not an error. The proof that a deliver published after the removal did not come: a
/// witness node got it, and once node-b takes the user again, a marker to the same user
/// from the same publisher is the first thing it receives.
pub async fn remove_interest_stops_delivery(buses: Vec<Arc<dyn Bus>>) {
    let mut receivers = subscribe_all(&buses).await;
    let bob = user("u_bob");
    let for_bob = |number| deliver_to(&bob, number);
    let (bobs, watch_bob) = (Interest::User(bob.clone()), Interest::Presence(bob.clone()));
    add(&buses[1], [bobs.clone(), bobs.clone(), watch_bob.clone()]).await;
    add(&buses[2], [bobs.clone()]).await;
    publish(&buses[0], vec![for_bob(1)]).await;
    assert_eq!(next_event(&mut receivers[1]).await, for_bob(1));
    assert_eq!(next_event(&mut receivers[2]).await, for_bob(1));

    buses[1].remove_interest(bobs.clone()).await.unwrap();
    let never_added = Interest::User(user("u_never_added"));
    buses[1]
        .remove_interest(never_added)
        .await
        .expect("not held: no error");
    publish(&buses[0], vec![for_bob(2)]).await;
    assert_eq!(next_event(&mut receivers[2]).await, for_bob(2), "witness");
    add(&buses[1], [bobs]).await;
    publish(&buses[0], vec![for_bob(MARKER)]).await;
    let next = next_event(&mut receivers[1]).await;
    assert_eq!(
        next,
        for_bob(MARKER),
        "the deliver after the removal did not come"
    );

    let watched = presence(&bob);
    publish(&buses[0], vec![watched.clone()]).await;
    let stands = next_event(&mut receivers[1]).await;
    assert_eq!(stands, watched, "the presence interest stands");
    buses[1].remove_interest(watch_bob).await.unwrap();
    publish(&buses[0], vec![presence(&bob)]).await;
    assert_quiet(&mut receivers[1], "node-b (no presence interest left)").await;
}

/// `add_interest` is effective when it returns: an event published right after, from
/// another node, is not missed. The gateway relies on this when a socket registers and
/// then syncs.
pub async fn add_interest_is_effective_when_it_returns(buses: Vec<Arc<dyn Bus>>) {
    let mut receivers = subscribe_all(&buses).await;
    for round in 0..20 {
        let user_id = user(&format!("u_{round}"));
        add(&buses[1], [Interest::User(user_id.clone())]).await;
        let event = deliver_to(&user_id, round);
        publish(&buses[0], vec![event.clone()]).await;
        assert_eq!(next_event(&mut receivers[1]).await, event, "round {round}");
        let watched = user(&format!("u_watched_{round}"));
        add(&buses[2], [Interest::Presence(watched.clone())]).await;
        let event = presence(&watched);
        publish(&buses[0], vec![event.clone()]).await;
        assert_eq!(next_event(&mut receivers[2]).await, event, "round {round}");
    }
}

/// Events are plain data: every kind, with every optional field set or not, arrives equal
/// to what was published (a network bus encodes and decodes them), a `Deliver` as the
/// node's users are [`served`] it; one user's events in publish order.
pub async fn events_round_trip_unchanged(buses: Vec<Arc<dyn Bus>>) {
    let mut receivers = subscribe_all(&buses).await;
    let (alice, bob) = (user("u_alice"), user("u_bob"));
    add(&buses[1], [Interest::User(bob.clone())]).await;
    add(&buses[1], [Interest::Presence(alice.clone())]).await;
    let message = Message {
        message_id: MessageId::from("m_01"),
        conversation_id: ConversationId::from("c_team"),
        seq: 42,
        sender_id: alice.clone(),
        sender_device_id: DeviceId::from("d_phone"),
        client_msg_id: "client-1".into(),
        content: "héllo \"wörld\"\n\t🦀 <b>&amp;</b>".into(),
        content_type: "text".into(),
        reply_to_seq: Some(41),
        created_at: Timestamp::from_millis(1_790_000_000_123),
        system: None,
        target_seq: None,
        mentions: vec![bob.clone()],
        forwarded: true,
        attachments: vec![parley_proto::Media {
            media_id: parley_proto::MediaId::from("m_01"),
            status: parley_proto::MediaStatus::Ready,
            content_type: "image/jpeg".into(),
            size: 123_456,
            filename: Some("été.jpg".into()),
            width: Some(4000),
            height: Some(3000),
            duration_ms: None,
            thumbnail: Some(parley_proto::Thumbnail {
                width: 320,
                height: 240,
            }),
            blurhash: Some("LEHV6nWB2yk8pyo0adR*.7kCMdnj".into()),
        }],
        edited_at: Some(Timestamp::from_millis(1_790_000_000_456)),
        deleted: false,
        reactions: vec![parley_proto::ReactionCount {
            emoji: "👍🏽".into(),
            count: 2,
            me: true,
        }],
        hidden: false,
        expires_at: None,
    };
    let system_message = Message {
        seq: 43,
        message_id: MessageId::from("m_02"),
        client_msg_id: "system:1".into(),
        content_type: "system".into(),
        reply_to_seq: None,
        system: Some(SystemEvent::MembersAdded {
            actor_id: alice.clone(),
            user_ids: vec![bob.clone()],
        }),
        ..message.clone()
    };
    let events = vec![
        BusEvent::Deliver {
            user_ids: vec![alice.clone(), bob.clone()].into(),
            except_connection: Some(ConnectionId {
                node: buses[0].node_id().clone(),
                serial: 1_790_000_000_123_456,
            }),
            frame: Arc::new(ServerFrame::NewMessage(message)),
            created_at_ms: Some(1_790_000_000_123),
        },
        BusEvent::Deliver {
            user_ids: vec![bob.clone()].into(),
            except_connection: None,
            frame: Arc::new(ServerFrame::NewMessage(system_message)),
            created_at_ms: None,
        },
        BusEvent::Presence {
            user_id: alice.clone(),
            frame: Arc::new(ServerFrame::Presence {
                user_id: alice.clone(),
                status: PresenceStatus::Offline,
                last_seen: Some(Timestamp::from_millis(1_790_000_000_000)),
            }),
            // Who may see it crosses nodes with it.
            audience: PresenceAudience::Only {
                user_ids: vec![bob.clone()].into(),
            },
        },
        BusEvent::CloseDevice {
            user_id: bob.clone(),
            device_id: DeviceId::from("d_laptop"),
        },
        membership_changed("c_team"),
    ];
    publish(&buses[0], events.clone()).await;
    let only_bob = [bob];
    let expected: Vec<BusEvent> = events.iter().flat_map(|e| served(e, &only_bob)).collect();
    let got = receive_served(&mut receivers[1], &only_bob, expected.len()).await;
    // Bob's events (the first two and the fourth) keep their order; the others may
    // come anywhere.
    let bobs = |events: &[BusEvent]| -> Vec<BusEvent> {
        let for_users = |e: &&BusEvent| matches!(e.audience(), Audience::Users(_));
        events.iter().filter(for_users).cloned().collect()
    };
    assert_eq!(bobs(&got), bobs(&expected), "bob's events, in order");
    assert_same_copies(got, expected, "every event");
}

/// A node's stream opens once: a second `subscribe` is `BusError::Subscription` (two
/// dispatchers would split the node's events), and the first stream keeps working.
pub async fn subscribing_twice_is_refused(buses: Vec<Arc<dyn Bus>>) {
    let mut first = buses[0].subscribe().await.expect("first subscription");
    let second = buses[0].subscribe().await;
    let refused = matches!(second, Err(BusError::Subscription));
    assert!(refused, "{:?}", second.err());
    let event = membership_changed("c_team");
    publish(&buses[1], vec![event.clone()]).await;
    assert_eq!(next_event(&mut first).await, event);
}

/// Publishing no events is a no-op, not an error (the committer may have nothing to fan
/// out after a batch of duplicates).
pub async fn publishing_nothing_is_ok(buses: Vec<Arc<dyn Bus>>) {
    let mut receivers = subscribe_all(&buses).await;
    publish(&buses[0], Vec::new()).await;
    let event = membership_changed("c_team");
    publish(&buses[0], vec![event.clone()]).await;
    let next = next_event(&mut receivers[1]).await;
    assert_eq!(next, event, "nothing came before the next real event");
}

/// A bus that is up answers `ping` (for `/readyz`), promptly.
pub async fn a_ready_bus_answers_ping(buses: Vec<Arc<dyn Bus>>) {
    for bus in &buses {
        let answer = tokio::time::timeout(Duration::from_secs(2), bus.ping()).await;
        answer
            .expect("ping answers within a second or so")
            .expect("ping");
    }
}

/// A node whose stream is gone (its dispatcher ended) does not stall publishers, and
/// the other nodes keep getting their events.
pub async fn a_dropped_stream_does_not_stall_publishers(buses: Vec<Arc<dyn Bus>>) {
    let mut receivers = subscribe_all(&buses).await;
    let bob = user("u_bob");
    for bus in &buses[1..] {
        add(bus, [Interest::User(bob.clone())]).await;
    }
    drop(receivers.remove(1));
    let (mut receiver, for_bob) = (receivers.remove(1), bob.clone());
    let reader = tokio::spawn(async move {
        for number in 0..1000 {
            assert_eq!(
                next_event(&mut receiver).await,
                deliver_to(&for_bob, number)
            );
        }
    });
    let events = (0..1000).map(|number| deliver_to(&bob, number)).collect();
    tokio::time::timeout(PATIENCE, buses[0].publish(events))
        .await
        .expect("publish does not wait for a node whose stream is gone")
        .unwrap();
    finished(reader).await;
}

/// A node that does not read its stream, as the backend declares it ([`WhenFull`]).
///
/// `Wait`: once the stream holds `capacity` events, `publish` waits (backpressure, no
/// unbounded queue) and nothing is lost (`losses` stays 0); reading lets it finish, in
/// order. `Drop`: `publish` never waits for the slow node; after it reads again it gets
/// new events for the same user (the route is not broken), though some in between may be
/// gone, which `losses` counts.
pub async fn a_node_that_does_not_read(buses: Vec<Arc<dyn Bus>>, when_full: WhenFull) {
    let mut receivers = subscribe_all(&buses).await;
    let bob = user("u_bob");
    add(&buses[1], [Interest::User(bob.clone())]).await;
    let losses = receivers[1].losses();
    match when_full {
        WhenFull::Wait { capacity } => {
            let total = capacity as i64 + 10;
            let events = (0..total).map(|number| deliver_to(&bob, number)).collect();
            let publisher = buses[0].clone();
            let mut publishing = tokio::spawn(async move { publisher.publish(events).await });
            assert!(
                tokio::time::timeout(QUIET, &mut publishing).await.is_err(),
                "publish waits while node-b's stream is full"
            );
            for number in 0..total {
                let event = next_event(&mut receivers[1]).await;
                assert_eq!(event, deliver_to(&bob, number), "nothing lost, in order");
            }
            tokio::time::timeout(PATIENCE, publishing)
                .await
                .expect("publish finishes once node-b reads")
                .unwrap()
                .unwrap();
            assert_eq!(*losses.borrow(), 0, "a bus that waits loses nothing");
        }
        WhenFull::Drop => {
            const FLOOD: i64 = 100_000;
            let events = (0..FLOOD).map(|number| deliver_to(&bob, number)).collect();
            tokio::time::timeout(6 * PATIENCE, buses[0].publish(events))
                .await
                .expect("publish does not wait for a slow node")
                .unwrap();
            // Drain what was kept, then the stream has room again.
            let mut kept = 0;
            while tokio::time::timeout(QUIET, receivers[1].recv())
                .await
                .is_ok_and(|event| event.is_some())
            {
                kept += 1;
            }
            let counted = *losses.borrow() > 0;
            assert!(kept == FLOOD || counted, "{kept} of {FLOOD} kept: a loss");
            // Bob's route still works: a marker to him comes after what is left of the flood.
            let marker = deliver_to(&bob, MARKER);
            publish(&buses[0], vec![marker.clone()]).await;
            loop {
                let event = next_event(&mut receivers[1]).await;
                if event == marker {
                    break;
                }
                assert!(matches!(event, BusEvent::Deliver { .. }), "{event:?}");
            }
        }
    }
}
