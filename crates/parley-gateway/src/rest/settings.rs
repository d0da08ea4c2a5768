//! The REST calls for a user's own control over their chats: settings per conversation,
//! blocking.

use super::*;
use parley_core::chat::ChatSettings;
use parley_proto::rest::{BlockedList, ConversationSettingsRequest};

/// # `PATCH /api/v1/conversations/{conversation_id}/settings`
///
/// This user's mute, archive, pin and marked-unread for the conversation; 200 with the
/// conversation as they now see it (their devices get it as `conversation_updated`).
pub(super) async fn update_settings(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(conversation_id): PathParams<String>,
    JsonBody(request): JsonBody<ConversationSettingsRequest>,
) -> Result<Json<Conversation>, ApiError> {
    let settings = ChatSettings {
        muted_until: request.muted_until,
        archived: request.archived,
        pinned: request.pinned,
        marked_unread: request.marked_unread,
    };
    Ok(Json(
        state
            .chat
            .update_settings(&session, &ConversationId(conversation_id), settings)
            .await?,
    ))
}

/// # `POST /api/v1/users/{user_id}/block`
///
/// 204; blocking twice is not an error.
pub(super) async fn block_user(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.chat.block(&session, &UserId(user_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `DELETE /api/v1/users/{user_id}/block`
///
/// 204; unblocking someone not blocked is not an error.
pub(super) async fn unblock_user(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.chat.unblock(&session, &UserId(user_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `GET /api/v1/users/me/blocked`
pub(super) async fn blocked_users(
    State(state): State<AppState>,
    Auth(session): Auth,
) -> Result<Json<BlockedList>, ApiError> {
    Ok(Json(BlockedList {
        blocked: state.chat.blocked_users(&session).await?,
    }))
}
