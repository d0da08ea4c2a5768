//! The REST API, prefix `/api/v1`, plus `/healthz`, `/readyz` and `/metrics`.
//!
//! Each handler authenticates (except register and login), calls one `Chat` method and
//! answers JSON. Request bodies go through [`JsonBody`], so malformed JSON, wrong fields
//! and oversize bodies all get the protocol's `{"error":{…}}` with the right status.

use crate::bodies;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use parley_core::chat::SendRequest;
use parley_core::Session;
use parley_proto::rest::{
    AddMembersRequest, AuthResponse, ConversationList, CreateConversationRequest, ForwardRequest,
    ForwardResponse, LoginRequest, MemberList, MessagePage, ReactionsResponse, ReadRequest,
    ReceiptsResponse, RegisterRequest, SearchResponse, SearchResult, SendMessageRequest,
    UnreadSummary, UpdateConversationRequest, UpdateMemberRequest, UpdateProfileRequest, UserList,
};
use parley_proto::{
    Conversation, ConversationId, ErrorCode, Message, Profile, PublicProfile, UserId,
};
use serde::Deserialize;
use std::net::SocketAddr;

mod media;
mod messages;
mod push;
mod settings;
use media::{complete_media, create_media, download_media, download_thumbnail, upload_parts};
use messages::{forward, hide_message, reactions, search_messages};
use push::{delete_push_subscription, push_config, push_subscription, set_push_subscription};
use settings::{
    block_user, blocked_users, clear_conversation, delete_account, export, logout_everywhere,
    unblock_user, update_settings,
};

/// A JSON object body whose rejections speak the protocol's error format. Only an object
/// is accepted: serde would read a struct from an array by position, so `["x","y"]`
/// would otherwise pass for `{"username":"x","password":"y"}`.
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<mime_guess::mime::Mime>().ok())
            .is_some_and(|mime| {
                mime.type_() == "application"
                    && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
            });
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "expected a body with Content-Type: application/json",
            ));
        }
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(ErrorCode::FrameTooLarge, rejection.body_text())
                } else {
                    ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
                }
            })?;
        match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
            Some(b'{') => {}
            None => return Err(ApiError::new(ErrorCode::MalformedJson, "the body is empty")),
            Some(_) => {
                return Err(
                    match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                        Ok(_) => ApiError::new(
                            ErrorCode::InvalidRequest,
                            "the body must be a JSON object",
                        ),
                        Err(error) => ApiError::new(
                            ErrorCode::MalformedJson,
                            format!("malformed JSON: {error}"),
                        ),
                    },
                )
            }
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&body)?;
        Ok(Self(value))
    }
}

/// Path parameters whose rejections (bad percent-encoding, a non-number where a number
/// goes) speak the protocol's error format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct PathParams<T>(pub T);

/// A query string whose rejections (repeated or mistyped parameters) speak the protocol's
/// error format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryParams<T>(pub T);

/// The bearer token's session; 401 `unauthorized` if missing, unknown or revoked.
pub struct Auth(pub Session);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "missing Authorization: Bearer token",
                )
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "expected Authorization: Bearer <token>",
            )
        })?;
        Ok(Auth(state.chat.authenticate(token.trim()).await?))
    }
}

pub fn routes(max_body_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/users/me", get(me).patch(update_me).delete(delete_account))
        .route("/users/me/blocked", get(blocked_users))
        .route("/users/me/devices", delete(logout_everywhere))
        .route("/users/me/export", get(export))
        .route("/users", get(search_users))
        .route("/users/{user_id}", get(user))
        .route(
            "/users/{user_id}/block",
            post(block_user).delete(unblock_user),
        )
        .route(
            "/conversations",
            post(create_conversation).get(list_conversations),
        )
        .route(
            "/conversations/{conversation_id}",
            get(conversation).patch(update_conversation),
        )
        .route(
            "/conversations/{conversation_id}/members",
            post(add_members),
        )
        .route(
            "/conversations/{conversation_id}/members/{user_id}",
            delete(remove_member).patch(update_member),
        )
        .route(
            "/conversations/{conversation_id}/messages",
            get(history).post(send_message),
        )
        .route("/conversations/{conversation_id}/read", post(mark_read))
        .route(
            "/conversations/{conversation_id}/clear",
            post(clear_conversation),
        )
        .route(
            "/conversations/{conversation_id}/settings",
            axum::routing::patch(update_settings),
        )
        .route(
            "/conversations/{conversation_id}/messages/{seq}/receipts",
            get(receipts),
        )
        .route(
            "/conversations/{conversation_id}/messages/{seq}/reactions",
            get(reactions),
        )
        .route(
            "/conversations/{conversation_id}/messages/{seq}/hide",
            post(hide_message),
        )
        .route("/messages/forward", post(forward))
        .route("/media", post(create_media))
        .route("/media/{media_id}", get(download_media))
        .route("/media/{media_id}/complete", post(complete_media))
        .route("/media/{media_id}/parts", get(upload_parts))
        .route("/media/{media_id}/thumbnail", get(download_thumbnail))
        .route("/push/config", get(push_config))
        .route(
            "/devices/me/push",
            get(push_subscription)
                .put(set_push_subscription)
                .delete(delete_push_subscription),
        )
        .route("/search", get(search_messages))
        .route("/unread", get(unread))
        .route("/openapi.json", get(openapi))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
}

async fn check_auth_rate(state: &AppState, address: &SocketAddr) -> Result<(), ApiError> {
    let origin = crate::limits::ip_key(address.ip()).to_string();
    Ok(state.chat.check_auth_attempt(&origin).await?)
}

/// # `POST /api/v1/auth/register`
async fn register(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<AuthResponse>), ApiError> {
    check_auth_rate(&state, &address).await?;
    let response = state
        .chat
        .register(
            &request.username,
            &request.password,
            request.display_name,
            request.device_name,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(bodies::auth_response(response))))
}

/// # `POST /api/v1/auth/login`
async fn login(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    check_auth_rate(&state, &address).await?;
    let credentials = state
        .chat
        .login(&request.username, &request.password, request.device_name)
        .await?;
    Ok(Json(bodies::auth_response(credentials)))
}

/// # `POST /api/v1/auth/logout`
async fn logout(
    State(state): State<AppState>,
    Auth(session): Auth,
) -> Result<StatusCode, ApiError> {
    state.chat.logout(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `GET /api/v1/users/me`
async fn me(State(state): State<AppState>, Auth(session): Auth) -> Result<Json<Profile>, ApiError> {
    Ok(Json(state.chat.me(&session).await?))
}

/// # `PATCH /api/v1/users/me`
async fn update_me(
    State(state): State<AppState>,
    Auth(session): Auth,
    JsonBody(request): JsonBody<UpdateProfileRequest>,
) -> Result<Json<Profile>, ApiError> {
    let changes = bodies::profile_changes(request);
    Ok(Json(state.chat.update_me(&session, changes).await?))
}

#[derive(Deserialize)]
struct SearchQuery {
    query: Option<String>,
    limit: Option<u32>,
}

/// # `GET /api/v1/users?query=&limit=`
async fn search_users(
    State(state): State<AppState>,
    Auth(session): Auth,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<UserList>, ApiError> {
    let text = query.query.unwrap_or_default();
    let users = state
        .chat
        .search_users(&session, &text, query.limit.unwrap_or(20))
        .await?;
    Ok(Json(UserList { users }))
}

/// # `GET /api/v1/users/{user_id}`
async fn user(
    State(state): State<AppState>,
    Auth(_session): Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<Json<PublicProfile>, ApiError> {
    Ok(Json(state.chat.user(&UserId(user_id)).await?))
}

/// # `POST /api/v1/conversations`
///
/// 201 when created; 200 with the existing one for a direct chat that exists.
async fn create_conversation(
    State(state): State<AppState>,
    Auth(session): Auth,
    JsonBody(request): JsonBody<CreateConversationRequest>,
) -> Result<(StatusCode, Json<Conversation>), ApiError> {
    let (conversation, created) = state
        .chat
        .create_conversation(&session, bodies::new_chat(request))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(conversation)))
}

#[derive(Deserialize)]
struct ListQuery {
    cursor: Option<String>,
    limit: Option<u32>,
    /// `true`: the archived conversations instead of the others.
    #[serde(default)]
    archived: bool,
}

/// # `GET /api/v1/conversations?cursor=&limit=&archived=`
async fn list_conversations(
    State(state): State<AppState>,
    Auth(session): Auth,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<ConversationList>, ApiError> {
    let page = state
        .chat
        .list_conversations(
            &session,
            query.archived,
            query.cursor.as_deref(),
            query.limit.unwrap_or(50),
        )
        .await?;
    Ok(Json(bodies::conversation_list(page)))
}

/// # `GET /api/v1/conversations/{conversation_id}`
async fn conversation(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(conversation_id): PathParams<String>,
) -> Result<Json<Conversation>, ApiError> {
    Ok(Json(
        state
            .chat
            .conversation(&session, &ConversationId(conversation_id))
            .await?,
    ))
}

/// # `PATCH /api/v1/conversations/{conversation_id}`
async fn update_conversation(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(conversation_id): PathParams<String>,
    JsonBody(request): JsonBody<UpdateConversationRequest>,
) -> Result<Json<Conversation>, ApiError> {
    Ok(Json(
        state
            .chat
            .update_conversation(
                &session,
                &ConversationId(conversation_id),
                bodies::group_details(request),
            )
            .await?,
    ))
}

/// # `POST /api/v1/conversations/{conversation_id}/members`
async fn add_members(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(conversation_id): PathParams<String>,
    JsonBody(request): JsonBody<AddMembersRequest>,
) -> Result<Json<MemberList>, ApiError> {
    let members = state
        .chat
        .add_members(&session, &ConversationId(conversation_id), request.user_ids)
        .await?;
    Ok(Json(MemberList { members }))
}

/// # `PATCH /api/v1/conversations/{conversation_id}/members/{user_id}`
///
/// Extension: the owner sets a member's role (`owner` hands ownership over).
async fn update_member(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams((conversation_id, user_id)): PathParams<(String, String)>,
    JsonBody(request): JsonBody<UpdateMemberRequest>,
) -> Result<Json<MemberList>, ApiError> {
    let members = state
        .chat
        .set_role(
            &session,
            &ConversationId(conversation_id),
            &UserId(user_id),
            request.role,
        )
        .await?;
    Ok(Json(MemberList { members }))
}

/// # `DELETE /api/v1/conversations/{conversation_id}/members/{user_id}`
async fn remove_member(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams((conversation_id, user_id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .chat
        .remove_member(&session, &ConversationId(conversation_id), &UserId(user_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct HistoryQuery {
    before_seq: Option<i64>,
    after_seq: Option<i64>,
    limit: Option<u32>,
}

/// # `GET /api/v1/conversations/{conversation_id}/messages?before_seq=&after_seq=&limit=`
async fn history(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(conversation_id): PathParams<String>,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let page = state
        .chat
        .history(
            &session,
            &ConversationId(conversation_id),
            query.before_seq,
            query.after_seq,
            query.limit.unwrap_or(50),
        )
        .await?;
    Ok(Json(bodies::message_page(page)))
}

/// # `POST /api/v1/conversations/{conversation_id}/messages`
///
/// The send fallback: 201 with the stored message; 200 with the first one for a retry.
async fn send_message(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(conversation_id): PathParams<String>,
    JsonBody(request): JsonBody<SendMessageRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let appended = state
        .chat
        .send_message(
            &session,
            SendRequest {
                client_msg_id: request.client_msg_id,
                conversation_id: ConversationId(conversation_id),
                content: request.content,
                content_type: request.content_type,
                reply_to_seq: request.reply_to_seq,
                target_seq: request.target_seq,
                mentions: request.mentions,
                attachments: request.attachments,
                forwarded: false,
                origin_connection: None,
            },
        )
        .await?;
    let status = if appended.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(appended.message)))
}

/// # `POST /api/v1/conversations/{conversation_id}/read`
async fn mark_read(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(conversation_id): PathParams<String>,
    JsonBody(request): JsonBody<ReadRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .chat
        .read(
            &session,
            &ConversationId(conversation_id),
            request.up_to_seq,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `GET /api/v1/conversations/{conversation_id}/messages/{seq}/receipts`
async fn receipts(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams((conversation_id, seq)): PathParams<(String, i64)>,
) -> Result<Json<ReceiptsResponse>, ApiError> {
    let receipts = state
        .chat
        .receipts(&session, &ConversationId(conversation_id), seq)
        .await?;
    Ok(Json(bodies::receipts_response(receipts)))
}

/// # `GET /api/v1/unread`
async fn unread(
    State(state): State<AppState>,
    Auth(session): Auth,
) -> Result<Json<UnreadSummary>, ApiError> {
    Ok(Json(bodies::unread_summary(
        state.chat.unread(&session).await?,
    )))
}

/// # `GET /api/v1/openapi.json`
async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../../docs/openapi.json"),
    )
        .into_response()
}

/// # `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// # `GET /readyz`: storage answers and the server is not shutting down.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.is_shutting_down() {
        return ApiError::new(ErrorCode::Unavailable, "shutting down").into_response();
    }
    match state.chat.check_ready().await {
        Ok(()) => "ready".into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            // The top-level message names the backend ("message bus unavailable"), not
            // its address.
            ApiError::new(ErrorCode::Unavailable, error.to_string()).into_response()
        }
    }
}

/// # `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            handle.render(),
        )
            .into_response(),
        None => ApiError::new(ErrorCode::NotFound, "metrics are disabled").into_response(),
    }
}
