//! Blocks between users, and the `send_blocked` flag they keep on the members of the
//! pair's direct conversation (the commit reads it with the membership it checks anyway).
//! Blocking and creating a direct chat take the same transaction-scoped advisory lock on
//! the pair, so a chat created while a block commits cannot miss its flag.

use super::*;

/// Serializes the writes about one pair of users (blocks, their direct chat) across nodes
/// until the caller's transaction ends.
pub(crate) async fn lock_pair(
    connection: &mut sqlx::PgConnection,
    direct_key: &str,
) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(direct_key)
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Sets `send_blocked` on both members of the pair's direct conversation (if there is
/// one) to whether a block stands between them, either way, or either account is
/// deleted. The caller holds `lock_pair`.
pub(crate) async fn refresh_send_blocked(
    connection: &mut sqlx::PgConnection,
    first: &UserId,
    second: &UserId,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE members SET send_blocked = EXISTS (SELECT 1 FROM blocks \
             WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1)) \
         OR EXISTS (SELECT 1 FROM users WHERE user_id IN ($1, $2) AND deleted_at IS NOT NULL) \
         WHERE conversation_id = (SELECT conversation_id FROM conversations WHERE direct_key = $3)",
    )
    .bind(first.as_str())
    .bind(second.as_str())
    .bind(parley_core::ids::direct_key(first, second))
    .execute(&mut *connection)
    .await
    .map_err(store_error)?;
    Ok(())
}

impl PgStore {
    /// Inserts (`block`) or deletes the block of `blocked` by `blocker` and refreshes their
    /// direct chat's flags, in one transaction; whether a row changed.
    pub(crate) async fn change_block(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        block: Option<Timestamp>,
    ) -> StoreResult<bool> {
        self.write("change_block", |mut transaction| async move {
            lock_pair(
                &mut transaction,
                &parley_core::ids::direct_key(blocker, blocked),
            )
            .await?;
            let changed = match block {
                Some(at) => sqlx::query(
                    "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(blocker.as_str())
                .bind(blocked.as_str())
                .bind(at.millis()),
                None => sqlx::query("DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2")
                    .bind(blocker.as_str())
                    .bind(blocked.as_str()),
            }
            .execute(&mut *transaction)
            .await
            .map_err(store_error)?
            .rows_affected()
                > 0;
            refresh_send_blocked(&mut transaction, blocker, blocked).await?;
            transaction.commit().await.map_err(store_error)?;
            Ok(Attempt::Done(changed))
        })
        .await
    }

    pub(crate) async fn select_blocked(
        &self,
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
             WHERE b.blocker_id = $1 ORDER BY b.created_at DESC, b.blocked_id"
        ))
        .bind(blocker.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| Ok((user_from_row(row)?, Timestamp(column(row, "blocked_at")?))))
            .collect()
    }

    /// The user ids one query answers, as a set.
    pub(crate) async fn select_user_ids(
        &self,
        sql: &'static str,
        user_id: &UserId,
    ) -> StoreResult<HashSet<UserId>> {
        let rows: Vec<(String,)> = sqlx::query_as(sql)
            .bind(user_id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(|(id,)| UserId(id)).collect())
    }
}

/// Everyone with a block between them and `$1`, either way, each with whether they are
/// the blocker.
pub(crate) const BLOCK_RELATIONS: &str =
    "SELECT blocked_id, FALSE FROM blocks WHERE blocker_id = $1 \
     UNION ALL SELECT blocker_id, TRUE FROM blocks WHERE blocked_id = $1";

/// Everyone `$1` has a direct conversation with and has written to there.
pub(crate) const DIRECT_PARTNERS: &str = "SELECT other.user_id FROM members mine \
     JOIN conversations c ON c.conversation_id = mine.conversation_id AND c.kind = 'direct' \
     JOIN members other ON other.conversation_id = mine.conversation_id \
         AND other.user_id <> mine.user_id \
     WHERE mine.user_id = $1 AND EXISTS (SELECT 1 FROM messages w \
         WHERE w.conversation_id = c.conversation_id AND w.sender_id = $1 \
         AND w.content_type <> 'system')";
