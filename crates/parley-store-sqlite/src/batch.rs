//! Statements that run inside the caller's write transaction: the batch lookups of a group
//! commit (duplicates, memberships, positions, in a fixed number of statements whatever
//! the batch size), appending one message, and applying one membership change.

use super::*;

/// Rows per multi-row statement (11 binds each, far below SQLite's variable limit).
pub(crate) const INSERT_CHUNK: usize = 256;

/// Ends a `… (x, y) IN (VALUES ` query: binds each pair as `(?, ?)`, then closes the list.
pub(crate) fn push_pair_list<'args>(
    select: &mut sqlx::QueryBuilder<'args, Sqlite>,
    pairs: impl IntoIterator<Item = (&'args str, &'args str)>,
) {
    let mut values = select.separated(", ");
    for (first, second) in pairs {
        values.push("(");
        values.push_bind_unseparated(first);
        values.push_unseparated(", ");
        values.push_bind_unseparated(second);
        values.push_unseparated(")");
    }
    select.push(")");
}

/// Ends a `… x IN (` query: binds each value, then closes the list.
pub(crate) fn push_list<'args, T>(
    select: &mut sqlx::QueryBuilder<'args, Sqlite>,
    values: impl IntoIterator<Item = T>,
) where
    T: 'args + sqlx::Encode<'args, Sqlite> + sqlx::Type<Sqlite> + Send,
{
    let mut list = select.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    select.push(")");
}

/// The already stored messages among a batch's `(sender_id, client_msg_id)`s.
pub(crate) async fn fetch_stored_duplicates(
    transaction: &mut Transaction<'_, Sqlite>,
    messages: &[NewMessage],
) -> StoreResult<HashMap<(UserId, String), Message>> {
    let mut stored = HashMap::new();
    for chunk in messages.chunks(INSERT_CHUNK) {
        let mut select = sqlx::QueryBuilder::<Sqlite>::new(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE (client_msg_id, sender_id) IN (VALUES "
        ));
        push_pair_list(
            &mut select,
            chunk
                .iter()
                .map(|message| (message.client_msg_id.as_str(), message.sender_id.as_str())),
        );
        for row in select
            .build()
            .fetch_all(&mut **transaction)
            .await
            .map_err(unavailable)?
        {
            let message = message_from_row(&row)?;
            stored.insert(
                (message.sender_id.clone(), message.client_msg_id.clone()),
                message,
            );
        }
    }
    Ok(stored)
}

/// Which `(conversation_id, sender_id)` pairs of a batch are memberships right now.
/// The senders of a batch that are members of the conversation they send to, each with
/// whether a block refuses their messages there (`members.send_blocked`).
pub(crate) async fn fetch_memberships(
    transaction: &mut Transaction<'_, Sqlite>,
    messages: &[NewMessage],
) -> StoreResult<HashMap<(ConversationId, UserId), bool>> {
    let mut pairs: Vec<(&str, &str)> = messages
        .iter()
        .map(|message| (message.conversation_id.as_str(), message.sender_id.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut memberships = HashMap::with_capacity(pairs.len());
    for chunk in pairs.chunks(INSERT_CHUNK) {
        let mut select = sqlx::QueryBuilder::<Sqlite>::new(
            "SELECT conversation_id, user_id, send_blocked FROM members \
             WHERE (conversation_id, user_id) IN (VALUES ",
        );
        push_pair_list(&mut select, chunk.iter().copied());
        for row in select
            .build()
            .fetch_all(&mut **transaction)
            .await
            .map_err(unavailable)?
        {
            memberships.insert(
                (
                    ConversationId(row.get("conversation_id")),
                    UserId(row.get("user_id")),
                ),
                row.get::<i64, _>("send_blocked") != 0,
            );
        }
    }
    Ok(memberships)
}

/// Where a conversation stands inside a batch's transaction.
pub(crate) struct Position {
    pub(crate) last_seq: i64,
    /// The newest `created_at` of a message (not a change) appended (ms), 0 while none.
    pub(crate) activity: i64,
    /// Whether anything was appended (`last_seq` must be written back).
    pub(crate) moved: bool,
    pub(crate) members_version: i64,
    /// The conversation's number in search index row ids.
    pub(crate) search_key: i64,
    /// Its disappearing messages setting (seconds, 0: off).
    pub(crate) disappearing_seconds: u32,
}

/// The position of every conversation of a batch, read once inside its transaction.
pub(crate) async fn fetch_last_seqs(
    transaction: &mut Transaction<'_, Sqlite>,
    messages: &[NewMessage],
) -> StoreResult<HashMap<ConversationId, Position>> {
    let mut conversation_ids: Vec<&str> = messages
        .iter()
        .map(|m| m.conversation_id.as_str())
        .collect();
    conversation_ids.sort_unstable();
    conversation_ids.dedup();
    let mut positions = HashMap::with_capacity(conversation_ids.len());
    for chunk in conversation_ids.chunks(INSERT_CHUNK) {
        let mut select = sqlx::QueryBuilder::<Sqlite>::new(
            "SELECT conversation_id, last_seq, members_version, search_key, disappearing_seconds \
             FROM conversations WHERE conversation_id IN (",
        );
        push_list(&mut select, chunk.iter().copied());
        for row in select
            .build()
            .fetch_all(&mut **transaction)
            .await
            .map_err(unavailable)?
        {
            positions.insert(
                ConversationId(row.get("conversation_id")),
                Position {
                    last_seq: row.get("last_seq"),
                    activity: 0,
                    moved: false,
                    members_version: row.get("members_version"),
                    search_key: row.get("search_key"),
                    disappearing_seconds: u32::try_from(row.get::<i64, _>("disappearing_seconds"))
                        .unwrap_or(0),
                },
            );
        }
    }
    Ok(positions)
}

/// Inserts one message with a known `seq`; `false` if `(sender_id, client_msg_id)` exists.
pub(crate) async fn insert_message(
    transaction: &mut Transaction<'_, Sqlite>,
    message: &NewMessage,
    seq: i64,
) -> StoreResult<bool> {
    let system = message
        .system
        .as_ref()
        .map(|event| serde_json::to_string(event).expect("system events serialize"));
    let result = sqlx::query(&format!(
        "INSERT INTO messages ({INSERT_COLUMNS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) \
         ON CONFLICT (client_msg_id, sender_id) DO NOTHING"
    ))
    .bind(message.conversation_id.as_str())
    .bind(seq)
    .bind(message.message_id.as_str())
    .bind(message.sender_id.as_str())
    .bind(message.sender_device_id.as_str())
    .bind(&message.client_msg_id)
    .bind(&message.content)
    .bind(message.content_type.as_str())
    .bind(message.reply_to_seq)
    .bind(system)
    .bind(message.created_at.millis())
    .bind(message.target_seq)
    .bind(mentions_column(&message.mentions))
    .bind(i64::from(message.forwarded))
    .bind(attachments_column(&message.attachments))
    .execute(&mut **transaction)
    .await
    .map_err(unavailable)?;
    Ok(result.rows_affected() == 1)
}

/// The message a sender stored with a client id (dedup key lookup).
pub(crate) fn select_by_client_id() -> String {
    format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender_id = ? AND client_msg_id = ?")
}

pub(crate) async fn fetch_by_client_id(
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
    message_from_row(&row)
}

/// `(last_seq, members_version)` of a conversation, inside the transaction.
pub(crate) async fn position_of(
    transaction: &mut Transaction<'_, Sqlite>,
    conversation_id: &ConversationId,
) -> StoreResult<(i64, i64)> {
    sqlx::query_as("SELECT last_seq, members_version FROM conversations WHERE conversation_id = ?")
        .bind(conversation_id.as_str())
        .fetch_optional(&mut **transaction)
        .await
        .map_err(unavailable)?
        .ok_or(StoreError::NotFound)
}

pub(crate) async fn last_seq_of(
    transaction: &mut Transaction<'_, Sqlite>,
    conversation_id: &ConversationId,
) -> StoreResult<i64> {
    Ok(position_of(transaction, conversation_id).await?.0)
}

pub(crate) async fn set_last_seq(
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
pub(crate) async fn append_in_transaction(
    transaction: &mut Transaction<'_, Sqlite>,
    message: NewMessage,
) -> StoreResult<Appended> {
    let (last_seq, members_version) = position_of(transaction, &message.conversation_id).await?;
    let seq = last_seq + 1;
    if !insert_message(transaction, &message, seq).await? {
        let first =
            fetch_by_client_id(transaction, &message.sender_id, &message.client_msg_id).await?;
        return Ok(Appended {
            message: first,
            duplicate: true,
            members_version: 0,
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
        members_version,
    })
}

pub(crate) async fn refresh_member_count(
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
pub(crate) async fn apply_change(
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
        ConversationChange::SetAvatar(avatar) => {
            let old: Option<String> = sqlx::query_scalar(
                "SELECT avatar_media_id FROM conversations WHERE conversation_id = ?",
            )
            .bind(conversation_id.as_str())
            .fetch_one(&mut **transaction)
            .await
            .map_err(unavailable)?;
            let old = old.map(MediaId);
            crate::media::swap_avatar(transaction, old.as_ref(), avatar.as_ref()).await?;
            sqlx::query("UPDATE conversations SET avatar_media_id = ? WHERE conversation_id = ?")
                .bind(avatar.as_ref().map(MediaId::as_str))
                .bind(conversation_id.as_str())
                .execute(&mut **transaction)
                .await
                .map_err(unavailable)?;
        }
        ConversationChange::SetDisappearing(seconds) => {
            sqlx::query(
                "UPDATE conversations SET disappearing_seconds = ? WHERE conversation_id = ?",
            )
            .bind(i64::from(seconds))
            .bind(conversation_id.as_str())
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// Records who new messages mention (`(user, conversation, seq)`).
pub(crate) async fn insert_mentions(
    transaction: &mut Transaction<'_, Sqlite>,
    rows: &[(&UserId, &ConversationId, i64)],
) -> StoreResult<()> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT OR IGNORE INTO mentions (user_id, conversation_id, seq) ",
        );
        insert.push_values(chunk, |mut row, (user_id, conversation_id, seq)| {
            row.push_bind(user_id.as_str())
                .push_bind(conversation_id.as_str())
                .push_bind(*seq);
        });
        insert
            .build()
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// What a change entry may target, as the transaction sees it: `(ordinary, deleted)`, or
/// `None` if there is no such message.
pub(crate) async fn target_state(
    transaction: &mut Transaction<'_, Sqlite>,
    conversation_id: &ConversationId,
    seq: i64,
) -> StoreResult<Option<(bool, bool)>> {
    // An expired message (not purged yet) is gone already.
    let row: Option<(String, i64)> = sqlx::query_as(&format!(
        "SELECT content_type, deleted FROM messages WHERE conversation_id = ?1 AND seq = ?2 \
         AND {}",
        unexpired_sql("", 3)
    ))
    .bind(conversation_id.as_str())
    .bind(seq)
    .bind(Timestamp::now().millis())
    .fetch_optional(&mut **transaction)
    .await
    .map_err(unavailable)?;
    Ok(row.map(|(content_type, deleted)| {
        let content_type = ContentType::from(content_type);
        (
            !content_type.is_system() && !content_type.is_change(),
            deleted != 0,
        )
    }))
}

/// Applies one stored change entry to its target (checked by `target_state` in the same
/// transaction). See `Store::append_messages` for what each kind does.
pub(crate) async fn apply_message_change(
    transaction: &mut Transaction<'_, Sqlite>,
    change: &Message,
    search_key: i64,
) -> StoreResult<()> {
    let conversation_id = change.conversation_id.as_str();
    let Some(target_seq) = change.target_seq else {
        return Ok(());
    };
    let run = |sql: &'static str| sqlx::query(sql);
    if change.content_type == ContentType::REACTION {
        if change.content.is_empty() {
            run("DELETE FROM reactions WHERE conversation_id = ? AND target_seq = ? AND user_id = ?")
                .bind(conversation_id)
                .bind(target_seq)
                .bind(change.sender_id.as_str())
                .execute(&mut **transaction)
                .await
                .map_err(unavailable)?;
        } else {
            run(
                "INSERT INTO reactions (conversation_id, target_seq, user_id, emoji, seq) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id, target_seq, user_id) \
                 DO UPDATE SET emoji = excluded.emoji, seq = excluded.seq",
            )
            .bind(conversation_id)
            .bind(target_seq)
            .bind(change.sender_id.as_str())
            .bind(&change.content)
            .bind(change.seq)
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
        }
        return Ok(());
    }
    let target_row = sqlx::query(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq = ?"
    ))
    .bind(conversation_id)
    .bind(target_seq)
    .fetch_one(&mut **transaction)
    .await
    .map_err(unavailable)?;
    let target = message_from_row(&target_row)?;
    if change.content_type == ContentType::EDIT {
        run("UPDATE messages SET content = ?, edited_at = ? WHERE conversation_id = ? AND seq = ?")
            .bind(&change.content)
            .bind(change.created_at.millis())
            .bind(conversation_id)
            .bind(target_seq)
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
        // Every edit entry of the target carries the current text: no older one stays; and
        // expires with the target (disappearing messages), so the text goes with it.
        run(
            "UPDATE messages SET content = ?, expires_at = ? WHERE conversation_id = ? \
             AND target_seq = ? AND content_type = 'edit'",
        )
        .bind(&change.content)
        .bind(target.expires_at.map(Timestamp::millis))
        .bind(conversation_id)
        .bind(target_seq)
        .execute(&mut **transaction)
        .await
        .map_err(unavailable)?;
        // The index swaps the old terms for the new ones.
        if is_indexed(&target) {
            let change = IndexChange {
                rowid: index_rowid(search_key, target_seq),
                old_terms: Some(index_document(search_key, &index_terms(&target.content))),
                new_terms: Some(index_document(search_key, &index_terms(&change.content))),
            };
            log_for_index(transaction, &[change]).await?;
        }
    } else if change.content_type == ContentType::DELETE {
        run(
            "UPDATE messages SET content = '', mentions = NULL, edited_at = NULL, deleted = 1, \
             attachments = NULL WHERE conversation_id = ? AND seq = ?",
        )
        .bind(conversation_id)
        .bind(target_seq)
        .execute(&mut **transaction)
        .await
        .map_err(unavailable)?;
        if !target.attachments.is_empty() {
            release_media(transaction, conversation_id, target_seq).await?;
        }
        run(
            "UPDATE messages SET content = '' WHERE conversation_id = ? AND target_seq = ? \
             AND content_type = 'edit'",
        )
        .bind(conversation_id)
        .bind(target_seq)
        .execute(&mut **transaction)
        .await
        .map_err(unavailable)?;
        run("DELETE FROM reactions WHERE conversation_id = ? AND target_seq = ?")
            .bind(conversation_id)
            .bind(target_seq)
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
        for user_id in &target.mentions {
            run("DELETE FROM mentions WHERE user_id = ? AND conversation_id = ? AND seq = ?")
                .bind(user_id.as_str())
                .bind(conversation_id)
                .bind(target_seq)
                .execute(&mut **transaction)
                .await
                .map_err(unavailable)?;
        }
        // The index takes its terms out (searches skip it already: `deleted`).
        if is_indexed(&target) {
            let change = IndexChange {
                rowid: index_rowid(search_key, target_seq),
                old_terms: Some(index_document(search_key, &index_terms(&target.content))),
                new_terms: None,
            };
            log_for_index(transaction, &[change]).await?;
        }
    }
    Ok(())
}
