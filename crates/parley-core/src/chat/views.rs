//! Records to wire views: profiles, conversations, list cursors, the text of system
//! messages.

use super::*;

/// A list cursor: `{last_activity_at}~{conversation_id}` after an unpinned conversation,
/// `p{pinned_at}~{last_activity_at}~{conversation_id}` after a pinned one.
pub(super) fn parse_list_cursor(text: &str) -> Result<ListCursor> {
    let invalid = || Error::Invalid("cursor is not one this server gave".into());
    let millis = |text: &str| text.parse().map(Timestamp).map_err(|_| invalid());
    let (pinned_at, rest) = match text.strip_prefix('p') {
        Some(rest) => {
            let (pinned_at, rest) = rest.split_once('~').ok_or_else(invalid)?;
            (Some(millis(pinned_at)?), rest)
        }
        None => (None, text),
    };
    let (last_activity_at, conversation_id) = rest.split_once('~').ok_or_else(invalid)?;
    Ok(ListCursor {
        pinned_at,
        last_activity_at: millis(last_activity_at)?,
        conversation_id: ConversationId(conversation_id.to_owned()),
    })
}

/// The cursor after `summary` in the list (see [`parse_list_cursor`]).
pub(super) fn list_cursor(summary: &ConversationSummary) -> String {
    let conversation = &summary.conversation;
    let rest = format!(
        "{}~{}",
        conversation.last_activity_at.millis(),
        conversation.conversation_id
    );
    match summary.pinned_at {
        Some(pinned_at) => format!("p{}~{rest}", pinned_at.millis()),
        None => rest,
    }
}

pub(super) fn own_profile(user: UserRecord) -> Profile {
    Profile {
        user_id: user.user_id,
        username: user.username,
        display_name: user.display_name,
        status_message: user.status_message,
        avatar_url: user.avatar_url,
        avatar_media_id: user.avatar_media_id,
        last_seen_visible: user.last_seen_privacy == parley_proto::LastSeenPrivacy::Everyone,
        last_seen_privacy: user.last_seen_privacy,
        push_previews: user.push_previews,
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
        avatar_media_id: user.avatar_media_id,
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
        avatar_media_id: record.avatar_media_id,
        member_count: members
            .as_ref()
            .map(|members| members.len() as u32)
            .unwrap_or(record.member_count),
        members,
        created_at: record.created_at,
        last_activity_at: record.last_activity_at,
        last_seq: record.last_seq,
        last_message: last_message.map(Box::new),
        unread_count: 0,
        last_read_seq: 0,
        muted_until: None,
        archived: None,
        pinned: None,
        pinned_at: None,
        marked_unread: None,
        unread_mentions: 0,
        disappearing_seconds: record.disappearing_seconds,
        cleared_seq: None,
    }
}

/// A conversation as one member sees it, with their unread counts and their own settings
/// as of now.
pub(super) fn summary_to_conversation(summary: ConversationSummary) -> Conversation {
    let settings = settings::settings_view(&summary, Timestamp::now());
    let summary_pinned_at = summary.pinned_at;
    let mut conversation = conversation_view(summary.conversation, None, summary.last_message);
    conversation.unread_count = summary.unread_count;
    conversation.last_read_seq = summary.read_seq;
    conversation.muted_until = Some(settings.muted_until);
    conversation.archived = Some(settings.archived);
    conversation.pinned = Some(summary_pinned_at.is_some());
    conversation.pinned_at = summary_pinned_at;
    conversation.marked_unread = Some(settings.marked_unread);
    conversation.unread_mentions = summary.unread_mentions;
    conversation.cleared_seq = Some(summary.cleared_seq);
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
        SystemEvent::AvatarChanged {
            avatar_media_id: Some(_),
            ..
        } => "changed the group picture".to_owned(),
        SystemEvent::AvatarChanged { .. } => "removed the group picture".to_owned(),
        SystemEvent::DisappearingChanged { seconds: 0, .. } => {
            "turned off disappearing messages".to_owned()
        }
        SystemEvent::DisappearingChanged { seconds, .. } => {
            format!(
                "turned on disappearing messages: {}",
                rules::disappearing_label(*seconds)
            )
        }
    }
}
