//! Each user's own view of their conversations: the list (pinned first, the archive) and
//! the settings that shape it (mute, archive, pin, marked unread).

use super::*;

/// Whether a conversation is in the user's archive at `?{now}`: archived, and since then
/// no message arrived (`last_activity_at` moves with messages, not with changes) or it is
/// muted now. The same rule as `parley_core::rules::is_archived`.
fn archived_sql(now: usize) -> String {
    format!(
        "(m.archived_at IS NOT NULL AND (c.last_activity_at <= m.archived_at \
         OR COALESCE(m.muted_until, 0) > ?{now}))"
    )
}

pub(crate) async fn list_conversations(
    reader: &SqlitePool,
    user_id: &UserId,
    filter: ListFilter,
    cursor: Option<ListCursor>,
    limit: u32,
    unread: Counting<'_>,
) -> StoreResult<Vec<ConversationSummary>> {
    let (archived, now) = match filter {
        ListFilter::All => (None, None),
        ListFilter::Archived { archived, now } => (Some(archived), Some(now.millis())),
    };
    // ?2 pinned_at, ?3 last_activity_at, ?4 conversation_id of the cursor: after a pinned
    // one come the pinned ones further down and then every unpinned one; after an
    // unpinned one, only unpinned ones further down. A chat the user cleared stays out
    // until it has a preview again.
    let sql = format!(
        "{select} WHERE m.user_id = ?1 \
         AND (?3 IS NULL OR CASE WHEN ?2 IS NOT NULL THEN \
                (m.pinned_at IS NULL OR m.pinned_at < ?2 \
                 OR (m.pinned_at = ?2 AND c.conversation_id < ?4)) \
              ELSE (m.pinned_at IS NULL AND (c.last_activity_at < ?3 \
                 OR (c.last_activity_at = ?3 AND c.conversation_id < ?4))) END) \
         AND (?6 IS NULL OR {archived} = ?6) \
         AND (m.cleared_seq = 0 OR l.seq IS NOT NULL) \
         ORDER BY m.pinned_at IS NULL, m.pinned_at DESC, c.last_activity_at DESC, \
             c.conversation_id DESC LIMIT ?5",
        select = summary_select(unread, 8),
        archived = archived_sql(7),
    );
    let query = sqlx::query(&sql)
        .bind(user_id.as_str())
        .bind(
            cursor
                .as_ref()
                .and_then(|cursor| cursor.pinned_at)
                .map(Timestamp::millis),
        )
        .bind(
            cursor
                .as_ref()
                .map(|cursor| cursor.last_activity_at.millis()),
        )
        .bind(
            cursor
                .as_ref()
                .map(|cursor| cursor.conversation_id.as_str()),
        )
        .bind(i64::from(limit))
        .bind(archived)
        .bind(now);
    let rows = bind_types(query, unread)
        .fetch_all(reader)
        .await
        .map_err(unavailable)?;
    rows.iter().map(summary_from_row).collect()
}

pub(crate) async fn update_chat_settings(
    writer: &SqlitePool,
    conversation_id: &ConversationId,
    user_id: &UserId,
    update: &ChatSettingsUpdate,
    max_pinned: u32,
) -> StoreResult<()> {
    let mut transaction = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let pinned: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT pinned_at FROM members WHERE conversation_id = ? AND user_id = ?",
    )
    .bind(conversation_id.as_str())
    .bind(user_id.as_str())
    .fetch_optional(&mut *transaction)
    .await
    .map_err(unavailable)?;
    let Some(pinned) = pinned else {
        return Err(StoreError::NotFound);
    };
    if matches!(update.pinned_at, Some(Some(_))) && pinned.is_none() {
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM members WHERE user_id = ? AND pinned_at IS NOT NULL",
        )
        .bind(user_id.as_str())
        .fetch_one(&mut *transaction)
        .await
        .map_err(unavailable)?;
        if others >= i64::from(max_pinned) {
            return Err(StoreError::Conflict(Conflict::TooManyPinned));
        }
    }
    // A pinned conversation pinned again keeps its place (its first `pinned_at`).
    sqlx::query(
        "UPDATE members SET \
         muted_until = CASE WHEN ?3 THEN ?4 ELSE muted_until END, \
         archived_at = CASE WHEN ?5 THEN ?6 ELSE archived_at END, \
         pinned_at = CASE WHEN NOT ?7 THEN pinned_at WHEN ?8 IS NULL THEN NULL \
             ELSE COALESCE(pinned_at, ?8) END, \
         marked_unread = COALESCE(?9, marked_unread) \
         WHERE conversation_id = ?1 AND user_id = ?2",
    )
    .bind(conversation_id.as_str())
    .bind(user_id.as_str())
    .bind(update.muted_until.is_some())
    .bind(update.muted_until.flatten().map(Timestamp::millis))
    .bind(update.archived_at.is_some())
    .bind(update.archived_at.flatten().map(Timestamp::millis))
    .bind(update.pinned_at.is_some())
    .bind(update.pinned_at.flatten().map(Timestamp::millis))
    .bind(update.marked_unread)
    .execute(&mut *transaction)
    .await
    .map_err(unavailable)?;
    transaction.commit().await.map_err(unavailable)
}

pub(crate) async fn clear_conversation(
    writer: &SqlitePool,
    conversation_id: &ConversationId,
    user_id: &UserId,
) -> StoreResult<i64> {
    let mut transaction = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let cleared: Option<i64> = sqlx::query_scalar(
        "UPDATE members SET cleared_seq = (SELECT last_seq FROM conversations \
             WHERE conversation_id = ?1), \
         pinned_at = NULL, archived_at = NULL, marked_unread = 0 \
         WHERE conversation_id = ?1 AND user_id = ?2 RETURNING cleared_seq",
    )
    .bind(conversation_id.as_str())
    .bind(user_id.as_str())
    .fetch_optional(&mut *transaction)
    .await
    .map_err(unavailable)?;
    let Some(cleared) = cleared else {
        return Err(StoreError::NotFound);
    };
    sqlx::query(
        "DELETE FROM hidden_messages WHERE user_id = ? AND conversation_id = ? AND seq <= ?",
    )
    .bind(user_id.as_str())
    .bind(conversation_id.as_str())
    .bind(cleared)
    .execute(&mut *transaction)
    .await
    .map_err(unavailable)?;
    transaction.commit().await.map_err(unavailable)?;
    Ok(cleared)
}
