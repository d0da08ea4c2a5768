//! Media over REST: upload (create, send the bytes where the server says, complete) and
//! download through the short-lived URLs the server signs.

use super::*;
use parley_proto::limits::MEDIA_PART_BYTES;
use parley_proto::rest::{CreateMediaRequest, MediaLink, MediaPart, MediaParts, MediaUpload};
use parley_proto::{Media, MediaId};
use sha2::{Digest, Sha256};

impl Client {
    /// Uploads `bytes` as new media of (declared) `content_type`, with its SHA-256 for
    /// the server to check, and completes it: the media object, ready to attach.
    pub async fn upload(
        &self,
        bytes: Vec<u8>,
        content_type: &str,
        filename: Option<&str>,
    ) -> Result<Media, SdkError> {
        let request = CreateMediaRequest {
            content_type: content_type.to_owned(),
            size: bytes.len() as u64,
            filename: filename.map(str::to_owned),
            sha256: Some(hex::encode(Sha256::digest(&bytes))),
            duration_ms: None,
        };
        let upload = self.create_media(&request).await?;
        if bytes.len() as u64 > MEDIA_PART_BYTES {
            return self.resume_upload(&upload.media_id, &bytes).await;
        }
        self.put_upload(&upload, bytes).await?;
        self.complete_media(&upload.media_id).await
    }

    /// Sends the parts of the pending upload `media_id` (whose whole bytes are `bytes`)
    /// that have not arrived, each tried a few times, and completes it: how a large
    /// upload goes, and how an interrupted one (this process's or an earlier one's)
    /// resumes without sending again what arrived.
    pub async fn resume_upload(&self, media_id: &MediaId, bytes: &[u8]) -> Result<Media, SdkError> {
        const ATTEMPTS: u32 = 4;
        let parts = self.upload_parts(media_id).await?;
        for part in parts.parts.iter().filter(|part| !part.received) {
            let start = usize::try_from(part.offset).unwrap_or(usize::MAX);
            let end = usize::try_from(part.offset + part.size).unwrap_or(usize::MAX);
            let Some(slice) = bytes.get(start..end) else {
                return Err(SdkError::InvalidUrl(format!(
                    "part {} lies past the {} bytes given",
                    part.part_number,
                    bytes.len()
                )));
            };
            let mut attempt = 1;
            loop {
                match self.put_part(part, slice.to_vec()).await {
                    Ok(()) => break,
                    Err(error) if attempt < ATTEMPTS && error.is_retryable() => {
                        tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                        attempt += 1;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        self.complete_media(media_id).await
    }

    /// `GET /media/{id}/parts`: the pending upload's parts, which arrived, and where to
    /// send those that have not.
    pub async fn upload_parts(&self, media_id: &MediaId) -> Result<MediaParts, SdkError> {
        self.get(&["media", media_id.as_str(), "parts"]).await
    }

    /// Sends one part's bytes with the request `upload_parts` gave for it.
    pub async fn put_part(
        &self,
        part: &MediaPart,
        bytes: impl Into<reqwest::Body>,
    ) -> Result<(), SdkError> {
        let (Some(url), Some(method)) = (&part.upload_url, &part.upload_method) else {
            return Ok(()); // It arrived already.
        };
        let upload = MediaUpload {
            media_id: MediaId(String::new()),
            upload_url: url.clone(),
            upload_method: method.clone(),
            upload_headers: part.upload_headers.clone().unwrap_or_default(),
            expires_at: part.expires_at.unwrap_or(parley_proto::Timestamp(0)),
        };
        self.put_upload(&upload, bytes).await
    }

    /// `POST /media`: where to send the bytes of a new upload.
    pub async fn create_media(
        &self,
        request: &CreateMediaRequest,
    ) -> Result<MediaUpload, SdkError> {
        self.with_body(Method::POST, &["media"], request).await
    }

    /// Sends the bytes of an upload to the URL `create_media` gave, with its headers and
    /// without this client's token (the URL carries its own authority).
    pub async fn put_upload(
        &self,
        upload: &MediaUpload,
        bytes: impl Into<reqwest::Body>,
    ) -> Result<(), SdkError> {
        let method = Method::from_bytes(upload.upload_method.as_bytes())
            .map_err(|_| SdkError::InvalidUrl(format!("method {}", upload.upload_method)))?;
        let mut request = self
            .inner
            .http
            .request(method, self.resolve(&upload.upload_url)?)
            .body(bytes);
        for (name, value) in &upload.upload_headers {
            request = request.header(name, value);
        }
        checked(request.send().await?).await?;
        Ok(())
    }

    /// `POST /media/{id}/complete`: the server checks and processes the upload.
    pub async fn complete_media(&self, media_id: &MediaId) -> Result<Media, SdkError> {
        self.with_body(
            Method::POST,
            &["media", media_id.as_str(), "complete"],
            &serde_json::json!({}),
        )
        .await
    }

    /// A short-lived URL of the media's bytes (or its thumbnail), absolute.
    pub async fn media_link(
        &self,
        media_id: &MediaId,
        thumbnail: bool,
    ) -> Result<MediaLink, SdkError> {
        let mut segments = vec!["media", media_id.as_str()];
        if thumbnail {
            segments.push("thumbnail");
        }
        let request = self
            .request(Method::GET, self.url(&segments))
            .header(reqwest::header::ACCEPT, "application/json");
        let mut link: MediaLink = self.call(request).await?;
        link.url = self.resolve(&link.url)?.to_string();
        Ok(link)
    }

    /// The media's bytes (or its thumbnail's), fetched through a signed URL.
    pub async fn download_media(
        &self,
        media_id: &MediaId,
        thumbnail: bool,
    ) -> Result<Vec<u8>, SdkError> {
        let link = self.media_link(media_id, thumbnail).await?;
        let url =
            url::Url::parse(&link.url).map_err(|error| SdkError::InvalidUrl(error.to_string()))?;
        let response = checked(self.inner.http.get(url).send().await?).await?;
        Ok(response.bytes().await?.to_vec())
    }

    /// A URL the server gave: absolute (object storage), or a path on the server.
    fn resolve(&self, url: &str) -> Result<url::Url, SdkError> {
        let base = url::Url::parse(&format!("{}/", self.inner.base_url))
            .map_err(|error| SdkError::InvalidUrl(error.to_string()))?;
        base.join(url)
            .map_err(|error| SdkError::InvalidUrl(format!("{url}: {error}")))
    }
}
