//! Users: creating one (not with a held username), the prefix search, profile changes.

use super::*;

pub(crate) async fn insert_user(writer: &SqlitePool, user: UserRecord) -> StoreResult<()> {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT free_at FROM retired_usernames WHERE username = ? AND free_at > ?",
    )
    .bind(&user.username)
    .bind(user.created_at.millis())
    .fetch_optional(writer)
    .await
    .map_err(unavailable)?;
    if held.is_some() {
        return Err(StoreError::Conflict(Conflict::Username));
    }
    sqlx::query(&format!(
        "INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
    .bind(i64::from(user.push_previews))
    .execute(writer)
    .await
    .map_err(|error| match unavailable(error) {
        // `user_id` is made fresh by the core: the username is the rule broken.
        StoreError::Conflict(_) => StoreError::Conflict(Conflict::Username),
        other => other,
    })?;
    Ok(())
}

pub(crate) async fn search_users(
    reader: &SqlitePool,
    query: &str,
    limit: u32,
) -> StoreResult<Vec<UserRecord>> {
    // Two range scans, each on an index (`username` is unique and lower-case;
    // `users_display_name` is on `lower(display_name)`): a prefix is everything from
    // the prefix up to the prefix followed by the highest code point.
    let query = query.to_lowercase();
    let by_username = sqlx::query(&search_users_sql(SearchBy::Username))
        .bind(&query)
        .bind(i64::from(limit))
        .fetch_all(reader)
        .await
        .map_err(unavailable)?;
    let by_display_name = sqlx::query(&search_users_sql(SearchBy::DisplayName))
        .bind(&query)
        .bind(i64::from(limit))
        .fetch_all(reader)
        .await
        .map_err(unavailable)?;
    let mut users: Vec<UserRecord> = by_username.iter().map(user_from_row).collect();
    for user in by_display_name.iter().map(user_from_row) {
        if users.len() >= limit as usize {
            break;
        }
        if !users.iter().any(|known| known.user_id == user.user_id) {
            users.push(user);
        }
    }
    users.truncate(limit as usize);
    Ok(users)
}

pub(crate) async fn update_user(
    writer: &SqlitePool,
    user_id: &UserId,
    update: ProfileUpdate,
) -> StoreResult<UserRecord> {
    let mut transaction = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE user_id = ?"
    ))
    .bind(user_id.as_str())
    .fetch_one(&mut *transaction)
    .await
    .map_err(unavailable)?;
    let mut user = user_from_row(&row);
    if let Some(display_name) = update.display_name {
        user.display_name = display_name;
    }
    if let Some(status_message) = update.status_message {
        user.status_message = status_message;
    }
    if let Some(avatar_url) = update.avatar_url {
        user.avatar_url = avatar_url;
    }
    if let Some(privacy) = update.last_seen_privacy {
        user.last_seen_privacy = privacy;
    }
    if let Some(previews) = update.push_previews {
        user.push_previews = previews;
    }
    if let Some(avatar) = update.avatar_media_id {
        crate::media::swap_avatar(
            &mut transaction,
            user.avatar_media_id.as_ref(),
            avatar.as_ref(),
        )
        .await?;
        user.avatar_media_id = avatar;
    }
    sqlx::query(
        "UPDATE users SET display_name = ?, status_message = ?, avatar_url = ?, \
         avatar_media_id = ?, last_seen_privacy = ?, push_previews = ? WHERE user_id = ?",
    )
    .bind(&user.display_name)
    .bind(&user.status_message)
    .bind(&user.avatar_url)
    .bind(user.avatar_media_id.as_ref().map(MediaId::as_str))
    .bind(user.last_seen_privacy.as_str())
    .bind(i64::from(user.push_previews))
    .bind(user_id.as_str())
    .execute(&mut *transaction)
    .await
    .map_err(unavailable)?;
    transaction.commit().await.map_err(unavailable)?;
    Ok(user)
}
