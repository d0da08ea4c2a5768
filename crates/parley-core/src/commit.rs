//! Group commit: many concurrent sends share one store transaction.
//!
//! Sends are queued in arrival order; one task takes everything queued (up to a batch
//! limit), hands it to `Store::append_messages` as one transaction, then fans out and
//! answers each sender. While a batch commits the next one fills, so throughput grows with
//! load instead of being capped by the disk's fsync rate. The queue order is the order of
//! `seq` for messages of one sender into one conversation. Membership changes ride the
//! same queue as barriers, so their system messages are announced in `seq` order too.

use crate::error::Error;
use crate::rules::ChangeIntent;
use crate::store::{Appended, NewMessage, SessionRecord};
use parley_proto::ConversationId;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// One queued send and where its outcome goes.
pub struct PendingSend {
    pub message: NewMessage,
    pub reply: oneshot::Sender<Result<Appended, Error>>,
    pub queued_at: Instant,
    /// The connection the send came on, which gets `msg_ack` rather than `new_message`.
    pub origin_connection: Option<u64>,
}

/// A membership or metadata change as its actor asked for it. It goes through the same
/// queue as sends, so its system messages are announced in `seq` order with theirs, and
/// it is authorized when it runs, against the members at that moment.
pub struct PendingChange {
    pub conversation_id: ConversationId,
    pub actor: SessionRecord,
    pub intent: ChangeIntent,
    pub reply: oneshot::Sender<Result<(), Error>>,
}

// Sends are the hot path and the other requests are rare: boxing sends to shrink the
// enum would add an allocation per message.
#[allow(clippy::large_enum_variant)]
pub enum CommitRequest {
    Send(PendingSend),
    Change(PendingChange),
    /// Answered once everything queued before it is committed (used by shutdown).
    Flush(oneshot::Sender<()>),
}

/// What ends a batch of sends: a request that must run after them, alone.
pub enum Barrier {
    Change(Box<PendingChange>),
    Flush(oneshot::Sender<()>),
}

/// Takes the next batch: waits for one request, then takes whatever else is queued, up to
/// `max_batch` sends or the first barrier (a change or a flush), which is returned to run
/// after the sends. Returns `None` when the queue is closed and empty.
pub async fn next_batch(
    queue: &mut mpsc::Receiver<CommitRequest>,
    max_batch: usize,
) -> Option<(Vec<PendingSend>, Option<Barrier>)> {
    let mut next = Some(queue.recv().await?);
    let mut sends = Vec::new();
    while let Some(request) = next.take() {
        match request {
            CommitRequest::Send(pending) => sends.push(pending),
            // A barrier closes the batch: it must not wait for sends queued after it.
            CommitRequest::Change(change) => {
                return Some((sends, Some(Barrier::Change(Box::new(change)))))
            }
            CommitRequest::Flush(done) => return Some((sends, Some(Barrier::Flush(done)))),
        }
        if sends.len() < max_batch {
            next = queue.try_recv().ok();
        }
    }
    Some((sends, None))
}
