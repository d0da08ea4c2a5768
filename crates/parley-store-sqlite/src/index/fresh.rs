//! New messages' texts handed from the commits to the indexer in memory, so that in the
//! steady state the indexer reads only the log's small rows, never the messages back.

use super::*;
use std::collections::BTreeMap;

/// At most this many bytes of new messages' texts wait in memory for the indexer
/// ([`SearchIndex::remember`]); beyond it the indexer reads them from the main file.
const MAX_FRESH_BYTES: usize = 64 << 20;

/// New messages' texts handed from the commits to the indexer in memory. What is not here
/// (after a restart, past [`MAX_FRESH_BYTES`], or remembered after the indexer passed its
/// entry) is read from the main file; an entry the indexer passed is dropped.
#[derive(Default)]
pub(super) struct Fresh {
    texts: BTreeMap<i64, String>,
    bytes: usize,
}

/// What one remembered text costs in memory: its bytes and about what the map and the
/// `String` add to each entry.
fn held_bytes(text: &str) -> usize {
    text.len() + 64
}

impl SearchIndex {
    /// Hands the indexer the texts of new messages a commit just logged, by log id (the
    /// text as sent: the log's later entries, in order, carry what edits and deletes did
    /// to it). Only after the commit: an entry rolled back must not be indexed.
    pub(crate) fn remember(&self, texts: impl IntoIterator<Item = (i64, String)>) {
        let mut fresh = self
            .fresh
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (id, text) in texts {
            if fresh.bytes + held_bytes(&text) > MAX_FRESH_BYTES {
                break;
            }
            fresh.bytes += held_bytes(&text);
            if let Some(replaced) = fresh.texts.insert(id, text) {
                fresh.bytes -= held_bytes(&replaced);
            }
        }
    }

    /// Takes the remembered texts of the entries up to `last_id` (and forgets them all:
    /// the log is replayed past them).
    pub(super) fn take_fresh(&self, last_id: i64) -> BTreeMap<i64, String> {
        let mut fresh = self
            .fresh
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let later = fresh.texts.split_off(&last_id.saturating_add(1));
        let taken = std::mem::replace(&mut fresh.texts, later);
        let taken_bytes: usize = taken.values().map(|text| held_bytes(text)).sum();
        fresh.bytes = fresh.bytes.saturating_sub(taken_bytes);
        taken
    }
    /// The next batch of the log after `after`, in log order, as [`READ_LOG`] gives it.
    /// A new message's entry whose text the commit handed over ([`SearchIndex::remember`])
    /// takes it from memory, as unchanged (the log's later entries say what changed); only
    /// if some new message's text is not there is the batch read with the messages.
    pub(super) async fn read_log(
        &self,
        after: i64,
        reader: &SqlitePool,
    ) -> StoreResult<Vec<LogRow>> {
        let light: Vec<(i64, i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT id, index_rowid, old_terms, new_terms FROM index_log \
             WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(INDEX_BATCH)
        .fetch_all(reader)
        .await
        .map_err(unavailable)?;
        let Some(&(last_id, ..)) = light.last() else {
            return Ok(Vec::new());
        };
        let mut fresh = self.take_fresh(last_id);
        let complete = light.iter().all(|(id, _, old_terms, new_terms)| {
            old_terms.is_some() || new_terms.is_some() || fresh.contains_key(id)
        });
        let rows: Vec<LogRow> = if complete {
            light
                .into_iter()
                .map(|(id, rowid, old_terms, new_terms)| {
                    (id, rowid, old_terms, new_terms, None, None)
                })
                .collect()
        } else {
            sqlx::query_as(READ_LOG)
                .bind(after)
                .bind(INDEX_BATCH)
                .fetch_all(reader)
                .await
                .map_err(unavailable)?
        };
        Ok(rows
            .into_iter()
            .map(
                |(id, rowid, old_terms, new_terms, content, changed)| match fresh.remove(&id) {
                    Some(text) if old_terms.is_none() && new_terms.is_none() => {
                        (id, rowid, None, None, Some(text), Some(false))
                    }
                    _ => (id, rowid, old_terms, new_terms, content, changed),
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_testkit::store::{delete, edit, found, group, say, send, user};

    /// Whether the indexer takes the new messages' texts from memory or, when the commit's
    /// hand-over is lost (a restart), reads them back with what changed since, the index
    /// comes out the same: the edited text and not the first, nothing of the deleted one.
    #[tokio::test]
    async fn texts_not_handed_over_are_read_from_the_file() {
        for lost in [false, true] {
            let directory = tempfile::tempdir().unwrap();
            let sqlite = SqliteStore::open(directory.path()).await.unwrap();
            let store: Arc<dyn Store> = Arc::new(sqlite.clone());
            let alice = user(&store, "alice").await;
            let chat = group(&store, std::slice::from_ref(&alice)).await;
            // The indexer waits while this holds its position.
            let paused = sqlite.index.progress.lock().await;
            let kept = send(&store, say(&chat, &alice, "quince plain")).await.seq;
            let edited = send(&store, say(&chat, &alice, "quince before")).await.seq;
            let deleted = send(&store, say(&chat, &alice, "quince gone")).await.seq;
            send(&store, edit(&chat, &alice, edited, "medlar after")).await;
            send(&store, delete(&chat, &alice, deleted)).await;
            let held = sqlite.index.fresh.lock().unwrap().texts.len();
            assert_eq!(held, 3, "the three new texts were handed over");
            if lost {
                sqlite.index.take_fresh(i64::MAX);
            }
            drop(paused);
            assert_eq!(
                found(&store, &alice, "quince", &chat).await,
                vec![kept],
                "{lost}"
            );
            assert_eq!(found(&store, &alice, "medlar", &chat).await, vec![edited]);
            for gone in ["before", "gone"] {
                assert!(
                    found(&store, &alice, gone, &chat).await.is_empty(),
                    "{gone}"
                );
            }
            assert_eq!(sqlite.index.fresh.lock().unwrap().texts.len(), 0);
            sqlite.close().await;
        }
    }

    /// Past its byte budget the hand-over keeps nothing more (the indexer reads the rest
    /// from the file), and taking up to an id leaves the later texts.
    #[tokio::test]
    async fn the_hand_over_is_bounded() {
        let directory = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(directory.path()).await.unwrap();
        let big = "x".repeat(MAX_FRESH_BYTES / 2 - 64);
        sqlite
            .index
            .remember([(1, big.clone()), (2, big.clone()), (3, "y".into())]);
        let taken = sqlite.index.take_fresh(1);
        assert_eq!(taken.keys().copied().collect::<Vec<_>>(), vec![1]);
        let fresh = sqlite.index.fresh.lock().unwrap();
        assert_eq!(fresh.texts.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(fresh.bytes, held_bytes(&big));
    }
}
