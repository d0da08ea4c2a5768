//! Each user's own view of their conversations: the list (pinned first, the archive) and
//! the settings that shape it (mute, archive, pin, marked unread). The same rules as the
//! SQLite store's `settings.rs`.

use super::*;

pub(crate) async fn list_conversations(
    pool: &PgPool,
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
    // $4 pinned_at, $5 last_activity_at, $6 conversation_id of the cursor: after a pinned
    // one come the pinned ones further down and then every unpinned one; after an
    // unpinned one, only unpinned ones further down. In the archive at $9: archived, and
    // since then no message arrived or muted now (`parley_core::rules::is_archived`). A
    // chat the user cleared stays out until it has a preview again.
    let sql = summary_select(
        "WHERE m.user_id = $3 \
         AND ($5::bigint IS NULL OR CASE WHEN $4::bigint IS NOT NULL THEN \
                (m.pinned_at IS NULL OR (m.pinned_at, c.conversation_id) < ($4, $6::text)) \
              ELSE (m.pinned_at IS NULL \
                AND (c.last_activity_at, c.conversation_id) < ($5, $6::text)) END) \
         AND ($8::boolean IS NULL OR (m.archived_at IS NOT NULL \
              AND (c.last_activity_at <= m.archived_at \
                   OR COALESCE(m.muted_until, 0) > $9::bigint)) = $8::boolean) \
         AND (m.cleared_seq = 0 OR l.l_seq IS NOT NULL) \
         ORDER BY m.pinned_at IS NULL, m.pinned_at DESC, c.last_activity_at DESC, \
             c.conversation_id DESC LIMIT $7",
    );
    let rows = bind_counting(sqlx::query(&sql), unread)
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
        .bind(now)
        .fetch_all(pool)
        .await
        .map_err(store_error)?;
    rows.iter().map(summary_from_row).collect()
}

pub(crate) async fn update_chat_settings(
    pool: &PgPool,
    conversation_id: &ConversationId,
    user_id: &UserId,
    update: &ChatSettingsUpdate,
    max_pinned: u32,
) -> StoreResult<()> {
    let mut transaction = pool.begin().await.map_err(store_error)?;
    // The user's row is the lock that orders their pins: two pins at once cannot both
    // see room for one more.
    let locked: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM users WHERE user_id = $1 FOR UPDATE")
            .bind(user_id.as_str())
            .fetch_optional(&mut *transaction)
            .await
            .map_err(store_error)?;
    if locked.is_none() {
        return Err(StoreError::NotFound);
    }
    let pinned: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT pinned_at FROM members WHERE conversation_id = $1 AND user_id = $2",
    )
    .bind(conversation_id.as_str())
    .bind(user_id.as_str())
    .fetch_optional(&mut *transaction)
    .await
    .map_err(store_error)?;
    let Some(pinned) = pinned else {
        return Err(StoreError::NotFound);
    };
    if matches!(update.pinned_at, Some(Some(_))) && pinned.is_none() {
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM members WHERE user_id = $1 AND pinned_at IS NOT NULL",
        )
        .bind(user_id.as_str())
        .fetch_one(&mut *transaction)
        .await
        .map_err(store_error)?;
        if others >= i64::from(max_pinned) {
            return Err(StoreError::Conflict(Conflict::TooManyPinned));
        }
    }
    // A pinned conversation pinned again keeps its place (its first `pinned_at`).
    sqlx::query(
        "UPDATE members SET \
         muted_until = CASE WHEN $3 THEN $4 ELSE muted_until END, \
         archived_at = CASE WHEN $5 THEN $6 ELSE archived_at END, \
         pinned_at = CASE WHEN NOT $7 THEN pinned_at WHEN $8 IS NULL THEN NULL \
             ELSE COALESCE(pinned_at, $8) END, \
         marked_unread = COALESCE($9, marked_unread) \
         WHERE conversation_id = $1 AND user_id = $2",
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
    .map_err(store_error)?;
    transaction.commit().await.map_err(store_error)
}

pub(crate) async fn clear_conversation(
    pool: &PgPool,
    conversation_id: &ConversationId,
    user_id: &UserId,
) -> StoreResult<i64> {
    let mut transaction = pool.begin().await.map_err(store_error)?;
    let cleared: Option<i64> = sqlx::query_scalar(
        "UPDATE members SET cleared_seq = (SELECT last_seq FROM conversations \
             WHERE conversation_id = $1), \
         pinned_at = NULL, archived_at = NULL, marked_unread = FALSE \
         WHERE conversation_id = $1 AND user_id = $2 RETURNING cleared_seq",
    )
    .bind(conversation_id.as_str())
    .bind(user_id.as_str())
    .fetch_optional(&mut *transaction)
    .await
    .map_err(store_error)?;
    let Some(cleared) = cleared else {
        return Err(StoreError::NotFound);
    };
    sqlx::query(
        "DELETE FROM hidden_messages WHERE user_id = $1 AND conversation_id = $2 AND seq <= $3",
    )
    .bind(user_id.as_str())
    .bind(conversation_id.as_str())
    .bind(cleared)
    .execute(&mut *transaction)
    .await
    .map_err(store_error)?;
    transaction.commit().await.map_err(store_error)?;
    Ok(cleared)
}

/// Every conversation of the user with where they stand in it.
pub(crate) async fn positions(
    pool: &PgPool,
    user_id: &UserId,
) -> StoreResult<Vec<ConversationPosition>> {
    let rows = sqlx::query(
        "SELECT c.conversation_id, c.last_seq, GREATEST(m.read_seq, m.cleared_seq) AS read_seq, \
         m.cleared_seq FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id \
         WHERE m.user_id = $1",
    )
    .bind(user_id.as_str())
    .fetch_all(pool)
    .await
    .map_err(store_error)?;
    rows.iter()
        .map(|row| {
            Ok(ConversationPosition {
                conversation_id: ConversationId(column(row, "conversation_id")?),
                last_seq: column(row, "last_seq")?,
                read_seq: column(row, "read_seq")?,
                cleared_seq: column(row, "cleared_seq")?,
            })
        })
        .collect()
}
