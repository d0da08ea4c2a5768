//! The server on PostgreSQL alone (`database_url`, one node, no NATS or Redis) instead of
//! the embedded SQLite, on a schema of its own (`backends.rs`). These fail, never skip,
//! when PostgreSQL cannot be reached.

use crate::backends::Schema;
use crate::harness::*;

/// Register, chat, receipts and history on PostgreSQL; after a restart of the server
/// everything is still there and `seq` goes on where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_on_postgresql() {
    let schema = Schema::create().await;
    let url = schema.database_url();
    let mut server = TestServer::start_with(|config| config.database_url = Some(url)).await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let conversation = alice.direct_with(&bob).await;
    let alice_connection = alice.connect().await;
    let mut bob_connection = bob.connect().await;
    let ack = alice_connection
        .send_and_wait(conversation.conversation_id.clone(), "on postgres")
        .await
        .unwrap();
    assert_eq!(ack.seq, 1);
    let received = messages(&mut bob_connection, &conversation.conversation_id, 1).await;
    assert_eq!(received[0].content, "on postgres");
    drop(alice_connection);
    drop(bob_connection);

    server.restart().await;
    let alice_again = parley_sdk::Client::new(&server.url)
        .unwrap()
        .with_token(alice.token());
    let alice_connection = connect(&alice_again).await;
    let ack = alice_connection
        .send_and_wait(conversation.conversation_id.clone(), "after the restart")
        .await
        .unwrap();
    assert_eq!(ack.seq, 2, "seq goes on from the stored conversation");
    let history = alice_again
        .history(&conversation.conversation_id, None, None, Some(10))
        .await
        .unwrap();
    let contents: Vec<&str> = history
        .messages
        .iter()
        .map(|message| message.content.as_str())
        .collect();
    assert_eq!(contents, ["on postgres", "after the restart"]);
    drop(alice_connection);
    server.server.take().unwrap().shutdown().await.unwrap();
    drop(schema);
}
