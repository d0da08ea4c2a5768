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
    ContentType, ConversationId, ConversationType, DeviceId, LastSeenPrivacy, Media, MediaId,
    Member, Message, MessageId, ReactionUsers, Role, SystemEvent, Timestamp, UserId,
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
    /// The user's uploads would take more than their quota; they take `used` bytes now.
    #[error("the media quota would be passed ({used} bytes used)")]
    MediaQuota { used: u64 },
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

mod media_records;
mod push_records;
mod records;
pub use media_records::*;
pub use push_records::*;
pub use records::*;

#[async_trait]
pub trait Store: MediaRecordStore + PushRecordStore + Send + Sync + 'static {
    /// Answers once the backend can serve reads and writes (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    // ---- users --------------------------------------------------------------------

    /// Creates a user. `Conflict` if the username is taken, or held after its account was
    /// deleted (until the `username_free_at` that `delete_account` was given).
    async fn insert_user(&self, user: UserRecord) -> StoreResult<()>;

    /// `NotFound` if there is no such user.
    async fn fetch_user(&self, user_id: &UserId) -> StoreResult<UserRecord>;

    /// The users that exist among `user_ids` (at most a few hundred), in no set order.
    async fn fetch_users(&self, user_ids: &[UserId]) -> StoreResult<Vec<UserRecord>>;

    /// `NotFound` if there is no such username.
    async fn fetch_user_by_username(&self, username: &str) -> StoreResult<UserRecord>;

    /// Users whose username or display name starts with `query` (case-insensitive),
    /// usernames first, at most `limit`; deleted accounts are never found.
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

    /// Everyone `user_id` has a direct conversation with and has written to there
    /// ("people I chat with": a chat someone else opened does not make them one).
    async fn fetch_direct_partners(&self, user_id: &UserId) -> StoreResult<HashSet<UserId>>;

    // ---- devices and sessions -----------------------------------------------------

    /// `NotFound` if the user does not exist or their account is deleted.
    async fn insert_device(&self, device: NewDevice) -> StoreResult<()>;

    /// The session a token hash belongs to; `NotFound` if unknown or revoked.
    async fn fetch_session(&self, token_hash: &[u8]) -> StoreResult<SessionRecord>;

    /// The session of a device whose token still stands; `NotFound` if revoked.
    async fn fetch_session_by_device(&self, device_id: &DeviceId) -> StoreResult<SessionRecord>;

    /// Revokes a device's token at once. Revoking twice is not an error.
    async fn delete_device(&self, device_id: &DeviceId) -> StoreResult<()>;

    /// Revokes every token of the user at once; returns the devices that had one.
    async fn delete_devices(&self, user_id: &UserId) -> StoreResult<Vec<DeviceId>>;

    // ---- account deletion and export ---------------------------------------------

    /// Deletes the account at `at`, in one transaction, and returns the devices whose
    /// tokens it revoked. Gone: its devices, its blocks (either way), its hidden marks,
    /// the mentions of it, its settings in the conversations it is still in. Its direct
    /// chats stop taking messages both ways (`AppendRefusal::Blocked`). The user row
    /// stays as a tombstone so its messages keep a sender: display name "Deleted
    /// account", no password (no login), no status, avatar or last seen, presence hidden,
    /// `deleted_at` set, and its username replaced; the old username is held until
    /// `username_free_at`, then free for a new account. Its messages stay. The caller
    /// takes it out of its groups first (through their system messages). Deleting a
    /// deleted account changes nothing more.
    async fn delete_account(
        &self,
        user_id: &UserId,
        at: Timestamp,
        username_free_at: Timestamp,
    ) -> StoreResult<Vec<DeviceId>>;

    /// The conversations the user ever sent a message to (system messages aside), those
    /// they left included.
    async fn fetch_sent_conversations(&self, user_id: &UserId) -> StoreResult<Vec<ConversationId>>;

    /// Every message (system messages aside) the user sent to one conversation, in `seq`
    /// order, in its current state (expired ones left out), without reactions.
    async fn fetch_sent_messages(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
    ) -> StoreResult<Vec<Message>>;

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

    /// Deletes the chat for `user_id` alone, up to the conversation's `last_seq` now,
    /// and returns that `seq` (the user's new `cleared_seq`). From then on, for that
    /// user: history and sync start after it (`fetch_messages`), search leaves out what
    /// came before (`search_messages`), the preview and the unread and mention counts
    /// consider only what comes after, and the list leaves the chat out until an entry
    /// that would be its preview arrives. The chat is unpinned, unarchived and no longer
    /// marked unread; the user's hidden marks up to that `seq` go (they hide nothing any
    /// more). Their receipt pointers do not move: nobody is told they read anything.
    /// `NotFound` if the user is not a member.
    async fn clear_conversation(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> StoreResult<i64>;

    /// Every conversation of the user with where they stand in it.
    async fn list_conversation_positions(
        &self,
        user_id: &UserId,
    ) -> StoreResult<Vec<ConversationPosition>>;

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
    /// target's text, mentions and attachments for good, marks it deleted, empties its
    /// `edit` entries, drops its reactions and mentions and takes it out of the search
    /// index. A message's `attachments` (the core resolved them) are stored with it and
    /// mark each of their media sent; they make the media readable to the conversation's
    /// members (`media_readable`) for as long as the message carries them. Change
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

    /// Empties for good up to `limit` messages whose `expires_at` is at or before `now`
    /// (the earliest first) and not emptied yet, with everything that hangs off them:
    /// their change entries (edited texts; emptied, and given the target's `expires_at`),
    /// attachments, reactions, mentions, hidden marks and search terms. The rows stay as empty
    /// tombstones, so `seq` has no gap. Returns how many it emptied; a full `limit` means
    /// there may be more. Reads already treat expired messages as gone before the purge:
    /// history shows them hidden (`message_state::hide_if_expired`), single reads, change
    /// targets, search and the export leave them out. Several nodes may purge at once.
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
    /// and no mentions, reactions or reply (they keep their `seq`: no gap). Nothing up to
    /// the viewer's `cleared_seq` (`clear_conversation`) is returned.
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
    /// query: member now, not hidden by them, after their `cleared_seq`, not deleted)
    /// that contain a word starting with each term, newest `message_id` first, at most
    /// `limit`, in their current state without `reactions`.
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
