//! Delivered and read pointers: noted per socket, coalesced, flushed every
//! `receipt_flush_interval` in one transaction, then announced (in groups only to the
//! senders of the covered messages). Unread counts.

use super::*;

impl Chat {
    /// `ack`: this device has everything up to `seq`.
    pub async fn ack(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<()> {
        self.members_for(conversation_id, &session.user_id).await?;
        if seq < 0 {
            return Err(Error::Invalid("seq must not be negative".into()));
        }
        self.inner
            .receipts
            .note(conversation_id, &session.user_id, seq, 0);
        Ok(())
    }

    /// The user has read up to `up_to_seq`.
    pub async fn read(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        up_to_seq: i64,
    ) -> Result<()> {
        self.members_for(conversation_id, &session.user_id).await?;
        if up_to_seq < 0 {
            return Err(Error::Invalid("up_to_seq must not be negative".into()));
        }
        self.inner
            .receipts
            .note(conversation_id, &session.user_id, 0, up_to_seq);
        Ok(())
    }

    /// Writes pending receipts now instead of at the next tick (tests, shutdown).
    pub async fn flush_receipts(&self) {
        flush_receipts(&self.inner).await;
    }

    /// Who has received and read one message.
    pub async fn receipts(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<MessageReceipts> {
        self.members_for(conversation_id, &session.user_id).await?;
        let record = self.inner.store.fetch_conversation(conversation_id).await?;
        if seq < 1 || seq > record.last_seq {
            return Err(Error::NotFound("message"));
        }
        // Pointers still in memory count too: flush so the answer is current.
        flush_receipts(&self.inner).await;
        Ok(self
            .inner
            .store
            .fetch_receipts(conversation_id, seq)
            .await?)
    }

    /// Unread counts per conversation and in total.
    pub async fn unread(&self, session: &Session) -> Result<UnreadCounts> {
        let mut conversations = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .inner
                .store
                .list_conversations(
                    &session.user_id,
                    ListFilter::All,
                    cursor.clone(),
                    100,
                    rules::UNREAD,
                )
                .await?;
            let done = page.len() < 100;
            cursor = page.last().map(|summary| ListCursor {
                pinned_at: summary.pinned_at,
                last_activity_at: summary.conversation.last_activity_at,
                conversation_id: summary.conversation.conversation_id.clone(),
            });
            conversations.extend(
                page.into_iter()
                    .filter(|summary| summary.unread_count > 0)
                    .map(|summary| (summary.conversation.conversation_id, summary.unread_count)),
            );
            if done {
                break;
            }
        }
        Ok(UnreadCounts {
            total: conversations.iter().map(|(_, count)| count).sum(),
            conversations,
        })
    }

    pub(super) async fn announce_receipt_change(&self, change: ReceiptChange) -> Result<()> {
        let members = self.members(&change.conversation_id).await?;
        let frame = |status, up_to_seq| ServerFrame::Receipt {
            conversation_id: change.conversation_id.clone(),
            user_id: change.user_id.clone(),
            status,
            up_to_seq,
        };
        let delivered_moved = change.delivered_seq > change.old_delivered_seq
            && change.delivered_seq > change.read_seq;
        let read_moved = change.read_seq > change.old_read_seq;
        if members.kind == ConversationType::Direct {
            // Two people: the other side and the reader's own devices (the echo).
            if delivered_moved {
                self.deliver(
                    members.user_ids.clone(),
                    frame(ReceiptStatus::Delivered, change.delivered_seq),
                )
                .await;
            }
            if read_moved {
                self.deliver(
                    members.user_ids.clone(),
                    frame(ReceiptStatus::Read, change.read_seq),
                )
                .await;
            }
            return Ok(());
        }
        // Groups: no N² fan-out. The reader's devices get their own read pointer; the
        // senders of the messages the pointer passed get the receipt, if still members.
        if read_moved {
            let mut recipients: Vec<UserId> = self
                .inner
                .store
                .fetch_senders(
                    &change.conversation_id,
                    change.old_read_seq,
                    change.read_seq,
                    rules::RECEIPT_SENDERS,
                )
                .await?
                .into_iter()
                .filter(|sender_id| members.is_member(sender_id))
                .collect();
            if !recipients.contains(&change.user_id) {
                recipients.push(change.user_id.clone());
            }
            self.deliver(
                Arc::from(recipients),
                frame(ReceiptStatus::Read, change.read_seq),
            )
            .await;
        }
        if delivered_moved {
            let recipients: Vec<UserId> = self
                .inner
                .store
                .fetch_senders(
                    &change.conversation_id,
                    change.old_delivered_seq,
                    change.delivered_seq,
                    rules::RECEIPT_SENDERS,
                )
                .await?
                .into_iter()
                .filter(|sender_id| sender_id != &change.user_id && members.is_member(sender_id))
                .collect();
            if !recipients.is_empty() {
                self.deliver(
                    Arc::from(recipients),
                    frame(ReceiptStatus::Delivered, change.delivered_seq),
                )
                .await;
            }
        }
        Ok(())
    }
}

pub(super) async fn flush_receipts(inner: &Arc<Inner>) {
    let _one_at_a_time = inner.receipt_flush.lock().await;
    let updates = inner.receipts.take();
    if updates.is_empty() {
        return;
    }
    let changes = match inner.store.update_receipts(updates.clone()).await {
        Ok(changes) => changes,
        Err(error) => {
            tracing::warn!(%error, "receipt flush failed; will retry");
            for update in updates {
                inner.receipts.note(
                    &update.conversation_id,
                    &update.user_id,
                    update.delivered_seq,
                    update.read_seq,
                );
            }
            return;
        }
    };
    let chat = Chat {
        inner: inner.clone(),
    };
    for change in changes {
        if let Err(error) = chat.announce_receipt_change(change).await {
            tracing::warn!(%error, "receipt announcement failed");
        }
    }
}
