//! Group commit: many concurrent sends share one store transaction.
//!
//! Sends are queued in arrival order; one task takes everything queued (up to a batch
//! limit), hands it to `Store::append_messages` as one transaction, then fans out and
//! answers each sender. While a batch commits the next one fills, so throughput grows with
//! load instead of being capped by the disk's fsync rate. The queue order is the order of
//! `seq` for messages of one sender into one conversation. Membership changes ride the
//! same queue as barriers, so their system messages are announced in `seq` order too.

use crate::chat::Chat;
use crate::error::Error;
use crate::rules::ChangeIntent;
use crate::store::{AppendRefusal, Appended, NewMessage, SessionRecord, StoreError};
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

/// The committer task: takes batches off the queue, appends each in one store
/// transaction, fans out and answers every send; runs barriers (changes, flushes) between
/// batches. Ends when the queue closes.
pub(crate) async fn run_committer(chat: Chat, mut queue: mpsc::Receiver<CommitRequest>) {
    while let Some((sends, barrier)) = next_batch(&mut queue, chat.max_commit_batch()).await {
        if !sends.is_empty() {
            let (messages, replies): (Vec<_>, Vec<_>) = sends
                .into_iter()
                .map(|pending| {
                    (
                        pending.message,
                        (pending.reply, pending.queued_at, pending.origin_connection),
                    )
                })
                .unzip();
            metrics::histogram!("parley_commit_batch_size").record(messages.len() as f64);
            let count = messages.len();
            match chat.store().append_messages(messages).await {
                Ok(outcomes) => {
                    debug_assert_eq!(outcomes.len(), count);
                    for (outcome, (reply, queued_at, origin_connection)) in
                        outcomes.into_iter().zip(replies)
                    {
                        metrics::histogram!("parley_ack_latency_seconds")
                            .record(queued_at.elapsed().as_secs_f64());
                        let answer = match outcome {
                            Ok(appended) => {
                                if !appended.duplicate {
                                    chat.fan_out(&appended.message, origin_connection).await;
                                }
                                Ok(appended)
                            }
                            Err(AppendRefusal::NotMember) => Err(Error::NotMember),
                            Err(AppendRefusal::ClientMsgIdReused) => Err(Error::ClientMsgIdReused),
                        };
                        let _ = reply.send(answer);
                    }
                }
                Err(error) => {
                    tracing::error!(%error, count, "group commit failed");
                    let text = error.to_string();
                    for (reply, _, _) in replies {
                        let _ = reply.send(Err(Error::Store(StoreError::Unavailable(
                            text.clone().into(),
                        ))));
                    }
                }
            }
        }
        match barrier {
            Some(Barrier::Change(pending)) => {
                let PendingChange {
                    conversation_id,
                    actor,
                    intent,
                    reply,
                } = *pending;
                let outcome = chat.apply_change(&actor, &conversation_id, intent).await;
                let _ = reply.send(outcome);
            }
            Some(Barrier::Flush(done)) => {
                let _ = done.send(());
            }
            None => {}
        }
    }
}
