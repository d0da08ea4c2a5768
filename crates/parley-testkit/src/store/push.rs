//! Cases: push subscriptions (one per device, replaced, gone with the device's token),
//! the push-preview setting, and the server's secrets.

use super::account::device;
use super::*;
use parley_core::store::PushSubscription;
use parley_proto::PushKind;

fn web_push(device_id: &DeviceId, user_id: &UserId, endpoint: &str) -> PushSubscription {
    PushSubscription {
        device_id: device_id.clone(),
        user_id: user_id.clone(),
        kind: PushKind::Webpush,
        endpoint: Some(endpoint.into()),
        p256dh: Some("BNc…".into()),
        auth: Some("tBH…".into()),
        token: None,
        created_at: Timestamp::now(),
    }
}

/// A device has one subscription, replaced by the next; the users' subscriptions are read
/// together; logging a device out (or every device) removes its subscription, and a
/// logged-out or unknown device cannot subscribe.
pub async fn push_subscriptions_follow_their_devices(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let phone = device(&store, &alice, 1).await;
    let laptop = device(&store, &alice, 2).await;
    let bobs = device(&store, &bob, 3).await;
    let first = web_push(&phone, &alice, "https://push.example.com/1");
    store.set_push_subscription(first.clone()).await.unwrap();
    assert_eq!(store.fetch_push_subscription(&phone).await.unwrap(), first);
    let apns = PushSubscription {
        kind: PushKind::Apns,
        endpoint: None,
        p256dh: None,
        auth: None,
        token: Some("a1b2c3".into()),
        ..first.clone()
    };
    store.set_push_subscription(apns.clone()).await.unwrap();
    assert_eq!(store.fetch_push_subscription(&phone).await.unwrap(), apns);
    let second = web_push(&laptop, &alice, "https://push.example.com/2");
    store.set_push_subscription(second.clone()).await.unwrap();
    let bob_sub = web_push(&bobs, &bob, "https://push.example.com/3");
    store.set_push_subscription(bob_sub.clone()).await.unwrap();
    let mut expected = vec![apns.clone(), second.clone()];
    expected.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    assert_eq!(
        store
            .push_subscriptions(std::slice::from_ref(&alice))
            .await
            .unwrap(),
        expected
    );
    assert_eq!(
        store
            .push_subscriptions(&[alice.clone(), bob.clone()])
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(matches!(
        store
            .set_push_subscription(web_push(&phone, &bob, "https://push.example.com/x"))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .set_push_subscription(web_push(
                &DeviceId::from("d_none"),
                &alice,
                "https://push.example.com/x"
            ))
            .await,
        Err(StoreError::NotFound)
    ));

    store.delete_device(&phone).await.unwrap();
    assert!(matches!(
        store.fetch_push_subscription(&phone).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.set_push_subscription(first.clone()).await,
        Err(StoreError::NotFound)
    ));
    store.delete_push_subscription(&laptop).await.unwrap();
    store.delete_push_subscription(&laptop).await.unwrap();
    assert!(store
        .push_subscriptions(std::slice::from_ref(&alice))
        .await
        .unwrap()
        .is_empty());
    store.delete_devices(&bob).await.unwrap();
    assert!(store.push_subscriptions(&[bob]).await.unwrap().is_empty());
}

/// `push_previews` is off for a new user and set like any profile field; the first
/// candidate for a server secret is the one every later caller gets.
pub async fn push_previews_and_server_secrets_keep(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    assert!(!store.fetch_user(&alice).await.unwrap().push_previews);
    let update = ProfileUpdate {
        push_previews: Some(true),
        ..ProfileUpdate::default()
    };
    assert!(
        store
            .update_user(&alice, update)
            .await
            .unwrap()
            .push_previews
    );
    let unrelated = ProfileUpdate {
        display_name: Some("Alice".into()),
        ..ProfileUpdate::default()
    };
    assert!(
        store
            .update_user(&alice, unrelated)
            .await
            .unwrap()
            .push_previews
    );
    assert_eq!(
        store.server_secret("vapid", "first").await.unwrap(),
        "first"
    );
    assert_eq!(
        store.server_secret("vapid", "second").await.unwrap(),
        "first"
    );
    assert_eq!(store.server_secret("other", "x").await.unwrap(), "x");
}
