//! Push over REST: the server's VAPID key and this device's subscription.

use super::*;
use parley_proto::rest::{PushConfig, PushSubscriptionRequest, PushSubscriptionView};

impl Client {
    /// `GET /push/config`: the VAPID public key to subscribe to Web Push with.
    pub async fn push_config(&self) -> Result<PushConfig, SdkError> {
        self.get(&["push", "config"]).await
    }

    /// `PUT /devices/me/push`: where this device's pushes go, replacing what it had.
    pub async fn set_push_subscription(
        &self,
        subscription: &PushSubscriptionRequest,
    ) -> Result<(), SdkError> {
        let request = self
            .request(Method::PUT, self.url(&["devices", "me", "push"]))
            .json(subscription);
        self.call_empty(request).await
    }

    /// `GET /devices/me/push`: this device's subscription (without keys or token).
    pub async fn push_subscription(&self) -> Result<PushSubscriptionView, SdkError> {
        self.get(&["devices", "me", "push"]).await
    }

    /// `DELETE /devices/me/push`: no more pushes to this device.
    pub async fn delete_push_subscription(&self) -> Result<(), SdkError> {
        let request = self.request(Method::DELETE, self.url(&["devices", "me", "push"]));
        self.call_empty(request).await
    }
}
