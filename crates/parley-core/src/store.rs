//! The storage port: everything parley keeps durably, in the domain's words.
//!
//! One trait, implemented by `parley-store-sqlite` (embedded) and `parley-store-postgres`
//! (cluster), and checked by one conformance suite in `parley-testkit`. The trait, not
//! its callers, keeps the storage invariants: `append_messages` assigns `seq` gap-free and
//! deduplicates `(sender_id, client_msg_id)` in the same transaction that stores the
//! message; receipt pointers never go backwards; a membership change and its system
//! message commit together. Implementations keep this method order and these docs.

use async_trait::async_trait;
use parley_proto::{
    ContentType, ConversationId, ConversationType, DeviceId, LastSeenPrivacy, Member, Message,
    MessageId, ReactionUsers, Role, SystemEvent, Timestamp, UserId,
};
use std::collections::HashSet;

/// Errors every backend maps its own into.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A rule of uniqueness or a version check refused the write; nothing was written.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// The write names something that does not exist (a user, a conversation): detected
    /// by the backend's foreign keys, by error code.
    #[error("the write refers to a row that does not exist")]
    MissingReference,
    /// A stored row could not be read back (it no longer decodes): reported, never
    /// silently skipped.
    #[error("stored {what} could not be decoded")]
    Corrupt {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend failed or cannot be reached; the operation may be retried.
    #[error("storage unavailable")]
    Unavailable {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Which rule a [`StoreError::Conflict`] is about.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    #[error("the username is taken")]
    Username,
    #[error("members_version is {found}, not the expected {expected}")]
    MembersVersion { expected: i64, found: i64 },
    /// The user has pinned as many conversations as allowed.
    #[error("too many conversations pinned")]
    TooManyPinned,
    /// Another uniqueness rule, named by the backend.
    #[error("unique rule {0} broken")]
    Unique(String),
}

impl StoreError {
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable {
            source: Box::new(error),
        }
    }

    pub fn corrupt(
        what: &'static str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Corrupt {
            what,
            source: Box::new(error),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user row, with what only the server may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub user_id: UserId,
    pub username: String,
    pub password_hash: String,
    pub display_name: String,
    pub status_message: Option<String>,
    pub avatar_url: Option<String>,
    pub last_seen_privacy: LastSeenPrivacy,
    pub last_seen_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A change to a profile; `Some(None)` clears an optional field.
#[derive(Clone, Debug, Default)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub status_message: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub last_seen_privacy: Option<LastSeenPrivacy>,
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers once the backend can serve reads and writes (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    // ---- users --------------------------------------------------------------------

    /// Creates a user. `Conflict` if the username is taken.
    async fn insert_user(&self, user: UserRecord) -> StoreResult<()>;

    /// `NotFound` if there is no such user.
    async fn fetch_user(&self, user_id: &UserId) -> StoreResult<UserRecord>;

    /// The users that exist among `user_ids` (at most a few hundred), in no set order.
    async fn fetch_users(&self, user_ids: &[UserId]) -> StoreResult<Vec<UserRecord>>;

    /// `NotFound` if there is no such username.
    async fn fetch_user_by_username(&self, username: &str) -> StoreResult<UserRecord>;

    /// Users whose username or display name starts with `query` (case-insensitive),
    /// usernames first, at most `limit`.
    async fn search_users(&self, query: &str, limit: u32) -> StoreResult<Vec<UserRecord>>;

    /// Applies a profile change and returns the new profile.
    async fn update_user(&self, user_id: &UserId, update: ProfileUpdate)
        -> StoreResult<UserRecord>;

    /// Records when the user's last device went offline.
    async fn update_last_seen(&self, user_id: &UserId, at: Timestamp) -> StoreResult<()>;

    // ---- blocks -------------------------------------------------------------------

    /// `blocker` blocks `blocked`; returns whether the block is new (blocking twice keeps
    /// the first time). In the same transaction, their direct conversation (if any) stops
    /// taking messages from either of them (`AppendRefusal::Blocked`).
    /// `MissingReference` if either user does not exist.
    async fn block_user(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// Lifts `blocker`'s block of `blocked`; returns whether there was one. Their direct
    /// conversation takes messages again unless `blocked` also blocks `blocker`.
    async fn unblock_user(&self, blocker: &UserId, blocked: &UserId) -> StoreResult<bool>;

    /// The users `blocker` blocks, newest block first, with when.
    async fn list_blocked(&self, blocker: &UserId) -> StoreResult<Vec<(UserRecord, Timestamp)>>;

    /// Everyone with a block between them and `user_id`, either way.
    async fn fetch_block_relations(&self, user_id: &UserId) -> StoreResult<BlockRelations>;

    /// Everyone `user_id` has a direct conversation with ("people I chat with").
    async fn fetch_direct_partners(&self, user_id: &UserId) -> StoreResult<HashSet<UserId>>;

    // ---- devices and sessions -----------------------------------------------------

    async fn insert_device(&self, device: NewDevice) -> StoreResult<()>;

    /// The session a token hash belongs to; `NotFound` if unknown or revoked.
    async fn fetch_session(&self, token_hash: &[u8]) -> StoreResult<SessionRecord>;

    /// The session of a device whose token still stands; `NotFound` if revoked.
    async fn fetch_session_by_device(&self, device_id: &DeviceId) -> StoreResult<SessionRecord>;

    /// Revokes a device's token at once. Revoking twice is not an error.
    async fn delete_device(&self, device_id: &DeviceId) -> StoreResult<()>;

    // ---- conversations ------------------------------------------------------------

    /// Creates a conversation with its members (and system message, whose `seq` is 1).
    /// For a direct chat whose `direct_key` exists already, stores nothing and returns the
    /// existing conversation with `false`. A new direct chat between users with a block
    /// between them refuses messages from the start, as `block_user` would have made it.
    async fn insert_conversation(
        &self,
        conversation: NewConversation,
    ) -> StoreResult<(ConversationRecord, bool)>;

    /// `NotFound` if there is no such conversation.
    async fn fetch_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> StoreResult<ConversationRecord>;

    /// Members with their roles and names: the owner, then admins, then members, each by
    /// join time.
    async fn fetch_members(&self, conversation_id: &ConversationId) -> StoreResult<Vec<Member>>;

    /// One conversation as `user_id` sees it in the list; `NotFound` if not a member.
    /// `unread_count` counts the messages after the user's read pointer that `unread`
    /// lets count; `unread_mentions` the mentions of the user after it; `last_message` is
    /// the newest entry that is not a change entry and not hidden by the user (a deleted
    /// one shows as such).
    async fn fetch_conversation_summary(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        unread: Counting<'_>,
    ) -> StoreResult<ConversationSummary>;

    /// The user's conversations that `filter` shows, in [`ListCursor`] order (pinned
    /// first, then newest activity), strictly after `cursor`, with `unread_count` as in
    /// `fetch_conversation_summary`.
    async fn list_conversations(
        &self,
        user_id: &UserId,
        filter: ListFilter,
        cursor: Option<ListCursor>,
        limit: u32,
        unread: Counting<'_>,
    ) -> StoreResult<Vec<ConversationSummary>>;

    /// Changes `user_id`'s own settings for the conversation. Pinning a conversation
    /// that is not pinned yet while `max_pinned` others are is refused with
    /// `Conflict(Conflict::TooManyPinned)` and nothing is written. `NotFound` if the user
    /// is not a member.
    async fn update_chat_settings(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        update: &ChatSettingsUpdate,
        max_pinned: u32,
    ) -> StoreResult<()>;

    /// Every conversation of the user with its `last_seq` and the user's read pointer.
    async fn list_conversation_positions(
        &self,
        user_id: &UserId,
    ) -> StoreResult<Vec<(ConversationId, i64, i64)>>;

    /// Applies membership or metadata changes and appends their system messages in the
    /// same transaction, if `members_version` is still `expected_members_version`, and
    /// moves `members_version` on by one; otherwise `Conflict` and nothing is written.
    /// Adding a present member or removing an absent one changes nothing for that user.
    /// The store applies no rules of its own (owner succession is one of the changes it is
    /// given). `NotFound` if the conversation does not exist.
    async fn update_conversation(
        &self,
        conversation_id: &ConversationId,
        update: ConversationUpdate,
    ) -> StoreResult<Vec<Appended>>;

    // ---- messages -----------------------------------------------------------------

    /// Appends messages in one transaction (group commit), in the given order, and returns
    /// one outcome each, in the same order.
    ///
    /// Change entries (`ContentType::is_change`, with `target_seq`) take effect in the
    /// same transaction, in order: the core has authorized them; the store checks only
    /// that the target is, at that moment, an ordinary message (not system, not a change)
    /// of the conversation and not deleted, else `AppendRefusal::TargetGone` (no `seq`
    /// used). A `reaction` sets the sender's one reaction on the target (`content` is the
    /// emoji) or clears it (`""`); an `edit` replaces the target's text, sets its
    /// `edited_at` and rewrites every earlier `edit` entry of the target to the new text
    /// (no older version stays readable) and re-indexes it; a `delete` empties the
    /// target's text and mentions for good, marks it deleted, empties its `edit` entries,
    /// drops its reactions and mentions and takes it out of the search index. Change
    /// entries do not move `last_activity_at`. Ordinary `text` messages are indexed for
    /// search (`crate::search::index_terms`) and their mentions counted. Gives each new message the next `seq` of its
    /// conversation (gap-free, from 1); a message whose `(sender_id, client_msg_id)` is
    /// already stored, or appears earlier in the batch, is a duplicate: nothing is written
    /// and the first message is returned, if it is in the same conversation (else
    /// `AppendRefusal::ClientMsgIdReused`). A new message whose sender is not a member at
    /// that moment is refused (`AppendRefusal::NotMember`) and uses no `seq`; so is a
    /// non-system message to a direct conversation with a block between its members
    /// (`AppendRefusal::Blocked`). Returns only once durably committed.
    async fn append_messages(&self, messages: Vec<NewMessage>) -> StoreResult<Vec<AppendOutcome>>;

    /// Deletes for good up to `limit` messages whose `expires_at` is at or before `now`
    /// (the earliest first), with everything that hangs off them: their change entries
    /// (edited texts), reactions, mentions, hidden marks and search terms. Returns how
    /// many it deleted; a full `limit` means there may be more. Every read leaves expired
    /// messages out already, before they are purged. Several nodes may purge at once.
    async fn purge_expired(&self, now: Timestamp, limit: u32) -> StoreResult<u32>;

    /// The message `sender_id` stored with `client_msg_id`, if any (in any conversation).
    async fn fetch_message_by_client_id(
        &self,
        sender_id: &UserId,
        client_msg_id: &str,
    ) -> StoreResult<Option<Message>>;

    /// At most `limit` messages of `range`, in ascending `seq`, taken from the `from` end,
    /// in their current state as `viewer` sees them: `reactions` counted (with `me` for
    /// the viewer), and the messages the viewer hid with `hidden: true`, empty `content`
    /// and no mentions, reactions or reply (they keep their `seq`: no gap).
    async fn fetch_messages(
        &self,
        conversation_id: &ConversationId,
        range: SeqRange,
        from: PageFrom,
        limit: u32,
        viewer: &UserId,
    ) -> StoreResult<Vec<Message>>;

    /// One message in its current state, without `reactions`; `NotFound` if there is no
    /// such `seq`.
    async fn fetch_message(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<Message>;

    /// Who reacted to the message `seq` with what, one entry per emoji in the order each
    /// was first used, users in the order they reacted.
    async fn fetch_reactions(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<Vec<ReactionUsers>>;

    /// Hides the message `seq` from `user_id` (delete for me): it leaves their history,
    /// search, preview and mention count. Hiding twice is not an error. `NotFound` if
    /// there is no such message.
    async fn hide_message(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<()>;

    /// Full-text search: messages of `query.user_id`'s conversations (checked in the
    /// query: member now, not hidden by them, not deleted) that contain a word starting
    /// with each term, newest `message_id` first, at most `limit`, in their current state
    /// without `reactions`.
    async fn search_messages(&self, query: SearchQuery<'_>) -> StoreResult<Vec<Message>>;

    /// The distinct senders of the messages with `after_seq < seq <= up_to_seq` that
    /// `counting` lets count (`except_own` does not apply: there is no asking user).
    async fn fetch_senders(
        &self,
        conversation_id: &ConversationId,
        after_seq: i64,
        up_to_seq: i64,
        counting: Counting<'_>,
    ) -> StoreResult<Vec<UserId>>;

    // ---- receipts -----------------------------------------------------------------

    /// Moves pointers forward (never back; read implies delivered) and returns those that
    /// moved. A read pointer that moves clears the user's `marked_unread`. Updates for
    /// users no longer members are ignored.
    async fn update_receipts(&self, updates: Vec<ReceiptUpdate>)
        -> StoreResult<Vec<ReceiptChange>>;

    /// Who has received and read the message `seq` (the sender excluded).
    async fn fetch_receipts(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<MessageReceipts>;
}
