//! Several nodes on one database: each `PgStore` here is a node's (its own pool), and
//! they write at once. The `Store` suite checks one store under concurrency; these check
//! what only holds because of PostgreSQL's locks, not a process's: one gap-free `seq`
//! order, dedup and `members_version` checks across nodes, and nodes that start together.

mod support;

use parley_core::ids;
use parley_core::store::{
    AppendRefusal, ConversationChange, ConversationUpdate, NewConversation, StoreError,
};
use parley_core::Store;
use parley_proto::{ContentType, ConversationId, ConversationType, Role, Timestamp, UserId};
use parley_store_postgres::PgStore;
use parley_testkit::store::{group, text, user};
use sqlx::Connection;
use std::sync::Arc;

const NODES: usize = 4;

/// `count` stores on one fresh schema, as `count` nodes would be.
async fn nodes(count: usize) -> (Vec<Arc<dyn Store>>, support::Schema) {
    let schema = support::Schema::create().await;
    let mut stores: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..count {
        let store = PgStore::connect_with(
            schema.connect_options(),
            PgStore::pool_options().max_connections(3),
        )
        .await
        .expect("connect a node's PgStore");
        stores.push(Arc::new(store));
    }
    (stores, schema)
}

/// Appends `batches` batches of `batch_size` messages from `sender` on each node at once
/// (two tasks per node), each batch spread over `conversations` in an order that differs
/// from node to node; returns every new message's `(conversation, seq)`.
async fn append_everywhere(
    stores: &[Arc<dyn Store>],
    conversations: &[ConversationId],
    sender: &UserId,
    batches: usize,
    batch_size: usize,
) -> Vec<(ConversationId, i64)> {
    let tasks = (0..stores.len() * 2).map(|task| {
        let store = stores[task % stores.len()].clone();
        let mut conversations = conversations.to_vec();
        let count = conversations.len();
        conversations.rotate_left(task % count);
        let sender = sender.clone();
        tokio::spawn(async move {
            let mut appended = Vec::new();
            for batch in 0..batches {
                let messages = (0..batch_size)
                    .map(|index| {
                        let conversation_id = &conversations[index % conversations.len()];
                        text(
                            conversation_id,
                            &sender,
                            &format!("n{task}-b{batch}-{index}"),
                        )
                    })
                    .collect();
                for outcome in store.append_messages(messages).await.unwrap() {
                    let outcome = outcome.expect("a member may send");
                    assert!(!outcome.duplicate);
                    appended.push((outcome.message.conversation_id, outcome.message.seq));
                }
            }
            appended
        })
    });
    let mut all = Vec::new();
    for appended in futures::future::join_all(tasks).await {
        all.extend(appended.unwrap());
    }
    all
}

/// Nodes committing to one conversation at once still give one order: every `seq` from 2
/// (1 is the group's system message) to the last, once each, stored and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_nodes_appending_to_one_conversation_leave_no_gap() {
    let (stores, _schema) = nodes(NODES).await;
    let alice = user(&stores[0], "alice").await;
    let conversation_id = group(&stores[0], std::slice::from_ref(&alice)).await;
    let appended = append_everywhere(
        &stores,
        std::slice::from_ref(&conversation_id),
        &alice,
        10,
        5,
    )
    .await;
    let total = (NODES * 2 * 10 * 5) as i64;
    let mut seqs: Vec<i64> = appended.into_iter().map(|(_, seq)| seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (2..=total + 1).collect::<Vec<_>>(),
        "no gap, no repeat"
    );
    let record = stores[1]
        .fetch_conversation(&conversation_id)
        .await
        .unwrap();
    assert_eq!(record.last_seq, total + 1);
    let stored = stores[2]
        .fetch_messages(
            &conversation_id,
            Default::default(),
            parley_core::store::PageFrom::Oldest,
            u32::MAX,
            &UserId::from("u_reader"),
        )
        .await
        .unwrap();
    let stored: Vec<i64> = stored.iter().map(|message| message.seq).collect();
    assert_eq!(stored, (1..=total + 1).collect::<Vec<_>>());
}

/// Batches that span several conversations lock them in one order on every node, so
/// nodes whose batches name them in opposite orders wait for each other rather than
/// deadlock, and each conversation keeps its own gap-free order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_spanning_conversations_in_any_order_keep_each_order() {
    let (stores, _schema) = nodes(NODES).await;
    let alice = user(&stores[0], "alice").await;
    let mut conversations = Vec::new();
    for _ in 0..3 {
        conversations.push(group(&stores[0], std::slice::from_ref(&alice)).await);
    }
    let appended = append_everywhere(&stores, &conversations, &alice, 8, 6).await;
    for conversation_id in &conversations {
        let mut seqs: Vec<i64> = appended
            .iter()
            .filter(|(appended_to, _)| appended_to == conversation_id)
            .map(|(_, seq)| *seq)
            .collect();
        seqs.sort_unstable();
        let last = seqs.len() as i64 + 1;
        assert_eq!(seqs, (2..=last).collect::<Vec<_>>(), "{conversation_id}");
        let record = stores[3].fetch_conversation(conversation_id).await.unwrap();
        assert_eq!(record.last_seq, last);
    }
}

/// The same send retried on every node at once (a client that reconnected elsewhere) is
/// stored once: one node stores it, every other answers with that first message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_retried_on_every_node_at_once_is_stored_once() {
    let (stores, _schema) = nodes(NODES).await;
    let alice = user(&stores[0], "alice").await;
    let conversation_id = group(&stores[0], std::slice::from_ref(&alice)).await;
    for round in 0..5i64 {
        let client_msg_id = format!("retried-{round}");
        let tasks = stores.iter().map(|store| {
            let store = store.clone();
            let message = text(&conversation_id, &alice, &client_msg_id);
            tokio::spawn(async move { store.append_messages(vec![message]).await })
        });
        let mut outcomes = Vec::new();
        for outcome in futures::future::join_all(tasks).await {
            outcomes.push(outcome.unwrap().unwrap().remove(0).expect("a member"));
        }
        let stored: Vec<_> = outcomes.iter().filter(|o| !o.duplicate).collect();
        assert_eq!(stored.len(), 1, "stored once: {outcomes:?}");
        assert!(outcomes
            .iter()
            .all(|outcome| outcome.message == stored[0].message));
        assert_eq!(stored[0].message.seq, round + 2);
    }
}

/// One `client_msg_id` sent to two conversations on two nodes at once: the row locks of
/// two conversations do not order these, the dedup index does. One is stored, the other
/// refused as reused, and neither conversation is left with a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_sent_to_two_conversations_at_once_is_stored_once() {
    let (stores, _schema) = nodes(2).await;
    let alice = user(&stores[0], "alice").await;
    let first = group(&stores[0], std::slice::from_ref(&alice)).await;
    let second = group(&stores[0], std::slice::from_ref(&alice)).await;
    for round in 0..10 {
        let client_msg_id = format!("both-{round}");
        let tasks = [(&stores[0], &first), (&stores[1], &second)].map(|(store, to)| {
            let store = store.clone();
            let message = text(to, &alice, &client_msg_id);
            tokio::spawn(async move { store.append_messages(vec![message]).await })
        });
        let mut outcomes = Vec::new();
        for outcome in futures::future::join_all(tasks).await {
            outcomes.push(outcome.unwrap().unwrap().remove(0));
        }
        let stored = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        let refused = outcomes
            .iter()
            .filter(|outcome| **outcome == Err(AppendRefusal::ClientMsgIdReused))
            .count();
        assert_eq!((stored, refused), (1, 1), "{outcomes:?}");
    }
    let last_seqs = (
        stores[0].fetch_conversation(&first).await.unwrap().last_seq,
        stores[1]
            .fetch_conversation(&second)
            .await
            .unwrap()
            .last_seq,
    );
    assert_eq!(
        last_seqs.0 + last_seqs.1,
        2 + 10,
        "one seq per stored message"
    );
}

/// The race behind the one above, made certain: another node's transaction has inserted
/// a `client_msg_id` into one conversation and not committed yet, while a batch for
/// another conversation carries the same id. The batch waits on the dedup index, sees the
/// other commit, and is tried again whole: the reused id is refused, the rest of the batch
/// is stored, and no `seq` is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_loses_a_dedup_race_is_tried_again_whole() {
    let (stores, schema) = nodes(1).await;
    let alice = user(&stores[0], "alice").await;
    let first = group(&stores[0], std::slice::from_ref(&alice)).await;
    let second = group(&stores[0], std::slice::from_ref(&alice)).await;
    // The other node, by hand: the message and its position, uncommitted.
    let mut other_node = sqlx::PgConnection::connect_with(&schema.connect_options())
        .await
        .unwrap();
    let mut other_transaction = other_node.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO messages (conversation_id, seq, message_id, sender_id, sender_device_id, \
         client_msg_id, content, content_type, created_at) \
         VALUES ($1, 2, 'm_other', $2, 'd_other', 'shared', 'hi', 'text', 0)",
    )
    .bind(first.as_str())
    .bind(alice.as_str())
    .execute(&mut *other_transaction)
    .await
    .unwrap();
    sqlx::query("UPDATE conversations SET last_seq = 2 WHERE conversation_id = $1")
        .bind(first.as_str())
        .execute(&mut *other_transaction)
        .await
        .unwrap();
    let store = stores[0].clone();
    let batch = vec![
        text(&second, &alice, "mine"),
        text(&second, &alice, "shared"),
    ];
    let appending = tokio::spawn(async move { store.append_messages(batch).await });
    // Wait until the batch is blocked on the other transaction (a lock wait, as
    // PostgreSQL reports it), then commit that transaction.
    let mut watcher = sqlx::PgConnection::connect_with(&schema.connect_options())
        .await
        .unwrap();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND wait_event_type = 'Lock'",
        )
        .bind(schema.name())
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    other_transaction.commit().await.unwrap();
    let outcomes = appending.await.unwrap().unwrap();
    let mine = outcomes[0]
        .as_ref()
        .expect("the rest of the batch is stored");
    assert_eq!((mine.message.seq, mine.duplicate), (2, false));
    assert_eq!(outcomes[1], Err(AppendRefusal::ClientMsgIdReused));
    let record = stores[0].fetch_conversation(&second).await.unwrap();
    assert_eq!(record.last_seq, 2, "no seq skipped");
}

/// Changes decided on one `members_version` and committed on several nodes at once:
/// exactly one applies, every other is a `Conflict` that wrote nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_at_one_members_version_apply_once_across_nodes() {
    let (stores, _schema) = nodes(NODES).await;
    let alice = user(&stores[0], "alice").await;
    let conversation_id = group(&stores[0], std::slice::from_ref(&alice)).await;
    let before = stores[0]
        .fetch_conversation(&conversation_id)
        .await
        .unwrap();
    let mut joiners = Vec::new();
    for index in 0..NODES {
        joiners.push(user(&stores[0], &format!("joiner{index}")).await);
    }
    let tasks = stores.iter().zip(&joiners).map(|(store, joiner)| {
        let store = store.clone();
        let conversation_id = conversation_id.clone();
        let client_msg_id = format!("system:{}", ids::new_message_id());
        let mut message = text(&conversation_id, &alice, &client_msg_id);
        message.content_type = parley_proto::ContentType::SYSTEM;
        let update = ConversationUpdate {
            expected_members_version: before.members_version,
            changes: vec![ConversationChange::AddMembers(vec![(
                joiner.clone(),
                Role::Member,
            )])],
            system_messages: vec![message],
        };
        tokio::spawn(async move { store.update_conversation(&conversation_id, update).await })
    });
    let mut applied = 0;
    for outcome in futures::future::join_all(tasks).await {
        match outcome.unwrap() {
            Ok(appended) => {
                applied += 1;
                assert_eq!(appended[0].message.seq, before.last_seq + 1);
            }
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(applied, 1);
    let after = stores[0]
        .fetch_conversation(&conversation_id)
        .await
        .unwrap();
    assert_eq!(
        (after.members_version, after.last_seq, after.member_count),
        (before.members_version + 1, before.last_seq + 1, 2)
    );
}

/// Two nodes creating the same direct chat at once create one: both answer with it, and
/// exactly one says it created it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_chat_created_on_two_nodes_at_once_is_one_chat() {
    let (stores, _schema) = nodes(2).await;
    let alice = user(&stores[0], "alice").await;
    let bob = user(&stores[0], "bob").await;
    let tasks = stores.iter().map(|store| {
        let store = store.clone();
        let conversation = NewConversation {
            conversation_id: ids::new_conversation_id(),
            kind: ConversationType::Direct,
            name: None,
            description: None,
            direct_key: Some(ids::direct_key(&alice, &bob)),
            members: vec![(alice.clone(), Role::Member), (bob.clone(), Role::Member)],
            created_at: Timestamp::now(),
            system_message: None,
        };
        tokio::spawn(async move { store.insert_conversation(conversation).await })
    });
    let mut answers = Vec::new();
    for answer in futures::future::join_all(tasks).await {
        answers.push(answer.unwrap().unwrap());
    }
    assert_eq!(
        answers[0].0.conversation_id, answers[1].0.conversation_id,
        "one chat"
    );
    assert_eq!(answers.iter().filter(|(_, created)| *created).count(), 1);
}

/// Nodes starting at the same moment on a fresh schema all migrate successfully (one
/// applies the migrations under sqlx's advisory lock, the others find them applied),
/// and the schema they leave works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let schema = support::Schema::create().await;
    let starts = (0..NODES).map(|_| {
        let options = schema.connect_options();
        tokio::spawn(async move {
            PgStore::connect_with(options, PgStore::pool_options().max_connections(2)).await
        })
    });
    let mut stores: Vec<Arc<dyn Store>> = Vec::new();
    for started in futures::future::join_all(starts).await {
        let store = started.unwrap().expect("every node starts");
        stores.push(Arc::new(store));
    }
    for store in &stores {
        store.ping().await.unwrap();
    }
    let alice = user(&stores[0], "alice").await;
    assert_eq!(
        stores[NODES - 1].fetch_user(&alice).await.unwrap().username,
        "alice"
    );
    let mut connection = sqlx::PgConnection::connect_with(&schema.connect_options())
        .await
        .unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    let migrations = sqlx::migrate!("./migrations").iter().count();
    assert_eq!(
        applied,
        i64::try_from(migrations).unwrap(),
        "each migration recorded once"
    );
}

/// Change entries on one message sent from every node at once: the conversation's row
/// lock orders them, so exactly one delete is stored, everything after it is refused
/// (`TargetGone`, no `seq` used), and the deleted message keeps no reaction, whichever
/// node's entries came first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_from_every_node_at_once_apply_in_one_order() {
    let (stores, _schema) = nodes(NODES).await;
    let alice = user(&stores[0], "alice").await;
    let conversation_id = group(&stores[0], std::slice::from_ref(&alice)).await;
    let target = stores[0]
        .append_messages(vec![text(&conversation_id, &alice, "target")])
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap()
        .message
        .seq;
    let change = |kind: ContentType, content: &str| {
        let mut message = text(&conversation_id, &alice, &ids::new_message_id().to_string());
        message.content_type = kind;
        message.target_seq = Some(target);
        message.content = content.to_owned();
        message
    };
    let tasks = (0..NODES * 2).map(|task| {
        let store = stores[task % NODES].clone();
        let batch = vec![
            change(ContentType::REACTION, "👍"),
            change(ContentType::EDIT, &format!("edit {task}")),
            change(ContentType::DELETE, ""),
            change(ContentType::REACTION, "🎉"),
        ];
        tokio::spawn(async move { store.append_messages(batch).await.unwrap() })
    });
    let mut stored = 0;
    let mut deletes = 0;
    for outcomes in futures::future::join_all(tasks).await {
        for outcome in outcomes.unwrap() {
            match outcome {
                Ok(appended) => {
                    stored += 1;
                    if appended.message.content_type == ContentType::DELETE {
                        deletes += 1;
                    }
                }
                Err(refusal) => assert_eq!(refusal, AppendRefusal::TargetGone),
            }
        }
    }
    assert_eq!(deletes, 1);
    assert_eq!(stored, 3, "the first batch's reaction, edit and delete");
    let record = stores[1]
        .fetch_conversation(&conversation_id)
        .await
        .unwrap();
    assert_eq!(record.last_seq, target + 3, "refusals use no seq");
    let deleted = stores[2]
        .fetch_message(&conversation_id, target)
        .await
        .unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.content, "");
    assert!(stores[3]
        .fetch_reactions(&conversation_id, target)
        .await
        .unwrap()
        .is_empty());
}
