//! Rows to records: the column lists each query selects and the functions that read them
//! back, with the prefix-mapped joined last message and the user-search queries.

use super::*;

/// One column of a row, or `Corrupt` if it is missing or does not decode: a row is never
/// silently skipped or half-read.
pub(crate) fn column<'r, T>(row: &'r SqliteRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name)
        .map_err(|error| StoreError::corrupt("row", error))
}

/// A stored value outside its column's domain (an unknown role or kind).
#[derive(Debug)]
pub(crate) struct UnknownValue {
    pub(crate) column: &'static str,
    pub(crate) value: String,
}

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "unknown {} {:?}", self.column, self.value)
    }
}

impl std::error::Error for UnknownValue {}

/// A member row (with `username` and `display_name` joined from `users`).
pub(crate) fn member_from_row(row: &SqliteRow) -> StoreResult<Member> {
    Ok(Member {
        user_id: UserId(column(row, "user_id")?),
        role: role_from(column(row, "role")?)?,
        joined_at: Timestamp(column(row, "joined_at")?),
        username: Some(column(row, "username")?),
        display_name: Some(column(row, "display_name")?),
    })
}

pub(crate) fn role_from(value: &str) -> StoreResult<Role> {
    Role::parse(value).ok_or_else(|| {
        StoreError::corrupt(
            "member",
            UnknownValue {
                column: "role",
                value: value.to_owned(),
            },
        )
    })
}

pub(crate) const USER_COLUMNS: &str =
    "user_id, username, password_hash, display_name, status_message, \
     avatar_url, avatar_media_id, last_seen_privacy, last_seen_at, created_at, deleted_at, \
     push_previews";

pub(crate) fn user_from_row(row: &SqliteRow) -> UserRecord {
    UserRecord {
        user_id: UserId(row.get("user_id")),
        username: row.get("username"),
        password_hash: row.get("password_hash"),
        display_name: row.get("display_name"),
        status_message: row.get("status_message"),
        avatar_url: row.get("avatar_url"),
        avatar_media_id: row.get::<Option<String>, _>("avatar_media_id").map(MediaId),
        push_previews: row.get::<i64, _>("push_previews") != 0,
        // The column's CHECK admits the three names only; anything else hides.
        last_seen_privacy: LastSeenPrivacy::parse(row.get("last_seen_privacy"))
            .unwrap_or(LastSeenPrivacy::Nobody),
        last_seen_at: row.get::<Option<i64>, _>("last_seen_at").map(Timestamp),
        created_at: Timestamp(row.get("created_at")),
        deleted_at: row.get::<Option<i64>, _>("deleted_at").map(Timestamp),
    }
}

#[derive(Clone, Copy)]
pub(crate) enum SearchBy {
    Username,
    DisplayName,
}

/// A prefix search as a range scan on an index: from the prefix up to the prefix followed
/// by the highest code point. `?1` is the lower-cased prefix, `?2` the limit.
pub(crate) fn search_users_sql(by: SearchBy) -> String {
    let (key, order) = match by {
        SearchBy::Username => ("username", "username"),
        SearchBy::DisplayName => ("lower(display_name)", "lower(display_name)"),
    };
    format!(
        "SELECT {USER_COLUMNS} FROM users WHERE {key} >= ?1 AND {key} < ?1 || char(1114111) \
         AND deleted_at IS NULL ORDER BY {order} LIMIT ?2"
    )
}

pub(crate) const CONVERSATION_COLUMNS: &str = "c.conversation_id, c.kind, c.name, c.description, \
     c.created_at, c.last_seq, c.last_activity_at, c.member_count, c.members_version, \
     c.disappearing_seconds, c.avatar_media_id";

pub(crate) fn conversation_from_row(row: &SqliteRow) -> StoreResult<ConversationRecord> {
    let kind = match column::<&str>(row, "kind")? {
        "direct" => ConversationType::Direct,
        "group" => ConversationType::Group,
        other => {
            return Err(StoreError::corrupt(
                "conversation",
                UnknownValue {
                    column: "kind",
                    value: other.to_owned(),
                },
            ))
        }
    };
    Ok(ConversationRecord {
        conversation_id: ConversationId(column(row, "conversation_id")?),
        kind,
        name: column(row, "name")?,
        description: column(row, "description")?,
        created_at: Timestamp(column(row, "created_at")?),
        last_seq: column(row, "last_seq")?,
        last_activity_at: Timestamp(column(row, "last_activity_at")?),
        member_count: column::<i64>(row, "member_count")? as u32,
        members_version: column(row, "members_version")?,
        disappearing_seconds: u32::try_from(column::<i64>(row, "disappearing_seconds")?)
            .unwrap_or(0),
        avatar_media_id: column::<Option<String>>(row, "avatar_media_id")?.map(MediaId),
    })
}

/// The condition that leaves out messages (of the table aliased `alias`) expired at the
/// time bound as `?{param}` (ms): every read of messages carries it, so they vanish at
/// once, not when the purger gets to them.
pub(crate) fn unexpired_sql(alias: &str, param: usize) -> String {
    format!("({alias}expires_at IS NULL OR {alias}expires_at > ?{param})")
}

/// The columns a new message is inserted with.
pub(crate) const INSERT_COLUMNS: &str =
    "conversation_id, seq, message_id, sender_id, sender_device_id, \
     client_msg_id, content, content_type, reply_to_seq, system, created_at, \
     target_seq, mentions, forwarded, expires_at, attachments";

/// The columns a message is read back with: as inserted, plus its current state.
pub(crate) const MESSAGE_COLUMNS: &str =
    "conversation_id, seq, message_id, sender_id, sender_device_id, \
     client_msg_id, content, content_type, reply_to_seq, system, created_at, \
     target_seq, mentions, forwarded, edited_at, deleted, expires_at, attachments";

/// The change entries' content types as an SQL list (`'reaction', 'edit', 'delete'`):
/// constants of the protocol, quoted here once.
pub(crate) fn change_types_sql() -> String {
    ContentType::CHANGES
        .iter()
        .map(|kind| format!("'{}'", kind.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A message's mentions as stored: a JSON array of user ids, or NULL for none.
pub(crate) fn mentions_column(mentions: &[UserId]) -> Option<String> {
    (!mentions.is_empty()).then(|| serde_json::to_string(mentions).expect("user ids serialize"))
}

pub(crate) fn message_from_row(row: &SqliteRow) -> StoreResult<Message> {
    prefixed_message_from_row(row, "")
}

/// A message whose columns carry `prefix` (`l_seq`, … for a joined last message).
pub(crate) fn prefixed_message_from_row(row: &SqliteRow, prefix: &str) -> StoreResult<Message> {
    let get = |name: &'static str| -> std::borrow::Cow<'static, str> {
        if prefix.is_empty() {
            name.into()
        } else {
            format!("{prefix}{name}").into()
        }
    };
    let system = match column::<Option<&str>>(row, &get("system"))? {
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|error| StoreError::corrupt("system event", error))?,
        ),
        None => None,
    };
    let mentions = match column::<Option<&str>>(row, &get("mentions"))? {
        Some(text) => {
            serde_json::from_str(text).map_err(|error| StoreError::corrupt("mentions", error))?
        }
        None => Vec::new(),
    };
    let attachments = match column::<Option<&str>>(row, &get("attachments"))? {
        Some(text) => {
            serde_json::from_str(text).map_err(|error| StoreError::corrupt("attachments", error))?
        }
        None => Vec::new(),
    };
    Ok(Message {
        message_id: MessageId(column(row, &get("message_id"))?),
        conversation_id: ConversationId(column(row, &get("conversation_id"))?),
        seq: column(row, &get("seq"))?,
        sender_id: UserId(column(row, &get("sender_id"))?),
        sender_device_id: DeviceId(column(row, &get("sender_device_id"))?),
        client_msg_id: column(row, &get("client_msg_id"))?,
        content: column(row, &get("content"))?,
        content_type: ContentType::from(column::<String>(row, &get("content_type"))?),
        reply_to_seq: column(row, &get("reply_to_seq"))?,
        created_at: Timestamp(column(row, &get("created_at"))?),
        system,
        target_seq: column(row, &get("target_seq"))?,
        mentions,
        forwarded: column::<i64>(row, &get("forwarded"))? != 0,
        edited_at: column::<Option<i64>>(row, &get("edited_at"))?.map(Timestamp),
        deleted: column::<i64>(row, &get("deleted"))? != 0,
        reactions: Vec::new(),
        hidden: false,
        expires_at: column::<Option<i64>>(row, &get("expires_at"))?.map(Timestamp),
        attachments,
    })
}

/// A page of a conversation's messages as `?5` sees it, ordered `order` (`ASC`, `DESC`):
/// `seq` in `(MAX(?2, their cleared_seq), ?3)`, at most `?4`, each row with the viewer's
/// `cleared_seq` as `viewer_cleared`. The viewer's row is read by uncorrelated scalar
/// subqueries (evaluated once), not joined: a join would make SQLite sort the whole
/// range instead of walking the primary key in order up to the limit.
pub(crate) fn fetch_page_sql(order: &str) -> String {
    let cleared = "COALESCE((SELECT cleared_seq FROM members \
         WHERE conversation_id = ?1 AND user_id = ?5), 0)";
    format!(
        "SELECT {MESSAGE_COLUMNS}, {cleared} AS viewer_cleared FROM messages \
         WHERE conversation_id = ?1 AND seq > MAX(?2, {cleared}) AND seq < ?3 \
         ORDER BY seq {order} LIMIT ?4"
    )
}

/// The summary query up to its `WHERE`: `unread_count` counts what `unread` lets count,
/// with the excluded content types bound as `?first_param`, `?first_param+1`, … (bind
/// them with [`bind_types`] after the query's own parameters).
pub(crate) fn summary_select(unread: Counting<'_>, first_param: usize) -> String {
    let mut counted = String::new();
    if unread.except_own {
        counted.push_str(" AND u.sender_id != m.user_id");
    }
    if !unread.except_types.is_empty() {
        let params: Vec<String> = (0..unread.except_types.len())
            .map(|index| format!("?{}", first_param + index))
            .collect();
        counted.push_str(&format!(
            " AND u.content_type NOT IN ({})",
            params.join(", ")
        ));
    }
    // The preview is the newest entry that is not a change, not hidden by the user and
    // after where they cleared the chat: a short backwards walk of the conversation's key range from its end.
    let last_columns: Vec<String> = MESSAGE_COLUMNS
        .split(',')
        .map(|name| format!("l.{0} AS l_{0}", name.trim()))
        .collect();
    format!(
        "SELECT c.conversation_id, c.kind, c.name, c.description, \
     c.created_at, c.last_seq, c.last_activity_at, c.member_count, c.members_version, \
     c.disappearing_seconds, c.avatar_media_id, m.read_seq, m.muted_until, m.archived_at, m.pinned_at, m.marked_unread, \
     m.cleared_seq, \
     (SELECT COUNT(*) FROM messages u WHERE u.conversation_id = c.conversation_id \
        AND u.seq > MAX(m.read_seq, m.cleared_seq){counted}) AS unread_count, \
     (SELECT COUNT(*) FROM mentions n WHERE n.user_id = m.user_id \
        AND n.conversation_id = c.conversation_id \
        AND n.seq > MAX(m.read_seq, m.cleared_seq)) AS unread_mentions, \
     {last} \
     FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id \
     LEFT JOIN messages l ON l.conversation_id = c.conversation_id AND l.seq = ( \
        SELECT x.seq FROM messages x WHERE x.conversation_id = c.conversation_id \
        AND x.seq > m.cleared_seq AND x.content_type NOT IN ({changes}) \
        AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = m.user_id \
            AND h.conversation_id = x.conversation_id AND h.seq = x.seq) \
        ORDER BY x.seq DESC LIMIT 1)",
        last = last_columns.join(", "),
        changes = change_types_sql(),
    )
}

/// Binds the content types of a [`Counting`], in order.
pub(crate) fn bind_types<'q>(
    mut query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    counting: Counting<'q>,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for content_type in counting.except_types {
        query = query.bind(content_type.as_str());
    }
    query
}

pub(crate) fn summary_from_row(row: &SqliteRow) -> StoreResult<ConversationSummary> {
    let conversation = conversation_from_row(row)?;
    let last_message = match column::<Option<i64>>(row, "l_seq")? {
        Some(_) => {
            let mut message = prefixed_message_from_row(row, "l_")?;
            // Expired, not purged yet: it previews as nothing, like a hidden one.
            parley_core::message_state::hide_if_expired(&mut message, Timestamp::now());
            Some(message)
        }
        None => None,
    };
    Ok(ConversationSummary {
        conversation,
        last_message,
        read_seq: column(row, "read_seq")?,
        unread_count: column(row, "unread_count")?,
        unread_mentions: column(row, "unread_mentions")?,
        muted_until: column::<Option<i64>>(row, "muted_until")?.map(Timestamp),
        archived_at: column::<Option<i64>>(row, "archived_at")?.map(Timestamp),
        pinned_at: column::<Option<i64>>(row, "pinned_at")?.map(Timestamp),
        marked_unread: column(row, "marked_unread")?,
        cleared_seq: column(row, "cleared_seq")?,
    })
}
