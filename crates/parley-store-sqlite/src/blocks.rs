//! Blocks between users, and the `send_blocked` flag they keep on the members of the
//! pair's direct conversation (the commit reads it with the membership it checks anyway).

use super::*;

/// Sets `send_blocked` on both members of the direct conversation with `direct_key` (if
/// there is one) to whether a block stands between `first` and `second`, either way, or
/// either account is deleted.
/// Inside the caller's write transaction.
pub(crate) async fn refresh_send_blocked(
    transaction: &mut Transaction<'_, Sqlite>,
    first: &UserId,
    second: &UserId,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE members SET send_blocked = EXISTS (SELECT 1 FROM blocks \
             WHERE (blocker_id = ?1 AND blocked_id = ?2) OR (blocker_id = ?2 AND blocked_id = ?1)) \
         OR EXISTS (SELECT 1 FROM users WHERE user_id IN (?1, ?2) AND deleted_at IS NOT NULL) \
         WHERE conversation_id = (SELECT conversation_id FROM conversations WHERE direct_key = ?3)",
    )
    .bind(first.as_str())
    .bind(second.as_str())
    .bind(parley_core::ids::direct_key(first, second))
    .execute(&mut **transaction)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Inserts (`Some(at)`) or deletes the block of `blocked` by `blocker` and refreshes their
/// direct chat's flags, in one transaction; whether a row changed.
pub(crate) async fn change_block(
    writer: &SqlitePool,
    blocker: &UserId,
    blocked: &UserId,
    block: Option<Timestamp>,
) -> StoreResult<bool> {
    let mut transaction = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let query = match block {
        Some(at) => sqlx::query(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(blocker.as_str())
        .bind(blocked.as_str())
        .bind(at.millis()),
        None => sqlx::query("DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?")
            .bind(blocker.as_str())
            .bind(blocked.as_str()),
    };
    let changed = query
        .execute(&mut *transaction)
        .await
        .map_err(unavailable)?
        .rows_affected()
        > 0;
    refresh_send_blocked(&mut transaction, blocker, blocked).await?;
    transaction.commit().await.map_err(unavailable)?;
    Ok(changed)
}

pub(crate) async fn list_blocked(
    reader: &SqlitePool,
    blocker: &UserId,
) -> StoreResult<Vec<(UserRecord, Timestamp)>> {
    let columns = USER_COLUMNS
        .split(", ")
        .map(|column| format!("u.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query(&format!(
        "SELECT {columns}, b.created_at AS blocked_at FROM blocks b \
         JOIN users u ON u.user_id = b.blocked_id \
         WHERE b.blocker_id = ? ORDER BY b.created_at DESC, b.blocked_id"
    ))
    .bind(blocker.as_str())
    .fetch_all(reader)
    .await
    .map_err(unavailable)?;
    Ok(rows
        .iter()
        .map(|row| (user_from_row(row), Timestamp(row.get("blocked_at"))))
        .collect())
}

pub(crate) async fn fetch_block_relations(
    reader: &SqlitePool,
    user_id: &UserId,
) -> StoreResult<BlockRelations> {
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT blocked_id, 0 FROM blocks WHERE blocker_id = ?1 \
         UNION ALL SELECT blocker_id, 1 FROM blocks WHERE blocked_id = ?1",
    )
    .bind(user_id.as_str())
    .fetch_all(reader)
    .await
    .map_err(unavailable)?;
    Ok(BlockRelations::from_pairs(
        rows.into_iter()
            .map(|(id, blocks_me)| (UserId(id), blocks_me)),
    ))
}

pub(crate) async fn fetch_direct_partners(
    reader: &SqlitePool,
    user_id: &UserId,
) -> StoreResult<HashSet<UserId>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT other.user_id FROM members mine \
         JOIN conversations c ON c.conversation_id = mine.conversation_id AND c.kind = 'direct' \
         JOIN members other ON other.conversation_id = mine.conversation_id \
             AND other.user_id <> mine.user_id \
         WHERE mine.user_id = ?1 AND EXISTS (SELECT 1 FROM messages w \
             WHERE w.conversation_id = c.conversation_id AND w.sender_id = ?1 \
             AND w.content_type <> 'system')",
    )
    .bind(user_id.as_str())
    .fetch_all(reader)
    .await
    .map_err(unavailable)?;
    Ok(rows.into_iter().map(|(id,)| UserId(id)).collect())
}
