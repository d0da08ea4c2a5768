//! Disappearing messages: the purger. Expired messages leave every read path at once
//! (reads check `expires_at`: history shows them hidden, search and single reads leave
//! them out); this task empties them for good, a batch per transaction, so a purge never
//! holds the writer long enough to stall sends.

use super::*;

/// Most messages one purge transaction deletes.
pub(super) const PURGE_BATCH: u32 = 1000;
/// The pause between two full batches: sends get the writer in between.
const BETWEEN_BATCHES: std::time::Duration = std::time::Duration::from_millis(20);

/// Purges everything expired by now, batch after batch.
pub(super) async fn purge_expired(inner: &Arc<Inner>) {
    loop {
        match inner
            .store
            .purge_expired(Timestamp::now(), PURGE_BATCH)
            .await
        {
            Ok(purged) => {
                if purged > 0 {
                    metrics::counter!("parley_messages_expired_total").increment(u64::from(purged));
                }
                if purged < PURGE_BATCH {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "purging expired messages failed; will retry");
                return;
            }
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}
