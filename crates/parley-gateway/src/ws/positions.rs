//! The position check: the server's safety net under a lost bus event.
//!
//! The bus only rings the doorbell. When an event for a socket is lost (NATS restarted,
//! this node fell behind and dropped, the publishing node died between its commit and
//! its publish), the device learns of the gap with its next message in that conversation
//! — which may never come. So each socket remembers how far it holds each conversation
//! without a gap ([`Positions`]: from `sync`, live `new_message`s and its own `msg_ack`s),
//! and now and then compares that with the store, one query per check
//! (`Chat::plan_catch_up` with the socket's positions as cursors):
//!
//! - every `position_check_interval` (the first one at a random point of the interval, so
//!   a node's sockets do not all query at once), and
//! - soon after the bus reports that events for this node may have been lost, at a random
//!   point of the next few seconds.
//!
//! A conversation found behind is not resent at once: its frames may still be on their
//! way. After `POSITION_CHECK_GRACE` whatever is still missing is streamed as
//! `new_message`s, in `seq` order, exactly as `sync` would (clients already drop a `seq`
//! they hold, as they must for at-least-once delivery). A socket that never synced is
//! checked only in the conversations it has received something in.

use super::connection::Connection;
use super::Socket;
use parley_proto::frames::Cursors;
use parley_proto::ConversationId;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::Duration;
use tokio::time::Instant;

/// How long a conversation found behind may take to catch up live before it is resent.
pub(super) const POSITION_CHECK_GRACE: Duration = Duration::from_secs(2);
/// After the bus reports a possible loss, checks start within this long (spread).
const AFTER_LOSS_SPREAD: Duration = Duration::from_secs(3);
/// Sequence numbers received ahead of a gap that are remembered per conversation.
const MAX_AHEAD: usize = 256;

/// How far one socket holds each conversation with no gap.
///
/// Keyed by a 64-bit hash of the conversation id, not the id itself: a socket may hold
/// hundreds of conversations after a `sync`, and 16 bytes each keep an idle connection
/// small. A collision (one in 2^64 per pair) could only make a check resend or skip
/// one conversation's messages.
pub(super) struct Positions {
    hasher: RandomState,
    held: HashMap<u64, i64>,
    /// Received past a gap, by conversation: they join `held` once the gap fills.
    ahead: HashMap<u64, Vec<i64>>,
    /// Whether the socket synced: it then holds every conversation it belongs to, so one
    /// it does not know is new to it.
    synced: bool,
}

impl Positions {
    pub(super) fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            held: HashMap::new(),
            ahead: HashMap::new(),
            synced: false,
        }
    }

    fn key(&self, conversation_id: &ConversationId) -> u64 {
        self.hasher.hash_one(conversation_id.as_str())
    }

    /// How far the socket holds `conversation_id` with no gap, if it holds it at all.
    pub(super) fn held(&self, conversation_id: &ConversationId) -> Option<i64> {
        self.held.get(&self.key(conversation_id)).copied()
    }

    /// The socket got message `seq` of `conversation_id`.
    pub(super) fn received(&mut self, conversation_id: &ConversationId, seq: i64) {
        let key = self.key(conversation_id);
        let held = self.held.entry(key).or_insert(seq - 1);
        if seq <= *held {
            return;
        }
        if seq > *held + 1 {
            let ahead = self.ahead.entry(key).or_default();
            if ahead.len() < MAX_AHEAD && !ahead.contains(&seq) {
                ahead.push(seq);
            }
            return;
        }
        *held = seq;
        self.absorb_ahead(key);
    }

    /// Nothing up to `seq` of `conversation_id` is the socket's to receive (the user
    /// deleted the chat for themselves up to there): it holds the conversation from there.
    pub(super) fn skip_to(&mut self, conversation_id: &ConversationId, seq: i64) {
        let key = self.key(conversation_id);
        let held = self.held.entry(key).or_insert(seq);
        if seq > *held {
            *held = seq;
            self.absorb_ahead(key);
        }
    }

    /// Moves `held` over what was received ahead of it and is contiguous with it now.
    fn absorb_ahead(&mut self, key: u64) {
        let Some(held) = self.held.get_mut(&key) else {
            return;
        };
        if let Some(ahead) = self.ahead.get_mut(&key) {
            ahead.sort_unstable();
            let mut caught_up = 0;
            for next in ahead.iter() {
                if *next == *held + 1 {
                    *held = *next;
                } else if *next > *held + 1 {
                    break;
                }
                caught_up += 1;
            }
            ahead.drain(..caught_up);
            if ahead.is_empty() {
                self.ahead.remove(&key);
            }
        }
    }

    /// A `sync` ended with these cursors: the socket holds each conversation up to them.
    pub(super) fn synced(&mut self, cursors: &Cursors) {
        self.synced = true;
        for (conversation_id, seq) in cursors {
            let key = self.key(conversation_id);
            let held = self.held.entry(key).or_insert(*seq);
            if *seq > *held {
                *held = *seq;
                self.ahead.remove(&key);
            }
        }
    }
}

/// What the check is waiting for.
pub(super) enum Check {
    /// The next check, at this time.
    At(Instant),
    /// Conversations found behind, `(conversation, after_seq, up_to_seq)`, to resend
    /// what is still missing at this time.
    Repair(Instant, Vec<(ConversationId, i64, i64)>),
}

impl Check {
    pub(super) fn due(&self) -> Instant {
        match self {
            Check::At(at) | Check::Repair(at, _) => *at,
        }
    }
}

/// A random point within `span` from now.
fn within(span: Duration) -> Instant {
    let fraction = rand::random::<f64>();
    Instant::now() + span.mul_f64(fraction)
}

impl<S: Socket> Connection<S> {
    /// The first check: at a random point of the interval; none if checks are off.
    pub(super) fn first_check(&self) -> Option<Check> {
        self.state
            .config
            .position_check_interval
            .map(|interval| Check::At(within(interval)))
    }

    /// The bus may have lost events for this node: check soon, unless a check is due
    /// sooner anyway.
    pub(super) fn check_after_loss(&mut self) {
        let soon = POSITION_CHECK_GRACE + AFTER_LOSS_SPREAD.mul_f64(rand::random::<f64>());
        let at = Instant::now() + soon;
        match &self.check {
            Some(check) if check.due() <= at => {}
            _ => self.check = Some(Check::At(at)),
        }
    }

    /// Runs the due step of the check and schedules the next one. `Err` when the socket
    /// broke.
    pub(super) async fn run_check(&mut self) -> Result<(), ()> {
        let next = self
            .state
            .config
            .position_check_interval
            .map(|interval| Check::At(Instant::now() + interval));
        match self.check.take() {
            Some(Check::At(_)) => {
                self.check = match self.find_behind().await {
                    Some(behind) if !behind.is_empty() => {
                        Some(Check::Repair(Instant::now() + POSITION_CHECK_GRACE, behind))
                    }
                    _ => next,
                };
                Ok(())
            }
            Some(Check::Repair(_, behind)) => {
                self.check = next;
                self.repair(behind).await
            }
            None => Ok(()),
        }
    }

    /// The conversations in which the store is ahead of this socket (one query).
    async fn find_behind(&mut self) -> Option<Vec<(ConversationId, i64, i64)>> {
        metrics::counter!("parley_position_checks_total").increment(1);
        let positions = &self.positions;
        let plan = self
            .state
            .chat
            .plan_catch_up(&self.session, |conversation_id| {
                positions.held(conversation_id)
            })
            .await;
        let plan = match plan {
            Ok(plan) => plan,
            Err(error) => {
                tracing::debug!(%error, "position check skipped");
                return None;
            }
        };
        let synced = self.positions.synced;
        Some(
            plan.ranges
                .into_iter()
                .filter(|(conversation_id, ..)| {
                    synced || self.positions.held(conversation_id).is_some()
                })
                .collect(),
        )
    }

    /// Streams what is still missing of `behind`, as `sync` would, without `sync_done`.
    async fn repair(&mut self, behind: Vec<(ConversationId, i64, i64)>) -> Result<(), ()> {
        for (conversation_id, after_seq, up_to_seq) in behind {
            // A plan starts no lower than the user's `cleared_seq`: below it there is
            // nothing to resend, so the socket holds the conversation from there.
            if self.positions.held(&conversation_id).unwrap_or(0) < after_seq {
                self.positions.skip_to(&conversation_id, after_seq);
            }
            let held = self.positions.held(&conversation_id).unwrap_or(after_seq);
            if held >= up_to_seq {
                continue;
            }
            metrics::counter!("parley_position_repairs_total").increment(1);
            tracing::info!(%conversation_id, held, up_to_seq, "resending what a socket missed");
            self.stream_range(&conversation_id, held, up_to_seq).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Positions;
    use parley_proto::ConversationId;

    fn conversation(name: &str) -> ConversationId {
        ConversationId::from(name)
    }

    /// Skipping to where the user cleared a chat takes in what came past the gap, and
    /// never moves a position back.
    #[test]
    fn a_skip_over_a_cleared_range_absorbs_what_came_ahead() {
        let mut positions = Positions::new();
        let team = conversation("c_team");
        positions.received(&team, 3);
        positions.received(&team, 11);
        positions.received(&team, 12);
        assert_eq!(positions.held(&team), Some(3));
        positions.skip_to(&team, 10);
        assert_eq!(positions.held(&team), Some(12));
        positions.skip_to(&team, 5);
        assert_eq!(positions.held(&team), Some(12));
        let fresh = conversation("c_fresh");
        positions.skip_to(&fresh, 4);
        assert_eq!(positions.held(&fresh), Some(4));
    }

    /// Positions advance only without a gap; what came past a gap counts once the gap
    /// fills, and a `sync` moves a position forward, never back.
    #[test]
    fn positions_advance_only_without_a_gap() {
        let mut positions = Positions::new();
        let (team, other) = (conversation("c_team"), conversation("c_other"));
        assert_eq!(positions.held(&team), None);
        positions.received(&team, 5);
        assert_eq!(
            positions.held(&team),
            Some(5),
            "the first message sets the baseline"
        );
        positions.received(&team, 7);
        positions.received(&team, 9);
        assert_eq!(positions.held(&team), Some(5), "6 is missing");
        positions.received(&team, 6);
        assert_eq!(
            positions.held(&team),
            Some(7),
            "6 filled the gap up to 7; 8 is missing"
        );
        positions.received(&team, 7);
        positions.received(&team, 4);
        assert_eq!(
            positions.held(&team),
            Some(7),
            "old and repeated seqs change nothing"
        );
        positions.received(&team, 8);
        assert_eq!(positions.held(&team), Some(9));

        let cursors = [(team.clone(), 3), (other.clone(), 12)]
            .into_iter()
            .collect();
        positions.synced(&cursors);
        assert_eq!(
            positions.held(&team),
            Some(9),
            "a sync never moves a position back"
        );
        assert_eq!(positions.held(&other), Some(12));
        positions.received(&other, 14);
        let cursors = [(other.clone(), 20)].into_iter().collect();
        positions.synced(&cursors);
        positions.received(&other, 21);
        assert_eq!(positions.held(&other), Some(21), "the sync covered the gap");
    }
}
