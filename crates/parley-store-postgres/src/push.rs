//! The push records of `Store`: each device's subscription and the server's secrets.

use super::*;
use parley_core::store::{PushRecordStore, PushSubscription};
use parley_proto::PushKind;

const SUBSCRIPTION_COLUMNS: &str =
    "s.device_id, s.user_id, s.kind, s.endpoint, s.p256dh, s.auth, s.token, s.created_at";

fn subscription_from_row(row: &PgRow) -> StoreResult<PushSubscription> {
    let kind: String = column(row, "kind")?;
    let kind = PushKind::parse(&kind).ok_or_else(|| {
        StoreError::corrupt(
            "push subscription",
            UnknownValue {
                column: "kind",
                value: kind,
            },
        )
    })?;
    Ok(PushSubscription {
        device_id: DeviceId(column(row, "device_id")?),
        user_id: UserId(column(row, "user_id")?),
        kind,
        endpoint: column(row, "endpoint")?,
        p256dh: column(row, "p256dh")?,
        auth: column(row, "auth")?,
        token: column(row, "token")?,
        created_at: Timestamp(column(row, "created_at")?),
    })
}

#[async_trait]
impl PushRecordStore for PgStore {
    async fn set_push_subscription(&self, subscription: PushSubscription) -> StoreResult<()> {
        // Only for a device that exists and is not logged out: its row locked, so a
        // logout (which updates it) either comes first and is seen here, or waits and
        // removes what this wrote.
        let mut transaction = self.pool.begin().await.map_err(store_error)?;
        let live: Option<String> = sqlx::query_scalar(
            "SELECT device_id FROM devices WHERE device_id = $1 AND user_id = $2 \
             AND revoked_at IS NULL FOR UPDATE",
        )
        .bind(subscription.device_id.as_str())
        .bind(subscription.user_id.as_str())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(store_error)?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        let stored = sqlx::query(
            "INSERT INTO push_subscriptions \
             (device_id, user_id, kind, endpoint, p256dh, auth, token, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS \
             (SELECT 1 FROM devices WHERE device_id = $1 AND user_id = $2 AND revoked_at IS NULL) \
             ON CONFLICT (device_id) DO UPDATE SET kind = excluded.kind, endpoint = excluded.endpoint, \
             p256dh = excluded.p256dh, auth = excluded.auth, token = excluded.token, \
             created_at = excluded.created_at",
        )
        .bind(subscription.device_id.as_str())
        .bind(subscription.user_id.as_str())
        .bind(subscription.kind.as_str())
        .bind(&subscription.endpoint)
        .bind(&subscription.p256dh)
        .bind(&subscription.auth)
        .bind(&subscription.token)
        .bind(subscription.created_at.millis())
        .execute(&mut *transaction)
        .await
        .map_err(store_error)?;
        if stored.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        transaction.commit().await.map_err(store_error)
    }

    async fn delete_push_subscription(&self, device_id: &DeviceId) -> StoreResult<()> {
        sqlx::query("DELETE FROM push_subscriptions WHERE device_id = $1")
            .bind(device_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn fetch_push_subscription(&self, device_id: &DeviceId) -> StoreResult<PushSubscription> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions s WHERE s.device_id = $1"
        ))
        .bind(device_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .ok_or(StoreError::NotFound)?;
        subscription_from_row(&row)
    }

    async fn push_subscriptions(&self, user_ids: &[UserId]) -> StoreResult<Vec<PushSubscription>> {
        let ids: Vec<&str> = user_ids.iter().map(UserId::as_str).collect();
        let rows = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions s \
             JOIN devices d ON d.device_id = s.device_id AND d.revoked_at IS NULL \
             WHERE s.user_id = ANY($1) ORDER BY s.user_id, s.device_id"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(subscription_from_row).collect()
    }

    async fn server_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(Timestamp::now().millis())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)
    }
}
