//! The server's one documented configuration, with embedded-mode defaults.
//!
//! Layers, later wins: built-in defaults, the TOML file (`--config`, env `PARLEY_CONFIG`),
//! `PARLEY_` environment variables with `__` for nesting (`PARLEY_LIMITS__MAX_FRAME_BYTES`),
//! then the command-line flags. `parley.example.toml` documents every key and a test
//! checks that it parses into this struct.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (printed at start).
    pub listen: SocketAddr,
    /// Where the embedded database lives.
    pub data_dir: PathBuf,
    /// PostgreSQL instead of the embedded SQLite, e.g.
    /// `postgres://parley@127.0.0.1:5432/parley`: the store several nodes share.
    pub database_url: Option<String>,
    /// NATS (`nats://host:4222`) to route events between nodes; needs `database_url`.
    /// Unset: events stay in this process (one node).
    pub nats_url: Option<String>,
    /// Redis (`redis://host:6379`) for presence, the connection registry and rate limits
    /// shared by every node; needs `database_url`. Unset: kept in this process.
    pub redis_url: Option<String>,
    /// The cluster's name: NATS subjects and Redis keys start with it, so several
    /// clusters can share one NATS and one Redis. 1-64 characters of `a-z A-Z 0-9 - _`,
    /// the same on every node of a cluster.
    pub cluster_name: String,
    /// Seconds between each socket's checks that it missed no message (the safety net
    /// under a lost NATS event: one store read per socket per period); the check also
    /// runs soon after the node knows it may have missed events. 0 turns the periodic
    /// check off. Only with `nats_url`: in one process no event is lost.
    pub position_check_secs: u64,
    /// This node's name in a cluster: 1-64 characters of `a-z A-Z 0-9 - _`, different on
    /// every live node.
    pub node_id: String,
    /// Seconds a node's connections count as online without its heartbeat: when a node
    /// dies, its users go offline after at most this long.
    pub presence_lease_secs: u64,
    /// Log filter (`RUST_LOG` syntax) when `RUST_LOG` is unset.
    pub log: String,
    /// Serve `/metrics` in Prometheus format.
    pub metrics: bool,
    /// Seconds that in-flight work gets on shutdown before sockets are cut.
    pub shutdown_grace_secs: u64,
    pub limits: Limits,
    pub auth: Auth,
    pub media: MediaConfig,
    pub push: PushConfig,
    /// HTTPS/WSS with rustls when set.
    pub tls: Option<Tls>,
}

/// Photos, videos, voice notes and files (`[media]`, `PARLEY_MEDIA__…`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Largest upload, in bytes (100 MiB).
    pub max_bytes: u64,
    /// Bytes of media one user may keep.
    pub quota_bytes: u64,
    pub uploads_per_minute: u32,
    /// Largest picture processed (stripped, thumbnailed); a larger one is refused.
    pub max_picture_bytes: u64,
    /// Most pixels of a picture; more is refused before decoding (decompression bombs).
    pub max_pixels: u64,
    /// Seconds an upload URL stands, and a download URL.
    pub upload_url_secs: u64,
    pub download_url_secs: u64,
    /// Seconds between two collections of unused media (never sent for a day, or no
    /// message carries them any more).
    pub collect_interval_secs: u64,
    /// Seconds an upload may wait to be sent before it is collected (a day).
    pub unsent_secs: u64,
    /// S3-compatible object storage (`[media.s3]`, `PARLEY_MEDIA__S3__BUCKET`, …):
    /// uploads and downloads go straight to it with presigned URLs. Unset: the data
    /// directory, with parley serving its own signed URLs (one node only).
    pub s3: Option<S3Settings>,
}

/// Push notifications (`[push]`, `PARLEY_PUSH__…`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Take `http` push endpoints and any address (tests, a local UnifiedPush
    /// distributor). Off: `https` to public addresses only (an SSRF guard).
    pub allow_insecure_endpoints: bool,
    /// The VAPID private key (a P-256 scalar, 32 bytes base64url). Unset: generated on
    /// first start and kept with the data (the database every node shares).
    pub vapid_private_key: Option<String>,
}

/// The bucket media go to in cluster mode.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: String,
    /// `https://s3.eu-west-1.amazonaws.com`, or any S3-compatible service's address.
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Keys start with this (several clusters may share a bucket).
    #[serde(default)]
    pub prefix: String,
    /// Allow an `http://` endpoint (a local test service).
    #[serde(default)]
    pub allow_http: bool,
}

impl S3Settings {
    /// The origin browsers reach the bucket at: the endpoint's, or AWS's.
    pub fn origin(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => match url::Url::parse(endpoint) {
                Ok(url) => url.origin().ascii_serialization(),
                Err(_) => endpoint.trim_end_matches('/').to_owned(),
            },
            None => "https://*.amazonaws.com".to_owned(),
        }
    }
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

impl Default for MediaConfig {
    fn default() -> Self {
        let core = parley_core::CoreConfig::default();
        Self {
            max_bytes: core.media_max_bytes,
            quota_bytes: core.media_quota_bytes,
            uploads_per_minute: core.media_uploads_per_minute,
            max_picture_bytes: core.media_max_picture_bytes,
            max_pixels: core.media_max_pixels,
            upload_url_secs: core.media_upload_ttl.as_secs(),
            download_url_secs: core.media_download_ttl.as_secs(),
            collect_interval_secs: core.media_collect_interval.as_secs(),
            unsent_secs: core.media_unsent_ttl.as_secs(),
            s3: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_content_bytes: usize,
    pub max_frame_bytes: usize,
    pub max_group_members: usize,
    pub user_messages_per_minute: u32,
    pub group_messages_per_minute: u32,
    pub typing_max_group: usize,
    pub heartbeat_timeout_secs: u64,
    pub outbound_queue: usize,
    pub auth_attempts_per_minute: u32,
    pub frames_per_second: u32,
    pub request_timeout_secs: u64,
    pub max_sockets_per_ip: usize,
    pub max_sockets_per_user: usize,
    pub max_sockets_per_device: usize,
    pub max_concurrent_syncs: usize,
    pub max_unauthenticated_sockets: usize,
    pub accepts_per_second: u32,
    pub writes_per_minute: u32,
    pub searches_per_minute: u32,
    /// How long the sender may edit or delete a message for everyone (default 48 h).
    pub edit_window_secs: u64,
    /// The durations disappearing messages may be set to, in seconds (0, off, always).
    pub disappearing_choices_secs: Vec<u32>,
    /// How often expired messages are purged from storage (they leave every read at once).
    pub expiry_purge_interval_ms: u64,
    pub new_account_hours: u64,
    pub new_account_direct_chats_per_hour: u32,
    pub new_account_groups_per_day: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// Argon2id memory cost in KiB (OWASP minimum: 19456).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            nats_url: None,
            redis_url: None,
            cluster_name: "parley".to_owned(),
            position_check_secs: 60,
            node_id: "local".to_owned(),
            presence_lease_secs: 30,
            log: "info".into(),
            metrics: true,
            shutdown_grace_secs: 10,
            limits: Limits::default(),
            auth: Auth::default(),
            media: MediaConfig::default(),
            push: PushConfig::default(),
            tls: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let core = parley_core::CoreConfig::default();
        let gateway = parley_gateway::GatewayConfig::default();
        Self {
            max_content_bytes: core.max_content_bytes,
            max_frame_bytes: gateway.max_frame_bytes,
            max_group_members: core.max_group_members,
            user_messages_per_minute: core.user_messages_per_minute,
            group_messages_per_minute: core.group_messages_per_minute,
            typing_max_group: core.typing_max_group,
            heartbeat_timeout_secs: gateway.heartbeat_timeout.as_secs(),
            outbound_queue: gateway.outbound_queue,
            auth_attempts_per_minute: core.auth_attempts_per_minute,
            frames_per_second: gateway.frames_per_second,
            request_timeout_secs: 10,
            max_sockets_per_ip: gateway.max_sockets_per_ip,
            max_sockets_per_user: gateway.max_sockets_per_user,
            max_sockets_per_device: gateway.max_sockets_per_device,
            max_concurrent_syncs: gateway.max_concurrent_syncs,
            max_unauthenticated_sockets: gateway.max_unauthenticated_sockets,
            accepts_per_second: gateway.accepts_per_second,
            writes_per_minute: core.writes_per_minute,
            searches_per_minute: core.searches_per_minute,
            edit_window_secs: core.edit_window.as_secs(),
            disappearing_choices_secs: core.disappearing_choices.clone(),
            expiry_purge_interval_ms: u64::try_from(core.expiry_purge_interval.as_millis())
                .unwrap_or(u64::MAX),
            new_account_hours: core.new_account_period.as_secs() / 3600,
            new_account_direct_chats_per_hour: core.new_account_direct_chats_per_hour,
            new_account_groups_per_day: core.new_account_groups_per_day,
        }
    }
}

impl Default for Auth {
    fn default() -> Self {
        let core = parley_core::CoreConfig::default();
        Self {
            argon2_memory_kib: core.argon2_memory_kib,
            argon2_iterations: core.argon2_iterations,
        }
    }
}

impl Config {
    /// Defaults, then the file (if any), then `PARLEY_*` variables.
    pub fn load(file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        use figment::providers::{Env, Format, Serialized, Toml};
        let mut figment = figment::Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(
                file.exists(),
                "config file {} does not exist",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        // Variables that are not settings: the client's, and the test suites' service
        // addresses (PARLEY_TEST_*), which a server started by a test inherits.
        let env = Env::prefixed("PARLEY_")
            .ignore(&["CONFIG", "SERVER", "PASSWORD", "CONFIG_DIR", "BIN"])
            .filter(|key| !key.as_str().to_ascii_lowercase().starts_with("test_"))
            .split("__");
        Ok(figment.merge(env).extract()?)
    }

    /// Refuses combinations that cannot work, before anything is opened.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.database_url.is_none() {
            for (flag, set) in [
                ("--nats-url", self.nats_url.is_some()),
                ("--redis-url", self.redis_url.is_some()),
            ] {
                anyhow::ensure!(
                    !set,
                    "{flag} needs --database-url: nodes that share NATS or Redis must share \
                     one PostgreSQL database (the embedded SQLite belongs to one process)"
                );
            }
        }
        parley_core::NodeId::new(&self.node_id)
            .map_err(|error| anyhow::anyhow!("node_id: {error}"))?;
        parley_core::NodeId::new(&self.cluster_name).map_err(|_| {
            anyhow::anyhow!(
                "cluster_name {:?}: use 1-64 characters of a-z A-Z 0-9 - _",
                self.cluster_name.chars().take(80).collect::<String>()
            )
        })?;
        Ok(())
    }

    pub fn core(&self) -> parley_core::CoreConfig {
        parley_core::CoreConfig {
            max_content_bytes: self.limits.max_content_bytes,
            max_group_members: self.limits.max_group_members,
            user_messages_per_minute: self.limits.user_messages_per_minute,
            group_messages_per_minute: self.limits.group_messages_per_minute,
            typing_max_group: self.limits.typing_max_group,
            writes_per_minute: self.limits.writes_per_minute,
            searches_per_minute: self.limits.searches_per_minute,
            edit_window: std::time::Duration::from_secs(self.limits.edit_window_secs),
            auth_attempts_per_minute: self.limits.auth_attempts_per_minute,
            presence_lease: std::time::Duration::from_secs(self.presence_lease_secs.max(1)),
            new_account_period: std::time::Duration::from_secs(
                self.limits.new_account_hours * 3600,
            ),
            new_account_direct_chats_per_hour: self.limits.new_account_direct_chats_per_hour,
            new_account_groups_per_day: self.limits.new_account_groups_per_day,
            argon2_memory_kib: self.auth.argon2_memory_kib,
            argon2_iterations: self.auth.argon2_iterations,
            disappearing_choices: self.limits.disappearing_choices_secs.clone(),
            expiry_purge_interval: std::time::Duration::from_millis(
                self.limits.expiry_purge_interval_ms.max(10),
            ),
            media_max_bytes: self.media.max_bytes,
            media_quota_bytes: self.media.quota_bytes,
            media_uploads_per_minute: self.media.uploads_per_minute,
            media_upload_ttl: std::time::Duration::from_secs(self.media.upload_url_secs.max(1)),
            media_download_ttl: std::time::Duration::from_secs(self.media.download_url_secs.max(1)),
            media_unsent_ttl: std::time::Duration::from_secs(self.media.unsent_secs),
            media_collect_interval: std::time::Duration::from_secs(
                self.media.collect_interval_secs.max(1),
            ),
            media_max_picture_bytes: self.media.max_picture_bytes,
            media_max_pixels: self.media.max_pixels,
            push_allow_insecure_endpoints: self.push.allow_insecure_endpoints,
            ..parley_core::CoreConfig::default()
        }
    }

    pub fn gateway(&self) -> parley_gateway::GatewayConfig {
        parley_gateway::GatewayConfig {
            max_frame_bytes: self.limits.max_frame_bytes,
            heartbeat_timeout: std::time::Duration::from_secs(self.limits.heartbeat_timeout_secs),
            outbound_queue: self.limits.outbound_queue,
            frames_per_second: self.limits.frames_per_second,
            max_sockets_per_ip: self.limits.max_sockets_per_ip,
            max_sockets_per_user: self.limits.max_sockets_per_user,
            max_sockets_per_device: self.limits.max_sockets_per_device,
            max_concurrent_syncs: self.limits.max_concurrent_syncs,
            max_unauthenticated_sockets: self.limits.max_unauthenticated_sockets,
            accepts_per_second: self.limits.accepts_per_second,
            request_timeout: std::time::Duration::from_secs(self.limits.request_timeout_secs),
            position_check_interval: (self.position_check_secs > 0 && self.nats_url.is_some())
                .then(|| std::time::Duration::from_secs(self.position_check_secs)),
            media_origin: self.media.s3.as_ref().map(S3Settings::origin),
            ..parley_gateway::GatewayConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `parley.example.toml` documents every key with its default value.
    #[test]
    fn example_config_matches_the_defaults() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../parley.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let parsed: Config = toml::from_str(&text).expect("the example parses");
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            serde_json::to_value(Config::default()).unwrap()
        );
    }

    /// Environment variables override nested keys.
    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns figment's own error type
    fn environment_overrides_nested_keys() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PARLEY_LIMITS__MAX_FRAME_BYTES", "262144");
            jail.set_env("PARLEY_LISTEN", "127.0.0.1:9999");
            let config = Config::load(None).unwrap();
            assert_eq!(config.limits.max_frame_bytes, 262_144);
            assert_eq!(config.listen.port(), 9999);
            Ok(())
        });
    }
}
