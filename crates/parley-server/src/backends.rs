//! The backends the configuration names, behind the core's ports.
//!
//! | setting | port | embedded (unset) | cluster |
//! |---|---|---|---|
//! | `database_url` | `Store` | SQLite in `data_dir` | PostgreSQL |
//! | `nats_url` | `Bus` | `LocalBus` | NATS, subjects under `cluster_name` |
//! | `redis_url` | `PresenceRegistry`, `RateLimiter` | `LocalPresence`, `LocalRateLimiter` | Redis, keys under `cluster_name` |
//! | `media.s3` | `MediaStore` | `DiskMediaStore` in `data_dir/media` (parley serves it) | S3 bucket (presigned URLs) |
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

/// The ports for `store` and `media` and the rest of the configuration.
pub(crate) async fn ports(
    config: &Config,
    store: &Storage,
    media: &Media,
    lease: Duration,
) -> anyhow::Result<Ports> {
    let node = NodeId::new(&config.node_id).context("node_id")?;
    Ok(Ports {
        store: store.port(),
        bus: bus(config, &node).await?,
        presence: presence(config, &node, lease).await?,
        limiter: limiter(config).await?,
        media: media.port(),
    })
}

/// Where media bytes live.
pub(crate) enum Media {
    /// The data directory; its router answers the signed URLs (mounted by `start`).
    Disk(Arc<parley_media::DiskMediaStore>),
    /// `media.s3`: a bucket clients reach with presigned URLs.
    S3(Arc<parley_media::S3MediaStore>),
}

impl Media {
    pub(crate) async fn open(config: &Config) -> anyhow::Result<Self> {
        match &config.media.s3 {
            None => {
                if config.database_url.is_some() {
                    tracing::warn!(
                        "media are kept in this node's data directory; set [media.s3] so that \
                         every node of a cluster serves the same media"
                    );
                }
                let root = config.data_dir.join("media");
                // Signed URLs are paths on this server: clients resolve them against the
                // address they reach it at, behind any proxy.
                let store = parley_media::DiskMediaStore::open(&root, "")
                    .await
                    .with_context(|| format!("opening the media directory {}", root.display()))?;
                Ok(Media::Disk(Arc::new(store)))
            }
            Some(s3) => {
                let store = parley_media::S3MediaStore::new(&parley_media::S3Config {
                    endpoint: s3.endpoint.clone(),
                    bucket: s3.bucket.clone(),
                    region: s3.region.clone(),
                    access_key_id: s3.access_key_id.clone(),
                    secret_access_key: s3.secret_access_key.clone(),
                    prefix: s3.prefix.clone(),
                    allow_http: s3.allow_http,
                })
                .context("configuring the S3 media store ([media.s3])")?;
                use parley_core::MediaStore;
                store
                    .ping()
                    .await
                    .context("reaching the S3 media bucket ([media.s3])")?;
                Ok(Media::S3(Arc::new(store)))
            }
        }
    }

    pub(crate) fn port(&self) -> Arc<dyn parley_core::MediaStore> {
        match self {
            Media::Disk(store) => store.clone(),
            Media::S3(store) => store.clone(),
        }
    }

    /// The routes that answer the disk store's signed URLs, if it is the disk.
    pub(crate) fn router(&self) -> Option<axum::Router> {
        match self {
            Media::Disk(store) => Some(store.clone().router()),
            Media::S3(_) => None,
        }
    }
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
