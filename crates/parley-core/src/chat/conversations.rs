//! Conversations as a member sees them: the members cache, creating direct chats and
//! groups (new accounts' tighter limits), one conversation, the list. Changes to a group
//! after its creation are in `changes.rs`.

use super::*;

impl Chat {
    /// The members of a conversation, from the cache.
    pub(super) async fn members(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Arc<ConversationMembers>> {
        if let Some(members) = self.inner.members.get(conversation_id) {
            return Ok(members);
        }
        let generation = self.inner.members.generation();
        let record = match self.inner.store.fetch_conversation(conversation_id).await {
            Ok(record) => record,
            Err(StoreError::NotFound) => return Err(Error::NotMember),
            Err(error) => return Err(error.into()),
        };
        let members = self.inner.store.fetch_members(conversation_id).await?;
        let members = Arc::new(ConversationMembers::new(
            record.kind,
            members,
            record.members_version,
        ));
        self.inner
            .members
            .insert_if_current(conversation_id.clone(), members.clone(), generation);
        Ok(members)
    }

    /// The members at `members_version` or later: the cached list if it is that recent,
    /// else read again from the store (and cached).
    pub(super) async fn members_at_least(
        &self,
        conversation_id: &ConversationId,
        members_version: i64,
    ) -> Result<Arc<ConversationMembers>> {
        let cached = self.members(conversation_id).await?;
        if cached.version >= members_version {
            return Ok(cached);
        }
        metrics::counter!("parley_members_cache_stale_total").increment(1);
        self.inner.members.invalidate(conversation_id);
        self.members(conversation_id).await
    }

    /// The members, if `user_id` is one of them; `NotMember` otherwise (also for
    /// conversations that do not exist, so ids cannot be probed).
    pub(super) async fn members_for(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<Arc<ConversationMembers>> {
        let members = self.members(conversation_id).await?;
        if members.is_member(user_id) {
            Ok(members)
        } else {
            Err(Error::NotMember)
        }
    }

    /// Creates a direct chat (or opens the existing one) or a group; returns the
    /// conversation and whether it was created now.
    pub async fn create_conversation(
        &self,
        session: &Session,
        request: NewChat,
    ) -> Result<(Conversation, bool)> {
        let now = Timestamp::now();
        let new_conversation = match request {
            NewChat::Direct { participant_ids } => {
                let others: Vec<UserId> = participant_ids
                    .into_iter()
                    .filter(|user_id| user_id != &session.user_id)
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                let other = match others.as_slice() {
                    [other] => other.clone(),
                    [] => session.user_id.clone(),
                    _ => {
                        return Err(Error::Invalid(
                            "a direct conversation has exactly one other participant".into(),
                        ))
                    }
                };
                self.live_user(&other).await?;
                self.check_not_blocked_by(session, [&other]).await?;
                let mut members = vec![(session.user_id.clone(), Role::Member)];
                if other != session.user_id {
                    members.push((other.clone(), Role::Member));
                }
                NewConversation {
                    conversation_id: ids::new_conversation_id(),
                    kind: ConversationType::Direct,
                    name: None,
                    description: None,
                    direct_key: Some(ids::direct_key(&session.user_id, &other)),
                    members,
                    created_at: now,
                    system_message: None,
                }
            }
            NewChat::Group {
                name,
                member_ids,
                description,
            } => {
                let name = checked_name("name", name, MAX_GROUP_NAME)?;
                let description = optional_text("description", description, MAX_DESCRIPTION)?;
                let mut seen = HashSet::new();
                seen.insert(session.user_id.clone());
                let mut members = vec![(session.user_id.clone(), Role::Owner)];
                for user_id in member_ids {
                    if seen.insert(user_id.clone()) {
                        members.push((user_id, Role::Member));
                    }
                }
                if members.len() > self.inner.config.max_group_members {
                    return Err(Error::GroupFull {
                        limit: self.inner.config.max_group_members,
                    });
                }
                for (user_id, _) in &members[1..] {
                    self.live_user(user_id).await?;
                }
                self.check_not_blocked_by(session, members[1..].iter().map(|(user_id, _)| user_id))
                    .await?;
                let conversation_id = ids::new_conversation_id();
                let system_message = self.system_message(
                    session,
                    &conversation_id,
                    SystemEvent::GroupCreated {
                        actor_id: session.user_id.clone(),
                        name: name.clone(),
                        user_ids: members.iter().map(|(user_id, _)| user_id.clone()).collect(),
                    },
                    now,
                );
                NewConversation {
                    conversation_id,
                    kind: ConversationType::Group,
                    name: Some(name),
                    description,
                    direct_key: None,
                    members,
                    created_at: now,
                    system_message: Some(system_message),
                }
            }
        };
        let system_message = new_conversation.system_message.clone();
        let new_account_limit = self
            .check_creation_rate(session, new_conversation.kind)
            .await?;
        let (record, created) = match self.inner.store.insert_conversation(new_conversation).await {
            Ok(inserted) => inserted,
            Err(error) => {
                if let Some(bucket) = &new_account_limit {
                    self.refund(bucket).await;
                }
                return Err(error.into());
            }
        };
        if let (false, Some(bucket)) = (created, &new_account_limit) {
            // Opening an existing direct chat creates nothing.
            self.refund(bucket).await;
        }
        let members = self
            .inner
            .store
            .fetch_members(&record.conversation_id)
            .await?;
        let record_members_version = record.members_version;
        let conversation = conversation_view(record, Some(members.clone()), None);
        if created {
            self.inner.members.insert(
                conversation.conversation_id.clone(),
                Arc::new(ConversationMembers::new(
                    conversation.kind,
                    members,
                    record_members_version,
                )),
            );
            // `seq` 1 goes out before anyone learns of the conversation, so no member's
            // first send can be announced ahead of it.
            let mut events = Vec::new();
            if let Some(system_message) = system_message {
                events.extend(
                    self.message_event(system_message.with_seq(1), None, record_members_version)
                        .await,
                );
            }
            events.push(changes::conversation_updated_event(conversation.clone()));
            // Not fatal: devices catch up with `sync`.
            let _ = self.publish_checked(events).await;
        }
        let summary = self
            .inner
            .store
            .fetch_conversation_summary(
                &conversation.conversation_id,
                &session.user_id,
                rules::UNREAD,
            )
            .await?;
        Ok((self.summary_view(summary).await?, created))
    }

    /// One conversation of the user, with members and roles.
    pub async fn conversation(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
    ) -> Result<Conversation> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        let summary = self
            .inner
            .store
            .fetch_conversation_summary(conversation_id, &session.user_id, rules::UNREAD)
            .await
            .map_err(not_found_is_not_member)?;
        let mut conversation = summary_to_conversation(summary);
        conversation.members = Some(members.members.clone());
        Ok(conversation)
    }

    /// The user's conversations, a page at a time: pinned ones first (newest pin first),
    /// then by newest activity; the archived ones only when `archived`.
    pub async fn list_conversations(
        &self,
        session: &Session,
        archived: bool,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ConversationPage> {
        let cursor = match cursor {
            Some(text) if !text.is_empty() => Some(parse_list_cursor(text)?),
            _ => None,
        };
        let limit = limit.clamp(1, 100);
        let filter = ListFilter::Archived {
            archived,
            now: Timestamp::now(),
        };
        let summaries = self
            .inner
            .store
            .list_conversations(&session.user_id, filter, cursor, limit + 1, rules::UNREAD)
            .await?;
        let has_more = summaries.len() > limit as usize;
        let next_cursor = if has_more {
            summaries.get(limit as usize - 1).map(list_cursor)
        } else {
            None
        };
        let mut conversations = Vec::with_capacity(summaries.len().min(limit as usize));
        for summary in summaries.into_iter().take(limit as usize) {
            conversations.push(self.summary_view(summary).await?);
        }
        Ok(ConversationPage {
            conversations,
            next_cursor,
        })
    }

    pub(super) async fn summary_view(&self, summary: ConversationSummary) -> Result<Conversation> {
        let inline = summary.conversation.kind == ConversationType::Direct
            || summary.conversation.member_count as usize <= INLINE_MEMBERS_MAX;
        let members = if inline {
            Some(
                self.members(&summary.conversation.conversation_id)
                    .await?
                    .members
                    .clone(),
            )
        } else {
            None
        };
        let mut conversation = summary_to_conversation(summary);
        conversation.members = members;
        Ok(conversation)
    }
}
