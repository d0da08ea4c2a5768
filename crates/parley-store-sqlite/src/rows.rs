//! Rows to records: the column lists each query selects and the functions that read them
//! back, with the prefix-mapped joined last message and the user-search queries.

use super::*;

pub(crate) const USER_COLUMNS: &str =
    "user_id, username, password_hash, display_name, status_message, \
     avatar_url, last_seen_visible, last_seen_at, created_at";

pub(crate) fn user_from_row(row: &SqliteRow) -> UserRecord {
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
         ORDER BY {order} LIMIT ?2"
    )
}

pub(crate) const CONVERSATION_COLUMNS: &str = "c.conversation_id, c.kind, c.name, c.description, \
     c.created_at, c.last_seq, c.last_activity_at, c.member_count, c.members_version";

pub(crate) fn conversation_from_row(row: &SqliteRow) -> ConversationRecord {
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

pub(crate) const MESSAGE_COLUMNS: &str =
    "conversation_id, seq, message_id, sender_id, sender_device_id, \
     client_msg_id, content, content_type, reply_to_seq, system, created_at";

pub(crate) fn message_from_row(row: &SqliteRow) -> Message {
    prefixed_message_from_row(row, "")
}

/// A message whose columns carry `prefix` (`l_seq`, … for a joined last message).
pub(crate) fn prefixed_message_from_row(row: &SqliteRow, prefix: &str) -> Message {
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
        content_type: ContentType::from(row.get::<String, _>(column("content_type").as_ref())),
        reply_to_seq: row.get(column("reply_to_seq").as_ref()),
        created_at: Timestamp(row.get(column("created_at").as_ref())),
        system: row
            .get::<Option<&str>, _>(column("system").as_ref())
            .and_then(|text| serde_json::from_str(text).ok()),
    }
}

pub(crate) const SUMMARY_SELECT: &str = "SELECT c.conversation_id, c.kind, c.name, c.description, \
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

pub(crate) fn summary_from_row(row: &SqliteRow) -> ConversationSummary {
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
