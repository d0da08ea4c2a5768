//! The REST calls for a user's own control over their chats: settings per conversation.

use super::*;
use parley_core::chat::ChatSettings;
use parley_proto::rest::ConversationSettingsRequest;

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
