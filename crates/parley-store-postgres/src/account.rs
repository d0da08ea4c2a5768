//! Revoking every device, deleting an account (a tombstone row stays), and reading what
//! a user sent for their export. See the SQLite store's `account.rs` for what goes and
//! what stays.

use super::*;

/// The user's devices with a token, revoked (or deleted) in the caller's transaction.
async fn revoke_all(
    connection: &mut sqlx::PgConnection,
    user_id: &UserId,
    delete_rows: bool,
) -> StoreResult<Vec<DeviceId>> {
    // Each with whether it had a token until now.
    let statement = if delete_rows {
        "DELETE FROM devices WHERE user_id = $1 RETURNING device_id, revoked_at IS NULL"
    } else {
        "UPDATE devices SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL \
         RETURNING device_id, TRUE"
    };
    let rows: Vec<(String, bool)> = sqlx::query_as(statement)
        .bind(user_id.as_str())
        .bind(Timestamp::now().millis())
        .fetch_all(&mut *connection)
        .await
        .map_err(store_error)?;
    // No device of theirs gets a push any more. After the devices' rows are taken: a
    // subscription being set now holds its device's row and is either seen here or
    // refused once this commits.
    sqlx::query("DELETE FROM push_subscriptions WHERE user_id = $1")
        .bind(user_id.as_str())
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    Ok(rows
        .into_iter()
        .filter(|(_, had_token)| *had_token)
        .map(|(id, _)| DeviceId(id))
        .collect())
}

impl PgStore {
    pub(crate) async fn revoke_devices(&self, user_id: &UserId) -> StoreResult<Vec<DeviceId>> {
        self.write("delete_devices", |mut transaction| async move {
            let devices = revoke_all(&mut transaction, user_id, false).await?;
            transaction.commit().await.map_err(store_error)?;
            Ok(Attempt::Done(devices))
        })
        .await
    }

    pub(crate) async fn tombstone(
        &self,
        user_id: &UserId,
        at: Timestamp,
        username_free_at: Timestamp,
    ) -> StoreResult<Vec<DeviceId>> {
        self.write("delete_account", |mut transaction| async move {
            let row = sqlx::query(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE user_id = $1 FOR UPDATE"
            ))
            .bind(user_id.as_str())
            .fetch_one(&mut *transaction)
            .await
            .map_err(store_error)?;
            let user = user_from_row(&row)?;
            let devices = revoke_all(&mut transaction, user_id, true).await?;
            if user.deleted_at.is_some() {
                transaction.commit().await.map_err(store_error)?;
                return Ok(Attempt::Done(devices));
            }
            for statement in [
                "DELETE FROM blocks WHERE blocker_id = $1 OR blocked_id = $1",
                "DELETE FROM hidden_messages WHERE user_id = $1",
                "DELETE FROM mentions WHERE user_id = $1",
                "UPDATE members SET send_blocked = TRUE WHERE conversation_id IN ( \
                     SELECT m.conversation_id FROM members m JOIN conversations c \
                     ON c.conversation_id = m.conversation_id AND c.kind = 'direct' \
                     WHERE m.user_id = $1)",
                "UPDATE members SET muted_until = NULL, archived_at = NULL, pinned_at = NULL, \
                     marked_unread = FALSE WHERE user_id = $1",
            ] {
                sqlx::query(statement)
                    .bind(user_id.as_str())
                    .execute(&mut *transaction)
                    .await
                    .map_err(store_error)?;
            }
            sqlx::query(
                "INSERT INTO retired_usernames (username, user_id, free_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (username) DO UPDATE SET user_id = EXCLUDED.user_id, \
                 free_at = EXCLUDED.free_at",
            )
            .bind(&user.username)
            .bind(user_id.as_str())
            .bind(username_free_at.millis())
            .execute(&mut *transaction)
            .await
            .map_err(store_error)?;
            // Their uploads go once no message or group names them (the collector checks).
            sqlx::query("UPDATE media SET released = true WHERE owner_id = $1")
                .bind(user_id.as_str())
                .execute(&mut *transaction)
                .await
                .map_err(store_error)?;
            sqlx::query(
                "UPDATE users SET username = '~' || user_id, display_name = 'Deleted account', \
                 password_hash = '', status_message = NULL, avatar_url = NULL, \
                 avatar_media_id = NULL, push_previews = FALSE, \
                 last_seen_privacy = 'nobody', last_seen_at = NULL, deleted_at = $2 \
                 WHERE user_id = $1",
            )
            .bind(user_id.as_str())
            .bind(at.millis())
            .execute(&mut *transaction)
            .await
            .map_err(store_error)?;
            transaction.commit().await.map_err(store_error)?;
            Ok(Attempt::Done(devices))
        })
        .await
    }

    pub(crate) async fn sent_conversations(
        &self,
        user_id: &UserId,
    ) -> StoreResult<Vec<ConversationId>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT conversation_id FROM messages \
             WHERE sender_id = $1 AND content_type <> 'system' ORDER BY conversation_id",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(rows.into_iter().map(|(id,)| ConversationId(id)).collect())
    }

    pub(crate) async fn sent_messages(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
    ) -> StoreResult<Vec<Message>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM messages WHERE conversation_id = $1 AND sender_id = $2 \
             AND content_type <> 'system' AND {} ORDER BY seq",
            message_columns("", ""),
            unexpired_sql("")
        ))
        .bind(conversation_id.as_str())
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(message_from_row).collect()
    }
}
