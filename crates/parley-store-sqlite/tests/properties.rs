//! Property tests of `seq` assignment and dedup: random batches of sends, with retries and
//! reused client ids, against a model of what the protocol promises.

use parley_core::store::{NewMessage, PageFrom, SeqRange};
use parley_core::Store;
use parley_proto::{ConversationId, UserId};
use parley_testkit::store::{group, text, user};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// One send: (sender index, conversation index, client id index).
type Send = (usize, usize, u8);

fn batches() -> impl Strategy<Value = Vec<Vec<Send>>> {
    prop::collection::vec(
        prop::collection::vec((0..3usize, 0..2usize, 0..12u8), 1..20),
        1..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the batching and retries: each `(sender, client_msg_id)` is stored once
    /// (a retry returns the first message; the same id in another conversation is
    /// refused as `ClientMsgIdReused` and uses no `seq`), new messages
    /// get the next `seq` of their conversation in batch order, and every conversation's
    /// history is exactly 1..=n.
    #[test]
    fn seq_is_gap_free_and_dedup_is_exact(batches in batches()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let directory = tempfile::tempdir().unwrap();
            let store: Arc<dyn Store> =
                Arc::new(parley_store_sqlite::SqliteStore::open(directory.path()).await.unwrap());
            let mut users = Vec::new();
            for index in 0..3 {
                users.push(user(&store, &format!("user{index}")).await);
            }
            let conversations: Vec<ConversationId> =
                vec![group(&store, &users).await, group(&store, &users).await];
            // The model: first (conversation, seq) per (sender, client id); next seq per conversation.
            let mut first_seen: HashMap<(usize, u8), (usize, i64)> = HashMap::new();
            let mut last_seq = [1i64, 1i64];
            for batch in batches {
                let messages: Vec<NewMessage> = batch
                    .iter()
                    .map(|(sender, conversation, client_id)| {
                        text(&conversations[*conversation], &users[*sender], &format!("c{client_id}"))
                    })
                    .collect();
                let outcomes = store.append_messages(messages).await.unwrap();
                assert_eq!(outcomes.len(), batch.len());
                for ((sender, conversation, client_id), outcome) in batch.iter().zip(outcomes) {
                    match first_seen.get(&(*sender, *client_id)) {
                        Some((first_conversation, _)) if first_conversation != conversation => {
                            assert_eq!(
                                outcome,
                                Err(parley_core::store::AppendRefusal::ClientMsgIdReused)
                            );
                            continue;
                        }
                        _ => {}
                    }
                    let outcome = outcome.expect("every user is a member of both groups");
                    match first_seen.get(&(*sender, *client_id)) {
                        Some((first_conversation, first_seq)) => {
                            assert!(outcome.duplicate);
                            assert_eq!(outcome.message.conversation_id, conversations[*first_conversation]);
                            assert_eq!(outcome.message.seq, *first_seq);
                        }
                        None => {
                            last_seq[*conversation] += 1;
                            assert!(!outcome.duplicate);
                            assert_eq!(outcome.message.seq, last_seq[*conversation]);
                            assert_eq!(outcome.message.sender_id, users[*sender]);
                            first_seen.insert((*sender, *client_id), (*conversation, last_seq[*conversation]));
                        }
                    }
                }
            }
            for (index, conversation_id) in conversations.iter().enumerate() {
                let stored = store
                    .fetch_messages(conversation_id, SeqRange::default(), PageFrom::Oldest, 10_000, &UserId::from("u_reader"))
                    .await
                    .unwrap();
                let seqs: Vec<i64> = stored.iter().map(|message| message.seq).collect();
                assert_eq!(seqs, (1..=last_seq[index]).collect::<Vec<_>>());
                let record = store.fetch_conversation(conversation_id).await.unwrap();
                assert_eq!(record.last_seq, last_seq[index]);
            }
        });
    }
}
