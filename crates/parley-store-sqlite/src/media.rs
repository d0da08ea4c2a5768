//! The media records of `Store`: uploads, who may read them, and their collection.

use super::*;
use parley_core::store::{MediaCollection, MediaRecord, MediaRecordStore};
use parley_proto::{Media, MediaStatus, Thumbnail};

const MEDIA_COLUMNS: &str = "media_id, owner_id, status, declared_type, content_type, size, \
     filename, sha256, width, height, duration_ms, thumbnail_width, thumbnail_height, \
     blurhash, created_at, sent";

#[async_trait]
impl MediaRecordStore for SqliteStore {
    /// Records an upload about to be made (`pending`, not sent) if the owner's uploads,
    /// this one included, stay within `quota_bytes` (checked and inserted atomically, so
    /// uploads started at once on any nodes never pass it together); else
    /// `Conflict(MediaQuota)` with what they take now. `MissingReference` if the owner does
    /// not exist.
    async fn insert_media(&self, media: MediaRecord, quota_bytes: u64) -> StoreResult<()> {
        insert_media(&self.writer, media, quota_bytes).await
    }

    /// `NotFound` if there is no such upload (or it was collected).
    async fn fetch_media(&self, media_id: &MediaId) -> StoreResult<MediaRecord> {
        fetch_media(&self.reader, media_id).await
    }

    /// Marks a `pending` upload `ready` with what processing found (`media`: type, size,
    /// dimensions, thumbnail, blurhash) and returns the record; one already `ready` is
    /// returned as it is (completing twice changes nothing). `NotFound` if there is none.
    async fn complete_media(&self, media: &Media) -> StoreResult<MediaRecord> {
        complete_media(&self.writer, media).await
    }

    /// The bytes the user's uploads take, pending ones included (the quota).
    async fn media_usage(&self, owner_id: &UserId) -> StoreResult<u64> {
        media_usage(&self.reader, owner_id).await
    }

    async fn claim_media(
        &self,
        media_id: &MediaId,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let claimed = sqlx::query(
            "UPDATE media SET claimed_until = ?1 WHERE media_id = ?2 AND status = ?3 \
                 AND (claimed_until IS NULL OR claimed_until < ?4)",
        )
        .bind(until.millis())
        .bind(media_id.as_str())
        .bind(MediaStatus::Pending.as_str())
        .bind(now.millis())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn release_media_claim(&self, media_id: &MediaId) -> StoreResult<()> {
        sqlx::query("UPDATE media SET claimed_until = NULL WHERE media_id = ?")
            .bind(media_id.as_str())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Whether `user_id` may download the upload: they uploaded it, or a message that
    /// carries it (not deleted, not expired) is in a conversation they are a member of
    /// now, after their `cleared_seq` and not hidden by them.
    async fn media_readable(&self, media_id: &MediaId, user_id: &UserId) -> StoreResult<bool> {
        media_readable(&self.reader, media_id, user_id).await
    }

    /// Deletes, in one statement each, the records of uploads nobody can use any more
    /// and returns them (the caller deletes their bytes): those never sent and created
    /// before `collection.unsent_before`, and those sent that no stored message carries
    /// any more (every one deleted for everyone or purged on expiry). At most
    /// `collection.limit`; a full `limit` means there may be more.
    async fn collect_media(&self, collection: MediaCollection) -> StoreResult<Vec<MediaRecord>> {
        collect_media(&self.writer, collection).await
    }
}

fn media_from_row(row: &SqliteRow) -> StoreResult<MediaRecord> {
    let status: String = column(row, "status")?;
    let status = MediaStatus::parse(&status).ok_or_else(|| {
        StoreError::corrupt(
            "media",
            UnknownValue {
                column: "status",
                value: status,
            },
        )
    })?;
    let small = |name: &str| -> StoreResult<Option<u32>> {
        Ok(column::<Option<i64>>(row, name)?.and_then(|value| u32::try_from(value).ok()))
    };
    let thumbnail = match (small("thumbnail_width")?, small("thumbnail_height")?) {
        (Some(width), Some(height)) => Some(Thumbnail { width, height }),
        _ => None,
    };
    Ok(MediaRecord {
        media: Media {
            media_id: MediaId(column(row, "media_id")?),
            status,
            content_type: column(row, "content_type")?,
            size: u64::try_from(column::<i64>(row, "size")?).unwrap_or_default(),
            filename: column(row, "filename")?,
            width: small("width")?,
            height: small("height")?,
            duration_ms: column::<Option<i64>>(row, "duration_ms")?
                .and_then(|value| u64::try_from(value).ok()),
            thumbnail,
            blurhash: column(row, "blurhash")?,
        },
        owner_id: UserId(column(row, "owner_id")?),
        declared_type: column(row, "declared_type")?,
        sha256: column(row, "sha256")?,
        created_at: Timestamp(column(row, "created_at")?),
        sent: column::<i64>(row, "sent")? != 0,
    })
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) async fn insert_media(
    writer: &SqlitePool,
    record: MediaRecord,
    quota_bytes: u64,
) -> StoreResult<()> {
    let media = &record.media;
    let mut transaction = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let used = media_usage(&mut *transaction, &record.owner_id).await?;
    if used.saturating_add(media.size) > quota_bytes {
        return Err(StoreError::Conflict(Conflict::MediaQuota { used }));
    }
    sqlx::query(&format!(
        "INSERT INTO media ({MEDIA_COLUMNS}) VALUES \
         (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(media.media_id.as_str())
    .bind(record.owner_id.as_str())
    .bind(media.status.as_str())
    .bind(&record.declared_type)
    .bind(&media.content_type)
    .bind(as_i64(media.size))
    .bind(&media.filename)
    .bind(&record.sha256)
    .bind(media.width)
    .bind(media.height)
    .bind(media.duration_ms.map(as_i64))
    .bind(media.thumbnail.map(|thumbnail| thumbnail.width))
    .bind(media.thumbnail.map(|thumbnail| thumbnail.height))
    .bind(&media.blurhash)
    .bind(record.created_at.millis())
    .bind(i64::from(record.sent))
    .execute(&mut *transaction)
    .await
    .map_err(unavailable)?;
    transaction.commit().await.map_err(unavailable)
}

pub(crate) async fn fetch_media(pool: &SqlitePool, media_id: &MediaId) -> StoreResult<MediaRecord> {
    let row = sqlx::query(&format!(
        "SELECT {MEDIA_COLUMNS} FROM media WHERE media_id = ?"
    ))
    .bind(media_id.as_str())
    .fetch_optional(pool)
    .await
    .map_err(unavailable)?
    .ok_or(StoreError::NotFound)?;
    media_from_row(&row)
}

pub(crate) async fn complete_media(writer: &SqlitePool, media: &Media) -> StoreResult<MediaRecord> {
    sqlx::query(
        "UPDATE media SET status = ?, content_type = ?, size = ?, width = ?, height = ?, \
         duration_ms = ?, thumbnail_width = ?, thumbnail_height = ?, blurhash = ? \
         WHERE media_id = ? AND status = ?",
    )
    .bind(MediaStatus::Ready.as_str())
    .bind(&media.content_type)
    .bind(as_i64(media.size))
    .bind(media.width)
    .bind(media.height)
    .bind(media.duration_ms.map(as_i64))
    .bind(media.thumbnail.map(|thumbnail| thumbnail.width))
    .bind(media.thumbnail.map(|thumbnail| thumbnail.height))
    .bind(&media.blurhash)
    .bind(media.media_id.as_str())
    .bind(MediaStatus::Pending.as_str())
    .execute(writer)
    .await
    .map_err(unavailable)?;
    fetch_media(writer, &media.media_id).await
}

/// What the owner's uploads take, through a pool or inside a transaction.
pub(crate) async fn media_usage<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    owner_id: &UserId,
) -> StoreResult<u64> {
    let used: i64 =
        sqlx::query_scalar("SELECT COALESCE(SUM(size), 0) FROM media WHERE owner_id = ?")
            .bind(owner_id.as_str())
            .fetch_one(executor)
            .await
            .map_err(unavailable)?;
    Ok(u64::try_from(used).unwrap_or_default())
}

pub(crate) async fn media_readable(
    reader: &SqlitePool,
    media_id: &MediaId,
    user_id: &UserId,
) -> StoreResult<bool> {
    // A message that carries it, a live user's profile picture, or the picture of a
    // group the user is in.
    let readable: i64 = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM media_refs r \
         JOIN members m ON m.conversation_id = r.conversation_id AND m.user_id = ?2 \
         JOIN messages g ON g.conversation_id = r.conversation_id AND g.seq = r.seq \
         WHERE r.media_id = ?1 AND r.seq > m.cleared_seq AND g.deleted = 0 \
         AND (g.expires_at IS NULL OR g.expires_at > ?3) \
         AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ?2 \
             AND h.conversation_id = r.conversation_id AND h.seq = r.seq)) \
         OR EXISTS (SELECT 1 FROM users u WHERE u.avatar_media_id = ?1 \
             AND u.deleted_at IS NULL) \
         OR EXISTS (SELECT 1 FROM conversations c \
             JOIN members m ON m.conversation_id = c.conversation_id AND m.user_id = ?2 \
             WHERE c.avatar_media_id = ?1)",
    )
    .bind(media_id.as_str())
    .bind(user_id.as_str())
    .bind(Timestamp::now().millis())
    .fetch_one(reader)
    .await
    .map_err(unavailable)?;
    Ok(readable != 0)
}

pub(crate) async fn collect_media(
    writer: &SqlitePool,
    collection: MediaCollection,
) -> StoreResult<Vec<MediaRecord>> {
    let mut transaction = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    // Released media a message still carries (it was forwarded) or a user or group
    // still shows are not released.
    sqlx::query(
        "UPDATE media SET released = 0 WHERE released = 1 \
         AND (EXISTS (SELECT 1 FROM media_refs r WHERE r.media_id = media.media_id) \
           OR EXISTS (SELECT 1 FROM users u WHERE u.avatar_media_id = media.media_id) \
           OR EXISTS (SELECT 1 FROM conversations c \
               WHERE c.avatar_media_id = media.media_id))",
    )
    .execute(&mut *transaction)
    .await
    .map_err(unavailable)?;
    let rows = sqlx::query(&format!(
        "DELETE FROM media WHERE media_id IN ( \
             SELECT media_id FROM media WHERE sent = 0 AND created_at < ?1 \
             UNION ALL SELECT media_id FROM media WHERE released = 1 \
             LIMIT ?2) \
         RETURNING {MEDIA_COLUMNS}"
    ))
    .bind(collection.unsent_before.millis())
    .bind(i64::from(collection.limit))
    .fetch_all(&mut *transaction)
    .await
    .map_err(unavailable)?;
    transaction.commit().await.map_err(unavailable)?;
    rows.iter().map(media_from_row).collect()
}

/// The attachments column: `NULL` for none, else the media objects as JSON.
pub(crate) fn attachments_column(attachments: &[parley_proto::Media]) -> Option<String> {
    (!attachments.is_empty())
        .then(|| serde_json::to_string(attachments).expect("media objects serialize"))
}

/// Records that the new messages carry their attachments: one `media_refs` row each,
/// and their media marked sent.
pub(crate) async fn refer_media(
    transaction: &mut Transaction<'_, Sqlite>,
    messages: &[&Message],
) -> StoreResult<()> {
    for message in messages
        .iter()
        .filter(|message| !message.attachments.is_empty())
    {
        for media in &message.attachments {
            sqlx::query(
                "INSERT OR IGNORE INTO media_refs (media_id, conversation_id, seq) VALUES (?, ?, ?)",
            )
            .bind(media.media_id.as_str())
            .bind(message.conversation_id.as_str())
            .bind(message.seq)
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
            sqlx::query("UPDATE media SET sent = 1, released = 0 WHERE media_id = ?")
                .bind(media.media_id.as_str())
                .execute(&mut **transaction)
                .await
                .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// A message no longer carries its attachments (deleted): their media may be collected
/// once no other message carries them.
pub(crate) async fn release_media(
    transaction: &mut Transaction<'_, Sqlite>,
    conversation_id: &str,
    seq: i64,
) -> StoreResult<()> {
    for sql in [
        "UPDATE media SET released = 1 WHERE media_id IN \
         (SELECT media_id FROM media_refs WHERE conversation_id = ?1 AND seq = ?2)",
        "DELETE FROM media_refs WHERE conversation_id = ?1 AND seq = ?2",
    ] {
        sqlx::query(sql)
            .bind(conversation_id)
            .bind(seq)
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// A user or group changes picture from `old` to `new`: the new media is marked sent and
/// kept (`MissingReference` if it was collected), the old one released (collected once
/// nothing names it).
pub(crate) async fn swap_avatar(
    transaction: &mut Transaction<'_, Sqlite>,
    old: Option<&MediaId>,
    new: Option<&MediaId>,
) -> StoreResult<()> {
    if old == new {
        return Ok(());
    }
    if let Some(new) = new {
        let kept = sqlx::query("UPDATE media SET sent = 1, released = 0 WHERE media_id = ?")
            .bind(new.as_str())
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
        if kept.rows_affected() == 0 {
            return Err(StoreError::MissingReference);
        }
    }
    if let Some(old) = old {
        sqlx::query("UPDATE media SET released = 1 WHERE media_id = ?")
            .bind(old.as_str())
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Which of the media the batch's messages attach still exist.
pub(crate) async fn existing_media(
    transaction: &mut Transaction<'_, Sqlite>,
    messages: &[NewMessage],
) -> StoreResult<HashSet<String>> {
    let wanted: Vec<&str> = messages
        .iter()
        .flat_map(|message| message.attachments.iter())
        .map(|media| media.media_id.as_str())
        .collect();
    let mut found = HashSet::new();
    for chunk in wanted.chunks(INSERT_CHUNK) {
        let mut query =
            sqlx::QueryBuilder::<Sqlite>::new("SELECT media_id FROM media WHERE media_id IN ");
        query.push_tuples(chunk, |mut row, media_id| {
            row.push_bind(*media_id);
        });
        let rows: Vec<(String,)> = query
            .build_query_as()
            .fetch_all(&mut **transaction)
            .await
            .map_err(unavailable)?;
        found.extend(rows.into_iter().map(|(media_id,)| media_id));
    }
    Ok(found)
}

/// Whether every attachment of `message` is among the `existing` media.
pub(crate) fn attachments_exist(message: &NewMessage, existing: &HashSet<String>) -> bool {
    message
        .attachments
        .iter()
        .all(|attachment| existing.contains(attachment.media_id.as_str()))
}
