//! The `Store` port on SQLite: parley's embedded, zero-dependency storage.
//!
//! One file in WAL mode with `synchronous=FULL`, so a commit survives a crash of the
//! process or the machine. All writes go through a pool of one connection (SQLite has one
//! writer anyway), which makes each transaction's read-then-write of `last_seq` race-free;
//! reads use a separate pool and never block on writes. `append_messages` is one
//! transaction for a whole group-commit batch. Methods follow the trait's order.

use async_trait::async_trait;
use parley_core::store::{
    AppendOutcome, AppendRefusal, Appended, ConversationChange, ConversationRecord,
    ConversationSummary, ConversationUpdate, ListCursor, MessageReceipts, NewConversation,
    NewDevice, NewMessage, PageFrom, ProfileUpdate, ReceiptChange, ReceiptUpdate, SeqRange,
    SessionRecord, Store, StoreError, StoreResult, UserRecord,
};
use parley_proto::{
    ConversationId, ConversationType, DeviceId, Member, Message, MessageId, Role, Timestamp, UserId,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    checkpointer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `parley.db` in `data_dir` and migrates it.
    pub async fn open(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(StoreError::unavailable)?;
        let path = data_dir.join("parley.db");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(StoreError::unavailable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Statement journals of multi-row inserts stay in memory, not in temp files.
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-65536")
            .pragma("journal_size_limit", "67108864");
        // The writer never checkpoints by itself (only past ~200 MB of WAL, as a safety
        // net): a checkpoint inside a commit would stall every send queued behind it.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "50000"))
            .await
            .map_err(StoreError::unavailable)?;
        sqlx::migrate!("./migrations")
            .run(&writer)
            .await
            .map_err(StoreError::unavailable)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(StoreError::unavailable)?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(StoreError::unavailable)?;
        tokio::spawn(run_checkpoints(checkpointer.clone()));
        Ok(Self {
            writer,
            reader,
            checkpointer,
        })
    }

    /// Closes both pools, checkpointing the WAL.
    pub async fn close(&self) {
        self.checkpointer.close().await;
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Copies the WAL back into the database beside the writer, on its own connection and
/// thread, without blocking commits (PASSIVE). Ends when the store is closed.
async fn run_checkpoints(checkpointer: SqlitePool) {
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&checkpointer)
            .await
        {
            if checkpointer.is_closed() || matches!(error, sqlx::Error::PoolClosed) {
                return;
            }
            tracing::warn!(%error, "background checkpoint failed");
        }
    }
}

fn unavailable(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(ref database_error) if database_error.is_unique_violation() => {
            StoreError::Conflict(database_error.message().to_owned())
        }
        other => StoreError::unavailable(other),
    }
}

const USER_COLUMNS: &str = "user_id, username, password_hash, display_name, status_message, \
     avatar_url, last_seen_visible, last_seen_at, created_at";

fn user_from_row(row: &SqliteRow) -> UserRecord {
    UserRecord {
        user_id: UserId(row.get("user_id")),
        username: row.get("username"),
        password_hash: row.get("password_hash"),
        display_name: row.get("display_name"),
        status_message: row.get("status_message"),
        avatar_url: row.get("avatar_url"),
        last_seen_visible: row.get::<i64, _>("last_seen_visible") != 0,
        last_seen_at: row.get::<Option<i64>, _>("last_seen_at").map(Timestamp),
        created_at: Timestamp(row.get("created_at")),
    }
}

#[derive(Clone, Copy)]
enum SearchBy {
    Username,
    DisplayName,
}

/// A prefix search as a range scan on an index: from the prefix up to the prefix followed
/// by the highest code point. `?1` is the lower-cased prefix, `?2` the limit.
fn search_users_sql(by: SearchBy) -> String {
    let (key, order) = match by {
        SearchBy::Username => ("username", "username"),
        SearchBy::DisplayName => ("lower(display_name)", "lower(display_name)"),
    };
    format!(
        "SELECT {USER_COLUMNS} FROM users WHERE {key} >= ?1 AND {key} < ?1 || char(1114111) \
         ORDER BY {order} LIMIT ?2"
    )
}

const CONVERSATION_COLUMNS: &str = "c.conversation_id, c.kind, c.name, c.description, \
     c.created_at, c.last_seq, c.last_activity_at, c.member_count, c.members_version";

fn conversation_from_row(row: &SqliteRow) -> ConversationRecord {
    ConversationRecord {
        conversation_id: ConversationId(row.get("conversation_id")),
        kind: if row.get::<&str, _>("kind") == "direct" {
            ConversationType::Direct
        } else {
            ConversationType::Group
        },
        name: row.get("name"),
        description: row.get("description"),
        created_at: Timestamp(row.get("created_at")),
        last_seq: row.get("last_seq"),
        last_activity_at: Timestamp(row.get("last_activity_at")),
        member_count: row.get::<i64, _>("member_count") as u32,
        members_version: row.get("members_version"),
    }
}

const MESSAGE_COLUMNS: &str = "conversation_id, seq, message_id, sender_id, sender_device_id, \
     client_msg_id, content, content_type, reply_to_seq, system, created_at";

fn message_from_row(row: &SqliteRow) -> Message {
    prefixed_message_from_row(row, "")
}

/// A message whose columns carry `prefix` (`l_seq`, … for a joined last message).
fn prefixed_message_from_row(row: &SqliteRow, prefix: &str) -> Message {
    let column = |name: &'static str| -> std::borrow::Cow<'static, str> {
        if prefix.is_empty() {
            name.into()
        } else {
            format!("{prefix}{name}").into()
        }
    };
    Message {
        message_id: MessageId(row.get(column("message_id").as_ref())),
        conversation_id: ConversationId(row.get(column("conversation_id").as_ref())),
        seq: row.get(column("seq").as_ref()),
        sender_id: UserId(row.get(column("sender_id").as_ref())),
        sender_device_id: DeviceId(row.get(column("sender_device_id").as_ref())),
        client_msg_id: row.get(column("client_msg_id").as_ref()),
        content: row.get(column("content").as_ref()),
        content_type: row.get(column("content_type").as_ref()),
        reply_to_seq: row.get(column("reply_to_seq").as_ref()),
        created_at: Timestamp(row.get(column("created_at").as_ref())),
        system: row
            .get::<Option<&str>, _>(column("system").as_ref())
            .and_then(|text| serde_json::from_str(text).ok()),
    }
}

/// Rows per multi-row statement (11 binds each, far below SQLite's variable limit).
const INSERT_CHUNK: usize = 256;

/// The already stored messages among a batch's `(sender_id, client_msg_id)`s.
async fn fetch_stored_duplicates(
    transaction: &mut Transaction<'_, Sqlite>,
    messages: &[NewMessage],
) -> StoreResult<HashMap<(UserId, String), Message>> {
    let mut stored = HashMap::new();
    for chunk in messages.chunks(INSERT_CHUNK) {
        let mut select = sqlx::QueryBuilder::<Sqlite>::new(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE (client_msg_id, sender_id) IN (VALUES "
        ));
        let mut pairs = select.separated(", ");
        for message in chunk {
            pairs.push("(");
            pairs.push_bind_unseparated(message.client_msg_id.as_str());
            pairs.push_unseparated(", ");
            pairs.push_bind_unseparated(message.sender_id.as_str());
            pairs.push_unseparated(")");
        }
        select.push(")");
        for row in select
            .build()
            .fetch_all(&mut **transaction)
            .await
            .map_err(unavailable)?
        {
            let message = message_from_row(&row);
            stored.insert(
                (message.sender_id.clone(), message.client_msg_id.clone()),
                message,
            );
        }
    }
    Ok(stored)
}

/// Which `(conversation_id, sender_id)` pairs of a batch are memberships right now.
async fn fetch_memberships(
    transaction: &mut Transaction<'_, Sqlite>,
    messages: &[NewMessage],
) -> StoreResult<HashSet<(ConversationId, UserId)>> {
    let mut pairs: Vec<(&str, &str)> = messages
        .iter()
        .map(|message| (message.conversation_id.as_str(), message.sender_id.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut memberships = HashSet::with_capacity(pairs.len());
    for chunk in pairs.chunks(INSERT_CHUNK) {
        let mut select = sqlx::QueryBuilder::<Sqlite>::new(
            "SELECT conversation_id, user_id FROM members WHERE (conversation_id, user_id) IN (VALUES ",
        );
        let mut values = select.separated(", ");
        for (conversation_id, user_id) in chunk {
            values.push("(");
            values.push_bind_unseparated(*conversation_id);
            values.push_unseparated(", ");
            values.push_bind_unseparated(*user_id);
            values.push_unseparated(")");
        }
        select.push(")");
        for row in select
            .build()
            .fetch_all(&mut **transaction)
            .await
            .map_err(unavailable)?
        {
            memberships.insert((
                ConversationId(row.get("conversation_id")),
                UserId(row.get("user_id")),
            ));
        }
    }
    Ok(memberships)
}

/// `conversation_id -> (last_seq, 0)` for every conversation of a batch.
async fn fetch_last_seqs(
    transaction: &mut Transaction<'_, Sqlite>,
    messages: &[NewMessage],
) -> StoreResult<HashMap<ConversationId, (i64, i64)>> {
    let mut conversation_ids: Vec<&str> = messages
        .iter()
        .map(|m| m.conversation_id.as_str())
        .collect();
    conversation_ids.sort_unstable();
    conversation_ids.dedup();
    let mut positions = HashMap::with_capacity(conversation_ids.len());
    for chunk in conversation_ids.chunks(INSERT_CHUNK) {
        let mut select = sqlx::QueryBuilder::<Sqlite>::new(
            "SELECT conversation_id, last_seq FROM conversations WHERE conversation_id IN (",
        );
        let mut ids = select.separated(", ");
        for conversation_id in chunk {
            ids.push_bind(*conversation_id);
        }
        select.push(")");
        for row in select
            .build()
            .fetch_all(&mut **transaction)
            .await
            .map_err(unavailable)?
        {
            positions.insert(
                ConversationId(row.get("conversation_id")),
                (row.get::<i64, _>("last_seq"), 0),
            );
        }
    }
    Ok(positions)
}

/// Inserts one message with a known `seq`; `false` if `(sender_id, client_msg_id)` exists.
async fn insert_message(
    transaction: &mut Transaction<'_, Sqlite>,
    message: &NewMessage,
    seq: i64,
) -> StoreResult<bool> {
    let system = message
        .system
        .as_ref()
        .map(|event| serde_json::to_string(event).expect("system events serialize"));
    let result = sqlx::query(
        "INSERT INTO messages (conversation_id, seq, message_id, sender_id, sender_device_id, \
         client_msg_id, content, content_type, reply_to_seq, system, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (client_msg_id, sender_id) DO NOTHING",
    )
    .bind(message.conversation_id.as_str())
    .bind(seq)
    .bind(message.message_id.as_str())
    .bind(message.sender_id.as_str())
    .bind(message.sender_device_id.as_str())
    .bind(&message.client_msg_id)
    .bind(&message.content)
    .bind(&message.content_type)
    .bind(message.reply_to_seq)
    .bind(system)
    .bind(message.created_at.millis())
    .execute(&mut **transaction)
    .await
    .map_err(unavailable)?;
    Ok(result.rows_affected() == 1)
}

/// The message a sender stored with a client id (dedup key lookup).
fn select_by_client_id() -> String {
    format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender_id = ? AND client_msg_id = ?")
}

async fn fetch_by_client_id(
    transaction: &mut Transaction<'_, Sqlite>,
    sender_id: &UserId,
    client_msg_id: &str,
) -> StoreResult<Message> {
    let row = sqlx::query(&select_by_client_id())
        .bind(sender_id.as_str())
        .bind(client_msg_id)
        .fetch_one(&mut **transaction)
        .await
        .map_err(unavailable)?;
    Ok(message_from_row(&row))
}

async fn last_seq_of(
    transaction: &mut Transaction<'_, Sqlite>,
    conversation_id: &ConversationId,
) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT last_seq FROM conversations WHERE conversation_id = ?")
        .bind(conversation_id.as_str())
        .fetch_optional(&mut **transaction)
        .await
        .map_err(unavailable)?
        .ok_or(StoreError::NotFound)
}

async fn set_last_seq(
    transaction: &mut Transaction<'_, Sqlite>,
    conversation_id: &ConversationId,
    last_seq: i64,
    activity_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE conversations SET last_seq = ?, last_activity_at = MAX(last_activity_at, ?) \
         WHERE conversation_id = ?",
    )
    .bind(last_seq)
    .bind(activity_at)
    .bind(conversation_id.as_str())
    .execute(&mut **transaction)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Appends one system message inside a transaction that changes the conversation.
async fn append_in_transaction(
    transaction: &mut Transaction<'_, Sqlite>,
    message: NewMessage,
) -> StoreResult<Appended> {
    let seq = last_seq_of(transaction, &message.conversation_id).await? + 1;
    if !insert_message(transaction, &message, seq).await? {
        let first =
            fetch_by_client_id(transaction, &message.sender_id, &message.client_msg_id).await?;
        return Ok(Appended {
            message: first,
            duplicate: true,
        });
    }
    set_last_seq(
        transaction,
        &message.conversation_id,
        seq,
        message.created_at.millis(),
    )
    .await?;
    Ok(Appended {
        message: message.with_seq(seq),
        duplicate: false,
    })
}

async fn refresh_member_count(
    transaction: &mut Transaction<'_, Sqlite>,
    conversation_id: &ConversationId,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE conversations SET member_count = \
         (SELECT COUNT(*) FROM members WHERE conversation_id = ?) WHERE conversation_id = ?",
    )
    .bind(conversation_id.as_str())
    .bind(conversation_id.as_str())
    .execute(&mut **transaction)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// One membership or metadata change, inside the caller's transaction. Joiners get
/// pointers at `last_seq` (history readable, nothing unread).
async fn apply_change(
    transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    conversation_id: &ConversationId,
    change: ConversationChange,
    last_seq: i64,
    now: i64,
) -> StoreResult<()> {
    match change {
        ConversationChange::AddMembers(new_members) => {
            for (user_id, role) in new_members {
                sqlx::query(
                    "INSERT INTO members (conversation_id, user_id, role, joined_at, joined_seq, \
                     delivered_seq, read_seq) VALUES (?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (conversation_id, user_id) DO NOTHING",
                )
                .bind(conversation_id.as_str())
                .bind(user_id.as_str())
                .bind(role.as_str())
                .bind(now)
                .bind(last_seq + 1)
                .bind(last_seq)
                .bind(last_seq)
                .execute(&mut **transaction)
                .await
                .map_err(unavailable)?;
            }
            refresh_member_count(transaction, conversation_id).await?;
        }
        ConversationChange::RemoveMember(user_id) => {
            sqlx::query("DELETE FROM members WHERE conversation_id = ? AND user_id = ?")
                .bind(conversation_id.as_str())
                .bind(user_id.as_str())
                .execute(&mut **transaction)
                .await
                .map_err(unavailable)?;
            refresh_member_count(transaction, conversation_id).await?;
        }
        ConversationChange::SetRoles(roles) => {
            for (user_id, role) in roles {
                sqlx::query(
                    "UPDATE members SET role = ? WHERE conversation_id = ? AND user_id = ?",
                )
                .bind(role.as_str())
                .bind(conversation_id.as_str())
                .bind(user_id.as_str())
                .execute(&mut **transaction)
                .await
                .map_err(unavailable)?;
            }
        }
        ConversationChange::Rename { name, description } => {
            sqlx::query(
                "UPDATE conversations SET name = COALESCE(?, name), \
                 description = COALESCE(?, description) WHERE conversation_id = ?",
            )
            .bind(name)
            .bind(description)
            .bind(conversation_id.as_str())
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
        }
    }
    Ok(())
}

const SUMMARY_SELECT: &str = "SELECT c.conversation_id, c.kind, c.name, c.description, \
     c.created_at, c.last_seq, c.last_activity_at, c.member_count, c.members_version, \
     m.read_seq, m.muted_until, \
     (SELECT COUNT(*) FROM messages u WHERE u.conversation_id = c.conversation_id \
        AND u.seq > m.read_seq AND u.sender_id != m.user_id) AS unread_count, \
     l.conversation_id AS l_conversation_id, l.seq AS l_seq, l.message_id AS l_message_id, l.sender_id AS l_sender_id, \
     l.sender_device_id AS l_sender_device_id, l.client_msg_id AS l_client_msg_id, \
     l.content AS l_content, l.content_type AS l_content_type, \
     l.reply_to_seq AS l_reply_to_seq, l.system AS l_system, l.created_at AS l_created_at \
     FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id \
     LEFT JOIN messages l ON l.conversation_id = c.conversation_id AND l.seq = c.last_seq";

fn summary_from_row(row: &SqliteRow) -> ConversationSummary {
    let conversation = conversation_from_row(row);
    let last_message = row
        .get::<Option<i64>, _>("l_seq")
        .map(|_| prefixed_message_from_row(row, "l_"));
    ConversationSummary {
        conversation,
        last_message,
        read_seq: row.get("read_seq"),
        unread_count: row.get("unread_count"),
        muted_until: row.get::<Option<i64>, _>("muted_until").map(Timestamp),
    }
}

#[async_trait]
impl Store for SqliteStore {
    // ---- users --------------------------------------------------------------------

    /// Creates a user. `Conflict` if the username is taken.
    async fn insert_user(&self, user: UserRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(user.user_id.as_str())
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.display_name)
        .bind(&user.status_message)
        .bind(&user.avatar_url)
        .bind(i64::from(user.last_seen_visible))
        .bind(user.last_seen_at.map(Timestamp::millis))
        .bind(user.created_at.millis())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// `NotFound` if there is no such user.
    async fn fetch_user(&self, user_id: &UserId) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE user_id = ?"
        ))
        .bind(user_id.as_str())
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(user_from_row(&row))
    }

    /// The users that exist among `user_ids` (at most a few hundred), in no set order.
    async fn fetch_users(&self, user_ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        let mut users = Vec::with_capacity(user_ids.len());
        for chunk in user_ids.chunks(INSERT_CHUNK) {
            let mut select = sqlx::QueryBuilder::<Sqlite>::new(format!(
                "SELECT {USER_COLUMNS} FROM users WHERE user_id IN ("
            ));
            let mut ids = select.separated(", ");
            for user_id in chunk {
                ids.push_bind(user_id.as_str());
            }
            select.push(")");
            let rows = select
                .build()
                .fetch_all(&self.reader)
                .await
                .map_err(unavailable)?;
            users.extend(rows.iter().map(user_from_row));
        }
        Ok(users)
    }

    /// `NotFound` if there is no such username.
    async fn fetch_user_by_username(&self, username: &str) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = ?"
        ))
        .bind(username)
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(user_from_row(&row))
    }

    /// Users whose username or display name starts with `query` (case-insensitive),
    /// usernames first, at most `limit`.
    async fn search_users(&self, query: &str, limit: u32) -> StoreResult<Vec<UserRecord>> {
        // Two range scans, each on an index (`username` is unique and lower-case;
        // `users_display_name` is on `lower(display_name)`): a prefix is everything from
        // the prefix up to the prefix followed by the highest code point.
        let query = query.to_lowercase();
        let by_username = sqlx::query(&search_users_sql(SearchBy::Username))
            .bind(&query)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(unavailable)?;
        let by_display_name = sqlx::query(&search_users_sql(SearchBy::DisplayName))
            .bind(&query)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(unavailable)?;
        let mut users: Vec<UserRecord> = by_username.iter().map(user_from_row).collect();
        for user in by_display_name.iter().map(user_from_row) {
            if users.len() >= limit as usize {
                break;
            }
            if !users.iter().any(|known| known.user_id == user.user_id) {
                users.push(user);
            }
        }
        users.truncate(limit as usize);
        Ok(users)
    }

    /// Applies a profile change and returns the new profile.
    async fn update_user(
        &self,
        user_id: &UserId,
        update: ProfileUpdate,
    ) -> StoreResult<UserRecord> {
        let mut transaction = self.writer.begin().await.map_err(unavailable)?;
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE user_id = ?"
        ))
        .bind(user_id.as_str())
        .fetch_one(&mut *transaction)
        .await
        .map_err(unavailable)?;
        let mut user = user_from_row(&row);
        if let Some(display_name) = update.display_name {
            user.display_name = display_name;
        }
        if let Some(status_message) = update.status_message {
            user.status_message = status_message;
        }
        if let Some(avatar_url) = update.avatar_url {
            user.avatar_url = avatar_url;
        }
        if let Some(visible) = update.last_seen_visible {
            user.last_seen_visible = visible;
        }
        sqlx::query(
            "UPDATE users SET display_name = ?, status_message = ?, avatar_url = ?, \
             last_seen_visible = ? WHERE user_id = ?",
        )
        .bind(&user.display_name)
        .bind(&user.status_message)
        .bind(&user.avatar_url)
        .bind(i64::from(user.last_seen_visible))
        .bind(user_id.as_str())
        .execute(&mut *transaction)
        .await
        .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(user)
    }

    /// Records when the user's last device went offline.
    async fn update_last_seen(&self, user_id: &UserId, at: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_seen_at = ? WHERE user_id = ?")
            .bind(at.millis())
            .bind(user_id.as_str())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    // ---- devices and sessions -----------------------------------------------------

    async fn insert_device(&self, device: NewDevice) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO devices (device_id, user_id, name, token_hash, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(device.device_id.as_str())
        .bind(device.user_id.as_str())
        .bind(&device.name)
        .bind(&device.token_hash)
        .bind(device.created_at.millis())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// The session a token hash belongs to; `NotFound` if unknown or revoked.
    async fn fetch_session(&self, token_hash: &[u8]) -> StoreResult<SessionRecord> {
        let row = sqlx::query(
            "SELECT user_id, device_id FROM devices WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(SessionRecord {
            user_id: UserId(row.get("user_id")),
            device_id: DeviceId(row.get("device_id")),
        })
    }

    /// The session of a device whose token still stands; `NotFound` if revoked.
    async fn fetch_session_by_device(&self, device_id: &DeviceId) -> StoreResult<SessionRecord> {
        let row = sqlx::query(
            "SELECT user_id, device_id FROM devices WHERE device_id = ? AND revoked_at IS NULL",
        )
        .bind(device_id.as_str())
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(SessionRecord {
            user_id: UserId(row.get("user_id")),
            device_id: DeviceId(row.get("device_id")),
        })
    }

    /// Revokes a device's token at once. Revoking twice is not an error.
    async fn delete_device(&self, device_id: &DeviceId) -> StoreResult<()> {
        sqlx::query("UPDATE devices SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL")
            .bind(Timestamp::now().millis())
            .bind(device_id.as_str())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    // ---- conversations ------------------------------------------------------------

    /// Creates a conversation with its members (and system message, whose `seq` is 1).
    /// For a direct chat whose `direct_key` exists already, stores nothing and returns the
    /// existing conversation with `false`.
    async fn insert_conversation(
        &self,
        conversation: NewConversation,
    ) -> StoreResult<(ConversationRecord, bool)> {
        let mut transaction = self.writer.begin().await.map_err(unavailable)?;
        if let Some(direct_key) = &conversation.direct_key {
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT conversation_id FROM conversations WHERE direct_key = ?",
            )
            .bind(direct_key)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(unavailable)?;
            if let Some(existing) = existing {
                drop(transaction);
                let record = self.fetch_conversation(&ConversationId(existing)).await?;
                return Ok((record, false));
            }
        }
        let created_at = conversation.created_at.millis();
        sqlx::query(
            "INSERT INTO conversations (conversation_id, kind, name, description, direct_key, \
             created_at, last_seq, last_activity_at, member_count) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
        )
        .bind(conversation.conversation_id.as_str())
        .bind(conversation.kind.as_str())
        .bind(&conversation.name)
        .bind(&conversation.description)
        .bind(&conversation.direct_key)
        .bind(created_at)
        .bind(created_at)
        .bind(conversation.members.len() as i64)
        .execute(&mut *transaction)
        .await
        .map_err(unavailable)?;
        for (user_id, role) in &conversation.members {
            sqlx::query(
                "INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
            )
            .bind(conversation.conversation_id.as_str())
            .bind(user_id.as_str())
            .bind(role.as_str())
            .bind(created_at)
            .execute(&mut *transaction)
            .await
            .map_err(|error| match unavailable(error) {
                StoreError::Unavailable(cause) if cause.to_string().contains("FOREIGN KEY") => {
                    StoreError::NotFound
                }
                other => other,
            })?;
        }
        if let Some(system_message) = conversation.system_message {
            append_in_transaction(&mut transaction, system_message).await?;
        }
        transaction.commit().await.map_err(unavailable)?;
        let record = self
            .fetch_conversation(&conversation.conversation_id)
            .await?;
        Ok((record, true))
    }

    /// `NotFound` if there is no such conversation.
    async fn fetch_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> StoreResult<ConversationRecord> {
        let row = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.conversation_id = ?"
        ))
        .bind(conversation_id.as_str())
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(conversation_from_row(&row))
    }

    /// Members with their roles and names, owners first then by join time.
    async fn fetch_members(&self, conversation_id: &ConversationId) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT m.user_id, m.role, m.joined_at, u.username, u.display_name \
             FROM members m JOIN users u ON u.user_id = m.user_id \
             WHERE m.conversation_id = ? \
             ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, \
                      m.joined_at, m.user_id",
        )
        .bind(conversation_id.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| Member {
                user_id: UserId(row.get("user_id")),
                role: Role::parse(row.get("role")).unwrap_or(Role::Member),
                joined_at: Timestamp(row.get("joined_at")),
                username: Some(row.get("username")),
                display_name: Some(row.get("display_name")),
            })
            .collect())
    }

    /// One conversation as `user_id` sees it in the list; `NotFound` if not a member.
    async fn fetch_conversation_summary(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> StoreResult<ConversationSummary> {
        let row = sqlx::query(&format!(
            "{SUMMARY_SELECT} WHERE m.user_id = ? AND m.conversation_id = ?"
        ))
        .bind(user_id.as_str())
        .bind(conversation_id.as_str())
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(summary_from_row(&row))
    }

    /// The user's conversations, newest activity first, strictly after `cursor`.
    async fn list_conversations(
        &self,
        user_id: &UserId,
        cursor: Option<ListCursor>,
        limit: u32,
    ) -> StoreResult<Vec<ConversationSummary>> {
        let (cursor_at, cursor_id) = match &cursor {
            Some(cursor) => (
                Some(cursor.last_activity_at.millis()),
                Some(cursor.conversation_id.as_str()),
            ),
            None => (None, None),
        };
        let rows = sqlx::query(&format!(
            "{SUMMARY_SELECT} WHERE m.user_id = ?1 \
             AND (?2 IS NULL OR c.last_activity_at < ?2 \
                  OR (c.last_activity_at = ?2 AND c.conversation_id < ?3)) \
             ORDER BY c.last_activity_at DESC, c.conversation_id DESC LIMIT ?4"
        ))
        .bind(user_id.as_str())
        .bind(cursor_at)
        .bind(cursor_id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(rows.iter().map(summary_from_row).collect())
    }

    /// Every conversation of the user with its `last_seq` and the user's read pointer.
    async fn list_conversation_positions(
        &self,
        user_id: &UserId,
    ) -> StoreResult<Vec<(ConversationId, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT c.conversation_id, c.last_seq, m.read_seq FROM members m \
             JOIN conversations c ON c.conversation_id = m.conversation_id WHERE m.user_id = ?",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| {
                (
                    ConversationId(row.get("conversation_id")),
                    row.get("last_seq"),
                    row.get("read_seq"),
                )
            })
            .collect())
    }

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
    ) -> StoreResult<Vec<Appended>> {
        let mut transaction = self.writer.begin().await.map_err(unavailable)?;
        // The one writer connection serializes this with every other write, so the check
        // and the bump below see no change in between.
        let members_version: i64 = sqlx::query_scalar(
            "SELECT members_version FROM conversations WHERE conversation_id = ?",
        )
        .bind(conversation_id.as_str())
        .fetch_one(&mut *transaction)
        .await
        .map_err(unavailable)?;
        if members_version != update.expected_members_version {
            return Err(StoreError::Conflict(format!(
                "members_version is {members_version}, not {}",
                update.expected_members_version
            )));
        }
        let last_seq = last_seq_of(&mut transaction, conversation_id).await?;
        let now = update.system_messages.first().map_or_else(
            || Timestamp::now().millis(),
            |message| message.created_at.millis(),
        );
        for change in update.changes {
            apply_change(&mut transaction, conversation_id, change, last_seq, now).await?;
        }
        sqlx::query(
            "UPDATE conversations SET members_version = members_version + 1 \
             WHERE conversation_id = ?",
        )
        .bind(conversation_id.as_str())
        .execute(&mut *transaction)
        .await
        .map_err(unavailable)?;
        let mut appended = Vec::with_capacity(update.system_messages.len());
        for message in update.system_messages {
            appended.push(append_in_transaction(&mut transaction, message).await?);
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(appended)
    }

    // ---- messages -----------------------------------------------------------------

    /// Appends messages in one transaction (group commit), in the given order, and returns
    /// one outcome each, in the same order. Gives each new message the next `seq` of its
    /// conversation (gap-free, from 1); a message whose `(sender_id, client_msg_id)` is
    /// already stored, or appears earlier in the batch, is a duplicate: nothing is written
    /// and the first message is returned, if it is in the same conversation (else
    /// `AppendRefusal::ClientMsgIdReused`). A new message whose sender is not a member at
    /// that moment is refused (`AppendRefusal::NotMember`) and uses no `seq`. Returns only
    /// once durably committed.
    async fn append_messages(&self, messages: Vec<NewMessage>) -> StoreResult<Vec<AppendOutcome>> {
        // A fixed handful of statements per batch, whatever its size: each statement is a
        // round trip to sqlx's SQLite thread, so per-message statements would cap
        // throughput at the context-switch rate rather than at SQLite's speed.
        let mut transaction = self.writer.begin().await.map_err(unavailable)?;
        let stored = fetch_stored_duplicates(&mut transaction, &messages).await?;
        // Within the transaction this connection is the only writer, so `last_seq` is
        // read once per conversation and written once at the end.
        let mut positions = fetch_last_seqs(&mut transaction, &messages).await?;
        let memberships = fetch_memberships(&mut transaction, &messages).await?;
        let mut first_in_batch: HashMap<(UserId, String), usize> = HashMap::new();
        let mut outcomes: Vec<AppendOutcome> = Vec::with_capacity(messages.len());
        for message in messages {
            let key = (message.sender_id.clone(), message.client_msg_id.clone());
            if let Some(first) = stored.get(&key) {
                outcomes.push(if first.conversation_id == message.conversation_id {
                    Ok(Appended {
                        message: first.clone(),
                        duplicate: true,
                    })
                } else {
                    Err(AppendRefusal::ClientMsgIdReused)
                });
                continue;
            }
            if let Some(&index) = first_in_batch.get(&key) {
                let outcome = match outcomes[index].clone() {
                    Ok(first) if first.message.conversation_id != message.conversation_id => {
                        Err(AppendRefusal::ClientMsgIdReused)
                    }
                    first => first.map(|appended| Appended {
                        duplicate: true,
                        ..appended
                    }),
                };
                outcomes.push(outcome);
                continue;
            }
            let membership = (message.conversation_id.clone(), message.sender_id.clone());
            if !memberships.contains(&membership) {
                outcomes.push(Err(AppendRefusal::NotMember));
                continue;
            }
            let position = positions
                .get_mut(&message.conversation_id)
                .ok_or(StoreError::NotFound)?;
            position.0 += 1;
            position.1 = position.1.max(message.created_at.millis());
            let seq = position.0;
            first_in_batch.insert(key, outcomes.len());
            outcomes.push(Ok(Appended {
                message: message.with_seq(seq),
                duplicate: false,
            }));
        }
        let new_messages: Vec<&Message> = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().ok())
            .filter(|appended| !appended.duplicate)
            .map(|appended| &appended.message)
            .collect();
        for chunk in new_messages.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO messages ({MESSAGE_COLUMNS}) "
            ));
            insert.push_values(chunk, |mut row, message| {
                let system = message
                    .system
                    .as_ref()
                    .map(|event| serde_json::to_string(event).expect("system events serialize"));
                row.push_bind(message.conversation_id.as_str())
                    .push_bind(message.seq)
                    .push_bind(message.message_id.as_str())
                    .push_bind(message.sender_id.as_str())
                    .push_bind(message.sender_device_id.as_str())
                    .push_bind(message.client_msg_id.as_str())
                    .push_bind(message.content.as_str())
                    .push_bind(message.content_type.as_str())
                    .push_bind(message.reply_to_seq)
                    .push_bind(system)
                    .push_bind(message.created_at.millis());
            });
            insert
                .build()
                .execute(&mut *transaction)
                .await
                .map_err(unavailable)?;
        }
        let moved: Vec<(&ConversationId, &(i64, i64))> = positions
            .iter()
            .filter(|(_, (_, activity))| *activity > 0)
            .collect();
        for chunk in moved.chunks(INSERT_CHUNK) {
            let mut update = sqlx::QueryBuilder::<Sqlite>::new(
                "UPDATE conversations SET last_seq = v.column2, \
                 last_activity_at = MAX(last_activity_at, v.column3) FROM (",
            );
            update.push_values(chunk, |mut row, (conversation_id, (last_seq, activity))| {
                row.push_bind(conversation_id.as_str())
                    .push_bind(*last_seq)
                    .push_bind(*activity);
            });
            update.push(") AS v WHERE conversations.conversation_id = v.column1");
            update
                .build()
                .execute(&mut *transaction)
                .await
                .map_err(unavailable)?;
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(outcomes)
    }

    /// The message `sender_id` stored with `client_msg_id`, if any (in any conversation).
    async fn fetch_message_by_client_id(
        &self,
        sender_id: &UserId,
        client_msg_id: &str,
    ) -> StoreResult<Option<Message>> {
        let row = sqlx::query(&select_by_client_id())
            .bind(sender_id.as_str())
            .bind(client_msg_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        Ok(row.as_ref().map(message_from_row))
    }

    /// At most `limit` messages of `range`, in ascending `seq`, taken from the `from` end.
    async fn fetch_messages(
        &self,
        conversation_id: &ConversationId,
        range: SeqRange,
        from: PageFrom,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let order = match from {
            PageFrom::Oldest => "ASC",
            PageFrom::Newest => "DESC",
        };
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? \
             AND seq > ? AND seq < ? ORDER BY seq {order} LIMIT ?"
        ))
        .bind(conversation_id.as_str())
        .bind(range.after_seq.unwrap_or(0))
        .bind(range.before_seq.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        let mut messages: Vec<Message> = rows.iter().map(message_from_row).collect();
        if from == PageFrom::Newest {
            messages.reverse();
        }
        Ok(messages)
    }

    /// The distinct senders of the messages with `after_seq < seq <= up_to_seq`.
    async fn fetch_senders(
        &self,
        conversation_id: &ConversationId,
        after_seq: i64,
        up_to_seq: i64,
    ) -> StoreResult<Vec<UserId>> {
        let senders: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT sender_id FROM messages \
             WHERE conversation_id = ? AND seq > ? AND seq <= ? AND content_type != 'system'",
        )
        .bind(conversation_id.as_str())
        .bind(after_seq)
        .bind(up_to_seq)
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(senders.into_iter().map(UserId).collect())
    }

    // ---- receipts -----------------------------------------------------------------

    /// Moves pointers forward (never back; read implies delivered) and returns those that
    /// moved. Updates for users no longer members are ignored.
    async fn update_receipts(
        &self,
        updates: Vec<ReceiptUpdate>,
    ) -> StoreResult<Vec<ReceiptChange>> {
        let mut transaction = self.writer.begin().await.map_err(unavailable)?;
        let mut changes = Vec::new();
        for chunk in updates.chunks(INSERT_CHUNK) {
            let mut select = sqlx::QueryBuilder::<Sqlite>::new(
                "SELECT m.conversation_id, m.user_id, m.delivered_seq, m.read_seq, c.last_seq \
                 FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id \
                 WHERE (m.conversation_id, m.user_id) IN (VALUES ",
            );
            let mut pairs = select.separated(", ");
            for update in chunk {
                pairs.push("(");
                pairs.push_bind_unseparated(update.conversation_id.as_str());
                pairs.push_unseparated(", ");
                pairs.push_bind_unseparated(update.user_id.as_str());
                pairs.push_unseparated(")");
            }
            select.push(")");
            let rows = select
                .build()
                .fetch_all(&mut *transaction)
                .await
                .map_err(unavailable)?;
            let current: HashMap<(String, String), (i64, i64, i64)> = rows
                .iter()
                .map(|row| {
                    (
                        (row.get("conversation_id"), row.get("user_id")),
                        (
                            row.get("delivered_seq"),
                            row.get("read_seq"),
                            row.get("last_seq"),
                        ),
                    )
                })
                .collect();
            let mut moved = Vec::new();
            for update in chunk {
                // Updates for users no longer members have no row and are ignored.
                let key = (update.conversation_id.0.clone(), update.user_id.0.clone());
                let Some(&(old_delivered, old_read, last_seq)) = current.get(&key) else {
                    continue;
                };
                // Pointers never pass the end: a client cannot pre-read future messages.
                let read_seq = old_read.max(update.read_seq.min(last_seq));
                let delivered_seq = old_delivered
                    .max(update.delivered_seq.min(last_seq))
                    .max(read_seq);
                if read_seq == old_read && delivered_seq == old_delivered {
                    continue;
                }
                moved.push(ReceiptChange {
                    conversation_id: update.conversation_id.clone(),
                    user_id: update.user_id.clone(),
                    old_delivered_seq: old_delivered,
                    delivered_seq,
                    old_read_seq: old_read,
                    read_seq,
                });
            }
            if moved.is_empty() {
                continue;
            }
            let mut write = sqlx::QueryBuilder::<Sqlite>::new(
                "UPDATE members SET delivered_seq = v.column3, read_seq = v.column4 FROM (",
            );
            write.push_values(&moved, |mut row, change| {
                row.push_bind(change.conversation_id.as_str())
                    .push_bind(change.user_id.as_str())
                    .push_bind(change.delivered_seq)
                    .push_bind(change.read_seq);
            });
            write.push(
                ") AS v WHERE members.conversation_id = v.column1 AND members.user_id = v.column2",
            );
            write
                .build()
                .execute(&mut *transaction)
                .await
                .map_err(unavailable)?;
            changes.extend(moved);
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(changes)
    }

    /// Who has received and read the message `seq` (the sender excluded).
    async fn fetch_receipts(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<MessageReceipts> {
        let sender: String = sqlx::query_scalar(
            "SELECT sender_id FROM messages WHERE conversation_id = ? AND seq = ?",
        )
        .bind(conversation_id.as_str())
        .bind(seq)
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        let rows = sqlx::query(
            "SELECT user_id, delivered_seq >= ?2 AS delivered, read_seq >= ?2 AS read FROM members \
             WHERE conversation_id = ?1 AND user_id != ?3 AND delivered_seq >= ?2 \
             AND joined_seq <= ?2 ORDER BY user_id",
        )
        .bind(conversation_id.as_str())
        .bind(seq)
        .bind(&sender)
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        let mut receipts = MessageReceipts::default();
        for row in rows {
            let user_id = UserId(row.get("user_id"));
            if row.get::<bool, _>("read") {
                receipts.read_by.push(user_id.clone());
            }
            receipts.delivered_to.push(user_id);
        }
        Ok(receipts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// User search reads an index, never the whole table (`SCAN users`).
    #[tokio::test]
    async fn user_search_uses_an_index() {
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(directory.path()).await.unwrap();
        for by in [SearchBy::Username, SearchBy::DisplayName] {
            let plan: Vec<String> =
                sqlx::query(&format!("EXPLAIN QUERY PLAN {}", search_users_sql(by)))
                    .bind("ali")
                    .bind(20i64)
                    .fetch_all(&store.reader)
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| row.get::<String, _>("detail"))
                    .collect();
            let plan = plan.join("; ");
            assert!(plan.contains("USING INDEX"), "{plan}");
            assert!(!plan.contains("SCAN users"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
    }
}
