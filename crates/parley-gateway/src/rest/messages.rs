//! The REST calls around messages beyond sending and reading: who reacted, delete for me,
//! forward, search.

use super::*;

/// # `GET /api/v1/conversations/{conversation_id}/messages/{seq}/reactions`
pub(super) async fn reactions(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams((conversation_id, seq)): PathParams<(String, i64)>,
) -> Result<Json<ReactionsResponse>, ApiError> {
    let reactions = state
        .chat
        .reactions(&session, &ConversationId(conversation_id), seq)
        .await?;
    Ok(Json(ReactionsResponse { reactions }))
}

/// # `POST /api/v1/conversations/{conversation_id}/messages/{seq}/hide`
///
/// Delete for me: 204; the user's devices get `message_hidden`.
pub(super) async fn hide_message(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams((conversation_id, seq)): PathParams<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    state
        .chat
        .hide_message(&session, &ConversationId(conversation_id), seq)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `POST /api/v1/messages/forward`
///
/// 201 with the copies, in the order of `to_conversation_ids`.
pub(super) async fn forward(
    State(state): State<AppState>,
    Auth(session): Auth,
    JsonBody(request): JsonBody<ForwardRequest>,
) -> Result<(StatusCode, Json<ForwardResponse>), ApiError> {
    let messages = state
        .chat
        .forward(
            &session,
            &request.from_conversation_id,
            request.seq,
            &request.to_conversation_ids,
            request.client_msg_id,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(ForwardResponse { messages })))
}

#[derive(Deserialize)]
pub(super) struct MessageSearchQuery {
    q: Option<String>,
    conversation_id: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// # `GET /api/v1/search?q=&conversation_id=&cursor=&limit=`
pub(super) async fn search_messages(
    State(state): State<AppState>,
    Auth(session): Auth,
    QueryParams(query): QueryParams<MessageSearchQuery>,
) -> Result<Json<SearchResponse>, ApiError> {
    let conversation_id = query.conversation_id.map(ConversationId);
    let page = state
        .chat
        .search_messages(
            &session,
            query.q.as_deref().unwrap_or_default(),
            conversation_id.as_ref(),
            query.cursor.as_deref(),
            query.limit,
        )
        .await?;
    Ok(Json(SearchResponse {
        results: page
            .hits
            .into_iter()
            .map(|hit| SearchResult {
                conversation_id: hit.message.conversation_id.clone(),
                seq: hit.message.seq,
                snippet: hit.snippet,
                message: hit.message,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
