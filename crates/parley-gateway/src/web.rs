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

pub async fn static_file(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path == "api" {
        return crate::error::ApiError::new(ErrorCode::NotFound, "no such API route")
            .into_response();
    }
    let path = if path.is_empty() { "index.html" } else { path };
    match Assets::get(path) {
        Some(file) => asset_response(path, file.data.into_owned()),
        None if !path.contains('.') => match Assets::get("index.html") {
            Some(file) => asset_response("index.html", file.data.into_owned()),
            None => StatusCode::NOT_FOUND.into_response(),
        },
        None => crate::error::ApiError::new(ErrorCode::NotFound, "no such file").into_response(),
    }
}

fn asset_response(path: &str, body: Vec<u8>) -> Response {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    (
        [
            (header::CONTENT_TYPE, mime.as_ref().to_owned()),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data: https:; connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'".to_owned(),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        body,
    )
        .into_response()
}
