//! The embedded backend: objects are files under the data directory, and parley answers
//! the signed URLs itself (`DiskMediaStore::router`, mounted at [`BLOB_PATH`]).
//!
//! A URL carries what it allows (method, key, expiry, and the upload's length or the
//! download's headers) and an HMAC-SHA256 of all of it under a key kept in the media
//! directory (`.signing-key`, made on first start, readable by the owner only), so any
//! change to it, or its use after the expiry, is refused. An upload is written to a
//! temporary file and renamed into place only once exactly the signed length arrived.

use crate::range::{parse_range, Range};
use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use parley_core::media::{
    check_key, expires_after, DownloadAs, HttpMethod, MediaError, MediaResult, MediaStore,
    SignedRequest,
};
use parley_proto::Timestamp;
use serde::Deserialize;
use sha2::Sha256;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Where the router answers signed URLs: `{base_url}{BLOB_PATH}/{key}?…`.
pub const BLOB_PATH: &str = "/media-blobs";

const SIGNING_KEY_FILE: &str = ".signing-key";
const TEMP_DIR: &str = ".uploads";

/// Media on the local disk. Cheap to share (`Arc`).
pub struct DiskMediaStore {
    root: PathBuf,
    /// Scheme, host and port the clients reach parley at (no trailing slash).
    base_url: String,
    signing_key: [u8; 32],
}

impl std::fmt::Debug for DiskMediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskMediaStore")
            .field("root", &self.root)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl DiskMediaStore {
    /// Opens (creating) the media directory `root`; signed URLs start with `base_url`, or
    /// are paths on the server that serves [`router`](Self::router) when it is empty.
    pub async fn open(root: &Path, base_url: &str) -> MediaResult<Self> {
        let temp = root.join(TEMP_DIR);
        // Uploads a crash cut off halfway are of no use.
        let _ = tokio::fs::remove_dir_all(&temp).await;
        tokio::fs::create_dir_all(&temp)
            .await
            .map_err(MediaError::unavailable)?;
        let signing_key = signing_key(&root.join(SIGNING_KEY_FILE)).await?;
        Ok(Self {
            root: root.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            signing_key,
        })
    }

    /// The routes that answer this store's signed URLs (`GET` and `PUT` under
    /// [`BLOB_PATH`]). Refusals are the protocol's JSON errors. No body limit of the
    /// server's applies here: an upload is held to the length its URL signs.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route(&format!("{BLOB_PATH}/{{*key}}"), get(download).put(upload))
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(self)
    }

    fn path_of(&self, key: &str) -> MediaResult<PathBuf> {
        check_key(key)?;
        Ok(self.root.join("objects").join(key))
    }

    fn sign(&self, grant: &Grant<'_>) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.signing_key)
            .expect("HMAC takes a key of any length");
        mac.update(grant.canonical().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn verify(&self, grant: &Grant<'_>, signature: &str) -> bool {
        let Ok(signature) = hex::decode(signature) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.signing_key)
            .expect("HMAC takes a key of any length");
        mac.update(grant.canonical().as_bytes());
        mac.verify_slice(&signature).is_ok()
    }

    fn signed_url(&self, grant: &Grant<'_>) -> String {
        // Without a base URL the URL is a path on this server (made absolute here only to
        // build it, then given back relative).
        let base = if self.base_url.is_empty() {
            RELATIVE_BASE
        } else {
            &self.base_url
        };
        let mut url = url::Url::parse(&format!("{base}{BLOB_PATH}/{}", grant.key))
            .expect("a base URL and a checked key make a URL");
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("e", &grant.expires_ms.to_string());
            if let Some(size) = grant.size {
                query.append_pair("n", &size.to_string());
            }
            if let Some(content_type) = grant.content_type {
                query.append_pair("t", content_type);
            }
            if let Some(disposition) = grant.disposition {
                query.append_pair("d", disposition);
            }
            query.append_pair("sig", &self.sign(grant));
        }
        if self.base_url.is_empty() {
            url.as_str()[RELATIVE_BASE.len()..].to_owned()
        } else {
            url.into()
        }
    }
}

/// Stands in for the server's address while a relative URL is built.
const RELATIVE_BASE: &str = "http://relative.invalid";

/// What one signed URL allows, in the order it is signed.
struct Grant<'a> {
    method: HttpMethod,
    key: &'a str,
    expires_ms: i64,
    size: Option<u64>,
    content_type: Option<&'a str>,
    disposition: Option<&'a str>,
}

impl Grant<'_> {
    fn canonical(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method.as_str(),
            self.key,
            self.expires_ms,
            self.size.map(|size| size.to_string()).unwrap_or_default(),
            self.content_type.unwrap_or_default(),
            self.disposition.unwrap_or_default(),
        )
    }
}

#[async_trait]
impl MediaStore for DiskMediaStore {
    async fn ping(&self) -> MediaResult<()> {
        tokio::fs::metadata(&self.root)
            .await
            .map(|_| ())
            .map_err(MediaError::unavailable)
    }

    async fn upload_request(
        &self,
        key: &str,
        size: u64,
        ttl: Duration,
    ) -> MediaResult<SignedRequest> {
        check_key(key)?;
        let expires_at = expires_after(ttl);
        let grant = Grant {
            method: HttpMethod::Put,
            key,
            expires_ms: expires_at.millis(),
            size: Some(size),
            content_type: None,
            disposition: None,
        };
        Ok(SignedRequest {
            method: HttpMethod::Put,
            url: self.signed_url(&grant),
            headers: Vec::new(),
            expires_at,
        })
    }

    async fn download_request(
        &self,
        key: &str,
        as_: &DownloadAs,
        ttl: Duration,
    ) -> MediaResult<SignedRequest> {
        check_key(key)?;
        let expires_at = expires_after(ttl);
        let disposition = as_.content_disposition();
        let grant = Grant {
            method: HttpMethod::Get,
            key,
            expires_ms: expires_at.millis(),
            size: None,
            content_type: Some(&as_.content_type),
            disposition: Some(&disposition),
        };
        Ok(SignedRequest {
            method: HttpMethod::Get,
            url: self.signed_url(&grant),
            headers: Vec::new(),
            expires_at,
        })
    }

    async fn size(&self, key: &str) -> MediaResult<Option<u64>> {
        match tokio::fs::metadata(self.path_of(key)?).await {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(MediaError::unavailable(error)),
        }
    }

    async fn read(&self, key: &str, limit: u64) -> MediaResult<Vec<u8>> {
        let file = self.open_object(key).await?;
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
            .map_err(MediaError::unavailable)?;
        if bytes.len() as u64 > limit {
            return Err(MediaError::TooLarge { limit });
        }
        Ok(bytes)
    }

    async fn read_range(&self, key: &str, start: u64, length: u64) -> MediaResult<Vec<u8>> {
        let mut file = self.open_object(key).await?;
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(MediaError::unavailable)?;
        let mut bytes = Vec::new();
        file.take(length)
            .read_to_end(&mut bytes)
            .await
            .map_err(MediaError::unavailable)?;
        Ok(bytes)
    }

    async fn write(&self, key: &str, bytes: Vec<u8>) -> MediaResult<()> {
        let path = self.path_of(key)?;
        let temp = self.temp_path();
        tokio::fs::write(&temp, bytes)
            .await
            .map_err(MediaError::unavailable)?;
        self.move_into_place(&temp, &path).await
    }

    async fn rename(&self, from: &str, to: &str) -> MediaResult<()> {
        let (from, to) = (self.path_of(from)?, self.path_of(to)?);
        if !tokio::fs::try_exists(&from)
            .await
            .map_err(MediaError::unavailable)?
        {
            return Err(MediaError::NotFound);
        }
        self.move_into_place(&from, &to).await
    }

    async fn concat(&self, parts: &[String], to: &str, limit: u64) -> MediaResult<u64> {
        let path = self.path_of(to)?;
        let temp = self.temp_path();
        let written = match self.write_parts(parts, &temp, limit).await {
            Ok(size) => self.move_into_place(&temp, &path).await.map(|()| size),
            Err(error) => Err(error),
        };
        if written.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        written
    }

    async fn delete(&self, key: &str) -> MediaResult<()> {
        match tokio::fs::remove_file(self.path_of(key)?).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(MediaError::unavailable(error)),
        }
    }
}

impl DiskMediaStore {
    async fn open_object(&self, key: &str) -> MediaResult<tokio::fs::File> {
        match tokio::fs::File::open(self.path_of(key)?).await {
            Ok(file) => Ok(file),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(MediaError::NotFound),
            Err(error) => Err(MediaError::unavailable(error)),
        }
    }

    /// The parts, one after another, into the new file `temp`; at most `limit` bytes.
    async fn write_parts(&self, parts: &[String], temp: &Path, limit: u64) -> MediaResult<u64> {
        let mut out = tokio::fs::File::create(temp)
            .await
            .map_err(MediaError::unavailable)?;
        let mut written = 0u64;
        for part in parts {
            let file = self.open_object(part).await?;
            // One byte more than the room left tells that the limit is passed.
            let room = limit - written;
            written += tokio::io::copy(&mut file.take(room + 1), &mut out)
                .await
                .map_err(MediaError::unavailable)?;
            if written > limit {
                return Err(MediaError::TooLarge { limit });
            }
        }
        out.sync_all().await.map_err(MediaError::unavailable)?;
        Ok(written)
    }

    fn temp_path(&self) -> PathBuf {
        self.root
            .join(TEMP_DIR)
            .join(format!("{:032x}", rand::random::<u128>()))
    }

    async fn move_into_place(&self, temp: &Path, path: &Path) -> MediaResult<()> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(MediaError::unavailable)?;
        }
        tokio::fs::rename(temp, path)
            .await
            .map_err(MediaError::unavailable)
    }
}

/// The query of a signed URL.
#[derive(Deserialize)]
struct Signed {
    e: i64,
    n: Option<u64>,
    t: Option<String>,
    d: Option<String>,
    sig: String,
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

fn forbidden() -> Response {
    refusal(
        StatusCode::FORBIDDEN,
        "forbidden",
        "the link is not valid (expired, changed or for another use)",
    )
}

fn unavailable(error: impl std::fmt::Display) -> Response {
    tracing::warn!(%error, "media storage failed");
    refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "media storage failed; try again",
    )
}

/// `PUT {BLOB_PATH}/{key}`: exactly the signed number of bytes, else 400 and nothing kept.
async fn upload(
    State(store): State<Arc<DiskMediaStore>>,
    UrlPath(key): UrlPath<String>,
    Query(signed): Query<Signed>,
    body: Body,
) -> Response {
    let Some(size) = signed.n else {
        return forbidden();
    };
    let grant = Grant {
        method: HttpMethod::Put,
        key: &key,
        expires_ms: signed.e,
        size: Some(size),
        content_type: None,
        disposition: None,
    };
    if signed.t.is_some() || signed.d.is_some() || !store.verify(&grant, &signed.sig) {
        return forbidden();
    }
    if Timestamp::now().millis() > signed.e {
        return forbidden();
    }
    let Ok(path) = store.path_of(&key) else {
        return forbidden();
    };
    let temp = store.temp_path();
    let written = write_exactly(&temp, body, size).await;
    let written = match written {
        Ok(written) => written,
        Err(error) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return unavailable(error);
        }
    };
    if written != Some(size) {
        let _ = tokio::fs::remove_file(&temp).await;
        return refusal(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("the upload must be exactly {size} bytes"),
        );
    }
    match store.move_into_place(&temp, &path).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => unavailable(error),
    }
}

/// Streams `body` into `temp`; `Some(length)` if it ended at or below `limit`, `None` as
/// soon as it goes past it.
async fn write_exactly(temp: &Path, body: Body, limit: u64) -> std::io::Result<Option<u64>> {
    let mut file = tokio::fs::File::create(temp).await?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        written += chunk.len() as u64;
        if written > limit {
            return Ok(None);
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    file.sync_all().await?;
    Ok(Some(written))
}

/// `GET {BLOB_PATH}/{key}`: the object with the signed headers; one `Range` part → 206.
async fn download(
    State(store): State<Arc<DiskMediaStore>>,
    UrlPath(key): UrlPath<String>,
    Query(signed): Query<Signed>,
    headers: HeaderMap,
) -> Response {
    let (Some(content_type), Some(disposition)) = (signed.t.as_deref(), signed.d.as_deref()) else {
        return forbidden();
    };
    let grant = Grant {
        method: HttpMethod::Get,
        key: &key,
        expires_ms: signed.e,
        size: None,
        content_type: Some(content_type),
        disposition: Some(disposition),
    };
    if signed.n.is_some() || !store.verify(&grant, &signed.sig) {
        return forbidden();
    }
    if Timestamp::now().millis() > signed.e {
        return forbidden();
    }
    let Ok(path) = store.path_of(&key) else {
        return forbidden();
    };
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return refusal(StatusCode::NOT_FOUND, "not_found", "no such media")
        }
        Err(error) => return unavailable(error),
    };
    let length = match file.metadata().await {
        Ok(metadata) => metadata.len(),
        Err(error) => return unavailable(error),
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .map(|value| parse_range(value, length));
    let (status, start, end) = match range {
        None | Some(Range::Ignored) => (StatusCode::OK, 0, length),
        Some(Range::Part(start, end)) => (StatusCode::PARTIAL_CONTENT, start, end),
        Some(Range::Unsatisfiable) => {
            let mut response = refusal(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "invalid_request",
                "the range is outside the file",
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{length}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };
    if start > 0 {
        if let Err(error) = file.seek(SeekFrom::Start(start)).await {
            return unavailable(error);
        }
    }
    let body = Body::from_stream(read_chunks(file, end - start));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let out = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, content_type);
    set(header::CONTENT_DISPOSITION, disposition);
    set(header::CONTENT_LENGTH, &(end - start).to_string());
    set(header::ACCEPT_RANGES, "bytes");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::CACHE_CONTROL, "private, max-age=300");
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; sandbox",
    );
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            header::CONTENT_RANGE,
            &format!("bytes {start}-{}/{length}", end - 1),
        );
    }
    response
}

/// `remaining` bytes of `file`, in chunks of at most 64 KiB.
fn read_chunks(
    file: tokio::fs::File,
    remaining: u64,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> {
    futures::stream::try_unfold((file, remaining), |(mut file, remaining)| async move {
        if remaining == 0 {
            return Ok(None);
        }
        let mut chunk = vec![0u8; remaining.min(64 * 1024) as usize];
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        chunk.truncate(read);
        Ok(Some((chunk, (file, remaining - read as u64))))
    })
}

/// The signing key at `path`, made (32 random bytes, owner-only) if there is none.
async fn signing_key(path: &Path) -> MediaResult<[u8; 32]> {
    match tokio::fs::read(path).await {
        Ok(bytes) => bytes
            .try_into()
            .map_err(|_| MediaError::Invalid(format!("{} is not a 32-byte key", path.display()))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            let mut options = tokio::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            options.mode(0o600);
            let mut file = options.open(path).await.map_err(MediaError::unavailable)?;
            file.write_all(&key)
                .await
                .map_err(MediaError::unavailable)?;
            file.sync_all().await.map_err(MediaError::unavailable)?;
            Ok(key)
        }
        Err(error) => Err(MediaError::unavailable(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(parse_range("bytes=0-3", 10), Range::Part(0, 4));
        assert_eq!(parse_range("bytes=4-", 10), Range::Part(4, 10));
        assert_eq!(parse_range("bytes=-3", 10), Range::Part(7, 10));
        assert_eq!(parse_range("bytes=5-100", 10), Range::Part(5, 10));
        assert_eq!(parse_range("bytes=10-", 10), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,4-5", 10), Range::Ignored);
        assert_eq!(parse_range("items=0-1", 10), Range::Ignored);
        assert_eq!(parse_range("bytes=5-2", 10), Range::Ignored);
        assert_eq!(parse_range("bytes=-", 10), Range::Ignored);
    }
}
