//! parley's load generator: many simulated users driving a real server through the SDK.
//!
//! [`run`] registers fresh users (random prefix), creates conversations per a [`plan`],
//! opens one WebSocket per user and either sends at a target rate (`traffic`, with an
//! optional fan-out group) or just holds connections open (`idle`). It measures what
//! clients see — acks, deliveries, loss, duplicates, latencies — into a [`Report`]; it
//! never reads server internals beyond `/proc/<pid>/status` for RSS.

pub mod payload;
pub mod plan;
pub mod rss;
pub mod stats;

mod idle;
mod setup;
mod traffic;

pub use stats::{IdleReport, LatencySummary, Report, RssReport};

use std::time::Duration;

/// What the run does once users exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Send at `--rate` for `--duration` and measure deliveries and latencies.
    Traffic,
    /// Open `--connections` authenticated connections, hold them, measure memory.
    Idle,
}

/// Options of `parley bench`.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// `traffic` (send and measure latency) or `idle` (hold connections, measure memory).
    #[arg(long, value_enum, default_value = "traffic")]
    pub mode: Mode,
    /// Simulated users to register (one WebSocket each in traffic mode; in idle mode the
    /// connections are spread over them).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Conversations in traffic mode: a mix of direct chats and groups.
    #[arg(long, default_value_t = 50)]
    pub conversations: usize,
    /// Fraction of the conversations that are groups (0.0 - 1.0).
    #[arg(long, default_value_t = 0.3)]
    pub group_ratio: f64,
    /// Members of each group in the mix.
    #[arg(long, default_value_t = 8)]
    pub group_members: usize,
    /// Fan-out scenario: one group of this many members instead of the mix.
    #[arg(long)]
    pub group_size: Option<usize>,
    /// Fan-out scenario: how many of the group's members send (default: all).
    #[arg(long)]
    pub senders: Option<usize>,
    /// Target total send rate, messages per second.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Measured sending time (`30s`, `500ms`, `2m`; in idle mode: how long to hold).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Sending before measuring starts.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// After sending stops, wait at most this long for outstanding acks and deliveries.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Size of each message's content in bytes (at least the tag, ~40 bytes).
    #[arg(long, default_value_t = 100)]
    pub message_size: usize,
    /// Idle mode: connections to open.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Idle mode: log in once per connection, so each has its own device (slow: one
    /// password hash each). By default connections of a user share its token.
    #[arg(long)]
    pub fresh_devices: bool,
    /// The server's process id, to report its RSS from /proc/PID/status.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Parallel requests while registering users and creating conversations.
    #[arg(long, default_value_t = 8)]
    pub setup_concurrency: usize,
    /// Parallel WebSocket handshakes while connecting.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Password of the generated users.
    #[arg(long, default_value = "loadgen-password-1")]
    pub password: String,
    /// Cluster mode: a node's URL (repeat the flag, or give a comma-separated list).
    /// Users (traffic) or connections (idle) are assigned to the nodes round-robin;
    /// registration and conversation setup go to the first node. Without it, the
    /// global `--server` is used, which may itself be a comma-separated list.
    #[arg(long = "node", value_name = "URL", value_delimiter = ',')]
    pub nodes: Vec<String>,
}

impl Default for BenchArgs {
    fn default() -> Self {
        Self {
            mode: Mode::Traffic,
            users: 100,
            conversations: 50,
            group_ratio: 0.3,
            group_members: 8,
            group_size: None,
            senders: None,
            rate: 200.0,
            duration: Duration::from_secs(30),
            warmup: Duration::from_secs(5),
            drain: Duration::from_secs(10),
            message_size: 100,
            connections: 1000,
            fresh_devices: false,
            server_pid: None,
            setup_concurrency: 8,
            connect_concurrency: 64,
            password: "loadgen-password-1".into(),
            nodes: Vec::new(),
        }
    }
}

/// Runs one benchmark against the server at `server` (`http://host:port`), or against
/// the nodes of a cluster (`args.nodes`, or `server` as a comma-separated list).
///
/// Errors only when the run cannot be set up (server unreachable, registration
/// refused); problems during the run (loss, refusals) are counted in the report.
pub async fn run(server: &str, args: BenchArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(args.users >= 1, "--users must be at least 1");
    let nodes = node_urls(server, &args.nodes);
    anyhow::ensure!(!nodes.is_empty(), "no server URL given");
    if nodes.len() > 1 {
        tracing::info!(nodes = nodes.len(), setup = %nodes[0], "spreading clients over nodes");
    }
    match args.mode {
        Mode::Traffic => {
            anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
            traffic::run_traffic(&nodes, &args).await
        }
        Mode::Idle => {
            anyhow::ensure!(args.connections >= 1, "--connections must be at least 1");
            idle::run_idle(&nodes, &args).await
        }
    }
}

/// The node URLs of a run: `--node` values when given, otherwise `server` split at
/// commas. Each is trimmed of blanks and trailing slashes; empty entries are dropped.
/// A single server gives a one-element list, so single-server runs are unchanged.
pub fn node_urls(server: &str, nodes: &[String]) -> Vec<String> {
    let listed: Vec<&str> = if nodes.is_empty() {
        server.split(',').collect()
    } else {
        nodes.iter().flat_map(|node| node.split(',')).collect()
    };
    listed
        .into_iter()
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .filter(|url| !url.is_empty())
        .collect()
}

/// The node that client number `index` (a user in traffic mode, a connection in idle
/// mode) talks to: round-robin over `nodes`, which must not be empty.
pub fn node_for(nodes: &[String], index: usize) -> &str {
    &nodes[index % nodes.len()]
}

/// Parses `30s`, `500ms`, `2m`, `1h` or a bare number of seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split_at = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split_at);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 30s, 500ms, 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("invalid duration unit {other:?} in {text:?}")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Durations accept the usual units and reject nonsense.
    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[derive(clap::Parser)]
    struct Harness {
        #[command(flatten)]
        bench: BenchArgs,
    }

    /// The clap defaults equal `BenchArgs::default()`, and flags parse.
    #[test]
    fn flags_parse() {
        let defaults = Harness::parse_from(["bench"]).bench;
        assert_eq!(
            format!("{defaults:?}"),
            format!("{:?}", BenchArgs::default())
        );
        let fanout = Harness::parse_from([
            "bench",
            "--group-size",
            "500",
            "--senders",
            "2",
            "--rate",
            "20",
            "--duration",
            "10s",
            "--server-pid",
            "42",
        ])
        .bench;
        assert_eq!(fanout.group_size, Some(500));
        assert_eq!(fanout.senders, Some(2));
        assert_eq!(fanout.duration, Duration::from_secs(10));
        assert_eq!(fanout.server_pid, Some(42));
        let idle = Harness::parse_from(["bench", "--mode", "idle", "--connections", "10000"]).bench;
        assert_eq!((idle.mode, idle.connections), (Mode::Idle, 10000));
        let cluster = Harness::parse_from([
            "bench",
            "--node",
            "http://a:1",
            "--node",
            "http://b:2,http://c:3",
        ])
        .bench;
        assert_eq!(cluster.nodes, ["http://a:1", "http://b:2", "http://c:3"]);
    }

    /// One server stays one node; lists come from `--node` first, else from `--server`.
    #[test]
    fn node_urls_from_server_or_flags() {
        assert_eq!(
            node_urls("http://127.0.0.1:8080", &[]),
            ["http://127.0.0.1:8080"]
        );
        assert_eq!(
            node_urls(" http://a:1/, http://b:2 ,,http://c:3", &[]),
            ["http://a:1", "http://b:2", "http://c:3"]
        );
        let flagged = vec!["http://b:2/".to_owned(), "http://c:3".to_owned()];
        assert_eq!(
            node_urls("http://ignored:9", &flagged),
            ["http://b:2", "http://c:3"]
        );
        assert!(node_urls(" , ", &[]).is_empty());
    }

    /// Clients go round-robin: with 3 nodes, 7 clients land 3/2/2, client i on node i % 3;
    /// with one node every client lands on it.
    #[test]
    fn clients_are_assigned_round_robin() {
        let nodes = node_urls("http://n1,http://n2,http://n3", &[]);
        let assigned: Vec<&str> = (0..7).map(|index| node_for(&nodes, index)).collect();
        assert_eq!(
            assigned,
            [
                "http://n1",
                "http://n2",
                "http://n3",
                "http://n1",
                "http://n2",
                "http://n3",
                "http://n1"
            ]
        );
        let per_node: Vec<usize> = nodes
            .iter()
            .map(|node| assigned.iter().filter(|&&url| url == node).count())
            .collect();
        assert_eq!(per_node, [3, 2, 2]);
        let single = node_urls("http://only", &[]);
        assert!((0..5).all(|index| node_for(&single, index) == "http://only"));
    }
}
