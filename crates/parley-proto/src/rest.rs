//! REST bodies, prefix `/api/v1`.

use crate::{
    ContentType, Conversation, ConversationId, DeviceId, MediaId, Member, Message, ReactionUsers,
    Timestamp, UserId,
};
use serde::{Deserialize, Serialize};

/// `POST /auth/register`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub username: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Extension: the name of the device this first session runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
}

/// `POST /auth/login`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
}

/// Answer of register and login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResponse {
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub token: String,
}

/// `PATCH /users/me`: every field optional; an absent or `null` field is left as it is,
/// an empty string clears `status_message` or `avatar_url`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UpdateProfileRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// A picture the user uploaded (`POST /media`, completed, an image): their avatar from
    /// now on. `null` removes it; absent leaves it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::types::present"
    )]
    pub avatar_media_id: Option<Option<MediaId>>,
    /// v1's switch: `true` is `last_seen_privacy: "everyone"`, `false` is `"nobody"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_visible: Option<bool>,
    /// Wins over `last_seen_visible` when both are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_privacy: Option<crate::LastSeenPrivacy>,
    /// Push notifications with the message's text (`true`) or without (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_previews: Option<bool>,
}

/// `DELETE /users/me`: the password again, to confirm.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeleteAccountRequest {
    pub password: String,
}

/// `GET /users/me/blocked`: newest block first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockedList {
    pub blocked: Vec<crate::BlockedUser>,
}

/// `GET /users?query=`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<crate::PublicProfile>,
}

/// `POST /conversations`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CreateConversationRequest {
    Direct {
        participant_ids: Vec<UserId>,
    },
    Group {
        name: String,
        #[serde(default)]
        member_ids: Vec<UserId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

/// `GET /conversations?cursor=&limit=`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConversationList {
    pub conversations: Vec<Conversation>,
    pub next_cursor: Option<String>,
}

/// `PATCH /conversations/{id}`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UpdateConversationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Disappearing messages for what is sent from now on: `0` (off), `86400`, `604800`
    /// or `7776000`. Any member of a direct chat; group admins. Never `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::types::present"
    )]
    pub disappearing_seconds: Option<u32>,
    /// The group's picture (admins): a completed image the caller uploaded; `null`
    /// removes it. Groups only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::types::present"
    )]
    pub avatar_media_id: Option<Option<MediaId>>,
}

/// `PATCH /conversations/{id}/settings`: this user's settings, on all their devices.
/// Absent fields stay as they are; `muted_until: null` unmutes; the switches refuse `null`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConversationSettingsRequest {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::types::present"
    )]
    pub muted_until: Option<Option<crate::MutedUntil>>,
    // The switches may be absent but never `null` (the `present` reader refuses a null
    // bool), so a client's `"archived": null` is a 400, not a silent no-op.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::types::present"
    )]
    pub archived: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::types::present"
    )]
    pub pinned: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::types::present"
    )]
    pub marked_unread: Option<bool>,
}

/// `POST /conversations/{id}/members`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddMembersRequest {
    pub user_ids: Vec<UserId>,
}

/// Extension: `PATCH /conversations/{id}/members/{user_id}` (the owner sets roles).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UpdateMemberRequest {
    pub role: crate::Role,
}

/// Answer of `POST /conversations/{id}/members`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberList {
    pub members: Vec<Member>,
}

/// `GET /conversations/{id}/messages`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    pub has_more: bool,
}

/// `POST /conversations/{id}/messages` (the send fallback).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendMessageRequest {
    pub client_msg_id: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<ContentType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_seq: Option<i64>,
    /// For `reaction`, `edit` and `delete`: the message changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_seq: Option<i64>,
    /// For `text`: members mentioned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// Media the sender uploaded and completed (at most 10); `content` is the caption.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<MediaId>,
}

/// `POST /media`: what the client is about to upload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateMediaRequest {
    /// What the client believes it is (`image/jpeg`); the server sniffs the bytes.
    pub content_type: String,
    /// Exactly the bytes that will be uploaded, at most 100 MiB.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Hex SHA-256 of the bytes: checked on completion when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Extension: the client's own measure of a recording (a voice note), kept where the
    /// container does not say (WebM from `MediaRecorder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// The answer to `POST /media`: send the bytes with `upload_method` to `upload_url`,
/// with `upload_headers` as they are, before `expires_at`; then
/// `POST /media/{media_id}/complete`. `upload_url` is absolute (S3), or a path on
/// parley itself (the embedded store), resolved against the server's address.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaUpload {
    pub media_id: MediaId,
    pub upload_url: String,
    pub upload_method: String,
    pub upload_headers: std::collections::BTreeMap<String, String>,
    pub expires_at: Timestamp,
}

/// `GET /push/config`: what a Web Push client subscribes with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PushConfig {
    /// The VAPID public key (RFC 8292): an uncompressed P-256 point, base64url without
    /// padding, for `PushManager.subscribe({applicationServerKey})`.
    pub vapid_public_key: String,
}

/// `PUT /devices/me/push`: where this device's pushes go (replacing what it had).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PushSubscriptionRequest {
    pub kind: crate::PushKind,
    /// Web Push and UnifiedPush: the push service's URL for this device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Web Push and UnifiedPush: the browser's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<PushKeys>,
    /// APNs and FCM: the device's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A Web Push subscription's keys (RFC 8291), base64url as browsers give them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushKeys {
    /// The device's P-256 public key (65 bytes, uncompressed).
    pub p256dh: String,
    /// The authentication secret (16 bytes).
    pub auth: String,
}

/// Extension: `GET /devices/me/push`: the device's subscription as stored (its keys and
/// token left out).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PushSubscriptionView {
    pub kind: crate::PushKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub created_at: Timestamp,
}

/// `GET /media/{media_id}/parts`: the upload cut into parts of `part_size` bytes (the
/// last one shorter), which arrived, and a signed request for each that has not. Sent
/// in any order, each as often as needed (a failed or interrupted part is sent again,
/// with a new request from this call once its URL expired); `POST …/complete` joins
/// them once all have arrived.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaParts {
    pub media_id: MediaId,
    pub part_size: u64,
    pub parts: Vec<MediaPart>,
}

/// One part of an upload sent in parts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaPart {
    /// From 1.
    pub part_number: u32,
    /// Where its bytes start in the file.
    pub offset: u64,
    pub size: u64,
    /// Whether exactly its bytes arrived.
    pub received: bool,
    /// For a part that has not arrived: how to send it (as `MediaUpload` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_headers: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// `GET /media/{id}` (and `/thumbnail`) with `Accept: application/json`: the signed
/// URL that the `302` would lead to, for `<img src>` and players that cannot send a
/// token. Absolute, or a path on parley itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaLink {
    pub url: String,
    pub expires_at: Timestamp,
}

/// `GET /conversations/{id}/messages/{seq}/reactions`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReactionsResponse {
    pub reactions: Vec<ReactionUsers>,
}

/// `POST /messages/forward`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardRequest {
    pub from_conversation_id: ConversationId,
    pub seq: i64,
    pub to_conversation_ids: Vec<ConversationId>,
    /// Extension: makes a retried forward safe. Copy `i` (of `to_conversation_ids`) is
    /// stored with `client_msg_id` `"{client_msg_id}:{i}"`; without it each call makes
    /// new copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// The answer to `POST /messages/forward`: the copies, in the order of
/// `to_conversation_ids`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardResponse {
    pub messages: Vec<Message>,
}

/// `GET /search`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchResponse {
    pub results: Vec<SearchResult>,
    /// Pass as `cursor` for the next (older) page; `null` at the end.
    pub next_cursor: Option<String>,
}

/// One search hit: where it is, an excerpt with matches between `«` and `»`, and the
/// message in its current state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchResult {
    pub conversation_id: ConversationId,
    pub seq: i64,
    pub snippet: String,
    pub message: Message,
}

/// `POST /conversations/{id}/read`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReadRequest {
    pub up_to_seq: i64,
}

/// `GET /conversations/{id}/messages/{seq}/receipts`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReceiptsResponse {
    pub delivered_to: Vec<UserId>,
    pub read_by: Vec<UserId>,
}

/// Extension: `GET /unread` — total unread over all conversations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnreadSummary {
    pub total: i64,
    pub conversations: Vec<UnreadCount>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnreadCount {
    pub conversation_id: ConversationId,
    pub unread_count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Absent leaves a setting alone, `muted_until: null` unmutes, and a `null` switch is
    /// refused rather than read as "leave alone".
    #[test]
    fn settings_request_tells_absent_from_null() {
        let empty: ConversationSettingsRequest = serde_json::from_str("{}").unwrap();
        assert!(empty.muted_until.is_none() && empty.archived.is_none());
        let unmute: ConversationSettingsRequest =
            serde_json::from_str(r#"{"muted_until":null,"pinned":true}"#).unwrap();
        assert_eq!(unmute.muted_until, Some(None));
        assert_eq!(unmute.pinned, Some(true));
        for field in ["archived", "pinned", "marked_unread"] {
            let body = format!(r#"{{"{field}":null}}"#);
            assert!(
                serde_json::from_str::<ConversationSettingsRequest>(&body).is_err(),
                "{body}"
            );
        }
    }
}
