//! Rows to records: the column lists each query selects, the functions that read them
//! back, and the two read queries with a shape of their own (the conversation summary
//! with its joined last message, and the prefix search on users); the search terms of a
//! message and of a query. (The current state of a history page as one reader sees it is
//! parley-core's `message_state`, shared with SQLite.)
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
     avatar_url, avatar_media_id, last_seen_privacy, last_seen_at, created_at, deleted_at, \
     push_previews";

pub(crate) fn user_from_row(row: &PgRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        user_id: UserId(column(row, "user_id")?),
        username: column(row, "username")?,
        password_hash: column(row, "password_hash")?,
        display_name: column(row, "display_name")?,
        status_message: column(row, "status_message")?,
        avatar_url: column(row, "avatar_url")?,
        avatar_media_id: column::<Option<String>>(row, "avatar_media_id")?.map(MediaId),
        push_previews: column(row, "push_previews")?,
        last_seen_privacy: {
            let name: String = column(row, "last_seen_privacy")?;
            LastSeenPrivacy::parse(&name)
                .ok_or_else(|| unknown("user", "last_seen_privacy", &name))?
        },
        last_seen_at: column::<Option<i64>>(row, "last_seen_at")?.map(Timestamp),
        created_at: Timestamp(column(row, "created_at")?),
        deleted_at: column::<Option<i64>>(row, "deleted_at")?.map(Timestamp),
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
         AND deleted_at IS NULL ORDER BY {key} USING ~<~, user_id LIMIT $2"
    )
}

pub(crate) const CONVERSATION_COLUMNS: &str = "c.conversation_id, c.kind, c.name, c.description, \
     c.created_at, c.last_seq, c.last_activity_at, c.member_count, c.members_version, \
     c.disappearing_seconds, c.avatar_media_id";

/// The condition that leaves out expired messages of the table aliased `table` (`""` for
/// none), by the database's clock: every read of messages carries it, so they vanish at
/// once, not when the purger gets to them.
pub(crate) fn unexpired_sql(table: &str) -> String {
    let dot = if table.is_empty() { "" } else { "." };
    format!(
        "({table}{dot}expires_at IS NULL OR \
         {table}{dot}expires_at > (extract(epoch FROM clock_timestamp()) * 1000)::bigint)"
    )
}

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
        disappearing_seconds: u32::try_from(column::<i32>(row, "disappearing_seconds")?)
            .unwrap_or(0),
        avatar_media_id: column::<Option<String>>(row, "avatar_media_id")?.map(MediaId),
    })
}

/// The columns of a message, in the order they are read: as inserted, plus its current
/// state (`edited_at`, `deleted`). `search_terms` is the index's, never read back.
const MESSAGE_FIELDS: [&str; 18] = [
    "conversation_id",
    "seq",
    "message_id",
    "sender_id",
    "sender_device_id",
    "client_msg_id",
    "content",
    "content_type",
    "reply_to_seq",
    "system",
    "created_at",
    "target_seq",
    "mentions",
    "forwarded",
    "edited_at",
    "deleted",
    "expires_at",
    "attachments",
];

/// The select list of a message of the table aliased `table` (`""` for none), each column
/// labelled with `label` before its name (`l_seq`, … for a joined last message). `system`
/// and `mentions` (JSONB) are read back as their text.
pub(crate) fn message_columns(table: &str, label: &str) -> String {
    let dot = if table.is_empty() { "" } else { "." };
    MESSAGE_FIELDS
        .iter()
        .map(|name| {
            let cast = if matches!(*name, "system" | "mentions" | "attachments") {
                "::text"
            } else {
                ""
            };
            format!("{table}{dot}{name}{cast} AS {label}{name}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The change entries' content types as an SQL list (`'reaction', 'edit', 'delete'`):
/// constants of the protocol, quoted here once.
pub(crate) fn change_types_sql() -> String {
    ContentType::CHANGES
        .iter()
        .map(|kind| format!("'{}'", kind.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A message's attachments as stored: a JSON array of media objects, or NULL for none.
pub(crate) fn attachments_column(attachments: &[parley_proto::Media]) -> Option<String> {
    (!attachments.is_empty())
        .then(|| serde_json::to_string(attachments).expect("media objects serialize"))
}

/// A message's mentions as stored: a JSON array of user ids, or NULL for none.
pub(crate) fn mentions_column(mentions: &[UserId]) -> Option<String> {
    (!mentions.is_empty()).then(|| serde_json::to_string(mentions).expect("user ids serialize"))
}

/// Whether a message is indexed for search: ordinary text, not deleted.
pub(crate) fn is_indexed(message: &Message) -> bool {
    message.content_type == ContentType::TEXT && !message.deleted
}

/// The search terms of a text (`parley_core::search::index_terms`), space-separated:
/// terms are letters and digits only, so the store splits them back with
/// `string_to_array(…, ' ')` and makes them a `tsvector` with `array_to_tsvector`, which
/// takes each as it is (no parser, no dictionary). A text without words gives `""`, the
/// empty `tsvector`.
pub(crate) fn index_document(content: &str) -> String {
    parley_core::search::index_terms(content).join(" ")
}

/// The SQL that makes a `tsvector` of an [`index_document`] (NULL stays NULL).
pub(crate) fn terms_sql(document: &str) -> String {
    format!("array_to_tsvector(string_to_array({document}, ' '))")
}

/// The `tsquery` of search terms: each a quoted prefix, all of them ANDed (terms are
/// letters and digits only, so no quote or backslash can be in one).
pub(crate) fn prefix_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|term| format!("'{term}':*"))
        .collect::<Vec<_>>()
        .join(" & ")
}

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
    let attachments = match column::<Option<&str>>(row, &get("attachments"))? {
        Some(text) => {
            serde_json::from_str(text).map_err(|error| StoreError::corrupt("attachments", error))?
        }
        None => Vec::new(),
    };
    let mentions = match column::<Option<&str>>(row, &get("mentions"))? {
        Some(text) => {
            serde_json::from_str(text).map_err(|error| StoreError::corrupt("mentions", error))?
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
        forwarded: column(row, &get("forwarded"))?,
        edited_at: column::<Option<i64>>(row, &get("edited_at"))?.map(Timestamp),
        deleted: column(row, &get("deleted"))?,
        reactions: Vec::new(),
        hidden: false,
        expires_at: column::<Option<i64>>(row, &get("expires_at"))?.map(Timestamp),
        attachments,
    })
}

/// The summary query followed by `rest` (its `WHERE` and order), with the member row as
/// `m`. `unread_count` counts what the core's `Counting` lets count, given as parameters,
/// never written here: `$1` the content types that do not count (`text[]`), `$2` whether
/// the member's own messages do not (`boolean`). Bind them with [`bind_counting`] first.
/// `unread_mentions` counts the member's mention rows after their read pointer (a
/// deleted or hidden message has none); both count only after the member's
/// `cleared_seq`. The preview is the newest entry after `cleared_seq` that is not a
/// change and not hidden by the member: a short backwards walk of the conversation's
/// primary key from its end.
pub(crate) fn summary_select(rest: &str) -> String {
    format!(
        "SELECT c.conversation_id, c.kind, c.name, c.description, c.created_at, c.last_seq, \
         c.last_activity_at, c.member_count, c.members_version, c.disappearing_seconds, \
         c.avatar_media_id, m.read_seq, m.muted_until, \
         m.archived_at, m.pinned_at, m.marked_unread, m.cleared_seq, \
         (SELECT COUNT(*) FROM messages u WHERE u.conversation_id = c.conversation_id \
            AND u.seq > GREATEST(m.read_seq, m.cleared_seq) \
            AND u.content_type <> ALL($1::text[]) \
            AND NOT ($2::boolean AND u.sender_id = m.user_id)) AS unread_count, \
         (SELECT COUNT(*) FROM mentions n WHERE n.user_id = m.user_id \
            AND n.conversation_id = c.conversation_id \
            AND n.seq > GREATEST(m.read_seq, m.cleared_seq)) AS unread_mentions, \
         l.* \
         FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id \
         LEFT JOIN LATERAL (SELECT {last} FROM messages x \
            WHERE x.conversation_id = c.conversation_id AND x.seq > m.cleared_seq \
            AND x.content_type NOT IN ({changes}) \
            AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = m.user_id \
                AND h.conversation_id = x.conversation_id AND h.seq = x.seq) \
            ORDER BY x.seq DESC LIMIT 1) l ON true {rest}",
        last = message_columns("x", "l_"),
        changes = change_types_sql(),
    )
}

/// Binds a [`Counting`] as `$1` and `$2` of a query built on [`summary_select`].
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
