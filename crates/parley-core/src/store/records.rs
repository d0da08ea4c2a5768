//! The records the `Store` port reads and writes, in the domain's words.

use super::*;

/// A user row, with what only the server may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub user_id: UserId,
    pub username: String,
    pub password_hash: String,
    pub display_name: String,
    pub status_message: Option<String>,
    pub avatar_url: Option<String>,
    /// The profile picture (an upload of theirs): anyone signed in may download it.
    pub avatar_media_id: Option<MediaId>,
    pub last_seen_privacy: LastSeenPrivacy,
    /// Push notifications carry the message's text.
    pub push_previews: bool,
    pub last_seen_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// Set once the account is deleted: the row stays as a tombstone ("Deleted account")
    /// so the messages it sent still name a sender.
    pub deleted_at: Option<Timestamp>,
}

/// A change to a profile; `Some(None)` clears an optional field.
#[derive(Clone, Debug, Default)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub status_message: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    /// A new avatar marks its media sent (never collected while it is one); the one it
    /// replaces is released. `MissingReference` if the media is gone.
    pub avatar_media_id: Option<Option<MediaId>>,
    pub last_seen_privacy: Option<LastSeenPrivacy>,
    pub push_previews: Option<bool>,
}

/// A logged-in device and the hash of its bearer token.
#[derive(Clone, Debug)]
pub struct NewDevice {
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub name: Option<String>,
    /// SHA-256 of the token; the token itself is never stored.
    pub token_hash: Vec<u8>,
    pub created_at: Timestamp,
}

/// Who a valid token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub user_id: UserId,
    pub device_id: DeviceId,
}

/// A conversation without per-user state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationRecord {
    pub conversation_id: ConversationId,
    pub kind: ConversationType,
    pub name: Option<String>,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub last_seq: i64,
    pub last_activity_at: Timestamp,
    pub member_count: u32,
    /// Moves on with every membership or metadata change: the version the core decides
    /// changes against.
    pub members_version: i64,
    /// Disappearing messages: what is sent now expires this many seconds later (0: off).
    pub disappearing_seconds: u32,
    /// The group's picture: its members may download it.
    pub avatar_media_id: Option<MediaId>,
}

/// A conversation as one member sees it in their list.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationSummary {
    pub conversation: ConversationRecord,
    pub last_message: Option<Message>,
    pub read_seq: i64,
    pub unread_count: i64,
    /// Messages after `read_seq` that mention the user, not deleted, not hidden by them.
    pub unread_mentions: i64,
    /// The user's own settings ([`ChatSettingsUpdate`]). `muted_until` is
    /// [`MUTED_FOREVER`] for "forever" and may lie in the past.
    pub muted_until: Option<Timestamp>,
    /// When the user archived it (whether it is still archived is
    /// `rules::is_archived`).
    pub archived_at: Option<Timestamp>,
    pub pinned_at: Option<Timestamp>,
    pub marked_unread: bool,
    /// Where the user deleted the chat for themselves (`Store::clear_conversation`): the
    /// `seq` nothing up to which they see any more; 0 if never.
    pub cleared_seq: i64,
}

/// Where one user stands in one of their conversations (`Store::list_conversation_positions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationPosition {
    pub conversation_id: ConversationId,
    pub last_seq: i64,
    /// Up to where nothing is unread for the user: their read pointer, or their
    /// `cleared_seq` if later.
    pub read_seq: i64,
    /// Where they deleted the chat for themselves (0: never): nothing up to it is theirs
    /// to receive any more.
    pub cleared_seq: i64,
}

/// `muted_until` of a conversation muted "forever".
pub const MUTED_FOREVER: Timestamp = Timestamp(i64::MAX);

/// Position in the conversation list, exclusive: pinned conversations come first, newest
/// pin first (`pinned_at` set), then the others by `(last_activity_at, conversation_id)`,
/// newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListCursor {
    pub pinned_at: Option<Timestamp>,
    pub last_activity_at: Timestamp,
    pub conversation_id: ConversationId,
}

/// Which of the user's conversations a list shows: every one (for totals), or those in
/// the archive at `now` or not (`rules::is_archived`: the "Archived" view, the list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFilter {
    All,
    Archived { archived: bool, now: Timestamp },
}

/// A change to one user's own settings for one conversation; `None` keeps a field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatSettingsUpdate {
    /// `Some(None)` unmutes; [`MUTED_FOREVER`] mutes for good.
    pub muted_until: Option<Option<Timestamp>>,
    /// `Some(at)` archives (as of `at`), `None` inside un-archives.
    pub archived_at: Option<Option<Timestamp>>,
    /// `Some(at)` pins (as of `at`), `None` inside unpins.
    pub pinned_at: Option<Option<Timestamp>>,
    pub marked_unread: Option<bool>,
}

/// A message before the store gives it a `seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    pub sender_device_id: DeviceId,
    pub client_msg_id: String,
    pub content: String,
    pub content_type: ContentType,
    pub reply_to_seq: Option<i64>,
    pub created_at: Timestamp,
    pub system: Option<SystemEvent>,
    /// For a change entry (`ContentType::is_change`): the message it changes.
    pub target_seq: Option<i64>,
    /// For `text`: the users it mentions (the core checked they are members).
    pub mentions: Vec<UserId>,
    /// A forwarded copy.
    pub forwarded: bool,
    /// Ready media, checked by the core (the sender's own, or readable by them for a
    /// forward), in the order sent.
    pub attachments: Vec<Media>,
}

impl NewMessage {
    /// The stored message once `seq` is known.
    pub fn with_seq(self, seq: i64) -> Message {
        Message {
            message_id: self.message_id,
            conversation_id: self.conversation_id,
            seq,
            sender_id: self.sender_id,
            sender_device_id: self.sender_device_id,
            client_msg_id: self.client_msg_id,
            content: self.content,
            content_type: self.content_type,
            reply_to_seq: self.reply_to_seq,
            created_at: self.created_at,
            system: self.system,
            target_seq: self.target_seq,
            mentions: self.mentions,
            forwarded: self.forwarded,
            attachments: self.attachments,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            hidden: false,
            expires_at: None,
        }
    }
}

/// The result of appending one message.
#[derive(Clone, Debug, PartialEq)]
pub struct Appended {
    /// The stored message: the new one, or for a duplicate the first one.
    pub message: Message,
    /// True when `(sender_id, client_msg_id)` had been stored before: nothing new was
    /// written and nothing must be fanned out again.
    pub duplicate: bool,
    /// The conversation's `members_version` in the transaction that stored the message:
    /// its recipients are the members at that version (0 for a duplicate).
    pub members_version: i64,
}

/// Why one message of a batch was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendRefusal {
    /// The sender is not, or no longer, a member of the conversation when the
    /// transaction runs (a removal committed after the send was admitted).
    NotMember,
    /// The sender already used this `client_msg_id` for a message in another
    /// conversation: not a retry of that message, and nothing is stored.
    ClientMsgIdReused,
    /// A change entry whose target, when the transaction runs, is not an ordinary message
    /// of the conversation or was deleted (by an earlier entry, maybe of the same batch).
    TargetGone,
    /// A direct conversation whose two members have a block between them (either way)
    /// when the transaction runs (`block_user`): nothing is stored.
    Blocked,
    /// An attachment's media no longer exists when the transaction runs (collected
    /// meanwhile): nothing is stored.
    MediaGone,
}

/// One message's fate in `append_messages`.
pub type AppendOutcome = Result<Appended, AppendRefusal>;

/// The blocks one user is part of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockRelations {
    /// The users this user blocks.
    pub blocked: HashSet<UserId>,
    /// The users who block this user.
    pub blocked_by: HashSet<UserId>,
}

impl BlockRelations {
    /// From `(other user, whether they block this one)` pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (UserId, bool)>) -> Self {
        let mut relations = Self::default();
        for (user_id, blocks_me) in pairs {
            if blocks_me {
                relations.blocked_by.insert(user_id);
            } else {
                relations.blocked.insert(user_id);
            }
        }
        relations
    }

    /// Whether a block stands between this user and `other`, either way.
    pub fn with(&self, other: &UserId) -> bool {
        self.blocked.contains(other) || self.blocked_by.contains(other)
    }

    /// Every user on the other side of a block, either way.
    pub fn all(&self) -> impl Iterator<Item = &UserId> {
        self.blocked.union(&self.blocked_by)
    }
}

/// A new conversation with its first members and, for groups, its first system message.
#[derive(Clone, Debug)]
pub struct NewConversation {
    pub conversation_id: ConversationId,
    pub kind: ConversationType,
    pub name: Option<String>,
    pub description: Option<String>,
    /// For direct chats: the pair key that makes the conversation unique.
    pub direct_key: Option<String>,
    pub members: Vec<(UserId, Role)>,
    pub created_at: Timestamp,
    pub system_message: Option<NewMessage>,
}

/// A change of membership or metadata, stored with its system message in one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConversationChange {
    /// Joiners start with their delivered and read pointers at the conversation's
    /// `last_seq` before the change: the history is theirs to read, none of it is unread.
    /// (The store applies this because only it knows `last_seq` at commit, when other
    /// nodes may be appending; the suite checks it.)
    AddMembers(Vec<(UserId, Role)>),
    RemoveMember(UserId),
    /// `None` leaves a field as it is; `Some("")` clears the description.
    Rename {
        name: Option<String>,
        description: Option<String>,
    },
    /// New roles for present members (absent ones are ignored).
    SetRoles(Vec<(UserId, Role)>),
    /// Disappearing messages on (seconds after sending) or off (0), for what is appended
    /// after this change: the store sets their `expires_at` (`rules::expires_at`).
    SetDisappearing(u32),
    /// The group's picture, or none. Like a profile's avatar, the new media is marked
    /// sent and the old one released; `MissingReference` if the media is gone.
    SetAvatar(Option<MediaId>),
}

/// Changes decided by the core against one state of the members, applied by the store in
/// one transaction with their system messages.
#[derive(Clone, Debug)]
pub struct ConversationUpdate {
    /// The `members_version` the changes were decided on. If the conversation's has moved
    /// since (another node changed it), the store refuses with `Conflict` and writes
    /// nothing; the core decides again.
    pub expected_members_version: i64,
    /// Applied in order.
    pub changes: Vec<ConversationChange>,
    /// Appended in order after the changes, each with the next `seq`.
    pub system_messages: Vec<NewMessage>,
}

/// Which part of a conversation's history to read. Both bounds are exclusive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqRange {
    pub after_seq: Option<i64>,
    pub before_seq: Option<i64>,
}

/// Where to take a page from when both or neither bound is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageFrom {
    /// The oldest messages of the range (sync, `after_seq`).
    Oldest,
    /// The newest messages of the range (scrolling back).
    Newest,
}

/// One user's pointer moves, as reported by their devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptUpdate {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub delivered_seq: i64,
    pub read_seq: i64,
}

/// A pointer that actually moved forward, with where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptChange {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub old_delivered_seq: i64,
    pub delivered_seq: i64,
    pub old_read_seq: i64,
    pub read_seq: i64,
}

/// Which messages count, for a count or a list the store answers: the rule is the core's
/// (`rules::UNREAD`, `rules::RECEIPT_SENDERS`), the query the store's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counting<'a> {
    /// Messages of these content types do not count.
    pub except_types: &'a [ContentType],
    /// The asking user's own messages do not count.
    pub except_own: bool,
}

/// A full-text search, its terms folded by `crate::search`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery<'a> {
    /// The searching user: only their conversations, without what they hid.
    pub user_id: &'a UserId,
    /// Every term must be the prefix of a word of the message (at least one term).
    pub terms: &'a [String],
    /// Only this conversation (the user's), else all of theirs.
    pub conversation_id: Option<&'a ConversationId>,
    /// Only messages with a smaller `message_id` (the previous page's last).
    pub before: Option<&'a MessageId>,
    pub limit: u32,
}

/// Who has received and read one message (its sender excluded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageReceipts {
    pub delivered_to: Vec<UserId>,
    pub read_by: Vec<UserId>,
}
