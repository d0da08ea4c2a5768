//! Sending (checks, rate limits, the commit queue, the retry of a stored message),
//! fan-out after commit, history and sync.

use super::*;

impl Chat {
    /// Checks a send and queues it for the next group commit. The queue keeps the order of
    /// calls, so one connection's sends get `seq`s in the order it sent them. Await the
    /// returned receiver for the stored message (`msg_ack`).
    pub async fn submit_message(
        &self,
        session: &Session,
        mut request: SendRequest,
    ) -> Result<oneshot::Receiver<Result<Appended>>> {
        if self.inner.shutting_down.load(Ordering::Relaxed) {
            return Err(Error::ShuttingDown);
        }
        let client_msg_id = std::mem::take(&mut request.client_msg_id);
        let id_chars = client_msg_id.chars().count();
        if id_chars == 0 || id_chars > parley_proto::limits::MAX_CLIENT_MSG_ID {
            return Err(Error::Invalid(
                "client_msg_id must be 1-128 characters".into(),
            ));
        }
        if request.content.len() > self.inner.config.max_content_bytes {
            return Err(Error::ContentTooLarge {
                limit: self.inner.config.max_content_bytes,
            });
        }
        if client_msg_id.starts_with(SYSTEM_CLIENT_ID_PREFIX) {
            return Err(Error::Invalid(format!(
                "client_msg_id must not start with '{SYSTEM_CLIENT_ID_PREFIX}' (reserved)"
            )));
        }
        let content_type = request.content_type.take().unwrap_or(ContentType::TEXT);
        if !content_type.is_sendable() {
            return Err(Error::Invalid(
                "content_type must be 1-64 characters of a-z 0-9 . / + - _, and not 'system'"
                    .into(),
            ));
        }
        let attachment_ids = std::mem::take(&mut request.attachments);
        let mentions = if content_type.is_change() {
            if !attachment_ids.is_empty() {
                return Err(Error::Invalid(format!(
                    "a {content_type} carries no attachments"
                )));
            }
            check_change_fields(&content_type, &request)?;
            if let Some(emoji) = (content_type == ContentType::REACTION)
                .then(|| canonical_reaction(&request.content))
                .flatten()
            {
                request.content = emoji.to_owned();
            }
            Vec::new()
        } else {
            if attachment_ids.is_empty() || !request.content.trim().is_empty() {
                check_content(&request.content)?;
            } else {
                // Attachments without a caption.
                request.content.clear();
            }
            if request.target_seq.is_some() {
                return Err(Error::Invalid(
                    "target_seq is only for reaction, edit and delete".into(),
                ));
            }
            checked_mentions(&request.mentions)?
        };
        let admitted = if content_type.is_change() {
            self.admit_change(
                session,
                &request.conversation_id,
                &content_type,
                request.target_seq.unwrap_or_default(),
            )
            .await
        } else {
            self.admit_send(
                session,
                &request.conversation_id,
                request.reply_to_seq,
                &mentions,
            )
            .await
        };
        if let Err(refusal) = admitted {
            return self
                .first_ack_or(refusal, session, &request.conversation_id, &client_msg_id)
                .await;
        }
        let attachments = if attachment_ids.is_empty() {
            Vec::new()
        } else {
            self.resolve_attachments(session, &attachment_ids, request.forwarded)
                .await?
        };
        let (reply, outcome) = oneshot::channel();
        let pending = PendingSend {
            message: NewMessage {
                message_id: ids::new_message_id(),
                conversation_id: request.conversation_id,
                sender_id: session.user_id.clone(),
                sender_device_id: session.device_id.clone(),
                client_msg_id,
                content: request.content,
                content_type,
                reply_to_seq: request.reply_to_seq,
                created_at: Timestamp::now(),
                system: None,
                target_seq: request.target_seq,
                mentions,
                forwarded: request.forwarded,
                attachments,
            },
            reply,
            queued_at: Instant::now(),
            origin_connection: request.origin_connection,
        };
        self.inner
            .commit_queue
            .send(CommitRequest::Send(pending))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        Ok(outcome)
    }

    /// The checks a send must pass besides its own fields: membership, `reply_to_seq`,
    /// mentions of members only, rate limits (which spend a token when passed).
    pub(super) async fn admit_send(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        reply_to_seq: Option<i64>,
        mentions: &[UserId],
    ) -> Result<()> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        if let Some(stranger) = mentions.iter().find(|user_id| !members.is_member(user_id)) {
            return Err(Error::Invalid(format!(
                "mentions must be members of the conversation ({stranger} is not)"
            )));
        }
        if let Some(reply_to_seq) = reply_to_seq {
            let record = self.inner.store.fetch_conversation(conversation_id).await?;
            if reply_to_seq < 1 || reply_to_seq > record.last_seq {
                return Err(Error::NotFound("message for reply_to_seq"));
            }
        }
        self.check_send_rate(session, conversation_id, members.kind)
            .await
    }

    /// A refused send may be the retry of one already stored (the sender has since hit
    /// a rate limit or been removed): the protocol promises the first message's ack
    /// again, so look before refusing.
    pub(super) async fn first_ack_or(
        &self,
        refusal: Error,
        session: &Session,
        conversation_id: &ConversationId,
        client_msg_id: &str,
    ) -> Result<oneshot::Receiver<Result<Appended>>> {
        if !matches!(
            refusal,
            Error::NotMember
                | Error::RateLimited { .. }
                | Error::TargetNotFound
                | Error::EditWindowPassed
        ) {
            return Err(refusal);
        }
        match self
            .inner
            .store
            .fetch_message_by_client_id(&session.user_id, client_msg_id)
            .await?
        {
            Some(first) if &first.conversation_id == conversation_id => {
                let (reply, outcome) = oneshot::channel();
                let _ = reply.send(Ok(Appended {
                    message: first,
                    duplicate: true,
                    members_version: 0,
                }));
                Ok(outcome)
            }
            // Stored in another conversation: not a retry of this send.
            Some(_) | None => Err(refusal),
        }
    }

    /// Sends and waits for the commit (the REST fallback).
    pub async fn send_message(&self, session: &Session, request: SendRequest) -> Result<Appended> {
        let outcome = self.submit_message(session, request).await?;
        outcome.await.map_err(|_| Error::ShuttingDown)?
    }

    /// After a commit, in the fan-out task: the `new_message` event for every device of
    /// every member but the sending socket, and the sender's read pointer moves to their
    /// own message. The recipients are the members at the `members_version` the commit
    /// saw, or later: a cached list older than that is read again, so a member removed
    /// on another node never receives, even if the bus lost the invalidation.
    pub(crate) async fn message_event(
        &self,
        message: Message,
        origin_connection: Option<ConnectionId>,
        members_version: i64,
    ) -> Option<BusEvent> {
        let members = match self
            .members_at_least(&message.conversation_id, members_version)
            .await
        {
            Ok(members) => members,
            Err(error) => {
                tracing::error!(%error, conversation_id = %message.conversation_id, "fan-out skipped: members unavailable");
                return None;
            }
        };
        metrics::counter!("parley_messages_total").increment(1);
        // A change is nobody's reading: the sender's pointer moves for messages only.
        if !message.content_type.is_system() && !message.is_change() {
            self.inner
                .receipts
                .note(&message.conversation_id, &message.sender_id, 0, message.seq);
        }
        Some(BusEvent::Deliver {
            user_ids: members.user_ids.clone(),
            except_connection: origin_connection,
            created_at_ms: Some(message.created_at.millis()),
            frame: Arc::new(ServerFrame::NewMessage(message)),
        })
    }

    /// A page of a conversation's history, in ascending `seq`.
    pub async fn history(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<HistoryPage> {
        self.members_for(conversation_id, &session.user_id).await?;
        let limit = limit.clamp(1, parley_proto::limits::MAX_HISTORY_PAGE);
        // Scrolling back takes the newest end; reading forward (only after_seq) the oldest.
        let from = if after_seq.is_some() && before_seq.is_none() {
            PageFrom::Oldest
        } else {
            PageFrom::Newest
        };
        let mut messages = self
            .inner
            .store
            .fetch_messages(
                conversation_id,
                SeqRange {
                    after_seq,
                    before_seq,
                },
                from,
                limit + 1,
                &session.user_id,
            )
            .await?;
        let has_more = messages.len() > limit as usize;
        if has_more {
            match from {
                PageFrom::Oldest => {
                    messages.pop();
                }
                PageFrom::Newest => {
                    messages.remove(0);
                }
            }
        }
        Ok(HistoryPage { messages, has_more })
    }

    /// One page of `sync` for one conversation: messages after `after_seq`, oldest first.
    pub async fn sync_page(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Message>> {
        self.members_for(conversation_id, &session.user_id).await?;
        Ok(self
            .inner
            .store
            .fetch_messages(
                conversation_id,
                SeqRange {
                    after_seq: Some(after_seq),
                    before_seq: None,
                },
                PageFrom::Oldest,
                limit,
                &session.user_id,
            )
            .await?)
    }

    /// What a `sync` must send: for each conversation of the user, where to start and at
    /// most how many messages (`None`: all). Conversations with a cursor resume after it;
    /// those without one get their newest unread messages, at most
    /// `sync_uncursored_limit`. Also returns cursors the user gave for conversations they
    /// are not in, and the final `sync_done` cursors.
    pub async fn plan_sync(&self, session: &Session, cursors: &Cursors) -> Result<SyncPlan> {
        let mut plan = self
            .plan_catch_up(session, |conversation_id| {
                cursors.get(conversation_id).copied()
            })
            .await?;
        plan.not_member = cursors
            .keys()
            .filter(|conversation_id| !plan.done.contains_key(*conversation_id))
            .cloned()
            .collect();
        Ok(plan)
    }

    /// What a device holding each conversation up to `cursor_of` (if it names one) is
    /// missing, by the rules of `sync`, in one read: the plan of a `sync` and of the
    /// gateway's position check. `not_member` stays empty.
    pub async fn plan_catch_up(
        &self,
        session: &Session,
        cursor_of: impl Fn(&ConversationId) -> Option<i64>,
    ) -> Result<SyncPlan> {
        let positions = self
            .inner
            .store
            .list_conversation_positions(&session.user_id)
            .await?;
        let mut plan = SyncPlan::default();
        for position in positions {
            let ConversationPosition {
                conversation_id,
                last_seq,
                read_seq,
                cleared_seq,
            } = position;
            // Nothing up to where the user cleared the chat is theirs to receive.
            let start = match cursor_of(&conversation_id) {
                Some(cursor) => cursor.clamp(cleared_seq.min(last_seq), last_seq),
                None => read_seq.max(last_seq - i64::from(self.inner.config.sync_uncursored_limit)),
            };
            if start < last_seq {
                plan.ranges.push((conversation_id.clone(), start, last_seq));
            }
            plan.done.insert(conversation_id, last_seq);
        }
        Ok(plan)
    }
}

/// The answer to a `sync`.
#[derive(Debug, Default)]
pub struct SyncPlan {
    /// `(conversation, after_seq, up_to_seq)` to stream, oldest first.
    pub ranges: Vec<(ConversationId, i64, i64)>,
    /// Cursors named in the request that are not the user's conversations.
    pub not_member: Vec<ConversationId>,
    /// The `sync_done` cursors: every conversation of the user with its `last_seq`.
    pub done: Cursors,
}
