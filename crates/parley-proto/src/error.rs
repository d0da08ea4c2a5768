//! Error codes shared by the REST API (`{"error":{…}}`) and the WebSocket `error` frame.

use serde::{Deserialize, Serialize};

/// Every error a client can be answered with. Snake case on the wire.
///
/// The HTTP status of each code is given by [`ErrorCode::http_status`], so the server maps
/// to the wire in one place and clients can rely on the pairing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame or body is not valid JSON, or not an object with a `type`. (400)
    MalformedJson,
    /// The frame's `type` is not one this server knows. (400)
    UnknownType,
    /// A field is missing, has the wrong type or an invalid value. (400 / 422)
    InvalidRequest,
    /// The frame is larger than the frame limit. (413)
    FrameTooLarge,
    /// The message `content` is larger than the content limit. (413)
    ContentTooLarge,
    /// Missing, unknown or revoked token. (401)
    Unauthorized,
    /// Wrong username or password. (401)
    InvalidCredentials,
    /// A frame other than `auth` arrived before the connection was authenticated. (401)
    NotAuthenticated,
    /// The caller is a member but lacks the role for this operation. (403)
    Forbidden,
    /// The caller is not a member of the conversation. (403 on REST)
    NotMember,
    /// No such user, conversation or message. (404)
    NotFound,
    /// The username is already registered. (409)
    UsernameTaken,
    /// The sender already used this `client_msg_id` for a message in another
    /// conversation: it is not a retry, and nothing is stored. (409)
    ClientMsgIdReused,
    /// The group would exceed its member limit. (422)
    GroupFull,
    /// An edit or a delete by the sender after the edit window (48 h). (422)
    EditWindowPassed,
    /// Only the message's sender may do this (edit; delete, unless a group admin). (403)
    NotSender,
    /// The `target_seq` of a change (or the message named in the path) does not exist
    /// or was deleted for everyone. (404)
    TargetNotFound,
    /// A user pins at most 5 conversations. (409)
    TooManyPinned,
    /// An upload larger than the media limit (100 MiB by default), larger than it was
    /// declared, or past the user's storage quota; an image with more pixels than the
    /// server decodes. Nothing is kept. (413)
    MediaTooLarge,
    /// The media's upload has not arrived or has not been completed yet, or its bytes
    /// are not what was declared. (409)
    MediaNotReady,
    /// A block between the caller and the other user refuses this: a message in their
    /// direct chat, a new direct chat, adding the blocker to a group. (403)
    Blocked,
    /// Too many requests; `retry_after_ms` says when to try again. (429)
    RateLimited,
    /// The server is shutting down or a backend is unavailable. (503)
    Unavailable,
    /// A bug or an unexpected failure; the details are in the server's log. (500)
    Internal,
}

impl ErrorCode {
    /// The HTTP status that goes with this code on the REST API.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::MalformedJson | ErrorCode::UnknownType | ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized
            | ErrorCode::InvalidCredentials
            | ErrorCode::NotAuthenticated => 401,
            ErrorCode::Forbidden
            | ErrorCode::NotMember
            | ErrorCode::NotSender
            | ErrorCode::Blocked => 403,
            ErrorCode::NotFound | ErrorCode::TargetNotFound => 404,
            ErrorCode::UsernameTaken
            | ErrorCode::ClientMsgIdReused
            | ErrorCode::TooManyPinned
            | ErrorCode::MediaNotReady => 409,
            ErrorCode::FrameTooLarge | ErrorCode::ContentTooLarge | ErrorCode::MediaTooLarge => 413,
            ErrorCode::GroupFull | ErrorCode::EditWindowPassed => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }

    /// The wire name, e.g. `not_member`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::ContentTooLarge => "content_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::NotAuthenticated => "not_authenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotMember => "not_member",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::ClientMsgIdReused => "client_msg_id_reused",
            ErrorCode::GroupFull => "group_full",
            ErrorCode::EditWindowPassed => "edit_window_passed",
            ErrorCode::NotSender => "not_sender",
            ErrorCode::TargetNotFound => "target_not_found",
            ErrorCode::TooManyPinned => "too_many_pinned",
            ErrorCode::MediaTooLarge => "media_too_large",
            ErrorCode::MediaNotReady => "media_not_ready",
            ErrorCode::Blocked => "blocked",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// The REST error body: `{"error":{"code":"…","message":"…"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// Set with `rate_limited`: how long to wait before trying again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_as_str() {
        for code in [
            ErrorCode::MalformedJson,
            ErrorCode::UnknownType,
            ErrorCode::InvalidRequest,
            ErrorCode::FrameTooLarge,
            ErrorCode::ContentTooLarge,
            ErrorCode::Unauthorized,
            ErrorCode::InvalidCredentials,
            ErrorCode::NotAuthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotMember,
            ErrorCode::NotFound,
            ErrorCode::UsernameTaken,
            ErrorCode::ClientMsgIdReused,
            ErrorCode::GroupFull,
            ErrorCode::EditWindowPassed,
            ErrorCode::NotSender,
            ErrorCode::TargetNotFound,
            ErrorCode::TooManyPinned,
            ErrorCode::Blocked,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
