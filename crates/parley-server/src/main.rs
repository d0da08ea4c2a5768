//! `parley`: the server (`parley serve`) and the command-line client in one binary.

use clap::{Parser, Subcommand};
use parley_server::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

/// mimalloc returns freed memory to the OS far better than glibc's allocator does after
/// bursts (Argon2's 19 MiB blocks, sync bursts), and keeps idle connections small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// parley: a real-time chat server and its command-line client.
#[derive(Parser)]
#[command(name = "parley", version, about, long_about = None)]
struct Cli {
    /// Server URL for the client commands.
    #[arg(
        long,
        global = true,
        env = "PARLEY_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded mode: SQLite in --data-dir, no external service).
    Serve(ServeArgs),
    #[command(flatten)]
    Client(parley_cli::Command),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free one.
    #[arg(long, env = "PARLEY_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory for the database [default: ./data].
    #[arg(long, env = "PARLEY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL instead of the embedded SQLite (postgres://user@host:port/database).
    #[arg(long, env = "PARLEY_DATABASE_URL")]
    database_url: Option<String>,
    /// NATS for routing between nodes (nats://host:4222); needs --database-url.
    #[arg(long, env = "PARLEY_NATS_URL")]
    nats_url: Option<String>,
    /// Redis for presence and cluster-wide limits (redis://host:6379); needs --database-url.
    #[arg(long, env = "PARLEY_REDIS_URL")]
    redis_url: Option<String>,
    /// The cluster's name [default: parley]: the same on every node of one cluster.
    #[arg(long, env = "PARLEY_CLUSTER_NAME")]
    cluster_name: Option<String>,
    /// This node's name in a cluster [default: local]: different on every live node.
    #[arg(long, env = "PARLEY_NODE_ID")]
    node_id: Option<String>,
    /// TOML configuration file for everything else (see parley.example.toml).
    #[arg(long, env = "PARLEY_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Client(command) => runtime.block_on(parley_cli::run(command, &cli.server)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    if let Some(database_url) = args.database_url {
        config.database_url = Some(database_url);
    }
    if let Some(node_id) = args.node_id {
        config.node_id = node_id;
    }
    if let Some(nats_url) = args.nats_url {
        config.nats_url = Some(nats_url);
    }
    if let Some(redis_url) = args.redis_url {
        config.redis_url = Some(redis_url);
    }
    if let Some(cluster_name) = args.cluster_name {
        config.cluster_name = cluster_name;
    }
    config.validate()?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    // One socket is one descriptor: allow as many as the hard limit does.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
    }
    let mut server = parley_server::start(config.clone()).await?;
    let url = server.url();
    let data = match (&config.database_url, &config.nats_url, &config.redis_url) {
        (None, ..) => format!("data in {}", config.data_dir.display()),
        (Some(_), None, None) => "data in PostgreSQL".to_owned(),
        (Some(_), nats, redis) => format!(
            "data in PostgreSQL, cluster {:?}{}{}",
            config.cluster_name,
            if nats.is_some() { ", NATS" } else { "" },
            if redis.is_some() { ", Redis" } else { "" }
        ),
    };
    tracing::info!(node_id = %config.node_id, "listening on {url} ({data})");
    println!("parley listening on {url} ({data})");
    let stop = server.take_stop();
    tokio::spawn(async move {
        wait_for_signal().await;
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
    });
    server.wait().await
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
