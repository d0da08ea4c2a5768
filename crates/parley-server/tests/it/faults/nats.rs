//! NATS dies and comes back under load: the bus is only the doorbell, so sends go on being
//! acked, nothing is lost, and the receiver's node repairs what it missed by itself.

use super::*;
use crate::cluster::TestCluster;
use parley_testkit::services::PrivateNats;

/// How long NATS stays down.
const OUTAGE: Duration = Duration::from_secs(2);

/// Alice (n1) sends to Bob (n2) every 20 ms while their private NATS is killed for 2 s and
/// started again: every send is acked, those of the outage while NATS is still down (the
/// committer never waits for the bus), and stored once with gap-free `seq`s; `/readyz`
/// says "message bus unavailable" during the outage and 200 after. The periodic position
/// check is off, so what the outage swallowed can reach Bob's socket only through the
/// check n2 runs after its NATS connection comes back, and it must; then messages sent one
/// after another each reach Bob, which only live delivery can do (the one check after the
/// loss is spent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_under_load_loses_nothing_and_heals_by_itself() {
    let mut nats = PrivateNats::start().await;
    let nats_url = nats.url();
    let cluster = TestCluster::start_with(2, |config| {
        config.nats_url = Some(nats_url.clone());
        config.position_check_secs = 0;
        generous_limits(config);
    })
    .await;
    let [alice, bob] = cluster.nodes[0].users(["alice", "bob"]).await;
    let bob = cluster.on(1, &bob).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let alice_socket = Recorder::start(alice.connect().await);
    let bob_socket = Recorder::start(bob.connect().await);
    bob_socket
        .until("bob's first sync", |seen| {
            (seen.sync_dones > 0).then_some(())
        })
        .await;

    let phase = Phase::default();
    let load = Sender::start(alice_socket.handle.clone(), id.clone(), "m", phase.clone());
    bob_socket
        .until("live messages before the outage", |seen| {
            (seen.seqs(&id).len() >= 20).then_some(())
        })
        .await;

    nats.stop();
    let stopped = Instant::now();
    phase.set(DURING);
    until_unready(&cluster.nodes[0].url, "message bus unavailable").await;
    tokio::time::sleep_until(stopped + OUTAGE).await;
    phase.set(AFTER);
    let restarting = Instant::now();
    nats.start_again().await;
    let restarted = Instant::now();
    for node in &cluster.nodes {
        until_ready(&node.url).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = load.finish().await;

    sent.assert_answered(&[]);
    assert!(
        sent.refused.is_empty() && sent.unknown.is_empty(),
        "{sent:?}"
    );
    // The committer never waits for the bus: sends made while NATS was down were acked
    // while it was still down.
    let acked_while_down = (sent.acked.iter())
        .filter(|(send, _, at)| send.phase == DURING && *at < restarting)
        .count();
    assert!(
        acked_while_down >= 20,
        "sends acked while NATS was down: {acked_while_down} of {}",
        sent.acked_in(DURING)
    );
    let history = full_history(&alice.client, &id).await;
    check_history(&history, &[&sent]);
    assert_eq!(history.len(), sent.acked.len(), "only acked sends stored");

    let every: Vec<i64> = (1..=history.len() as i64).collect();
    bob_socket
        .until("bob's socket holds every acked message", |seen| {
            (seen.seqs(&id) == every).then_some(())
        })
        .await;
    eprintln!(
        "nats: {} acked ({acked_while_down} while NATS was down, slowest by phase {:?}); \
         bob complete {:?} after the restart",
        sent.acked.len(),
        sent.slowest_by_phase,
        restarted.elapsed()
    );

    // Deliveries recovered by themselves. One after another: a check pending from the
    // loss could resend at most the first (it resends only what was stored when it looked,
    // 2 s before it resends), so the others come live or not at all.
    let mut latencies = Vec::new();
    for number in 1..=3 {
        let sending = Instant::now();
        let ack = within(
            "an ack after the restart",
            alice_socket
                .handle
                .send_and_wait(id.clone(), format!("after {number}")),
        )
        .await
        .expect("acked after the restart");
        let arrived = bob_socket
            .until("a live message after the restart", |seen| {
                seen.messages.get(&id)?.get(&ack.seq).copied()
            })
            .await;
        latencies.push(arrived - sending);
    }
    eprintln!("nats: live again, latencies {latencies:?}");
}
