//! The cluster backend: objects in an S3-compatible bucket, through `object_store`.
//! Clients upload and download with presigned URLs (SigV4), so the bytes never pass
//! through parley. A download's URL signs the `response-content-type` and
//! `response-content-disposition` S3 answers with; the downloads come from the bucket's
//! own origin, never parley's. An upload's URL cannot pin the length (SigV4 query signing
//! leaves `Content-Length` to the client; `object_store` refuses to sign it), so S3 stores
//! what arrives and the server checks its size before it accepts the upload.

use async_trait::async_trait;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::{Method, SignedUrlOptions, Signer};
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use parley_core::media::{
    check_key, expires_after, DownloadAs, HttpMethod, MediaError, MediaResult, MediaStore,
    SignedRequest,
};
use std::time::Duration;

/// Where the bucket is and how to reach it. Every key lives under `prefix` (a deployment
/// may share a bucket).
#[derive(Clone, Debug, Default)]
pub struct S3Config {
    /// `None`: AWS itself; else the S3-compatible service's URL (`http://127.0.0.1:8333`).
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Without a trailing slash; empty for none.
    pub prefix: String,
    /// `http://` endpoints (a local service); `https` only otherwise.
    pub allow_http: bool,
}

/// Media in an S3 bucket.
#[derive(Debug)]
pub struct S3MediaStore {
    store: AmazonS3,
    prefix: String,
}

impl S3MediaStore {
    /// Builds the client; nothing is contacted until used (see [`MediaStore::ping`]).
    pub fn new(config: &S3Config) -> MediaResult<Self> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            // Path-style (`endpoint/bucket/key`): what S3-compatible services answer.
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let store = builder
            .build()
            .map_err(|error| MediaError::Invalid(format!("S3 configuration: {error}")))?;
        Ok(Self {
            store,
            prefix: config.prefix.trim_matches('/').to_owned(),
        })
    }

    fn path_of(&self, key: &str) -> MediaResult<ObjectPath> {
        check_key(key)?;
        let full = if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        };
        ObjectPath::parse(full).map_err(|error| MediaError::Invalid(error.to_string()))
    }
}

fn store_error(error: object_store::Error) -> MediaError {
    match error {
        object_store::Error::NotFound { .. } => MediaError::NotFound,
        error => MediaError::unavailable(error),
    }
}

#[async_trait]
impl MediaStore for S3MediaStore {
    async fn ping(&self) -> MediaResult<()> {
        // A missing object answers as surely as a present one: the bucket is reachable
        // and the credentials are accepted.
        match self.store.head(&self.path_of(".ping")?).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(MediaError::unavailable(error)),
        }
    }

    async fn upload_request(
        &self,
        key: &str,
        // S3 cannot pin it: the server checks the size once the bytes are there.
        _size: u64,
        ttl: Duration,
    ) -> MediaResult<SignedRequest> {
        let path = self.path_of(key)?;
        let url = self
            .store
            .signed_url(Method::PUT, &path, ttl)
            .await
            .map_err(store_error)?;
        Ok(SignedRequest {
            method: HttpMethod::Put,
            url: url.into(),
            headers: Vec::new(),
            expires_at: expires_after(ttl),
        })
    }

    async fn download_request(
        &self,
        key: &str,
        as_: &DownloadAs,
        ttl: Duration,
    ) -> MediaResult<SignedRequest> {
        let path = self.path_of(key)?;
        let options = SignedUrlOptions::default().with_query([
            ("response-content-type", as_.content_type.clone()),
            ("response-content-disposition", as_.content_disposition()),
        ]);
        let url = self
            .store
            .signed_url_opts(Method::GET, &path, ttl, &options)
            .await
            .map_err(store_error)?;
        Ok(SignedRequest {
            method: HttpMethod::Get,
            url: url.into(),
            headers: Vec::new(),
            expires_at: expires_after(ttl),
        })
    }

    async fn size(&self, key: &str) -> MediaResult<Option<u64>> {
        match self.store.head(&self.path_of(key)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(MediaError::unavailable(error)),
        }
    }

    async fn read(&self, key: &str, limit: u64) -> MediaResult<Vec<u8>> {
        let result = self
            .store
            .get(&self.path_of(key)?)
            .await
            .map_err(store_error)?;
        if result.meta.size > limit {
            return Err(MediaError::TooLarge { limit });
        }
        let bytes = result.bytes().await.map_err(store_error)?;
        if bytes.len() as u64 > limit {
            return Err(MediaError::TooLarge { limit });
        }
        Ok(bytes.to_vec())
    }

    async fn read_range(&self, key: &str, start: u64, length: u64) -> MediaResult<Vec<u8>> {
        let path = self.path_of(key)?;
        let size = self.store.head(&path).await.map_err(store_error)?.size;
        let end = start.saturating_add(length).min(size);
        if start >= end {
            return Ok(Vec::new());
        }
        let bytes = self
            .store
            .get_range(&path, start..end)
            .await
            .map_err(store_error)?;
        Ok(bytes.to_vec())
    }

    async fn rename(&self, from: &str, to: &str) -> MediaResult<()> {
        // A server-side copy, then the delete (S3 has no move).
        self.store
            .rename(&self.path_of(from)?, &self.path_of(to)?)
            .await
            .map_err(store_error)
    }

    async fn write(&self, key: &str, bytes: Vec<u8>) -> MediaResult<()> {
        self.store
            .put(&self.path_of(key)?, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn concat(&self, parts: &[String], to: &str, limit: u64) -> MediaResult<u64> {
        // A multipart upload fed from each part's stream: S3 holds the pieces, parley
        // holds at most a few chunks at a time.
        let upload = self
            .store
            .put_multipart(&self.path_of(to)?)
            .await
            .map_err(store_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, CONCAT_CHUNK);
        match self.feed(parts, &mut writer, limit).await {
            Ok(size) => {
                writer.finish().await.map_err(store_error)?;
                Ok(size)
            }
            Err(error) => {
                let _ = writer.abort().await;
                Err(error)
            }
        }
    }

    async fn delete(&self, key: &str) -> MediaResult<()> {
        match self.store.delete(&self.path_of(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(MediaError::unavailable(error)),
        }
    }
}

/// The size of the pieces `concat` sends (S3 takes at least 5 MiB but for the last).
const CONCAT_CHUNK: usize = 8 * 1024 * 1024;

impl S3MediaStore {
    /// Streams the parts, in order, into `writer`; at most `limit` bytes.
    async fn feed(
        &self,
        parts: &[String],
        writer: &mut WriteMultipart,
        limit: u64,
    ) -> MediaResult<u64> {
        let mut written = 0u64;
        for part in parts {
            let mut stream = self
                .store
                .get(&self.path_of(part)?)
                .await
                .map_err(store_error)?
                .into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(store_error)?;
                written += chunk.len() as u64;
                if written > limit {
                    return Err(MediaError::TooLarge { limit });
                }
                writer.wait_for_capacity(2).await.map_err(store_error)?;
                writer.write(&chunk);
            }
        }
        Ok(written)
    }
}
