//! The web client, embedded in the binary at build time from `web/static/`.
//!
//! Served at `/` with no build step at run time. Unknown paths outside `/api` get the app
//! (client-side routing); unknown `/api` paths get a JSON 404.

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parley_proto::ErrorCode;

#[derive(rust_embed::Embed)]
#[folder = "../../web/static/"]
struct Assets;

pub async fn static_file(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    uri: Uri,
) -> Response {
    let csp = content_security_policy(state.config.media_origin.as_deref());
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path == "api" {
        return crate::error::ApiError::new(ErrorCode::NotFound, "no such API route")
            .into_response();
    }
    let path = if path.is_empty() { "index.html" } else { path };
    match Assets::get(path) {
        Some(file) => asset_response(path, file.data.into_owned(), csp),
        None if !path.contains('.') => match Assets::get("index.html") {
            Some(file) => asset_response("index.html", file.data.into_owned(), csp),
            None => StatusCode::NOT_FOUND.into_response(),
        },
        None => crate::error::ApiError::new(ErrorCode::NotFound, "no such file").into_response(),
    }
}

/// Scripts and styles from parley only; pictures, players and uploads may also reach
/// the media store's origin (S3 in cluster mode) and the page's own `blob:` previews.
fn content_security_policy(media_origin: Option<&str>) -> String {
    let media = media_origin
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; img-src 'self' data: blob: https:{media}; \
         media-src 'self' blob:{media}; connect-src 'self' ws: wss:{media}; style-src 'self'; \
         script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
}

fn asset_response(path: &str, body: Vec<u8>, csp: String) -> Response {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    (
        [
            (header::CONTENT_TYPE, mime.as_ref().to_owned()),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        body,
    )
        .into_response()
}
