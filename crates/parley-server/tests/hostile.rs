//! A hostile client against the real binary, over raw sockets: slowloris requests, bare
//! TCP connections, fragment floods, oversize frames, invalid UTF-8, frames before `auth`
//! and socket floods, all at once. Throughout, a normal client keeps sending and getting
//! its acks at normal latency, and the server's resident memory stays bounded.

#[path = "it/binary.rs"]
mod binary;

use futures::{SinkExt, StreamExt};
use parley_sdk::{Client, Connection};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// Sockets the attacker holds per kind; with the defaults' per-address cap below.
const SOCKETS_PER_ATTACK: usize = 60;
const MAX_SOCKETS_PER_IP: usize = 200;

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_hostile_target(data_dir: &std::path::Path) -> Server {
    let (child, url) = binary::spawn_binary(
        data_dir,
        &[
            ("PARLEY_LIMITS__REQUEST_TIMEOUT_SECS", "2".into()),
            (
                "PARLEY_LIMITS__MAX_SOCKETS_PER_IP",
                MAX_SOCKETS_PER_IP.to_string(),
            ),
            ("RUST_LOG", "error".into()),
        ],
    );
    Server { child, url }
}

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// Every attack, on its own task, until `stop`.
fn attack(url: &str, token: &str, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    let address = url.trim_start_matches("http://").to_owned();
    let ws = format!("{}/ws", url.replacen("http", "ws", 1));
    let ws_token = format!("{ws}?token={token}");
    let mut tasks = Vec::new();

    // Slowloris: request heads trickled a byte at a time, reconnecting when cut.
    {
        let (address, stop) = (address.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                while held.len() < SOCKETS_PER_ATTACK {
                    match tokio::net::TcpStream::connect(&address).await {
                        Ok(stream) => held.push(stream),
                        Err(_) => break,
                    }
                }
                let mut alive = Vec::new();
                for mut stream in held.drain(..) {
                    if stream.write_all(b"X").await.is_ok() {
                        alive.push(stream);
                    }
                }
                held = alive;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }));
    }
    // Bare TCP connections that never say anything.
    {
        let (address, stop) = (address.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if held.len() < SOCKETS_PER_ATTACK {
                    if let Ok(stream) = tokio::net::TcpStream::connect(&address).await {
                        held.push(stream);
                    }
                } else {
                    held.remove(0);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    // Fragment floods: a text message started and continued, never finished, up to and
    // past the hard limit; oversize single frames; invalid UTF-8; frames before auth.
    for kind in 0..4 {
        let (ws, ws_token, stop) = (ws.clone(), ws_token.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let target = if kind == 3 { &ws } else { &ws_token };
                let Ok((mut socket, _)) = tokio_tungstenite::connect_async(target).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let outcome = match kind {
                    0 => {
                        let first =
                            Frame::message(vec![b'x'; 64 * 1024], OpCode::Data(Data::Text), false);
                        let mut result = socket.send(Message::Frame(first)).await;
                        for _ in 0..20 {
                            if result.is_err() {
                                break;
                            }
                            let more = Frame::message(
                                vec![b'x'; 64 * 1024],
                                OpCode::Data(Data::Continue),
                                false,
                            );
                            result = socket.send(Message::Frame(more)).await;
                        }
                        result
                    }
                    1 => {
                        let huge = "x".repeat(1536 * 1024);
                        socket.send(Message::Text(huge.into())).await
                    }
                    2 => {
                        let frame = Frame::message(vec![0xff; 512], OpCode::Data(Data::Text), true);
                        socket.send(Message::Frame(frame)).await
                    }
                    _ => socket.send(Message::Binary(vec![0u8; 1024].into())).await,
                };
                let _ = outcome;
                // Read until the server closes, bounded.
                let _ = tokio::time::timeout(Duration::from_secs(3), async {
                    while let Some(Ok(_)) = socket.next().await {}
                })
                .await;
            }
        }));
    }
    // A socket flood: as many unauthenticated WebSockets as the server lets in.
    {
        let (ws, stop) = (ws.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match tokio_tungstenite::connect_async(&ws).await {
                    Ok((socket, _)) => held.push(socket),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
                if held.len() > MAX_SOCKETS_PER_IP {
                    held.remove(0);
                }
            }
        }));
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_client_does_not_disturb_a_normal_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_hostile_target(dir.path());
    let pid = server.child.id();
    let alice = Client::new(&server.url).unwrap();
    alice.register("alice", "password-123", None).await.unwrap();
    let bob = Client::new(&server.url).unwrap();
    let bob_auth = bob.register("bob", "password-123", None).await.unwrap();
    let mallory = Client::new(&server.url).unwrap();
    let mallory_auth = mallory
        .register("mallory", "password-123", None)
        .await
        .unwrap();
    let conversation = alice.create_direct(&bob_auth.user_id).await.unwrap();
    let rss_before = rss_kib(pid);

    let mut connection = Connection::connect(alice.connection_config().unwrap())
        .await
        .unwrap();
    let baseline = send_round(&mut connection, &conversation.conversation_id, 20, "calm").await;

    let stop = Arc::new(AtomicBool::new(false));
    let tasks = attack(&server.url, &mallory_auth.token, stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut under_attack = Vec::new();
    let mut peak_rss = 0;
    for round in 0..5 {
        under_attack.extend(
            send_round(
                &mut connection,
                &conversation.conversation_id,
                20,
                &format!("attack{round}"),
            )
            .await,
        );
        peak_rss = peak_rss.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    let p99 = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
    };
    let (mut calm, mut attacked) = (baseline, under_attack);
    let (calm_p99, attacked_p99) = (p99(&mut calm), p99(&mut attacked));
    eprintln!(
        "ack p99 calm {calm_p99:?}, under attack {attacked_p99:?}; RSS {rss_before} KiB before, peak {peak_rss} KiB"
    );
    // Normal latency here is a few ms; a starved or stalled server takes seconds.
    assert!(
        attacked_p99 < Duration::from_millis(500),
        "acks under attack: p99 {attacked_p99:?} (calm {calm_p99:?})"
    );
    assert!(
        peak_rss < rss_before + 300 * 1024,
        "RSS grew from {rss_before} KiB to {peak_rss} KiB"
    );
    // Still healthy afterwards.
    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// Sends `count` messages one at a time and returns each one's ack latency.
async fn send_round(
    connection: &mut Connection,
    conversation_id: &parley_proto::ConversationId,
    count: usize,
    tag: &str,
) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(count);
    for index in 0..count {
        let started = Instant::now();
        let handle = connection
            .send(conversation_id.clone(), format!("{tag} {index}"))
            .unwrap();
        let acked = tokio::time::timeout(Duration::from_secs(10), handle.ack()).await;
        assert!(
            matches!(acked, Ok(Ok(_))),
            "no ack for {tag} {index} within 10 s: {acked:?}"
        );
        latencies.push(started.elapsed());
        // Keep the event queue short.
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(1), connection.next_event()).await
        {}
    }
    latencies
}
