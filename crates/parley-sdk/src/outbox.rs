//! The outbox: sends that have no `msg_ack` yet, kept for resend after a reconnect.
//!
//! Each entry keeps its encoded `send_message` frame, so a resend carries the very same
//! `client_msg_id` and the server deduplicates it. An entry leaves on its `msg_ack`, or
//! on an `error` naming it, except `rate_limited`, which parks it until `retry_after_ms`.
//! The outbox does no I/O: the connection asks it what to (re)send and when.

use crate::{MsgAck, SdkError};
use parley_proto::ErrorCode;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Where a send's outcome goes, when somebody waits for it.
pub(crate) type AckWaiter = oneshot::Sender<Result<MsgAck, SdkError>>;

/// One unacknowledged send.
#[derive(Debug)]
struct PendingSend {
    /// Insertion order, so resends keep the app's send order.
    order: u64,
    /// The encoded `send_message` frame; `Utf8Bytes` so a resend clones a pointer.
    frame_text: Utf8Bytes,
    waiter: Option<AckWaiter>,
    /// Set while parked by `rate_limited`: not to be sent before this instant.
    retry_at: Option<Instant>,
    /// How many times the frame has been written to a socket.
    attempts: u32,
}

/// What an `error` frame naming a send did to it.
#[derive(Debug)]
pub(crate) enum ErrorOutcome {
    /// `rate_limited`: parked, to be sent again at this instant.
    RetryAt(Instant),
    /// Refused for good; removed from the outbox.
    Dropped,
    /// No pending send has this `client_msg_id` (already acknowledged, or not ours).
    Unknown,
}

/// Sends without a `msg_ack`, keyed by `client_msg_id`.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    entries: HashMap<String, PendingSend>,
    next_order: u64,
}

impl Outbox {
    /// Adds a send that is about to be written (or will be, after a reconnect).
    /// A second insert with the same `client_msg_id` keeps the first frame and its
    /// place in the order; a new waiter replaces the old one.
    pub(crate) fn insert(
        &mut self,
        client_msg_id: String,
        frame_text: Utf8Bytes,
        waiter: Option<AckWaiter>,
    ) {
        match self.entries.entry(client_msg_id) {
            Entry::Occupied(mut occupied) => {
                if waiter.is_some() {
                    occupied.get_mut().waiter = waiter;
                }
            }
            Entry::Vacant(vacant) => {
                let order = self.next_order;
                self.next_order += 1;
                vacant.insert(PendingSend {
                    order,
                    frame_text,
                    waiter,
                    retry_at: None,
                    attempts: 0,
                });
            }
        }
    }

    /// Records that the frame of `client_msg_id` was written to a socket.
    pub(crate) fn mark_written(&mut self, client_msg_id: &str) {
        if let Some(pending) = self.entries.get_mut(client_msg_id) {
            pending.attempts += 1;
        }
    }

    /// The frame to write now for a send just inserted, unless it is parked.
    pub(crate) fn frame_of(&self, client_msg_id: &str) -> Option<Utf8Bytes> {
        self.entries
            .get(client_msg_id)
            .filter(|pending| pending.retry_at.is_none())
            .map(|pending| pending.frame_text.clone())
    }

    /// A `msg_ack` arrived: removes the send and completes its waiter. Returns whether
    /// the send was pending.
    pub(crate) fn acknowledge(&mut self, ack: &MsgAck) -> bool {
        match self.entries.remove(&ack.client_msg_id) {
            Some(pending) => {
                if let Some(waiter) = pending.waiter {
                    let _ = waiter.send(Ok(ack.clone()));
                }
                true
            }
            None => false,
        }
    }

    /// An `error` frame named `client_msg_id`.
    pub(crate) fn refuse(
        &mut self,
        client_msg_id: &str,
        code: ErrorCode,
        message: &str,
        retry_after: Option<Duration>,
        rate_limit_fallback: Duration,
        now: Instant,
    ) -> ErrorOutcome {
        if code == ErrorCode::RateLimited {
            return match self.entries.get_mut(client_msg_id) {
                Some(pending) => {
                    let retry_at = now + retry_after.unwrap_or(rate_limit_fallback);
                    pending.retry_at = Some(retry_at);
                    ErrorOutcome::RetryAt(retry_at)
                }
                None => ErrorOutcome::Unknown,
            };
        }
        match self.entries.remove(client_msg_id) {
            Some(pending) => {
                if let Some(waiter) = pending.waiter {
                    let _ = waiter.send(Err(SdkError::Rejected {
                        code,
                        message: message.to_owned(),
                    }));
                }
                ErrorOutcome::Dropped
            }
            None => ErrorOutcome::Unknown,
        }
    }

    /// After a reconnect: every send not parked by a rate limit, in send order.
    pub(crate) fn frames_to_resend(&self) -> Vec<(String, Utf8Bytes)> {
        let mut resend: Vec<(&String, &PendingSend)> = self
            .entries
            .iter()
            .filter(|(_, pending)| pending.retry_at.is_none())
            .collect();
        resend.sort_by_key(|(_, pending)| pending.order);
        resend
            .into_iter()
            .map(|(client_msg_id, pending)| (client_msg_id.clone(), pending.frame_text.clone()))
            .collect()
    }

    /// Parked sends whose time has come, in send order; they are un-parked.
    pub(crate) fn take_due_retries(&mut self, now: Instant) -> Vec<(String, Utf8Bytes)> {
        let mut due: Vec<(u64, String, Utf8Bytes)> = Vec::new();
        for (client_msg_id, pending) in &mut self.entries {
            if pending.retry_at.is_some_and(|retry_at| retry_at <= now) {
                pending.retry_at = None;
                due.push((
                    pending.order,
                    client_msg_id.clone(),
                    pending.frame_text.clone(),
                ));
            }
        }
        due.sort_by_key(|(order, _, _)| *order);
        due.into_iter()
            .map(|(_, client_msg_id, frame_text)| (client_msg_id, frame_text))
            .collect()
    }

    /// The earliest instant a parked send is due, if any is parked.
    pub(crate) fn next_retry_at(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|pending| pending.retry_at)
            .min()
    }

    /// Total writes of frames still pending (a resend counts again).
    #[cfg(test)]
    pub(crate) fn attempts_of(&self, client_msg_id: &str) -> Option<u32> {
        self.entries
            .get(client_msg_id)
            .map(|pending| pending.attempts)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The connection ended for good: every waiter gets `error()`.
    pub(crate) fn fail_all(&mut self, error: impl Fn() -> SdkError) {
        for (_, pending) in self.entries.drain() {
            if let Some(waiter) = pending.waiter {
                let _ = waiter.send(Err(error()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_proto::{ConversationId, MessageId, Timestamp};

    fn ack_for(client_msg_id: &str, seq: i64) -> MsgAck {
        MsgAck {
            client_msg_id: client_msg_id.to_owned(),
            conversation_id: ConversationId::from("c"),
            message_id: MessageId::from(format!("m{seq}")),
            seq,
            created_at: Timestamp(0),
        }
    }

    fn frame(text: &str) -> Utf8Bytes {
        Utf8Bytes::from(text.to_owned())
    }

    fn ids(frames: &[(String, Utf8Bytes)]) -> Vec<&str> {
        frames
            .iter()
            .map(|(client_msg_id, _)| client_msg_id.as_str())
            .collect()
    }

    /// Unacknowledged sends are resent in send order with their original frames; an
    /// acknowledged one is not resent and its waiter gets the ack.
    #[tokio::test]
    async fn resend_keeps_order_and_skips_acknowledged() {
        let mut outbox = Outbox::default();
        let (waiter, outcome) = oneshot::channel();
        outbox.insert("m1".into(), frame("one"), None);
        outbox.insert("m2".into(), frame("two"), Some(waiter));
        outbox.insert("m3".into(), frame("three"), None);
        assert!(outbox.acknowledge(&ack_for("m2", 7)));
        assert_eq!(outcome.await.unwrap().unwrap().seq, 7);
        let resend = outbox.frames_to_resend();
        assert_eq!(ids(&resend), vec!["m1", "m3"]);
        assert_eq!(resend[1].1.as_str(), "three");
        assert!(!outbox.acknowledge(&ack_for("m2", 7)));
        assert_eq!(outbox.len(), 2);
    }

    /// `rate_limited` parks the send until `retry_after_ms`; it is not resent on
    /// reconnect before then, and comes back exactly once when due.
    #[test]
    fn rate_limited_send_is_parked_then_retried() {
        let mut outbox = Outbox::default();
        let now = Instant::now();
        outbox.insert("m1".into(), frame("one"), None);
        outbox.insert("m2".into(), frame("two"), None);
        let outcome = outbox.refuse(
            "m1",
            ErrorCode::RateLimited,
            "slow down",
            Some(Duration::from_millis(300)),
            Duration::from_secs(1),
            now,
        );
        assert!(
            matches!(outcome, ErrorOutcome::RetryAt(at) if at == now + Duration::from_millis(300))
        );
        assert_eq!(outbox.frame_of("m1"), None);
        assert_eq!(ids(&outbox.frames_to_resend()), vec!["m2"]);
        assert_eq!(
            outbox.next_retry_at(),
            Some(now + Duration::from_millis(300))
        );
        assert!(outbox
            .take_due_retries(now + Duration::from_millis(299))
            .is_empty());
        assert_eq!(
            ids(&outbox.take_due_retries(now + Duration::from_millis(300))),
            vec!["m1"]
        );
        assert!(outbox
            .take_due_retries(now + Duration::from_secs(9))
            .is_empty());
        assert_eq!(outbox.next_retry_at(), None);
        assert_eq!(outbox.len(), 2);
    }

    /// Without `retry_after_ms` the fallback delay applies.
    #[test]
    fn rate_limited_without_hint_uses_fallback() {
        let mut outbox = Outbox::default();
        let now = Instant::now();
        outbox.insert("m1".into(), frame("one"), None);
        let outcome = outbox.refuse(
            "m1",
            ErrorCode::RateLimited,
            "",
            None,
            Duration::from_secs(2),
            now,
        );
        assert!(matches!(outcome, ErrorOutcome::RetryAt(at) if at == now + Duration::from_secs(2)));
    }

    /// Any other error removes the send and hands the error to its waiter.
    #[tokio::test]
    async fn other_errors_drop_the_send() {
        let mut outbox = Outbox::default();
        let (waiter, outcome) = oneshot::channel();
        outbox.insert("m1".into(), frame("one"), Some(waiter));
        let refused = outbox.refuse(
            "m1",
            ErrorCode::NotMember,
            "not yours",
            None,
            Duration::from_secs(1),
            Instant::now(),
        );
        assert!(matches!(refused, ErrorOutcome::Dropped));
        assert_eq!(outbox.len(), 0);
        let error = outcome.await.unwrap().unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::NotMember));
        let unknown = outbox.refuse(
            "m1",
            ErrorCode::NotMember,
            "",
            None,
            Duration::from_secs(1),
            Instant::now(),
        );
        assert!(matches!(unknown, ErrorOutcome::Unknown));
    }

    /// Written counts accumulate across resends; `fail_all` completes every waiter.
    #[tokio::test]
    async fn attempts_and_fail_all() {
        let mut outbox = Outbox::default();
        let (waiter, outcome) = oneshot::channel();
        outbox.insert("m1".into(), frame("one"), Some(waiter));
        outbox.mark_written("m1");
        outbox.mark_written("m1");
        assert_eq!(outbox.attempts_of("m1"), Some(2));
        outbox.fail_all(|| SdkError::ConnectionClosed);
        assert!(matches!(
            outcome.await.unwrap(),
            Err(SdkError::ConnectionClosed)
        ));
        assert_eq!(outbox.len(), 0);
    }
}
