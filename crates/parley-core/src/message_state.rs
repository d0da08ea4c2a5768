//! A message's current state as one reader sees it, assembled from what a store read:
//! shared by every store so their history reads agree.

use parley_proto::{Message, ReactionCount, ReactionUsers, UserId};
use std::collections::HashMap;

/// Messages in their current state for one reader: reaction counts `(target_seq, emoji,
/// count, me)` in order, and the `seq`s the reader hid emptied and flagged.
pub fn with_state(
    mut messages: Vec<Message>,
    reactions: impl IntoIterator<Item = (i64, String, i64, bool)>,
    hidden: &[i64],
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
            let message = &mut messages[index];
            message.hidden = true;
            message.content.clear();
            message.mentions.clear();
            message.reactions.clear();
            message.reply_to_seq = None;
            message.system = None;
        }
    }
    messages
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
