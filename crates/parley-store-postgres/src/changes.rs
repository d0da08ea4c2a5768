//! Message changes inside an append transaction: what the change entries of a batch may
//! target (read once, under the conversations' row locks), the mention rows of new
//! messages, and the effect of each stored change entry on its target (a reaction set or
//! cleared, an edit, a delete for everyone). `batch.rs`'s `append_locked` calls these;
//! nothing here commits.

use super::*;

/// What a change entry may target, as the transaction sees it: `(ordinary, deleted)` per
/// `(conversation, seq)`; ordinary is neither a system message nor a change entry.
pub(crate) type TargetStates = HashMap<(ConversationId, i64), (bool, bool)>;

/// The state of the messages the change entries of a batch target, in one statement.
/// Read under the conversations' row locks: every write that appends, edits or deletes a
/// message holds its conversation's, so no state read here can change before the commit
/// but by this transaction.
pub(crate) async fn fetch_target_states(
    connection: &mut sqlx::PgConnection,
    messages: &[NewMessage],
) -> StoreResult<TargetStates> {
    let (conversation_ids, seqs): (Vec<&str>, Vec<i64>) = messages
        .iter()
        .filter(|message| message.content_type.is_change())
        .filter_map(|message| Some((message.conversation_id.as_str(), message.target_seq?)))
        .unzip();
    if conversation_ids.is_empty() {
        return Ok(TargetStates::new());
    }
    // An expired message (not purged yet) is gone already.
    let rows = sqlx::query(&format!(
        "SELECT conversation_id, seq, content_type, deleted FROM messages \
         WHERE (conversation_id, seq) IN (SELECT * FROM UNNEST($1::text[], $2::bigint[])) \
         AND {}",
        unexpired_sql("")
    ))
    .bind(&conversation_ids)
    .bind(&seqs)
    .fetch_all(&mut *connection)
    .await
    .map_err(store_error)?;
    rows.iter()
        .map(|row| {
            let content_type = ContentType::from(column::<String>(row, "content_type")?);
            Ok((
                (
                    ConversationId(column(row, "conversation_id")?),
                    column(row, "seq")?,
                ),
                (
                    !content_type.is_system() && !content_type.is_change(),
                    column::<bool>(row, "deleted")?,
                ),
            ))
        })
        .collect()
}

/// Records who new messages (not change entries) mention, in one statement, if any do.
pub(crate) async fn insert_mentions(
    connection: &mut sqlx::PgConnection,
    messages: &[&Message],
) -> StoreResult<()> {
    let mut user_ids: Vec<&str> = Vec::new();
    let mut conversation_ids: Vec<&str> = Vec::new();
    let mut seqs: Vec<i64> = Vec::new();
    for message in messages.iter().filter(|message| !message.is_change()) {
        for user_id in &message.mentions {
            user_ids.push(user_id.as_str());
            conversation_ids.push(message.conversation_id.as_str());
            seqs.push(message.seq);
        }
    }
    if user_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO mentions (user_id, conversation_id, seq) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&user_ids)
    .bind(&conversation_ids)
    .bind(&seqs)
    .execute(&mut *connection)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// Applies one stored change entry to its target (checked against the target's state in
/// the same transaction), in one statement. See `Store::append_messages` for what each
/// kind does.
pub(crate) async fn apply_message_change(
    connection: &mut sqlx::PgConnection,
    change: &Message,
) -> StoreResult<()> {
    let conversation_id = change.conversation_id.as_str();
    let Some(target_seq) = change.target_seq else {
        return Ok(());
    };
    let edit_sql: String;
    let query = if change.content_type == ContentType::REACTION {
        if change.content.is_empty() {
            sqlx::query(
                "DELETE FROM reactions WHERE conversation_id = $1 AND target_seq = $2 \
                 AND user_id = $3",
            )
            .bind(conversation_id)
            .bind(target_seq)
            .bind(change.sender_id.as_str())
        } else {
            sqlx::query(
                "INSERT INTO reactions (conversation_id, target_seq, user_id, emoji, seq) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (conversation_id, target_seq, user_id) \
                 DO UPDATE SET emoji = excluded.emoji, seq = excluded.seq",
            )
            .bind(conversation_id)
            .bind(target_seq)
            .bind(change.sender_id.as_str())
            .bind(change.content.as_str())
            .bind(change.seq)
        }
    } else if change.content_type == ContentType::EDIT {
        // The target's text, `edited_at` and terms (if it is indexed: it is not deleted,
        // so a `text` one is), and every edit entry of the target carries the current
        // text: no older one stays, and expires with the target (disappearing messages).
        // The two parts write different rows (the target is no edit entry), so they are
        // one statement.
        edit_sql = format!(
            "WITH entries AS ( \
                UPDATE messages SET content = $3, expires_at = (SELECT t.expires_at FROM messages t \
                    WHERE t.conversation_id = $1 AND t.seq = $2) \
                WHERE conversation_id = $1 AND target_seq = $2 AND content_type = 'edit') \
             UPDATE messages SET content = $3, edited_at = $4, \
                search_terms = CASE WHEN content_type = 'text' AND NOT deleted \
                    THEN {terms} END \
             WHERE conversation_id = $1 AND seq = $2",
            terms = terms_sql("$5::text"),
        );
        sqlx::query(&edit_sql)
            .bind(conversation_id)
            .bind(target_seq)
            .bind(change.content.as_str())
            .bind(change.created_at.millis())
            .bind(index_document(&change.content))
    } else if change.content_type == ContentType::DELETE {
        // Its text, mentions and terms emptied for good, its edit entries emptied, its
        // reactions and mention rows dropped. `target` reads the mentions as they were
        // before this statement (every part sees the same snapshot), and each part
        // writes rows of its own.
        sqlx::query(
            "WITH target AS ( \
                SELECT mentions FROM messages WHERE conversation_id = $1 AND seq = $2), \
             unmentioned AS ( \
                DELETE FROM mentions n USING target t, \
                    jsonb_array_elements_text(t.mentions) AS u(user_id) \
                WHERE n.user_id = u.user_id AND n.conversation_id = $1 AND n.seq = $2), \
             unreacted AS ( \
                DELETE FROM reactions WHERE conversation_id = $1 AND target_seq = $2), \
             entries AS ( \
                UPDATE messages SET content = '' \
                WHERE conversation_id = $1 AND target_seq = $2 AND content_type = 'edit'), \
             released AS ( \
                UPDATE media SET released = true WHERE media_id IN ( \
                    SELECT media_id FROM media_refs WHERE conversation_id = $1 AND seq = $2)), \
             unreferred AS ( \
                DELETE FROM media_refs WHERE conversation_id = $1 AND seq = $2) \
             UPDATE messages SET content = '', mentions = NULL, edited_at = NULL, \
                deleted = true, search_terms = NULL, attachments = NULL \
             WHERE conversation_id = $1 AND seq = $2",
        )
        .bind(conversation_id)
        .bind(target_seq)
    } else {
        return Ok(());
    };
    query.execute(&mut *connection).await.map_err(store_error)?;
    Ok(())
}

/// The results of appending system messages, which are never refused for membership: a
/// `client_msg_id` already used in another conversation is a broken rule, not a retry.
pub(crate) fn only_appended(outcomes: Vec<AppendOutcome>) -> StoreResult<Vec<Appended>> {
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.map_err(|_| StoreError::Conflict(Conflict::Unique("messages_dedup".into())))
        })
        .collect()
}
