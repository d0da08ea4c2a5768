//! Revoking every device, deleting an account (a tombstone row stays), and reading what
//! a user sent for their export.

use super::*;

/// The user's devices with a token, revoked in the caller's transaction.
async fn revoke_all(
    transaction: &mut Transaction<'_, Sqlite>,
    user_id: &UserId,
    delete_rows: bool,
) -> StoreResult<Vec<DeviceId>> {
    let devices: Vec<(String,)> =
        sqlx::query_as("SELECT device_id FROM devices WHERE user_id = ? AND revoked_at IS NULL")
            .bind(user_id.as_str())
            .fetch_all(&mut **transaction)
            .await
            .map_err(unavailable)?;
    // No device of theirs gets a push any more.
    sqlx::query("DELETE FROM push_subscriptions WHERE user_id = ?")
        .bind(user_id.as_str())
        .execute(&mut **transaction)
        .await
        .map_err(unavailable)?;
    let statement = if delete_rows {
        "DELETE FROM devices WHERE user_id = ?1"
    } else {
        "UPDATE devices SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL"
    };
    sqlx::query(statement)
        .bind(user_id.as_str())
        .bind(Timestamp::now().millis())
        .execute(&mut **transaction)
        .await
        .map_err(unavailable)?;
    Ok(devices.into_iter().map(|(id,)| DeviceId(id)).collect())
}

pub(crate) async fn delete_devices(
    writer: &SqlitePool,
    user_id: &UserId,
) -> StoreResult<Vec<DeviceId>> {
    let mut transaction = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let devices = revoke_all(&mut transaction, user_id, false).await?;
    transaction.commit().await.map_err(unavailable)?;
    Ok(devices)
}

pub(crate) async fn delete_account(
    writer: &SqlitePool,
    scrub_wal: &AtomicBool,
    user_id: &UserId,
    at: Timestamp,
    username_free_at: Timestamp,
) -> StoreResult<Vec<DeviceId>> {
    let mut transaction = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let user = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE user_id = ?"
    ))
    .bind(user_id.as_str())
    .fetch_one(&mut *transaction)
    .await
    .map_err(unavailable)?;
    let user = user_from_row(&user);
    let devices = revoke_all(&mut transaction, user_id, true).await?;
    if user.deleted_at.is_some() {
        transaction.commit().await.map_err(unavailable)?;
        return Ok(devices);
    }
    let id = user_id.as_str();
    for statement in [
        "DELETE FROM blocks WHERE blocker_id = ?1 OR blocked_id = ?1",
        "DELETE FROM hidden_messages WHERE user_id = ?1",
        "DELETE FROM mentions WHERE user_id = ?1",
        // Its direct chats stop, both ways; its own settings go.
        "UPDATE members SET send_blocked = 1 WHERE conversation_id IN ( \
             SELECT m.conversation_id FROM members m JOIN conversations c \
             ON c.conversation_id = m.conversation_id AND c.kind = 'direct' \
             WHERE m.user_id = ?1)",
        "UPDATE members SET muted_until = NULL, archived_at = NULL, pinned_at = NULL, \
             marked_unread = 0 WHERE user_id = ?1",
    ] {
        sqlx::query(statement)
            .bind(id)
            .execute(&mut *transaction)
            .await
            .map_err(unavailable)?;
    }
    sqlx::query(
        "INSERT INTO retired_usernames (username, user_id, free_at) VALUES (?, ?, ?) \
         ON CONFLICT (username) DO UPDATE SET user_id = excluded.user_id, free_at = excluded.free_at",
    )
    .bind(&user.username)
    .bind(id)
    .bind(username_free_at.millis())
    .execute(&mut *transaction)
    .await
    .map_err(unavailable)?;
    // Their uploads go once no message or group names them (the collector checks).
    sqlx::query("UPDATE media SET released = 1 WHERE owner_id = ?")
        .bind(id)
        .execute(&mut *transaction)
        .await
        .map_err(unavailable)?;
    // A username no one can register (`~` is not a username character).
    sqlx::query(
        "UPDATE users SET username = '~' || user_id, display_name = 'Deleted account', \
         password_hash = '', status_message = NULL, avatar_url = NULL, avatar_media_id = NULL, \
         push_previews = 0, \
         last_seen_privacy = 'nobody', last_seen_at = NULL, deleted_at = ? WHERE user_id = ?",
    )
    .bind(at.millis())
    .bind(id)
    .execute(&mut *transaction)
    .await
    .map_err(unavailable)?;
    transaction.commit().await.map_err(unavailable)?;
    // The profile's old text is still in the WAL's frames until it is truncated.
    scrub_wal.store(true, Ordering::Release);
    Ok(devices)
}

pub(crate) async fn fetch_sent_conversations(
    reader: &SqlitePool,
    user_id: &UserId,
) -> StoreResult<Vec<ConversationId>> {
    // A scan of the messages (no index by sender: the hot path would pay for it on every
    // message); exports are rare and rate limited.
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT conversation_id FROM messages \
         WHERE sender_id = ? AND content_type <> 'system' ORDER BY conversation_id",
    )
    .bind(user_id.as_str())
    .fetch_all(reader)
    .await
    .map_err(unavailable)?;
    Ok(rows.into_iter().map(|(id,)| ConversationId(id)).collect())
}

pub(crate) async fn fetch_sent_messages(
    reader: &SqlitePool,
    user_id: &UserId,
    conversation_id: &ConversationId,
) -> StoreResult<Vec<Message>> {
    let rows = sqlx::query(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND sender_id = ?2 \
         AND content_type <> 'system' AND {unexpired} ORDER BY seq",
        unexpired = unexpired_sql("", 3),
    ))
    .bind(conversation_id.as_str())
    .bind(user_id.as_str())
    .bind(Timestamp::now().millis())
    .fetch_all(reader)
    .await
    .map_err(unavailable)?;
    rows.iter().map(message_from_row).collect()
}
