//! Redis dies and comes back empty under load: sends are acked or refused with
//! `unavailable` (the rate limiter cannot be asked), never left hanging, nothing acked is
//! lost, and presence heals once each node's heartbeat finds its lease gone.

use super::*;
use crate::cluster::TestCluster;
use parley_testkit::services::PrivateRedis;

const OUTAGE: Duration = Duration::from_secs(2);
const LEASE_SECS: u64 = 2;
/// Beyond the lease: Redis's reconnect and a loaded machine.
const MARGIN: Duration = Duration::from_secs(2);
/// The longest a send may wait for its answer while Redis is down: one call that finds it
/// down (the client's reconnect attempts), or a probe; every other call fails at once.
const SLOWEST_ANSWER: Duration = Duration::from_millis(1500);

/// Alice (n1) sends to Bob (n2) every 20 ms while their private Redis is killed for 2 s
/// and started again with nothing in it. Every send is answered: acked, or refused with
/// `unavailable` while the limiter is unreachable (some must be); refused sends are not
/// stored, acked ones are stored once, gap-free, and reach Bob. `/readyz` is 503 naming
/// the Redis-backed port during the outage and 200 after. Carol (n1), watching Bob, sees
/// him online again within the lease after Redis is back, though Redis forgot him.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_load_refuses_cleanly_and_presence_heals() {
    let mut redis = PrivateRedis::start().await;
    let redis_url = redis.url();
    let cluster = TestCluster::start_with(2, |config| {
        config.redis_url = Some(redis_url.clone());
        config.presence_lease_secs = LEASE_SECS;
        generous_limits(config);
    })
    .await;
    let [alice, bob, carol] = cluster.nodes[0].users(["alice", "bob", "carol"]).await;
    let bob = cluster.on(1, &bob).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let alice_socket = Recorder::start(alice.connect().await);
    let bob_socket = Recorder::start(bob.connect().await);
    let carol_socket = Recorder::start(carol.connect().await);
    let watched = vec![bob.user_id.clone()];
    let start = Instant::now();
    carol_socket
        .handle
        .presence_subscribe(watched.clone())
        .unwrap();
    carol_socket
        .until("carol sees bob online", |seen| {
            seen.presence_since(&bob.user_id, PresenceStatus::Online, start)
        })
        .await;

    let phase = Phase::default();
    let load = Sender::start(alice_socket.handle.clone(), id.clone(), "m", phase.clone());
    bob_socket
        .until("live messages before the outage", |seen| {
            (seen.seqs(&id).len() >= 20).then_some(())
        })
        .await;

    redis.stop();
    let stopped = Instant::now();
    phase.set(DURING);
    let body = until_unready(&cluster.nodes[0].url, "unavailable").await;
    assert!(
        body.contains("presence registry unavailable") || body.contains("rate limiter unavailable"),
        "/readyz names the Redis-backed port: {body}"
    );
    tokio::time::sleep_until(stopped + OUTAGE).await;
    phase.set(AFTER);
    redis.start_again().await;
    let restarted = Instant::now();

    // Redis came back empty: Bob is online again only once n2 registers him again.
    let online_again = eventually(
        "carol sees bob online again",
        Duration::from_millis(200),
        || {
            let _ = carol_socket.handle.presence_subscribe(watched.clone());
            let seen = carol_socket
                .seen(|seen| seen.presence_since(&bob.user_id, PresenceStatus::Online, restarted));
            std::future::ready(seen)
        },
    )
    .await;
    let healed = online_again - restarted;
    assert!(
        healed <= Duration::from_secs(LEASE_SECS) + MARGIN,
        "presence healed after {healed:?}, lease {LEASE_SECS} s"
    );
    for node in &cluster.nodes {
        until_ready(&node.url).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = load.finish().await;

    sent.assert_answered(&[ErrorCode::Unavailable]);
    // A socket admits its sends one at a time. Once a call has found Redis down, the
    // others fail at once (a probe every 250 ms), so the outage's sends are refused at
    // the pace they come instead of waiting in line for Redis to return.
    assert!(
        sent.slowest <= SLOWEST_ANSWER,
        "a send waited {:?}",
        sent.slowest
    );
    let outage_sends = OUTAGE.as_millis() / 20;
    assert!(
        sent.refused.len() as u128 >= outage_sends / 3,
        "most sends of the outage are refused at once: {} of about {outage_sends}",
        sent.refused.len()
    );
    assert!(sent.unknown.is_empty(), "{:?}", sent.unknown);
    assert!(
        !sent.refused.is_empty(),
        "sends were refused while the limiter was unreachable"
    );
    assert!(
        sent.acked_in(AFTER) >= 10,
        "sends are acked again after the restart ({})",
        sent.acked_in(AFTER)
    );
    let history = full_history(&alice.client, &id).await;
    let stored = check_history(&history, &[&sent]);
    for (send, _) in &sent.refused {
        assert_eq!(
            stored.get(&send.content),
            None,
            "refused {send:?} is stored"
        );
    }
    assert_eq!(history.len(), sent.acked.len(), "only acked sends stored");
    let every: Vec<i64> = (1..=history.len() as i64).collect();
    bob_socket
        .until("bob's socket holds every acked message", |seen| {
            (seen.seqs(&id) == every).then_some(())
        })
        .await;
    eprintln!(
        "redis: {} acked, {} refused, slowest answer {:?}; presence healed {healed:?} after the restart",
        sent.acked.len(),
        sent.refused.len(),
        sent.slowest
    );
}
