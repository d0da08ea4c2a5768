//! Changes to a group after its creation (rename, add, remove, leave, roles): checked
//! when asked, queued behind the sends before them, and decided again in the committer
//! against the members at that moment (`rules::plan_change`, `members_version`), then
//! announced from there in `seq` order.

use super::*;

impl Chat {
    /// Group admins rename or describe a group; any member of a direct chat (group
    /// admins) set its disappearing messages. Each change is a system message.
    pub async fn update_conversation(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        request: GroupDetails,
    ) -> Result<Conversation> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        let name = match request.name {
            Some(name) => Some(checked_name("name", name, MAX_GROUP_NAME)?),
            None => None,
        };
        let description = match request.description {
            Some(text) => Some(checked_text("description", text, 0, MAX_DESCRIPTION)?),
            None => None,
        };
        let mut intents = Vec::with_capacity(3);
        if name.is_some() || description.is_some() {
            intents.push(ChangeIntent::Rename { name, description });
        }
        let picture_given = request.avatar_media_id.is_some();
        // What the picture and the timer are now: setting either to that announces nothing.
        let current = match picture_given || request.disappearing_seconds.is_some() {
            true => Some(
                self.inner
                    .store
                    .fetch_conversation(conversation_id)
                    .await
                    .map_err(not_found_is_not_member)?,
            ),
            false => None,
        };
        if let (Some(media_id), Some(current)) = (request.avatar_media_id, &current) {
            let media_id = self.checked_avatar(session, media_id).await?;
            let intent = ChangeIntent::SetAvatar(media_id.clone());
            // Allowed or not even when it is the picture it has already (then there is
            // nothing to announce).
            self.plan(&members, session, &intent)?;
            if current.avatar_media_id != media_id {
                intents.push(intent);
            }
        }
        if let (Some(seconds), Some(current)) = (request.disappearing_seconds, &current) {
            let choices = &self.inner.config.disappearing_choices;
            if seconds != 0 && !choices.contains(&seconds) {
                let choices: Vec<String> = choices.iter().map(u32::to_string).collect();
                return Err(Error::Invalid(format!(
                    "disappearing_seconds must be 0 (off) or one of {}",
                    choices.join(", ")
                )));
            }
            if current.disappearing_seconds != seconds {
                self.check_direct_chat_open(session, &members).await?;
                intents.push(ChangeIntent::SetDisappearing(seconds));
            }
        }
        if intents.is_empty() && request.disappearing_seconds.is_none() && !picture_given {
            return Err(Error::Invalid(
                "nothing to change: give name, description, avatar_media_id or \
                 disappearing_seconds"
                    .into(),
            ));
        }
        // Checked here for a quick answer, and again at commit against the members then.
        for intent in &intents {
            self.plan(&members, session, intent)?;
        }
        if !intents.is_empty() {
            self.check_group_change_rate(session, conversation_id)
                .await?;
        }
        for intent in intents {
            self.change_conversation(session, conversation_id, intent)
                .await?;
        }
        self.conversation(session, conversation_id).await
    }

    /// Group admins add users to a group; returns the members after.
    pub async fn add_members(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        user_ids: Vec<UserId>,
    ) -> Result<Vec<Member>> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        let plan = self.plan(&members, session, &ChangeIntent::AddMembers(user_ids))?;
        let Some(SystemEvent::MembersAdded {
            user_ids: joining, ..
        }) = plan.events.first()
        else {
            return Ok(members.members.clone());
        };
        for user_id in joining {
            self.live_user(user_id).await?;
        }
        self.check_not_blocked_by(session, joining).await?;
        let intent = ChangeIntent::AddMembers(joining.clone());
        self.check_group_change_rate(session, conversation_id)
            .await?;
        self.change_conversation(session, conversation_id, intent)
            .await?;
        Ok(self.members(conversation_id).await?.members.clone())
    }

    /// What `intent` would do now, by the group rules (`rules::plan_change`).
    pub(super) fn plan(
        &self,
        members: &ConversationMembers,
        session: &Session,
        intent: &ChangeIntent,
    ) -> Result<rules::ChangePlan> {
        rules::plan_change(
            members,
            &session.user_id,
            intent,
            self.inner.config.max_group_members,
        )
    }

    /// The owner makes a member an admin or
    /// an admin a member, or hands ownership over (and becomes an admin).
    pub async fn set_role(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        user_id: &UserId,
        role: Role,
    ) -> Result<Vec<Member>> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        let intent = ChangeIntent::SetRole {
            user_id: user_id.clone(),
            role,
        };
        // Checked here for a quick answer, and again at commit against the members then.
        if self.plan(&members, session, &intent)?.is_noop() {
            return Ok(members.members.clone());
        }
        self.check_group_change_rate(session, conversation_id)
            .await?;
        self.change_conversation(session, conversation_id, intent)
            .await?;
        Ok(self.members(conversation_id).await?.members.clone())
    }

    /// Admins remove members; anyone
    /// leaves. Only the owner may remove an admin; nobody removes the owner. When the
    /// owner leaves, the longest-standing admin (else member) becomes the owner.
    pub async fn remove_member(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<()> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        let intent = ChangeIntent::Remove {
            user_id: user_id.clone(),
        };
        self.plan(&members, session, &intent)?;
        // Leaving is never rate limited: a user must always be able to get out.
        if user_id != &session.user_id {
            self.check_group_change_rate(session, conversation_id)
                .await?;
        }
        self.change_conversation(session, conversation_id, intent)
            .await
    }

    /// Queues a change behind every send before it; the committer authorizes it against
    /// the members at that moment, stores it and announces it (see `apply_change`).
    pub(super) async fn change_conversation(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        intent: ChangeIntent,
    ) -> Result<()> {
        let (reply, outcome) = oneshot::channel();
        self.inner
            .commit_queue
            .send(CommitRequest::Change(PendingChange {
                conversation_id: conversation_id.clone(),
                actor: session.clone(),
                intent,
                reply,
            }))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        outcome.await.map_err(|_| Error::ShuttingDown)?
    }

    /// The members as the store has them now, past the cache: what a change is decided on.
    pub(super) async fn fresh_members(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<(ConversationRecord, ConversationMembers)> {
        let record = self
            .inner
            .store
            .fetch_conversation(conversation_id)
            .await
            .map_err(not_found_is_not_member)?;
        let members = self.inner.store.fetch_members(conversation_id).await?;
        let members = ConversationMembers::new(record.kind, members, record.members_version);
        Ok((record, members))
    }

    /// Runs a change in the committer, between batches. Authorizes it against the members
    /// as they are now (a request checked against an older state is decided again) and
    /// stores it only if they have not moved since (`members_version`; another node may
    /// change them in cluster mode). Returns what must be announced, which the fan-out
    /// publishes in `seq` order with the sends around it: every node drops its cached
    /// members, the system messages go to old and new members, removed members get
    /// `conversation_removed`, and the current members get `conversation_updated`.
    pub(crate) async fn apply_change(
        &self,
        actor: &Session,
        conversation_id: &ConversationId,
        intent: ChangeIntent,
    ) -> Result<Vec<BusEvent>> {
        let mut attempts = 0;
        let (before, plan, appended) = loop {
            let (_, before) = self.fresh_members(conversation_id).await?;
            let plan = rules::plan_change(
                &before,
                &actor.user_id,
                &intent,
                self.inner.config.max_group_members,
            )?;
            if plan.is_noop() {
                return Ok(Vec::new());
            }
            let now = Timestamp::now();
            let update = ConversationUpdate {
                expected_members_version: before.version,
                changes: plan.changes.clone(),
                system_messages: plan
                    .events
                    .iter()
                    .map(|event| self.system_message(actor, conversation_id, event.clone(), now))
                    .collect(),
            };
            match self
                .inner
                .store
                .update_conversation(conversation_id, update)
                .await
            {
                Ok(appended) => break (before, plan, appended),
                Err(StoreError::Conflict(_)) if attempts < MAX_CHANGE_ATTEMPTS => attempts += 1,
                // Other nodes kept changing the members: busy, not the caller's fault.
                Err(StoreError::Conflict(_)) => return Err(Error::Busy),
                Err(error) if matches!(intent, ChangeIntent::SetAvatar(_)) => {
                    return Err(avatars::avatar_gone(error))
                }
                Err(error) => return Err(error.into()),
            }
        };
        self.inner.members.invalidate(conversation_id);
        let mut events = vec![BusEvent::MembershipChanged {
            conversation_id: conversation_id.clone(),
        }];
        let (record, after) = self.fresh_members(conversation_id).await?;
        let mut recipients: Vec<UserId> = after.user_ids.to_vec();
        for user_id in before.user_ids.iter() {
            if !after.is_member(user_id) {
                recipients.push(user_id.clone());
            }
        }
        let recipients: Arc<[UserId]> = Arc::from(recipients);
        for appended in appended {
            events.push(deliver_event(
                recipients.clone(),
                ServerFrame::NewMessage(appended.message),
            ));
        }
        if !plan.removed.is_empty() {
            let frame = ServerFrame::ConversationRemoved {
                conversation_id: conversation_id.clone(),
            };
            events.push(deliver_event(plan.removed.into(), frame));
        }
        let conversation = conversation_view(record, Some(after.members), None);
        events.push(conversation_updated_event(conversation));
        Ok(events)
    }

    pub(super) fn system_message(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        event: SystemEvent,
        created_at: Timestamp,
    ) -> NewMessage {
        let message_id = ids::new_message_id();
        NewMessage {
            client_msg_id: format!("{SYSTEM_CLIENT_ID_PREFIX}{message_id}"),
            content: system_text(&event),
            message_id,
            conversation_id: conversation_id.clone(),
            sender_id: session.user_id.clone(),
            sender_device_id: session.device_id.clone(),
            content_type: ContentType::SYSTEM,
            reply_to_seq: None,
            created_at,
            system: Some(event),
            target_seq: None,
            mentions: Vec::new(),
            forwarded: false,
            attachments: Vec::new(),
        }
    }
}

/// `conversation_updated` for every member of `conversation`.
pub(super) fn conversation_updated_event(conversation: Conversation) -> BusEvent {
    let user_ids: Arc<[UserId]> = conversation
        .members
        .iter()
        .flatten()
        .map(|member| member.user_id.clone())
        .collect();
    deliver_event(user_ids, ServerFrame::ConversationUpdated { conversation })
}
