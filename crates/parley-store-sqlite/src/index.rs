//! The search index: what a message is indexed as, its row id, the queue commits fill
//! and the indexer drains, and taking a message out of the index.

use super::*;

/// Most queued messages one indexing transaction takes.
const INDEX_BATCH: i64 = 4096;

/// A message's row id in `message_index`: its conversation's `search_key` in the high 32
/// bits, its `seq` in the low ones (a conversation is one range of row ids).
pub(crate) fn index_rowid(search_key: i64, seq: i64) -> i64 {
    (search_key << 32) | (seq & 0xFFFF_FFFF)
}

/// The row id range `[first, last]` of one conversation's messages in `message_index`.
pub(crate) fn index_range(search_key: i64) -> (i64, i64) {
    (
        index_rowid(search_key, 0),
        index_rowid(search_key, 0xFFFF_FFFF),
    )
}

/// Whether a message is indexed for search: ordinary text, not deleted, with a `seq` that
/// fits its row id.
pub(crate) fn is_indexed(message: &Message) -> bool {
    message.content_type == ContentType::TEXT && !message.deleted && message.seq <= 0xFFFF_FFFF
}

/// Adds messages' terms to the search index (the caller checked `is_indexed`).
pub(crate) async fn index_messages(
    transaction: &mut Transaction<'_, Sqlite>,
    rows: &[(i64, String)],
) -> StoreResult<()> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut insert =
            sqlx::QueryBuilder::<Sqlite>::new("INSERT INTO message_index (rowid, terms) ");
        insert.push_values(chunk, |mut row, (rowid, terms)| {
            row.push_bind(*rowid).push_bind(terms.as_str());
        });
        insert
            .build()
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Takes a message out of the search index: FTS5's `delete` command with the terms it was
/// indexed with (made again from `content`, the text it has until this transaction
/// changes it); `secure-delete` then removes them from the index's pages.
pub(crate) async fn unindex_message(
    transaction: &mut Transaction<'_, Sqlite>,
    rowid: i64,
    content: &str,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO message_index (message_index, rowid, terms) VALUES ('delete', ?, ?)")
        .bind(rowid)
        .bind(index_document(rowid >> 32, content))
        .execute(&mut **transaction)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// What `message_index` indexes for a message of the conversation `search_key`: its
/// conversation's token (`_c<search_key>`, which no query word can match or be a prefix
/// of: words are letters and digits only) and then its terms.
pub(crate) fn index_document(search_key: i64, content: &str) -> String {
    let mut document = conversation_token(search_key);
    for term in parley_core::search::index_terms(content) {
        document.push(' ');
        document.push_str(&term);
    }
    document
}

/// The index token every message of a conversation carries: a search restricted to some
/// conversations intersects their tokens' lists with the terms' lists inside FTS5,
/// instead of checking every match of a frequent word against the memberships.
pub(crate) fn conversation_token(search_key: i64) -> String {
    format!("_c{search_key}")
}

/// Queues committed messages `(conversation_id, seq)` for the indexer.
pub(crate) async fn queue_for_index(
    transaction: &mut Transaction<'_, Sqlite>,
    messages: &[(&str, i64)],
) -> StoreResult<()> {
    for chunk in messages.chunks(INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT OR IGNORE INTO index_queue (conversation_id, seq) ",
        );
        insert.push_values(chunk, |mut row, (conversation_id, seq)| {
            row.push_bind(*conversation_id).push_bind(*seq);
        });
        insert
            .build()
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Whether a message waits in the index queue (not in `message_index` yet).
pub(crate) async fn is_queued(
    transaction: &mut Transaction<'_, Sqlite>,
    conversation_id: &str,
    seq: i64,
) -> StoreResult<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM index_queue WHERE conversation_id = ? AND seq = ?")
            .bind(conversation_id)
            .bind(seq)
            .fetch_optional(&mut **transaction)
            .await
            .map_err(unavailable)?;
    Ok(found.is_some())
}

/// Moves what waits in the index queue into `message_index`, a batch per transaction,
/// until the queue is empty. Returns how many messages were indexed.
pub(crate) async fn drain_index_queue(writer: &SqlitePool) -> StoreResult<usize> {
    let mut indexed = 0;
    loop {
        let mut transaction = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        let rows: Vec<(String, i64, String, i64, i64, String)> = sqlx::query_as(
            "SELECT q.conversation_id, q.seq, m.content, m.deleted, c.search_key, m.content_type \
             FROM index_queue q JOIN messages m ON m.conversation_id = q.conversation_id \
             AND m.seq = q.seq JOIN conversations c ON c.conversation_id = q.conversation_id \
             ORDER BY q.conversation_id, q.seq LIMIT ?",
        )
        .bind(INDEX_BATCH)
        .fetch_all(&mut *transaction)
        .await
        .map_err(unavailable)?;
        let Some((last_conversation, last_seq, ..)) = rows.last().cloned() else {
            // Rows whose message is gone (none today) would stay: clear them too.
            sqlx::query("DELETE FROM index_queue")
                .execute(&mut *transaction)
                .await
                .map_err(unavailable)?;
            transaction.commit().await.map_err(unavailable)?;
            return Ok(indexed);
        };
        let documents: Vec<(i64, String)> = rows
            .iter()
            .filter(|(_, seq, _, deleted, _, content_type)| {
                *deleted == 0 && content_type == "text" && *seq <= 0xFFFF_FFFF
            })
            .map(|(_, seq, content, _, search_key, _)| {
                (
                    index_rowid(*search_key, *seq),
                    index_document(*search_key, content),
                )
            })
            .collect();
        index_messages(&mut transaction, &documents).await?;
        sqlx::query("DELETE FROM index_queue WHERE (conversation_id, seq) <= (?, ?)")
            .bind(&last_conversation)
            .bind(last_seq)
            .execute(&mut *transaction)
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)?;
        indexed += documents.len();
        if (rows.len() as i64) < INDEX_BATCH {
            return Ok(indexed);
        }
    }
}
