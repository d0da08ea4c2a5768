//! PostgreSQL becomes unreachable under load (a proxy in front of it is cut): sends are
//! refused with `unavailable`, never acked, nothing is half-stored, and the node takes
//! sends again by itself once the database is back.

use super::*;
use crate::backends::ClusterBackends;
use parley_testkit::services::TcpProxy;
use std::net::SocketAddr;

const OUTAGE: Duration = Duration::from_secs(2);
/// Sends are answered within this even while cut (a pool acquire would wait 10 s).
const REFUSED_WITHIN: Duration = Duration::from_secs(5);
/// Sends issued this long before the repair may be answered either way.
const SETTLE: Duration = Duration::from_millis(300);

/// A `postgres://user@host:port/db?…` URL cut around its `host:port`.
fn split(url: &str) -> (String, String, &str) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host_port)) => (format!("{scheme}://{user}@"), host_port),
        None => (format!("{scheme}://"), authority),
    };
    let host_port = match host_port.contains(':') {
        true => host_port.to_owned(),
        false => format!("{host_port}:5432"),
    };
    (user, host_port, tail)
}

/// The address of the PostgreSQL server `url` names.
async fn address_of(url: &str) -> SocketAddr {
    let (_, host_port, _) = split(url);
    let mut addresses = tokio::net::lookup_host(host_port.as_str())
        .await
        .unwrap_or_else(|error| panic!("resolving PostgreSQL at {host_port}: {error}"));
    addresses
        .next()
        .unwrap_or_else(|| panic!("no address for PostgreSQL at {host_port}"))
}

/// `url` with its host and port replaced by `address`; the query (the test schema's
/// `search_path`) is kept.
fn at(url: &str, address: SocketAddr) -> String {
    let (start, _, tail) = split(url);
    format!("{start}{address}{tail}")
}

/// One node on PostgreSQL through a proxy; Alice sends every 20 ms. The proxy is cut for
/// 2 s: every send issued then is refused with `unavailable` (none acked, none hanging,
/// none stored), `/readyz` is 503 "storage unavailable". After the proxy is restored,
/// with nothing restarted, sends are acked again and `/readyz` is 200; the history holds
/// every acked send once at its `seq`, gap-free, and nothing else but sends refused at the
/// moment of the cut (whose commit may have landed as the connection died), once at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_refuses_sends_and_recovers_without_a_restart() {
    let backends = Arc::new(ClusterBackends::create().await);
    let direct = backends.schema.database_url();
    let proxy = TcpProxy::start(address_of(&direct).await);
    let url = at(&direct, proxy.address());
    let node = TestServer::start_node(Some(backends), "n1", |config| {
        config.database_url = Some(url);
        generous_limits(config);
    })
    .await;
    let [alice, bob] = node.users(["alice", "bob"]).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let alice_socket = Recorder::start(alice.connect().await);

    let phase = Phase::default();
    let load = Sender::start(alice_socket.handle.clone(), id.clone(), "m", phase.clone());
    alice_socket
        .until("acks before the cut", |seen| {
            (seen.acks >= 20).then_some(())
        })
        .await;

    proxy.cut().await;
    let cut = Instant::now();
    phase.set(DURING);
    until_unready(&node.url, "storage unavailable").await;
    tokio::time::sleep_until(cut + OUTAGE).await;
    phase.set(SETTLING);
    tokio::time::sleep(SETTLE).await;
    proxy.restore();
    phase.set(AFTER);
    until_ready(&node.url).await;
    let after_restore = within(
        "a send after the restore",
        alice_socket
            .handle
            .send_and_wait(id.clone(), "after the restore"),
    )
    .await
    .expect("acked again after the restore, nothing restarted");
    let acks = alice_socket.seen(|seen| seen.acks);
    alice_socket
        .until("load acked again", |seen| {
            (seen.acks >= acks + 20).then_some(())
        })
        .await;
    let sent = load.finish().await;

    sent.assert_answered(&[ErrorCode::Unavailable]);
    assert!(
        sent.slowest < REFUSED_WITHIN,
        "refused at once, not after a pool timeout: {:?}",
        sent.slowest
    );
    assert!(sent.unknown.is_empty(), "{:?}", sent.unknown);
    assert_eq!(
        sent.acked_in(DURING),
        0,
        "a send acked while PostgreSQL was cut"
    );
    let refused_during: Vec<&Issued> = (sent.refused.iter())
        .filter(|(send, _)| send.phase == DURING)
        .map(|(send, _)| send)
        .collect();
    assert!(
        refused_during.len() >= 20,
        "sends were refused during the cut ({})",
        refused_during.len()
    );
    let history = full_history(&alice.client, &id).await;
    let stored = check_history(&history, &[&sent]);
    assert_eq!(stored.get("after the restore"), Some(&1));
    assert_eq!(
        history[after_restore.seq as usize - 1].content,
        "after the restore"
    );
    let mut landed_anyway = 0;
    for (send, _) in &sent.refused {
        let copies = stored.get(&send.content).copied().unwrap_or(0);
        match send.phase {
            DURING => assert_eq!(copies, 0, "refused during the cut, yet stored: {send:?}"),
            _ => assert!(copies <= 1, "stored twice: {send:?}"),
        }
        landed_anyway += copies;
    }
    assert_eq!(
        history.len(),
        sent.acked.len() + 1 + landed_anyway,
        "nothing stored but acked sends and refused ones whose commit landed"
    );
    eprintln!(
        "postgres: {} acked, {} refused ({} during the cut), {landed_anyway} refused yet stored, slowest answer {:?}",
        sent.acked.len(),
        sent.refused.len(),
        refused_during.len(),
        sent.slowest
    );
}
