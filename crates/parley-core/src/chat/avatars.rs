//! Profile and group pictures: an upload of the user's, through the same pipeline as
//! attachments (sniffed, stripped of metadata, thumbnailed), named by `avatar_media_id`.
//! Who may download it follows from where it is used (`media_readable`): anyone signed
//! in for a profile's, the members for a group's.

use super::*;

impl Chat {
    /// The media `media_id` if the user may make it an avatar: their own upload, ready,
    /// and a picture parley decoded (it has a thumbnail). `None` passes through (removing
    /// the avatar).
    pub(super) async fn checked_avatar(
        &self,
        session: &Session,
        media_id: Option<MediaId>,
    ) -> Result<Option<MediaId>> {
        let Some(media_id) = media_id else {
            return Ok(None);
        };
        let record = match self.inner.store.fetch_media(&media_id).await {
            Ok(record) if record.owner_id == session.user_id => record,
            // Someone else's upload is as unknown as one that does not exist.
            Ok(_) | Err(StoreError::NotFound) => return Err(Error::NotFound("media")),
            Err(error) => return Err(error.into()),
        };
        if !record.is_ready() {
            return Err(Error::MediaNotReady(format!(
                "{media_id} is still being uploaded or processed: complete it first"
            )));
        }
        if record.media.thumbnail.is_none() {
            return Err(Error::Invalid(format!(
                "avatar_media_id must name a picture (JPEG, PNG, WebP or GIF); {media_id} is {}",
                record.media.content_type
            )));
        }
        Ok(Some(media_id))
    }
}

/// The avatar change as the store takes it: `MissingReference` (the media was collected
/// between the check and the write) is the media's absence.
pub(super) fn avatar_gone(error: StoreError) -> Error {
    match error {
        StoreError::MissingReference => Error::NotFound("media"),
        error => error.into(),
    }
}
