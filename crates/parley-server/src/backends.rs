//! The backends the configuration names, behind the core's ports.
//!
//! | setting | port | embedded (unset) | cluster |
//! |---|---|---|---|
//! | `database_url` | `Store` | SQLite in `data_dir` | PostgreSQL |
//! | `nats_url` | `Bus` | `LocalBus` | NATS, subjects under `cluster_name` |
//! | `redis_url` | `PresenceRegistry`, `RateLimiter` | `LocalPresence`, `LocalRateLimiter` | Redis, keys under `cluster_name` |
//!
//! Every backend given must answer at start: a node that cannot reach one fails with the
//! reason instead of serving half a cluster. After start, an outage shows in `/readyz`.

use crate::Config;
use anyhow::Context;
use parley_core::local::{LocalBus, LocalPresence, LocalRateLimiter, DEFAULT_BUS_CAPACITY};
use parley_core::{Bus, NodeId, Ports, PresenceRegistry, RateLimiter};
use parley_store_sqlite::SqliteStore;
use std::sync::Arc;
use std::time::Duration;

/// The store the configuration names.
#[derive(Clone)]
pub(crate) enum Storage {
    /// The embedded default: SQLite in the data directory.
    Sqlite(SqliteStore),
    /// `database_url`: PostgreSQL, which several nodes may share.
    #[cfg(feature = "cluster")]
    Postgres(parley_store_postgres::PgStore),
}

impl Storage {
    pub(crate) async fn open(config: &Config) -> anyhow::Result<Self> {
        match &config.database_url {
            None => {
                let store = SqliteStore::open(&config.data_dir).await.with_context(|| {
                    format!("opening the database in {}", config.data_dir.display())
                })?;
                Ok(Storage::Sqlite(store))
            }
            #[cfg(feature = "cluster")]
            Some(url) => {
                // The URL may hold a password: it is not repeated in the error.
                let store = parley_store_postgres::PgStore::connect(url)
                    .await
                    .context("connecting to PostgreSQL (database_url)")?;
                Ok(Storage::Postgres(store))
            }
            #[cfg(not(feature = "cluster"))]
            Some(_) => anyhow::bail!(without_cluster("database_url")),
        }
    }

    pub(crate) fn port(&self) -> Arc<dyn parley_core::Store> {
        match self {
            Storage::Sqlite(store) => Arc::new(store.clone()),
            #[cfg(feature = "cluster")]
            Storage::Postgres(store) => Arc::new(store.clone()),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Storage::Sqlite(store) => store.close().await,
            #[cfg(feature = "cluster")]
            Storage::Postgres(store) => store.close().await,
        }
    }
}

#[cfg(not(feature = "cluster"))]
fn without_cluster(setting: &str) -> String {
    format!(
        "{setting} is set, but this parley was built without cluster support (the `cluster` \
         feature)"
    )
}

/// The ports for `store` and the rest of the configuration.
pub(crate) async fn ports(
    config: &Config,
    store: &Storage,
    lease: Duration,
) -> anyhow::Result<Ports> {
    let node = NodeId::new(&config.node_id).context("node_id")?;
    Ok(Ports {
        store: store.port(),
        bus: bus(config, &node).await?,
        presence: presence(config, &node, lease).await?,
        limiter: limiter(config).await?,
    })
}

async fn bus(config: &Config, node: &NodeId) -> anyhow::Result<Arc<dyn Bus>> {
    match &config.nats_url {
        None => Ok(Arc::new(LocalBus::new(node.clone(), DEFAULT_BUS_CAPACITY))),
        #[cfg(feature = "cluster")]
        Some(url) => {
            let bus =
                parley_cluster_nats::NatsBus::connect(url, &config.cluster_name, node.clone())
                    .await
                    .context("connecting to NATS (nats_url)")?;
            Ok(Arc::new(bus))
        }
        #[cfg(not(feature = "cluster"))]
        Some(_) => anyhow::bail!(without_cluster("nats_url")),
    }
}

async fn presence(
    config: &Config,
    node: &NodeId,
    lease: Duration,
) -> anyhow::Result<Arc<dyn PresenceRegistry>> {
    match &config.redis_url {
        None => Ok(Arc::new(LocalPresence::new(node.clone(), lease))),
        #[cfg(feature = "cluster")]
        Some(url) => {
            let presence = parley_cluster_redis::RedisPresence::connect(
                url,
                &config.cluster_name,
                node.clone(),
                lease,
            )
            .await
            .context("connecting to Redis for presence (redis_url)")?;
            Ok(Arc::new(presence))
        }
        #[cfg(not(feature = "cluster"))]
        Some(_) => anyhow::bail!(without_cluster("redis_url")),
    }
}

async fn limiter(config: &Config) -> anyhow::Result<Arc<dyn RateLimiter>> {
    match &config.redis_url {
        None => Ok(Arc::new(LocalRateLimiter::new())),
        #[cfg(feature = "cluster")]
        Some(url) => {
            let limiter =
                parley_cluster_redis::RedisRateLimiter::connect(url, &config.cluster_name)
                    .await
                    .context("connecting to Redis for rate limits (redis_url)")?;
            Ok(Arc::new(limiter))
        }
        #[cfg(not(feature = "cluster"))]
        Some(_) => anyhow::bail!(without_cluster("redis_url")),
    }
}
