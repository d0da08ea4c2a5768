//! Presence (multi-device, `last_seen` privacy) and typing relay. Nothing here is stored
//! but `last_seen`.

use super::*;

impl Chat {
    /// A device connected. Announces `online` when it is the user's first.
    pub async fn connected(&self, session: &Session, connection_id: u64) {
        match self
            .inner
            .presence
            .connect(&session.user_id, &session.device_id, connection_id)
            .await
        {
            Ok(true) => {
                let frame = ServerFrame::Presence {
                    user_id: session.user_id.clone(),
                    status: PresenceStatus::Online,
                    last_seen: None,
                };
                self.publish(BusEvent::Presence {
                    user_id: session.user_id.clone(),
                    frame: frame.to_json().into(),
                })
                .await;
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "presence connect failed"),
        }
    }

    /// A device disconnected. Stores `last_seen` and announces `offline` when it was the
    /// user's last.
    pub async fn disconnected(&self, session: &Session, connection_id: u64) {
        match self
            .inner
            .presence
            .disconnect(&session.user_id, connection_id)
            .await
        {
            Ok(true) => {
                let now = Timestamp::now();
                if let Err(error) = self
                    .inner
                    .store
                    .update_last_seen(&session.user_id, now)
                    .await
                {
                    tracing::warn!(%error, "could not store last_seen");
                }
                let visible = self
                    .inner
                    .store
                    .fetch_user(&session.user_id)
                    .await
                    .map(|user| user.last_seen_visible)
                    .unwrap_or(false);
                // A quick reconnect (a page reload) may have announced `online` while
                // this task was writing: then `offline` would be the wrong last word.
                let back_online = self
                    .inner
                    .presence
                    .online(std::slice::from_ref(&session.user_id))
                    .await
                    .map(|online| online.first().copied().unwrap_or(false))
                    .unwrap_or(false);
                if back_online {
                    return;
                }
                let frame = ServerFrame::Presence {
                    user_id: session.user_id.clone(),
                    status: PresenceStatus::Offline,
                    last_seen: visible.then_some(now),
                };
                self.publish(BusEvent::Presence {
                    user_id: session.user_id.clone(),
                    frame: frame.to_json().into(),
                })
                .await;
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "presence disconnect failed"),
        }
    }

    /// `presence_subscribe`: the current presence of each user, to send right away; later
    /// changes arrive as `BusEvent::Presence`.
    pub async fn presence_snapshot(&self, user_ids: &[UserId]) -> Result<Vec<ServerFrame>> {
        if user_ids.len() > MAX_PRESENCE_USERS {
            return Err(Error::Invalid(format!(
                "at most {MAX_PRESENCE_USERS} users per presence_subscribe"
            )));
        }
        let online = self
            .inner
            .presence
            .online(user_ids)
            .await
            .map_err(|error| Error::Bus(error.to_string()))?;
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
        self.deliver(members.others(&session.user_id), &frame).await;
        Ok(())
    }
}
