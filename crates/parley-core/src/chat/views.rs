//! Records to wire views: profiles, conversations, list cursors, the text of system
//! messages.

use super::*;

pub(super) fn parse_list_cursor(text: &str) -> Result<ListCursor> {
    let invalid = || Error::Invalid("cursor is not one this server gave".into());
    let (millis, conversation_id) = text.split_once('~').ok_or_else(invalid)?;
    Ok(ListCursor {
        last_activity_at: Timestamp(millis.parse().map_err(|_| invalid())?),
        conversation_id: ConversationId(conversation_id.to_owned()),
    })
}

pub(super) fn own_profile(user: UserRecord) -> Profile {
    Profile {
        user_id: user.user_id,
        username: user.username,
        display_name: user.display_name,
        status_message: user.status_message,
        avatar_url: user.avatar_url,
        last_seen_visible: user.last_seen_visible,
        created_at: user.created_at,
    }
}

pub(super) fn public_profile(user: UserRecord) -> PublicProfile {
    PublicProfile {
        user_id: user.user_id,
        username: user.username,
        display_name: user.display_name,
        status_message: user.status_message,
        avatar_url: user.avatar_url,
    }
}

/// A conversation without one member's state (for `conversation_updated`, which every
/// member receives alike; `unread_count` and `last_read_seq` are 0 there).
pub(super) fn conversation_view(
    record: ConversationRecord,
    members: Option<Vec<Member>>,
    last_message: Option<Message>,
) -> Conversation {
    Conversation {
        conversation_id: record.conversation_id,
        kind: record.kind,
        name: record.name,
        description: record.description,
        member_count: members
            .as_ref()
            .map(|members| members.len() as u32)
            .unwrap_or(record.member_count),
        members,
        created_at: record.created_at,
        last_activity_at: record.last_activity_at,
        last_seq: record.last_seq,
        last_message,
        unread_count: 0,
        last_read_seq: 0,
        muted_until: None,
        unread_mentions: 0,
    }
}

pub(super) fn summary_to_conversation(summary: ConversationSummary) -> Conversation {
    let mut conversation = conversation_view(summary.conversation, None, summary.last_message);
    conversation.unread_count = summary.unread_count;
    conversation.last_read_seq = summary.read_seq;
    conversation.muted_until = summary.muted_until;
    conversation.unread_mentions = summary.unread_mentions;
    conversation
}

/// The human text of a system message (clients may render `system` themselves).
pub(super) fn system_text(event: &SystemEvent) -> String {
    match event {
        SystemEvent::GroupCreated { name, .. } => format!("created the group \"{name}\""),
        SystemEvent::MembersAdded { user_ids, .. } => {
            format!("added {} member(s)", user_ids.len())
        }
        SystemEvent::MemberRemoved { .. } => "removed a member".to_owned(),
        SystemEvent::MemberLeft { .. } => "left the group".to_owned(),
        SystemEvent::RoleChanged { role, .. } => format!("made a member {}", role.as_str()),
        SystemEvent::ConversationRenamed {
            name: Some(name), ..
        } => {
            format!("renamed the group to \"{name}\"")
        }
        SystemEvent::ConversationRenamed { .. } => "changed the group description".to_owned(),
    }
}
