//! The records of uploaded media, as the `Store` keeps them.

use super::*;
use async_trait::async_trait;
use parley_proto::{Media, MediaId, MediaStatus};

/// One upload: what the client declared, what the server found, and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaRecord {
    /// What any member who may download it sees (`status`, the sniffed type, the
    /// processed size and the image's details once ready).
    pub media: Media,
    pub owner_id: UserId,
    /// The type the client declared on `POST /media`.
    pub declared_type: String,
    /// The hex SHA-256 the client declared, checked on completion.
    pub sha256: Option<String>,
    pub created_at: Timestamp,
    /// Whether a message ever carried it (`append_messages` sets it): never-sent uploads
    /// are collected after a day, sent ones once no message carries them any more.
    pub sent: bool,
}

impl MediaRecord {
    pub fn media_id(&self) -> &MediaId {
        &self.media.media_id
    }

    pub fn is_ready(&self) -> bool {
        self.media.status == MediaStatus::Ready
    }
}

/// What `MediaRecordStore::collect_media` may delete.
#[derive(Clone, Copy, Debug)]
pub struct MediaCollection {
    /// Uploads never sent that were created before this.
    pub unsent_before: Timestamp,
    /// At most this many per call.
    pub limit: u32,
}

/// The media part of the [`Store`] port (every `Store` is one): the records of uploads.
/// Their bytes are the `MediaStore`'s; a message's attachments are stored with it
/// (`Store::append_messages`).
#[async_trait]
pub trait MediaRecordStore: Send + Sync {
    /// Records an upload about to be made (`pending`, not sent) if the owner's uploads,
    /// this one included, stay within `quota_bytes` (checked and inserted atomically, so
    /// uploads started at once on any nodes never pass it together); else
    /// `Conflict(MediaQuota)` with what they take now. `MissingReference` if the owner does
    /// not exist.
    async fn insert_media(&self, media: MediaRecord, quota_bytes: u64) -> StoreResult<()>;

    /// `NotFound` if there is no such upload (or it was collected).
    async fn fetch_media(&self, media_id: &MediaId) -> StoreResult<MediaRecord>;

    /// Marks a `pending` upload `ready` with what processing found (`media`: type, size,
    /// dimensions, thumbnail, blurhash) and returns the record; one already `ready` is
    /// returned as it is (completing twice changes nothing). `NotFound` if there is none.
    async fn complete_media(&self, media: &Media) -> StoreResult<MediaRecord>;

    /// The bytes the user's uploads take, pending ones included (the quota).
    async fn media_usage(&self, owner_id: &UserId) -> StoreResult<u64>;

    /// Claims a `pending` upload for one completion until `until`: `true` if no other
    /// completion holds it (none did, or its claim ran out before `now`); `false` if one
    /// does, or the upload is ready or gone. Two completions on any nodes never both get
    /// it, so they never write its served objects at once.
    async fn claim_media(
        &self,
        media_id: &MediaId,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool>;

    /// Gives a claim up (the completion failed: the client may try again at once).
    async fn release_media_claim(&self, media_id: &MediaId) -> StoreResult<()>;

    /// Whether `user_id` may download the upload: they uploaded it, or a message that
    /// carries it (not deleted, not expired) is in a conversation they are a member of
    /// now, after their `cleared_seq` and not hidden by them.
    async fn media_readable(&self, media_id: &MediaId, user_id: &UserId) -> StoreResult<bool>;

    /// Deletes, in one statement each, the records of uploads nobody can use any more
    /// and returns them (the caller deletes their bytes): those never sent and created
    /// before `collection.unsent_before`, and those sent that no stored message carries
    /// any more (every one deleted for everyone or purged on expiry). At most
    /// `collection.limit`; a full `limit` means there may be more.
    async fn collect_media(&self, collection: MediaCollection) -> StoreResult<Vec<MediaRecord>>;
}
