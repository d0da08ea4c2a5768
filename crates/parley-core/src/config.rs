//! The core's settings, passed down by the server binary; the core never reads the
//! environment.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// Largest `content`, in bytes.
    pub max_content_bytes: usize,
    /// Largest group.
    pub max_group_members: usize,
    /// Messages a user may send per minute, over all conversations.
    pub user_messages_per_minute: u32,
    /// Messages a user may send per minute into one group.
    pub group_messages_per_minute: u32,
    /// Typing is not relayed in groups larger than this.
    pub typing_max_group: usize,
    /// REST-style writes a user may make per minute: creating conversations, adding,
    /// removing and promoting members, renaming, profile changes.
    pub writes_per_minute: u32,
    /// Searches (of users and of messages) a user may make per minute.
    pub searches_per_minute: u32,
    /// Register/login attempts per minute from one network origin (an IP address, or an
    /// IPv6 /64, as the gateway names it).
    pub auth_attempts_per_minute: u32,
    /// An account younger than this has the tighter limits below.
    pub new_account_period: Duration,
    /// New direct chats per hour for a new account.
    pub new_account_direct_chats_per_hour: u32,
    /// New groups per day for a new account.
    pub new_account_groups_per_day: u32,
    /// How often coalesced receipts are written and announced.
    pub receipt_flush_interval: Duration,
    /// At most this many messages per conversation are pushed by `sync` for a
    /// conversation the client gave no cursor for (it pages back with REST).
    pub sync_uncursored_limit: u32,
    /// Most messages one group commit takes.
    pub max_commit_batch: usize,
    /// How long a node's connections count as online without a heartbeat: a node that
    /// dies takes its users offline after at most this long.
    pub presence_lease: Duration,
    /// How long after sending its sender may edit or delete a message for everyone.
    pub edit_window: Duration,
    /// Argon2 memory cost in KiB (OWASP: 19456) and passes.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// The durations disappearing messages may be set to, in seconds (besides 0, off).
    pub disappearing_choices: Vec<u32>,
    /// How often expired messages are looked for and purged (they leave every read path
    /// at once: the reads filter them until the purge).
    pub expiry_purge_interval: Duration,
    /// Largest upload, in bytes.
    pub media_max_bytes: u64,
    /// Bytes of uploads one user may keep (pending ones count).
    pub media_quota_bytes: u64,
    /// Uploads a user may start per minute.
    pub media_uploads_per_minute: u32,
    /// How long an upload URL stands.
    pub media_upload_ttl: Duration,
    /// How long a download URL stands.
    pub media_download_ttl: Duration,
    /// Uploads never sent are collected this long after they were created.
    pub media_unsent_ttl: Duration,
    /// How often unusable media are looked for and deleted.
    pub media_collect_interval: Duration,
    /// Largest picture processed (thumbnail, stripping), in bytes; a larger one is refused.
    pub media_max_picture_bytes: u64,
    /// Most pixels a picture may have; a larger one is refused before it is decoded.
    pub media_max_pixels: u64,
    /// Push endpoints may be `http` and on any address (tests, a local UnifiedPush
    /// distributor); off, only `https` to public addresses.
    pub push_allow_insecure_endpoints: bool,
    /// The VAPID public key (`GET /push/config`), set at start from the server's key.
    pub push_vapid_public_key: String,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            max_content_bytes: parley_proto::limits::MAX_CONTENT_BYTES,
            max_group_members: parley_proto::limits::MAX_GROUP_MEMBERS,
            user_messages_per_minute: 200,
            group_messages_per_minute: 30,
            typing_max_group: parley_proto::limits::TYPING_MAX_GROUP,
            writes_per_minute: 30,
            searches_per_minute: 60,
            auth_attempts_per_minute: 30,
            new_account_period: Duration::from_secs(24 * 3600),
            new_account_direct_chats_per_hour: 20,
            new_account_groups_per_day: 10,
            receipt_flush_interval: Duration::from_millis(250),
            sync_uncursored_limit: 200,
            max_commit_batch: 512,
            presence_lease: Duration::from_secs(30),
            edit_window: Duration::from_secs(parley_proto::limits::EDIT_WINDOW_SECS),
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            disappearing_choices: parley_proto::limits::DISAPPEARING_CHOICES.to_vec(),
            expiry_purge_interval: Duration::from_secs(10),
            media_max_bytes: parley_proto::limits::MAX_MEDIA_BYTES,
            media_quota_bytes: 10 * 1024 * 1024 * 1024,
            media_uploads_per_minute: 60,
            media_upload_ttl: Duration::from_secs(3600),
            media_download_ttl: Duration::from_secs(600),
            media_unsent_ttl: Duration::from_secs(24 * 3600),
            media_collect_interval: Duration::from_secs(600),
            media_max_picture_bytes: 50 * 1024 * 1024,
            media_max_pixels: 50_000_000,
            push_allow_insecure_endpoints: false,
            push_vapid_public_key: String::new(),
        }
    }
}
