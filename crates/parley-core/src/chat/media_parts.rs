//! Uploads sent in parts: a large file cut into `MEDIA_PART_BYTES` pieces, each sent with
//! a request of its own, so an interrupted upload resumes from the parts that arrived
//! instead of from the start. The parts land at keys of their own (`p/{id}/{n}`);
//! completion joins them, streaming, into the upload's staging key and from there on
//! checks and processes it like an upload sent whole.

use super::media::upload_key;
use super::*;
use crate::media::SignedRequest;
use crate::store::MediaRecord;
use parley_proto::limits::MEDIA_PART_BYTES;

/// One part of an upload, and how to send it if it has not arrived.
#[derive(Clone, Debug)]
pub struct UploadPart {
    /// From 1.
    pub number: u32,
    pub offset: u64,
    pub size: u64,
    pub received: bool,
    pub request: Option<SignedRequest>,
}

/// The key of part `number` (from 1) of an upload.
pub fn part_key(media_id: &MediaId, number: u32) -> String {
    format!("p/{media_id}/{number}")
}

/// The parts of an upload of `size` bytes: `(number, offset, size)`.
pub fn parts_of(size: u64) -> impl Iterator<Item = (u32, u64, u64)> {
    let count = size.div_ceil(MEDIA_PART_BYTES);
    (0..count).map(move |index| {
        let offset = index * MEDIA_PART_BYTES;
        let length = MEDIA_PART_BYTES.min(size - offset);
        (index as u32 + 1, offset, length)
    })
}

/// Every part key an upload of `size` bytes may have left.
pub(super) fn part_keys(media_id: &MediaId, size: u64) -> Vec<String> {
    parts_of(size)
        .map(|(number, ..)| part_key(media_id, number))
        .collect()
}

impl Chat {
    /// The parts of the caller's pending upload: which arrived (exactly their bytes),
    /// and a fresh signed request for each that has not. `NotFound` for someone else's
    /// or an unknown upload; `Invalid` once it is complete.
    pub async fn upload_parts(
        &self,
        session: &Session,
        media_id: &MediaId,
    ) -> Result<Vec<UploadPart>> {
        let record = match self.inner.store.fetch_media(media_id).await {
            Ok(record) if record.owner_id == session.user_id => record,
            Ok(_) | Err(StoreError::NotFound) => return Err(Error::NotFound("media")),
            Err(error) => return Err(error.into()),
        };
        if record.is_ready() {
            return Err(Error::Invalid(format!(
                "{media_id} is complete: there is nothing more to upload"
            )));
        }
        let store = &self.inner.media;
        let ttl = self.inner.config.media_upload_ttl;
        let mut parts = Vec::new();
        for (number, offset, size) in parts_of(record.media.size) {
            let key = part_key(media_id, number);
            let received = store.size(&key).await? == Some(size);
            let request = match received {
                true => None,
                false => Some(store.upload_request(&key, size, ttl).await?),
            };
            parts.push(UploadPart {
                number,
                offset,
                size,
                received,
                request,
            });
        }
        Ok(parts)
    }

    /// Joins an upload's parts into its staging key, if it was sent in parts: `false`
    /// if no part is there (nothing was sent that way), `true` once joined (the parts
    /// are deleted). Some parts missing or short is `MediaNotReady` naming them; a part
    /// longer than it should be deletes them all (`MediaTooLarge`: S3's presigned PUT
    /// cannot pin a length).
    pub(super) async fn join_parts(&self, record: &MediaRecord) -> Result<bool> {
        let store = &self.inner.media;
        let media_id = record.media_id();
        let declared = record.media.size;
        let mut missing = Vec::new();
        let mut any = false;
        for (number, _, size) in parts_of(declared) {
            match store.size(&part_key(media_id, number)).await? {
                Some(found) if found > size => {
                    self.delete_parts(media_id, declared).await;
                    return Err(Error::MediaTooLarge(format!(
                        "part {number} is {found} bytes, not {size}; upload again"
                    )));
                }
                Some(found) => {
                    any = true;
                    if found < size {
                        missing.push(number.to_string());
                    }
                }
                None => missing.push(number.to_string()),
            }
        }
        if !any {
            return Ok(false);
        }
        if !missing.is_empty() {
            return Err(Error::MediaNotReady(format!(
                "part(s) {} of {} have not fully arrived",
                missing.join(", "),
                declared.div_ceil(MEDIA_PART_BYTES)
            )));
        }
        let keys = part_keys(media_id, declared);
        // A part sent again while this runs may make the joined object longer than
        // declared: the size check after this catches it.
        match store.concat(&keys, &upload_key(media_id), declared).await {
            Ok(_) => {}
            Err(crate::media::MediaError::TooLarge { .. }) => {
                self.delete_parts(media_id, declared).await;
                return Err(Error::MediaTooLarge(
                    "the parts are longer than declared; upload again".into(),
                ));
            }
            Err(error) => return Err(error.into()),
        }
        self.delete_parts(media_id, declared).await;
        Ok(true)
    }

    /// Deletes whatever parts of an upload of `size` bytes there are (best effort: the
    /// collector tries again).
    pub(super) async fn delete_parts(&self, media_id: &MediaId, size: u64) {
        for key in part_keys(media_id, size) {
            if let Err(error) = self.inner.media.delete(&key).await {
                tracing::warn!(%error, key, "deleting an upload's part failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_upload_exactly() {
        assert_eq!(parts_of(1).collect::<Vec<_>>(), vec![(1, 0, 1)]);
        let whole = MEDIA_PART_BYTES;
        assert_eq!(parts_of(whole).collect::<Vec<_>>(), vec![(1, 0, whole)]);
        assert_eq!(
            parts_of(2 * whole + 5).collect::<Vec<_>>(),
            vec![(1, 0, whole), (2, whole, whole), (3, 2 * whole, 5)]
        );
        assert_eq!(parts_of(100 * 1024 * 1024).count(), 13);
    }
}
