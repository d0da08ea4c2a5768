//! The media calls: start an upload, complete it, and fetch what was sent.
//!
//! The bytes never come here: `POST /media` answers a signed request for the media
//! store, and `GET /media/{id}` redirects to a short-lived signed URL (or, asked for JSON,
//! names it) once the core has checked that the caller may see it.

use super::*;
use axum::http::{header, HeaderMap, HeaderValue};
use parley_core::chat::NewUpload;
use parley_core::media::SignedRequest;
use parley_proto::rest::{CreateMediaRequest, MediaLink, MediaPart, MediaParts, MediaUpload};
use parley_proto::{Media, MediaId};

/// # `POST /api/v1/media`
///
/// 201 with where to upload the bytes; then `POST /media/{media_id}/complete`.
pub(super) async fn create_media(
    State(state): State<AppState>,
    Auth(session): Auth,
    JsonBody(request): JsonBody<CreateMediaRequest>,
) -> Result<(StatusCode, Json<MediaUpload>), ApiError> {
    let upload = state
        .chat
        .create_upload(
            &session,
            NewUpload {
                content_type: request.content_type,
                size: request.size,
                filename: request.filename,
                sha256: request.sha256,
                duration_ms: request.duration_ms,
            },
        )
        .await?;
    let request = upload.request;
    Ok((
        StatusCode::CREATED,
        Json(MediaUpload {
            media_id: upload.media_id,
            upload_url: request.url,
            upload_method: request.method.as_str().to_owned(),
            upload_headers: request.headers.into_iter().collect(),
            expires_at: request.expires_at,
        }),
    ))
}

/// # `GET /api/v1/media/{media_id}/parts`
///
/// The pending upload in parts: which arrived, and a signed request for each that has
/// not (to send a large file in pieces, and to resume it).
pub(super) async fn upload_parts(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(media_id): PathParams<String>,
) -> Result<Json<MediaParts>, ApiError> {
    let media_id = MediaId(media_id);
    let parts = state.chat.upload_parts(&session, &media_id).await?;
    let parts = parts
        .into_iter()
        .map(|part| {
            let request = part.request;
            MediaPart {
                part_number: part.number,
                offset: part.offset,
                size: part.size,
                received: part.received,
                upload_method: request.as_ref().map(|r| r.method.as_str().to_owned()),
                upload_headers: request
                    .as_ref()
                    .map(|r| r.headers.iter().cloned().collect()),
                expires_at: request.as_ref().map(|r| r.expires_at),
                upload_url: request.map(|r| r.url),
            }
        })
        .collect();
    Ok(Json(MediaParts {
        media_id,
        part_size: parley_proto::limits::MEDIA_PART_BYTES,
        parts,
    }))
}

/// # `POST /api/v1/media/{media_id}/complete`
///
/// The upload checked and processed: the media object, `status: "ready"`.
pub(super) async fn complete_media(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(media_id): PathParams<String>,
) -> Result<Json<Media>, ApiError> {
    let media = state
        .chat
        .complete_upload(&session, &MediaId(media_id))
        .await?;
    Ok(Json(media))
}

/// # `GET /api/v1/media/{media_id}`
///
/// `302` to a short-lived signed URL of the bytes; with `Accept: application/json`, that
/// URL as `{url, expires_at}`. `404` for anyone who may not see it.
pub(super) async fn download_media(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(media_id): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = state
        .chat
        .media_download(&session, &MediaId(media_id), false)
        .await?;
    Ok(link_or_redirect(request, &headers))
}

/// # `GET /api/v1/media/{media_id}/thumbnail`
///
/// As `GET /media/{media_id}`, for the thumbnail of a picture (a JPEG).
pub(super) async fn download_thumbnail(
    State(state): State<AppState>,
    Auth(session): Auth,
    PathParams(media_id): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = state
        .chat
        .media_download(&session, &MediaId(media_id), true)
        .await?;
    Ok(link_or_redirect(request, &headers))
}

/// The signed URL as JSON when the client asks for JSON, else a redirect to it. Neither
/// may be cached beyond the URL's life.
fn link_or_redirect(request: SignedRequest, headers: &HeaderMap) -> Response {
    let wants_json = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("application/json"));
    let mut response = if wants_json {
        Json(MediaLink {
            url: request.url,
            expires_at: request.expires_at,
        })
        .into_response()
    } else {
        match HeaderValue::from_str(&request.url) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(_) => ApiError::new(ErrorCode::Internal, "unusable media URL").into_response(),
        }
    };
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}
