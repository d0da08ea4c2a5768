//! Presence (multi-device, `last_seen` privacy, blocks) and typing relay. Nothing here is
//! stored but `last_seen`. Which sockets a node holds is in `node.rs`.
//!
//! Who sees a user's presence is decided where it changes: each `BusEvent::Presence`
//! carries its [`PresenceAudience`] (from `last_seen_privacy` and the user's blocks), and
//! every node offers the frame only to the watching sockets of users it admits. A snapshot
//! at `presence_subscribe` applies the same rule from the watcher's side. What a watcher
//! sees of a user hidden from them is the frame that says nothing (`offline`, no
//! `last_seen`): in the snapshot, and once when they stop being visible; then no change.

use super::*;
use crate::bus::PresenceAudience;
use blocks::hidden_presence;
use parley_proto::LastSeenPrivacy;

impl Chat {
    /// Announces that the user has come online.
    pub(super) async fn announce_online(&self, user_id: &UserId) {
        let frame = ServerFrame::Presence {
            user_id: user_id.clone(),
            status: PresenceStatus::Online,
            last_seen: None,
        };
        self.publish_presence(user_id, frame).await;
    }

    /// The user's last device went away: stores `last_seen` and announces `offline`.
    pub(super) async fn went_offline(&self, user_id: &UserId) {
        let now = Timestamp::now();
        if let Err(error) = self.inner.store.update_last_seen(user_id, now).await {
            tracing::warn!(%error, "could not store last_seen");
        }
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
            last_seen: Some(now),
        };
        self.publish_presence(user_id, frame).await;
    }

    /// Publishes a change of `user_id`'s presence to the watchers their privacy and blocks
    /// admit (none: nothing is published).
    async fn publish_presence(&self, user_id: &UserId, frame: ServerFrame) {
        let audience = match self.presence_audience(user_id).await {
            Ok(audience) => audience,
            Err(error) => {
                // Unknown who may see it: nobody does. Watchers catch up at their next
                // subscribe.
                tracing::warn!(%error, "presence audience unknown; not announced");
                return;
            }
        };
        if audience.is_nobody() {
            return;
        }
        self.publish(BusEvent::Presence {
            user_id: user_id.clone(),
            frame: Arc::new(frame),
            audience,
        })
        .await;
    }

    /// Who may see `user_id`'s presence now.
    async fn presence_audience(&self, user_id: &UserId) -> Result<PresenceAudience> {
        let user = self.inner.store.fetch_user(user_id).await?;
        let relations = self.block_relations(user_id).await?;
        Ok(match user.last_seen_privacy {
            LastSeenPrivacy::Everyone => PresenceAudience::AllBut {
                user_ids: relations.all().cloned().collect(),
            },
            LastSeenPrivacy::Contacts => {
                let partners = self.inner.store.fetch_direct_partners(user_id).await?;
                PresenceAudience::Only {
                    user_ids: partners
                        .into_iter()
                        .filter(|partner| !relations.with(partner))
                        .collect(),
                }
            }
            LastSeenPrivacy::Nobody => PresenceAudience::Only {
                user_ids: Arc::from(Vec::new()),
            },
        })
    }

    /// After `user_id` changed their `last_seen_privacy`: those who may no longer see them
    /// get a frame that says nothing, those who may get their presence now.
    pub(super) async fn presence_privacy_changed(&self, user_id: &UserId) -> Result<()> {
        let audience = self.presence_audience(user_id).await?;
        // The complement of who may see; those on the other side of a block already saw
        // nothing.
        let hidden_from = match &audience {
            PresenceAudience::AllBut { .. } => None,
            PresenceAudience::Only { user_ids } => Some(PresenceAudience::AllBut {
                user_ids: user_ids.clone(),
            }),
        };
        let mut events = Vec::with_capacity(2);
        if let Some(hidden_from) = hidden_from {
            events.push(BusEvent::Presence {
                user_id: user_id.clone(),
                frame: Arc::new(hidden_presence(user_id)),
                audience: hidden_from,
            });
        }
        if !audience.is_nobody() {
            let online = self
                .inner
                .presence
                .online(std::slice::from_ref(user_id))
                .await?;
            let frame = if online.first().copied().unwrap_or(false) {
                ServerFrame::Presence {
                    user_id: user_id.clone(),
                    status: PresenceStatus::Online,
                    last_seen: None,
                }
            } else {
                let user = self.inner.store.fetch_user(user_id).await?;
                ServerFrame::Presence {
                    user_id: user_id.clone(),
                    status: PresenceStatus::Offline,
                    last_seen: user.last_seen_at,
                }
            };
            events.push(BusEvent::Presence {
                user_id: user_id.clone(),
                frame: Arc::new(frame),
                audience,
            });
        }
        self.publish_checked(events).await
    }

    /// The current presence of each of `user_ids`, to send right away; later changes
    /// arrive as `BusEvent::Presence`. A user hidden from the watcher (privacy, a block
    /// either way) gets the frame that says nothing, so every user asked for is answered.
    pub(super) async fn presence_snapshot_for(
        &self,
        watcher: &UserId,
        user_ids: &[UserId],
    ) -> Result<Vec<ServerFrame>> {
        let relations = self.block_relations(watcher).await?;
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
        let mut partners = None;
        let mut frames = Vec::with_capacity(user_ids.len());
        for (user_id, is_online) in user_ids.iter().zip(online) {
            let Some(user) = users.get(user_id) else {
                continue;
            };
            let visible = match user.last_seen_privacy {
                _ if user_id == watcher => true,
                _ if relations.with(user_id) => false,
                LastSeenPrivacy::Everyone => true,
                LastSeenPrivacy::Nobody => false,
                LastSeenPrivacy::Contacts => {
                    if partners.is_none() {
                        partners = Some(self.inner.store.fetch_direct_partners(watcher).await?);
                    }
                    partners
                        .as_ref()
                        .is_some_and(|partners| partners.contains(user_id))
                }
            };
            if !visible {
                frames.push(hidden_presence(user_id));
                continue;
            }
            frames.push(ServerFrame::Presence {
                user_id: user_id.clone(),
                status: if is_online {
                    PresenceStatus::Online
                } else {
                    PresenceStatus::Offline
                },
                last_seen: if is_online { None } else { user.last_seen_at },
            });
        }
        Ok(frames)
    }

    /// `typing`: relayed to the other members' devices, except those on the other side of
    /// a block with the typist; not stored; not relayed in groups larger than
    /// `typing_max_group`.
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
        let relations = self.block_relations(&session.user_id).await?;
        let mut recipients = members.others(&session.user_id);
        if recipients.iter().any(|user_id| relations.with(user_id)) {
            recipients = recipients
                .iter()
                .filter(|user_id| !relations.with(user_id))
                .cloned()
                .collect();
        }
        if recipients.is_empty() {
            return Ok(());
        }
        let frame = ServerFrame::Typing {
            conversation_id: conversation_id.clone(),
            user_id: session.user_id.clone(),
            is_typing,
        };
        self.deliver(recipients, frame).await;
        Ok(())
    }
}
