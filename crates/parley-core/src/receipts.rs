//! Delivered and read pointers reported by devices, coalesced in memory.
//!
//! Devices `ack` every message; writing each would cost a transaction per delivery. The
//! tracker keeps the highest pointer per (conversation, user) until the next flush, which
//! writes them in one batch and announces the ones that moved. Losing a pending pointer
//! in a crash only delays a receipt: the device acks again after its next sync.

use crate::store::ReceiptUpdate;
use parking_lot::Mutex;
use parley_proto::{ConversationId, UserId};
use std::collections::HashMap;

#[derive(Default)]
pub struct ReceiptTracker {
    pending: Mutex<HashMap<(ConversationId, UserId), (i64, i64)>>,
}

impl ReceiptTracker {
    /// Notes that `user_id` has received up to `delivered_seq` and read up to `read_seq`
    /// (0 for "no news").
    pub fn note(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        delivered_seq: i64,
        read_seq: i64,
    ) {
        let mut pending = self.pending.lock();
        let entry = pending
            .entry((conversation_id.clone(), user_id.clone()))
            .or_insert((0, 0));
        entry.0 = entry.0.max(delivered_seq).max(read_seq);
        entry.1 = entry.1.max(read_seq);
    }

    /// Everything noted since the last call.
    pub fn take(&self) -> Vec<ReceiptUpdate> {
        let pending = std::mem::take(&mut *self.pending.lock());
        pending
            .into_iter()
            .map(
                |((conversation_id, user_id), (delivered_seq, read_seq))| ReceiptUpdate {
                    conversation_id,
                    user_id,
                    delivered_seq,
                    read_seq,
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_highest_and_read_implies_delivered() {
        let tracker = ReceiptTracker::default();
        let conversation = ConversationId::from("c_1");
        let alice = UserId::from("u_a");
        tracker.note(&conversation, &alice, 5, 0);
        tracker.note(&conversation, &alice, 3, 0);
        tracker.note(&conversation, &alice, 0, 7);
        let updates = tracker.take();
        assert_eq!(updates.len(), 1);
        assert_eq!((updates[0].delivered_seq, updates[0].read_seq), (7, 7));
        assert!(tracker.take().is_empty());
    }
}
