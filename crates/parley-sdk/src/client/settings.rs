//! The REST calls for a user's own control over their chats: mute, archive, pin, marked
//! unread, and the archived list.

use super::*;
use parley_proto::rest::ConversationSettingsRequest;
use parley_proto::MutedUntil;

impl Client {
    /// `GET /conversations?archived=true`: the archived conversations, newest activity
    /// first.
    pub async fn archived_conversations(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ConversationList, SdkError> {
        self.list_conversations(true, cursor, limit).await
    }

    /// `PATCH /conversations/{id}/settings`: this user's settings, on all their devices;
    /// the conversation as they now see it.
    pub async fn update_settings(
        &self,
        conversation_id: &ConversationId,
        settings: &ConversationSettingsRequest,
    ) -> Result<Conversation, SdkError> {
        self.with_body(
            Method::PATCH,
            &["conversations", conversation_id.as_str(), "settings"],
            settings,
        )
        .await
    }

    /// Mutes the conversation until `until` (`None`: unmutes).
    pub async fn mute(
        &self,
        conversation_id: &ConversationId,
        until: Option<MutedUntil>,
    ) -> Result<Conversation, SdkError> {
        let settings = ConversationSettingsRequest {
            muted_until: Some(until),
            ..Default::default()
        };
        self.update_settings(conversation_id, &settings).await
    }

    /// Archives the conversation (`false`: takes it out of the archive).
    pub async fn archive(
        &self,
        conversation_id: &ConversationId,
        archived: bool,
    ) -> Result<Conversation, SdkError> {
        let settings = ConversationSettingsRequest {
            archived: Some(archived),
            ..Default::default()
        };
        self.update_settings(conversation_id, &settings).await
    }

    /// Pins the conversation to the top of the list (`false`: unpins). At most 5.
    pub async fn pin(
        &self,
        conversation_id: &ConversationId,
        pinned: bool,
    ) -> Result<Conversation, SdkError> {
        let settings = ConversationSettingsRequest {
            pinned: Some(pinned),
            ..Default::default()
        };
        self.update_settings(conversation_id, &settings).await
    }

    /// Marks the conversation as unread (`false`: clears the mark; reading it does too).
    pub async fn mark_unread(
        &self,
        conversation_id: &ConversationId,
        marked: bool,
    ) -> Result<Conversation, SdkError> {
        let settings = ConversationSettingsRequest {
            marked_unread: Some(marked),
            ..Default::default()
        };
        self.update_settings(conversation_id, &settings).await
    }
}
