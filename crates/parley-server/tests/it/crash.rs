//! Crash safety of the real binary: `kill -9` under load loses no acknowledged message;
//! SIGTERM shuts down cleanly.

use crate::binary::spawn_binary;
use crate::harness::*;
use futures::stream::{FuturesUnordered, StreamExt};
use parley_sdk::Client;
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Under load from several senders, `kill -9` the server, restart it on the same data:
/// every message that got a `msg_ack` is stored exactly once, at its acked `seq`, and
/// each conversation's `seq`s run from 1 with no gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_under_load_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn_binary(dir.path(), &[]);
    let owner = Client::new(&url).unwrap();
    owner.register("owner", "password-123", None).await.unwrap();
    let mut senders = Vec::new();
    for index in 0..4 {
        let client = Client::new(&url).unwrap();
        let auth = client
            .register(&format!("sender{index}"), "password-123", None)
            .await
            .unwrap();
        senders.push((client, auth.user_id));
    }
    let mut conversation_ids = Vec::new();
    for (client, _) in &senders {
        conversation_ids.push(
            owner
                .create_direct(&client.user_id().unwrap())
                .await
                .unwrap()
                .conversation_id,
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = senders
        .iter()
        .zip(conversation_ids.clone())
        .map(|((client, _), conversation_id)| {
            let client = client.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let connection = connect_with(&client, |config| config.reconnect = false).await;
                let mut in_flight = FuturesUnordered::new();
                let mut acked = HashMap::new();
                let mut counter = 0;
                loop {
                    while in_flight.len() < 16 && !stop.load(Ordering::Relaxed) {
                        counter += 1;
                        match connection.send(conversation_id.clone(), format!("load {counter}")) {
                            Ok(handle) => in_flight.push(handle.ack()),
                            Err(_) => break,
                        }
                    }
                    match in_flight.next().await {
                        Some(Ok(ack)) => {
                            acked.insert(ack.client_msg_id, ack.seq);
                        }
                        Some(Err(_)) => {}
                        None => break,
                    }
                }
                (conversation_id, acked)
            })
        })
        .collect();
    // Let acknowledged traffic build up, then pull the plug mid-stream.
    eventually("load builds up", Duration::from_millis(100), || async {
        let page = owner
            .history(&conversation_ids[0], None, None, Some(1))
            .await
            .unwrap();
        let last = page.messages.first().map_or(0, |message| message.seq);
        (last >= 200).then_some(())
    })
    .await;
    child.kill().expect("kill -9");
    child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acked_by_conversation = Vec::new();
    for task in tasks {
        acked_by_conversation.push(within("senders notice the crash", task).await.unwrap());
    }

    let (mut restarted, url) = spawn_binary(dir.path(), &[]);
    let reader = owner.with_token(owner.token().unwrap());
    let reader = Client::new(&url)
        .unwrap()
        .with_token(reader.token().unwrap());
    let mut total_acked = 0;
    for (conversation_id, acked) in acked_by_conversation {
        total_acked += acked.len();
        let mut stored = Vec::new();
        let mut after = 0;
        loop {
            let page = reader
                .history(&conversation_id, None, Some(after), Some(100))
                .await
                .unwrap();
            after = page.messages.last().map_or(after, |message| message.seq);
            stored.extend(page.messages);
            if !page.has_more {
                break;
            }
        }
        let seqs: Vec<i64> = stored.iter().map(|message| message.seq).collect();
        assert_eq!(
            seqs,
            (1..=stored.len() as i64).collect::<Vec<_>>(),
            "gap-free from 1"
        );
        let client_ids: HashSet<&str> = stored
            .iter()
            .map(|message| message.client_msg_id.as_str())
            .collect();
        assert_eq!(client_ids.len(), stored.len(), "nothing stored twice");
        let by_client_id: HashMap<&str, i64> = stored
            .iter()
            .map(|message| (message.client_msg_id.as_str(), message.seq))
            .collect();
        for (client_msg_id, seq) in &acked {
            assert_eq!(
                by_client_id.get(client_msg_id.as_str()),
                Some(seq),
                "acked {client_msg_id} lost or moved"
            );
        }
    }
    assert!(
        total_acked >= 200,
        "the test put real load on the server ({total_acked} acks)"
    );
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

/// SIGTERM: the binary stops accepting, closes sockets with a close frame, and exits 0.
#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn_binary(dir.path(), &[]);
    let client = Client::new(&url).unwrap();
    client
        .register("alice", "password-123", None)
        .await
        .unwrap();
    let mut connection = connect_with(&client, |config| config.reconnect = false).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    expect(&mut connection, "closed", |event| event.is_terminal()).await;
    let exit = eventually("exit", Duration::from_millis(20), || {
        std::future::ready(child.try_wait().unwrap())
    })
    .await;
    assert!(exit.success(), "exit status {exit:?}");
}
