//! Group commit: many concurrent sends share one store transaction.
//!
//! Sends are queued in arrival order; one task takes everything queued (up to a batch
//! limit), hands it to `Store::append_messages` as one transaction, then fans out and
//! answers each sender. While a batch commits the next one fills, so throughput grows with
//! load instead of being capped by the disk's fsync rate. The queue order is the order of
//! `seq` for messages of one sender into one conversation. Membership changes ride the
//! same queue as barriers, so their system messages are announced in `seq` order too.
//!
//! The committer never waits for the bus: what a commit must announce goes, in commit
//! order, onto a bounded queue that the fan-out task drains into `Bus::publish` in
//! batches. A slow network bus thus slows the commits only once that queue is full
//! (backpressure), never one commit at a time.

use crate::bus::{BusEvent, ConnectionId};
use crate::chat::Chat;
use crate::error::{Error, BLOCKED_DIRECT_CHAT};
use crate::rules::ChangeIntent;
use crate::store::{AppendRefusal, Appended, NewMessage, SessionRecord};
use parley_proto::{ConversationId, Message};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// One queued send and where its outcome goes.
pub struct PendingSend {
    pub message: NewMessage,
    pub reply: oneshot::Sender<Result<Appended, Error>>,
    pub queued_at: Instant,
    /// The connection the send came on, which gets `msg_ack` rather than `new_message`.
    pub origin_connection: Option<ConnectionId>,
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

/// What a commit must announce, in commit order.
// Messages are the hot path and the other announcements are rare: boxing messages would
// add an allocation per message.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Announcement {
    /// A new message: `new_message` to the members at `members_version`.
    Message {
        message: Message,
        origin_connection: Option<ConnectionId>,
        members_version: i64,
    },
    /// Events decided by the committer (a group change); `reply` hears whether the bus
    /// took them.
    Events {
        events: Vec<BusEvent>,
        reply: Option<oneshot::Sender<Result<(), Error>>>,
    },
}

/// The committer task: takes batches off the queue, appends each in one store
/// transaction, answers every send and queues what must be announced; runs barriers
/// (changes, flushes) between batches. Ends when the queue closes.
pub(crate) async fn run_committer(
    chat: Chat,
    mut queue: mpsc::Receiver<CommitRequest>,
    announcements: mpsc::Sender<Announcement>,
) {
    while let Some((sends, barrier)) = next_batch(&mut queue, chat.max_commit_batch()).await {
        if !sends.is_empty() {
            commit_sends(&chat, sends, &announcements).await;
        }
        match barrier {
            Some(Barrier::Change(pending)) => {
                let PendingChange {
                    conversation_id,
                    actor,
                    intent,
                    reply,
                } = *pending;
                match chat.apply_change(&actor, &conversation_id, intent).await {
                    Ok(events) if events.is_empty() => {
                        let _ = reply.send(Ok(()));
                    }
                    Ok(events) => {
                        let announcement = Announcement::Events {
                            events,
                            reply: Some(reply),
                        };
                        if let Err(mpsc::error::SendError(Announcement::Events {
                            reply: Some(reply),
                            ..
                        })) = announcements.send(announcement).await
                        {
                            let _ = reply.send(Err(Error::ShuttingDown));
                        }
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            Some(Barrier::Flush(done)) => {
                // Answered once everything before it is announced too.
                let (reply, announced) = oneshot::channel();
                let flushed = announcements
                    .send(Announcement::Events {
                        events: Vec::new(),
                        reply: Some(reply),
                    })
                    .await;
                if flushed.is_ok() {
                    let _ = announced.await;
                }
                let _ = done.send(());
            }
            None => {}
        }
    }
}

async fn commit_sends(
    chat: &Chat,
    sends: Vec<PendingSend>,
    announcements: &mpsc::Sender<Announcement>,
) {
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
    let outcomes = match chat.store().append_messages(messages).await {
        Ok(outcomes) => outcomes,
        Err(error) => {
            tracing::error!(%error, count, "group commit failed");
            let error = std::sync::Arc::new(error);
            for (reply, _, _) in replies {
                let _ = reply.send(Err(Error::Store(crate::store::StoreError::Unavailable {
                    source: Box::new(Shared(error.clone())),
                })));
            }
            return;
        }
    };
    debug_assert_eq!(outcomes.len(), count);
    for (outcome, (reply, queued_at, origin_connection)) in outcomes.into_iter().zip(replies) {
        metrics::histogram!("parley_ack_latency_seconds").record(queued_at.elapsed().as_secs_f64());
        let answer = match outcome {
            Ok(appended) => {
                if !appended.duplicate {
                    let announcement = Announcement::Message {
                        message: appended.message.clone(),
                        origin_connection,
                        members_version: appended.members_version,
                    };
                    // Waits only while the fan-out queue is full.
                    let _ = announcements.send(announcement).await;
                }
                Ok(appended)
            }
            Err(AppendRefusal::NotMember) => Err(Error::NotMember),
            Err(AppendRefusal::ClientMsgIdReused) => Err(Error::ClientMsgIdReused),
            Err(AppendRefusal::TargetGone) => Err(Error::TargetNotFound),
            Err(AppendRefusal::Blocked) => Err(Error::Blocked(BLOCKED_DIRECT_CHAT)),
            Err(AppendRefusal::MediaGone) => Err(Error::NotFound("media")),
        };
        let _ = reply.send(answer);
    }
}

/// One failure shared by every request it failed (a batch's sends, a batch's changes).
#[derive(Debug)]
struct Shared<E>(std::sync::Arc<E>);

impl<E: std::fmt::Display> std::fmt::Display for Shared<E> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(formatter)
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Shared<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Most announcements published in one `Bus::publish`.
const FAN_OUT_BATCH: usize = 256;

/// The fan-out task: turns announcements into bus events, in order, and publishes them in
/// batches. Ends when the committer is gone and the queue is empty.
pub(crate) async fn run_fan_out(chat: Chat, mut announcements: mpsc::Receiver<Announcement>) {
    let mut batch = Vec::with_capacity(FAN_OUT_BATCH);
    while announcements.recv_many(&mut batch, FAN_OUT_BATCH).await > 0 {
        let mut events = Vec::with_capacity(batch.len());
        let mut replies = Vec::new();
        for announcement in batch.drain(..) {
            match announcement {
                Announcement::Message {
                    message,
                    origin_connection,
                    members_version,
                } => {
                    if let Some(event) = chat
                        .message_event(message, origin_connection, members_version)
                        .await
                    {
                        events.push(event);
                    }
                }
                Announcement::Events {
                    events: decided,
                    reply,
                } => {
                    events.extend(decided);
                    replies.extend(reply);
                }
            }
        }
        let published = if events.is_empty() {
            Ok(())
        } else {
            chat.bus().publish(events).await
        };
        match published {
            Ok(()) => {
                for reply in replies {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "bus publish failed; devices catch up with sync");
                let error = std::sync::Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(Error::Bus(crate::bus::BusError::Unavailable {
                        source: Box::new(Shared(error.clone())),
                    })));
                }
            }
        }
    }
}
