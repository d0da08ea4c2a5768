//! Media over REST: upload (create, send the bytes where the server says, complete) and
//! download through the short-lived URLs the server signs.

use super::*;
use parley_proto::rest::{CreateMediaRequest, MediaLink, MediaUpload};
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
        self.put_upload(&upload, bytes).await?;
        self.complete_media(&upload.media_id).await
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
