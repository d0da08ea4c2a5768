//! Streaming a `sync`: everything after the client's cursors, conversation by
//! conversation in `seq` order, then `sync_done`.
//!
//! Pages of `SYNC_PAGE` messages are read and written one at a time under a node-wide
//! permit (`AppState::syncs`), each within `SYNC_PAGE_DEADLINE`, so syncs bound the memory
//! they hold and a slow reader cannot keep a permit. `sync_done` never claims more than
//! was written: a conversation whose read failed reports the cursor it really reached.

use super::connection::Connection;
use super::Socket;
use crate::error::error_frame;
use axum::extract::ws::Message;
use parley_proto::{ErrorCode, ServerFrame};

/// Messages read per page while streaming a `sync`: with 64 KiB contents a page holds at
/// most ~4 MiB, and at most `max_concurrent_syncs` pages are held on a node at once.
const SYNC_PAGE: u32 = 64;
/// Longest wait for a sync permit, and longest time to read and write one sync page:
/// past it the socket is closed (the client reconnects and syncs again).
const SYNC_PAGE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// What streaming one `sync` page did.
enum PageOutcome {
    /// Written, up to this `seq`.
    Sent(i64),
    /// Nothing more to send.
    Empty,
    /// The read failed; an `error` frame was written.
    Failed,
}

impl<S: Socket> Connection<S> {
    /// Streams everything after the cursors, conversation by conversation in `seq`
    /// order, then `sync_done`. `Err` when the socket broke or must close.
    pub(super) async fn sync(&mut self, cursors: parley_proto::frames::Cursors) -> Result<(), ()> {
        let plan = match self.state.chat.plan_sync(&self.session, &cursors).await {
            Ok(plan) => plan,
            Err(error) => return self.write(&error_frame(&error, None)).await,
        };
        for conversation_id in &plan.not_member {
            let refusal = ServerFrame::error(
                ErrorCode::NotMember,
                format!("not a member of {conversation_id}; cursor ignored"),
            );
            self.write(&refusal).await?;
        }
        let mut done = plan.done;
        for (conversation_id, after_seq, up_to_seq) in plan.ranges {
            let reached = self
                .stream_range(&conversation_id, after_seq, up_to_seq)
                .await?;
            if reached < up_to_seq {
                // Say only how far this conversation really got, so the client does not
                // skip what it never received.
                done.insert(conversation_id, reached);
            }
        }
        self.positions.synced(&done);
        self.write(&ServerFrame::SyncDone { cursors: done }).await
    }

    /// Streams the messages of `conversation_id` after `after_seq` up to `up_to_seq` (or
    /// until a read fails, after an `error` frame), page by page; answers how far it got.
    /// `Err` when the socket broke or must close.
    pub(super) async fn stream_range(
        &mut self,
        conversation_id: &parley_proto::ConversationId,
        mut after_seq: i64,
        up_to_seq: i64,
    ) -> Result<i64, ()> {
        while after_seq < up_to_seq {
            // Held while the page is read and written: bounds sync memory per node.
            let permit =
                tokio::time::timeout(SYNC_PAGE_DEADLINE, self.state.syncs.clone().acquire_owned())
                    .await;
            let Ok(Ok(_permit)) = permit else {
                let busy = ServerFrame::error(
                    ErrorCode::Unavailable,
                    "too many syncs on this server: reconnect and sync again",
                );
                let _ = self.write(&busy).await;
                return Err(());
            };
            // One deadline for reading and writing the whole page, so a client that
            // reads slowly cannot hold a permit for long (each write alone has 10 s).
            let page = tokio::time::timeout(
                SYNC_PAGE_DEADLINE,
                self.sync_one_page(conversation_id, after_seq),
            )
            .await
            .map_err(|_| ())??;
            match page {
                PageOutcome::Sent(last_seq) => after_seq = last_seq,
                // Nothing left to send: the range is done.
                PageOutcome::Empty => return Ok(up_to_seq),
                PageOutcome::Failed => break,
            }
        }
        Ok(after_seq)
    }

    /// Reads one page of `sync` after `after_seq` and writes it.
    async fn sync_one_page(
        &mut self,
        conversation_id: &parley_proto::ConversationId,
        after_seq: i64,
    ) -> Result<PageOutcome, ()> {
        let page = match self
            .state
            .chat
            .sync_page(&self.session, conversation_id, after_seq, SYNC_PAGE)
            .await
        {
            Ok(page) => page,
            Err(error) => {
                self.write(&error_frame(&error, None)).await?;
                return Ok(PageOutcome::Failed);
            }
        };
        let Some(last_seq) = page.last().map(|message| message.seq) else {
            return Ok(PageOutcome::Empty);
        };
        for message in page {
            self.positions
                .received(&message.conversation_id, message.seq);
            let frame = ServerFrame::NewMessage(message).to_json();
            self.feed(Message::Text(frame.into())).await?;
        }
        self.flush().await?;
        Ok(PageOutcome::Sent(last_seq))
    }
}
