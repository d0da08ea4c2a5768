//! How the CLI shows things to people: one line per message, conversation or user.
//!
//! Pure formatting over proto types and a name book (user id → display name), so the
//! look is unit-tested and every command prints the same way. Times are shown in the
//! local zone. `--json` output does not come through here: it prints the proto types.

use chrono::{Local, TimeZone};
use parley_sdk::proto::{
    Conversation, ConversationType, Member, Message, PublicProfile, Timestamp,
};
use std::collections::HashMap;

/// Display names of the people in a conversation, by user id.
#[derive(Clone, Debug, Default)]
pub struct NameBook {
    names: HashMap<String, String>,
}

impl NameBook {
    /// From a conversation's member list (username preferred, else display name, else id).
    pub fn from_members(members: &[Member]) -> Self {
        let names = members
            .iter()
            .map(|member| {
                let name = member
                    .username
                    .clone()
                    .or_else(|| member.display_name.clone())
                    .unwrap_or_else(|| member.user_id.to_string());
                (member.user_id.to_string(), name)
            })
            .collect();
        Self { names }
    }

    /// The name to show for `user_id` (the id itself when unknown).
    pub fn name<'a>(&'a self, user_id: &'a str) -> &'a str {
        self.names.get(user_id).map_or(user_id, String::as_str)
    }
}

/// `HH:MM:SS` in the local time zone.
pub fn clock_time(timestamp: Timestamp) -> String {
    match Local.timestamp_millis_opt(timestamp.millis()).single() {
        Some(local) => local.format("%H:%M:%S").to_string(),
        None => timestamp.to_rfc3339(),
    }
}

/// `#12 10:00:01 alice: Hello! (edited) [👍 2, ❤️ 1]` (system messages and changes in
/// brackets, deleted and forwarded messages said so).
/// `[photo 4000×3000 m_…]`, `[file report.pdf 2.1 MB m_…]`: what `parley download`
/// takes.
fn attachment_label(media: &parley_sdk::proto::Media) -> String {
    let kind = media.content_type.split('/').next().unwrap_or_default();
    let what = match (kind, media.width, media.height) {
        ("image", Some(width), Some(height)) => format!("photo {width}×{height}"),
        ("video", ..) => "video".to_owned(),
        ("audio", ..) => "audio".to_owned(),
        _ => format!("file {}", media.filename.as_deref().unwrap_or("")),
    };
    let length = media
        .duration_ms
        .map(|ms| format!(" {}:{:02}", ms / 60_000, ms / 1000 % 60))
        .unwrap_or_default();
    format!(
        "[{what}{length} {} {}]",
        human_size(media.size),
        media.media_id
    )
}

/// `512 B`, `9.8 KB`, `2.1 MB` (powers of 1000, as file managers show them).
fn human_size(bytes: u64) -> String {
    match bytes {
        0..=999 => format!("{bytes} B"),
        1_000..=999_999 => format!("{:.1} KB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

pub fn message_line(message: &Message, names: &NameBook) -> String {
    let time = clock_time(message.created_at);
    let sender = names.name(message.sender_id.as_str());
    if message.content_type.is_system() {
        return format!("#{} {time} [{}]", message.seq, message.content);
    }
    if message.is_change() {
        let target = message.target_seq.unwrap_or_default();
        let what = match message.content_type.as_str() {
            "reaction" if message.content.is_empty() => {
                format!("removed their reaction to #{target}")
            }
            "reaction" => format!("reacted {} to #{target}", message.content),
            "edit" => format!("edited #{target}"),
            _ => format!("deleted #{target}"),
        };
        return format!("#{} {time} [{sender} {what}]", message.seq);
    }
    if message.hidden {
        return format!("#{} {time} [hidden by you]", message.seq);
    }
    if message.deleted {
        return format!("#{} {time} {sender}: [deleted]", message.seq);
    }
    let mut line = format!("#{} {time} {sender}: ", message.seq);
    if message.forwarded {
        line.push_str("[forwarded] ");
    }
    line.push_str(&message.content);
    for media in &message.attachments {
        line.push_str(&format!(" {}", attachment_label(media)));
    }
    if message.edited_at.is_some() {
        line.push_str(" (edited)");
    }
    if !message.reactions.is_empty() {
        let counts: Vec<String> = message
            .reactions
            .iter()
            .map(|reaction| format!("{} {}", reaction.emoji, reaction.count))
            .collect();
        line.push_str(&format!(" [{}]", counts.join(", ")));
    }
    line
}

/// The title of a conversation: the group's name, or for a direct chat the other member.
pub fn conversation_title(conversation: &Conversation, own_user_id: &str) -> String {
    if let Some(name) = &conversation.name {
        return name.clone();
    }
    let other_member = conversation.members.as_ref().and_then(|members| {
        members
            .iter()
            .find(|member| member.user_id.as_str() != own_user_id)
    });
    match other_member {
        Some(member) => member
            .username
            .clone()
            .or_else(|| member.display_name.clone())
            .unwrap_or_else(|| member.user_id.to_string()),
        None => "(direct)".into(),
    }
}

/// One line of `parley conversations`.
pub fn conversation_line(conversation: &Conversation, own_user_id: &str) -> String {
    let kind = match conversation.kind {
        ConversationType::Direct => "direct",
        ConversationType::Group => "group ",
    };
    let mut unread = if conversation.unread_count > 0 {
        format!("  {} unread", conversation.unread_count)
    } else {
        String::new()
    };
    if conversation.unread_mentions > 0 {
        unread.push_str(&format!("  @{}", conversation.unread_mentions));
    }
    if conversation.marked_unread == Some(true) {
        unread.push_str("  [marked unread]");
    }
    let mut flags = String::new();
    if conversation.pinned == Some(true) {
        flags.push_str("  [pinned]");
    }
    if matches!(conversation.muted_until, Some(Some(_))) {
        flags.push_str("  [muted]");
    }
    if conversation.archived == Some(true) {
        flags.push_str("  [archived]");
    }
    let preview = conversation
        .last_message
        .as_ref()
        .map(|message| {
            if message.deleted {
                "  [deleted]".to_owned()
            } else {
                format!("  “{}”", shorten(&message.content, 40))
            }
        })
        .unwrap_or_default();
    format!(
        "{}  {kind}  {}  ({} members, last #{}){flags}{unread}{preview}",
        conversation.conversation_id,
        conversation_title(conversation, own_user_id),
        conversation.member_count,
        conversation.last_seq,
    )
}

/// One line of `parley users`.
pub fn user_line(profile: &PublicProfile) -> String {
    let status = profile
        .status_message
        .as_deref()
        .map(|status| format!("  — {status}"))
        .unwrap_or_default();
    format!(
        "{}  {} ({}){status}",
        profile.user_id, profile.username, profile.display_name
    )
}

/// At most `limit` characters, with an ellipsis when cut; newlines flattened.
pub fn shorten(text: &str, limit: usize) -> String {
    let flat: String = text
        .chars()
        .map(|character| if character == '\n' { ' ' } else { character })
        .collect();
    if flat.chars().count() <= limit {
        return flat;
    }
    let mut cut: String = flat.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_sdk::proto::{ContentType, ConversationId, DeviceId, MessageId, Role, UserId};

    fn member(user_id: &str, username: &str) -> Member {
        Member {
            user_id: UserId::from(user_id),
            role: Role::Member,
            joined_at: Timestamp(0),
            username: Some(username.into()),
            display_name: None,
        }
    }

    fn message(seq: i64, sender: &str, content: &str, content_type: ContentType) -> Message {
        Message {
            message_id: MessageId::from("m"),
            conversation_id: ConversationId::from("c_1"),
            seq,
            sender_id: UserId::from(sender),
            sender_device_id: DeviceId::from("d"),
            client_msg_id: "x".into(),
            content: content.into(),
            content_type,
            reply_to_seq: None,
            created_at: Timestamp(0),
            system: None,
            target_seq: None,
            mentions: Vec::new(),
            forwarded: false,
            attachments: Vec::new(),
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            hidden: false,
            expires_at: None,
        }
    }

    /// Messages show seq, sender name (or id when unknown) and content.
    #[test]
    fn message_lines_use_names() {
        let names = NameBook::from_members(&[member("u_1", "alice")]);
        let line = message_line(&message(3, "u_1", "hi", ContentType::TEXT), &names);
        assert!(line.starts_with("#3 "), "{line}");
        assert!(line.ends_with(" alice: hi"), "{line}");
        let unknown = message_line(&message(4, "u_9", "yo", ContentType::TEXT), &names);
        assert!(unknown.ends_with(" u_9: yo"), "{unknown}");
        let system = message_line(
            &message(1, "u_1", "alice created the group", ContentType::SYSTEM),
            &names,
        );
        assert!(system.ends_with("[alice created the group]"), "{system}");
    }

    /// A direct chat is titled by the other member.
    #[test]
    fn direct_conversations_are_titled_by_the_other_member() {
        let conversation = Conversation {
            conversation_id: ConversationId::from("c_1"),
            kind: ConversationType::Direct,
            name: None,
            description: None,
            avatar_media_id: None,
            members: Some(vec![member("u_1", "alice"), member("u_2", "bob")]),
            member_count: 2,
            created_at: Timestamp(0),
            last_activity_at: Timestamp(0),
            last_seq: 5,
            last_message: Some(Box::new(message(
                5,
                "u_2",
                "see you\ntomorrow",
                ContentType::TEXT,
            ))),
            unread_count: 2,
            last_read_seq: 3,
            muted_until: Some(None),
            archived: Some(false),
            pinned: Some(false),
            pinned_at: None,
            marked_unread: Some(false),
            unread_mentions: 0,
            disappearing_seconds: 0,
            cleared_seq: Some(0),
        };
        assert_eq!(conversation_title(&conversation, "u_1"), "bob");
        assert_eq!(conversation_title(&conversation, "u_2"), "alice");
        let line = conversation_line(&conversation, "u_1");
        assert!(line.contains("bob"), "{line}");
        assert!(line.contains("2 unread"), "{line}");
        assert!(line.contains("“see you tomorrow”"), "{line}");
    }

    #[test]
    fn shorten_cuts_on_characters() {
        assert_eq!(shorten("héllo", 10), "héllo");
        assert_eq!(shorten("héllo wörld", 6), "héllo…");
    }
}
