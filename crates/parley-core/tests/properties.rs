//! Property tests of the core's own ordering and coalescing rules.

use parley_core::commit::{next_batch, CommitRequest, PendingSend};
use parley_core::ratelimit::{Quota, TokenBucket};
use parley_core::receipts::ReceiptTracker;
use parley_core::store::NewMessage;
use parley_proto::{ContentType, ConversationId, DeviceId, MessageId, Timestamp, UserId};
use proptest::prelude::*;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

fn send(index: usize) -> CommitRequest {
    let (reply, _outcome) = oneshot::channel();
    CommitRequest::Send(PendingSend {
        message: NewMessage {
            message_id: MessageId(format!("m{index}")),
            conversation_id: ConversationId::from("c"),
            sender_id: UserId::from("u"),
            sender_device_id: DeviceId::from("d"),
            client_msg_id: index.to_string(),
            content: String::new(),
            content_type: ContentType::TEXT,
            reply_to_seq: None,
            created_at: Timestamp(0),
            system: None,
            target_seq: None,
            mentions: Vec::new(),
            forwarded: false,
            attachments: Vec::new(),
        },
        reply,
        queued_at: Instant::now(),
        origin_connection: None,
    })
}

proptest! {
    /// Group commit takes sends in queue order, never more than the batch limit, and a
    /// barrier (a flush, or a membership change) closes its batch: nothing queued after
    /// it commits before it.
    #[test]
    fn batches_keep_queue_order(requests in prop::collection::vec(prop::bool::weighted(0.1), 1..200), max_batch in 1usize..64) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async move {
            let (queue, mut receiver) = mpsc::channel(1024);
            let mut expected = Vec::new();
            for (index, is_flush) in requests.iter().enumerate() {
                if *is_flush {
                    let (done, _) = oneshot::channel();
                    queue.send(CommitRequest::Flush(done)).await.unwrap();
                    expected.push(None);
                } else {
                    queue.send(send(index)).await.unwrap();
                    expected.push(Some(index.to_string()));
                }
            }
            drop(queue);
            let mut seen = Vec::new();
            while let Some((sends, barrier)) = next_batch(&mut receiver, max_batch).await {
                assert!(sends.len() <= max_batch);
                seen.extend(sends.into_iter().map(|pending| Some(pending.message.client_msg_id)));
                seen.extend(barrier.map(|_| None));
            }
            assert_eq!(seen, expected);
        });
    }

    /// Coalesced receipts keep the highest pointer, and read implies delivered.
    #[test]
    fn receipts_coalesce_to_the_maximum(notes in prop::collection::vec((0i64..100, 0i64..100), 1..50)) {
        let tracker = ReceiptTracker::default();
        let conversation = ConversationId::from("c");
        let user = UserId::from("u");
        for (delivered, read) in &notes {
            tracker.note(&conversation, &user, *delivered, *read);
        }
        let updates = tracker.take();
        let max_read = notes.iter().map(|(_, read)| *read).max().unwrap();
        let max_delivered = notes.iter().map(|(delivered, _)| *delivered).max().unwrap().max(max_read);
        assert_eq!(updates.len(), 1);
        assert_eq!((updates[0].delivered_seq, updates[0].read_seq), (max_delivered, max_read));
    }

    /// A limiter of N a minute never lets more than N through in any burst, and refills.
    #[test]
    fn rate_limits_never_exceed_the_budget(per_minute in 1u32..50, attempts in 1usize..200) {
        let quota = Quota::per_minute(per_minute);
        let start = tokio::time::Instant::now();
        let mut bucket = TokenBucket::full(quota, start);
        let mut allowed = 0;
        for _ in 0..attempts {
            if bucket.take(quota, start).is_ok() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, attempts.min(per_minute as usize));
        assert!(bucket.take(quota, start + Duration::from_secs(60)).is_ok());
    }
}
