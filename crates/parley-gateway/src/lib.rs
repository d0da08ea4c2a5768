//! The gateway: parley's HTTP and WebSocket edge.
//!
//! Turns REST calls and WebSocket frames into calls on `parley_core::Chat`, and bus events
//! into frames on the right sockets. Owns authentication of requests, per-connection
//! limits, heartbeats, the connection [`hub`], the embedded web client and `/metrics`.
//! Holds no durable state: a gateway can die at any time and clients resume with `sync`.

pub mod bodies;
pub mod error;
pub mod hub;
pub mod limits;
pub mod rest;
pub mod web;
pub mod ws;

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use parley_core::Chat;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the edge (the core's are in `CoreConfig`).
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Largest WebSocket text frame accepted; larger ones get `frame_too_large`.
    pub max_frame_bytes: usize,
    /// A connection silent this long is dropped.
    pub heartbeat_timeout: Duration,
    /// Frames queued for one slow socket before it is dropped (it will `sync` back).
    pub outbound_queue: usize,
    /// A connection that has not authenticated within this time is closed.
    pub auth_timeout: Duration,
    /// WebSocket frames per second one connection may send (bursts of twice that);
    /// beyond it frames are refused with `rate_limited`.
    pub frames_per_second: u32,
    /// Open WebSockets from one IP address (IPv6: one /64), authenticated or not.
    pub max_sockets_per_ip: usize,
    /// Open WebSockets of one user, over all their devices.
    pub max_sockets_per_user: usize,
    /// Open WebSockets of one device (browser tabs).
    pub max_sockets_per_device: usize,
    /// Syncs streaming at once; more wait their turn.
    pub max_concurrent_syncs: usize,
    /// WebSockets on this node that have not sent their `auth` frame yet (each may buffer
    /// up to the 1 MiB hard frame limit until its 10 s are up).
    pub max_unauthenticated_sockets: usize,
    /// New WebSockets this node accepts per second (bursts of twice that): when a node
    /// dies and its clients all reconnect to the others, the survivors take them at this
    /// pace and refuse the rest with 429 and `Retry-After` (clients back off with jitter).
    pub accepts_per_second: u32,
    /// A request body must arrive within this time.
    pub request_timeout: Duration,
    /// How often each socket checks that it missed no message (`ws/positions.rs`);
    /// `None`: only when the bus reports a possible loss.
    pub position_check_interval: Option<Duration>,
    /// Where clients fetch and upload media when that is not parley itself (the S3
    /// endpoint's origin, `https://s3.example.com`): allowed by the web client's CSP.
    pub media_origin: Option<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_frame_bytes: parley_proto::limits::MAX_FRAME_BYTES,
            heartbeat_timeout: Duration::from_secs(parley_proto::limits::HEARTBEAT_TIMEOUT_SECS),
            outbound_queue: 1024,
            auth_timeout: Duration::from_secs(10),
            frames_per_second: 100,
            max_sockets_per_ip: 256,
            max_sockets_per_user: 32,
            max_sockets_per_device: 8,
            max_concurrent_syncs: 32,
            max_unauthenticated_sockets: 512,
            accepts_per_second: 500,
            request_timeout: Duration::from_secs(10),
            position_check_interval: Some(Duration::from_secs(60)),
            media_origin: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub chat: Chat,
    pub hub: Arc<hub::Hub>,
    pub config: Arc<GatewayConfig>,
    pub metrics: Option<PrometheusHandle>,
    sockets_per_ip: Arc<limits::SocketsPerIp>,
    /// One permit per sync streaming on this node: bounds the memory syncs hold.
    syncs: Arc<tokio::sync::Semaphore>,
    /// The node-wide budget of new WebSockets (`accepts_per_second`).
    accepts: Arc<parking_lot::Mutex<parley_core::ratelimit::TokenBucket>>,
    /// One permit per socket waiting for its `auth` frame, node-wide.
    unauthenticated: Arc<tokio::sync::Semaphore>,
    shutting_down: Arc<AtomicBool>,
    /// The bus's count of occasions on which this node may have lost events: each bump
    /// makes every socket check its positions soon.
    bus_losses: tokio::sync::watch::Receiver<u64>,
}

impl AppState {
    /// Wires the gateway to the core and starts dispatching this node's bus events.
    pub async fn new(
        chat: Chat,
        config: GatewayConfig,
        metrics: Option<PrometheusHandle>,
    ) -> Result<Self, parley_core::Error> {
        let hub = Arc::new(hub::Hub::new(chat.node_id().clone()));
        let bus_losses = hub::spawn_dispatcher(hub.clone(), chat.clone()).await?;
        Ok(Self {
            sockets_per_ip: Arc::default(),
            accepts: Arc::new(parking_lot::Mutex::new(
                parley_core::ratelimit::TokenBucket::full(
                    accept_quota(&config),
                    tokio::time::Instant::now(),
                ),
            )),
            syncs: Arc::new(tokio::sync::Semaphore::new(
                config.max_concurrent_syncs.max(1),
            )),
            unauthenticated: Arc::new(tokio::sync::Semaphore::new(
                config.max_unauthenticated_sockets.max(1),
            )),
            chat,
            hub,
            config: Arc::new(config),
            metrics,
            shutting_down: Arc::new(AtomicBool::new(false)),
            bus_losses,
        })
    }

    /// Spends one new WebSocket from the node's budget, or answers how long to wait.
    pub fn admit_socket(&self) -> Result<(), Duration> {
        let quota = accept_quota(&self.config);
        self.accepts.lock().take(quota, tokio::time::Instant::now())
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// The first step of shutdown, safe to call at any time and more than once: refuse new
    /// sockets and ask every open one to finish its in-flight sends and close.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.hub.close_all(1001, "server shutting down");
    }

    /// Graceful shutdown, after the listener stopped accepting: every socket finishes its
    /// in-flight sends and gets a close frame; then queued commits and receipts are written.
    pub async fn shutdown(&self, grace: Duration) {
        self.begin_shutdown();
        let deadline = tokio::time::Instant::now() + grace;
        while self.hub.connection_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.chat.shutdown().await;
    }
}

/// `accepts_per_second`, in bursts of up to twice that.
fn accept_quota(config: &GatewayConfig) -> parley_core::ratelimit::Quota {
    parley_core::ratelimit::Quota::per_period(
        config.accepts_per_second.max(1).saturating_mul(2),
        Duration::from_secs(2),
    )
}

async fn method_not_allowed() -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = error::ApiError::new(
        parley_proto::ErrorCode::InvalidRequest,
        "method not allowed on this route",
    )
    .into_response();
    *response.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", rest::routes(state.config.max_frame_bytes))
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(rest::healthz))
        .route("/readyz", get(rest::readyz))
        .route("/metrics", get(rest::metrics))
        .fallback(web::static_file)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.config.request_timeout,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
