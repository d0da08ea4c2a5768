//! The media port: where the bytes of photos, videos, voice notes and files live.
//!
//! Clients never send media through a chat connection. The server hands them a request
//! signed for one object, one method and a short time ([`SignedRequest`]): the client
//! uploads with it and downloads with another, straight from the backend. In cluster mode
//! that is an S3 presigned URL, so the bytes never pass through parley; the embedded
//! backend keeps the objects under the data directory and parley itself answers its own
//! signed URLs. The server reads an object back only to process it (sniff its type, strip
//! metadata, make a thumbnail) and writes what it derives.
//!
//! Two backends implement it (`parley-media`: the disk and S3), and one conformance suite
//! (`parley_testkit::media`) runs against both.

use async_trait::async_trait;
use parley_proto::Timestamp;

pub mod duration;
pub mod picture;
pub mod sniff;
use std::time::Duration;

/// Errors every backend maps its own into.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    #[error("no such object")]
    NotFound,
    /// The object is larger than the reader allowed.
    #[error("the object is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// A key or an argument the backend cannot take.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The backend failed or cannot be reached; the operation may be retried.
    #[error("media storage unavailable")]
    Unavailable {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl MediaError {
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        MediaError::Unavailable {
            source: Box::new(error),
        }
    }
}

pub type MediaResult<T> = Result<T, MediaError>;

/// An HTTP request a client makes by itself, signed by the backend for one object: the
/// method, the absolute URL and the headers it must send as they are, until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRequest {
    pub method: HttpMethod,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub expires_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Put,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Put => "PUT",
        }
    }
}

/// How a download answers: the type it declares and whether a browser shows it or saves
/// it. Whatever was uploaded, a download never renders as a page on parley's origin: the
/// type is the sniffed one (markup is stored as plain bytes), anything but pictures,
/// audio and video is an attachment, and the disk backend, which serves on parley's
/// origin, adds `nosniff` and a sandbox; S3 serves from an origin of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadAs {
    pub content_type: String,
    /// `true`: `Content-Disposition: inline`; `false`: `attachment`.
    pub inline: bool,
    /// The file name offered to the browser (`filename*`, UTF-8).
    pub filename: Option<String>,
}

impl DownloadAs {
    /// The `Content-Disposition` header value: `inline` or `attachment`, with the file
    /// name percent-encoded as RFC 6266 / 5987 say (`filename*=UTF-8''…`).
    pub fn content_disposition(&self) -> String {
        let kind = if self.inline { "inline" } else { "attachment" };
        match &self.filename {
            Some(name) => format!("{kind}; filename*=UTF-8''{}", percent_encode(name)),
            None => kind.to_owned(),
        }
    }
}

/// RFC 5987 `attr-char`s stay, every other byte is `%XX`.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Object keys are the server's own: ASCII letters, digits and `-_./`, at most 256
/// bytes, no empty or dot segment. Backends refuse any other key (`Invalid`).
pub fn check_key(key: &str) -> MediaResult<()> {
    let valid = !key.is_empty()
        && key.len() <= 256
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_./".contains(&byte))
        && key
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    if valid {
        Ok(())
    } else {
        Err(MediaError::Invalid(format!("bad object key {key:?}")))
    }
}

/// Where the bytes of media live. Keys are checked with [`check_key`].
#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    /// Answers once the backend can store and serve objects (`/readyz`).
    async fn ping(&self) -> MediaResult<()>;

    /// A request that uploads `size` bytes to `key` (replacing what is there), valid for
    /// `ttl`. A backend that can pin the length refuses any other (the disk); one that
    /// cannot (S3 presigned URLs) stores what arrives, so the server checks [`size`]
    /// before it accepts an upload.
    ///
    /// [`size`]: MediaStore::size
    async fn upload_request(
        &self,
        key: &str,
        size: u64,
        ttl: Duration,
    ) -> MediaResult<SignedRequest>;

    /// A request that downloads `key`, valid for `ttl`, answered with `as_`'s
    /// `Content-Type` and `Content-Disposition`; `Range` requests get `206` with the part.
    /// A backend that serves on parley's own origin (the disk) adds
    /// `X-Content-Type-Options: nosniff` and a sandboxing `Content-Security-Policy`.
    async fn download_request(
        &self,
        key: &str,
        as_: &DownloadAs,
        ttl: Duration,
    ) -> MediaResult<SignedRequest>;

    /// The object's size, or `None` if there is none.
    async fn size(&self, key: &str) -> MediaResult<Option<u64>>;

    /// The whole object; `TooLarge` (reading no more than that) past `limit` bytes,
    /// `NotFound` if there is none.
    async fn read(&self, key: &str, limit: u64) -> MediaResult<Vec<u8>>;

    /// At most `length` bytes of the object from byte `start` (fewer at its end, none
    /// past it); `NotFound` if there is no object.
    async fn read_range(&self, key: &str, start: u64, length: u64) -> MediaResult<Vec<u8>>;

    /// Stores `bytes` under `key` (what the server derives: a thumbnail, a cleaned copy).
    async fn write(&self, key: &str, bytes: Vec<u8>) -> MediaResult<()>;

    /// Moves the object `from` to `to`, replacing what is there; `NotFound` if there is
    /// nothing at `from`.
    async fn rename(&self, from: &str, to: &str) -> MediaResult<()>;

    /// Writes the objects `parts`, in order, one after another as the object `to`
    /// (replacing what is there) and returns its size, streaming (a part is never whole
    /// in memory). `TooLarge` past `limit` bytes (nothing is written); `NotFound` if a
    /// part is missing. The parts stay (the caller deletes them).
    async fn concat(&self, parts: &[String], to: &str, limit: u64) -> MediaResult<u64>;

    /// Deletes the object; deleting what is not there is not an error.
    async fn delete(&self, key: &str) -> MediaResult<()>;
}

/// `now + ttl`, as a [`Timestamp`].
pub fn expires_after(ttl: Duration) -> Timestamp {
    Timestamp(Timestamp::now().millis() + ttl.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_servers_own_shape() {
        for good in ["m/01J9ZX/original", "a", "a-b_c.d/e"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/./b", "a b", "ä", "a?b", "a\\b",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key(&"a".repeat(257)).is_err());
    }

    #[test]
    fn dispositions_encode_the_name() {
        let as_ = DownloadAs {
            content_type: "application/pdf".into(),
            inline: false,
            filename: Some("Rapport été \"final\".pdf".into()),
        };
        assert_eq!(
            as_.content_disposition(),
            "attachment; filename*=UTF-8''Rapport%20%C3%A9t%C3%A9%20%22final%22.pdf"
        );
        let inline = DownloadAs {
            filename: None,
            inline: true,
            ..as_
        };
        assert_eq!(inline.content_disposition(), "inline");
    }
}
