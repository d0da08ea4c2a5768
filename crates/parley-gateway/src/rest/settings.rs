//! The REST calls for a user's own control over their chats and account: settings per
//! conversation, blocking, logging out everywhere, deleting the account, the export.

use super::*;
use parley_core::chat::ChatSettings;
use parley_proto::rest::{BlockedList, ConversationSettingsRequest, DeleteAccountRequest};

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

/// # `POST /api/v1/conversations/{conversation_id}/clear`
///
/// Delete chat for me: 200 with the conversation as the user now sees it (`cleared_seq`
/// set, nothing before it); their devices get it as `conversation_updated`.
pub(super) async fn clear_conversation(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(conversation_id): PathParams<String>,
) -> Result<Json<Conversation>, ApiError> {
    Ok(Json(
        state
            .chat
            .clear_conversation(&session, &ConversationId(conversation_id))
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

/// # `DELETE /api/v1/users/me`
///
/// 204 once the account is deleted (password confirmed); 403 for a wrong password.
pub(super) async fn delete_account(
    State(state): State<AppState>,
    Auth(session): Auth,
    JsonBody(request): JsonBody<DeleteAccountRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .chat
        .delete_account(&session, &request.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `DELETE /api/v1/users/me/devices`
///
/// 204: every token of the user is revoked (this one too) and their sockets closed.
pub(super) async fn logout_everywhere(
    State(state): State<AppState>,
    Auth(session): Auth,
) -> Result<StatusCode, ApiError> {
    state.chat.logout_everywhere(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `GET /api/v1/users/me/export`
///
/// The export as a JSON download (`Content-Disposition: attachment`).
pub(super) async fn export(
    State(state): State<AppState>,
    Auth(session): Auth,
) -> Result<Response, ApiError> {
    let export = state.chat.export(&session).await?;
    let filename = format!(
        "parley-export-{}.json",
        export
            .profile
            .username
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
            .collect::<String>()
    );
    let mut response = Json(export).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_DISPOSITION,
        axum::http::HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
            .map_err(|_| ApiError::new(ErrorCode::Internal, "bad export file name"))?,
    );
    Ok(response)
}
