//! The REST calls for a user's own control over their chats and presence: mute, archive,
//! pin, marked unread, the archived list; blocking; who sees their last seen.

use super::*;
use parley_proto::rest::{BlockedList, ConversationSettingsRequest};
use parley_proto::{BlockedUser, LastSeenPrivacy, MutedUntil};

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

    /// `POST /conversations/{id}/clear`: deletes the chat for this user alone, on all
    /// their devices (everything in it so far leaves their history, search and list until
    /// a new message comes); the conversation as they now see it, with `cleared_seq`.
    pub async fn clear_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, SdkError> {
        let url = self.url(&["conversations", conversation_id.as_str(), "clear"]);
        self.call(self.request(Method::POST, url)).await
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

impl Client {
    /// `POST /users/{id}/block`: their direct chat stops both ways, and neither sees the
    /// other's presence or typing. Blocking twice is not an error.
    pub async fn block(&self, user_id: &UserId) -> Result<(), SdkError> {
        let url = self.url(&["users", user_id.as_str(), "block"]);
        self.call_empty(self.request(Method::POST, url)).await
    }

    /// `DELETE /users/{id}/block`.
    pub async fn unblock(&self, user_id: &UserId) -> Result<(), SdkError> {
        let url = self.url(&["users", user_id.as_str(), "block"]);
        self.call_empty(self.request(Method::DELETE, url)).await
    }

    /// `GET /users/me/blocked`: newest block first.
    pub async fn blocked_users(&self) -> Result<Vec<BlockedUser>, SdkError> {
        let list: BlockedList = self.get(&["users", "me", "blocked"]).await?;
        Ok(list.blocked)
    }

    /// Who sees this user's online status and last seen (`PATCH /users/me`).
    pub async fn set_last_seen_privacy(
        &self,
        privacy: LastSeenPrivacy,
    ) -> Result<Profile, SdkError> {
        let update = UpdateProfileRequest {
            last_seen_privacy: Some(privacy),
            ..Default::default()
        };
        self.update_me(&update).await
    }

    /// Disappearing messages in a conversation (`PATCH /conversations/{id}`): what is sent
    /// from now on expires `seconds` after sending (0: off). Any member of a direct chat;
    /// group admins.
    pub async fn set_disappearing(
        &self,
        conversation_id: &ConversationId,
        seconds: u32,
    ) -> Result<Conversation, SdkError> {
        let update = parley_proto::rest::UpdateConversationRequest {
            disappearing_seconds: Some(seconds),
            ..Default::default()
        };
        self.update_conversation(conversation_id, &update).await
    }

    /// `DELETE /users/me/devices`: every token of this user revoked, this client's too.
    pub async fn logout_everywhere(&self) -> Result<(), SdkError> {
        let url = self.url(&["users", "me", "devices"]);
        self.call_empty(self.request(Method::DELETE, url)).await
    }

    /// `DELETE /users/me`: deletes the account (the password confirms it). Its messages
    /// stay for the others, from "Deleted account"; every token fails from now on.
    pub async fn delete_account(&self, password: &str) -> Result<(), SdkError> {
        let url = self.url(&["users", "me"]);
        let body = parley_proto::rest::DeleteAccountRequest {
            password: password.to_owned(),
        };
        self.call_empty(self.request(Method::DELETE, url).json(&body))
            .await
    }

    /// `GET /users/me/export`: the profile, blocks, conversations and every message this
    /// user sent.
    pub async fn export(&self) -> Result<parley_proto::AccountExport, SdkError> {
        self.get(&["users", "me", "export"]).await
    }
}
