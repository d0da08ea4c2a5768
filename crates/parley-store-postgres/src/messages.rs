//! The message reads with a shape of their own, and delete for me: a history page in
//! its current state as one reader sees it (reactions counted, hidden messages emptied),
//! one message, who reacted with what, hiding a message, the full-text search, and the
//! senders a receipt is about. `store.rs`'s trait methods call these on the pool.

use super::*;

/// The message `sender_id` stored with `client_msg_id`, if any (in any conversation).
pub(crate) async fn fetch_by_client_id(
    pool: &PgPool,
    sender_id: &UserId,
    client_msg_id: &str,
) -> StoreResult<Option<Message>> {
    let row = sqlx::query(&format!(
        "SELECT {} FROM messages WHERE client_msg_id = $1 AND sender_id = $2",
        message_columns("", "")
    ))
    .bind(client_msg_id)
    .bind(sender_id.as_str())
    .fetch_optional(pool)
    .await
    .map_err(store_error)?;
    row.as_ref().map(message_from_row).transpose()
}

/// At most `limit` messages of `range`, in ascending `seq`, taken from the `from` end,
/// in their current state as `viewer` sees them: `reactions` counted (with `me` for
/// the viewer), and the messages the viewer hid with `hidden: true`, empty `content`
/// and no mentions, reactions or reply (they keep their `seq`: no gap).
pub(crate) async fn fetch_page(
    pool: &PgPool,
    conversation_id: &ConversationId,
    range: SeqRange,
    from: PageFrom,
    limit: u32,
    viewer: &UserId,
) -> StoreResult<Vec<Message>> {
    let order = match from {
        PageFrom::Oldest => "ASC",
        PageFrom::Newest => "DESC",
    };
    // The viewer's `cleared_seq` first, on its own: bound as a plain value, the page's
    // range keeps its plan (an index scan in `seq` order up to the limit); a subquery
    // in the range would leave the planner guessing its size.
    let cleared: i64 = sqlx::query_scalar(
        "SELECT cleared_seq FROM members WHERE conversation_id = $1 AND user_id = $2",
    )
    .bind(conversation_id.as_str())
    .bind(viewer.as_str())
    .fetch_optional(pool)
    .await
    .map_err(store_error)?
    .unwrap_or(0);
    let rows = sqlx::query(&format!(
        "SELECT {} FROM messages WHERE conversation_id = $1 \
         AND seq > $2 AND seq < $3 ORDER BY seq {order} LIMIT $4",
        message_columns("", "")
    ))
    .bind(conversation_id.as_str())
    .bind(range.after_seq.unwrap_or(0).max(cleared))
    .bind(range.before_seq.unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(store_error)?;
    let mut messages: Vec<Message> = rows
        .iter()
        .map(message_from_row)
        .collect::<StoreResult<_>>()?;
    if from == PageFrom::Newest {
        messages.reverse();
    }
    hide_changes_to_cleared(&mut messages, cleared);
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return Ok(messages);
    };
    let (first, last) = (first.seq, last.seq);
    // The page's reactions (each emoji in the order it was first used) and what the
    // viewer hid of it: two range reads of primary keys.
    let reactions: Vec<(i64, String, i64, bool)> = sqlx::query_as(
        "SELECT target_seq, emoji, COUNT(*), bool_or(user_id = $1) FROM reactions \
         WHERE conversation_id = $2 AND target_seq BETWEEN $3 AND $4 \
         GROUP BY target_seq, emoji ORDER BY target_seq, MIN(seq)",
    )
    .bind(viewer.as_str())
    .bind(conversation_id.as_str())
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await
    .map_err(store_error)?;
    let hidden: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM hidden_messages WHERE user_id = $1 AND conversation_id = $2 \
         AND seq BETWEEN $3 AND $4",
    )
    .bind(viewer.as_str())
    .bind(conversation_id.as_str())
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await
    .map_err(store_error)?;
    Ok(with_state(messages, reactions, &hidden, Timestamp::now()))
}

/// One message in its current state, without `reactions`; `NotFound` if there is no
/// such `seq`.
pub(crate) async fn fetch_one(
    pool: &PgPool,
    conversation_id: &ConversationId,
    seq: i64,
) -> StoreResult<Message> {
    let row = sqlx::query(&format!(
        "SELECT {} FROM messages WHERE conversation_id = $1 AND seq = $2 AND {}",
        message_columns("", ""),
        unexpired_sql("")
    ))
    .bind(conversation_id.as_str())
    .bind(seq)
    .fetch_one(pool)
    .await
    .map_err(store_error)?;
    message_from_row(&row)
}

/// Who reacted to the message `seq` with what, one entry per emoji in the order each
/// was first used, users in the order they reacted.
pub(crate) async fn fetch_reaction_users(
    pool: &PgPool,
    conversation_id: &ConversationId,
    seq: i64,
) -> StoreResult<Vec<ReactionUsers>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT emoji, user_id FROM reactions WHERE conversation_id = $1 \
         AND target_seq = $2 ORDER BY seq",
    )
    .bind(conversation_id.as_str())
    .bind(seq)
    .fetch_all(pool)
    .await
    .map_err(store_error)?;
    Ok(group_reactions(rows))
}

/// Hides the message `seq` from `user_id` (delete for me): it leaves their history,
/// search, preview and mention count. Hiding twice is not an error. `NotFound` if
/// there is no such message.
pub(crate) async fn hide(
    pool: &PgPool,
    user_id: &UserId,
    conversation_id: &ConversationId,
    seq: i64,
) -> StoreResult<()> {
    // One statement, so one transaction: the hidden row and the user's mention row
    // of the message go together, and only if the message exists.
    let found: i64 = sqlx::query_scalar(
        "WITH target AS ( \
            SELECT seq FROM messages WHERE conversation_id = $2 AND seq = $3), \
         hidden AS ( \
            INSERT INTO hidden_messages (user_id, conversation_id, seq) \
            SELECT $1, $2, seq FROM target ON CONFLICT DO NOTHING), \
         unmentioned AS ( \
            DELETE FROM mentions WHERE user_id = $1 AND conversation_id = $2 \
            AND seq IN (SELECT seq FROM target)) \
         SELECT COUNT(*) FROM target",
    )
    .bind(user_id.as_str())
    .bind(conversation_id.as_str())
    .bind(seq)
    .fetch_one(pool)
    .await
    .map_err(store_error)?;
    if found == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Full-text search: messages of `query.user_id`'s conversations (checked in the
/// query: member now, not hidden by them, not deleted) that contain a word starting
/// with each term, newest `message_id` first, at most `limit`, in their current state
/// without `reactions`.
pub(crate) async fn search(pool: &PgPool, query: SearchQuery<'_>) -> StoreResult<Vec<Message>> {
    if query.terms.is_empty() {
        // No term, no match (an empty `tsquery` matches nothing either).
        return Ok(Vec::new());
    }
    // The terms were folded by the core, as the indexed ones were: the query is
    // written as a `tsquery` value (each term a quoted prefix, all ANDed), never
    // parsed by a PostgreSQL configuration. Only the conditions given are written,
    // so each shape of the query gets a plan of its own.
    let mut select = sqlx::QueryBuilder::<Postgres>::new(format!(
        "SELECT {} FROM messages m \
         JOIN members mb ON mb.conversation_id = m.conversation_id AND mb.user_id = ",
        message_columns("m", "")
    ));
    select.push_bind(query.user_id.as_str());
    select.push(" WHERE m.search_terms @@ ");
    select.push_bind(prefix_query(query.terms));
    select.push(
        "::tsquery AND m.seq > mb.cleared_seq AND NOT m.deleted AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
         WHERE h.user_id = mb.user_id AND h.conversation_id = m.conversation_id \
         AND h.seq = m.seq)",
    );
    select.push(format!(" AND {}", unexpired_sql("m")));
    if let Some(conversation_id) = query.conversation_id {
        select.push(" AND m.conversation_id = ");
        select.push_bind(conversation_id.as_str());
    }
    if let Some(before) = query.before {
        select.push(" AND m.message_id < ");
        select.push_bind(before.as_str());
    }
    select.push(" ORDER BY m.message_id DESC LIMIT ");
    select.push_bind(i64::from(query.limit));
    let rows = select.build().fetch_all(pool).await.map_err(store_error)?;
    rows.iter().map(message_from_row).collect()
}

/// The distinct senders of the messages with `after_seq < seq <= up_to_seq` that
/// `counting` lets count (`except_own` does not apply: there is no asking user).
pub(crate) async fn fetch_counted_senders(
    pool: &PgPool,
    conversation_id: &ConversationId,
    after_seq: i64,
    up_to_seq: i64,
    counting: Counting<'_>,
) -> StoreResult<Vec<UserId>> {
    let except_types: Vec<&str> = counting
        .except_types
        .iter()
        .map(ContentType::as_str)
        .collect();
    let rows = sqlx::query(
        "SELECT DISTINCT sender_id FROM messages WHERE conversation_id = $1 \
         AND seq > $2 AND seq <= $3 AND content_type <> ALL($4::text[])",
    )
    .bind(conversation_id.as_str())
    .bind(after_seq)
    .bind(up_to_seq)
    .bind(&except_types)
    .fetch_all(pool)
    .await
    .map_err(store_error)?;
    rows.iter()
        .map(|row| Ok(UserId(column(row, "sender_id")?)))
        .collect()
}
