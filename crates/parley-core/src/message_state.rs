//! A message's current state as one reader sees it, assembled from what a store read:
//! shared by every store so their history reads agree.

use parley_proto::{Message, ReactionCount, ReactionUsers, Timestamp, UserId};
use std::collections::HashMap;

/// Messages in their current state for one reader at `now`: reaction counts
/// `(target_seq, emoji, count, me)` in order, and the `seq`s the reader hid and the
/// messages expired by `now` emptied and flagged [`hidden`](hide).
pub fn with_state(
    mut messages: Vec<Message>,
    reactions: impl IntoIterator<Item = (i64, String, i64, bool)>,
    hidden: &[i64],
    now: Timestamp,
) -> Vec<Message> {
    let mut by_seq: HashMap<i64, usize> = HashMap::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        by_seq.insert(message.seq, index);
    }
    for (seq, emoji, count, me) in reactions {
        if let Some(&index) = by_seq.get(&seq) {
            messages[index].reactions.push(ReactionCount {
                emoji,
                count: u32::try_from(count).unwrap_or(u32::MAX),
                me,
            });
        }
    }
    for seq in hidden {
        if let Some(&index) = by_seq.get(seq) {
            hide(&mut messages[index]);
        }
    }
    for message in &mut messages {
        hide_if_expired(message, now);
    }
    messages
}

/// Empties a message and flags it hidden: it keeps its `seq` (no gap) and shows nothing.
pub fn hide(message: &mut Message) {
    message.hidden = true;
    message.content.clear();
    message.mentions.clear();
    message.attachments.clear();
    message.reactions.clear();
    message.reply_to_seq = None;
    message.system = None;
}

/// Change entries whose target the viewer deleted with the chat (it is at or below their
/// `cleared_seq`) read as hidden: the target is not theirs any more, and an edit entry
/// would carry its text back. They keep their `seq` (no gap).
pub fn hide_changes_to_cleared(messages: &mut [Message], cleared_seq: i64) {
    for message in messages {
        if message
            .target_seq
            .is_some_and(|target_seq| target_seq <= cleared_seq)
        {
            hide(message);
        }
    }
}

/// A message (or the change entry of one) expired at `now` reads as a hidden one for
/// everybody: its `seq` stays accounted for, nothing of it shows. (The purger empties the
/// row itself soon after.)
pub fn hide_if_expired(message: &mut Message, now: Timestamp) {
    if message
        .expires_at
        .is_some_and(|expires_at| expires_at <= now)
    {
        hide(message);
    }
}

/// `(emoji, user_id)` rows in reaction order, grouped by emoji in order of first use.
pub fn group_reactions(rows: Vec<(String, String)>) -> Vec<ReactionUsers> {
    let mut grouped: Vec<ReactionUsers> = Vec::new();
    for (emoji, user_id) in rows {
        match grouped.iter_mut().find(|entry| entry.emoji == emoji) {
            Some(entry) => entry.user_ids.push(UserId(user_id)),
            None => grouped.push(ReactionUsers {
                emoji,
                user_ids: vec![UserId(user_id)],
            }),
        }
    }
    grouped
}
