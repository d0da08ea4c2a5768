//! Statements that run inside the caller's write transaction: locking conversation rows
//! and reading where they stand, the batch lookups of a group commit (duplicates,
//! memberships, the targets of change entries), appending a batch under those locks (with
//! its mentions, search terms and the effects of its change entries), creating a
//! conversation, and one membership or metadata change. (The change entries' own
//! statements are `changes.rs`'s, receipt pointers `receipts.rs`'s.)
//!
//! Every statement takes its rows as arrays (`UNNEST`, `= ANY`), so a batch of ordinary
//! messages costs the same handful of round trips whatever its size; change entries
//! (rare) cost one statement each more. Nothing here commits: the caller does, once.

use super::*;

/// Where a conversation stands inside a write transaction that holds its row lock.
pub(crate) struct Position {
    pub(crate) last_seq: i64,
    pub(crate) members_version: i64,
    /// Whether anything was appended in this transaction (`last_seq` must be written).
    pub(crate) moved: bool,
    /// The newest `created_at` of a message (not a change entry) appended in this
    /// transaction (ms), if any was: change entries do not move `last_activity_at`.
    pub(crate) activity: Option<i64>,
    /// The conversation's disappearing messages setting (seconds, 0: off).
    pub(crate) disappearing_seconds: u32,
}

impl Position {
    /// A conversation created in this transaction, with nothing in it yet.
    pub(crate) fn new_conversation() -> Self {
        Position {
            last_seq: 0,
            members_version: 0,
            moved: false,
            activity: None,
            disappearing_seconds: 0,
        }
    }
}

/// Locks the rows of these conversations (`FOR UPDATE`, in `conversation_id` order, the
/// one order every writer uses, so two nodes' batches wait for each other instead of
/// deadlocking) and reads where each stands. Absent conversations are absent from the map.
pub(crate) async fn lock_positions(
    connection: &mut sqlx::PgConnection,
    conversation_ids: &[&str],
) -> StoreResult<HashMap<ConversationId, Position>> {
    let mut conversation_ids = conversation_ids.to_vec();
    conversation_ids.sort_unstable();
    conversation_ids.dedup();
    let rows = sqlx::query(
        "SELECT conversation_id, last_seq, members_version, disappearing_seconds \
         FROM conversations WHERE conversation_id = ANY($1) ORDER BY conversation_id FOR UPDATE",
    )
    .bind(&conversation_ids)
    .fetch_all(&mut *connection)
    .await
    .map_err(store_error)?;
    rows.iter()
        .map(|row| {
            Ok((
                ConversationId(column(row, "conversation_id")?),
                Position {
                    last_seq: column(row, "last_seq")?,
                    members_version: column(row, "members_version")?,
                    moved: false,
                    activity: None,
                    disappearing_seconds: u32::try_from(column::<i32>(
                        row,
                        "disappearing_seconds",
                    )?)
                    .unwrap_or(0),
                },
            ))
        })
        .collect()
}

/// Which `(conversation_id, sender_id)` pairs of a batch are memberships right now. Read
/// after the conversations' row locks are held, so no removal can commit in between.
/// Each with whether a block refuses that sender's messages there (`send_blocked`).
pub(crate) async fn fetch_memberships(
    connection: &mut sqlx::PgConnection,
    messages: &[NewMessage],
) -> StoreResult<HashMap<(ConversationId, UserId), bool>> {
    let (conversation_ids, user_ids): (Vec<&str>, Vec<&str>) = messages
        .iter()
        .map(|message| (message.conversation_id.as_str(), message.sender_id.as_str()))
        .unzip();
    let rows = sqlx::query(
        "SELECT conversation_id, user_id, send_blocked FROM members \
         WHERE (conversation_id, user_id) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))",
    )
    .bind(&conversation_ids)
    .bind(&user_ids)
    .fetch_all(&mut *connection)
    .await
    .map_err(store_error)?;
    rows.iter()
        .map(|row| {
            Ok((
                (
                    ConversationId(column(row, "conversation_id")?),
                    UserId(column(row, "user_id")?),
                ),
                column(row, "send_blocked")?,
            ))
        })
        .collect()
}

/// The already stored messages among a batch's `(sender_id, client_msg_id)`s.
async fn fetch_stored_duplicates(
    connection: &mut sqlx::PgConnection,
    messages: &[NewMessage],
) -> StoreResult<HashMap<(UserId, String), Message>> {
    let (client_msg_ids, sender_ids): (Vec<&str>, Vec<&str>) = messages
        .iter()
        .map(|message| (message.client_msg_id.as_str(), message.sender_id.as_str()))
        .unzip();
    let rows = sqlx::query(&format!(
        "SELECT {} FROM messages WHERE (client_msg_id, sender_id) IN \
         (SELECT * FROM UNNEST($1::text[], $2::text[]))",
        message_columns("", "")
    ))
    .bind(&client_msg_ids)
    .bind(&sender_ids)
    .fetch_all(&mut *connection)
    .await
    .map_err(store_error)?;
    let mut stored = HashMap::with_capacity(rows.len());
    for row in &rows {
        let message = message_from_row(row)?;
        stored.insert(
            (message.sender_id.clone(), message.client_msg_id.clone()),
            message,
        );
    }
    Ok(stored)
}

/// Appends `messages`, in order, in the caller's transaction, which holds the row locks
/// of their conversations (`positions`, moved on as `seq`s are given out). `memberships`
/// are the pairs allowed to send; `None` for system messages, whose actor may just have
/// left. A handful of statements for ordinary messages: the duplicates, the targets of
/// change entries (if any), the insert (with search terms), the mentions (if any), the
/// new positions; then one statement per change entry, applied in order.
///
/// `Ok(None)` when another transaction committed one of the `(sender_id, client_msg_id)`s
/// after this one looked (for another conversation, whose lock this one does not hold):
/// nothing must be committed then, and the whole transaction is tried again.
pub(crate) async fn append_locked(
    connection: &mut sqlx::PgConnection,
    messages: &[NewMessage],
    positions: &mut HashMap<ConversationId, Position>,
    memberships: Option<&HashMap<(ConversationId, UserId), bool>>,
) -> StoreResult<Option<Vec<AppendOutcome>>> {
    let stored = fetch_stored_duplicates(connection, messages).await?;
    let has_changes = messages
        .iter()
        .any(|message| message.content_type.is_change());
    // Targets as this transaction sees them, then as earlier entries of the batch leave
    // them (a message appended, or deleted, just before).
    let mut targets = if has_changes {
        fetch_target_states(connection, messages).await?
    } else {
        TargetStates::new()
    };
    // Share-locked: the collector skips them, so none it deletes is attached here.
    let media = crate::media::lock_media(connection, messages).await?;
    let mut first_in_batch: HashMap<(&UserId, &str), usize> = HashMap::new();
    let mut outcomes: Vec<AppendOutcome> = Vec::with_capacity(messages.len());
    for message in messages {
        let key = (&message.sender_id, message.client_msg_id.as_str());
        let first = stored
            .get(&(message.sender_id.clone(), message.client_msg_id.clone()))
            .map(|first| Ok(first.clone()))
            .or_else(|| {
                first_in_batch
                    .get(&key)
                    .map(|&index| outcomes[index].clone().map(|first| first.message))
            });
        if let Some(first) = first {
            // A retry: the first message's ack if it is in the same conversation.
            outcomes.push(match first {
                Ok(first) if first.conversation_id == message.conversation_id => Ok(Appended {
                    message: first,
                    duplicate: true,
                    members_version: 0,
                }),
                Ok(_) => Err(AppendRefusal::ClientMsgIdReused),
                Err(refusal) => Err(refusal),
            });
            continue;
        }
        let membership = (message.conversation_id.clone(), message.sender_id.clone());
        match memberships.map(|memberships| memberships.get(&membership)) {
            Some(None) => {
                outcomes.push(Err(AppendRefusal::NotMember));
                continue;
            }
            Some(Some(true)) if !message.content_type.is_system() => {
                outcomes.push(Err(AppendRefusal::Blocked));
                continue;
            }
            _ => {}
        }
        if !crate::media::attachments_exist(message, &media) {
            outcomes.push(Err(AppendRefusal::MediaGone));
            continue;
        }
        let is_change = message.content_type.is_change();
        if is_change {
            let target = (
                message.conversation_id.clone(),
                message.target_seq.unwrap_or_default(),
            );
            if targets.get(&target) != Some(&(true, false)) {
                outcomes.push(Err(AppendRefusal::TargetGone));
                continue;
            }
            if message.content_type == ContentType::DELETE {
                targets.insert(target, (true, true));
            }
        }
        let position = positions
            .get_mut(&message.conversation_id)
            .ok_or(StoreError::NotFound)?;
        position.last_seq += 1;
        position.moved = true;
        if !is_change {
            let created_at = message.created_at.millis();
            position.activity = Some(
                position
                    .activity
                    .map_or(created_at, |at| at.max(created_at)),
            );
        }
        if has_changes {
            targets.insert(
                (message.conversation_id.clone(), position.last_seq),
                (!message.content_type.is_system() && !is_change, false),
            );
        }
        first_in_batch.insert(key, outcomes.len());
        let mut appended = message.clone().with_seq(position.last_seq);
        appended.expires_at = parley_core::rules::expires_at(
            &appended.content_type,
            appended.created_at,
            position.disappearing_seconds,
        );
        outcomes.push(Ok(Appended {
            message: appended,
            duplicate: false,
            members_version: position.members_version,
        }));
    }
    let new_messages: Vec<&Message> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .filter(|appended| !appended.duplicate)
        .map(|appended| &appended.message)
        .collect();
    if new_messages.is_empty() {
        return Ok(Some(outcomes));
    }
    let inserted = insert_messages(connection, &new_messages).await?;
    if inserted != new_messages.len() as u64 {
        return Ok(None);
    }
    insert_mentions(connection, &new_messages).await?;
    crate::media::refer_media(connection, &new_messages).await?;
    for change in new_messages.iter().filter(|message| message.is_change()) {
        apply_message_change(connection, change).await?;
    }
    store_positions(connection, positions).await?;
    Ok(Some(outcomes))
}

/// One multi-row insert of messages with known `seq`s (and the search terms of those
/// indexed); returns how many were inserted. A `(client_msg_id, sender_id)` committed
/// meanwhile by another transaction is skipped (`ON CONFLICT DO NOTHING` waits for that
/// transaction rather than failing the batch).
async fn insert_messages(
    connection: &mut sqlx::PgConnection,
    messages: &[&Message],
) -> StoreResult<u64> {
    let mut columns = MessageArrays::default();
    for message in messages {
        columns.push(message);
    }
    let result = sqlx::query(&format!(
        "INSERT INTO messages (conversation_id, seq, message_id, sender_id, sender_device_id, \
         client_msg_id, content, content_type, reply_to_seq, system, created_at, target_seq, \
         mentions, forwarded, search_terms, expires_at, attachments) \
         SELECT conversation_id, seq, message_id, sender_id, sender_device_id, client_msg_id, \
         content, content_type, reply_to_seq, system::jsonb, created_at, target_seq, \
         mentions::jsonb, forwarded, {terms}, expires_at, attachments::jsonb \
         FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::text[], $9::bigint[], $10::text[], $11::bigint[], \
                     $12::bigint[], $13::text[], $14::boolean[], $15::text[], $16::bigint[], \
                     $17::text[]) \
           AS v(conversation_id, seq, message_id, sender_id, sender_device_id, client_msg_id, \
                content, content_type, reply_to_seq, system, created_at, target_seq, \
                mentions, forwarded, terms, expires_at, attachments) \
         ON CONFLICT (client_msg_id, sender_id) DO NOTHING",
        terms = terms_sql("v.terms"),
    ))
    .bind(columns.conversation_ids)
    .bind(columns.seqs)
    .bind(columns.message_ids)
    .bind(columns.sender_ids)
    .bind(columns.sender_device_ids)
    .bind(columns.client_msg_ids)
    .bind(columns.contents)
    .bind(columns.content_types)
    .bind(columns.reply_to_seqs)
    .bind(columns.systems)
    .bind(columns.created_ats)
    .bind(columns.target_seqs)
    .bind(columns.mentions)
    .bind(columns.forwardeds)
    .bind(columns.terms)
    .bind(columns.expires_ats)
    .bind(columns.attachments)
    .execute(&mut *connection)
    .await
    .map_err(store_error)?;
    Ok(result.rows_affected())
}

/// A batch of messages as one array per column, for `UNNEST`.
#[derive(Default)]
struct MessageArrays<'a> {
    conversation_ids: Vec<&'a str>,
    seqs: Vec<i64>,
    message_ids: Vec<&'a str>,
    sender_ids: Vec<&'a str>,
    sender_device_ids: Vec<&'a str>,
    client_msg_ids: Vec<&'a str>,
    contents: Vec<&'a str>,
    content_types: Vec<&'a str>,
    reply_to_seqs: Vec<Option<i64>>,
    systems: Vec<Option<String>>,
    created_ats: Vec<i64>,
    target_seqs: Vec<Option<i64>>,
    mentions: Vec<Option<String>>,
    forwardeds: Vec<bool>,
    /// The [`index_document`] of an indexed message, NULL for one that is not.
    terms: Vec<Option<String>>,
    expires_ats: Vec<Option<i64>>,
    attachments: Vec<Option<String>>,
}

impl<'a> MessageArrays<'a> {
    fn push(&mut self, message: &'a Message) {
        self.conversation_ids.push(message.conversation_id.as_str());
        self.seqs.push(message.seq);
        self.message_ids.push(message.message_id.as_str());
        self.sender_ids.push(message.sender_id.as_str());
        self.sender_device_ids
            .push(message.sender_device_id.as_str());
        self.client_msg_ids.push(message.client_msg_id.as_str());
        self.contents.push(message.content.as_str());
        self.content_types.push(message.content_type.as_str());
        self.reply_to_seqs.push(message.reply_to_seq);
        self.systems.push(
            message
                .system
                .as_ref()
                .map(|event| serde_json::to_string(event).expect("system events serialize")),
        );
        self.created_ats.push(message.created_at.millis());
        self.target_seqs.push(message.target_seq);
        self.mentions.push(mentions_column(&message.mentions));
        self.forwardeds.push(message.forwarded);
        self.terms
            .push(is_indexed(message).then(|| index_document(&message.content)));
        self.expires_ats
            .push(message.expires_at.map(Timestamp::millis));
        self.attachments
            .push(attachments_column(&message.attachments));
    }
}

/// Writes the `last_seq` and activity of every conversation that was appended to, in one
/// statement (a NULL activity, change entries only, leaves `last_activity_at`:
/// `GREATEST` ignores NULLs).
async fn store_positions(
    connection: &mut sqlx::PgConnection,
    positions: &HashMap<ConversationId, Position>,
) -> StoreResult<()> {
    let mut conversation_ids = Vec::new();
    let mut last_seqs = Vec::new();
    let mut appended_ats = Vec::new();
    for (conversation_id, position) in positions {
        if position.moved {
            conversation_ids.push(conversation_id.as_str());
            last_seqs.push(position.last_seq);
            appended_ats.push(position.activity);
        }
    }
    sqlx::query(
        "UPDATE conversations c SET last_seq = v.last_seq, \
         last_activity_at = GREATEST(c.last_activity_at, v.appended_at) \
         FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS v(conversation_id, last_seq, appended_at) \
         WHERE c.conversation_id = v.conversation_id",
    )
    .bind(&conversation_ids)
    .bind(&last_seqs)
    .bind(&appended_ats)
    .execute(&mut *connection)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// Inserts a new conversation's row and its members; `false`, with nothing written, if
/// it is a direct chat whose `direct_key` exists. Two nodes creating the same direct chat:
/// the second waits here for the first's commit, then finds the key taken.
pub(crate) async fn insert_conversation_rows(
    connection: &mut sqlx::PgConnection,
    conversation: &NewConversation,
) -> StoreResult<bool> {
    if let Some(direct_key) = &conversation.direct_key {
        lock_pair(&mut *connection, direct_key).await?;
    }
    let created_at = conversation.created_at.millis();
    let inserted = sqlx::query(
        "INSERT INTO conversations (conversation_id, kind, name, description, direct_key, \
         created_at, last_seq, last_activity_at, member_count) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $6, $7) ON CONFLICT (direct_key) DO NOTHING",
    )
    .bind(conversation.conversation_id.as_str())
    .bind(conversation.kind.as_str())
    .bind(&conversation.name)
    .bind(&conversation.description)
    .bind(&conversation.direct_key)
    .bind(created_at)
    .bind(i32::try_from(conversation.members.len()).unwrap_or(i32::MAX))
    .execute(&mut *connection)
    .await
    .map_err(store_error)?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    let (user_ids, roles): (Vec<&str>, Vec<&str>) = conversation
        .members
        .iter()
        .map(|(user_id, role)| (user_id.as_str(), role.as_str()))
        .unzip();
    sqlx::query(
        "INSERT INTO members (conversation_id, user_id, role, joined_at) \
         SELECT $1, v.user_id, v.role, $4 FROM UNNEST($2::text[], $3::text[]) AS v(user_id, role)",
    )
    .bind(conversation.conversation_id.as_str())
    .bind(&user_ids)
    .bind(&roles)
    .bind(created_at)
    .execute(&mut *connection)
    .await
    .map_err(|error| match store_error(error) {
        // A member who is not a user: the conversation cannot be made, as in SQLite.
        StoreError::MissingReference => StoreError::NotFound,
        other => other,
    })?;
    if let (Some(_), [(first, _), (second, _)]) =
        (&conversation.direct_key, conversation.members.as_slice())
    {
        refresh_send_blocked(&mut *connection, first, second).await?;
    }
    Ok(true)
}

/// The conversation whose `column` (`conversation_id` or `direct_key`) is `value`, read
/// in the caller's transaction.
pub(crate) async fn fetch_conversation_where(
    connection: &mut sqlx::PgConnection,
    column: &'static str,
    value: &str,
) -> StoreResult<ConversationRecord> {
    let row = sqlx::query(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.{column} = $1"
    ))
    .bind(value)
    .fetch_one(&mut *connection)
    .await
    .map_err(store_error)?;
    conversation_from_row(&row)
}

/// Moves `members_version` on by one after a change, with the member count it left, and
/// returns the new version.
pub(crate) async fn bump_members_version(
    connection: &mut sqlx::PgConnection,
    conversation_id: &ConversationId,
) -> StoreResult<i64> {
    sqlx::query_scalar(
        "UPDATE conversations SET members_version = members_version + 1, \
         member_count = (SELECT COUNT(*) FROM members WHERE conversation_id = $1) \
         WHERE conversation_id = $1 RETURNING members_version",
    )
    .bind(conversation_id.as_str())
    .fetch_one(&mut *connection)
    .await
    .map_err(store_error)
}

/// One membership or metadata change, inside the caller's transaction, which holds the
/// conversation's row lock. Joiners' pointers start at `last_seq`, the end of the history
/// before the change (readable, nothing of it unread), and they join at the next `seq`.
/// `member_count` is the caller's to refresh once all changes are applied.
pub(crate) async fn apply_change(
    connection: &mut sqlx::PgConnection,
    conversation_id: &ConversationId,
    change: &ConversationChange,
    last_seq: i64,
    now: i64,
) -> StoreResult<()> {
    match change {
        ConversationChange::AddMembers(new_members) => {
            let (user_ids, roles): (Vec<&str>, Vec<&str>) = new_members
                .iter()
                .map(|(user_id, role)| (user_id.as_str(), role.as_str()))
                .unzip();
            sqlx::query(
                "INSERT INTO members (conversation_id, user_id, role, joined_at, joined_seq, \
                 delivered_seq, read_seq) \
                 SELECT $1, v.user_id, v.role, $4, $5 + 1, $5, $5 \
                 FROM UNNEST($2::text[], $3::text[]) AS v(user_id, role) \
                 ON CONFLICT (conversation_id, user_id) DO NOTHING",
            )
            .bind(conversation_id.as_str())
            .bind(&user_ids)
            .bind(&roles)
            .bind(now)
            .bind(last_seq)
            .execute(&mut *connection)
            .await
            .map_err(store_error)?;
        }
        ConversationChange::RemoveMember(user_id) => {
            sqlx::query("DELETE FROM members WHERE conversation_id = $1 AND user_id = $2")
                .bind(conversation_id.as_str())
                .bind(user_id.as_str())
                .execute(&mut *connection)
                .await
                .map_err(store_error)?;
        }
        ConversationChange::SetRoles(roles) => {
            // Applied in order: a user named twice ends with the last role named.
            let mut last_role: HashMap<&str, &str> = HashMap::new();
            for (user_id, role) in roles {
                last_role.insert(user_id.as_str(), role.as_str());
            }
            let (user_ids, roles): (Vec<&str>, Vec<&str>) = last_role.into_iter().unzip();
            sqlx::query(
                "UPDATE members m SET role = v.role \
                 FROM UNNEST($2::text[], $3::text[]) AS v(user_id, role) \
                 WHERE m.conversation_id = $1 AND m.user_id = v.user_id",
            )
            .bind(conversation_id.as_str())
            .bind(&user_ids)
            .bind(&roles)
            .execute(&mut *connection)
            .await
            .map_err(store_error)?;
        }
        ConversationChange::Rename { name, description } => {
            sqlx::query(
                "UPDATE conversations SET name = COALESCE($2, name), \
                 description = COALESCE($3, description) WHERE conversation_id = $1",
            )
            .bind(conversation_id.as_str())
            .bind(name)
            .bind(description)
            .execute(&mut *connection)
            .await
            .map_err(store_error)?;
        }
        ConversationChange::SetAvatar(avatar) => {
            crate::media::set_group_avatar(connection, conversation_id, avatar.as_ref()).await?;
        }
        ConversationChange::SetDisappearing(seconds) => {
            sqlx::query(
                "UPDATE conversations SET disappearing_seconds = $2 WHERE conversation_id = $1",
            )
            .bind(conversation_id.as_str())
            .bind(i32::try_from(*seconds).unwrap_or(i32::MAX))
            .execute(&mut *connection)
            .await
            .map_err(store_error)?;
        }
    }
    Ok(())
}
