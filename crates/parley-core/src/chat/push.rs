//! Push subscriptions: each device says where its notifications go (Web Push,
//! UnifiedPush, APNs, FCM), checked here (the endpoint's SSRF guard, the keys' shapes)
//! before the store keeps it. Logging the device out removes it.

use super::*;
use crate::push::{check_keys, check_token, endpoint::checked_endpoint};
use crate::store::PushSubscription;
use parley_proto::PushKind;

/// What a device subscribes with (`PUT /devices/me/push`), unchecked.
#[derive(Clone, Debug, Default)]
pub struct PushTarget {
    pub endpoint: Option<String>,
    /// `(p256dh, auth)`.
    pub keys: Option<(String, String)>,
    pub token: Option<String>,
}

impl Chat {
    /// The VAPID public key Web Push clients subscribe with.
    pub fn vapid_public_key(&self) -> &str {
        &self.inner.config.push_vapid_public_key
    }

    /// Sets where the session's device gets its pushes, replacing what it had.
    pub async fn set_push_subscription(
        &self,
        session: &Session,
        kind: PushKind,
        target: PushTarget,
    ) -> Result<()> {
        let (endpoint, keys, token) = if kind.is_web_push() {
            let (Some(endpoint), Some((p256dh, auth)), None) =
                (target.endpoint, target.keys, &target.token)
            else {
                return Err(Error::Invalid(format!(
                    "{} takes endpoint and keys {{p256dh, auth}}, no token",
                    kind.as_str()
                )));
            };
            let allow_insecure = self.inner.config.push_allow_insecure_endpoints;
            let url = checked_endpoint(&endpoint, allow_insecure).map_err(Error::Invalid)?;
            check_keys(&p256dh, &auth).map_err(Error::Invalid)?;
            (Some(url.to_string()), Some((p256dh, auth)), None)
        } else {
            let (None, None, Some(token)) = (&target.endpoint, &target.keys, target.token) else {
                return Err(Error::Invalid(format!(
                    "{} takes a token, no endpoint or keys",
                    kind.as_str()
                )));
            };
            check_token(&token).map_err(Error::Invalid)?;
            (None, None, Some(token))
        };
        self.check_write_rate(session).await?;
        let (p256dh, auth) = keys.unzip();
        let subscription = PushSubscription {
            device_id: session.device_id.clone(),
            user_id: session.user_id.clone(),
            kind,
            endpoint,
            p256dh,
            auth,
            token,
            created_at: Timestamp::now(),
        };
        match self.inner.store.set_push_subscription(subscription).await {
            Ok(()) => Ok(()),
            // Logged out meanwhile: the token is no longer good.
            Err(StoreError::NotFound) => Err(Error::Unauthorized),
            Err(error) => Err(error.into()),
        }
    }

    /// Stops pushes to the session's device.
    pub async fn delete_push_subscription(&self, session: &Session) -> Result<()> {
        self.inner
            .store
            .delete_push_subscription(&session.device_id)
            .await?;
        Ok(())
    }

    /// The session's device's subscription; `NotFound` if it has none.
    pub async fn push_subscription(&self, session: &Session) -> Result<PushSubscription> {
        match self
            .inner
            .store
            .fetch_push_subscription(&session.device_id)
            .await
        {
            Ok(subscription) => Ok(subscription),
            Err(StoreError::NotFound) => Err(Error::NotFound("push subscription")),
            Err(error) => Err(error.into()),
        }
    }
}
