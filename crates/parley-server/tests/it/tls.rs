//! TLS by configuration: the same port serves HTTPS (and so WSS) with rustls.

use crate::harness::*;

/// With `[tls]` set, the server answers HTTPS with the configured certificate, and the
/// REST API works over it.
#[tokio::test]
async fn serves_https_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
    let server = TestServer::start_with(|config| {
        config.tls = Some(parley_server::config::Tls {
            cert_path,
            key_path,
        });
    })
    .await;
    assert!(server.url.starts_with("https://"));
    let port = server.server.as_ref().unwrap().address.port();
    let root = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let client = parley_sdk::Client::with_http_client(&base, http).unwrap();
    let auth = client
        .register("alice", "password-123", None)
        .await
        .unwrap();
    assert_eq!(client.me().await.unwrap().user_id, auth.user_id);
    let plain = reqwest::get(format!("http://localhost:{port}/healthz")).await;
    assert!(
        plain.is_err() || plain.unwrap().status() != 200,
        "plain HTTP is not served"
    );
}
