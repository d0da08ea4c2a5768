//! Rows to records: the column lists each query selects, the functions that read them
//! back, and the two read queries with a shape of their own (the conversation summary
//! with its joined last message, and the prefix search on users).
//!
//! Every column is read with `try_get`: a row that does not decode is `Corrupt`, never
//! skipped or read with a made-up value.

use super::*;

/// One column of a row, or `Corrupt` if it is missing or does not decode.
pub(crate) fn column<'r, T>(row: &'r PgRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(name)
        .map_err(|error| StoreError::corrupt("row", error))
}

/// A stored value outside its column's domain (an unknown role or kind, a negative count).
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

fn unknown(what: &'static str, column: &'static str, value: impl ToString) -> StoreError {
    StoreError::corrupt(
        what,
        UnknownValue {
            column,
            value: value.to_string(),
        },
    )
}

/// A member row (with `username` and `display_name` joined from `users`).
pub(crate) fn member_from_row(row: &PgRow) -> StoreResult<Member> {
    let role: &str = column(row, "role")?;
    Ok(Member {
        user_id: UserId(column(row, "user_id")?),
        role: Role::parse(role).ok_or_else(|| unknown("member", "role", role))?,
        joined_at: Timestamp(column(row, "joined_at")?),
        username: Some(column(row, "username")?),
        display_name: Some(column(row, "display_name")?),
    })
}

pub(crate) const USER_COLUMNS: &str =
    "user_id, username, password_hash, display_name, status_message, \
     avatar_url, last_seen_visible, last_seen_at, created_at";

pub(crate) fn user_from_row(row: &PgRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        user_id: UserId(column(row, "user_id")?),
        username: column(row, "username")?,
        password_hash: column(row, "password_hash")?,
        display_name: column(row, "display_name")?,
        status_message: column(row, "status_message")?,
        avatar_url: column(row, "avatar_url")?,
        last_seen_visible: column(row, "last_seen_visible")?,
        last_seen_at: column::<Option<i64>>(row, "last_seen_at")?.map(Timestamp),
        created_at: Timestamp(column(row, "created_at")?),
    })
}

pub(crate) fn session_from_row(row: &PgRow) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        user_id: UserId(column(row, "user_id")?),
        device_id: DeviceId(column(row, "device_id")?),
    })
}

#[derive(Clone, Copy)]
pub(crate) enum SearchBy {
    Username,
    DisplayName,
}

/// A case-insensitive prefix search as a range scan on a `text_pattern_ops` index: from
/// the lower-cased prefix up to the prefix followed by the highest code point, compared
/// byte by byte (`~>=~`, `~<~`), so `%` and `_` are plain characters and the index serves
/// both the range and the order. `$1` is the prefix, `$2` the limit.
pub(crate) fn search_users_sql(by: SearchBy) -> String {
    let key = match by {
        SearchBy::Username => "lower(username)",
        SearchBy::DisplayName => "lower(display_name)",
    };
    format!(
        "SELECT {USER_COLUMNS} FROM users \
         WHERE {key} ~>=~ lower($1) AND {key} ~<~ (lower($1) || chr(1114111)) \
         ORDER BY {key} USING ~<~, user_id LIMIT $2"
    )
}

pub(crate) const CONVERSATION_COLUMNS: &str = "c.conversation_id, c.kind, c.name, c.description, \
     c.created_at, c.last_seq, c.last_activity_at, c.member_count, c.members_version";

pub(crate) fn conversation_from_row(row: &PgRow) -> StoreResult<ConversationRecord> {
    let kind = match column::<&str>(row, "kind")? {
        "direct" => ConversationType::Direct,
        "group" => ConversationType::Group,
        other => return Err(unknown("conversation", "kind", other)),
    };
    let member_count: i32 = column(row, "member_count")?;
    Ok(ConversationRecord {
        conversation_id: ConversationId(column(row, "conversation_id")?),
        kind,
        name: column(row, "name")?,
        description: column(row, "description")?,
        created_at: Timestamp(column(row, "created_at")?),
        last_seq: column(row, "last_seq")?,
        last_activity_at: Timestamp(column(row, "last_activity_at")?),
        member_count: u32::try_from(member_count)
            .map_err(|_| unknown("conversation", "member_count", member_count))?,
        members_version: column(row, "members_version")?,
    })
}

/// The columns of a message; `system` (JSONB) is read back as its text.
pub(crate) const MESSAGE_COLUMNS: &str =
    "conversation_id, seq, message_id, sender_id, sender_device_id, \
     client_msg_id, content, content_type, reply_to_seq, system::text AS system, created_at";

pub(crate) fn message_from_row(row: &PgRow) -> StoreResult<Message> {
    prefixed_message_from_row(row, "")
}

/// A message whose columns carry `prefix` (`l_seq`, … for a joined last message).
pub(crate) fn prefixed_message_from_row(row: &PgRow, prefix: &str) -> StoreResult<Message> {
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
    })
}

/// The summary query up to its `WHERE`, with the member row as `m`. `unread_count`
/// counts what the core's `Counting` lets count, given as parameters, never written
/// here: `$1` the content types that do not count (`text[]`), `$2` whether the member's
/// own messages do not (`boolean`). Bind them with [`bind_counting`] first.
pub(crate) const SUMMARY_SELECT: &str = "SELECT c.conversation_id, c.kind, c.name, \
     c.description, c.created_at, c.last_seq, c.last_activity_at, c.member_count, \
     c.members_version, m.read_seq, m.muted_until, \
     (SELECT COUNT(*) FROM messages u WHERE u.conversation_id = c.conversation_id \
        AND u.seq > m.read_seq AND u.content_type <> ALL($1::text[]) \
        AND NOT ($2::boolean AND u.sender_id = m.user_id)) AS unread_count, \
     l.conversation_id AS l_conversation_id, l.seq AS l_seq, l.message_id AS l_message_id, \
     l.sender_id AS l_sender_id, l.sender_device_id AS l_sender_device_id, \
     l.client_msg_id AS l_client_msg_id, l.content AS l_content, \
     l.content_type AS l_content_type, l.reply_to_seq AS l_reply_to_seq, \
     l.system::text AS l_system, l.created_at AS l_created_at \
     FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id \
     LEFT JOIN messages l ON l.conversation_id = c.conversation_id AND l.seq = c.last_seq";

/// Binds a [`Counting`] as `$1` and `$2` of a query built on [`SUMMARY_SELECT`].
pub(crate) fn bind_counting<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    counting: Counting<'q>,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    let except_types: Vec<&str> = counting
        .except_types
        .iter()
        .map(ContentType::as_str)
        .collect();
    query.bind(except_types).bind(counting.except_own)
}

pub(crate) fn summary_from_row(row: &PgRow) -> StoreResult<ConversationSummary> {
    let conversation = conversation_from_row(row)?;
    let last_message = match column::<Option<i64>>(row, "l_seq")? {
        Some(_) => Some(prefixed_message_from_row(row, "l_")?),
        None => None,
    };
    Ok(ConversationSummary {
        conversation,
        last_message,
        read_seq: column(row, "read_seq")?,
        unread_count: column(row, "unread_count")?,
        muted_until: column::<Option<i64>>(row, "muted_until")?.map(Timestamp),
    })
}
