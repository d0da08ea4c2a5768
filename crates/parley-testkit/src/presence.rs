//! The `PresenceRegistry` conformance suite. Each function checks one behaviour on a fresh
//! registry: three nodes' handles on it (`node-a`, `node-b`, `node-c`, as in
//! [`crate::bus::node_ids`]) and the lease they were made with ([`LEASE`]).
//!
//! Leases run on the real clock, as they would against a network backend: a node "dies"
//! by not heartbeating, and cases wait the lease plus [`LAPSE`] for its lease to run out. Nodes that must
//! stay alive meanwhile heartbeat in the background ([`keep_alive`]) at a third of the
//! lease. A node that starts a new lease does not revive the connections of its
//! lapsed one.

use parley_core::bus::ConnectionId;
use parley_core::presence::{Departure, Lease, PresenceRegistry};
use parley_proto::{DeviceId, UserId};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The lease every case's registry is made with.
pub const LEASE: Duration = Duration::from_millis(300);

/// How long past the lease a case waits before it counts a silent node's lease as lapsed:
/// room for a slow machine or a backend whose expiry is not exact.
pub const LAPSE: Duration = Duration::from_millis(500);

/// Connection `serial` of `registry`'s node.
pub fn connection(registry: &Arc<dyn PresenceRegistry>, serial: u64) -> ConnectionId {
    ConnectionId {
        node: registry.node_id().clone(),
        serial,
    }
}

fn user(name: &str) -> UserId {
    UserId::from(name)
}

fn device(name: &str) -> DeviceId {
    DeviceId::from(name)
}

/// A node heartbeating in the background until stopped or dropped. Start it after the
/// node's first `connect`, which starts its lease.
pub struct Heartbeats(Option<tokio::task::JoinHandle<()>>);

/// Keeps `registry`'s node alive: a heartbeat every third of the lease, each of which
/// must find the lease still live.
pub fn keep_alive(registry: &Arc<dyn PresenceRegistry>, lease: Duration) -> Heartbeats {
    let registry = registry.clone();
    Heartbeats(Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(lease / 3).await;
            let renewal = registry.heartbeat().await.expect("heartbeat");
            assert_eq!(
                renewal,
                Lease::Renewed,
                "{} heartbeats within its lease",
                registry.node_id()
            );
        }
    })))
}

impl Heartbeats {
    /// Stops heartbeating; fails the case if a heartbeat failed.
    pub async fn stop(mut self) {
        let Some(handle) = self.0.take() else { return };
        handle.abort();
        if let Err(error) = handle.await {
            if error.is_panic() {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

/// `connect` is `true` only for a user's first live connection across all nodes: that
/// is when `online` is announced, once.
pub async fn connect_reports_only_the_first_live_connection(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    _lease: Duration,
) {
    let (a, b) = (&registries[0], &registries[1]);
    let (alice, bob) = (user("u_alice"), user("u_bob"));
    assert!(a
        .connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap());
    assert!(!b
        .connect(&connection(b, 1), &alice, &device("d_laptop"))
        .await
        .unwrap());
    assert!(
        !a.connect(&connection(a, 2), &alice, &device("d_phone"))
            .await
            .unwrap(),
        "a second tab of the same device"
    );
    assert!(b
        .connect(&connection(b, 2), &bob, &device("d_desk"))
        .await
        .unwrap());
    assert_eq!(
        registries[2]
            .online(&[alice, bob, user("u_carol")])
            .await
            .unwrap(),
        vec![true, true, false],
        "seen from a third node"
    );
}

/// `disconnect` is `true` only for a user's last live connection across all nodes: that
/// is when `offline` is announced, once.
pub async fn disconnect_reports_only_the_last_live_connection(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    _lease: Duration,
) {
    let (a, b) = (&registries[0], &registries[1]);
    let alice = user("u_alice");
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    b.connect(&connection(b, 1), &alice, &device("d_laptop"))
        .await
        .unwrap();
    a.connect(&connection(a, 2), &alice, &device("d_phone"))
        .await
        .unwrap();
    assert!(!a.disconnect(&connection(a, 1), &alice).await.unwrap());
    assert!(!b.disconnect(&connection(b, 1), &alice).await.unwrap());
    assert_eq!(
        registries[2]
            .online(std::slice::from_ref(&alice))
            .await
            .unwrap(),
        [true]
    );
    assert!(a.disconnect(&connection(a, 2), &alice).await.unwrap());
    assert_eq!(
        registries[2]
            .online(std::slice::from_ref(&alice))
            .await
            .unwrap(),
        [false]
    );
    assert!(
        !a.disconnect(&connection(a, 2), &alice).await.unwrap(),
        "a second disconnect of the same connection announces nothing"
    );
}

/// Unknown connections are not an error: `false`, and nothing changes (a socket that
/// closes before it registered, or after a reap removed it).
pub async fn disconnecting_an_unknown_connection_is_not_an_error(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    _lease: Duration,
) {
    let a = &registries[0];
    let alice = user("u_alice");
    assert!(!a
        .disconnect(&connection(a, 7), &user("u_nobody"))
        .await
        .unwrap());
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    assert!(!a.disconnect(&connection(a, 2), &alice).await.unwrap());
    assert!(
        !a.disconnect(&connection(&registries[1], 1), &alice)
            .await
            .unwrap(),
        "same serial, other node: another connection"
    );
    assert_eq!(a.online(&[alice]).await.unwrap(), [true]);
}

/// `online` answers one flag per user asked, in the order asked, repeats and unknown users
/// included (the caller zips the answer with its list).
pub async fn online_answers_in_the_order_asked(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    _lease: Duration,
) {
    let (a, b) = (&registries[0], &registries[1]);
    let (alice, bob, carol) = (user("u_alice"), user("u_bob"), user("u_carol"));
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    b.connect(&connection(b, 1), &bob, &device("d_desk"))
        .await
        .unwrap();
    b.disconnect(&connection(b, 1), &bob).await.unwrap();
    b.connect(&connection(b, 2), &carol, &device("d_tab"))
        .await
        .unwrap();
    assert_eq!(
        registries[2]
            .online(&[
                user("u_unknown"),
                alice.clone(),
                bob.clone(),
                carol.clone(),
                alice.clone(),
                bob,
            ])
            .await
            .unwrap(),
        vec![false, true, false, true, true, false]
    );
    assert!(registries[2].online(&[]).await.unwrap().is_empty());
}

/// `online_devices` names each device with a live connection once, however many tabs and
/// nodes it has, and no device whose connections are all gone.
pub async fn online_devices_lists_each_device_once(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    _lease: Duration,
) {
    let (a, b) = (&registries[0], &registries[1]);
    let alice = user("u_alice");
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    b.connect(&connection(b, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    a.connect(&connection(a, 2), &alice, &device("d_phone"))
        .await
        .unwrap();
    a.connect(&connection(a, 3), &alice, &device("d_laptop"))
        .await
        .unwrap();
    let mut devices = registries[2].online_devices(&alice).await.unwrap();
    devices.sort();
    assert_eq!(devices, vec![device("d_laptop"), device("d_phone")]);
    a.disconnect(&connection(a, 3), &alice).await.unwrap();
    assert_eq!(
        registries[2].online_devices(&alice).await.unwrap(),
        vec![device("d_phone")]
    );
    assert!(registries[2]
        .online_devices(&user("u_nobody"))
        .await
        .unwrap()
        .is_empty());
}

/// Heartbeats well within the lease keep a node's connections alive for as long as they
/// come: each answers `Renewed`, the users stay online, and nothing is reaped.
pub async fn heartbeats_keep_connections_alive_past_the_lease(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    lease: Duration,
) {
    let a = &registries[0];
    let alice = user("u_alice");
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    while started.elapsed() < lease * 3 {
        tokio::time::sleep(lease / 3).await;
        assert_eq!(a.heartbeat().await.unwrap(), Lease::Renewed);
        assert_eq!(
            registries[1]
                .online(std::slice::from_ref(&alice))
                .await
                .unwrap(),
            [true]
        );
    }
    assert!(registries[1].reap().await.unwrap().is_empty());
    assert_eq!(
        registries[1].online_devices(&alice).await.unwrap(),
        vec![device("d_phone")]
    );
}

/// A node that stops heartbeating (it died, or is cut off): once its lease lapses its
/// connections stop counting at once, before anyone reaps, so nobody is shown online
/// behind a dead node.
pub async fn a_silent_nodes_users_are_offline_after_its_lease(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    lease: Duration,
) {
    let (a, b) = (&registries[0], &registries[1]);
    let (alice, bob) = (user("u_alice"), user("u_bob"));
    b.connect(&connection(b, 1), &bob, &device("d_desk"))
        .await
        .unwrap();
    let heartbeats = keep_alive(b, lease);
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    a.connect(&connection(a, 2), &bob, &device("d_phone"))
        .await
        .unwrap();
    assert_eq!(
        b.online(&[alice.clone(), bob.clone()]).await.unwrap(),
        [true, true]
    );
    tokio::time::sleep(lease + LAPSE).await;
    assert_eq!(
        b.online(&[alice.clone(), bob.clone()]).await.unwrap(),
        [false, true],
        "alice only had a connection on the silent node"
    );
    assert!(b.online_devices(&alice).await.unwrap().is_empty());
    assert_eq!(
        b.online_devices(&bob).await.unwrap(),
        vec![device("d_desk")],
        "bob's phone was on the silent node"
    );
    heartbeats.stop().await;
}

/// `reap` removes a lapsed node's connections and reports each user left with no live
/// connection exactly once across all callers, even when several nodes reap at once;
/// users still connected on a live node stay online and are not reported.
pub async fn reap_reports_each_departure_once(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    lease: Duration,
) {
    let (a, b, c) = (&registries[0], &registries[1], &registries[2]);
    let (alice, bob, carol) = (user("u_alice"), user("u_bob"), user("u_carol"));
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    a.connect(&connection(a, 2), &alice, &device("d_laptop"))
        .await
        .unwrap();
    a.connect(&connection(a, 3), &bob, &device("d_phone"))
        .await
        .unwrap();
    b.connect(&connection(b, 1), &bob, &device("d_desk"))
        .await
        .unwrap();
    c.connect(&connection(c, 1), &carol, &device("d_tab"))
        .await
        .unwrap();
    let heartbeats_b = keep_alive(b, lease);
    let heartbeats_c = keep_alive(c, lease);
    tokio::time::sleep(lease + LAPSE).await;
    let (from_b, from_c) = tokio::join!(b.reap(), c.reap());
    let mut departures: Vec<Departure> = from_b.unwrap();
    departures.extend(from_c.unwrap());
    assert_eq!(
        departures,
        vec![Departure {
            user_id: alice.clone(),
            node: a.node_id().clone(),
        }],
        "alice once (two connections, one departure); bob and carol are on live nodes"
    );
    assert!(b.reap().await.unwrap().is_empty(), "reported once");
    assert!(c.reap().await.unwrap().is_empty(), "reported once");
    assert_eq!(
        c.online(&[alice.clone(), bob.clone(), carol.clone()])
            .await
            .unwrap(),
        [false, true, true]
    );
    assert!(
        !a.disconnect(&connection(a, 1), &alice).await.unwrap(),
        "the reaped connection is gone: its late close announces nothing again"
    );
    heartbeats_b.stop().await;
    heartbeats_c.stop().await;
}

/// A user whose last connection closes on a lapsed node is announced offline once:
/// either that `disconnect` says so or a `reap` does, never both, never neither.
pub async fn a_departure_is_reported_by_disconnect_or_reap_not_both(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    lease: Duration,
) {
    let (a, c) = (&registries[0], &registries[2]);
    let (alice, bob) = (user("u_alice"), user("u_bob"));
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    a.connect(&connection(a, 2), &bob, &device("d_phone"))
        .await
        .unwrap();
    tokio::time::sleep(lease + LAPSE).await;
    // The slow node closes bob's socket before anyone reaps, and alice's after.
    let bob_by_disconnect = a.disconnect(&connection(a, 2), &bob).await.unwrap();
    let departures = c.reap().await.unwrap();
    let alice_by_disconnect = a.disconnect(&connection(a, 1), &alice).await.unwrap();
    let reaped: HashSet<&UserId> = departures
        .iter()
        .map(|departure| &departure.user_id)
        .collect();
    assert_eq!(departures.len(), reaped.len(), "{departures:?}");
    assert!(
        bob_by_disconnect != reaped.contains(&bob),
        "bob once: disconnect {bob_by_disconnect}, reap {departures:?}"
    );
    assert!(
        alice_by_disconnect != reaped.contains(&alice),
        "alice once: disconnect {alice_by_disconnect}, reap {departures:?}"
    );
    assert!(c.reap().await.unwrap().is_empty());
}

/// A `connect` that arrives after the lease lapsed, before the next heartbeat, starts a
/// new term: the connections of the old one no longer count, so that heartbeat answers
/// `Lost` although it finds a live lease. Registering them again brings them back.
pub async fn a_connect_after_a_lapse_makes_the_next_heartbeat_lost(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    lease: Duration,
) {
    let (a, b) = (&registries[0], &registries[1]);
    let (alice, bob) = (user("u_alice"), user("u_bob"));
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    assert_eq!(a.heartbeat().await.unwrap(), Lease::Renewed);
    tokio::time::sleep(lease + LAPSE).await;
    assert!(
        a.connect(&connection(a, 2), &bob, &device("d_desk"))
            .await
            .unwrap(),
        "bob's first connection"
    );
    assert_eq!(
        b.online(&[alice.clone(), bob.clone()]).await.unwrap(),
        [false, true],
        "alice's connection sits in the lapsed term"
    );
    assert_eq!(
        a.heartbeat().await.unwrap(),
        Lease::Lost,
        "the node must register alice's socket again"
    );
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    assert_eq!(a.heartbeat().await.unwrap(), Lease::Renewed);
    assert_eq!(
        b.online(&[alice.clone(), bob.clone()]).await.unwrap(),
        [true, true]
    );
}

/// A node whose lease lapsed learns it on its next heartbeat (`Lost`), whether or not it
/// was reaped meanwhile, and then has a new lease: once it registers its connections
/// again they count, and its next heartbeat is `Renewed`.
pub async fn a_lapsed_node_gets_lost_then_a_new_lease(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    lease: Duration,
) {
    let (a, b, c) = (&registries[0], &registries[1], &registries[2]);
    let (alice, bob) = (user("u_alice"), user("u_bob"));
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    b.connect(&connection(b, 1), &bob, &device("d_desk"))
        .await
        .unwrap();
    tokio::time::sleep(lease + LAPSE).await;

    // Node a: lapsed, not reaped.
    assert_eq!(a.heartbeat().await.unwrap(), Lease::Lost);
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    assert_eq!(a.heartbeat().await.unwrap(), Lease::Renewed);
    let heartbeats_a = keep_alive(a, lease);

    // Node b: lapsed and reaped before its heartbeat.
    let departures = c.reap().await.unwrap();
    assert_eq!(
        departures,
        vec![Departure {
            user_id: bob.clone(),
            node: b.node_id().clone(),
        }],
        "alice is registered again on a live lease"
    );
    assert_eq!(b.heartbeat().await.unwrap(), Lease::Lost);
    assert!(
        b.connect(&connection(b, 1), &bob, &device("d_desk"))
            .await
            .unwrap(),
        "bob was reaped, so this is his first live connection again"
    );
    assert_eq!(b.heartbeat().await.unwrap(), Lease::Renewed);
    let heartbeats_b = keep_alive(b, lease);
    assert_eq!(
        c.online(&[alice.clone(), bob.clone()]).await.unwrap(),
        [true, true]
    );
    heartbeats_a.stop().await;
    heartbeats_b.stop().await;
}

/// A node whose lease lapsed (cut off, or restarted under the same id) does not bring its
/// old connections back to life by starting a new lease: only what it registers again
/// counts, and the old ones are reaped (their users reported once).
pub async fn a_new_lease_does_not_revive_old_connections(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    lease: Duration,
) {
    let (a, c) = (&registries[0], &registries[2]);
    let (alice, bob) = (user("u_alice"), user("u_bob"));
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    tokio::time::sleep(lease + LAPSE).await;
    // The node comes back and registers only bob (alice's socket died with it).
    assert!(a
        .connect(&connection(a, 2), &bob, &device("d_desk"))
        .await
        .unwrap());
    let heartbeats = keep_alive(a, lease);
    assert_eq!(
        c.online(&[alice.clone(), bob.clone()]).await.unwrap(),
        [false, true],
        "alice's connection belonged to the lapsed lease"
    );
    assert_eq!(
        c.reap().await.unwrap(),
        vec![Departure {
            user_id: alice.clone(),
            node: a.node_id().clone(),
        }]
    );
    assert!(c.reap().await.unwrap().is_empty());
    heartbeats.stop().await;
}

/// A user with a live connection on one node and a dead one on a lapsed node: when the
/// live one closes, the offline is announced there, and `reap` does not report the user
/// again for the dead one.
pub async fn an_offline_is_announced_once_with_a_dead_connection_left(
    registries: Vec<Arc<dyn PresenceRegistry>>,
    lease: Duration,
) {
    let (a, b, c) = (&registries[0], &registries[1], &registries[2]);
    let alice = user("u_alice");
    a.connect(&connection(a, 1), &alice, &device("d_phone"))
        .await
        .unwrap();
    b.connect(&connection(b, 1), &alice, &device("d_desk"))
        .await
        .unwrap();
    let heartbeats = keep_alive(b, lease);
    tokio::time::sleep(lease + LAPSE).await;
    assert!(
        b.disconnect(&connection(b, 1), &alice).await.unwrap(),
        "her last live connection"
    );
    assert!(
        c.reap().await.unwrap().is_empty(),
        "already announced by disconnect"
    );
    assert_eq!(
        c.online(std::slice::from_ref(&alice)).await.unwrap(),
        [false]
    );
    heartbeats.stop().await;
}
