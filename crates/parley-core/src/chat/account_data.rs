//! The account as data: logging out everywhere, deleting the account (password
//! confirmed), and exporting what parley keeps about a user.

use super::*;
use parley_proto::AccountExport;

/// How long a deleted account's username stays taken before anyone may register it.
pub const USERNAME_HOLD: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// The format name an export carries.
pub const EXPORT_FORMAT: &str = "parley-export-1";

impl Chat {
    /// Revokes every token of the user and closes their sockets on every node.
    pub async fn logout_everywhere(&self, session: &Session) -> Result<()> {
        let devices = self.inner.store.delete_devices(&session.user_id).await?;
        self.close_devices(&session.user_id, devices).await;
        Ok(())
    }

    /// `DELETE /users/me`: with the password confirmed, the user leaves their groups
    /// (each with its system message), then the account is deleted at once on every
    /// device and node (see `Store::delete_account`). Its messages stay for the others,
    /// from "Deleted account".
    pub async fn delete_account(&self, session: &Session, password: &str) -> Result<()> {
        let user = self.inner.store.fetch_user(&session.user_id).await?;
        let stored_hash = user.password_hash.clone();
        let password = password.to_owned();
        let verified = self
            .bounded_hashing(move || auth::verify_password(&stored_hash, &password))
            .await?
            .unwrap_or(false);
        if !verified {
            return Err(Error::Forbidden("the password is not right".into()));
        }
        let conversations = self
            .inner
            .store
            .list_conversation_positions(&session.user_id)
            .await?;
        let mut direct = Vec::new();
        for ConversationPosition {
            conversation_id, ..
        } in conversations
        {
            let members = match self.members(&conversation_id).await {
                Ok(members) => members,
                Err(Error::NotMember) => continue,
                Err(error) => return Err(error),
            };
            if members.kind == ConversationType::Direct {
                direct.push((conversation_id, members.others(&session.user_id)));
                continue;
            }
            let leave = ChangeIntent::Remove {
                user_id: session.user_id.clone(),
            };
            match self
                .change_conversation(session, &conversation_id, leave)
                .await
            {
                Ok(()) | Err(Error::NotMember) => {}
                Err(error) => return Err(error),
            }
        }
        // Whoever watched them sees nothing from now on.
        self.publish(BusEvent::Presence {
            user_id: session.user_id.clone(),
            frame: Arc::new(blocks::hidden_presence(&session.user_id)),
            audience: crate::bus::PresenceAudience::default(),
        })
        .await;
        let now = Timestamp::now();
        let free_at = Timestamp(
            now.millis()
                .saturating_add(i64::try_from(USERNAME_HOLD.as_millis()).unwrap_or(i64::MAX)),
        );
        let devices = self
            .inner
            .store
            .delete_account(&session.user_id, now, free_at)
            .await?;
        self.close_devices(&session.user_id, devices).await;
        // The other side of each direct chat sees "Deleted account" (every node drops
        // its cached members, which carry names).
        for (conversation_id, others) in direct {
            self.inner.members.invalidate(&conversation_id);
            self.publish(BusEvent::MembershipChanged {
                conversation_id: conversation_id.clone(),
            })
            .await;
            if let Ok((record, members)) = self.fresh_members(&conversation_id).await {
                let view = conversation_view(record, Some(members.members), None);
                self.deliver(
                    others,
                    ServerFrame::ConversationUpdated { conversation: view },
                )
                .await;
            }
        }
        Ok(())
    }

    /// `GET /users/me/export`: the profile, blocks, the conversations the user is in
    /// (as they see them), and every message they sent. Nothing another user sent is in
    /// it but the members' names of the user's own conversations. Counts against the
    /// per-user write rate limit (it is costly).
    pub async fn export(&self, session: &Session) -> Result<AccountExport> {
        self.check_write_rate(session).await?;
        let profile = own_profile(self.inner.store.fetch_user(&session.user_id).await?);
        let blocked = self.blocked_users(session).await?;
        let mut conversations = Vec::new();
        for ConversationPosition {
            conversation_id, ..
        } in self
            .inner
            .store
            .list_conversation_positions(&session.user_id)
            .await?
        {
            match self.conversation(session, &conversation_id).await {
                Ok(mut conversation) => {
                    conversation.last_message = None;
                    conversations.push(conversation);
                }
                Err(Error::NotMember) => {}
                Err(error) => return Err(error),
            }
        }
        let mut messages = Vec::new();
        for conversation_id in self
            .inner
            .store
            .fetch_sent_conversations(&session.user_id)
            .await?
        {
            messages.extend(
                self.inner
                    .store
                    .fetch_sent_messages(&session.user_id, &conversation_id)
                    .await?,
            );
        }
        Ok(AccountExport {
            format: EXPORT_FORMAT.to_owned(),
            exported_at: Timestamp::now(),
            profile,
            blocked,
            conversations,
            messages,
        })
    }

    /// Closes the sockets of `devices` on every node (their tokens are revoked).
    async fn close_devices(&self, user_id: &UserId, devices: Vec<parley_proto::DeviceId>) {
        let events: Vec<BusEvent> = devices
            .into_iter()
            .map(|device_id| BusEvent::CloseDevice {
                user_id: user_id.clone(),
                device_id,
            })
            .collect();
        if !events.is_empty() {
            // Not fatal: the tokens fail at once; a socket left open is closed at its
            // next frame's authentication check.
            let _ = self.publish_checked(events).await;
        }
    }
}
