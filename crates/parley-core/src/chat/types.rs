//! What the operations take and give, in the domain's words. The gateway turns REST
//! bodies and frames into these and back; the core knows no request or response body.

use parley_proto::{
    Conversation, ConversationId, DeviceId, LastSeenPrivacy, MediaId, Message, MutedUntil, UserId,
};

/// A device's bearer token, as registration and login hand it out (only then: the store
/// keeps its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub token: String,
}

/// A change to one's own profile: `None` leaves a field as it is; `Some("")` clears the
/// status message or the avatar.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub display_name: Option<String>,
    pub status_message: Option<String>,
    pub avatar_url: Option<String>,
    /// A completed picture the user uploaded; `Some(None)` removes the avatar.
    pub avatar_media_id: Option<Option<MediaId>>,
    pub last_seen_privacy: Option<LastSeenPrivacy>,
    /// Push notifications with the message's text, or without.
    pub push_previews: Option<bool>,
}

/// A conversation to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewChat {
    /// With one other user (or oneself, for notes); opens the existing chat if there is one.
    Direct { participant_ids: Vec<UserId> },
    /// A group, its creator the owner.
    Group {
        name: String,
        member_ids: Vec<UserId>,
        description: Option<String>,
    },
}

/// A rename or new description of a group: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupDetails {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Disappearing messages: seconds, or 0 for off.
    pub disappearing_seconds: Option<u32>,
    /// The group's picture (a completed picture the admin uploaded); `Some(None)`
    /// removes it.
    pub avatar_media_id: Option<Option<MediaId>>,
}

/// A change to one's own settings for a conversation: `None` leaves a field as it is;
/// `muted_until: Some(None)` unmutes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatSettings {
    pub muted_until: Option<Option<MutedUntil>>,
    pub archived: Option<bool>,
    pub pinned: Option<bool>,
    pub marked_unread: Option<bool>,
}

/// One page of a user's conversations, and where the next one starts.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationPage {
    pub conversations: Vec<Conversation>,
    pub next_cursor: Option<String>,
}

/// One page of history in ascending `seq`, and whether there is more in that direction.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    pub has_more: bool,
}

/// Unread messages per conversation (only those with some) and in total.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnreadCounts {
    pub total: i64,
    pub conversations: Vec<(ConversationId, i64)>,
}
