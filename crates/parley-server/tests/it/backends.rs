//! The cluster's services for the tests: a PostgreSQL schema of the test's own, the
//! machine's NATS and Redis under a cluster name of the test's own, so tests run in
//! parallel without seeing each other.
//!
//! `PARLEY_TEST_MODE=cluster` runs every scenario of this suite in cluster mode (each
//! `TestServer` a node on these services); the multi-node scenarios (`cluster.rs`) use
//! them in any mode. The services' addresses come from `PARLEY_TEST_DATABASE_URL`,
//! `PARLEY_TEST_NATS_URL` and `PARLEY_TEST_REDIS_URL` (defaults: the machine's
//! 127.0.0.1:5432 database `test`, :4222, :6379). A service that cannot be reached fails
//! the test with its name and address: never a silent skip.

use parley_server::Config;
use sqlx::Connection as _;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Whether this run is the suite's cluster-mode run (`PARLEY_TEST_MODE=cluster`).
pub fn cluster_mode() -> bool {
    match std::env::var("PARLEY_TEST_MODE").as_deref() {
        Ok("cluster") => true,
        Ok("embedded") | Err(_) => false,
        Ok(other) => panic!("PARLEY_TEST_MODE={other:?}: use `embedded` or `cluster`"),
    }
}

/// A fresh schema in the test database, dropped when this is dropped.
pub struct Schema {
    admin_url: String,
    name: String,
}

impl Schema {
    pub async fn create() -> Self {
        let admin_url = std::env::var("PARLEY_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let mut connection = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "PostgreSQL is required for these tests: cannot connect to {admin_url} \
                     ({error}); start it or set PARLEY_TEST_DATABASE_URL"
                )
            });
        let name = format!("it_{}", ulid::Ulid::new().to_string().to_lowercase());
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        Self { admin_url, name }
    }

    /// The URL of the database with this schema first on the search path.
    pub fn database_url(&self) -> String {
        let separator = if self.admin_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.admin_url, self.name
        )
    }
}

impl Drop for Schema {
    /// Drops the schema from a thread of its own (a test's runtime may be gone or
    /// busy); a schema that cannot be dropped now is left to `.ci/run`'s sweep.
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the schema");
            runtime.block_on(async {
                let Ok(mut connection) = sqlx::PgConnection::connect(&url).await else {
                    return;
                };
                let _ = sqlx::query("SET lock_timeout = '5s'")
                    .execute(&mut connection)
                    .await;
                let _ = sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
                    .execute(&mut connection)
                    .await;
            });
        });
        let _ = dropping.join();
    }
}

/// Everything the nodes of one test's cluster share.
pub struct ClusterBackends {
    pub schema: Schema,
    pub nats_url: String,
    pub redis_url: String,
    /// NATS subjects and Redis keys of this test only (and its media keys' prefix).
    pub cluster_name: String,
    /// The S3-compatible service media go to.
    pub s3: parley_server::config::S3Settings,
}

/// The S3 service of the cluster tests: `PARLEY_TEST_S3_ENDPOINT` (default SeaweedFS on
/// 127.0.0.1:8333, which `scripts/seaweedfs.sh` starts), `PARLEY_TEST_S3_BUCKET`
/// (`parley-test`) and `PARLEY_TEST_S3_ACCESS_KEY_ID` / `_SECRET_ACCESS_KEY`.
pub fn s3_settings(prefix: &str) -> parley_server::config::S3Settings {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    parley_server::config::S3Settings {
        bucket: var("PARLEY_TEST_S3_BUCKET", "parley-test"),
        endpoint: Some(var("PARLEY_TEST_S3_ENDPOINT", "http://127.0.0.1:8333")),
        region: "us-east-1".into(),
        access_key_id: var("PARLEY_TEST_S3_ACCESS_KEY_ID", "parley"),
        secret_access_key: var("PARLEY_TEST_S3_SECRET_ACCESS_KEY", "parley-secret"),
        prefix: prefix.to_owned(),
        allow_http: true,
    }
}

impl ClusterBackends {
    /// A fresh schema and cluster name; fails naming the service that is not there.
    pub async fn create() -> Self {
        let nats_url =
            std::env::var("PARLEY_TEST_NATS_URL").unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned());
        let redis_url =
            std::env::var("PARLEY_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
        reachable("NATS", "PARLEY_TEST_NATS_URL", &nats_url).await;
        reachable("Redis", "PARLEY_TEST_REDIS_URL", &redis_url).await;
        let cluster_name = format!("t{}", ulid::Ulid::new().to_string().to_lowercase());
        let s3 = s3_settings(&cluster_name);
        reachable(
            "An S3 service (scripts/seaweedfs.sh)",
            "PARLEY_TEST_S3_ENDPOINT",
            s3.endpoint.as_deref().unwrap_or_default(),
        )
        .await;
        Self {
            schema: Schema::create().await,
            nats_url,
            redis_url,
            cluster_name,
            s3,
        }
    }

    /// Makes `config` a node of this cluster named `node_id`.
    pub fn apply(&self, config: &mut Config, node_id: &str) {
        config.database_url = Some(self.schema.database_url());
        config.nats_url = Some(self.nats_url.clone());
        config.redis_url = Some(self.redis_url.clone());
        config.cluster_name = self.cluster_name.clone();
        config.node_id = node_id.to_owned();
        config.media.s3 = Some(self.s3.clone());
    }
}

/// Panics with the service's name and how to point the tests elsewhere unless a TCP
/// connection to `url`'s host and port opens within a few seconds.
async fn reachable(service: &str, variable: &str, url: &str) {
    let address = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let connecting = tokio::net::TcpStream::connect(address.clone());
    match tokio::time::timeout(std::time::Duration::from_secs(5), connecting).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => panic!(
            "{service} is required for these tests: cannot connect to {address} ({error}); \
             start it or set {variable}"
        ),
        Err(_) => panic!(
            "{service} is required for these tests: {address} did not answer within 5 s; \
             start it or set {variable}"
        ),
    }
}
