//! Accounts, devices and tokens.

use crate::harness::*;
use parley_proto::ErrorCode;
use parley_sdk::{Client, Event};

/// Registration validates input and refuses taken usernames; login makes a new device;
/// wrong passwords and unknown users get the same answer.
#[tokio::test]
async fn register_login_and_profile() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let profile = alice.client.me().await.unwrap();
    assert_eq!(
        (profile.username.as_str(), profile.display_name.as_str()),
        ("alice", "alice display")
    );
    assert!(profile.last_seen_visible);

    let anonymous = Client::new(&server.url).unwrap();
    let taken = anonymous
        .register("alice", "password-123", None)
        .await
        .unwrap_err();
    assert_eq!(
        (taken.status(), taken.code()),
        (Some(409), Some(ErrorCode::UsernameTaken))
    );
    let invalid = anonymous
        .register("A!", "password-123", None)
        .await
        .unwrap_err();
    assert_eq!(
        (invalid.status(), invalid.code()),
        (Some(400), Some(ErrorCode::InvalidRequest))
    );
    let short = anonymous
        .register("carol", "short", None)
        .await
        .unwrap_err();
    assert_eq!(short.code(), Some(ErrorCode::InvalidRequest));

    let wrong = anonymous
        .login("alice", "wrong-password")
        .await
        .unwrap_err();
    let unknown = anonymous
        .login("nobody", "wrong-password")
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.status(), wrong.code()),
        (Some(401), Some(ErrorCode::InvalidCredentials))
    );
    assert_eq!(unknown.code(), wrong.code());

    let second = alice.new_device().await;
    assert_ne!(second.token(), alice.client.token());
    assert_eq!(second.me().await.unwrap().user_id, alice.user_id);

    let updated = alice
        .client
        .update_me(&parley_proto::rest::UpdateProfileRequest {
            display_name: Some("Alice Liddell".into()),
            status_message: Some("down the rabbit hole".into()),
            last_seen_visible: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.display_name, "Alice Liddell");
    assert!(!updated.last_seen_visible);
    let seen_by_bob = server
        .user("bob")
        .await
        .client
        .user(&alice.user_id)
        .await
        .unwrap();
    assert_eq!(
        seen_by_bob.status_message.as_deref(),
        Some("down the rabbit hole")
    );
    let found = second.search_users("ali").await.unwrap();
    assert_eq!(found.len(), 1);
}

/// Logout revokes the token at once: REST answers 401 and the device's open socket is
/// closed with code 4001; the user's other devices keep working.
#[tokio::test]
async fn logout_revokes_the_token_everywhere_at_once() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let other_device = alice.new_device().await;
    let mut connection = alice.connect().await;
    let token = alice.token();
    alice.client.logout().await.unwrap();

    expect(&mut connection, "closed as unauthorized", |event| {
        matches!(
            event,
            Event::Closed {
                reason: parley_sdk::CloseReason::Unauthorized
            }
        )
    })
    .await;
    let revoked = alice.client.with_token(token.clone());
    let refused = revoked.me().await.unwrap_err();
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(401), Some(ErrorCode::Unauthorized))
    );
    let upgrade = reqwest::get(server.ws_url(&token).replacen("ws", "http", 1))
        .await
        .unwrap();
    assert_eq!(
        upgrade.status(),
        401,
        "a revoked token cannot open a socket"
    );
    assert!(
        other_device.me().await.is_ok(),
        "other devices stay logged in"
    );
}
