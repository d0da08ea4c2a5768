//! A node process is killed (`kill -9`) under load in a cluster of three: nothing acked is
//! lost, its clients reconnect to a survivor and resend what was never answered without
//! duplicates, and its users go offline within a lease, then online again.

use super::*;
use crate::backends::ClusterBackends;
use crate::binary::spawn_binary;
use parley_proto::frames::Cursors;
use parley_sdk::OutgoingMessage;
use std::process::Child;

const LEASE_SECS: u64 = 3;
/// Beyond the lease: a survivor's reap runs every lease / 3, and a loaded machine.
const MARGIN: Duration = Duration::from_secs(3);

/// A `parley serve` child process, a node of one cluster, killed when dropped.
struct Node {
    url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn spawn(backends: &ClusterBackends, node_id: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(&'static str, String)> = vec![
            ("PARLEY_DATABASE_URL", backends.schema.database_url()),
            ("PARLEY_NATS_URL", backends.nats_url.clone()),
            ("PARLEY_REDIS_URL", backends.redis_url.clone()),
            ("PARLEY_CLUSTER_NAME", backends.cluster_name.clone()),
            ("PARLEY_NODE_ID", node_id.to_owned()),
            ("PARLEY_PRESENCE_LEASE_SECS", LEASE_SECS.to_string()),
        ];
        let path = dir.path().to_path_buf();
        let (child, url) = within(
            "a node process starts",
            tokio::task::spawn_blocking(move || spawn_binary(&path, &env)),
        )
        .await
        .expect("the node process starts");
        Self {
            url,
            child,
            _dir: dir,
        }
    }

    /// A client of this node with `token`.
    fn client(&self, token: String) -> Client {
        Client::new(&self.url).unwrap().with_token(token)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A socket on one node with no reconnect of its own (its node may die).
async fn open_socket(client: &Client, cursors: Cursors) -> Recorder {
    Recorder::start(
        connect_with(client, |config| {
            config.reconnect = false;
            config.initial_cursors = cursors;
        })
        .await,
    )
}

/// Three node processes; a watcher on n1 and senders a (n1), b (n2), c and d (n3), each in
/// a direct chat with the watcher, sending every 20 ms. n3 is killed with SIGKILL. Then:
/// c and d go offline for the watcher within the lease (+ margin); they reconnect to n2
/// with their saved cursors, resend every send n3 never answered with its
/// `client_msg_id`, and show online again. In every conversation each acked message is
/// stored once at its `seq`, gap-free, and the watcher holds all of them after a `sync`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing_and_its_users_move_to_a_survivor() {
    let backends = ClusterBackends::create().await;
    let mut nodes = Vec::new();
    for node_id in ["n1", "n2", "n3"] {
        nodes.push(Node::spawn(&backends, node_id).await);
    }
    let watcher = Client::new(&nodes[0].url).unwrap();
    watcher
        .register("watcher", "password-123", None)
        .await
        .unwrap();
    let mut senders = Vec::new(); // (name, user, client, conversation)
    for (name, node) in [("a", 0), ("b", 1), ("c", 2), ("d", 2)] {
        let client = Client::new(&nodes[node].url).unwrap();
        let username = format!("sender_{name}");
        let auth = client
            .register(&username, "password-123", None)
            .await
            .unwrap();
        let conversation = watcher.create_direct(&auth.user_id).await.unwrap();
        senders.push((name, auth.user_id, client, conversation.conversation_id));
    }
    let watcher_socket = open_socket(&watcher, Cursors::new()).await;
    let user_ids: Vec<UserId> = senders.iter().map(|(_, id, _, _)| id.clone()).collect();
    let mut sockets = Vec::new();
    for (_, _, client, _) in &senders {
        sockets.push(open_socket(client, Cursors::new()).await);
    }
    let start = Instant::now();
    watcher_socket
        .handle
        .presence_subscribe(user_ids.clone())
        .unwrap();
    for user_id in &user_ids {
        watcher_socket
            .until("the watcher sees every sender online", |seen| {
                seen.presence_since(user_id, PresenceStatus::Online, start)
            })
            .await;
    }

    let phase = Phase::default();
    let mut loads: Vec<Sender> = (senders.iter().zip(&sockets))
        .map(|((name, _, _, id), socket)| {
            Sender::start(socket.handle.clone(), id.clone(), name, phase.clone())
        })
        .collect();
    for (_, _, _, id) in &senders {
        watcher_socket
            .until("live messages from every node", |seen| {
                (seen.seqs(id).len() >= 20).then_some(())
            })
            .await;
    }
    // c and d save their cursors, as an app does, to resume on another node.
    let mut saved = Vec::new();
    for socket in &sockets[2..] {
        saved.push(within("cursors", socket.handle.cursors()).await.unwrap());
    }

    nodes[2].child.kill().expect("kill -9 n3");
    nodes[2].child.wait().unwrap();
    let killed = Instant::now();
    phase.set(DURING);
    let d_load = loads.pop().unwrap();
    let c_load = loads.pop().unwrap();
    let mut lost = vec![c_load.finish().await, d_load.finish().await];
    for sent in &lost {
        sent.assert_answered(&[]);
    }

    // The dead node's users go offline within the lease, as a survivor's reap finds it.
    for (_, user_id, _, _) in &senders[2..] {
        let offline = watcher_socket
            .until("the dead node's users go offline", |seen| {
                seen.presence_since(user_id, PresenceStatus::Offline, killed)
            })
            .await;
        assert!(
            offline - killed <= Duration::from_secs(LEASE_SECS) + MARGIN,
            "offline after {:?}, lease {LEASE_SECS} s",
            offline - killed
        );
    }
    eprintln!("node loss: offline {:?} after the kill", killed.elapsed());

    // They reconnect to n2 from their saved cursors and resend what was never answered.
    let moved = Instant::now();
    phase.set(AFTER);
    let mut resumed = Vec::new();
    let mut resent = 0;
    for (((name, user_id, client, id), cursors), sent) in
        senders[2..].iter().zip(saved).zip(&mut lost)
    {
        let socket = open_socket(&nodes[1].client(client.token().unwrap()), cursors).await;
        socket
            .until("the resumed socket syncs", |seen| {
                (seen.sync_dones > 0).then_some(())
            })
            .await;
        for send in std::mem::take(&mut sent.unknown) {
            resent += 1;
            let resend = OutgoingMessage {
                client_msg_id: Some(send.client_msg_id.clone()),
                ..OutgoingMessage::text(id.clone(), send.content.clone())
            };
            let handle = socket.handle.send_message(resend).unwrap();
            let ack = within("a resend's ack", handle.ack()).await;
            let seq = ack.expect("a resend is acked").seq;
            sent.acked.push((send, seq, Instant::now()));
        }
        watcher_socket
            .until("the moved users are online again", |seen| {
                seen.presence_since(user_id, PresenceStatus::Online, moved)
            })
            .await;
        let label = format!("{name} again");
        loads.push(Sender::start(
            socket.handle.clone(),
            id.clone(),
            &label,
            phase.clone(),
        ));
        resumed.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut outcomes: Vec<Sent> = Vec::new();
    for load in loads {
        outcomes.push(load.finish().await);
    }
    let before = watcher_socket.seen(|seen| seen.sync_dones);
    watcher_socket.handle.sync().unwrap();
    watcher_socket
        .until("the watcher's sync on a survivor", |seen| {
            (seen.sync_dones > before).then_some(())
        })
        .await;

    // a and b: one load each; c and d: before the kill (with resends), then on n2.
    let by_conversation: [Vec<&Sent>; 4] = [
        vec![&outcomes[0]],
        vec![&outcomes[1]],
        vec![&lost[0], &outcomes[2]],
        vec![&lost[1], &outcomes[3]],
    ];
    let reader = nodes[1].client(watcher.token().unwrap());
    for ((_, _, _, id), sent) in senders.iter().zip(by_conversation) {
        for outcome in &sent {
            outcome.assert_answered(&[]);
            assert!(outcome.refused.is_empty() && outcome.unknown.is_empty());
        }
        let history = full_history(&reader, id).await;
        check_history(&history, &sent);
        let acked: usize = sent.iter().map(|outcome| outcome.acked.len()).sum();
        assert_eq!(history.len(), acked, "only acked sends stored in {id}");
        let every: Vec<i64> = (1..=history.len() as i64).collect();
        assert_eq!(
            watcher_socket.seen(|seen| seen.seqs(id)),
            every,
            "the watcher holds all of {id} after its sync"
        );
    }
    let acked: usize = lost.iter().map(|sent| sent.acked.len()).sum();
    eprintln!(
        "node loss: {acked} acks from n3's users, {resent} of them resends; done {:?} after \
         the kill",
        killed.elapsed()
    );
}
