//! The protocol's nouns: messages, conversations, members, profiles.

use crate::{ConversationId, DeviceId, MediaId, MessageId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A stored message, as sent in `new_message`, history pages and `sync`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    /// Per-conversation, from 1, gap-free; the only order clients use.
    pub seq: i64,
    pub sender_id: UserId,
    pub sender_device_id: DeviceId,
    pub client_msg_id: String,
    pub content: String,
    /// [`ContentType::TEXT`] by default; [`ContentType::SYSTEM`] for membership and
    /// metadata changes (see `system`).
    pub content_type: ContentType,
    pub reply_to_seq: Option<i64>,
    pub created_at: Timestamp,
    /// Extension: set on `content_type:"system"` messages, the machine-readable event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemEvent>,
    /// On a change entry (`reaction`, `edit`, `delete`): the `seq` of the message it
    /// changes, in the same conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_seq: Option<i64>,
    /// Users mentioned by a `text` message (members when it was sent). Gone once the
    /// message is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// A copy made by `POST /messages/forward` (it carries no link to its source).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forwarded: bool,
    /// Current state: when the sender last edited it (`content` is the edited text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Timestamp>,
    /// Current state: deleted for everyone; `content` and `mentions` are empty for good.
    #[serde(default)]
    pub deleted: bool,
    /// Current state: one entry per emoji, in the order they were first used.
    #[serde(default)]
    pub reactions: Vec<ReactionCount>,
    /// For the reading user only: they hid this message ("delete for me"). It comes back
    /// with empty `content` so that its `seq` is still accounted for (no gap).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// Sent while the conversation had disappearing messages on: when it leaves every
    /// read path and is purged from storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Photos, videos, voice notes and files, in the order sent (`content` is their
    /// caption). Gone once the message is deleted or expires.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Media>,
}

/// An uploaded photo, video, voice note or file: what `POST /media/{id}/complete`
/// answers, and each attachment of a message. Its bytes are fetched with
/// `GET /media/{id}` (and `/thumbnail`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    pub media_id: MediaId,
    pub status: MediaStatus,
    /// The type sniffed from the bytes (a declared type that lies is corrected).
    pub content_type: String,
    /// Bytes, as stored (an image's metadata stripped).
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Images: pixels, upright.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Audio and video, where the container says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Images: a smaller picture at `GET /media/{id}/thumbnail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Thumbnail>,
    /// Images: a BlurHash (blurha.sh) to paint before any byte arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blurhash: Option<String>,
}

/// Where an upload stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaStatus {
    /// Created; its bytes not uploaded or not checked yet.
    Pending,
    /// Checked and processed: it may be sent and downloaded.
    Ready,
}

impl MediaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaStatus::Pending => "pending",
            MediaStatus::Ready => "ready",
        }
    }

    /// The stored name read back; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Ready]
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

/// The size of an image's thumbnail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
}

impl Message {
    /// Whether this entry changes another message (`reaction`, `edit`, `delete`) rather
    /// than being one: it is never unread, never a preview, never a notification.
    pub fn is_change(&self) -> bool {
        self.content_type.is_change()
    }
}

/// How many people reacted to a message with one emoji, and whether the reader did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionCount {
    pub emoji: String,
    pub count: u32,
    pub me: bool,
}

/// Who reacted to a message with one emoji
/// (`GET /conversations/{id}/messages/{seq}/reactions`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionUsers {
    pub emoji: String,
    pub user_ids: Vec<UserId>,
}

/// A message's `content_type`: a plain string on the wire, named once here.
///
/// `text` is the default and `system` is the server's own (membership and metadata
/// changes, with a [`SystemEvent`]); any other name a client chooses within
/// [`ContentType::is_sendable`] is stored and passed on unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContentType(Cow<'static, str>);

impl ContentType {
    /// Plain text: what a send that names no type is.
    pub const TEXT: ContentType = ContentType(Cow::Borrowed("text"));
    /// A message the server wrote about the conversation itself; clients cannot send it.
    pub const SYSTEM: ContentType = ContentType(Cow::Borrowed("system"));
    /// Sets or clears (`content: ""`) the sender's one reaction on `target_seq`.
    pub const REACTION: ContentType = ContentType(Cow::Borrowed("reaction"));
    /// Replaces the text of `target_seq` (its sender, within the edit window).
    pub const EDIT: ContentType = ContentType(Cow::Borrowed("edit"));
    /// Deletes `target_seq` for everyone (its sender within the window, or a group admin).
    pub const DELETE: ContentType = ContentType(Cow::Borrowed("delete"));
    /// The change entries: stored in the `seq` stream like messages, but never unread,
    /// never a preview, never a notification.
    pub const CHANGES: [ContentType; 3] = [Self::REACTION, Self::EDIT, Self::DELETE];
    /// The longest type a client may send, in bytes.
    pub const MAX_LEN: usize = 64;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a system message (no sender's words; has a `system` event).
    pub fn is_system(&self) -> bool {
        *self == Self::SYSTEM
    }

    /// Whether this is a change entry (`reaction`, `edit`, `delete`).
    pub fn is_change(&self) -> bool {
        Self::CHANGES.contains(self)
    }

    /// Whether a client may send a message of this type: 1-64 characters of
    /// `a-z 0-9 . / + - _`, and not `system`. The server refuses anything else.
    pub fn is_sendable(&self) -> bool {
        !self.0.is_empty()
            && self.0.len() <= Self::MAX_LEN
            && !self.is_system()
            && self.0.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"./+-_".contains(&byte)
            })
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ContentType {
    fn from(value: String) -> Self {
        Self(Cow::Owned(value))
    }
}

impl From<&str> for ContentType {
    fn from(value: &str) -> Self {
        Self(Cow::Owned(value.to_owned()))
    }
}

/// What a system message records. Membership changes are messages in `seq` order so that
/// every device sees the same history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SystemEvent {
    /// The group was created by `actor_id` with these initial members.
    GroupCreated {
        actor_id: UserId,
        name: String,
        user_ids: Vec<UserId>,
    },
    /// `actor_id` added `user_ids`.
    MembersAdded {
        actor_id: UserId,
        user_ids: Vec<UserId>,
    },
    /// `actor_id` removed `user_id` (an admin action).
    MemberRemoved { actor_id: UserId, user_id: UserId },
    /// `user_id` left the group.
    MemberLeft { user_id: UserId },
    /// `actor_id` gave `user_id` the role `role` (an owner handing over ownership also
    /// becomes an admin, in the same change).
    RoleChanged {
        actor_id: UserId,
        user_id: UserId,
        role: Role,
    },
    /// `actor_id` changed the name and/or description.
    ConversationRenamed {
        actor_id: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// `actor_id` turned disappearing messages on (`seconds` after sending) or off (`0`):
    /// for the messages sent after this one.
    DisappearingChanged { actor_id: UserId, seconds: u32 },
    /// `actor_id` set the group's picture (`avatar_media_id`) or removed it (absent).
    AvatarChanged {
        actor_id: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        avatar_media_id: Option<MediaId>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationType {
    Direct,
    Group,
}

impl ConversationType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationType::Direct => "direct",
            ConversationType::Group => "group",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    /// Owners and admins may rename, add and remove.
    pub fn is_admin(self) -> bool {
        self >= Role::Admin
    }
}

/// One member of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: UserId,
    pub role: Role,
    pub joined_at: Timestamp,
    /// Extension: so a client can show names without one lookup per member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A conversation as one member sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub conversation_id: ConversationId,
    #[serde(rename = "type")]
    pub kind: ConversationType,
    /// The group's name; for a direct chat, `null` (clients show the other member).
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The group's picture (`PATCH /conversations/{id}`, admins): its members may
    /// download it. Direct chats have none (clients show the other member's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_media_id: Option<MediaId>,
    /// Present in `GET /conversations/{id}`, `conversation_updated` and, for direct chats
    /// and small groups, in the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
    /// Extension: number of members, always present.
    #[serde(default)]
    pub member_count: u32,
    pub created_at: Timestamp,
    /// Extension: time of the last message (or creation); the list is ordered by it.
    pub last_activity_at: Timestamp,
    pub last_seq: i64,
    /// Boxed: a `Conversation` travels in frames beside the hot `new_message`, and an
    /// inline `Message` would make every frame as large as both.
    pub last_message: Option<Box<Message>>,
    pub unread_count: i64,
    /// Extension: this user's read pointer, shared by all their devices.
    #[serde(default)]
    pub last_read_seq: i64,
    /// This user's settings for the conversation (`PATCH /conversations/{id}/settings`).
    /// Present in the list, in `GET /conversations/{id}` and in the `conversation_updated`
    /// a change of settings sends to the user's own devices; absent (`None`) in the
    /// `conversation_updated` every member receives alike, which carries nobody's
    /// settings. `Some(None)` (JSON `null`): not muted.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub muted_until: Option<Option<MutedUntil>>,
    /// Archived by this user (and not brought back by a message since, see
    /// `docs/protocol.md`). Present exactly when `muted_until` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
    /// Pinned by this user: pinned conversations come first in the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<bool>,
    /// Extension: when this user pinned it (the list puts the newest pin first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_at: Option<Timestamp>,
    /// Marked as unread by this user (until they read it or unmark it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_unread: Option<bool>,
    /// Messages after this user's read pointer that mention them (deleted ones and
    /// the ones they hid do not count).
    #[serde(default)]
    pub unread_mentions: i64,
    /// Disappearing messages: messages sent now expire this many seconds after they are
    /// sent; `0` is off.
    #[serde(default)]
    pub disappearing_seconds: u32,
    /// Extension: this user deleted the chat for themselves (`POST
    /// /conversations/{id}/clear`) when it ended at this `seq`: nothing up to it is in
    /// their history, sync, search, preview or counts, and the chat stays out of their
    /// list until a message comes after it. `0`: never cleared. Present exactly when
    /// `muted_until` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_seq: Option<i64>,
}

/// Until when a conversation is muted: a time, or `"forever"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutedUntil {
    Until(Timestamp),
    Forever,
}

impl MutedUntil {
    /// Whether the conversation is muted at `now`.
    pub fn is_muted_at(self, now: Timestamp) -> bool {
        match self {
            MutedUntil::Forever => true,
            MutedUntil::Until(until) => until > now,
        }
    }
}

impl Serialize for MutedUntil {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MutedUntil::Forever => serializer.serialize_str("forever"),
            MutedUntil::Until(until) => until.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for MutedUntil {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if text == "forever" {
            return Ok(MutedUntil::Forever);
        }
        Timestamp::parse(&text)
            .map(MutedUntil::Until)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 time or \"forever\""))
    }
}

/// Deserializes a field that is present (even as `null`) into `Some`, so an absent field
/// (`None`, by `default`) and a `null` one (`Some(None)`) differ.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A user's own profile, with privacy settings (`GET /users/me`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub status_message: Option<String>,
    pub avatar_url: Option<String>,
    /// The profile picture uploaded through `POST /media` (`PATCH /users/me`): anyone
    /// signed in may download it (`GET /media/{id}/thumbnail` for the small one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_media_id: Option<MediaId>,
    /// Privacy: who sees this user's online status and `last_seen` in `presence`.
    pub last_seen_privacy: LastSeenPrivacy,
    /// `last_seen_privacy == "everyone"`, for clients of protocol v1.
    pub last_seen_visible: bool,
    /// Whether push notifications carry the message's text (off by default: a
    /// notification then says only who wrote where).
    #[serde(default)]
    pub push_previews: bool,
    pub created_at: Timestamp,
}

/// Who sees a user's online status and `last_seen`. Nobody sees them across a block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastSeenPrivacy {
    #[default]
    Everyone,
    /// The people this user has a direct chat with and has written to there.
    Contacts,
    Nobody,
}

impl LastSeenPrivacy {
    pub fn as_str(self) -> &'static str {
        match self {
            LastSeenPrivacy::Everyone => "everyone",
            LastSeenPrivacy::Contacts => "contacts",
            LastSeenPrivacy::Nobody => "nobody",
        }
    }

    /// The stored name read back; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Everyone, Self::Contacts, Self::Nobody]
            .into_iter()
            .find(|privacy| privacy.as_str() == name)
    }
}

/// `GET /users/me/export`: what parley keeps about the user and what they sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountExport {
    /// `parley-export-1`.
    pub format: String,
    pub exported_at: Timestamp,
    pub profile: Profile,
    pub blocked: Vec<BlockedUser>,
    /// The conversations the user is in, as they see them (their settings, the members),
    /// without a last message (it may be someone else's).
    pub conversations: Vec<Conversation>,
    /// Every message the user sent (system messages aside), those in conversations they
    /// left included, in their current state, by conversation then `seq`.
    pub messages: Vec<Message>,
}

/// A user this user blocked (`GET /users/me/blocked`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedUser {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub blocked_at: Timestamp,
}

/// Another user's profile as anyone may see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicProfile {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub status_message: Option<String>,
    pub avatar_url: Option<String>,
    /// The profile picture uploaded through `POST /media`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_media_id: Option<MediaId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Delivered,
    Read,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Offline,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A content type is a bare JSON string, whether named by a constant or read back.
    #[test]
    fn content_type_is_a_plain_string_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&ContentType::SYSTEM).unwrap(),
            r#""system""#
        );
        let read: ContentType = serde_json::from_str(r#""text""#).unwrap();
        assert_eq!(read, ContentType::TEXT);
        assert!(!read.is_system());
        let custom: ContentType = serde_json::from_str(r#""image/png""#).unwrap();
        assert_eq!(custom.as_str(), "image/png");
    }

    /// What a client may send: the protocol's charset and length, never `system`.
    #[test]
    fn sendable_content_types() {
        for name in ["text", "image/png", "application/vnd.x+json", "a-b_c.1"] {
            assert!(ContentType::from(name).is_sendable(), "{name}");
        }
        let too_long = "a".repeat(ContentType::MAX_LEN + 1);
        for name in ["", "system", "Text", "a b", "ü", too_long.as_str()] {
            assert!(!ContentType::from(name).is_sendable(), "{name:?}");
        }
        assert!(ContentType::from("a".repeat(ContentType::MAX_LEN)).is_sendable());
    }
}
