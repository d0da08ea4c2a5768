//! Changes to messages (reactions, edits, deletes for everyone), which are entries in the
//! conversation's `seq` stream decided here and applied by the store at commit; and the
//! per-user operations around messages: hide (delete for me), forward, who reacted.

use super::*;

impl Chat {
    /// The checks a change entry must pass against its target: membership, the target is
    /// an ordinary message of this conversation that is not deleted, and the rules of its
    /// kind (a reaction: any member; an edit: the sender within the edit window; a
    /// delete: the sender within the window, or a group admin or owner at any time).
    /// Spends a send token when passed. The store checks the target again at commit.
    pub(super) async fn admit_change(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        kind: &ContentType,
        target_seq: i64,
    ) -> Result<()> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        let target = self.change_target(conversation_id, target_seq).await?;
        let age_ms = Timestamp::now().millis() - target.created_at.millis();
        rules::may_change(
            kind,
            &members,
            &session.user_id,
            &target.sender_id,
            std::time::Duration::from_millis(u64::try_from(age_ms).unwrap_or(0)),
            self.inner.config.edit_window,
        )?;
        self.check_send_rate(session, conversation_id, members.kind)
            .await
    }

    /// The message a change or a per-message operation names: `TargetNotFound` if there
    /// is no ordinary message at that `seq` (none, a system message, a change entry) or
    /// it was deleted.
    async fn change_target(
        &self,
        conversation_id: &ConversationId,
        target_seq: i64,
    ) -> Result<Message> {
        if target_seq < 1 {
            return Err(Error::TargetNotFound);
        }
        let target = match self
            .inner
            .store
            .fetch_message(conversation_id, target_seq)
            .await
        {
            Ok(target) => target,
            Err(StoreError::NotFound) => return Err(Error::TargetNotFound),
            Err(error) => return Err(error.into()),
        };
        // A system message or a change entry is no message to change: as for a `seq`
        // with nothing there, the request names no target (a state of the conversation,
        // not a malformed request).
        if target.content_type.is_system() || target.is_change() || target.deleted {
            return Err(Error::TargetNotFound);
        }
        Ok(target)
    }

    /// Hides a message from the user on all their devices (delete for me): it leaves
    /// their history, search, preview and mention count; the others keep it.
    pub async fn hide_message(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<()> {
        self.members_for(conversation_id, &session.user_id).await?;
        self.check_write_rate(session).await?;
        if seq < 1 {
            return Err(Error::NotFound("message"));
        }
        match self
            .inner
            .store
            .hide_message(&session.user_id, conversation_id, seq)
            .await
        {
            Err(StoreError::NotFound) => return Err(Error::NotFound("message")),
            other => other?,
        }
        self.publish(deliver_event(
            Arc::from(vec![session.user_id.clone()]),
            ServerFrame::MessageHidden {
                conversation_id: conversation_id.clone(),
                seq,
            },
        ))
        .await;
        Ok(())
    }

    /// Copies an ordinary message into up to five other conversations of the user, each
    /// copy `forwarded` and with no link to its source (no reply, no mentions). All
    /// memberships are checked before anything is sent. With `client_msg_id`, copy `i`
    /// is sent as `"{client_msg_id}:{i}"`, so a retried forward makes no second copies.
    pub async fn forward(
        &self,
        session: &Session,
        from: &ConversationId,
        seq: i64,
        to: &[ConversationId],
        client_msg_id: Option<String>,
    ) -> Result<Vec<Message>> {
        let limit = parley_proto::limits::MAX_FORWARD_TARGETS;
        if to.is_empty() || to.len() > limit {
            return Err(Error::Invalid(format!(
                "to_conversation_ids must name 1-{limit} conversations"
            )));
        }
        let mut distinct = HashSet::new();
        if !to
            .iter()
            .all(|conversation_id| distinct.insert(conversation_id))
        {
            return Err(Error::Invalid(
                "to_conversation_ids must not repeat a conversation".into(),
            ));
        }
        if let Some(id) = &client_msg_id {
            let chars = id.chars().count();
            if chars == 0 || chars > parley_proto::limits::MAX_CLIENT_MSG_ID - 2 {
                return Err(Error::Invalid(format!(
                    "client_msg_id must be 1-{} characters",
                    parley_proto::limits::MAX_CLIENT_MSG_ID - 2
                )));
            }
        }
        self.members_for(from, &session.user_id).await?;
        for conversation_id in to {
            self.members_for(conversation_id, &session.user_id).await?;
        }
        let source = match self.change_target(from, seq).await {
            Err(Error::TargetNotFound) => return Err(Error::NotFound("message")),
            other => other?,
        };
        let mut pending = Vec::with_capacity(to.len());
        for (index, conversation_id) in to.iter().enumerate() {
            let request = SendRequest {
                client_msg_id: match &client_msg_id {
                    Some(id) => format!("{id}:{index}"),
                    None => ids::new_message_id().to_string(),
                },
                conversation_id: conversation_id.clone(),
                content: source.content.clone(),
                content_type: Some(source.content_type.clone()),
                reply_to_seq: None,
                target_seq: None,
                mentions: Vec::new(),
                attachments: source
                    .attachments
                    .iter()
                    .map(|media| media.media_id.clone())
                    .collect(),
                forwarded: true,
                origin_connection: None,
            };
            pending.push(self.submit_message(session, request).await?);
        }
        let mut copies = Vec::with_capacity(pending.len());
        for outcome in pending {
            copies.push(outcome.await.map_err(|_| Error::ShuttingDown)??.message);
        }
        Ok(copies)
    }

    /// Who reacted to a message with what.
    pub async fn reactions(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<Vec<ReactionUsers>> {
        self.members_for(conversation_id, &session.user_id).await?;
        let record = self.inner.store.fetch_conversation(conversation_id).await?;
        if seq < 1 || seq > record.last_seq {
            return Err(Error::NotFound("message"));
        }
        Ok(self
            .inner
            .store
            .fetch_reactions(conversation_id, seq)
            .await?)
    }
}

/// The fields of a change entry: a `target_seq`, no reply or mentions, and the content
/// its kind takes (a reaction one emoji or `""`, an edit a new text, a delete `""`).
pub(super) fn check_change_fields(kind: &ContentType, request: &SendRequest) -> Result<()> {
    if request.target_seq.is_none() {
        return Err(Error::Invalid(format!("a {kind} needs target_seq")));
    }
    if request.reply_to_seq.is_some() || !request.mentions.is_empty() {
        return Err(Error::Invalid(format!(
            "a {kind} has no reply_to_seq and no mentions"
        )));
    }
    if *kind == ContentType::REACTION {
        if !request.content.is_empty() && canonical_reaction(&request.content).is_none() {
            return Err(Error::Invalid(
                "a reaction's content is one emoji, or \"\" to remove it".into(),
            ));
        }
    } else if *kind == ContentType::EDIT {
        check_content(&request.content)?;
    } else if !request.content.is_empty() {
        return Err(Error::Invalid("a delete's content must be \"\"".into()));
    }
    Ok(())
}

/// One emoji as people pick it (a single emoji, with skin tone, gender, ZWJ or flag
/// sequences, with or without its presentation selector), in its one fully-qualified
/// spelling, so "❤" and "❤️" count as the same reaction. `None` for anything else.
pub(super) fn canonical_reaction(text: &str) -> Option<&'static str> {
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    emojis::get(text)
        .or_else(|| emojis::get(&format!("{text}\u{FE0F}")))
        .map(|emoji| emoji.as_str())
}

/// Mentions of a message: at most `MAX_MENTIONS`, each once, in the order given.
pub(super) fn checked_mentions(mentions: &[UserId]) -> Result<Vec<UserId>> {
    let limit = parley_proto::limits::MAX_MENTIONS;
    let mut seen = HashSet::new();
    let distinct: Vec<UserId> = mentions
        .iter()
        .filter(|user_id| seen.insert(*user_id))
        .cloned()
        .collect();
    if distinct.len() > limit {
        return Err(Error::Invalid(format!(
            "a message mentions at most {limit} users"
        )));
    }
    Ok(distinct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_are_single_emoji_in_one_spelling() {
        for emoji in ["👍", "❤️", "😂", "👍🏽", "🇫🇷", "👩‍💻", "🏳️‍🌈"]
        {
            assert_eq!(canonical_reaction(emoji), Some(emoji), "{emoji}");
        }
        assert_eq!(canonical_reaction("❤"), Some("❤️"));
        for text in ["", "a", "ok", "👍👍", "👍 ", ":+1:", "<b>", "1"] {
            assert_eq!(canonical_reaction(text), None, "{text:?}");
        }
    }

    #[test]
    fn mentions_are_deduplicated_and_bounded() {
        let alice = UserId("u_alice".into());
        let bob = UserId("u_bob".into());
        assert_eq!(
            checked_mentions(&[alice.clone(), bob.clone(), alice.clone()]).unwrap(),
            vec![alice, bob]
        );
        let many: Vec<UserId> = (0..65).map(|n| UserId(format!("u_{n}"))).collect();
        assert!(checked_mentions(&many).is_err());
    }
}
