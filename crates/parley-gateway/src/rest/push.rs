//! Push: the server's VAPID key, and each device's subscription.

use super::*;
use parley_core::chat::PushTarget;
use parley_proto::rest::{PushConfig, PushSubscriptionRequest, PushSubscriptionView};

/// # `GET /api/v1/push/config`
///
/// The VAPID public key to subscribe to Web Push with.
pub(super) async fn push_config(
    State(state): State<AppState>,
    Auth(_session): Auth,
) -> Json<PushConfig> {
    Json(PushConfig {
        vapid_public_key: state.chat.vapid_public_key().to_owned(),
    })
}

/// # `PUT /api/v1/devices/me/push`
///
/// Where this device's pushes go, replacing what it had: 204.
pub(super) async fn set_push_subscription(
    State(state): State<AppState>,
    Auth(session): Auth,
    JsonBody(request): JsonBody<PushSubscriptionRequest>,
) -> Result<StatusCode, ApiError> {
    let target = PushTarget {
        endpoint: request.endpoint,
        keys: request.keys.map(|keys| (keys.p256dh, keys.auth)),
        token: request.token,
    };
    state
        .chat
        .set_push_subscription(&session, request.kind, target)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `GET /api/v1/devices/me/push`
///
/// Extension: this device's subscription (without its keys or token); 404 if none.
pub(super) async fn push_subscription(
    State(state): State<AppState>,
    Auth(session): Auth,
) -> Result<Json<PushSubscriptionView>, ApiError> {
    let subscription = state.chat.push_subscription(&session).await?;
    Ok(Json(PushSubscriptionView {
        kind: subscription.kind,
        endpoint: subscription.endpoint,
        created_at: subscription.created_at,
    }))
}

/// # `DELETE /api/v1/devices/me/push`
///
/// No more pushes to this device: 204 (also when it had none).
pub(super) async fn delete_push_subscription(
    State(state): State<AppState>,
    Auth(session): Auth,
) -> Result<StatusCode, ApiError> {
    state.chat.delete_push_subscription(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}
