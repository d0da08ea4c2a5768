//! What only a NATS backend can get wrong, beyond the shared suite: the exact subjects
//! and the one encoding per event, ids that would be wildcards, unsubscribing on the
//! server, concurrent and cancelled calls, foreign messages on our subjects, and NATS
//! being down, unreachable or restarted.

mod support;

use async_nats::Subscriber;
use futures::StreamExt;
use parley_cluster_nats::{NatsBus, NatsBusError, NatsOptions};
use parley_core::bus::{Bus, BusError, BusEvent, Interest};
use parley_proto::UserId;
use parley_testkit::bus::{
    deliver, deliver_to, membership_changed, next_event, presence, PATIENCE, QUIET,
};
use parley_testkit::services::{free_port, PrivateNats};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{connect, connect_with, fresh_prefix, nats_url, raw_client};

fn user(id: &str) -> UserId {
    UserId::from(id)
}

/// A raw subscription to every subject of `prefix`, in place on the server when returned.
async fn observe(client: &async_nats::Client, prefix: &str) -> Subscriber {
    let mut all = client
        .subscribe(format!("parley.{prefix}.>"))
        .await
        .unwrap();
    let ready = format!("parley.{prefix}.observer-ready");
    client.publish(ready.clone(), "".into()).await.unwrap();
    let first = tokio::time::timeout(PATIENCE, all.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.subject.as_str(), ready);
    all
}

async fn next_message(subscriber: &mut Subscriber) -> async_nats::Message {
    tokio::time::timeout(PATIENCE, subscriber.next())
        .await
        .expect("a message in time")
        .expect("subscribed")
}

/// Whether the server has any subscriber on `subject`: a request there is answered
/// "no responders" at once if not, and goes unanswered (nobody replies) if so.
async fn has_subscribers(client: &async_nats::Client, subject: &str) -> bool {
    let request = async_nats::Request::new().timeout(Some(Duration::from_millis(200)));
    match client.send_request(subject.to_owned(), request).await {
        Err(error) => error.kind() != async_nats::RequestErrorKind::NoResponders,
        Ok(_) => true,
    }
}

/// Waits until `subject` has no subscribers on the server (unsubscribing is asynchronous).
async fn assert_unsubscribed(client: &async_nats::Client, subject: &str) {
    let deadline = Instant::now() + PATIENCE;
    while has_subscribers(client, subject).await {
        assert!(
            Instant::now() < deadline,
            "{subject} still has a subscriber"
        );
    }
}

/// A group message is one NATS message per member, each on the member's subject with the
/// same payload (encoded once, without the member list); the other kinds go on the
/// presence and `all` subjects.
#[tokio::test]
async fn each_event_goes_on_its_subjects_with_one_payload() {
    let (url, prefix) = (nats_url(), fresh_prefix());
    let raw = raw_client(&url).await;
    let mut observed = observe(&raw, &prefix).await;
    let bus = connect(&url, &prefix, "node-a").await;
    let members = [user("u_b"), user("u_a"), user("u_c")];
    let close = BusEvent::CloseDevice {
        user_id: user("u_d"),
        device_id: "d_1".into(),
    };
    let events = vec![
        deliver(&members, 7),
        presence(&user("u_x")),
        close,
        membership_changed("c_1"),
    ];
    bus.publish(events).await.unwrap();
    let mut messages = Vec::new();
    for _ in 0..6 {
        messages.push(next_message(&mut observed).await);
    }
    let subjects: Vec<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
    let expected = ["u.u_b", "u.u_a", "u.u_c", "p.u_x", "u.u_d", "all"];
    let expected: Vec<String> = expected.map(|s| format!("parley.{prefix}.{s}")).into();
    assert_eq!(subjects, expected);
    assert!(messages[1..3]
        .iter()
        .all(|m| m.payload == messages[0].payload));
    let payload: serde_json::Value = serde_json::from_slice(&messages[0].payload).unwrap();
    assert_eq!(payload["user_ids"], serde_json::json!([]), "{payload}");
}

/// An id that is not exactly one subject token is refused (`Codec`) for interests and
/// events, and a batch with one such id publishes nothing.
#[tokio::test]
async fn ids_that_are_not_one_subject_token_are_refused() {
    let (url, prefix) = (nats_url(), fresh_prefix());
    let raw = raw_client(&url).await;
    let mut observed = observe(&raw, &prefix).await;
    let bus = connect(&url, &prefix, "node-a").await;
    for id in ["", "u.b", "*", ">", "u_>", "u b", "u\r\nPUB x 1"] {
        for interest in [Interest::User(user(id)), Interest::Presence(user(id))] {
            let added = bus.add_interest(interest).await;
            assert!(matches!(added, Err(BusError::Codec { .. })), "{id:?}");
        }
        let batch = vec![deliver_to(&user("u_fine"), 1), deliver(&[user(id)], 2)];
        let published = bus.publish(batch).await;
        assert!(matches!(published, Err(BusError::Codec { .. })), "{id:?}");
        assert!(matches!(
            bus.publish(vec![presence(&user(id))]).await,
            Err(BusError::Codec { .. })
        ));
    }
    bus.publish(vec![membership_changed("c_marker")])
        .await
        .unwrap();
    let first = next_message(&mut observed).await;
    assert_eq!(first.subject.as_str(), format!("parley.{prefix}.all"));
}

/// `remove_interest` unsubscribes on the server (async-nats sends `UNSUB` when the
/// subscription is dropped), and dropping the bus ends its stream and unsubscribes the
/// rest.
#[tokio::test]
async fn removed_interests_and_dropped_buses_leave_no_subscription() {
    let (url, prefix) = (nats_url(), fresh_prefix());
    let raw = raw_client(&url).await;
    let bus = connect(&url, &prefix, "node-a").await;
    let mut events = bus.subscribe().await.unwrap();
    let (bob_subject, carol_subject) = (
        format!("parley.{prefix}.u.u_bob"),
        format!("parley.{prefix}.p.u_carol"),
    );
    bus.add_interest(Interest::User(user("u_bob")))
        .await
        .unwrap();
    bus.add_interest(Interest::Presence(user("u_carol")))
        .await
        .unwrap();
    assert!(has_subscribers(&raw, &bob_subject).await);
    bus.remove_interest(Interest::User(user("u_bob")))
        .await
        .unwrap();
    assert_unsubscribed(&raw, &bob_subject).await;
    assert!(has_subscribers(&raw, &carol_subject).await);

    drop(bus);
    let end = tokio::time::timeout(PATIENCE, events.recv()).await;
    assert!(matches!(end, Ok(None)), "the stream ends with the bus");
    assert_unsubscribed(&raw, &carol_subject).await;
    assert_unsubscribed(&raw, &format!("parley.{prefix}.all")).await;
}

/// Many calls adding one interest at once make one subscription (an event comes once),
/// and a call dropped while adding leaves nothing behind that would block the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_and_cancelled_adds_subscribe_once() {
    let (url, prefix) = (nats_url(), fresh_prefix());
    let bus = Arc::new(connect(&url, &prefix, "node-a").await);
    let mut events = bus.subscribe().await.unwrap();
    let bob = user("u_bob");
    let cancelled = bus.add_interest(Interest::User(bob.clone()));
    assert!(futures::poll!(Box::pin(cancelled)).is_pending());
    let adds: Vec<_> = (0..16)
        .map(|_| {
            let (bus, bob) = (bus.clone(), bob.clone());
            tokio::spawn(async move { bus.add_interest(Interest::User(bob)).await })
        })
        .collect();
    for add in adds {
        add.await.unwrap().unwrap();
    }
    bus.publish(vec![deliver_to(&bob, 1), deliver_to(&bob, 2)])
        .await
        .unwrap();
    assert_eq!(next_event(&mut events).await, deliver_to(&bob, 1));
    assert_eq!(next_event(&mut events).await, deliver_to(&bob, 2), "once");
}

/// A node that does not read loses what does not fit in its stream and counts it as a
/// loss; what it kept comes in order, and new events come once it reads again.
#[tokio::test]
async fn a_node_that_falls_behind_counts_a_loss() {
    let (url, prefix) = (nats_url(), fresh_prefix());
    let options = NatsOptions {
        capacity: 8,
        ..NatsOptions::default()
    };
    let node_b = connect_with(&url, &prefix, "node-b", options).await;
    let node_a = connect(&url, &prefix, "node-a").await;
    let mut events = node_b.subscribe().await.unwrap();
    let mut losses = events.losses();
    let bob = user("u_bob");
    node_b
        .add_interest(Interest::User(bob.clone()))
        .await
        .unwrap();
    let flood = (0..100).map(|number| deliver_to(&bob, number)).collect();
    node_a.publish(flood).await.unwrap();
    tokio::time::timeout(PATIENCE, losses.changed())
        .await
        .expect("a loss is counted")
        .unwrap();
    let mut kept = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(QUIET, events.recv()).await {
        match event {
            BusEvent::Deliver {
                created_at_ms: Some(number),
                ..
            } => kept.push(number),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        kept[..8],
        [0, 1, 2, 3, 4, 5, 6, 7],
        "the first to come are kept"
    );
    assert!(kept.len() < 100, "some were dropped");
    assert!(kept.windows(2).all(|pair| pair[0] < pair[1]), "{kept:?}");
    node_a.publish(vec![deliver_to(&bob, 1000)]).await.unwrap();
    assert_eq!(next_event(&mut events).await, deliver_to(&bob, 1000));
}

/// Messages on our subjects that are not events of that subject (garbage, a kind that
/// belongs elsewhere, another user's close) are dropped; the stream goes on.
#[tokio::test]
async fn foreign_messages_on_our_subjects_are_dropped() {
    let (url, prefix) = (nats_url(), fresh_prefix());
    let raw = raw_client(&url).await;
    let bus = connect(&url, &prefix, "node-a").await;
    let mut events = bus.subscribe().await.unwrap();
    bus.add_interest(Interest::User(user("u_bob")))
        .await
        .unwrap();
    let subject = format!("parley.{prefix}.u.u_bob");
    let wrong_kind = serde_json::to_vec(&presence(&user("u_bob"))).unwrap();
    let other_user = serde_json::to_vec(&BusEvent::CloseDevice {
        user_id: user("u_eve"),
        device_id: "d_1".into(),
    })
    .unwrap();
    for payload in [b"not json".to_vec(), wrong_kind, other_user] {
        raw.publish(subject.clone(), payload.into()).await.unwrap();
    }
    raw.flush().await.unwrap();
    bus.publish(vec![deliver_to(&user("u_bob"), 1)])
        .await
        .unwrap();
    assert_eq!(next_event(&mut events).await, deliver_to(&user("u_bob"), 1));
}

/// Nothing listening at the address: `connect` fails at once (no retry on the first
/// connect), naming the server without the credentials in the URL.
#[tokio::test]
async fn connecting_to_no_server_fails_at_once_without_the_password() {
    let port = free_port();
    let url = format!("nats://parley:s3cret@127.0.0.1:{port}");
    let started = Instant::now();
    let result = tokio::time::timeout(
        PATIENCE,
        NatsBus::connect(&url, "p", support::node("node-a")),
    )
    .await
    .expect("no hang");
    assert!(started.elapsed() < Duration::from_secs(3));
    let error = result.err().expect("no server, no bus");
    let mut text = format!("{error} / {error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text += &format!(" / {cause}");
        source = cause.source();
    }
    assert!(matches!(error, NatsBusError::Connect { .. }), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(
        text.contains(&format!("nats://***@127.0.0.1:{port}")),
        "{text}"
    );

    let bad_prefix = NatsBus::connect(&nats_url(), "a.b", support::node("node-a")).await;
    assert!(matches!(bad_prefix, Err(NatsBusError::InvalidPrefix(_))));
}

/// NATS restarts: while it is down `ping`, `publish` and `add_interest` fail as
/// `Unavailable` within their bounds; when it is back the subscriptions come back by
/// themselves (events flow again with no call from the node) and `losses` has moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_come_back_by_themselves_after_nats_restarts() {
    let mut server = PrivateNats::start().await;
    let prefix = fresh_prefix();
    let node_a = connect(&server.url(), &prefix, "node-a").await;
    let node_b = connect(&server.url(), &prefix, "node-b").await;
    let mut events = node_b.subscribe().await.unwrap();
    let mut losses = events.losses();
    let (bob, carol) = (user("u_bob"), user("u_carol"));
    node_b
        .add_interest(Interest::User(bob.clone()))
        .await
        .unwrap();
    node_b
        .add_interest(Interest::Presence(carol.clone()))
        .await
        .unwrap();
    node_a.publish(vec![deliver_to(&bob, 1)]).await.unwrap();
    assert_eq!(next_event(&mut events).await, deliver_to(&bob, 1));

    server.stop();
    let deadline = Instant::now() + PATIENCE;
    while node_a.ping().await.is_ok() {
        assert!(Instant::now() < deadline, "ping still answers");
    }
    let bounded = |call| async move {
        let started = Instant::now();
        let result = tokio::time::timeout(PATIENCE, call).await.expect("no hang");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "within the bound"
        );
        result
    };
    let published = bounded(node_a.publish(vec![deliver_to(&bob, 2)])).await;
    assert!(matches!(published, Err(BusError::Unavailable { .. })));
    let added = bounded(node_b.add_interest(Interest::User(user("u_dave")))).await;
    assert!(matches!(added, Err(BusError::Unavailable { .. })));
    let pinged = bounded(node_b.ping()).await;
    assert!(matches!(pinged, Err(BusError::Unavailable { .. })));

    server.start_again().await;
    tokio::time::timeout(2 * PATIENCE, losses.changed())
        .await
        .expect("the reconnect counts as a loss")
        .unwrap();
    let deadline = Instant::now() + 2 * PATIENCE;
    while node_a.ping().await.is_err() {
        assert!(Instant::now() < deadline, "node-a reconnects");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = vec![
        deliver_to(&bob, 3),
        presence(&carol),
        membership_changed("c"),
    ];
    node_a.publish(after.clone()).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_event(&mut events).await);
    }
    for event in after {
        assert!(got.contains(&event), "{event:?} in {got:?}");
    }
    node_b
        .add_interest(Interest::User(user("u_dave")))
        .await
        .unwrap();
}

/// A `Deliver` to `broadcast_at` users or more is one NATS message on the subject every
/// node reads: a node gets it once, with only the users it holds (a user it let go no
/// longer counts), and a node holding none of them gets nothing; smaller ones still go
/// per user.
#[tokio::test]
async fn a_big_audience_is_one_message_narrowed_by_each_node() {
    let (url, prefix) = (nats_url(), fresh_prefix());
    let options = || NatsOptions {
        broadcast_at: 4,
        ..NatsOptions::default()
    };
    let node_a = connect_with(&url, &prefix, "node-a", options()).await;
    let node_b = connect_with(&url, &prefix, "node-b", options()).await;
    let node_c = connect_with(&url, &prefix, "node-c", options()).await;
    let mut events_b = node_b.subscribe().await.unwrap();
    let mut events_c = node_c.subscribe().await.unwrap();
    let members: Vec<UserId> = (0..6).map(|index| user(&format!("u_{index}"))).collect();
    for member in &members[..3] {
        node_b
            .add_interest(Interest::User(member.clone()))
            .await
            .unwrap();
    }
    node_b
        .remove_interest(Interest::User(members[2].clone()))
        .await
        .unwrap();
    let outsider = user("u_outsider");
    node_c
        .add_interest(Interest::User(outsider.clone()))
        .await
        .unwrap();
    let observer = raw_client(&url).await;
    let mut wire = observe(&observer, &prefix).await;

    node_a.publish(vec![deliver(&members, 1)]).await.unwrap();
    let on_the_wire = next_message(&mut wire).await;
    assert_eq!(on_the_wire.subject.as_str(), format!("parley.{prefix}.all"));
    assert_eq!(
        next_event(&mut events_b).await,
        deliver(&members[..2], 1),
        "node-b's two held users, once"
    );

    // Below the threshold: per user, as before; and node-c, holding none of the group,
    // got nothing before its own user's marker.
    node_a
        .publish(vec![deliver(&members[..2], 2), deliver_to(&outsider, 3)])
        .await
        .unwrap();
    for expected in [deliver_to(&members[0], 2), deliver_to(&members[1], 2)] {
        assert_eq!(next_event(&mut events_b).await, expected);
    }
    assert_eq!(next_event(&mut events_c).await, deliver_to(&outsider, 3));
    for _ in 0..3 {
        let subject = next_message(&mut wire).await.subject;
        assert!(subject.as_str().contains(".u."), "per user: {subject}");
    }
}
