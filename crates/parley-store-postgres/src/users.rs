//! Users: creating one (not with a held username), the prefix search, profile changes,
//! a new device (not for a deleted account).

use super::*;

impl PgStore {
    pub(crate) async fn insert_user_row(&self, user: UserRecord) -> StoreResult<()> {
        // Not while the username is held after its account was deleted.
        let inserted = sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 WHERE NOT EXISTS \
             (SELECT 1 FROM retired_usernames WHERE username = $2 AND free_at > $10)"
        ))
        .bind(user.user_id.as_str())
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.display_name)
        .bind(&user.status_message)
        .bind(&user.avatar_url)
        .bind(user.avatar_media_id.as_ref().map(MediaId::as_str))
        .bind(user.last_seen_privacy.as_str())
        .bind(user.last_seen_at.map(Timestamp::millis))
        .bind(user.created_at.millis())
        .bind(user.deleted_at.map(Timestamp::millis))
        .bind(user.push_previews)
        .execute(&self.pool)
        .await
        .map_err(|error| match store_error(error) {
            // `user_id` is made fresh by the core: the username is the rule broken.
            StoreError::Conflict(_) => StoreError::Conflict(Conflict::Username),
            other => other,
        })?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(Conflict::Username));
        }
        Ok(())
    }

    pub(crate) async fn search_user_rows(
        &self,
        query: &str,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        // Two range scans, each on its `text_pattern_ops` index; PostgreSQL lower-cases
        // both the prefix and the names, so they fold case by the same rules.
        let mut users: Vec<UserRecord> = Vec::new();
        for by in [SearchBy::Username, SearchBy::DisplayName] {
            if users.len() >= limit as usize {
                break;
            }
            let rows = sqlx::query(&search_users_sql(by))
                .bind(query)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
            for row in &rows {
                let user = user_from_row(row)?;
                if users.len() < limit as usize
                    && !users.iter().any(|known| known.user_id == user.user_id)
                {
                    users.push(user);
                }
            }
        }
        Ok(users)
    }

    pub(crate) async fn update_user_row(
        &self,
        user_id: &UserId,
        update: ProfileUpdate,
    ) -> StoreResult<UserRecord> {
        let mut transaction = self.pool.begin().await.map_err(store_error)?;
        if let Some(avatar) = &update.avatar_media_id {
            let old: Option<String> = sqlx::query_scalar(
                "SELECT avatar_media_id FROM users WHERE user_id = $1 FOR NO KEY UPDATE",
            )
            .bind(user_id.as_str())
            .fetch_optional(&mut *transaction)
            .await
            .map_err(store_error)?
            .ok_or(StoreError::NotFound)?;
            let old = old.map(MediaId);
            crate::media::swap_avatar(&mut transaction, old.as_ref(), avatar.as_ref()).await?;
        }
        let row = sqlx::query(&format!(
            "UPDATE users SET display_name = COALESCE($2, display_name), \
             status_message = CASE WHEN $3 THEN $4 ELSE status_message END, \
             avatar_url = CASE WHEN $5 THEN $6 ELSE avatar_url END, \
             last_seen_privacy = COALESCE($7, last_seen_privacy), \
             avatar_media_id = CASE WHEN $8 THEN $9 ELSE avatar_media_id END, \
             push_previews = COALESCE($10, push_previews) \
             WHERE user_id = $1 RETURNING {USER_COLUMNS}"
        ))
        .bind(user_id.as_str())
        .bind(update.display_name)
        .bind(update.status_message.is_some())
        .bind(update.status_message.flatten())
        .bind(update.avatar_url.is_some())
        .bind(update.avatar_url.flatten())
        .bind(update.last_seen_privacy.map(LastSeenPrivacy::as_str))
        .bind(update.avatar_media_id.is_some())
        .bind(update.avatar_media_id.flatten().map(|media_id| media_id.0))
        .bind(update.push_previews)
        .fetch_one(&mut *transaction)
        .await
        .map_err(store_error)?;
        let user = user_from_row(&row)?;
        transaction.commit().await.map_err(store_error)?;
        Ok(user)
    }

    pub(crate) async fn insert_device_row(&self, device: NewDevice) -> StoreResult<()> {
        // Not for an account deleted meanwhile (a login racing the deletion).
        let inserted = sqlx::query(
            "INSERT INTO devices (device_id, user_id, name, token_hash, created_at) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS \
             (SELECT 1 FROM users WHERE user_id = $2 AND deleted_at IS NULL)",
        )
        .bind(device.device_id.as_str())
        .bind(device.user_id.as_str())
        .bind(&device.name)
        .bind(&device.token_hash)
        .bind(device.created_at.millis())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
