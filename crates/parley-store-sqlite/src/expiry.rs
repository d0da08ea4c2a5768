//! `Store::purge_expired`: disappearing messages emptied for good, one batch per
//! transaction, with set statements over a temporary table of the batch (a fixed handful
//! of statements whatever its size, so the writer is held briefly). The rows stay as
//! empty tombstones, so `seq` has no gap (reads show them as hidden).

use super::*;

pub(crate) async fn purge_expired(
    writer: &SqlitePool,
    scrub_wal: &AtomicBool,
    index: &SearchIndex,
    now: Timestamp,
    limit: u32,
) -> StoreResult<u32> {
    let mut transaction = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    for statement in [
        "CREATE TEMP TABLE IF NOT EXISTS purge_batch (conversation_id TEXT NOT NULL, \
         seq INTEGER NOT NULL, PRIMARY KEY (conversation_id, seq)) WITHOUT ROWID",
        "DELETE FROM temp.purge_batch",
    ] {
        sqlx::query(statement)
            .execute(&mut *transaction)
            .await
            .map_err(unavailable)?;
    }
    let picked = sqlx::query(
        "INSERT INTO temp.purge_batch (conversation_id, seq) \
         SELECT conversation_id, seq FROM messages \
         WHERE expires_at IS NOT NULL AND (content <> '' OR attachments IS NOT NULL) \
         AND expires_at <= ? \
         ORDER BY expires_at LIMIT ?",
    )
    .bind(now.millis())
    .bind(i64::from(limit))
    .execute(&mut *transaction)
    .await
    .map_err(unavailable)?
    .rows_affected();
    if picked == 0 {
        return Ok(0);
    }
    // The index takes out what it holds of them (the indexer replays this after any
    // entry that put them in; see `index.rs`).
    let rows = sqlx::query(&format!(
        "SELECT {columns}, c.search_key FROM temp.purge_batch p \
         JOIN messages m ON m.conversation_id = p.conversation_id AND m.seq = p.seq \
         JOIN conversations c ON c.conversation_id = m.conversation_id",
        columns = MESSAGE_COLUMNS
            .split(',')
            .map(|name| format!("m.{}", name.trim()))
            .collect::<Vec<_>>()
            .join(", "),
    ))
    .fetch_all(&mut *transaction)
    .await
    .map_err(unavailable)?;
    let mut changes = Vec::new();
    for row in &rows {
        let message = message_from_row(row)?;
        if is_indexed(&message) {
            let search_key: i64 = row.get("search_key");
            changes.push(IndexChange {
                rowid: index_rowid(search_key, message.seq),
                old_terms: Some(index_document(search_key, &index_terms(&message.content))),
                new_terms: None,
            });
        }
    }
    for statement in [
        // Mentions are keyed by user first: the batch's, from the messages' own lists.
        "DELETE FROM mentions WHERE (user_id, conversation_id, seq) IN ( \
             SELECT j.value, m.conversation_id, m.seq FROM temp.purge_batch p \
             JOIN messages m ON m.conversation_id = p.conversation_id AND m.seq = p.seq, \
             json_each(m.mentions) j WHERE m.mentions IS NOT NULL)",
        "DELETE FROM reactions WHERE (conversation_id, target_seq) IN \
             (SELECT conversation_id, seq FROM temp.purge_batch)",
        "DELETE FROM hidden_messages WHERE (conversation_id, seq) IN \
             (SELECT conversation_id, seq FROM temp.purge_batch)",
        // Their change entries (an edit carries the text) are emptied with them, and
        // expire with them (they read as hidden too).
        "UPDATE messages SET content = '', expires_at = ( \
             SELECT t.expires_at FROM messages t WHERE t.conversation_id = messages.conversation_id \
             AND t.seq = messages.target_seq) \
         WHERE target_seq IS NOT NULL AND (conversation_id, target_seq) IN \
             (SELECT conversation_id, seq FROM temp.purge_batch)",
        // Their media can be collected once no other message carries them.
        "UPDATE media SET released = 1 WHERE media_id IN (SELECT r.media_id FROM media_refs r \
             JOIN temp.purge_batch p ON p.conversation_id = r.conversation_id AND p.seq = r.seq)",
        "DELETE FROM media_refs WHERE (conversation_id, seq) IN \
             (SELECT conversation_id, seq FROM temp.purge_batch)",
        "UPDATE messages SET content = '', mentions = NULL, edited_at = NULL, reply_to_seq = NULL, \
         attachments = NULL \
         WHERE (conversation_id, seq) IN (SELECT conversation_id, seq FROM temp.purge_batch)",
    ] {
        sqlx::query(statement)
            .execute(&mut *transaction)
            .await
            .map_err(unavailable)?;
    }
    log_for_index(&mut transaction, &changes).await?;
    transaction.commit().await.map_err(unavailable)?;
    if !changes.is_empty() {
        index.note_logged();
    }
    // The deleted text is still in the WAL's frames until it is truncated.
    scrub_wal.store(true, Ordering::Release);
    Ok(u32::try_from(picked).unwrap_or(u32::MAX))
}
