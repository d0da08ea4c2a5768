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
pub(crate) fn push_list<'args>(
    select: &mut sqlx::QueryBuilder<'args, Sqlite>,
    values: impl IntoIterator<Item = &'args str>,
) {
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
pub(crate) async fn fetch_memberships(
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
        push_pair_list(&mut select, chunk.iter().copied());
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

/// Where a conversation stands inside a batch's transaction.
pub(crate) struct Position {
    pub(crate) last_seq: i64,
    /// The newest `created_at` appended (ms), 0 while nothing was.
    pub(crate) activity: i64,
    pub(crate) members_version: i64,
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
            "SELECT conversation_id, last_seq, members_version FROM conversations \
             WHERE conversation_id IN (",
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
                    members_version: row.get("members_version"),
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
    .bind(message.content_type.as_str())
    .bind(message.reply_to_seq)
    .bind(system)
    .bind(message.created_at.millis())
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
    }
    Ok(())
}
