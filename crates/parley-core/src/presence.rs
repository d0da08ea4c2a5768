//! The presence port: which users have at least one connected device.
//!
//! The registry counts connections, not users, so a user goes offline only when their
//! last device does. It keeps no history: `last_seen` is stored by the core through the
//! `Store` when a user goes offline.

use async_trait::async_trait;
use parley_proto::{DeviceId, UserId};

#[derive(Debug, thiserror::Error)]
#[error("presence registry unavailable: {0}")]
pub struct PresenceError(pub String);

#[async_trait]
pub trait PresenceRegistry: Send + Sync + 'static {
    /// Registers a connection; `true` if the user was offline before.
    async fn connect(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        connection_id: u64,
    ) -> Result<bool, PresenceError>;

    /// Unregisters a connection; `true` if it was the user's last one.
    async fn disconnect(&self, user_id: &UserId, connection_id: u64)
        -> Result<bool, PresenceError>;

    /// Whether each user is online, in the order asked.
    async fn online(&self, user_ids: &[UserId]) -> Result<Vec<bool>, PresenceError>;
}
