//! Conformance cases for the media port: what a client does with the requests a backend
//! signs (over real HTTP), and what the server reads, writes and deletes.
//!
//! Each case takes a fresh backend whose keys no other test shares.

use parley_core::media::{DownloadAs, HttpMethod, MediaError, MediaStore, SignedRequest};
use std::sync::Arc;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(300);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// Sends a signed request as a client would: its method, URL and headers, and `body`.
async fn send(request: &SignedRequest, body: Option<Vec<u8>>) -> reqwest::Response {
    send_with(request, body, &[]).await
}

async fn send_with(
    request: &SignedRequest,
    body: Option<Vec<u8>>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let method = match request.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Put => reqwest::Method::PUT,
    };
    let mut builder = http().request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    if let Some(body) = body {
        builder = builder.body(body);
    }
    builder.send().await.expect("the backend answers")
}

/// Some bytes of every value, `len` long.
fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|index| (index * 7 % 256) as u8).collect()
}

fn pdf(name: &str) -> DownloadAs {
    DownloadAs {
        content_type: "application/pdf".into(),
        inline: false,
        filename: Some(name.into()),
    }
}

/// An upload request stores exactly the bytes sent with it (more than a usual request
/// body limit); the server reads them back whole, or refuses past a limit without
/// reading on.
pub async fn an_upload_request_stores_the_bytes(store: Arc<dyn MediaStore>) {
    let body = bytes(3 << 20);
    let request = store
        .upload_request("m/one/original", body.len() as u64, TTL)
        .await
        .unwrap();
    assert_eq!(request.method, HttpMethod::Put);
    let response = send(&request, Some(body.clone())).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        store.size("m/one/original").await.unwrap(),
        Some(body.len() as u64)
    );
    assert_eq!(store.read("m/one/original", 4 << 20).await.unwrap(), body);
    let limit = body.len() as u64 - 1;
    assert!(matches!(
        store.read("m/one/original", limit).await,
        Err(MediaError::TooLarge { limit: found }) if found == limit
    ));
}

/// A body longer or shorter than the signed size is refused and nothing is stored, or
/// (where the backend cannot pin the length) stored whole with its true size, which is
/// what the server checks before it accepts an upload: never a size that hides the lie.
pub async fn an_upload_of_another_length_is_refused_or_seen(store: Arc<dyn MediaStore>) {
    for sent in [99usize, 101] {
        let key = format!("m/len{sent}/original");
        let request = store.upload_request(&key, 100, TTL).await.unwrap();
        // The length header is the client's HTTP library's to set from the body.
        let unsigned_length = SignedRequest {
            headers: request
                .headers
                .iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
                .cloned()
                .collect(),
            ..request.clone()
        };
        let response = send(&unsigned_length, Some(bytes(sent))).await;
        if response.status().is_success() {
            assert_eq!(store.size(&key).await.unwrap(), Some(sent as u64));
            assert_eq!(store.read(&key, 1000).await.unwrap(), bytes(sent));
        } else {
            assert!(
                response.status().is_client_error(),
                "{sent} bytes for 100: {}",
                response.status()
            );
            assert_eq!(store.size(&key).await.unwrap(), None, "{sent} bytes kept");
        }
    }
}

/// A download request serves the bytes with the headers asked for, and one range of them
/// as `206`.
pub async fn a_download_request_serves_the_bytes_as_asked(store: Arc<dyn MediaStore>) {
    let body = bytes(10_000);
    store.write("m/two/original", body.clone()).await.unwrap();
    let as_ = pdf("Résumé 2026.pdf");
    let request = store
        .download_request("m/two/original", &as_, TTL)
        .await
        .unwrap();
    assert_eq!(request.method, HttpMethod::Get);
    let response = send(&request, None).await;
    assert_eq!(response.status(), 200);
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/pdf")
    );
    assert_eq!(
        header(&response, "content-disposition"),
        Some(as_.content_disposition())
    );
    assert_eq!(response.bytes().await.unwrap().to_vec(), body);

    let part = send_with(&request, None, &[("range", "bytes=100-199")]).await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        header(&part, "content-range").as_deref(),
        Some("bytes 100-199/10000")
    );
    assert_eq!(
        part.bytes().await.unwrap().to_vec(),
        body[100..200].to_vec()
    );
}

/// A signed request is good for its object, its method and its time only.
pub async fn signed_requests_bind_their_object_method_and_time(store: Arc<dyn MediaStore>) {
    store.write("m/three/original", bytes(10)).await.unwrap();
    store.write("m/four/original", bytes(20)).await.unwrap();
    let as_ = pdf("a.pdf");
    let request = store
        .download_request("m/three/original", &as_, TTL)
        .await
        .unwrap();
    let other_object = SignedRequest {
        url: request.url.replace("m/three/original", "m/four/original"),
        ..request.clone()
    };
    assert!(other_object.url != request.url);
    let response = send(&other_object, None).await;
    assert_eq!(response.status(), 403, "another object");
    let as_put = SignedRequest {
        method: HttpMethod::Put,
        ..request.clone()
    };
    let response = send(&as_put, Some(bytes(10))).await;
    assert!(response.status().is_client_error(), "another method");
    assert_eq!(
        store.read("m/three/original", 100).await.unwrap(),
        bytes(10)
    );

    let short = store
        .download_request("m/three/original", &as_, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(send(&short, None).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(send(&short, None).await.status(), 403, "expired");
    let upload = store
        .upload_request("m/five/original", 10, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(send(&upload, Some(bytes(10))).await.status(), 403);
    assert_eq!(store.size("m/five/original").await.unwrap(), None);
}

/// What the server writes it reads back; a delete takes it away, and deleting again is no
/// error; keys are the server's own shape.
pub async fn objects_are_written_read_and_deleted(store: Arc<dyn MediaStore>) {
    store.ping().await.unwrap();
    assert_eq!(store.size("m/six/thumbnail").await.unwrap(), None);
    assert!(matches!(
        store.read("m/six/thumbnail", 100).await,
        Err(MediaError::NotFound)
    ));
    store.write("m/six/thumbnail", bytes(33)).await.unwrap();
    store.write("m/six/thumbnail", bytes(44)).await.unwrap();
    assert_eq!(store.read("m/six/thumbnail", 100).await.unwrap(), bytes(44));
    store.delete("m/six/thumbnail").await.unwrap();
    store.delete("m/six/thumbnail").await.unwrap();
    assert_eq!(store.size("m/six/thumbnail").await.unwrap(), None);
    for bad in ["../etc/passwd", "/abs", "a b", ""] {
        assert!(
            matches!(
                store.write(bad, bytes(1)).await,
                Err(MediaError::Invalid(_))
            ),
            "{bad:?}"
        );
        assert!(matches!(
            store.upload_request(bad, 1, TTL).await,
            Err(MediaError::Invalid(_))
        ));
    }
}

/// A range of an object reads those bytes: clipped at its end, empty past it; a read of
/// more than the limit is refused.
pub async fn ranges_of_an_object_read_back(store: Arc<dyn MediaStore>) {
    let content = bytes(10_000);
    store
        .write("m/seven/original", content.clone())
        .await
        .unwrap();
    assert_eq!(
        store.read_range("m/seven/original", 0, 100).await.unwrap(),
        content[..100]
    );
    assert_eq!(
        store
            .read_range("m/seven/original", 9_990, 100)
            .await
            .unwrap(),
        content[9_990..]
    );
    assert!(store
        .read_range("m/seven/original", 20_000, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.read("m/seven/original", 9_999).await,
        Err(MediaError::TooLarge { limit: 9_999 })
    ));
    assert!(matches!(
        store.read_range("m/seven/none", 0, 10).await,
        Err(MediaError::NotFound)
    ));
}

/// A move takes the object to its new key, replacing what is there, and leaves nothing
/// behind; moving what is not there is `NotFound`.
pub async fn objects_move(store: Arc<dyn MediaStore>) {
    store.write("u/eight", bytes(300)).await.unwrap();
    store.write("m/eight/original", bytes(5)).await.unwrap();
    store.rename("u/eight", "m/eight/original").await.unwrap();
    assert_eq!(store.size("u/eight").await.unwrap(), None);
    assert_eq!(
        store.read("m/eight/original", 1000).await.unwrap(),
        bytes(300)
    );
    assert!(matches!(
        store.rename("u/eight", "m/eight/original").await,
        Err(MediaError::NotFound)
    ));
    assert!(matches!(
        store.rename("u/eight", "../x").await,
        Err(MediaError::Invalid(_)) | Err(MediaError::NotFound)
    ));
}

/// Parts are written one after another as one object (past S3's 5 MiB piece size, so a
/// multipart upload with more than one piece), replacing what was there; the parts stay.
/// Past the limit nothing is written; a missing part is `NotFound`.
pub async fn parts_concatenate_into_one_object(store: Arc<dyn MediaStore>) {
    let first: Vec<u8> = (0..9 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let second = bytes(1000);
    store.write("p/nine/1", first.clone()).await.unwrap();
    store.write("p/nine/2", second.clone()).await.unwrap();
    store.write("u/nine", bytes(3)).await.unwrap();
    let parts = ["p/nine/1".to_owned(), "p/nine/2".to_owned()];
    let size = store
        .concat(&parts, "u/nine", 20 * 1024 * 1024)
        .await
        .unwrap();
    let whole = [first.clone(), second.clone()].concat();
    assert_eq!(size, whole.len() as u64);
    assert_eq!(store.read("u/nine", size).await.unwrap(), whole);
    assert_eq!(store.size("p/nine/2").await.unwrap(), Some(1000));

    assert!(matches!(
        store.concat(&parts, "u/ten", size - 1).await,
        Err(MediaError::TooLarge { .. })
    ));
    assert_eq!(store.size("u/ten").await.unwrap(), None);
    let missing = ["p/nine/1".to_owned(), "p/nine/3".to_owned()];
    assert!(matches!(
        store.concat(&missing, "u/ten", u64::MAX / 2).await,
        Err(MediaError::NotFound)
    ));
    assert_eq!(store.size("u/ten").await.unwrap(), None);
}
