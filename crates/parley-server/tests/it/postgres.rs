//! The server on PostgreSQL (`database_url`) instead of the embedded SQLite: the same
//! scenarios over real sockets, on a schema of its own in the machine's PostgreSQL
//! (`PARLEY_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`). These
//! fail, never skip, when PostgreSQL cannot be reached.

use crate::harness::*;
use sqlx::Connection as _;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema, dropped when the test ends.
struct Schema {
    admin_url: String,
    name: String,
}

impl Schema {
    async fn create() -> Self {
        let admin_url =
            std::env::var("PARLEY_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let mut connection = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "PostgreSQL is required for these tests: cannot connect to {admin_url} \
                     ({error}); start it or set PARLEY_TEST_DATABASE_URL"
                )
            });
        let name = format!("it_{}", ulid::Ulid::new().to_string().to_lowercase());
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        Self { admin_url, name }
    }

    /// The URL of the database with this schema first on the search path.
    fn database_url(&self) -> String {
        let separator = if self.admin_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.admin_url, self.name
        )
    }

    async fn drop(self) {
        let mut connection = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&mut connection)
            .await
            .unwrap();
    }
}

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
    schema.drop().await;
}
