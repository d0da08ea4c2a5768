//! Media: starting an upload, completing it (checks and processing), who may download
//! it, resolving a message's attachments, and collecting what nobody can use any more.
//!
//! The bytes never pass through here on their way in or out: a client uploads and
//! downloads with requests the `MediaStore` signs. The server reads an upload back once,
//! on completion, to check its size (and SHA-256 when declared), sniff its real type,
//! and, for pictures, strip their metadata and make a thumbnail and a BlurHash on a
//! blocking thread, a bounded number at a time: none of it is on the send path.

use super::*;
use crate::media::duration::{duration_ms, DURATION_WINDOW, MAX_DURATION_MS};
use crate::media::picture::{self, PictureError, PictureLimits};
use crate::media::sniff::{shown_inline, sniff, Kind, SNIFF_BYTES};
use crate::media::{DownloadAs, MediaError, SignedRequest};
use crate::store::{MediaCollection, MediaRecord};
use parley_proto::{Media, MediaStatus, Thumbnail};
use sha2::{Digest, Sha256};

/// An upload a client is about to make (`POST /media`).
#[derive(Clone, Debug)]
pub struct NewUpload {
    pub content_type: String,
    pub size: u64,
    pub filename: Option<String>,
    pub sha256: Option<String>,
    /// The client's own measure of a recording, kept where the container does not say.
    pub duration_ms: Option<u64>,
}

/// Where to send the bytes of a new upload.
#[derive(Clone, Debug)]
pub struct Upload {
    pub media_id: MediaId,
    pub request: SignedRequest,
}

/// Where a client's upload lands (its signed URL's key), until completion checks it and
/// moves or derives the media's own objects from it. Keys under `u/` that outlive a day
/// are leftovers (an S3 lifecycle rule on that prefix may expire them).
pub fn upload_key(media_id: &MediaId) -> String {
    format!("u/{media_id}")
}

/// The object key of a media's bytes as served, and of its thumbnail.
pub fn original_key(media_id: &MediaId) -> String {
    format!("m/{media_id}/original")
}

pub fn thumbnail_key(media_id: &MediaId) -> String {
    format!("m/{media_id}/thumbnail")
}

/// How the SHA-256 of a large upload is read: a slice at a time.
const HASH_CHUNK: u64 = 8 * 1024 * 1024;
/// A picture taking longer than this to process is given up for now (ask again).
const PICTURE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a completion holds its upload against completions on other nodes: longer
/// than the slowest one (a picture's decode times out after a minute).
const CLAIM_MS: i64 = 5 * 60 * 1000;
/// Media collected per batch.
const COLLECT_BATCH: u32 = 500;

impl Chat {
    /// Starts an upload: checks what the client declares against the limits and the
    /// user's quota, records it `pending`, and signs the request that uploads it.
    pub async fn create_upload(&self, session: &Session, upload: NewUpload) -> Result<Upload> {
        let config = &self.inner.config;
        let content_type = checked_content_type(&upload.content_type)?;
        if upload.size == 0 {
            return Err(Error::Invalid("size must be at least 1 byte".into()));
        }
        if upload.size > config.media_max_bytes {
            return Err(Error::MediaTooLarge(format!(
                "an upload is at most {} bytes",
                config.media_max_bytes
            )));
        }
        let filename = checked_filename(upload.filename)?;
        if upload.duration_ms.is_some_and(|ms| ms > MAX_DURATION_MS) {
            return Err(Error::Invalid(
                "duration_ms is at most 360000000 (100 hours)".into(),
            ));
        }
        let sha256 = match upload.sha256 {
            Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(hash.to_ascii_lowercase())
            }
            Some(_) => {
                return Err(Error::Invalid(
                    "sha256 must be 64 hexadecimal characters".into(),
                ))
            }
            None => None,
        };
        self.check_upload_rate(session).await?;
        let media_id = ids::new_media_id();
        let record = MediaRecord {
            media: Media {
                media_id: media_id.clone(),
                status: MediaStatus::Pending,
                content_type: content_type.clone(),
                size: upload.size,
                filename,
                width: None,
                height: None,
                duration_ms: upload.duration_ms,
                thumbnail: None,
                blurhash: None,
            },
            owner_id: session.user_id.clone(),
            declared_type: content_type,
            sha256,
            created_at: Timestamp::now(),
            sent: false,
        };
        match self
            .inner
            .store
            .insert_media(record, config.media_quota_bytes)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(crate::store::Conflict::MediaQuota { used })) => {
                return Err(Error::MediaTooLarge(format!(
                    "this upload would take your media past your {} byte quota ({used} used)",
                    config.media_quota_bytes
                )));
            }
            Err(error) => return Err(error.into()),
        }
        let request = self
            .inner
            .media
            .upload_request(&upload_key(&media_id), upload.size, config.media_upload_ttl)
            .await?;
        Ok(Upload { media_id, request })
    }

    /// Completes the caller's upload: checks that exactly the declared bytes arrived
    /// (and their SHA-256), sniffs their type, processes a picture, and marks it ready.
    /// Completing a ready upload answers it again.
    pub async fn complete_upload(&self, session: &Session, media_id: &MediaId) -> Result<Media> {
        let record = self.inner.store.fetch_media(media_id).await;
        let record = match record {
            Ok(record) if record.owner_id == session.user_id => record,
            Ok(_) | Err(StoreError::NotFound) => return Err(Error::NotFound("media")),
            Err(error) => return Err(error.into()),
        };
        if record.is_ready() {
            return Ok(record.media);
        }
        // One completion of an upload at a time on this node, in a task of its own: a
        // client that goes away mid-way does not leave it half done.
        if !self.inner.completing.lock().insert(media_id.clone()) {
            return Err(Error::MediaNotReady(
                "this upload is being completed; ask again in a moment".into(),
            ));
        }
        let chat = self.clone();
        let task = tokio::spawn(async move {
            let media_id = record.media_id().clone();
            let outcome = chat.claimed_completion(&record).await;
            chat.inner.completing.lock().remove(&media_id);
            outcome
        });
        task.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Completes under the store's claim, so no completion on another node writes the
    /// upload's served objects at the same time; a failed one gives the claim back.
    async fn claimed_completion(&self, record: &MediaRecord) -> Result<Media> {
        let store = &self.inner.store;
        let now = Timestamp::now();
        let until = Timestamp(now.millis() + CLAIM_MS);
        if !store.claim_media(record.media_id(), now, until).await? {
            let current = store.fetch_media(record.media_id()).await;
            return match current {
                Ok(current) if current.is_ready() => Ok(current.media),
                Ok(_) => Err(Error::MediaNotReady(
                    "this upload is being completed; ask again in a moment".into(),
                )),
                Err(StoreError::NotFound) => Err(Error::NotFound("media")),
                Err(error) => Err(error.into()),
            };
        }
        let outcome = self.process_and_complete(record).await;
        if outcome.is_err() {
            if let Err(error) = store.release_media_claim(record.media_id()).await {
                tracing::warn!(%error, "could not release a completion's claim; it runs out");
            }
        }
        outcome
    }

    async fn process_and_complete(&self, record: &MediaRecord) -> Result<Media> {
        let outcome = self.process_upload(record).await;
        let media = match outcome {
            Ok(media) => media,
            // Completed meanwhile by another node (the upload was moved away): its answer.
            Err(Error::Media(MediaError::NotFound)) => {
                let current = self.inner.store.fetch_media(record.media_id()).await?;
                if current.is_ready() {
                    return Ok(current.media);
                }
                return Err(Error::MediaNotReady("the upload has not arrived".into()));
            }
            Err(error) => return Err(error),
        };
        let completed = self.inner.store.complete_media(&media).await?.media;
        // What the client uploaded is no longer needed (a move took it already, for a
        // file).
        let _ = self
            .inner
            .media
            .delete(&upload_key(record.media_id()))
            .await;
        // Parts sent besides a whole upload, or some sent and then not needed (joining
        // deletes what it joined), would stay until the media is collected: off the
        // answer's path.
        let chat = self.clone();
        let (media_id, declared) = (record.media_id().clone(), record.media.size);
        tokio::spawn(async move { chat.delete_parts(&media_id, declared).await });
        Ok(completed)
    }

    /// Checks the upload at its staging key and makes the media's own objects from it:
    /// the bytes the server serves are only ever what it wrote or checked, never what a
    /// client can still write to with its upload URL.
    async fn process_upload(&self, record: &MediaRecord) -> Result<Media> {
        let store = &self.inner.media;
        let config = &self.inner.config;
        let staged = upload_key(record.media_id());
        let key = original_key(record.media_id());
        let declared = record.media.size;
        let mut size = store.size(&staged).await?;
        if size.is_none() && self.join_parts(record).await? {
            size = store.size(&staged).await?;
        }
        let Some(size) = size else {
            return Err(Error::MediaNotReady("the upload has not arrived".into()));
        };
        if size > declared {
            // Presigned S3 uploads cannot pin the length: what is longer than declared
            // goes, so the quota holds.
            store.delete(&staged).await?;
            return Err(Error::MediaTooLarge(format!(
                "{size} bytes arrived, {declared} were declared; upload again"
            )));
        }
        if size < declared {
            return Err(Error::MediaNotReady(format!(
                "{size} of the {declared} declared bytes have arrived"
            )));
        }
        // Reading and decoding hold a permit: memory is bounded by the permits, whatever
        // the number of completions asked for.
        let permit = tokio::time::timeout(
            PICTURE_TIMEOUT,
            self.inner.picture_processing.clone().acquire_owned(),
        )
        .await
        .map_err(|_| {
            Error::MediaNotReady("the server is busy processing uploads; ask again".into())
        })?
        .map_err(|_| Error::ShuttingDown)?;
        if let Some(expected) = &record.sha256 {
            if &sha256_of(store.as_ref(), &staged, size).await? != expected {
                store.delete(&staged).await?;
                return Err(Error::MediaNotReady(
                    "the uploaded bytes do not match sha256; upload again".into(),
                ));
            }
        }
        let head = store.read_range(&staged, 0, DURATION_WINDOW).await?;
        let sniffed = sniff(&head[..head.len().min(SNIFF_BYTES)], &record.declared_type);
        let mut media = Media {
            status: MediaStatus::Ready,
            content_type: sniffed.content_type,
            size,
            ..record.media.clone()
        };
        if let Kind::Image(kind) = sniffed.kind {
            if size > config.media_max_picture_bytes {
                store.delete(&staged).await?;
                return Err(Error::MediaTooLarge(format!(
                    "pictures are processed up to {} bytes",
                    config.media_max_picture_bytes
                )));
            }
            let bytes = store.read(&staged, config.media_max_picture_bytes).await?;
            let (outcome, bytes) = self.process_picture(bytes, kind, permit).await;
            match outcome {
                Ok(done) => {
                    let kept = done.cleaned.unwrap_or(bytes);
                    media.size = kept.len() as u64;
                    if let Some(content_type) = done.content_type {
                        media.content_type = content_type.to_owned();
                    }
                    store.write(&key, kept).await?;
                    store
                        .write(&thumbnail_key(record.media_id()), done.thumbnail)
                        .await?;
                    media.width = Some(done.width);
                    media.height = Some(done.height);
                    media.thumbnail = Some(Thumbnail {
                        width: done.thumbnail_width,
                        height: done.thumbnail_height,
                    });
                    media.blurhash = Some(done.blurhash);
                    media.duration_ms = None;
                    return Ok(media);
                }
                Err(PictureError::TooManyPixels { width, height, max }) => {
                    store.delete(&staged).await?;
                    return Err(Error::MediaTooLarge(format!(
                        "{width}×{height} pixels is more than the {max} this server decodes"
                    )));
                }
                Err(PictureError::Busy(reason)) => {
                    return Err(Error::MediaNotReady(format!(
                        "the picture could not be processed now ({reason}); ask again"
                    )));
                }
                Err(PictureError::Undecodable(reason)) => {
                    tracing::info!(media_id = %record.media_id(), %reason,
                        "an upload that looks like a picture does not decode: kept as a file");
                    media.content_type = "application/octet-stream".into();
                    media.duration_ms = None;
                }
            }
        } else {
            drop(permit);
        }
        // Anything but a processed picture is served as uploaded: moved into place, then
        // checked again (a PUT racing the move would otherwise slip through).
        store.rename(&staged, &key).await?;
        let moved = store.read_range(&key, 0, SNIFF_BYTES as u64).await?;
        if store.size(&key).await? != Some(size) || !head.starts_with(&moved) {
            store.delete(&key).await?;
            return Err(Error::MediaNotReady(
                "the upload changed while it was checked; upload again".into(),
            ));
        }
        if matches!(sniffed.kind, Kind::Audio | Kind::Video) {
            let tail = if size > DURATION_WINDOW {
                store
                    .read_range(&key, size - DURATION_WINDOW, DURATION_WINDOW)
                    .await?
            } else {
                head.clone()
            };
            if let Some(found) = duration_ms(&media.content_type, &head, &tail) {
                media.duration_ms = Some(found);
            }
        } else {
            media.duration_ms = None;
        }
        Ok(media)
    }

    /// Decodes a picture on a blocking thread, holding `permit` until the decoding ends
    /// (a timeout stops the wait, not the thread).
    async fn process_picture(
        &self,
        bytes: Vec<u8>,
        kind: crate::media::sniff::ImageKind,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> (std::result::Result<picture::Picture, PictureError>, Vec<u8>) {
        let limits = PictureLimits {
            max_pixels: self.inner.config.media_max_pixels,
            ..PictureLimits::default()
        };
        let started = Instant::now();
        // A thread of its own, at the lowest priority: decoding takes a core for about a
        // second per photo, and must not take it from the sends. It holds its permit to
        // its end, so a slow decode past the timeout still counts against the bound.
        let (done, work) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("parley-picture".into())
            .spawn(move || {
                crate::media::picture::run_in_background();
                let outcome = picture::process(&bytes, kind, limits);
                drop(permit);
                let _ = done.send((outcome, bytes));
            });
        if let Err(error) = spawned {
            return (
                Err(PictureError::Busy(format!(
                    "no thread to decode on: {error}"
                ))),
                Vec::new(),
            );
        }
        let outcome = match tokio::time::timeout(PICTURE_TIMEOUT, work).await {
            Ok(Ok(done)) => done,
            Ok(Err(_)) => (
                Err(PictureError::Undecodable("the decoder failed".into())),
                Vec::new(),
            ),
            Err(_) => (
                Err(PictureError::Busy("it took too long".into())),
                Vec::new(),
            ),
        };
        metrics::histogram!("parley_media_picture_seconds").record(started.elapsed().as_secs_f64());
        outcome
    }

    /// A short-lived request that downloads the media (or its thumbnail), if the caller
    /// may see it: they uploaded it, or it was sent to a conversation they are in.
    /// Anything else is `NotFound`, so nobody learns that an id exists.
    pub async fn media_download(
        &self,
        session: &Session,
        media_id: &MediaId,
        thumbnail: bool,
    ) -> Result<SignedRequest> {
        let record = match self.inner.store.fetch_media(media_id).await {
            Ok(record) => record,
            Err(StoreError::NotFound) => return Err(Error::NotFound("media")),
            Err(error) => return Err(error.into()),
        };
        let readable = record.is_ready()
            && (record.owner_id == session.user_id
                || self
                    .inner
                    .store
                    .media_readable(media_id, &session.user_id)
                    .await?);
        if !readable || (thumbnail && record.media.thumbnail.is_none()) {
            return Err(Error::NotFound("media"));
        }
        let media = &record.media;
        let (key, as_) = if thumbnail {
            let as_ = DownloadAs {
                content_type: "image/jpeg".into(),
                inline: true,
                filename: None,
            };
            (thumbnail_key(media_id), as_)
        } else {
            let as_ = DownloadAs {
                content_type: media.content_type.clone(),
                inline: shown_inline(&media.content_type),
                filename: media.filename.clone(),
            };
            (original_key(media_id), as_)
        };
        Ok(self
            .inner
            .media
            .download_request(&key, &as_, self.inner.config.media_download_ttl)
            .await?)
    }

    /// The media a send names, checked: at most 10, no repeats, each ready and the
    /// sender's own (for a forward: one the sender may read).
    pub(super) async fn resolve_attachments(
        &self,
        session: &Session,
        media_ids: &[MediaId],
        forwarded: bool,
    ) -> Result<Vec<Media>> {
        let limit = parley_proto::limits::MAX_ATTACHMENTS;
        if media_ids.len() > limit {
            return Err(Error::Invalid(format!(
                "a message carries at most {limit} attachments"
            )));
        }
        let mut seen = HashSet::new();
        let mut attachments = Vec::with_capacity(media_ids.len());
        for media_id in media_ids {
            if !seen.insert(media_id) {
                return Err(Error::Invalid(format!("attachments name {media_id} twice")));
            }
            let record = match self.inner.store.fetch_media(media_id).await {
                Ok(record) => record,
                Err(StoreError::NotFound) => return Err(Error::NotFound("media")),
                Err(error) => return Err(error.into()),
            };
            let usable = record.owner_id == session.user_id
                || (forwarded
                    && self
                        .inner
                        .store
                        .media_readable(media_id, &session.user_id)
                        .await?);
            if !usable {
                return Err(Error::NotFound("media"));
            }
            if !record.is_ready() {
                return Err(Error::MediaNotReady(format!(
                    "media {media_id} is not completed: POST /media/{media_id}/complete first"
                )));
            }
            attachments.push(record.media);
        }
        Ok(attachments)
    }
}

/// Collects media nobody can use any more, batch after batch: the records first (one
/// statement decides, so two nodes never both take one), then their bytes.
pub(super) async fn collect(inner: &Arc<Inner>) {
    loop {
        let now = Timestamp::now().millis();
        let unsent_ms =
            i64::try_from(inner.config.media_unsent_ttl.as_millis()).unwrap_or(i64::MAX);
        let collection = MediaCollection {
            unsent_before: Timestamp(now.saturating_sub(unsent_ms)),
            limit: COLLECT_BATCH,
        };
        let collected = match inner.store.collect_media(collection).await {
            Ok(collected) => collected,
            Err(error) => {
                tracing::warn!(%error, "collecting unused media failed; will retry");
                return;
            }
        };
        for record in &collected {
            let media_id = record.media_id();
            let mut keys = vec![
                upload_key(media_id),
                original_key(media_id),
                thumbnail_key(media_id),
            ];
            // Parts may have come after completion, while their URLs held: every part
            // an upload of the largest size could have (a processed picture's size is
            // not the declared one).
            let most = record.media.size.max(inner.config.media_max_bytes);
            keys.extend(super::media_parts::part_keys(media_id, most));
            for key in keys {
                if let Err(error) = inner.media.delete(&key).await {
                    tracing::warn!(%error, key, "deleting a collected upload's bytes failed");
                }
            }
        }
        if !collected.is_empty() {
            metrics::counter!("parley_media_collected_total").increment(collected.len() as u64);
        }
        if collected.len() < COLLECT_BATCH as usize {
            return;
        }
    }
}

/// The SHA-256 of an object, read a slice at a time.
async fn sha256_of(
    store: &dyn crate::MediaStore,
    key: &str,
    size: u64,
) -> std::result::Result<String, MediaError> {
    let mut hasher = Sha256::new();
    let mut at = 0;
    while at < size {
        let chunk = store.read_range(key, at, HASH_CHUNK).await?;
        if chunk.is_empty() {
            break;
        }
        at += chunk.len() as u64;
        // Hashing megabytes is CPU work: off the async workers.
        hasher = tokio::task::spawn_blocking(move || {
            hasher.update(&chunk);
            hasher
        })
        .await
        .map_err(|_| MediaError::Invalid("hashing failed".into()))?;
    }
    Ok(hex::encode(hasher.finalize()))
}
