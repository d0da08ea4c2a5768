//! The REST calls around messages beyond sending: reactions, edits and deletes (also
//! possible on a socket with [`crate::OutgoingMessage`]), delete for me, who reacted,
//! forwarding and search.

use super::*;
use parley_proto::rest::{ForwardRequest, ForwardResponse, ReactionsResponse, SearchResponse};
use parley_proto::{ContentType, ReactionUsers};

impl Client {
    /// Sends a change over REST (`reaction`, `edit`, `delete` of the message
    /// `target_seq`, with a fresh `client_msg_id`); the stored change entry.
    async fn send_change(
        &self,
        conversation_id: &ConversationId,
        kind: ContentType,
        target_seq: i64,
        content: &str,
    ) -> Result<Message, SdkError> {
        let request = SendMessageRequest {
            client_msg_id: crate::connection::new_client_msg_id(),
            content: content.to_owned(),
            content_type: Some(kind),
            reply_to_seq: None,
            target_seq: Some(target_seq),
            mentions: Vec::new(),
            attachments: Vec::new(),
        };
        self.send_rest(conversation_id, &request).await
    }

    /// Sets this user's one reaction on the message `seq` (`""` clears it), over REST.
    /// On a socket, send [`crate::OutgoingMessage::reaction`] instead.
    pub async fn react(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
        emoji: &str,
    ) -> Result<Message, SdkError> {
        self.send_change(conversation_id, ContentType::REACTION, seq, emoji)
            .await
    }

    /// Replaces the text of one's own message `seq` (within the edit window), over REST.
    pub async fn edit(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
        text: &str,
    ) -> Result<Message, SdkError> {
        self.send_change(conversation_id, ContentType::EDIT, seq, text)
            .await
    }

    /// Deletes the message `seq` for everyone, over REST.
    pub async fn delete_message(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<Message, SdkError> {
        self.send_change(conversation_id, ContentType::DELETE, seq, "")
            .await
    }

    /// `POST /conversations/{id}/messages/{seq}/hide`: delete for me.
    pub async fn hide_message(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<(), SdkError> {
        let url = self.url(&[
            "conversations",
            conversation_id.as_str(),
            "messages",
            &seq.to_string(),
            "hide",
        ]);
        self.call_empty(self.request(Method::POST, url)).await
    }

    /// `GET /conversations/{id}/messages/{seq}/reactions`: who reacted with what.
    pub async fn reactions(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<Vec<ReactionUsers>, SdkError> {
        let answer: ReactionsResponse = self
            .get(&[
                "conversations",
                conversation_id.as_str(),
                "messages",
                &seq.to_string(),
                "reactions",
            ])
            .await?;
        Ok(answer.reactions)
    }

    /// `POST /messages/forward`: copies the message into up to five conversations.
    pub async fn forward(&self, request: &ForwardRequest) -> Result<Vec<Message>, SdkError> {
        let answer: ForwardResponse = self
            .with_body(Method::POST, &["messages", "forward"], request)
            .await?;
        Ok(answer.messages)
    }

    /// `GET /search?q=&conversation_id=&cursor=&limit=`: messages with words starting
    /// with each word of `query`, newest first.
    pub async fn search(
        &self,
        query: &str,
        conversation_id: Option<&ConversationId>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<SearchResponse, SdkError> {
        let mut url = self.url(&["search"]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("q", query);
            if let Some(conversation_id) = conversation_id {
                pairs.append_pair("conversation_id", conversation_id.as_str());
            }
            if let Some(cursor) = cursor {
                pairs.append_pair("cursor", cursor);
            }
            if let Some(limit) = limit {
                pairs.append_pair("limit", &limit.to_string());
            }
        }
        self.call(self.request(Method::GET, url)).await
    }
}
