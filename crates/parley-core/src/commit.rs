//! Group commit: many concurrent sends share one store transaction.
//!
//! Sends are queued in arrival order; one task takes everything queued (up to a batch
//! limit), hands it to `Store::append_messages` as one transaction, then fans out and
//! answers each sender. While a batch commits the next one fills, so throughput grows with
//! load instead of being capped by the disk's fsync rate. The queue order is the order of
//! `seq` for messages of one sender into one conversation.

use crate::error::Error;
use crate::store::{Appended, NewMessage};
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

// Sends are the hot path and flushes are rare: boxing sends to shrink the enum would add an
// allocation per message.
#[allow(clippy::large_enum_variant)]
pub enum CommitRequest {
    Send(PendingSend),
    /// Answered once everything queued before it is committed (used by shutdown).
    Flush(oneshot::Sender<()>),
}

/// Takes the next batch: waits for one request, then takes whatever else is queued, up to
/// `max_batch` sends. Returns `None` when the queue is closed and empty.
pub async fn next_batch(
    queue: &mut mpsc::Receiver<CommitRequest>,
    max_batch: usize,
) -> Option<(Vec<PendingSend>, Vec<oneshot::Sender<()>>)> {
    let mut next = Some(queue.recv().await?);
    let mut sends = Vec::new();
    let mut flushes = Vec::new();
    while let Some(request) = next.take() {
        match request {
            CommitRequest::Send(pending) => sends.push(pending),
            // A flush closes the batch: it must not wait for sends queued after it.
            CommitRequest::Flush(done) => {
                flushes.push(done);
                break;
            }
        }
        if sends.len() < max_batch {
            next = queue.try_recv().ok();
        }
    }
    Some((sends, flushes))
}
