//! Each user's own settings for their conversations (mute, archive, pin, marked unread,
//! and where they deleted the chat for themselves): they follow the user to every device,
//! live, and shape their list.

use super::*;
use crate::store::{ChatSettingsUpdate, Conflict, MUTED_FOREVER};

/// A user pins at most this many conversations.
pub const MAX_PINNED: usize = 5;

impl Chat {
    /// Changes the user's own settings for a conversation and sends the conversation, as
    /// they now see it, to all their devices (`conversation_updated`). Archiving unpins;
    /// pinning takes the chat out of the archive. Pinning a sixth is `TooManyPinned`.
    pub async fn update_settings(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        settings: ChatSettings,
    ) -> Result<Conversation> {
        self.members_for(conversation_id, &session.user_id).await?;
        self.check_write_rate(session).await?;
        let now = Timestamp::now();
        let mut update = ChatSettingsUpdate {
            muted_until: settings.muted_until.map(|muted| {
                muted.map(|muted| match muted {
                    MutedUntil::Forever => MUTED_FOREVER,
                    MutedUntil::Until(until) => until,
                })
            }),
            archived_at: settings.archived.map(|archived| archived.then_some(now)),
            pinned_at: settings.pinned.map(|pinned| pinned.then_some(now)),
            marked_unread: settings.marked_unread,
        };
        if settings.archived == Some(true) && settings.pinned == Some(true) {
            return Err(Error::Invalid(
                "a conversation is archived or pinned, not both".into(),
            ));
        }
        if settings.archived == Some(true) {
            update.pinned_at = Some(None);
        }
        if settings.pinned == Some(true) {
            update.archived_at = Some(None);
        }
        match self
            .inner
            .store
            .update_chat_settings(
                conversation_id,
                &session.user_id,
                &update,
                MAX_PINNED as u32,
            )
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(Conflict::TooManyPinned)) => {
                return Err(Error::TooManyPinned { limit: MAX_PINNED })
            }
            Err(error) => return Err(not_found_is_not_member(error)),
        }
        let conversation = self.conversation(session, conversation_id).await?;
        self.publish(deliver_event(
            Arc::from(vec![session.user_id.clone()]),
            ServerFrame::ConversationUpdated {
                conversation: conversation.clone(),
            },
        ))
        .await;
        Ok(conversation)
    }
}

impl Chat {
    /// Deletes the chat for the user alone ("delete chat for me"): everything in it up
    /// to now leaves their history, sync, search and counts on all their devices, and
    /// the chat leaves their list until a new message arrives (`Store::clear_conversation`).
    /// The others see no change and get no receipt. All the user's devices get the
    /// conversation as they now see it (`conversation_updated`, with `cleared_seq`).
    pub async fn clear_conversation(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
    ) -> Result<Conversation> {
        self.members_for(conversation_id, &session.user_id).await?;
        self.check_write_rate(session).await?;
        self.inner
            .store
            .clear_conversation(conversation_id, &session.user_id)
            .await
            .map_err(not_found_is_not_member)?;
        let conversation = self.conversation(session, conversation_id).await?;
        self.publish(deliver_event(
            Arc::from(vec![session.user_id.clone()]),
            ServerFrame::ConversationUpdated {
                conversation: conversation.clone(),
            },
        ))
        .await;
        Ok(conversation)
    }
}

/// The user's settings as the wire shows them at `now`: a mute that ended is no mute; an
/// archived chat that a message brought back (and that is not muted) is not archived.
pub(super) fn settings_view(summary: &ConversationSummary, now: Timestamp) -> SettingsView {
    let muted_until = summary.muted_until.and_then(|until| {
        if until == MUTED_FOREVER {
            Some(MutedUntil::Forever)
        } else {
            (until > now).then_some(MutedUntil::Until(until))
        }
    });
    SettingsView {
        muted_until,
        archived: rules::is_archived(
            summary.archived_at,
            summary.conversation.last_activity_at,
            muted_until.is_some(),
        ),
        marked_unread: summary.marked_unread,
    }
}

pub(super) struct SettingsView {
    pub(super) muted_until: Option<MutedUntil>,
    pub(super) archived: bool,
    pub(super) marked_unread: bool,
}
