//! The records of push: where each device's notifications go, and the server's own
//! secrets (the VAPID key pair) kept where every node finds them.

use super::*;
use async_trait::async_trait;
use parley_proto::PushKind;

/// Where one device's pushes go (`PUT /devices/me/push`), as checked by the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushSubscription {
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub kind: PushKind,
    /// Web Push and UnifiedPush: the push service's URL.
    pub endpoint: Option<String>,
    /// Web Push and UnifiedPush: the browser's keys (base64url).
    pub p256dh: Option<String>,
    pub auth: Option<String>,
    /// APNs and FCM: the device's token.
    pub token: Option<String>,
    pub created_at: Timestamp,
}

/// The push part of the [`Store`] port (every `Store` is one).
#[async_trait]
pub trait PushRecordStore: Send + Sync {
    /// Sets the device's subscription, replacing the one it had. `NotFound` if the device
    /// does not exist or was logged out.
    async fn set_push_subscription(&self, subscription: PushSubscription) -> StoreResult<()>;

    /// Removes the device's subscription; removing none is not an error.
    async fn delete_push_subscription(&self, device_id: &DeviceId) -> StoreResult<()>;

    /// The device's subscription; `NotFound` if it has none.
    async fn fetch_push_subscription(&self, device_id: &DeviceId) -> StoreResult<PushSubscription>;

    /// The subscriptions of the users' devices that are not logged out, by user then
    /// device.
    async fn push_subscriptions(&self, user_ids: &[UserId]) -> StoreResult<Vec<PushSubscription>>;

    /// The server secret `name`: the one stored, or `candidate` if there was none (then
    /// stored). Every node asking gets the same value, whoever asked first.
    async fn server_secret(&self, name: &str, candidate: &str) -> StoreResult<String>;
}
