//! Reads of messages' current state (reactions, what a reader hid), delete for me, and
//! full-text search. The writes of changes are in `batch.rs` (they run inside a commit).

use super::*;

/// `messages` (one conversation's, ascending) in their current state as `viewer` sees
/// them: reaction counts with `me`, and what the viewer hid emptied and flagged.
pub(crate) async fn with_current_state(
    reader: &SqlitePool,
    conversation_id: &ConversationId,
    messages: Vec<Message>,
    viewer: &UserId,
) -> StoreResult<Vec<Message>> {
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return Ok(messages);
    };
    let (first, last) = (first.seq, last.seq);
    let reactions: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT target_seq, emoji, COUNT(*), MAX(user_id = ?) FROM reactions \
             WHERE conversation_id = ? AND target_seq BETWEEN ? AND ? \
             GROUP BY target_seq, emoji ORDER BY target_seq, MIN(seq)",
    )
    .bind(viewer.as_str())
    .bind(conversation_id.as_str())
    .bind(first)
    .bind(last)
    .fetch_all(reader)
    .await
    .map_err(unavailable)?;
    let hidden: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM hidden_messages WHERE user_id = ? AND conversation_id = ? \
             AND seq BETWEEN ? AND ?",
    )
    .bind(viewer.as_str())
    .bind(conversation_id.as_str())
    .bind(first)
    .bind(last)
    .fetch_all(reader)
    .await
    .map_err(unavailable)?;
    Ok(with_state(
        messages,
        reactions
            .into_iter()
            .map(|(seq, emoji, count, me)| (seq, emoji, count, me != 0)),
        &hidden,
        Timestamp::now(),
    ))
}

/// Who reacted to `seq` with what (see `Store::fetch_reactions`).
pub(crate) async fn reactions_of(
    reader: &SqlitePool,
    conversation_id: &ConversationId,
    seq: i64,
) -> StoreResult<Vec<ReactionUsers>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT emoji, user_id FROM reactions WHERE conversation_id = ? AND target_seq = ? \
             ORDER BY seq",
    )
    .bind(conversation_id.as_str())
    .bind(seq)
    .fetch_all(reader)
    .await
    .map_err(unavailable)?;
    Ok(group_reactions(rows))
}

/// Hides `seq` from `user_id` and drops their mention of it (see `Store::hide_message`).
pub(crate) async fn hide(
    writer: &SqlitePool,
    user_id: &UserId,
    conversation_id: &ConversationId,
    seq: i64,
) -> StoreResult<()> {
    let mut transaction = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM messages WHERE conversation_id = ? AND seq = ?")
            .bind(conversation_id.as_str())
            .bind(seq)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(unavailable)?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    for sql in [
        "INSERT OR IGNORE INTO hidden_messages (user_id, conversation_id, seq) VALUES (?, ?, ?)",
        "DELETE FROM mentions WHERE user_id = ? AND conversation_id = ? AND seq = ?",
    ] {
        sqlx::query(sql)
            .bind(user_id.as_str())
            .bind(conversation_id.as_str())
            .bind(seq)
            .execute(&mut *transaction)
            .await
            .map_err(unavailable)?;
    }
    transaction.commit().await.map_err(unavailable)?;
    Ok(())
}

/// Most conversations whose tokens a search lists in its match.
const MAX_TOKEN_FILTER: usize = 2_000;

/// Full-text search in one statement: the index's matches joined to the user's
/// memberships and messages, without what they hid or what was deleted (see
/// `Store::search_messages`).
pub(crate) async fn search(
    reader: &SqlitePool,
    query: SearchQuery<'_>,
) -> StoreResult<Vec<Message>> {
    // Which conversations: the one asked for, or all of the user's. Their tokens narrow
    // the match inside FTS5; the join on `members` below is still what grants access.
    let keys: Vec<i64> = match query.conversation_id {
        Some(conversation_id) => {
            sqlx::query_scalar("SELECT search_key FROM conversations WHERE conversation_id = ?")
                .bind(conversation_id.as_str())
                .fetch_all(reader)
                .await
                .map_err(unavailable)?
        }
        None => sqlx::query_scalar(
            "SELECT c.search_key FROM members mb JOIN conversations c \
             ON c.conversation_id = mb.conversation_id WHERE mb.user_id = ?",
        )
        .bind(query.user_id.as_str())
        .fetch_all(reader)
        .await
        .map_err(unavailable)?,
    };
    if keys.is_empty() || query.terms.is_empty() {
        return Ok(Vec::new());
    }
    // Each term a quoted prefix (terms are letters and digits only, so no quote can be in
    // one), all of them required, in one of the conversations. Past a few thousand
    // conversations the list costs more than it saves: the join alone decides then.
    let mut matching: Vec<String> = query
        .terms
        .iter()
        .map(|term| format!("\"{term}\"*"))
        .collect();
    if keys.len() <= MAX_TOKEN_FILTER {
        let tokens: Vec<String> = keys
            .iter()
            .map(|key| format!("\"{}\"", conversation_token(*key)))
            .collect();
        matching.insert(0, format!("({})", tokens.join(" OR ")));
    }
    let columns: Vec<String> = MESSAGE_COLUMNS
        .split(',')
        .map(|name| format!("m.{}", name.trim()))
        .collect();
    let mut select = sqlx::QueryBuilder::<Sqlite>::new(format!(
        "SELECT {} FROM search.message_index f \
             JOIN conversations c ON c.search_key = (f.rowid >> 32) \
             JOIN members mb ON mb.conversation_id = c.conversation_id AND mb.user_id = ",
        columns.join(", ")
    ));
    select.push_bind(query.user_id.as_str());
    select.push(
        " JOIN messages m ON m.conversation_id = c.conversation_id \
             AND m.seq = (f.rowid & 4294967295) \
             WHERE message_index MATCH ",
    );
    select.push_bind(matching.join(" AND "));
    select.push(" AND m.seq > mb.cleared_seq AND m.deleted = 0 AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = mb.user_id AND h.conversation_id = m.conversation_id AND h.seq = m.seq)");
    select.push(" AND (m.expires_at IS NULL OR m.expires_at > ");
    select.push_bind(Timestamp::now().millis());
    select.push(")");
    if query.conversation_id.is_some() {
        let (first, last) = index_range(keys[0]);
        select.push(" AND f.rowid BETWEEN ");
        select.push_bind(first);
        select.push(" AND ");
        select.push_bind(last);
    }
    if let Some(before) = query.before {
        select.push(" AND m.message_id < ");
        select.push_bind(before.as_str());
    }
    select.push(" ORDER BY m.message_id DESC LIMIT ");
    select.push_bind(i64::from(query.limit));
    let rows = select
        .build()
        .fetch_all(reader)
        .await
        .map_err(unavailable)?;
    rows.iter().map(message_from_row).collect()
}
