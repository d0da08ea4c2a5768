//! Blocking: a block stops the pair's direct chat both ways (the store refuses the
//! messages, `AppendRefusal::Blocked`), keeps the blocked user from starting one or adding
//! the blocker to a group, and hides presence, last seen and typing across it. Group
//! messages still flow both ways.

use super::*;
use crate::store::BlockRelations;
use parley_proto::BlockedUser;

impl Chat {
    /// `POST /users/{id}/block`. Blocking twice is not an error.
    pub async fn block(&self, session: &Session, user_id: &UserId) -> Result<()> {
        if user_id == &session.user_id {
            return Err(Error::Forbidden("you cannot block yourself".into()));
        }
        self.check_write_rate(session).await?;
        let new = match self
            .inner
            .store
            .block_user(&session.user_id, user_id, Timestamp::now())
            .await
        {
            Ok(new) => new,
            Err(StoreError::MissingReference | StoreError::NotFound) => {
                return Err(Error::NotFound("user"))
            }
            Err(error) => return Err(error.into()),
        };
        if new {
            // What either of them saw of the other's presence goes blank.
            self.deliver(
                Arc::from([user_id.clone()]),
                hidden_presence(&session.user_id),
            )
            .await;
            self.deliver(
                Arc::from([session.user_id.clone()]),
                hidden_presence(user_id),
            )
            .await;
        }
        Ok(())
    }

    /// `DELETE /users/{id}/block`. Unblocking someone not blocked is not an error; someone
    /// who does not exist is `NotFound`.
    pub async fn unblock(&self, session: &Session, user_id: &UserId) -> Result<()> {
        self.check_write_rate(session).await?;
        let lifted = self
            .inner
            .store
            .unblock_user(&session.user_id, user_id)
            .await?;
        if !lifted {
            self.user(user_id).await?;
        }
        if lifted {
            // Each sees the other's presence again, if nothing else hides it.
            for (watcher, watched) in [(user_id, &session.user_id), (&session.user_id, user_id)] {
                let frames = self
                    .presence_snapshot_for(watcher, std::slice::from_ref(watched))
                    .await?;
                for frame in frames {
                    self.deliver(Arc::from([watcher.clone()]), frame).await;
                }
            }
        }
        Ok(())
    }

    /// `GET /users/me/blocked`: newest block first.
    pub async fn blocked_users(&self, session: &Session) -> Result<Vec<BlockedUser>> {
        let blocked = self.inner.store.list_blocked(&session.user_id).await?;
        Ok(blocked
            .into_iter()
            .map(|(user, blocked_at)| BlockedUser {
                user_id: user.user_id,
                username: user.username,
                display_name: user.display_name,
                blocked_at,
            })
            .collect())
    }

    pub(super) async fn block_relations(&self, user_id: &UserId) -> Result<BlockRelations> {
        Ok(self.inner.store.fetch_block_relations(user_id).await?)
    }

    /// Refuses a change in a direct chat that takes no messages: a block either way, or
    /// the other account deleted (its system message would still reach the other side).
    pub(super) async fn check_direct_chat_open(
        &self,
        session: &Session,
        members: &ConversationMembers,
    ) -> Result<()> {
        if members.kind != ConversationType::Direct {
            return Ok(());
        }
        let relations = self.block_relations(&session.user_id).await?;
        for other in members.others(&session.user_id).iter() {
            let deleted = self
                .inner
                .store
                .fetch_user(other)
                .await?
                .deleted_at
                .is_some();
            if deleted || relations.with(other) {
                return Err(Error::Blocked(crate::error::BLOCKED_DIRECT_CHAT));
            }
        }
        Ok(())
    }

    /// Refuses when one of `user_ids` blocks the caller: they cannot be put in a chat
    /// with them (a direct chat, a group they create or add to).
    pub(super) async fn check_not_blocked_by(
        &self,
        session: &Session,
        user_ids: impl IntoIterator<Item = &UserId>,
    ) -> Result<()> {
        let relations = self.block_relations(&session.user_id).await?;
        if user_ids
            .into_iter()
            .any(|user_id| relations.blocked_by.contains(user_id))
        {
            return Err(Error::Blocked("this user blocks you"));
        }
        Ok(())
    }
}

/// A presence frame that says nothing: what a watcher is left with when they may no
/// longer see someone.
pub(super) fn hidden_presence(user_id: &UserId) -> ServerFrame {
    ServerFrame::Presence {
        user_id: user_id.clone(),
        status: PresenceStatus::Offline,
        last_seen: None,
    }
}
