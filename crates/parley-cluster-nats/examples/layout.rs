//! Measures the subject layout `NatsBus` uses (a subject per user) against the
//! alternative (one subject every node reads and filters), on the NATS server at
//! `PARLEY_TEST_NATS_URL` (default `nats://127.0.0.1:4222`), with three nodes in this
//! process, each on its own connection. Figures go to `LAYOUT.md`.
//!
//! ```text
//! cargo run --release -p parley-cluster-nats --example layout
//! ```
//!
//! Per user: three `NatsBus` handles, 1000 users on each node. Broadcast: three raw
//! async-nats connections on one subject; each message carries the event with all its
//! users (the JSON a `BusEvent` is), and every node decodes it and keeps its own users.
//! Both count a "copy" per (node, local recipient), the unit a node's dispatcher serves.

use async_nats::Client;
use futures::StreamExt;
use parley_cluster_nats::{NatsBus, NatsOptions};
use parley_core::bus::{Bus, BusEvent, Interest, NodeId};
use parley_proto::{ConversationId, DeviceId, Message, MessageId, ServerFrame, Timestamp, UserId};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const NODES: usize = 3;
const USERS_PER_NODE: usize = 1000;
const DIRECT: usize = 100_000;
const PACED: usize = 2_000;
const GROUP: usize = 1024;
const GROUP_MESSAGES: usize = 200;
const GROUP_ROUNDS: usize = 50;

/// (event number, copies for this node's users, when it arrived)
type Seen = mpsc::UnboundedReceiver<(i64, usize, Instant)>;

fn user(node: usize, index: usize) -> UserId {
    UserId::from(format!("u_{node}_{index:04}").as_str())
}

/// The recipient of 1:1 event `number`, spread over every node.
fn direct_user(number: usize) -> UserId {
    user(number % NODES, (number * 31) % USERS_PER_NODE)
}

/// A group of `GROUP` members, a third on each node.
fn group() -> Vec<UserId> {
    (0..GROUP).map(|i| user(i % NODES, i / NODES)).collect()
}

fn event(user_ids: &[UserId], number: usize) -> BusEvent {
    let frame = ServerFrame::NewMessage(Message {
        message_id: MessageId::from("01JD0000000000000000000000"),
        conversation_id: ConversationId::from("c_01JD0000000000000000000000"),
        seq: 1000 + number as i64,
        sender_id: UserId::from("u_01JD0000000000000000000000"),
        sender_device_id: DeviceId::from("d_01JD0000000000000000000000"),
        client_msg_id: "6f1c2a9e-8f1b-4c53-9d8e-0d5f2b7c1a44".into(),
        content: "a message of the usual length, with a few words in it".into(),
        content_type: "text".into(),
        reply_to_seq: None,
        created_at: Timestamp::from_millis(1_790_000_000_000),
        system: None,
        target_seq: None,
        mentions: Vec::new(),
        forwarded: false,
        attachments: Vec::new(),
        edited_at: None,
        deleted: false,
        reactions: Vec::new(),
        hidden: false,
        expires_at: None,
    });
    BusEvent::Deliver {
        user_ids: user_ids.into(),
        except_connection: None,
        frame: Arc::new(frame),
        created_at_ms: Some(number as i64),
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|line| line.starts_with("VmRSS:"));
    line.and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// How a layout publishes one batch of events from node 0.
trait Layout {
    async fn publish(&self, events: Vec<BusEvent>);
}

struct PerUser(Arc<NatsBus>);

impl Layout for PerUser {
    async fn publish(&self, events: Vec<BusEvent>) {
        self.0.publish(events).await.expect("publish");
    }
}

struct Broadcast {
    client: Client,
    subject: String,
}

impl Layout for Broadcast {
    async fn publish(&self, events: Vec<BusEvent>) {
        for event in events {
            let payload = serde_json::to_vec(&event).unwrap();
            let subject = self.subject.clone();
            self.client.publish(subject, payload.into()).await.unwrap();
        }
    }
}

/// Waits until `copies` copies arrived; returns the arrivals.
async fn collect(seen: &mut Seen, copies: usize) -> Vec<(i64, usize, Instant)> {
    let mut arrivals = Vec::new();
    let mut total = 0;
    while total < copies {
        match tokio::time::timeout(Duration::from_secs(30), seen.recv()).await {
            Ok(Some(arrival)) => {
                total += arrival.1;
                arrivals.push(arrival);
            }
            _ => panic!("only {total} of {copies} copies arrived"),
        }
    }
    arrivals
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    format!("p50 {:?}, p99 {:?}", at(0.50), at(0.99))
}

async fn measure(name: &str, layout: &impl Layout, seen: &mut Seen) {
    // 1:1, as fast as it goes, in fan-out sized batches.
    let started = Instant::now();
    let events: Vec<BusEvent> = (0..DIRECT).map(|n| event(&[direct_user(n)], n)).collect();
    for batch in events.chunks(64) {
        layout.publish(batch.to_vec()).await;
    }
    collect(seen, DIRECT).await;
    let rate = DIRECT as f64 / started.elapsed().as_secs_f64();
    println!("{name} 1:1 throughput: {rate:.0} events/s");

    // 1:1 latency, one event at a time at 1000/s.
    let mut sent = Vec::with_capacity(PACED);
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    for n in 0..PACED {
        ticks.tick().await;
        sent.push(Instant::now());
        layout.publish(vec![event(&[direct_user(n)], n)]).await;
    }
    let arrivals = collect(seen, PACED).await;
    let latencies = arrivals.iter().map(|(n, _, at)| *at - sent[*n as usize]);
    println!("{name} 1:1 latency: {}", percentiles(latencies.collect()));

    // A group of 1024 over three nodes: a burst, then one at a time.
    let members = group();
    let started = Instant::now();
    for batch in (0..GROUP_MESSAGES).collect::<Vec<_>>().chunks(16) {
        layout
            .publish(batch.iter().map(|n| event(&members, *n)).collect())
            .await;
    }
    collect(seen, GROUP_MESSAGES * GROUP).await;
    let each = started.elapsed() / GROUP_MESSAGES as u32;
    println!("{name} group burst: {each:?} per group message");
    let mut rounds = Vec::new();
    for n in 0..GROUP_ROUNDS {
        let started = Instant::now();
        layout.publish(vec![event(&members, n)]).await;
        collect(seen, GROUP).await;
        rounds.push(started.elapsed());
    }
    println!(
        "{name} group latency (all 1024 copies in): {}",
        percentiles(rounds)
    );
}

async fn per_user(url: &str, prefix: &str) {
    let (sender, mut seen) = mpsc::unbounded_channel();
    let options = NatsOptions {
        capacity: 1 << 20,
        subscription_capacity: 1 << 16,
        ..NatsOptions::default()
    };
    let mut buses = Vec::new();
    for node in 0..NODES {
        let id = NodeId::new(&format!("node-{node}")).unwrap();
        let bus = NatsBus::connect_with(url, prefix, id, options.clone()).await;
        let bus = Arc::new(bus.unwrap_or_else(|error| panic!("NATS at {url}: {error:?}")));
        let mut events = bus.subscribe().await.unwrap();
        let sender = sender.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let BusEvent::Deliver {
                    user_ids,
                    created_at_ms: Some(n),
                    ..
                } = event
                {
                    let _ = sender.send((n, user_ids.len(), Instant::now()));
                }
            }
        });
        buses.push(bus);
    }
    let (rss, started) = (rss_kib(), Instant::now());
    for (node, bus) in buses.iter().enumerate() {
        for index in 0..USERS_PER_NODE {
            let interest = Interest::User(user(node, index));
            bus.add_interest(interest).await.unwrap();
        }
    }
    let interests = (NODES * USERS_PER_NODE) as u32;
    println!(
        "per-user add_interest: {:?} each (one after another), {} bytes of RSS per subscription",
        started.elapsed() / interests,
        (rss_kib().saturating_sub(rss)) * 1024 / u64::from(interests)
    );
    measure("per-user", &PerUser(buses[0].clone()), &mut seen).await;
}

async fn broadcast(url: &str, prefix: &str) {
    let subject = format!("parley.{prefix}.everything");
    let (sender, mut seen) = mpsc::unbounded_channel();
    let mut clients = Vec::new();
    let wasted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for node in 0..NODES {
        // Room for a whole burst: every node takes every message in this layout.
        let options = async_nats::ConnectOptions::new().subscription_capacity(1 << 20);
        let client = options.connect(url).await.unwrap();
        let mut messages = client.subscribe(subject.clone()).await.unwrap();
        client.flush().await.unwrap();
        let local: HashSet<UserId> = (0..USERS_PER_NODE).map(|i| user(node, i)).collect();
        let (sender, wasted) = (sender.clone(), wasted.clone());
        tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                let event: BusEvent = serde_json::from_slice(&message.payload).unwrap();
                if let BusEvent::Deliver {
                    user_ids,
                    created_at_ms: Some(n),
                    ..
                } = event
                {
                    let ours = user_ids.iter().filter(|id| local.contains(*id)).count();
                    if ours == 0 {
                        wasted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    } else {
                        let _ = sender.send((n, ours, Instant::now()));
                    }
                }
            }
        });
        clients.push(client);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let layout = Broadcast {
        client: clients[0].clone(),
        subject,
    };
    measure("broadcast", &layout, &mut seen).await;
    let delivered: u64 = clients
        .iter()
        .map(|c| {
            c.statistics()
                .in_messages
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    println!(
        "broadcast: {delivered} deliveries to nodes, {} of them for no user of the node",
        wasted.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::main]
async fn main() {
    let url = std::env::var("PARLEY_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let run = std::process::id();
    let one = serde_json::to_vec(&event(&[], 0)).unwrap().len();
    let all = serde_json::to_vec(&event(&group(), 0)).unwrap().len();
    println!("payload: {one} bytes without users (per-user), {all} with 1024 users (broadcast)");
    per_user(&url, &format!("layout-u{run}")).await;
    broadcast(&url, &format!("layout-b{run}")).await;
}
