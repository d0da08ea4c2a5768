//! Presence (multi-device, `last_seen` privacy) and typing relay. Nothing here is stored
//! but `last_seen`. Which sockets a node holds is in `node.rs`.

use super::*;

impl Chat {
    /// Announces that the user has come online.
    pub(super) async fn announce_online(&self, user_id: &UserId) {
        let frame = ServerFrame::Presence {
            user_id: user_id.clone(),
            status: PresenceStatus::Online,
            last_seen: None,
        };
        self.publish(BusEvent::Presence {
            user_id: user_id.clone(),
            frame: Arc::new(frame),
        })
        .await;
    }

    /// The user's last device went away: stores `last_seen` and announces `offline`.
    pub(super) async fn went_offline(&self, user_id: &UserId) {
        let now = Timestamp::now();
        if let Err(error) = self.inner.store.update_last_seen(user_id, now).await {
            tracing::warn!(%error, "could not store last_seen");
        }
        let visible = self
            .inner
            .store
            .fetch_user(user_id)
            .await
            .map(|user| user.last_seen_visible)
            .unwrap_or(false);
        // A quick reconnect (a page reload) may have announced `online` while this task
        // was writing: then `offline` would be the wrong last word.
        let back_online = self
            .inner
            .presence
            .online(std::slice::from_ref(user_id))
            .await
            .map(|online| online.first().copied().unwrap_or(false))
            .unwrap_or(false);
        if back_online {
            return;
        }
        let frame = ServerFrame::Presence {
            user_id: user_id.clone(),
            status: PresenceStatus::Offline,
            last_seen: visible.then_some(now),
        };
        self.publish(BusEvent::Presence {
            user_id: user_id.clone(),
            frame: Arc::new(frame),
        })
        .await;
    }

    /// The current presence of each user, to send right away; later changes arrive as
    /// `BusEvent::Presence`.
    pub(super) async fn presence_snapshot(&self, user_ids: &[UserId]) -> Result<Vec<ServerFrame>> {
        let online = self.inner.presence.online(user_ids).await?;
        // One query for all of them, not one per user.
        let users: std::collections::HashMap<UserId, UserRecord> = self
            .inner
            .store
            .fetch_users(user_ids)
            .await?
            .into_iter()
            .map(|user| (user.user_id.clone(), user))
            .collect();
        let mut frames = Vec::with_capacity(user_ids.len());
        for (user_id, is_online) in user_ids.iter().zip(online) {
            let Some(user) = users.get(user_id) else {
                continue;
            };
            frames.push(ServerFrame::Presence {
                user_id: user_id.clone(),
                status: if is_online {
                    PresenceStatus::Online
                } else {
                    PresenceStatus::Offline
                },
                last_seen: if is_online || !user.last_seen_visible {
                    None
                } else {
                    user.last_seen_at
                },
            });
        }
        Ok(frames)
    }

    /// `typing`: relayed to the other members' devices; not stored; not relayed in
    /// groups larger than `typing_max_group`.
    pub async fn typing(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        is_typing: bool,
    ) -> Result<()> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        if members.kind == ConversationType::Group
            && members.members.len() > self.inner.config.typing_max_group
        {
            return Ok(());
        }
        let frame = ServerFrame::Typing {
            conversation_id: conversation_id.clone(),
            user_id: session.user_id.clone(),
            is_typing,
        };
        self.deliver(members.others(&session.user_id), frame).await;
        Ok(())
    }
}
