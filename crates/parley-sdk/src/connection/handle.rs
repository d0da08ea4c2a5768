//! The app-facing halves of a connection: the cloneable [`ConnectionHandle`] that queues
//! [`Command`]s for the driver task, the [`EventStream`] it answers on, and the
//! [`SendHandle`] and [`ConnectionStats`] handed back.
//!
//! Nothing here touches the socket: every method only sends on a channel, so none blocks
//! on the network; the driver owns all per-connection state.

use super::config::{new_client_msg_id, OutgoingMessage};
use crate::outbox::AckWaiter;
use crate::{Event, MsgAck, SdkError};
use futures::Stream;
use parley_proto::{frames::Cursors, ClientFrame, ConversationId, DeviceId, UserId};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// A send in flight: its `client_msg_id` and, on demand, its `msg_ack`.
#[derive(Debug)]
pub struct SendHandle {
    client_msg_id: String,
    outcome: oneshot::Receiver<Result<MsgAck, SdkError>>,
}

impl SendHandle {
    /// The id the server deduplicates resends by.
    pub fn client_msg_id(&self) -> &str {
        &self.client_msg_id
    }

    /// Waits for the `msg_ack` (across reconnects and rate-limit retries). Fails with
    /// [`SdkError::Rejected`] if the server refused the send, or
    /// [`SdkError::ConnectionClosed`] if the connection ended first.
    pub async fn ack(self) -> Result<MsgAck, SdkError> {
        self.outcome
            .await
            .unwrap_or(Err(SdkError::ConnectionClosed))
    }
}

/// Counters of one connection, for tests and load generators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Successful reconnects (the first connection not counted).
    pub reconnects: u64,
    /// `send_message` frames written after a reconnect (unacknowledged, or queued while
    /// disconnected) or after a rate-limit wait.
    pub resent: u64,
    /// `new_message`s dropped because their `(conversation_id, seq)` was seen before.
    pub duplicates_suppressed: u64,
    /// Sends still waiting for their `msg_ack`.
    pub outbox_len: usize,
    /// `ack` frames written.
    pub acks_sent: u64,
}

pub(super) enum Command {
    Send {
        client_msg_id: String,
        frame_text: Utf8Bytes,
        waiter: Option<AckWaiter>,
    },
    /// Ephemeral frames (`typing`, explicit `ack`, `ping`): dropped while disconnected.
    Ephemeral(ClientFrame),
    Read {
        conversation_id: ConversationId,
        up_to_seq: i64,
    },
    PresenceSubscribe(Vec<UserId>),
    Sync,
    Cursors(oneshot::Sender<Cursors>),
    Stats(oneshot::Sender<ConnectionStats>),
    Close(oneshot::Sender<()>),
}

/// The sending half of a connection: cheap to clone, usable from any task.
///
/// Every method only queues a command for the driver task, so none blocks on the
/// network; they fail only with [`SdkError::ConnectionClosed`] once the connection ended.
#[derive(Clone, Debug)]
pub struct ConnectionHandle {
    pub(super) commands: mpsc::UnboundedSender<Command>,
    pub(super) user_id: UserId,
    pub(super) device_id: DeviceId,
}

impl ConnectionHandle {
    fn command(&self, command: Command) -> Result<(), SdkError> {
        self.commands
            .send(command)
            .map_err(|_| SdkError::ConnectionClosed)
    }

    /// The authenticated user (from `ready`).
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// This connection's device (from `ready`).
    pub fn device_id(&self) -> &DeviceId {
        &self.device_id
    }

    /// Sends a text message; await [`SendHandle::ack`] for its `msg_ack`.
    pub fn send(
        &self,
        conversation_id: ConversationId,
        content: impl Into<String>,
    ) -> Result<SendHandle, SdkError> {
        self.send_message(OutgoingMessage::text(conversation_id, content))
    }

    /// Sends a message with every option; kept in the outbox until its `msg_ack`.
    pub fn send_message(&self, message: OutgoingMessage) -> Result<SendHandle, SdkError> {
        let (waiter, outcome) = oneshot::channel();
        let client_msg_id = self.queue_send(message, Some(waiter))?;
        Ok(SendHandle {
            client_msg_id,
            outcome,
        })
    }

    /// Sends and waits for the `msg_ack`.
    pub async fn send_and_wait(
        &self,
        conversation_id: ConversationId,
        content: impl Into<String>,
    ) -> Result<MsgAck, SdkError> {
        self.send(conversation_id, content)?.ack().await
    }

    /// Sends without a waiter and returns the `client_msg_id`; the outcome arrives only
    /// as [`Event::MsgAck`] or an `error` frame ([`Event::Frame`]). The cheapest way to
    /// send (load generators).
    pub fn enqueue(&self, message: OutgoingMessage) -> Result<String, SdkError> {
        self.queue_send(message, None)
    }

    fn queue_send(
        &self,
        message: OutgoingMessage,
        waiter: Option<AckWaiter>,
    ) -> Result<String, SdkError> {
        let client_msg_id = message.client_msg_id.unwrap_or_else(new_client_msg_id);
        let frame = ClientFrame::SendMessage {
            client_msg_id,
            conversation_id: message.conversation_id,
            content: message.content,
            content_type: message.content_type,
            reply_to_seq: message.reply_to_seq,
            target_seq: message.target_seq,
            mentions: message.mentions,
            attachments: message.attachments,
        };
        let frame_text = Utf8Bytes::from(serde_json::to_string(&frame)?);
        let ClientFrame::SendMessage { client_msg_id, .. } = frame else {
            unreachable!("the frame was built as send_message above")
        };
        self.command(Command::Send {
            client_msg_id: client_msg_id.clone(),
            frame_text,
            waiter,
        })?;
        Ok(client_msg_id)
    }

    /// Marks the conversation read up to `up_to_seq` (kept and sent after a reconnect
    /// if the socket is down).
    pub fn read(&self, conversation_id: ConversationId, up_to_seq: i64) -> Result<(), SdkError> {
        self.command(Command::Read {
            conversation_id,
            up_to_seq,
        })
    }

    /// Starts or stops the typing indicator (dropped while disconnected).
    pub fn typing(&self, conversation_id: ConversationId, is_typing: bool) -> Result<(), SdkError> {
        self.command(Command::Ephemeral(ClientFrame::Typing {
            conversation_id,
            is_typing,
        }))
    }

    /// Sends an explicit `ack` (only needed with `auto_ack` off).
    pub fn ack(&self, conversation_id: ConversationId, seq: i64) -> Result<(), SdkError> {
        self.command(Command::Ephemeral(ClientFrame::Ack {
            conversation_id,
            seq,
        }))
    }

    /// Subscribes to these users' presence; replaces the previous set and is restored
    /// after every reconnect.
    pub fn presence_subscribe(&self, user_ids: Vec<UserId>) -> Result<(), SdkError> {
        self.command(Command::PresenceSubscribe(user_ids))
    }

    /// Sends a `sync` with the tracked cursors now (one is sent after every connect
    /// anyway when `auto_sync` is on); a `sync_done` frame ([`Event::Frame`]) follows.
    pub fn sync(&self) -> Result<(), SdkError> {
        self.command(Command::Sync)
    }

    /// Sends a `ping` now (one is sent every `heartbeat_interval` anyway).
    pub fn ping(&self) -> Result<(), SdkError> {
        self.command(Command::Ephemeral(ClientFrame::Ping {}))
    }

    /// The highest contiguous `seq` seen per conversation; save it to resume later
    /// through [`ConnectionConfig::initial_cursors`].
    ///
    /// [`ConnectionConfig::initial_cursors`]: super::ConnectionConfig::initial_cursors
    pub async fn cursors(&self) -> Result<Cursors, SdkError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Cursors(reply))?;
        answer.await.map_err(|_| SdkError::ConnectionClosed)
    }

    /// The connection's counters.
    pub async fn stats(&self) -> Result<ConnectionStats, SdkError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Stats(reply))?;
        answer.await.map_err(|_| SdkError::ConnectionClosed)
    }

    /// Sends a close frame, waits (briefly) for the server's, and ends the connection;
    /// [`Event::Closed`] with [`CloseReason::ByClient`] is the last event. Unacknowledged
    /// sends fail with [`SdkError::ConnectionClosed`].
    ///
    /// [`CloseReason::ByClient`]: crate::CloseReason::ByClient
    pub async fn close(&self) -> Result<(), SdkError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Close(reply))?;
        answer.await.map_err(|_| SdkError::ConnectionClosed)
    }
}

/// The receiving half of a connection: every [`Event`] in order. Also a [`Stream`].
#[derive(Debug)]
pub struct EventStream {
    pub(super) events: mpsc::UnboundedReceiver<Event>,
}

impl EventStream {
    /// The next event; `None` after [`Event::Closed`].
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Up to `limit` waiting events appended to `buffer` (waits for at least one);
    /// returns how many, 0 meaning the stream ended. Cheaper than one call per event.
    pub async fn next_events(&mut self, buffer: &mut Vec<Event>, limit: usize) -> usize {
        self.events.recv_many(buffer, limit).await
    }
}

impl Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Event>> {
        self.events.poll_recv(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frame the SDK writes for a send is the protocol's `send_message`.
    #[test]
    fn outgoing_message_encodes_as_send_message() {
        let (commands, mut queued) = mpsc::unbounded_channel();
        let handle = ConnectionHandle {
            commands,
            user_id: UserId::from("u"),
            device_id: DeviceId::from("d"),
        };
        let client_msg_id = handle
            .enqueue(OutgoingMessage {
                client_msg_id: Some("m-1".into()),
                reply_to_seq: Some(3),
                ..OutgoingMessage::text(ConversationId::from("c_1"), "hi")
            })
            .unwrap();
        assert_eq!(client_msg_id, "m-1");
        let Some(Command::Send { frame_text, .. }) = queued.try_recv().ok() else {
            panic!("expected a send command");
        };
        let value: serde_json::Value = serde_json::from_str(frame_text.as_str()).unwrap();
        assert_eq!(value["type"], "send_message");
        assert_eq!(value["client_msg_id"], "m-1");
        assert_eq!(value["conversation_id"], "c_1");
        assert_eq!(value["reply_to_seq"], 3);
        let generated = handle
            .enqueue(OutgoingMessage::text(ConversationId::from("c_1"), "x"))
            .unwrap();
        assert_eq!(generated.len(), 26, "a ULID string");
    }
}
