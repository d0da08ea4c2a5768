//! Making identifiers: a one-letter prefix and a ULID, so ids sort by creation time and
//! say what they name in logs.

use parley_proto::{ConversationId, DeviceId, MessageId, UserId};

pub fn new_user_id() -> UserId {
    UserId(format!("u_{}", ulid::Ulid::new()))
}

pub fn new_device_id() -> DeviceId {
    DeviceId(format!("d_{}", ulid::Ulid::new()))
}

pub fn new_conversation_id() -> ConversationId {
    ConversationId(format!("c_{}", ulid::Ulid::new()))
}

pub fn new_message_id() -> MessageId {
    MessageId(ulid::Ulid::new().to_string())
}

/// A new upload's id (`m_…`).
pub fn new_media_id() -> parley_proto::MediaId {
    parley_proto::MediaId(format!("m_{}", ulid::Ulid::new()))
}

/// The key that makes a direct conversation unique per pair, whatever the order.
pub fn direct_key(first: &UserId, second: &UserId) -> String {
    if first <= second {
        format!("{first}:{second}")
    } else {
        format!("{second}:{first}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_key_ignores_order() {
        let alice = UserId::from("u_a");
        let bob = UserId::from("u_b");
        assert_eq!(direct_key(&alice, &bob), direct_key(&bob, &alice));
        assert_ne!(direct_key(&alice, &alice), direct_key(&alice, &bob));
    }

    #[test]
    fn ids_are_prefixed_and_unique() {
        let first = new_conversation_id();
        let second = new_conversation_id();
        assert!(first.as_str().starts_with("c_"));
        assert_ne!(first, second);
        assert_eq!(new_message_id().as_str().len(), 26);
    }
}
