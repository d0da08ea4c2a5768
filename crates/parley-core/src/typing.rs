//! How often one socket's `typing` frames are relayed.
//!
//! Per conversation, at most one relayed change per [`TYPING_WINDOW`]: a repeated
//! `is_typing:true` inside the window adds nothing and is dropped; a change inside the
//! window (true → false → true …) is held and relayed when the window ends, only if it
//! still differs from what others last saw. So a client toggling 100 times a second costs
//! the others one frame a second, and the final state always arrives. Pure bookkeeping:
//! the gateway's socket task relays through `Chat::typing` and owns the timer.

use parley_proto::ConversationId;
use std::time::{Duration, Instant};

/// Least time between two relayed typing frames of one socket in one conversation.
pub const TYPING_WINDOW: Duration = Duration::from_secs(1);
/// Conversations one socket tracks; the stalest is forgotten beyond this.
const MAX_TRACKED: usize = 64;

struct Entry {
    conversation_id: ConversationId,
    /// What the others last saw from this socket, and when it was relayed.
    relayed: bool,
    relayed_at: Instant,
    /// A different state received inside the window, to relay when it ends.
    pending: Option<bool>,
}

#[derive(Default)]
pub struct TypingThrottle {
    entries: Vec<Entry>,
}

impl TypingThrottle {
    /// A `typing` frame arrived: `Some(state)` to relay now, `None` to drop or hold it.
    pub fn on_frame(
        &mut self,
        conversation_id: &ConversationId,
        is_typing: bool,
        now: Instant,
    ) -> Option<bool> {
        let Some(entry) = self
            .entries
            .iter_mut()
            .find(|entry| &entry.conversation_id == conversation_id)
        else {
            return Some(is_typing);
        };
        let window_open = now.duration_since(entry.relayed_at) < TYPING_WINDOW;
        if is_typing == entry.relayed {
            entry.pending = None;
            // `true` again after the window refreshes the others' indicator.
            return (is_typing && !window_open).then_some(true);
        }
        if window_open {
            entry.pending = Some(is_typing);
            None
        } else {
            Some(is_typing)
        }
    }

    /// Records a state the others were sent.
    pub fn relayed(&mut self, conversation_id: &ConversationId, is_typing: bool, now: Instant) {
        if let Some(entry) = self
            .entries
            .iter_mut()
            .find(|entry| &entry.conversation_id == conversation_id)
        {
            entry.relayed = is_typing;
            entry.relayed_at = now;
            entry.pending = None;
            return;
        }
        if self.entries.len() >= MAX_TRACKED {
            if let Some(stalest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, entry)| entry.relayed_at)
                .map(|(index, _)| index)
            {
                self.entries.swap_remove(stalest);
            }
        }
        self.entries.push(Entry {
            conversation_id: conversation_id.clone(),
            relayed: is_typing,
            relayed_at: now,
            pending: None,
        });
    }

    /// Forgets a conversation (the relay was refused, e.g. not a member).
    pub fn forget(&mut self, conversation_id: &ConversationId) {
        self.entries
            .retain(|entry| &entry.conversation_id != conversation_id);
    }

    /// When the next held state is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter(|entry| entry.pending.is_some())
            .map(|entry| entry.relayed_at + TYPING_WINDOW)
            .min()
    }

    /// Held states whose window has ended, to relay now.
    pub fn take_due(&mut self, now: Instant) -> Vec<(ConversationId, bool)> {
        let mut due = Vec::new();
        for entry in &mut self.entries {
            if now.duration_since(entry.relayed_at) >= TYPING_WINDOW {
                if let Some(state) = entry.pending.take() {
                    due.push((entry.conversation_id.clone(), state));
                }
            }
        }
        due
    }

    /// Conversations where the others still see this socket typing (relayed `true` less
    /// than `ttl` ago): a socket that drops announces them as stopped.
    pub fn still_typing(&self, now: Instant, ttl: Duration) -> Vec<ConversationId> {
        self.entries
            .iter()
            .filter(|entry| entry.relayed && now.duration_since(entry.relayed_at) < ttl)
            .map(|entry| entry.conversation_id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation() -> ConversationId {
        ConversationId("c_1".into())
    }

    /// Feeds frames as the socket task would, returning what was relayed.
    fn run(frames: &[(u64, bool)]) -> Vec<(u64, bool)> {
        let start = Instant::now();
        let mut throttle = TypingThrottle::default();
        let mut relayed = Vec::new();
        let mut last_ms = 0;
        for &(at_ms, is_typing) in frames {
            let now = start + Duration::from_millis(at_ms);
            for (id, state) in throttle.take_due(now) {
                let due_ms = at_ms;
                throttle.relayed(&id, state, now);
                relayed.push((due_ms, state));
            }
            if let Some(state) = throttle.on_frame(&conversation(), is_typing, now) {
                throttle.relayed(&conversation(), state, now);
                relayed.push((at_ms, state));
            }
            last_ms = at_ms;
        }
        // Let held states come due.
        let end = start + Duration::from_millis(last_ms) + TYPING_WINDOW;
        for (id, state) in throttle.take_due(end) {
            throttle.relayed(&id, state, end);
            relayed.push((last_ms + 1000, state));
        }
        relayed
    }

    #[test]
    fn toggling_fast_relays_once_per_window_and_ends_in_the_last_state() {
        let frames: Vec<(u64, bool)> = (0..100).map(|i| (i * 9, i % 2 == 0)).collect();
        let relayed = run(&frames);
        assert!(
            relayed.len() <= 3,
            "100 toggles in 0.9 s relay at most one per window: {relayed:?}"
        );
        assert_eq!(relayed.first(), Some(&(0, true)));
        assert_eq!(relayed.last().map(|(_, state)| *state), Some(false));
    }

    #[test]
    fn repeated_true_is_dropped_inside_the_window_and_refreshes_after() {
        let relayed = run(&[(0, true), (300, true), (900, true), (1200, true)]);
        assert_eq!(relayed, vec![(0, true), (1200, true)]);
    }

    #[test]
    fn a_stop_right_after_a_start_is_held_not_lost() {
        let start = Instant::now();
        let mut throttle = TypingThrottle::default();
        assert_eq!(throttle.on_frame(&conversation(), true, start), Some(true));
        throttle.relayed(&conversation(), true, start);
        let soon = start + Duration::from_millis(100);
        assert_eq!(throttle.on_frame(&conversation(), false, soon), None);
        assert_eq!(throttle.next_due(), Some(start + TYPING_WINDOW));
        assert!(throttle.take_due(soon).is_empty());
        assert_eq!(
            throttle.take_due(start + TYPING_WINDOW),
            vec![(conversation(), false)]
        );
    }

    #[test]
    fn a_change_back_inside_the_window_cancels_the_held_state() {
        let start = Instant::now();
        let mut throttle = TypingThrottle::default();
        throttle.relayed(&conversation(), true, start);
        assert_eq!(
            throttle.on_frame(&conversation(), false, start + Duration::from_millis(10)),
            None
        );
        assert_eq!(
            throttle.on_frame(&conversation(), true, start + Duration::from_millis(20)),
            None
        );
        assert_eq!(throttle.next_due(), None);
        assert_eq!(
            throttle.still_typing(start + Duration::from_secs(2), Duration::from_secs(5)),
            vec![conversation()]
        );
    }
}
