//! The media records of `Store` on PostgreSQL: uploads, who may read them, and their
//! collection (the same rules as SQLite's).

use super::*;
use parley_core::store::{MediaCollection, MediaRecord, MediaRecordStore};
use parley_proto::{Media, MediaId, MediaStatus, Thumbnail};

const MEDIA_COLUMNS: &str = "media_id, owner_id, status, declared_type, content_type, size, \
     filename, sha256, width, height, duration_ms, thumbnail_width, thumbnail_height, \
     blurhash, created_at, sent";

#[async_trait]
impl MediaRecordStore for PgStore {
    /// Records an upload about to be made (`pending`, not sent) if the owner's uploads,
    /// this one included, stay within `quota_bytes` (checked and inserted atomically, so
    /// uploads started at once on any nodes never pass it together); else
    /// `Conflict(MediaQuota)` with what they take now. `MissingReference` if the owner does
    /// not exist.
    async fn insert_media(&self, media: MediaRecord, quota_bytes: u64) -> StoreResult<()> {
        insert_media(&self.pool, media, quota_bytes).await
    }

    /// `NotFound` if there is no such upload (or it was collected).
    async fn fetch_media(&self, media_id: &MediaId) -> StoreResult<MediaRecord> {
        fetch_media(&self.pool, media_id).await
    }

    /// Marks a `pending` upload `ready` with what processing found (`media`: type, size,
    /// dimensions, thumbnail, blurhash) and returns the record; one already `ready` is
    /// returned as it is (completing twice changes nothing). `NotFound` if there is none.
    async fn complete_media(&self, media: &Media) -> StoreResult<MediaRecord> {
        complete_media(&self.pool, media).await
    }

    /// The bytes the user's uploads take, pending ones included (the quota).
    async fn media_usage(&self, owner_id: &UserId) -> StoreResult<u64> {
        media_usage(&self.pool, owner_id).await
    }

    async fn claim_media(
        &self,
        media_id: &MediaId,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let claimed = sqlx::query(
            "UPDATE media SET claimed_until = $1 WHERE media_id = $2 AND status = $3 \
                 AND (claimed_until IS NULL OR claimed_until < $4)",
        )
        .bind(until.millis())
        .bind(media_id.as_str())
        .bind(MediaStatus::Pending.as_str())
        .bind(now.millis())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn release_media_claim(&self, media_id: &MediaId) -> StoreResult<()> {
        sqlx::query("UPDATE media SET claimed_until = NULL WHERE media_id = $1")
            .bind(media_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Whether `user_id` may download the upload: they uploaded it, or a message that
    /// carries it (not deleted, not expired) is in a conversation they are a member of
    /// now, after their `cleared_seq` and not hidden by them.
    async fn media_readable(&self, media_id: &MediaId, user_id: &UserId) -> StoreResult<bool> {
        media_readable(&self.pool, media_id, user_id).await
    }

    /// Deletes, in one statement each, the records of uploads nobody can use any more
    /// and returns them (the caller deletes their bytes): those never sent and created
    /// before `collection.unsent_before`, and those sent that no stored message carries
    /// any more (every one deleted for everyone or purged on expiry). At most
    /// `collection.limit`; a full `limit` means there may be more.
    async fn collect_media(&self, collection: MediaCollection) -> StoreResult<Vec<MediaRecord>> {
        collect_media(&self.pool, collection).await
    }
}

fn media_from_row(row: &PgRow) -> StoreResult<MediaRecord> {
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
        sent: column::<bool>(row, "sent")?,
    })
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) async fn insert_media(
    writer: &PgPool,
    record: MediaRecord,
    quota_bytes: u64,
) -> StoreResult<()> {
    let media = &record.media;
    let mut transaction = writer.begin().await.map_err(store_error)?;
    // The owner's row lock orders their uploads on every node: one sums and inserts at a
    // time (`NO KEY`: rows that only refer to the user are not held up).
    let owner: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM users WHERE user_id = $1 FOR NO KEY UPDATE")
            .bind(record.owner_id.as_str())
            .fetch_optional(&mut *transaction)
            .await
            .map_err(store_error)?;
    if owner.is_none() {
        return Err(StoreError::MissingReference);
    }
    let used: i64 =
        sqlx::query_scalar("SELECT COALESCE(SUM(size), 0)::bigint FROM media WHERE owner_id = $1")
            .bind(record.owner_id.as_str())
            .fetch_one(&mut *transaction)
            .await
            .map_err(store_error)?;
    let used = u64::try_from(used).unwrap_or_default();
    if used.saturating_add(media.size) > quota_bytes {
        return Err(StoreError::Conflict(Conflict::MediaQuota { used }));
    }
    sqlx::query(&format!(
        "INSERT INTO media ({MEDIA_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(media.media_id.as_str())
    .bind(record.owner_id.as_str())
    .bind(media.status.as_str())
    .bind(&record.declared_type)
    .bind(&media.content_type)
    .bind(as_i64(media.size))
    .bind(&media.filename)
    .bind(&record.sha256)
    .bind(media.width.map(i64::from))
    .bind(media.height.map(i64::from))
    .bind(media.duration_ms.map(as_i64))
    .bind(media.thumbnail.map(|thumbnail| i64::from(thumbnail.width)))
    .bind(media.thumbnail.map(|thumbnail| i64::from(thumbnail.height)))
    .bind(&media.blurhash)
    .bind(record.created_at.millis())
    .bind(record.sent)
    .execute(&mut *transaction)
    .await
    .map_err(store_error)?;
    transaction.commit().await.map_err(store_error)
}

pub(crate) async fn fetch_media(pool: &PgPool, media_id: &MediaId) -> StoreResult<MediaRecord> {
    let row = sqlx::query(&format!(
        "SELECT {MEDIA_COLUMNS} FROM media WHERE media_id = $1"
    ))
    .bind(media_id.as_str())
    .fetch_optional(pool)
    .await
    .map_err(store_error)?
    .ok_or(StoreError::NotFound)?;
    media_from_row(&row)
}

pub(crate) async fn complete_media(writer: &PgPool, media: &Media) -> StoreResult<MediaRecord> {
    sqlx::query(
        "UPDATE media SET status = $1, content_type = $2, size = $3, width = $4, height = $5, \
         duration_ms = $6, thumbnail_width = $7, thumbnail_height = $8, blurhash = $9 \
         WHERE media_id = $10 AND status = $11",
    )
    .bind(MediaStatus::Ready.as_str())
    .bind(&media.content_type)
    .bind(as_i64(media.size))
    .bind(media.width.map(i64::from))
    .bind(media.height.map(i64::from))
    .bind(media.duration_ms.map(as_i64))
    .bind(media.thumbnail.map(|thumbnail| i64::from(thumbnail.width)))
    .bind(media.thumbnail.map(|thumbnail| i64::from(thumbnail.height)))
    .bind(&media.blurhash)
    .bind(media.media_id.as_str())
    .bind(MediaStatus::Pending.as_str())
    .execute(writer)
    .await
    .map_err(store_error)?;
    fetch_media(writer, &media.media_id).await
}

pub(crate) async fn media_usage(reader: &PgPool, owner_id: &UserId) -> StoreResult<u64> {
    let used: i64 =
        sqlx::query_scalar("SELECT COALESCE(SUM(size), 0)::bigint FROM media WHERE owner_id = $1")
            .bind(owner_id.as_str())
            .fetch_one(reader)
            .await
            .map_err(store_error)?;
    Ok(u64::try_from(used).unwrap_or_default())
}

pub(crate) async fn media_readable(
    reader: &PgPool,
    media_id: &MediaId,
    user_id: &UserId,
) -> StoreResult<bool> {
    // A message that carries it, a live user's profile picture, or the picture of a
    // group the user is in.
    let readable: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM media_refs r \
         JOIN members m ON m.conversation_id = r.conversation_id AND m.user_id = $2 \
         JOIN messages g ON g.conversation_id = r.conversation_id AND g.seq = r.seq \
         WHERE r.media_id = $1 AND r.seq > m.cleared_seq AND NOT g.deleted \
         AND (g.expires_at IS NULL OR g.expires_at > $3) \
         AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = $2 \
             AND h.conversation_id = r.conversation_id AND h.seq = r.seq)) \
         OR EXISTS (SELECT 1 FROM users u WHERE u.avatar_media_id = $1 \
             AND u.deleted_at IS NULL) \
         OR EXISTS (SELECT 1 FROM conversations c \
             JOIN members m ON m.conversation_id = c.conversation_id AND m.user_id = $2 \
             WHERE c.avatar_media_id = $1)",
    )
    .bind(media_id.as_str())
    .bind(user_id.as_str())
    .bind(Timestamp::now().millis())
    .fetch_one(reader)
    .await
    .map_err(store_error)?;
    Ok(readable)
}

/// No message carries the media (of the row `media`) and no user or group shows it.
const UNNAMED: &str = "(NOT EXISTS (SELECT 1 FROM media_refs r WHERE r.media_id = media.media_id) \
     AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_media_id = media.media_id) \
     AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.avatar_media_id = media.media_id))";

pub(crate) async fn collect_media(
    writer: &PgPool,
    collection: MediaCollection,
) -> StoreResult<Vec<MediaRecord>> {
    // Released media a message still carries (it was forwarded) or a user or group
    // still shows are not released.
    sqlx::query(&format!(
        "UPDATE media SET released = false WHERE released AND NOT {UNNAMED}"
    ))
    .execute(writer)
    .await
    .map_err(store_error)?;
    // Rows locked by another node's collection are skipped: each goes to one node.
    let rows = sqlx::query(&format!(
        "DELETE FROM media WHERE media_id IN ( \
             SELECT media_id FROM media WHERE (NOT sent AND created_at < $1) \
             OR (released AND {UNNAMED}) \
             LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING {MEDIA_COLUMNS}"
    ))
    .bind(collection.unsent_before.millis())
    .bind(i64::from(collection.limit))
    .fetch_all(writer)
    .await
    .map_err(store_error)?;
    rows.iter().map(media_from_row).collect()
}

/// Records that the new messages carry their attachments: one `media_refs` row each,
/// and their media marked sent.
pub(crate) async fn refer_media(
    connection: &mut sqlx::PgConnection,
    messages: &[&parley_proto::Message],
) -> StoreResult<()> {
    let mut media_ids = Vec::new();
    let mut conversation_ids = Vec::new();
    let mut seqs = Vec::new();
    for message in messages {
        for media in &message.attachments {
            media_ids.push(media.media_id.as_str());
            conversation_ids.push(message.conversation_id.as_str());
            seqs.push(message.seq);
        }
    }
    if media_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH refs AS (INSERT INTO media_refs (media_id, conversation_id, seq) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING) \
         UPDATE media SET sent = true, released = false WHERE media_id = ANY($1)",
    )
    .bind(&media_ids)
    .bind(&conversation_ids)
    .bind(&seqs)
    .execute(&mut *connection)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// Which of the media the batch's messages attach still exist, their rows locked
/// `FOR SHARE` until the transaction ends.
pub(crate) async fn lock_media(
    connection: &mut sqlx::PgConnection,
    messages: &[NewMessage],
) -> StoreResult<HashSet<String>> {
    let wanted: Vec<&str> = messages
        .iter()
        .flat_map(|message| message.attachments.iter())
        .map(|media| media.media_id.as_str())
        .collect();
    if wanted.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT media_id FROM media WHERE media_id = ANY($1) ORDER BY media_id FOR SHARE",
    )
    .bind(&wanted)
    .fetch_all(&mut *connection)
    .await
    .map_err(store_error)?;
    Ok(found.into_iter().collect())
}

/// A user or group changes picture from `old` to `new`: the new media is marked sent and
/// kept (`MissingReference` if it was collected; the row lock holds off a collection),
/// the old one released (collected once nothing names it).
pub(crate) async fn swap_avatar(
    connection: &mut sqlx::PgConnection,
    old: Option<&MediaId>,
    new: Option<&MediaId>,
) -> StoreResult<()> {
    if old == new {
        return Ok(());
    }
    // Both rows locked in `media_id` order, as sends share-lock theirs: no deadlock with
    // a send attaching both, or with another swap.
    let both: Vec<&str> = old.iter().chain(new.iter()).map(|id| id.as_str()).collect();
    sqlx::query(
        "SELECT media_id FROM media WHERE media_id = ANY($1) ORDER BY media_id \
         FOR NO KEY UPDATE",
    )
    .bind(&both)
    .fetch_all(&mut *connection)
    .await
    .map_err(store_error)?;
    if let Some(new) = new {
        let kept =
            sqlx::query("UPDATE media SET sent = true, released = false WHERE media_id = $1")
                .bind(new.as_str())
                .execute(&mut *connection)
                .await
                .map_err(store_error)?;
        if kept.rows_affected() == 0 {
            return Err(StoreError::MissingReference);
        }
    }
    if let Some(old) = old {
        sqlx::query("UPDATE media SET released = true WHERE media_id = $1")
            .bind(old.as_str())
            .execute(&mut *connection)
            .await
            .map_err(store_error)?;
    }
    Ok(())
}

/// A group's new picture (or none), its media swapped as [`swap_avatar`] says.
pub(crate) async fn set_group_avatar(
    connection: &mut sqlx::PgConnection,
    conversation_id: &ConversationId,
    avatar: Option<&MediaId>,
) -> StoreResult<()> {
    let old: Option<String> =
        sqlx::query_scalar("SELECT avatar_media_id FROM conversations WHERE conversation_id = $1")
            .bind(conversation_id.as_str())
            .fetch_one(&mut *connection)
            .await
            .map_err(store_error)?;
    swap_avatar(connection, old.map(MediaId).as_ref(), avatar).await?;
    sqlx::query("UPDATE conversations SET avatar_media_id = $2 WHERE conversation_id = $1")
        .bind(conversation_id.as_str())
        .bind(avatar.map(MediaId::as_str))
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Whether every attachment of `message` is among the `existing` media.
pub(crate) fn attachments_exist(message: &NewMessage, existing: &HashSet<String>) -> bool {
    message
        .attachments
        .iter()
        .all(|attachment| existing.contains(attachment.media_id.as_str()))
}
