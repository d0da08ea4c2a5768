//! `Store::purge_expired`: disappearing messages emptied for good, one batch per
//! transaction (the rows stay as empty tombstones, so `seq` has no gap). The batch's rows are locked `FOR UPDATE SKIP LOCKED`, so nodes purging at
//! once share the work instead of waiting for each other, and a purge never waits on a
//! send (a send locks the conversation row, not its messages).

use super::*;

impl PgStore {
    pub(crate) async fn purge_batch(&self, now: Timestamp, limit: u32) -> StoreResult<u32> {
        self.write("purge_expired", |mut transaction| async move {
            let rows = sqlx::query(
                "SELECT conversation_id, seq, mentions::text AS mentions FROM messages \
                 WHERE expires_at IS NOT NULL AND (content <> '' OR attachments IS NOT NULL) \
                 AND expires_at <= $1 \
                 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(now.millis())
            .bind(i64::from(limit))
            .fetch_all(&mut *transaction)
            .await
            .map_err(store_error)?;
            if rows.is_empty() {
                return Ok(Attempt::Done(0));
            }
            let mut conversation_ids = Vec::with_capacity(rows.len());
            let mut seqs = Vec::with_capacity(rows.len());
            let mut mentioned: (Vec<String>, Vec<String>, Vec<i64>) = Default::default();
            for row in &rows {
                let conversation_id: String = column(row, "conversation_id")?;
                let seq: i64 = column(row, "seq")?;
                if let Some(text) = column::<Option<String>>(row, "mentions")? {
                    let users: Vec<UserId> = serde_json::from_str(&text)
                        .map_err(|error| StoreError::corrupt("mentions", error))?;
                    for user in users {
                        mentioned.0.push(user.0);
                        mentioned.1.push(conversation_id.clone());
                        mentioned.2.push(seq);
                    }
                }
                conversation_ids.push(conversation_id);
                seqs.push(seq);
            }
            sqlx::query(
                "DELETE FROM mentions WHERE (user_id, conversation_id, seq) IN \
                 (SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]))",
            )
            .bind(&mentioned.0)
            .bind(&mentioned.1)
            .bind(&mentioned.2)
            .execute(&mut *transaction)
            .await
            .map_err(store_error)?;
            for statement in [
                "DELETE FROM reactions WHERE (conversation_id, target_seq) IN \
                 (SELECT * FROM UNNEST($1::text[], $2::bigint[]))",
                "DELETE FROM hidden_messages WHERE (conversation_id, seq) IN \
                 (SELECT * FROM UNNEST($1::text[], $2::bigint[]))",
                // Their change entries (an edit carries the text) are emptied with them,
                // and expire with them (they read as hidden too).
                "UPDATE messages c SET content = '', expires_at = t.expires_at FROM messages t \
                 WHERE c.target_seq IS NOT NULL AND t.conversation_id = c.conversation_id \
                 AND t.seq = c.target_seq \
                 AND (c.conversation_id, c.target_seq) IN (SELECT * FROM UNNEST($1::text[], $2::bigint[]))",
                // The search terms are on the row: they go with the text (an empty
                // vector, not NULL, which the start-up backfill would take for unindexed).
                "UPDATE media SET released = true WHERE media_id IN (SELECT media_id \
                 FROM media_refs WHERE (conversation_id, seq) IN \
                 (SELECT * FROM UNNEST($1::text[], $2::bigint[])))",
                "DELETE FROM media_refs WHERE (conversation_id, seq) IN \
                 (SELECT * FROM UNNEST($1::text[], $2::bigint[]))",
                "UPDATE messages SET content = '', mentions = NULL, edited_at = NULL, \
                 reply_to_seq = NULL, search_terms = ''::tsvector, attachments = NULL \
                 WHERE (conversation_id, seq) IN (SELECT * FROM UNNEST($1::text[], $2::bigint[]))",
            ] {
                sqlx::query(statement)
                    .bind(&conversation_ids)
                    .bind(&seqs)
                    .execute(&mut *transaction)
                    .await
                    .map_err(store_error)?;
            }
            transaction.commit().await.map_err(store_error)?;
            Ok(Attempt::Done(u32::try_from(rows.len()).unwrap_or(u32::MAX)))
        })
        .await
    }
}
