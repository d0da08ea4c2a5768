//! WebSocket frames: one JSON object per text frame, `type` says which.

use crate::{
    ContentType, Conversation, ConversationId, DeviceId, ErrorCode, MediaId, Message, MessageId,
    PresenceStatus, ReceiptStatus, Timestamp, UserId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-conversation positions: "I have everything up to this `seq`".
pub type Cursors = BTreeMap<ConversationId, i64>;

/// Client → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Authenticate, when the token was not given as `?token=` on the upgrade.
    Auth { token: String },
    /// Send; `client_msg_id` (client-made, unique per sender) makes a retry safe.
    SendMessage {
        client_msg_id: String,
        conversation_id: ConversationId,
        content: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<ContentType>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to_seq: Option<i64>,
        /// For `reaction`, `edit` and `delete`: the message changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_seq: Option<i64>,
        /// For `text`: members mentioned (each must be a current member).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<UserId>,
        /// Completed media of the sender's (at most 10); `content` is the caption.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<MediaId>,
    },
    /// This device has received everything up to `seq` (delivered).
    Ack {
        conversation_id: ConversationId,
        seq: i64,
    },
    /// The user has read up to `up_to_seq`.
    Read {
        conversation_id: ConversationId,
        up_to_seq: i64,
    },
    /// Ephemeral, never stored.
    Typing {
        conversation_id: ConversationId,
        is_typing: bool,
    },
    /// Send me everything after these cursors, then `sync_done`.
    Sync {
        #[serde(default)]
        cursors: Cursors,
    },
    /// I have these people's chats open: push me their presence.
    PresenceSubscribe { user_ids: Vec<UserId> },
    /// Heartbeat; answered by `pong`.
    Ping {},
}

/// Server → client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The connection is authenticated.
    Ready {
        user_id: UserId,
        device_id: DeviceId,
        /// Extension: how often the client should `ping`.
        #[serde(default)]
        heartbeat_interval_ms: u64,
    },
    /// Stored durably ("sent").
    MsgAck {
        client_msg_id: String,
        conversation_id: ConversationId,
        message_id: MessageId,
        seq: i64,
        created_at: Timestamp,
    },
    /// A message, to every device of every member (the sender's other devices included).
    NewMessage(Message),
    /// Someone received / read up to `up_to_seq`.
    Receipt {
        conversation_id: ConversationId,
        user_id: UserId,
        status: ReceiptStatus,
        up_to_seq: i64,
    },
    Typing {
        conversation_id: ConversationId,
        user_id: UserId,
        is_typing: bool,
    },
    Presence {
        user_id: UserId,
        status: PresenceStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seen: Option<Timestamp>,
    },
    /// Created, renamed, members changed. The conversation is nested under
    /// `conversation` because its own `type` field ("direct"/"group") would collide with
    /// the frame's `type`.
    ConversationUpdated {
        conversation: Conversation,
    },
    /// Extension: this user is no longer a member (removed or left); drop local state
    /// or keep it read-only.
    ConversationRemoved {
        conversation_id: ConversationId,
    },
    /// Extension: this user hid the message ("delete for me", from any of their
    /// devices): drop it from view. History returns it as `hidden: true` from now on.
    MessageHidden {
        conversation_id: ConversationId,
        seq: i64,
    },
    /// The sync is complete; `cursors` holds the last `seq` of every conversation the
    /// user is a member of.
    SyncDone {
        cursors: Cursors,
    },
    /// A frame was refused; the connection stays open unless it cannot.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Pong {},
}

impl ServerFrame {
    /// An `error` frame with no `client_msg_id`.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            client_msg_id: None,
            retry_after_ms: None,
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_from_protocol_examples() {
        let frame: ClientFrame = serde_json::from_str(
            r#"{"type":"send_message","client_msg_id":"m1","conversation_id":"c_1","content":"Hello!"}"#,
        )
        .unwrap();
        assert!(
            matches!(frame, ClientFrame::SendMessage { ref content, .. } if content == "Hello!")
        );
        let ping: ClientFrame = serde_json::from_str(r#"{"type":"ping"}"#).unwrap();
        assert_eq!(ping, ClientFrame::Ping {});
        let sync: ClientFrame =
            serde_json::from_str(r#"{"type":"sync","cursors":{"c_1":4}}"#).unwrap();
        assert!(matches!(sync, ClientFrame::Sync { ref cursors } if cursors.len() == 1));
    }

    #[test]
    fn new_message_is_flat() {
        let message = Message {
            message_id: MessageId::from("01J"),
            conversation_id: ConversationId::from("c_1"),
            seq: 42,
            sender_id: UserId::from("u_1"),
            sender_device_id: DeviceId::from("d_1"),
            client_msg_id: "x".into(),
            content: "Hello!".into(),
            content_type: ContentType::TEXT,
            reply_to_seq: None,
            created_at: Timestamp(0),
            system: None,
            target_seq: None,
            mentions: Vec::new(),
            forwarded: false,
            attachments: Vec::new(),
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            hidden: false,
            expires_at: None,
        };
        let value: serde_json::Value =
            serde_json::from_str(&ServerFrame::NewMessage(message).to_json()).unwrap();
        assert_eq!(value["type"], "new_message");
        assert_eq!(value["seq"], 42);
        assert_eq!(value["reply_to_seq"], serde_json::Value::Null);
        assert_eq!(
            serde_json::to_string(&ServerFrame::Pong {}).unwrap(),
            r#"{"type":"pong"}"#
        );
    }
}
