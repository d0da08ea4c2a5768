//! Per-conversation cursors and message dedup: what this device has seen.
//!
//! For every conversation the tracker keeps the highest *contiguous* `seq` seen (the
//! cursor sent in `sync` and in `ack`) plus the few `seq`s seen above it out of order.
//! A message is new exactly once per `(conversation_id, seq)`, however live delivery and
//! `sync` overlap. It does no I/O; `Connection` feeds it and reads cursors back.

use parley_proto::{frames::Cursors, ConversationId};
use std::collections::{BTreeSet, HashMap};

/// What the tracker knows about one conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ConversationCursor {
    /// Every `seq` up to and including this one has been seen.
    contiguous: i64,
    /// `seq`s seen above `contiguous + 1`, waiting for the gap below them to fill.
    seen_above: BTreeSet<i64>,
    /// The highest `seq` already acknowledged to the server (`ack` frame).
    acknowledged: i64,
}

impl ConversationCursor {
    fn starting_at(contiguous: i64) -> Self {
        Self {
            contiguous,
            seen_above: BTreeSet::new(),
            acknowledged: contiguous,
        }
    }

    /// Records `seq`; `true` when it had not been seen before.
    fn observe(&mut self, seq: i64) -> bool {
        if seq <= self.contiguous {
            return false;
        }
        if seq == self.contiguous + 1 {
            self.contiguous = seq;
            self.absorb_seen_above();
            return true;
        }
        self.seen_above.insert(seq)
    }

    /// Everything up to `cursor` is known to have been delivered.
    fn advance_to(&mut self, cursor: i64) {
        if cursor > self.contiguous {
            self.contiguous = cursor;
            self.seen_above = self.seen_above.split_off(&(cursor + 1));
            self.absorb_seen_above();
        }
    }

    fn absorb_seen_above(&mut self) {
        while self.seen_above.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
    }
}

/// Outcome of [`CursorTracker::observe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// The first time this `(conversation_id, seq)` was seen: hand it to the app.
    New,
    /// Seen before (live delivery and `sync` overlapped, or a resend): drop it.
    Duplicate,
}

/// Cursors and dedup state for every conversation this device has seen.
#[derive(Clone, Debug, Default)]
pub struct CursorTracker {
    conversations: HashMap<ConversationId, ConversationCursor>,
}

impl CursorTracker {
    /// An empty tracker: every conversation starts at the first message seen in it.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker resuming from cursors saved earlier (e.g. by an app that persists them).
    pub fn from_cursors(cursors: &Cursors) -> Self {
        let conversations = cursors
            .iter()
            .map(|(conversation_id, &seq)| {
                (
                    conversation_id.clone(),
                    ConversationCursor::starting_at(seq),
                )
            })
            .collect();
        Self { conversations }
    }

    /// Records a received message. A conversation the tracker has never heard of starts
    /// just below its first message: earlier history is the app's to fetch over REST.
    pub fn observe(&mut self, conversation_id: &ConversationId, seq: i64) -> Observation {
        let cursor = match self.conversations.get_mut(conversation_id) {
            Some(cursor) => cursor,
            None => self
                .conversations
                .entry(conversation_id.clone())
                .or_insert_with(|| ConversationCursor::starting_at(seq - 1)),
        };
        if cursor.observe(seq) {
            Observation::New
        } else {
            Observation::Duplicate
        }
    }

    /// Whether `(conversation_id, seq)` has been seen.
    pub fn has_seen(&self, conversation_id: &ConversationId, seq: i64) -> bool {
        self.conversations
            .get(conversation_id)
            .is_some_and(|cursor| seq <= cursor.contiguous || cursor.seen_above.contains(&seq))
    }

    /// Applies a `sync_done`: the server has sent everything up to each cursor, so the
    /// contiguous cursors move up to them (never down).
    pub fn apply_sync_done(&mut self, cursors: &Cursors) {
        for (conversation_id, &last_seq) in cursors {
            match self.conversations.get_mut(conversation_id) {
                Some(cursor) => cursor.advance_to(last_seq),
                None => {
                    self.conversations.insert(
                        conversation_id.clone(),
                        ConversationCursor::starting_at(last_seq),
                    );
                }
            }
        }
    }

    /// Nothing up to `seq` of a conversation this device knows will come (the user deleted
    /// the chat for themselves up to there): its cursor moves up to it, never down.
    pub fn skip_to(&mut self, conversation_id: &ConversationId, seq: i64) {
        if let Some(cursor) = self.conversations.get_mut(conversation_id) {
            cursor.advance_to(seq);
        }
    }

    /// The contiguous cursor of one conversation, if it is known.
    pub fn cursor(&self, conversation_id: &ConversationId) -> Option<i64> {
        self.conversations
            .get(conversation_id)
            .map(|cursor| cursor.contiguous)
    }

    /// The contiguous cursor of every known conversation, as sent in `sync`.
    pub fn cursors(&self) -> Cursors {
        self.conversations
            .iter()
            .map(|(conversation_id, cursor)| (conversation_id.clone(), cursor.contiguous))
            .collect()
    }

    /// Conversations whose contiguous cursor is above what was last acknowledged, with
    /// the `seq` to acknowledge; marks them acknowledged.
    pub fn take_pending_acks(&mut self) -> Vec<(ConversationId, i64)> {
        let mut pending_acks = Vec::new();
        for (conversation_id, cursor) in &mut self.conversations {
            if cursor.contiguous > cursor.acknowledged {
                cursor.acknowledged = cursor.contiguous;
                pending_acks.push((conversation_id.clone(), cursor.contiguous));
            }
        }
        pending_acks
    }

    /// Marks everything up to the current cursor as acknowledged without sending an
    /// `ack` (used for `seq`s the server already knows we have, e.g. our own sends).
    pub fn mark_acknowledged(&mut self, conversation_id: &ConversationId) {
        if let Some(cursor) = self.conversations.get_mut(conversation_id) {
            cursor.acknowledged = cursor.acknowledged.max(cursor.contiguous);
        }
    }

    /// Drops a conversation (the user left or was removed).
    pub fn forget(&mut self, conversation_id: &ConversationId) {
        self.conversations.remove(conversation_id);
    }

    /// How many `seq`s are held above a gap, over all conversations (memory watch).
    pub fn out_of_order_len(&self) -> usize {
        self.conversations
            .values()
            .map(|cursor| cursor.seen_above.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation(name: &str) -> ConversationId {
        ConversationId::from(name)
    }

    /// Live delivery and a later `sync` replaying the same messages: each `seq` is new
    /// exactly once, and the cursor ends at the highest contiguous `seq`.
    #[test]
    fn live_and_sync_overlap_deliver_each_message_once() {
        let mut tracker = CursorTracker::from_cursors(&Cursors::from([(conversation("c"), 0)]));
        let live_then_sync = [1, 2, 3, 1, 2, 3, 4];
        let new_count = live_then_sync
            .iter()
            .filter(|&&seq| tracker.observe(&conversation("c"), seq) == Observation::New)
            .count();
        assert_eq!(new_count, 4);
        assert_eq!(tracker.cursor(&conversation("c")), Some(4));
    }

    /// A gap holds the cursor back until it is filled, and out-of-order `seq`s above the
    /// gap are still deduplicated.
    #[test]
    fn cursor_is_the_highest_contiguous_seq() {
        let mut tracker = CursorTracker::from_cursors(&Cursors::from([(conversation("c"), 10)]));
        assert_eq!(tracker.observe(&conversation("c"), 11), Observation::New);
        assert_eq!(tracker.observe(&conversation("c"), 14), Observation::New);
        assert_eq!(tracker.observe(&conversation("c"), 13), Observation::New);
        assert_eq!(
            tracker.observe(&conversation("c"), 14),
            Observation::Duplicate
        );
        assert_eq!(tracker.cursor(&conversation("c")), Some(11));
        assert_eq!(tracker.out_of_order_len(), 2);
        assert!(tracker.has_seen(&conversation("c"), 13));
        assert!(!tracker.has_seen(&conversation("c"), 12));
        assert_eq!(tracker.observe(&conversation("c"), 12), Observation::New);
        assert_eq!(tracker.cursor(&conversation("c")), Some(14));
        assert_eq!(tracker.out_of_order_len(), 0);
        assert_eq!(
            tracker.observe(&conversation("c"), 9),
            Observation::Duplicate
        );
    }

    /// A chat cleared up to a `seq` above a gap: the gap is no longer waited on, what was
    /// seen above it joins the cursor, and the cursor never moves back.
    #[test]
    fn a_clear_skips_the_gap_below_it() {
        let mut tracker = CursorTracker::from_cursors(&Cursors::from([(conversation("c"), 3)]));
        assert_eq!(tracker.observe(&conversation("c"), 9), Observation::New);
        tracker.skip_to(&conversation("c"), 8);
        assert_eq!(tracker.cursor(&conversation("c")), Some(9));
        tracker.skip_to(&conversation("c"), 5);
        assert_eq!(tracker.cursor(&conversation("c")), Some(9));
        tracker.skip_to(&conversation("unknown"), 5);
        assert_eq!(tracker.cursor(&conversation("unknown")), None);
    }

    /// An unknown conversation starts just below its first message, so the next `sync`
    /// does not ask for its whole history.
    #[test]
    fn unknown_conversation_starts_at_first_message() {
        let mut tracker = CursorTracker::new();
        assert_eq!(tracker.observe(&conversation("new"), 501), Observation::New);
        assert_eq!(tracker.cursor(&conversation("new")), Some(501));
        assert_eq!(
            tracker.observe(&conversation("new"), 501),
            Observation::Duplicate
        );
    }

    /// `sync_done` moves cursors up (dropping held `seq`s it covers), never down, and
    /// introduces conversations the tracker did not know.
    #[test]
    fn sync_done_advances_but_never_rewinds() {
        let mut tracker = CursorTracker::from_cursors(&Cursors::from([
            (conversation("a"), 5),
            (conversation("b"), 9),
        ]));
        tracker.observe(&conversation("a"), 8);
        tracker.observe(&conversation("a"), 12);
        tracker.apply_sync_done(&Cursors::from([
            (conversation("a"), 10),
            (conversation("b"), 3),
            (conversation("c"), 7),
        ]));
        assert_eq!(tracker.cursor(&conversation("a")), Some(10));
        assert_eq!(tracker.cursor(&conversation("b")), Some(9));
        assert_eq!(tracker.cursor(&conversation("c")), Some(7));
        assert_eq!(tracker.out_of_order_len(), 1);
        assert_eq!(tracker.observe(&conversation("a"), 11), Observation::New);
        assert_eq!(tracker.cursor(&conversation("a")), Some(12));
        assert_eq!(
            tracker.observe(&conversation("c"), 7),
            Observation::Duplicate
        );
    }

    /// Acks are batched: one `(conversation, highest contiguous seq)` per conversation
    /// that advanced since the last batch, and nothing when nothing advanced.
    #[test]
    fn pending_acks_carry_the_highest_contiguous_seq_once() {
        let mut tracker = CursorTracker::from_cursors(&Cursors::from([
            (conversation("a"), 0),
            (conversation("b"), 0),
        ]));
        for seq in 1..=5 {
            tracker.observe(&conversation("a"), seq);
        }
        tracker.observe(&conversation("b"), 2);
        let mut pending_acks = tracker.take_pending_acks();
        pending_acks.sort();
        assert_eq!(pending_acks, vec![(conversation("a"), 5)]);
        assert!(tracker.take_pending_acks().is_empty());
        tracker.observe(&conversation("b"), 1);
        assert_eq!(tracker.take_pending_acks(), vec![(conversation("b"), 2)]);
        tracker.observe(&conversation("a"), 6);
        tracker.mark_acknowledged(&conversation("a"));
        assert!(tracker.take_pending_acks().is_empty());
    }

    /// The cursors handed to `sync` are exactly the contiguous ones.
    #[test]
    fn cursors_for_sync() {
        let mut tracker = CursorTracker::from_cursors(&Cursors::from([(conversation("a"), 2)]));
        tracker.observe(&conversation("a"), 3);
        tracker.observe(&conversation("a"), 5);
        tracker.forget(&conversation("gone"));
        assert_eq!(tracker.cursors(), Cursors::from([(conversation("a"), 3)]));
        tracker.forget(&conversation("a"));
        assert!(tracker.cursors().is_empty());
    }
}
