//! `--mode idle`: open many authenticated connections, hold them, weigh the server.
//!
//! Connections are spread round-robin over `--users` users (sharing each user's token
//! unless `--fresh-devices`) and over the nodes (connection j on node j % nodes), opened
//! `--connect-concurrency` at a time. The report
//! gives the server's RSS growth per connection and the generator's own cost, and how
//! many connections broke while held. It sends no messages.

use crate::rss::{own_rss_kib, rss_kib};
use crate::setup::{device_config, random_prefix, register_users};
use crate::stats::{IdleReport, Report, RssReport};
use crate::traffic::RssSampler;
use crate::{node_for, BenchArgs};
use anyhow::Context as _;
use futures::StreamExt;
use parley_sdk::{Connection, ConnectionHandle, Event};
use rand::{rngs::StdRng, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) async fn run_idle(nodes: &[String], args: &BenchArgs) -> anyhow::Result<Report> {
    let wanted_descriptors = args.connections as u64 + 1024;
    match rlimit::increase_nofile_limit(wanted_descriptors) {
        Ok(limit) if limit < wanted_descriptors => tracing::warn!(
            limit,
            wanted_descriptors,
            "open-file limit is lower than the connections need"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }

    // REST setup goes to the first node; connection j then opens on node j % nodes.
    let server = nodes[0].as_str();
    let mut random = StdRng::from_os_rng();
    let prefix = random_prefix(&mut random);
    let user_count = args.users.min(args.connections).max(1);
    let users = register_users(
        server,
        &prefix,
        user_count,
        &args.password,
        args.setup_concurrency,
    )
    .await?;

    let mut tokens = Vec::with_capacity(args.connections);
    if args.fresh_devices {
        let logins = futures::stream::iter(0..args.connections)
            .map(|connection_index| {
                let user = &users[connection_index % users.len()];
                let client = user.client.new_session();
                let password = args.password.clone();
                async move {
                    client
                        .login_device(&user.username, &password, Some("loadgen idle"))
                        .await
                        .map(|auth| auth.token)
                        .with_context(|| format!("logging in {}", user.username))
                }
            })
            .buffered(args.setup_concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        for login in logins {
            tokens.push(login?);
        }
    } else {
        for connection_index in 0..args.connections {
            let user = &users[connection_index % users.len()];
            tokens.push(user.client.token().unwrap_or_default());
        }
    }

    let server_before_kib = args.server_pid.and_then(rss_kib);
    let own_before_kib = own_rss_kib();
    let disconnected = Arc::new(AtomicU64::new(0));
    let opening_started = Instant::now();
    let mut handles: Vec<ConnectionHandle> = Vec::with_capacity(args.connections);
    let mut failed = 0usize;
    let mut first_error = None;
    let mut attempts = futures::stream::iter(tokens.into_iter().enumerate())
        .map(|(connection_index, token)| {
            connect_retrying(device_config(node_for(nodes, connection_index), &token))
        })
        .buffer_unordered(args.connect_concurrency.max(1));
    while let Some(attempt) = attempts.next().await {
        match attempt {
            Ok(connection) => {
                let (handle, events) = connection.into_parts();
                tokio::spawn(count_disconnects(events, Arc::clone(&disconnected)));
                handles.push(handle);
                if handles.len().is_multiple_of(1000) {
                    tracing::info!(opened = handles.len(), "idle connections");
                }
            }
            Err(error) => {
                failed += 1;
                first_error.get_or_insert_with(|| error.to_string());
            }
        }
    }
    drop(attempts);
    let open_secs = opening_started.elapsed().as_secs_f64();
    // Let the server finish the per-connection work (sync, presence) before weighing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server_open_kib = args.server_pid.and_then(rss_kib);
    let own_open_kib = own_rss_kib();
    let disconnected_while_opening = disconnected.load(Ordering::Relaxed);

    let rss_sampler = RssSampler::start(args.server_pid);
    let holding_started = Instant::now();
    tokio::time::sleep(args.duration).await;
    let hold_secs = holding_started.elapsed().as_secs_f64();
    let held_rss = rss_sampler.finish();

    let opened = handles.len();
    let per_connection = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(before_kib), Some(after_kib)) if opened > 0 => {
            Some(after_kib.saturating_sub(before_kib) * 1024 / opened as u64)
        }
        _ => None,
    };
    let idle = IdleReport {
        requested: args.connections,
        opened,
        failed,
        first_error,
        disconnected: disconnected
            .load(Ordering::Relaxed)
            .saturating_sub(disconnected_while_opening),
        hold_secs,
        open_secs,
        server_rss_open_kib: server_open_kib,
        server_bytes_per_connection: per_connection(server_before_kib, server_open_kib),
        loadgen_bytes_per_connection: per_connection(own_before_kib, own_open_kib),
    };
    let server_rss = match (server_before_kib, held_rss) {
        (Some(before_kib), Some(held)) => Some(RssReport {
            before_kib,
            after_kib: held.after_kib,
            peak_kib: held.peak_kib.max(server_open_kib.unwrap_or(0)),
        }),
        _ => None,
    };
    drop(handles);
    Ok(Report {
        mode: "idle".into(),
        users: users.len(),
        server_rss,
        loadgen_rss_kib: own_open_kib,
        idle: Some(idle),
        ..Report::default()
    })
}

/// Opens a connection as a client app would: a refusal (a node's accept rate, a
/// handshake that timed out) is tried again after a growing, jittered pause, up to ten
/// times.
async fn connect_retrying(
    config: parley_sdk::ConnectionConfig,
) -> Result<Connection, parley_sdk::SdkError> {
    let mut pause = Duration::from_millis(250);
    let mut attempts = 0;
    loop {
        match Connection::connect(config.clone()).await {
            Ok(connection) => return Ok(connection),
            Err(error) if attempts >= 10 => return Err(error),
            Err(_) => {
                attempts += 1;
                let jitter = rand::random_range(0.5..1.5);
                tokio::time::sleep(pause.mul_f64(jitter)).await;
                pause = (pause * 2).min(Duration::from_secs(8));
            }
        }
    }
}

/// Drains one idle connection's events, counting breaks.
async fn count_disconnects(mut events: parley_sdk::EventStream, disconnected: Arc<AtomicU64>) {
    while let Some(event) = events.next_event().await {
        match event {
            Event::Disconnected { .. } => {
                disconnected.fetch_add(1, Ordering::Relaxed);
            }
            Event::Closed { .. } => return,
            _ => {}
        }
    }
}
