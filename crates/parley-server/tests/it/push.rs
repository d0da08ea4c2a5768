//! Push subscriptions over REST: the server's VAPID key (stable across restarts and the
//! same on every node), what a device may subscribe with (the SSRF guard on endpoints,
//! the keys' and tokens' shapes), replacing, removing, logging out, and the previews
//! setting.

use crate::harness::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use parley_proto::rest::{PushKeys, PushSubscriptionRequest, UpdateProfileRequest};
use parley_proto::{ErrorCode, PushKind};

fn keys() -> PushKeys {
    PushKeys {
        p256dh: URL_SAFE_NO_PAD.encode([[4u8].as_slice(), &[7u8; 64]].concat()),
        auth: URL_SAFE_NO_PAD.encode([9u8; 16]),
    }
}

fn web_push(endpoint: &str) -> PushSubscriptionRequest {
    PushSubscriptionRequest {
        kind: PushKind::Webpush,
        endpoint: Some(endpoint.into()),
        keys: Some(keys()),
        token: None,
    }
}

fn status_of<T: std::fmt::Debug>(result: Result<T, parley_sdk::SdkError>) -> (u16, ErrorCode) {
    match result {
        Err(parley_sdk::SdkError::Api { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The VAPID public key is an uncompressed P-256 point, the same after a restart.
#[tokio::test]
async fn the_vapid_key_is_kept() {
    let mut server = TestServer::start().await;
    let alice = server.user("alice").await;
    let key = alice.client.push_config().await.unwrap().vapid_public_key;
    let point = URL_SAFE_NO_PAD.decode(&key).unwrap();
    assert_eq!((point.len(), point[0]), (65, 4));
    server.restart().await;
    let alice = server.user("alice2").await;
    assert_eq!(
        alice.client.push_config().await.unwrap().vapid_public_key,
        key
    );
}

/// Web Push and UnifiedPush take a public https endpoint and the browser's keys; APNs and
/// FCM a token; the device's subscription reads back, is replaced, and goes on DELETE or
/// when the device logs out.
#[tokio::test]
async fn a_device_subscribes_and_unsubscribes() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (status, _) = status_of(alice.client.push_subscription().await);
    assert_eq!(status, 404);
    let endpoint = "https://fcm.googleapis.com/fcm/send/abc:def";
    alice
        .client
        .set_push_subscription(&web_push(endpoint))
        .await
        .unwrap();
    let stored = alice.client.push_subscription().await.unwrap();
    assert_eq!(stored.kind, PushKind::Webpush);
    assert_eq!(stored.endpoint.as_deref(), Some(endpoint));
    let apns = PushSubscriptionRequest {
        kind: PushKind::Apns,
        endpoint: None,
        keys: None,
        token: Some("a1b2c3d4e5f6".into()),
    };
    alice.client.set_push_subscription(&apns).await.unwrap();
    let stored = alice.client.push_subscription().await.unwrap();
    assert_eq!((stored.kind, stored.endpoint), (PushKind::Apns, None));
    alice.client.delete_push_subscription().await.unwrap();
    alice.client.delete_push_subscription().await.unwrap();
    assert_eq!(status_of(alice.client.push_subscription().await).0, 404);

    // Logging out takes the subscription with the token.
    let phone = alice.new_device().await;
    phone
        .set_push_subscription(&web_push(endpoint))
        .await
        .unwrap();
    phone.logout().await.unwrap();
    let again = alice.new_device().await;
    assert_eq!(status_of(again.push_subscription().await).0, 404);
}

/// Endpoints the server must not be made to call (plain http, loopback, private,
/// link-local, metadata addresses, internal names) are refused, as are keys and tokens
/// of the wrong shape and fields that do not go with the kind.
#[tokio::test]
async fn unsafe_endpoints_and_bad_keys_are_refused() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for endpoint in [
        "http://push.example.com/x",
        "https://127.0.0.1/x",
        "https://localhost:8443/x",
        "https://10.0.0.5/x",
        "https://192.168.1.20/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/x",
        "https://metadata.internal/x",
        "https://user:secret@push.example.com/x",
        "not a url",
    ] {
        let (status, code) = status_of(
            alice
                .client
                .set_push_subscription(&web_push(endpoint))
                .await,
        );
        assert_eq!(
            (status, code),
            (400, ErrorCode::InvalidRequest),
            "{endpoint}"
        );
    }
    let mut short_key = web_push("https://push.example.com/x");
    short_key.keys = Some(PushKeys {
        auth: URL_SAFE_NO_PAD.encode([1u8; 8]),
        ..keys()
    });
    let mut no_keys = web_push("https://push.example.com/x");
    no_keys.keys = None;
    let token_on_web_push = PushSubscriptionRequest {
        token: Some("abc".into()),
        ..web_push("https://push.example.com/x")
    };
    let fcm_without_token = PushSubscriptionRequest {
        kind: PushKind::Fcm,
        endpoint: None,
        keys: None,
        token: None,
    };
    let fcm_bad_token = PushSubscriptionRequest {
        token: Some("has spaces".into()),
        ..fcm_without_token.clone()
    };
    for request in [
        short_key,
        no_keys,
        token_on_web_push,
        fcm_without_token,
        fcm_bad_token,
    ] {
        let (status, _) = status_of(alice.client.set_push_subscription(&request).await);
        assert_eq!(status, 400, "{request:?}");
    }
    assert_eq!(status_of(alice.client.push_subscription().await).0, 404);
    let response = reqwest::Client::new()
        .put(format!("{}/api/v1/devices/me/push", server.url))
        .bearer_auth(alice.token())
        .json(&serde_json::json!({"kind": "carrier-pigeon", "token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// `allow_insecure_endpoints` takes a local http distributor (UnifiedPush on this
/// machine, the tests' push service).
#[tokio::test]
async fn insecure_endpoints_are_taken_when_allowed() {
    let server = TestServer::start_with(|config| config.push.allow_insecure_endpoints = true).await;
    let alice = server.user("alice").await;
    let local = PushSubscriptionRequest {
        kind: PushKind::Unifiedpush,
        ..web_push("http://127.0.0.1:8090/UP?token=abc")
    };
    alice.client.set_push_subscription(&local).await.unwrap();
    let stored = alice.client.push_subscription().await.unwrap();
    assert_eq!(stored.kind, PushKind::Unifiedpush);
}

/// Previews are off for a new account and follow `PATCH /users/me`.
#[tokio::test]
async fn push_previews_are_off_until_turned_on() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    assert!(!alice.client.me().await.unwrap().push_previews);
    let on = UpdateProfileRequest {
        push_previews: Some(true),
        ..UpdateProfileRequest::default()
    };
    assert!(alice.client.update_me(&on).await.unwrap().push_previews);
    assert!(alice.client.me().await.unwrap().push_previews);
}

/// Every node of a cluster signs with the same VAPID key (the first node's, kept in the
/// shared store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_has_the_same_vapid_key() {
    let cluster = crate::cluster::TestCluster::start(2).await;
    let alice = cluster.nodes[0].user("alice").await;
    let on_second = cluster.on(1, &alice).await;
    assert_eq!(
        alice.client.push_config().await.unwrap().vapid_public_key,
        on_second
            .client
            .push_config()
            .await
            .unwrap()
            .vapid_public_key
    );
}
