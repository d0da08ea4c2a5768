//! This store's own checks of message changes, delete for me and full-text search, with
//! what needs its insides: the plans of the message search and of the backfill, and the
//! search terms of messages stored before search existed (the backfill at open, several
//! nodes at once, an upgrade from the previous release's schema). The `Store` suite
//! checks the same behaviours on every store.

use super::*;
use parley_testkit::store::{remove_member, text};

/// A change entry (`reaction`, `edit`, `delete`) from `sender_id` on `target_seq`.
fn change_entry(
    conversation_id: &ConversationId,
    sender_id: &UserId,
    kind: ContentType,
    target_seq: i64,
    content: &str,
) -> NewMessage {
    let mut message = text(
        conversation_id,
        sender_id,
        &parley_core::ids::new_message_id().to_string(),
    );
    message.content_type = kind;
    message.target_seq = Some(target_seq);
    message.content = content.to_owned();
    message
}

/// A text message with the given words.
fn words(conversation_id: &ConversationId, sender_id: &UserId, content: &str) -> NewMessage {
    let mut message = text(
        conversation_id,
        sender_id,
        &parley_core::ids::new_message_id().to_string(),
    );
    message.content = content.to_owned();
    message
}

async fn append(store: &Arc<dyn Store>, messages: Vec<NewMessage>) -> Vec<AppendOutcome> {
    store.append_messages(messages).await.unwrap()
}

fn seq_of(outcome: &AppendOutcome) -> i64 {
    outcome.as_ref().expect("appended").message.seq
}

async fn search(
    store: &Arc<dyn Store>,
    user_id: &UserId,
    query: &str,
    conversation_id: Option<&ConversationId>,
) -> Vec<String> {
    let terms = parley_core::search::query_terms(query);
    store
        .search_messages(SearchQuery {
            user_id,
            terms: &terms,
            conversation_id,
            before: None,
            limit: 50,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|message| message.content)
        .collect()
}

/// Change entries take effect in their batch, in order, against the target as the batch
/// left it; refused ones use no `seq`; they move `last_seq` but not `last_activity_at`.
#[tokio::test]
async fn change_entries_apply_in_order_within_a_batch() {
    let schema = support::Schema::create().await;
    let store: Arc<dyn Store> = Arc::new(store_in(&schema).await);
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let c = group(&store, &[alice.clone(), bob.clone()]).await;
    let mut first = words(&c, &alice, "Crème brûlée tonight");
    first.mentions = vec![bob.clone()];
    let outcomes = append(&store, vec![first]).await;
    let target = seq_of(&outcomes[0]);
    assert_eq!(target, 2);
    let before = store.fetch_conversation(&c).await.unwrap();

    let batch = vec![
        // 3: a reaction on a message appended earlier in the batch is fine (4 is next).
        words(&c, &bob, "second"),
        change_entry(&c, &bob, ContentType::REACTION, 3, "👍"),
        change_entry(&c, &alice, ContentType::REACTION, target, "🎉"),
        change_entry(&c, &bob, ContentType::REACTION, target, "👍"),
        change_entry(&c, &alice, ContentType::EDIT, target, "first edit"),
        change_entry(&c, &alice, ContentType::EDIT, target, "Pavlova tonight"),
        // Targets that are not ordinary messages, or not there yet.
        change_entry(&c, &alice, ContentType::REACTION, 1, "👍"),
        change_entry(&c, &alice, ContentType::REACTION, 4, "👍"),
        change_entry(&c, &alice, ContentType::REACTION, 99, "👍"),
    ];
    let outcomes = append(&store, batch).await;
    let seqs: Vec<Option<i64>> = outcomes
        .iter()
        .map(|outcome| outcome.as_ref().ok().map(|appended| appended.message.seq))
        .collect();
    assert_eq!(
        seqs,
        [
            Some(3),
            Some(4),
            Some(5),
            Some(6),
            Some(7),
            Some(8),
            None,
            None,
            None
        ]
    );
    assert!(outcomes[6..]
        .iter()
        .all(|outcome| outcome == &Err(AppendRefusal::TargetGone)));

    let edited = store.fetch_message(&c, target).await.unwrap();
    assert_eq!(edited.content, "Pavlova tonight");
    assert!(edited.edited_at.is_some());
    assert_eq!(edited.mentions, vec![bob.clone()]);
    // No older version stays readable: both edit entries carry the current text.
    assert_eq!(
        store.fetch_message(&c, 7).await.unwrap().content,
        "Pavlova tonight"
    );
    assert_eq!(
        search(&store, &bob, "pav TONI", None).await,
        ["Pavlova tonight"]
    );
    assert!(search(&store, &bob, "creme", None).await.is_empty());

    let page = store
        .fetch_messages(&c, SeqRange::default(), PageFrom::Oldest, 50, &bob)
        .await
        .unwrap();
    let reactions = &page[1].reactions;
    assert_eq!(
        reactions
            .iter()
            .map(|r| (r.emoji.as_str(), r.count, r.me))
            .collect::<Vec<_>>(),
        [("🎉", 1, false), ("👍", 1, true)]
    );
    assert_eq!(page[2].reactions.len(), 1);
    let users = store.fetch_reactions(&c, target).await.unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].emoji, "🎉");
    assert_eq!(users[0].user_ids, vec![alice.clone()]);

    // Unread mentions count the mention until bob reads past it.
    let summary = store
        .fetch_conversation_summary(&c, &bob, parley_core::rules::UNREAD)
        .await
        .unwrap();
    assert_eq!(summary.unread_mentions, 1);
    // The preview is the newest message that is no change entry.
    assert_eq!(summary.last_message.unwrap().seq, 3);
    let after = store.fetch_conversation(&c).await.unwrap();
    assert_eq!(after.last_seq, 8);
    assert!(after.last_activity_at >= before.last_activity_at);

    // A delete, then everything on the deleted message is refused, in the same batch.
    let outcomes = append(
        &store,
        vec![
            change_entry(&c, &alice, ContentType::DELETE, target, ""),
            change_entry(&c, &bob, ContentType::REACTION, target, "😢"),
            change_entry(&c, &alice, ContentType::EDIT, target, "again"),
            change_entry(&c, &alice, ContentType::DELETE, target, ""),
        ],
    )
    .await;
    assert_eq!(seq_of(&outcomes[0]), 9);
    assert!(outcomes[1..]
        .iter()
        .all(|outcome| outcome == &Err(AppendRefusal::TargetGone)));
    let deleted = store.fetch_message(&c, target).await.unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.content, "");
    assert!(deleted.mentions.is_empty());
    assert_eq!(deleted.edited_at, None);
    for edit in [7, 8] {
        assert_eq!(store.fetch_message(&c, edit).await.unwrap().content, "");
    }
    assert!(store.fetch_reactions(&c, target).await.unwrap().is_empty());
    assert!(search(&store, &bob, "pavlova", None).await.is_empty());
    let summary = store
        .fetch_conversation_summary(&c, &bob, parley_core::rules::UNREAD)
        .await
        .unwrap();
    assert_eq!(summary.unread_mentions, 0);
    // A batch of change entries only moves `last_seq`, not the activity.
    let only_changes = store.fetch_conversation(&c).await.unwrap();
    assert_eq!(only_changes.last_seq, 9);
    let outcomes = append(
        &store,
        vec![change_entry(&c, &bob, ContentType::REACTION, 3, "")],
    )
    .await;
    assert_eq!(seq_of(&outcomes[0]), 10);
    let later = store.fetch_conversation(&c).await.unwrap();
    assert_eq!(later.last_seq, 10);
    assert_eq!(later.last_activity_at, only_changes.last_activity_at);
    assert!(store.fetch_reactions(&c, 3).await.unwrap().is_empty());
}

/// Delete for me: the message leaves the user's history (kept as an empty, hidden entry),
/// search, preview and mention count, and only theirs.
#[tokio::test]
async fn hidden_messages_leave_one_users_view() {
    let schema = support::Schema::create().await;
    let store: Arc<dyn Store> = Arc::new(store_in(&schema).await);
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let c = group(&store, &[alice.clone(), bob.clone()]).await;
    let mut message = words(&c, &alice, "secret plans");
    message.mentions = vec![bob.clone()];
    message.reply_to_seq = Some(1);
    let seq = seq_of(&append(&store, vec![message]).await[0]);
    append(
        &store,
        vec![change_entry(&c, &alice, ContentType::REACTION, seq, "👀")],
    )
    .await;
    assert!(matches!(
        store.hide_message(&bob, &c, 99).await,
        Err(StoreError::NotFound)
    ));
    store.hide_message(&bob, &c, seq).await.unwrap();
    store.hide_message(&bob, &c, seq).await.unwrap();

    let page = store
        .fetch_messages(&c, SeqRange::default(), PageFrom::Newest, 50, &bob)
        .await
        .unwrap();
    assert_eq!(page.len(), 3, "no gap");
    let hidden = &page[1];
    assert!(hidden.hidden);
    assert_eq!(hidden.content, "");
    assert!(hidden.mentions.is_empty() && hidden.reactions.is_empty());
    assert_eq!(hidden.reply_to_seq, None);
    let seen_by_alice = store
        .fetch_messages(&c, SeqRange::default(), PageFrom::Newest, 50, &alice)
        .await
        .unwrap();
    assert!(!seen_by_alice[1].hidden);
    assert_eq!(seen_by_alice[1].content, "secret plans");
    assert_eq!(seen_by_alice[1].reactions.len(), 1);
    assert!(seen_by_alice[1].reactions[0].me);

    assert!(search(&store, &bob, "secret", None).await.is_empty());
    assert_eq!(
        search(&store, &alice, "secret", None).await,
        ["secret plans"]
    );
    let summary = store
        .fetch_conversation_summary(&c, &bob, parley_core::rules::UNREAD)
        .await
        .unwrap();
    assert_eq!(summary.unread_mentions, 0);
    assert_eq!(summary.last_message.unwrap().seq, 1, "the preview skips it");
    let listed = store
        .list_conversations(
            &alice,
            parley_core::store::ListFilter::All,
            None,
            10,
            parley_core::rules::UNREAD,
        )
        .await
        .unwrap();
    assert_eq!(listed[0].last_message.as_ref().unwrap().seq, seq);
}

/// Search: every term a prefix of a folded word, only in the user's conversations now,
/// filtered by conversation and paged by `message_id`, newest first.
#[tokio::test]
async fn search_finds_prefixes_in_the_users_conversations() {
    let schema = support::Schema::create().await;
    let store: Arc<dyn Store> = Arc::new(store_in(&schema).await);
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let ours = group(&store, &[alice.clone(), bob.clone()]).await;
    let theirs = group(&store, &[carol.clone(), bob.clone()]).await;
    // Ids in the order of sending (ULIDs made in one millisecond need not be).
    let mut batch = vec![
        words(&ours, &alice, "Holiday in Zürich"),
        words(&ours, &bob, "holidays are over"),
        words(&theirs, &carol, "Holiday plans without alice"),
        words(&ours, &alice, "!!! ???"),
    ];
    for (index, message) in batch.iter_mut().enumerate() {
        message.message_id = MessageId(format!("m{index:02}"));
    }
    append(&store, batch).await;
    let mut image = words(&ours, &alice, "holiday.jpg");
    image.content_type = ContentType::from("image/jpeg".to_owned());
    append(&store, vec![image]).await;

    assert_eq!(
        search(&store, &alice, "HOL", None).await,
        ["holidays are over", "Holiday in Zürich"]
    );
    assert_eq!(
        search(&store, &alice, "zurich hol", None).await,
        ["Holiday in Zürich"]
    );
    assert!(search(&store, &alice, "holiday plans", None)
        .await
        .is_empty());
    assert_eq!(search(&store, &bob, "hol", None).await.len(), 3);
    assert_eq!(
        search(&store, &bob, "hol", Some(&theirs)).await,
        ["Holiday plans without alice"]
    );
    assert!(search(&store, &alice, "hol", Some(&theirs))
        .await
        .is_empty());
    assert!(search(&store, &alice, "", None).await.is_empty());

    // Paging by `message_id`.
    let terms = parley_core::search::query_terms("hol");
    let page = store
        .search_messages(SearchQuery {
            user_id: &bob,
            terms: &terms,
            conversation_id: None,
            before: None,
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    assert!(page[0].message_id > page[1].message_id);
    let rest = store
        .search_messages(SearchQuery {
            user_id: &bob,
            terms: &terms,
            conversation_id: None,
            before: Some(&page[1].message_id),
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].content, "Holiday in Zürich");

    // A member no more finds nothing of the conversation.
    remove_member(&store, &theirs, &carol, &bob).await;
    assert_eq!(search(&store, &bob, "hol", None).await.len(), 2);
}

/// Text messages stored before search existed (no terms) are indexed when a store opens,
/// by every node starting at once, without doing anything twice; a text without words
/// gets the empty `tsvector` and is not picked up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_stored_before_search_are_backfilled_at_open() {
    let schema = support::Schema::create().await;
    let pg_store = store_in(&schema).await;
    let store: Arc<dyn Store> = Arc::new(pg_store.clone());
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let c = group(&store, &[alice.clone(), bob.clone()]).await;
    let count = 2 * BACKFILL_BATCH as usize + 7;
    let mut messages: Vec<NewMessage> = (0..count)
        .map(|index| words(&c, &alice, &format!("old message number{index}")))
        .collect();
    messages.push(words(&c, &alice, "…"));
    messages.push(words(&c, &alice, "old but deleted"));
    let outcomes = append(&store, messages).await;
    let deleted_seq = seq_of(outcomes.last().unwrap());
    append(
        &store,
        vec![change_entry(
            &c,
            &alice,
            ContentType::DELETE,
            deleted_seq,
            "",
        )],
    )
    .await;
    // As a database migrated from 0001 leaves them.
    sqlx::query("UPDATE messages SET search_terms = NULL")
        .execute(&pg_store.pool)
        .await
        .unwrap();
    assert!(search(&store, &bob, "old", None).await.is_empty());

    let starts = (0..3).map(|_| {
        let options = schema.connect_options();
        tokio::spawn(async move {
            PgStore::connect_with(options, PgStore::pool_options().max_connections(2)).await
        })
    });
    for started in futures::future::join_all(starts).await {
        started.unwrap().expect("every node starts");
    }
    let found = search(&store, &bob, "old mess", None).await;
    assert_eq!(found.len(), 50);
    let terms = parley_core::search::query_terms("number1000");
    let exact = store
        .search_messages(SearchQuery {
            user_id: &bob,
            terms: &terms,
            conversation_id: Some(&c),
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(exact.len(), 1);
    let (unindexed, empty, not_indexed): (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE search_terms IS NULL AND content_type = 'text' \
            AND NOT deleted), \
         COUNT(*) FILTER (WHERE search_terms = ''::tsvector), \
         COUNT(*) FILTER (WHERE search_terms IS NULL) FROM messages",
    )
    .fetch_one(&pg_store.pool)
    .await
    .unwrap();
    assert_eq!(unindexed, 0);
    assert_eq!(empty, 1, "the text without words");
    // The system message, the deleted one and the delete entry.
    assert_eq!(not_indexed, 3);
}

/// Message search reads the GIN index on `search_terms`, and the backfill the (empty)
/// partial index of unindexed messages, never the whole table.
#[tokio::test]
async fn message_search_and_backfill_use_their_indexes() {
    let schema = support::Schema::create().await;
    let store = store_in(&schema).await;
    for (sql, index) in [
        (
            "EXPLAIN SELECT seq FROM messages m WHERE m.search_terms @@ '''hol'':*'::tsquery \
             AND NOT m.deleted ORDER BY m.message_id DESC LIMIT 20",
            "messages_search",
        ),
        (
            "EXPLAIN SELECT conversation_id, seq, content FROM messages \
             WHERE search_terms IS NULL AND content_type = 'text' AND NOT deleted \
             ORDER BY conversation_id, seq LIMIT 1000 FOR UPDATE SKIP LOCKED",
            "messages_unindexed",
        ),
    ] {
        let mut transaction = store.pool.begin().await.unwrap();
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *transaction)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&mut *transaction)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }
}

/// A database the previous release made (only migration 0001, messages without the new
/// columns) is migrated at open, its text messages indexed, and reads back as before.
#[tokio::test]
async fn a_database_of_the_previous_release_is_upgraded_and_indexed() {
    let schema = support::Schema::create().await;
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.migrations = migrator.migrations[..1].to_vec().into();
    let previous = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(schema.connect_options())
        .await
        .unwrap();
    migrator.run(&previous).await.unwrap();
    for statement in [
        "INSERT INTO users (user_id, username, password_hash, display_name, created_at) \
         VALUES ('u_a', 'alice', 'x', 'Alice', 1)",
        "INSERT INTO conversations (conversation_id, kind, created_at, last_seq, \
         last_activity_at, member_count) VALUES ('c_a', 'group', 1, 3, 3, 1)",
        "INSERT INTO members (conversation_id, user_id, role, joined_at) \
         VALUES ('c_a', 'u_a', 'owner', 1)",
        "INSERT INTO messages (conversation_id, seq, message_id, sender_id, sender_device_id, \
         client_msg_id, content, content_type, created_at) VALUES \
         ('c_a', 1, 'm1', 'u_a', 'd_a', 'k1', 'Grüße aus Köln', 'text', 1), \
         ('c_a', 2, 'm2', 'u_a', 'd_a', 'k2', 'köln.png', 'image/png', 2), \
         ('c_a', 3, 'm3', 'u_a', 'd_a', 'k3', '', 'text', 3)",
    ] {
        sqlx::query(statement).execute(&previous).await.unwrap();
    }
    previous.close().await;

    let pg_store = store_in(&schema).await;
    let store: Arc<dyn Store> = Arc::new(pg_store.clone());
    let alice = UserId::from("u_a");
    let c = ConversationId::from("c_a");
    assert_eq!(
        search(&store, &alice, "koln", None).await,
        ["Grüße aus Köln"]
    );
    assert_eq!(search(&store, &alice, "GRUSSE", None).await.len(), 0);
    assert_eq!(search(&store, &alice, "grube", None).await.len(), 0);
    let old = store.fetch_message(&c, 1).await.unwrap();
    assert!(!old.deleted && !old.forwarded && old.mentions.is_empty());
    assert_eq!((old.target_seq, old.edited_at), (None, None));
    let terms: Vec<Option<String>> =
        sqlx::query_scalar("SELECT search_terms::text FROM messages ORDER BY seq")
            .fetch_all(&pg_store.pool)
            .await
            .unwrap();
    // Folded by parley-core (`ü` loses its mark, `ß` stays), made a `tsvector` as they
    // are; the image is not indexed, the text without words has the empty `tsvector`.
    assert_eq!(
        terms,
        [
            Some("'aus' 'gruße' 'koln'".to_owned()),
            None,
            Some(String::new())
        ]
    );
}
