//! The parley server as a library: configuration and wiring of the embedded mode.
//!
//! [`start`] opens the backends the configuration names (`backends`: SQLite or PostgreSQL,
//! the in-process bus or NATS, in-process presence and limits or Redis), builds the core
//! on them and serves the gateway; the returned [`RunningServer`] shuts down gracefully
//! (stop accepting, finish in-flight sends, close sockets with a close frame, flush).
//! `main.rs` adds the command line and signals; integration tests call [`start`] directly.

mod backends;
pub mod config;

pub use config::Config;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use parley_core::Chat;
use parley_gateway::AppState;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server that is accepting connections.
pub struct RunningServer {
    /// The bound address (useful with port 0).
    pub address: SocketAddr,
    /// `https` when TLS is configured.
    pub scheme: &'static str,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// Graceful shutdown; returns once everything is written and closed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.context("server task panicked")?
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }

    /// A trigger that shuts the server down, for signal handlers.
    pub fn take_stop(&mut self) -> Option<oneshot::Sender<()>> {
        self.stop.take()
    }
}

/// The process-wide Prometheus recorder (installed once, shared by servers in tests).
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("parley_commit_batch_size".into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// HTTP/1 settings that keep slow or silent clients from holding sockets: the request
/// head (and, on a kept-alive connection, the next one) must arrive within `timeout`.
fn configure_http(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    timeout: Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout)
        .max_buf_size(64 * 1024);
}

/// An acceptor that drops a connection which sends nothing within `timeout`. hyper's header
/// timer only starts once it knows the HTTP version, which it learns from the first bytes,
/// so a bare TCP connection would otherwise stay open forever.
#[derive(Clone, Copy, Debug)]
struct FirstByteDeadline {
    timeout: Duration,
}

impl<S: Send + 'static> axum_server::accept::Accept<tokio::net::TcpStream, S>
    for FirstByteDeadline
{
    type Stream = tokio::net::TcpStream;
    type Service = S;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<(Self::Stream, S)>> + Send>,
    >;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let timeout = self.timeout;
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut start = [0u8; 4];
            loop {
                let read = match tokio::time::timeout_at(deadline, stream.peek(&mut start)).await {
                    Ok(Ok(0)) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                    Ok(Ok(read)) => read,
                    Ok(Err(error)) => return Err(error),
                    Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
                };
                // HTTP/2 without TLS starts with "PRI ": it has no header or idle timeout
                // in hyper, so it is not served (no browser uses it).
                if read >= start.len() || start[0] != b'P' {
                    if &start == b"PRI " {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "HTTP/2 without TLS is not served",
                        ));
                    }
                    return Ok((stream, service));
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    }
}

/// Loads the certificate and key, offering only HTTP/1.1 by ALPN: hyper's HTTP/2 has no
/// header or idle timeout, so a silent HTTP/2 client could hold its socket forever.
async fn tls_config(tls: &config::Tls) -> anyhow::Result<axum_server::tls_rustls::RustlsConfig> {
    let rustls_config =
        axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert_path, &tls.key_path)
            .await
            .context("loading the TLS certificate and key")?;
    let mut server_config = (*rustls_config.get_inner()).clone();
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    rustls_config.reload_from_config(Arc::new(server_config));
    Ok(rustls_config)
}

/// The VAPID key pair: the configured one, else the one kept in the store (made by the
/// first node to start, the same for every node after).
async fn vapid_key(
    config: &Config,
    store: &dyn parley_core::Store,
) -> anyhow::Result<parley_core::push::vapid::VapidKey> {
    use parley_core::push::vapid::{VapidKey, SECRET_NAME};
    if let Some(text) = &config.push.vapid_private_key {
        let key = VapidKey::from_private(text)
            .map_err(|error| anyhow::anyhow!("push.vapid_private_key: {error}"))?;
        // Every node must sign with one key: a configured key that is not the one the
        // cluster keeps is the operator's mistake to see.
        let kept = store
            .server_secret(SECRET_NAME, &key.private_text())
            .await
            .context("reading the VAPID key from the store")?;
        if kept != key.private_text() {
            tracing::warn!(
                "push.vapid_private_key differs from the key this cluster keeps in its \
                 database: nodes without the setting sign with another key"
            );
        }
        return Ok(key);
    }
    let stored = store
        .server_secret(SECRET_NAME, &VapidKey::generate().private_text())
        .await
        .context("reading the VAPID key from the store")?;
    VapidKey::from_private(&stored)
        .map_err(|error| anyhow::anyhow!("the stored VAPID key: {error}"))
}

/// Opens storage, wires the ports and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    config.validate()?;
    let store = backends::Storage::open(&config).await?;
    let core = config.core();
    let media = backends::Media::open(&config).await?;
    let ports = backends::ports(&config, &store, &media, core.presence_lease).await?;
    let mut core = core;
    core.push_vapid_public_key = vapid_key(&config, ports.store.as_ref()).await?.public_key();
    let chat = Chat::new(core, ports);
    let metrics = if config.metrics {
        metrics_handle()
    } else {
        None
    };
    let state = AppState::new(chat, config.gateway(), metrics)
        .await
        .context("subscribing to the bus")?;
    let mut app = parley_gateway::router(state.clone());
    if let Some(blobs) = media.router() {
        app = app.merge(blobs);
    }
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let (stop, stopped) = oneshot::channel::<()>();
    let grace = Duration::from_secs(config.shutdown_grace_secs);

    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };

    let serve_state = state.clone();
    let serve_handle = handle.clone();
    let tls = config.tls.clone();
    let request_timeout = Duration::from_secs(config.limits.request_timeout_secs);
    let task = tokio::spawn(async move {
        let shutdown_handle = serve_handle.clone();
        let shutdown_state = serve_state.clone();
        tokio::spawn(async move {
            let _ = stopped.await;
            tracing::info!("shutting down: no new connections");
            // Stop accepting and ask sockets to close; the rest of the shutdown runs once,
            // below, after the listener is done.
            shutdown_state.begin_shutdown();
            shutdown_handle.graceful_shutdown(Some(grace));
        });
        let mut server = axum_server::from_tcp(listener).acceptor(FirstByteDeadline {
            timeout: request_timeout,
        });
        configure_http(server.http_builder(), request_timeout);
        match tls {
            Some(tls) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let rustls_config = tls_config(&tls).await?;
                let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls_config)
                    .handshake_timeout(request_timeout)
                    .acceptor(FirstByteDeadline {
                        timeout: request_timeout,
                    });
                server
                    .map(|_| acceptor)
                    .handle(serve_handle)
                    .serve(app)
                    .await?;
            }
            None => {
                server.handle(serve_handle).serve(app).await?;
            }
        }
        // The listener is closed and connections are done: write what is queued.
        serve_state.shutdown(grace).await;
        store.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    });
    Ok(RunningServer {
        address,
        scheme,
        stop: Some(stop),
        task,
    })
}
