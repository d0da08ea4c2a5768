//! Tests that need the store's insides (its pool, its SQL): the user search plan, rows
//! that no longer decode, and how sqlx errors map into `StoreError` (message changes and
//! search are `tests/messages.rs`'s). Each runs in a fresh schema (`tests/support`), on
//! the server `PARLEY_TEST_DATABASE_URL` names.

use super::*;
use parley_testkit::store::{group, user};
use std::sync::Arc;

#[path = "../tests/support/mod.rs"]
mod support;

mod messages;

async fn store_in(schema: &support::Schema) -> PgStore {
    PgStore::connect_with(
        schema.connect_options(),
        PgStore::pool_options().max_connections(2),
    )
    .await
    .expect("connect a PgStore to its test schema")
}

/// User search reads its `text_pattern_ops` index for the prefix range, never the whole
/// table: with sequential scans priced out (the table is empty), each query's plan scans
/// its own index. (`_` is a plain character there, as the suite checks.)
#[tokio::test]
async fn user_search_uses_an_index() {
    let schema = support::Schema::create().await;
    let store = store_in(&schema).await;
    for (by, index) in [
        (SearchBy::Username, "users_username_prefix"),
        (SearchBy::DisplayName, "users_display_name_prefix"),
    ] {
        let mut transaction = store.pool.begin().await.unwrap();
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *transaction)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", search_users_sql(by)))
            .bind("Ali_")
            .bind(20i64)
            .fetch_all(&mut *transaction)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains(&format!("Index Scan using {index}"))
                || plan.contains(&format!("Bitmap Index Scan on {index}")),
            "{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }
}

/// A row that no longer decodes is an error the caller sees, never a message quietly
/// left out or read with a made-up value.
#[tokio::test]
async fn a_row_that_does_not_decode_is_reported() {
    let schema = support::Schema::create().await;
    let pg_store = store_in(&schema).await;
    let store: Arc<dyn Store> = Arc::new(pg_store.clone());
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob]).await;
    sqlx::query(r#"UPDATE messages SET system = '{"event": "no_such_event"}' WHERE seq = 1"#)
        .execute(&pg_store.pool)
        .await
        .unwrap();
    let page = store
        .fetch_messages(
            &conversation_id,
            SeqRange::default(),
            PageFrom::Oldest,
            10,
            &alice,
        )
        .await;
    assert!(
        matches!(
            page,
            Err(StoreError::Corrupt {
                what: "system event",
                ..
            })
        ),
        "{page:?}"
    );
    // The schema's CHECK keeps such roles out; a database written by other hands may not.
    for statement in [
        "ALTER TABLE members DROP CONSTRAINT members_role_check",
        "UPDATE members SET role = 'emperor'",
    ] {
        sqlx::query(statement)
            .execute(&pg_store.pool)
            .await
            .unwrap();
    }
    let members = store.fetch_members(&conversation_id).await;
    assert!(
        matches!(members, Err(StoreError::Corrupt { what: "member", .. })),
        "{members:?}"
    );
}

/// References to rows that do not exist: a device of an unknown (or deleted) user is
/// `NotFound` (the insert checks the account), a conversation with an unknown member
/// `NotFound` (the foreign keys, as in SQLite), and neither leaves anything behind.
#[tokio::test]
async fn missing_references_are_reported_by_kind() {
    let schema = support::Schema::create().await;
    let store: Arc<dyn Store> = Arc::new(store_in(&schema).await);
    let alice = user(&store, "alice").await;
    let device = store
        .insert_device(NewDevice {
            device_id: DeviceId::from("d_nobodys"),
            user_id: UserId::from("u_nobody"),
            name: None,
            token_hash: vec![7; 32],
            created_at: Timestamp::now(),
        })
        .await;
    assert!(matches!(device, Err(StoreError::NotFound)), "{device:?}");
    let conversation_id = ConversationId::from("c_with_a_stranger");
    let created = store
        .insert_conversation(NewConversation {
            conversation_id: conversation_id.clone(),
            kind: ConversationType::Group,
            name: Some("team".into()),
            description: None,
            direct_key: None,
            members: vec![
                (alice.clone(), Role::Owner),
                (UserId::from("u_nobody"), Role::Member),
            ],
            created_at: Timestamp::now(),
            system_message: None,
        })
        .await;
    assert!(matches!(created, Err(StoreError::NotFound)), "{created:?}");
    assert!(matches!(
        store.fetch_conversation(&conversation_id).await,
        Err(StoreError::NotFound)
    ));
}

/// A server that cannot be reached is `Unavailable` once the pool's acquire timeout has
/// passed (the node does not start), not a panic or a hang.
#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let options = PgConnectOptions::from_str("postgres://postgres@127.0.0.1:1/test").unwrap();
    let pool_options = PgStore::pool_options().acquire_timeout(Duration::from_millis(500));
    let connected = PgStore::connect_with(options, pool_options).await;
    assert!(
        matches!(connected, Err(StoreError::Unavailable { .. })),
        "{:?}",
        connected.err()
    );
}
