//! Push notifications: the services a device may subscribe with.

use serde::{Deserialize, Serialize};

/// The push service a device's subscription goes to (`PUT /devices/me/push`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    /// Web Push (RFC 8030) to a browser's push service: `endpoint` and `keys`.
    Webpush,
    /// Web Push to a UnifiedPush distributor's endpoint: `endpoint` and `keys`.
    Unifiedpush,
    /// Apple Push Notification service: the device `token`.
    Apns,
    /// Firebase Cloud Messaging (HTTP v1): the registration `token`.
    Fcm,
}

impl PushKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PushKind::Webpush => "webpush",
            PushKind::Unifiedpush => "unifiedpush",
            PushKind::Apns => "apns",
            PushKind::Fcm => "fcm",
        }
    }

    /// The stored name read back; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Webpush, Self::Unifiedpush, Self::Apns, Self::Fcm]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// Web Push and UnifiedPush: an endpoint URL and the browser's keys, not a token.
    pub fn is_web_push(self) -> bool {
        matches!(self, PushKind::Webpush | PushKind::Unifiedpush)
    }
}
