//! `--mode traffic`: send at a target rate, measure what every device receives.
//!
//! One scheduler task draws (sender, conversation) slots at random and hands tagged
//! messages to the senders' connections; one event task per user records acks and
//! deliveries into the shared `Recorder`. After sending stops, a drain waits for
//! outstanding acks and deliveries, so `lost` means lost, not late.

use crate::payload::{Clock, Phase, Tag};
use crate::plan::{plan_fanout, plan_mixed, send_slots, PlannedConversation};
use crate::rss::{own_rss_kib, rss_kib};
use crate::setup::{
    connect_all, create_conversations, device_config, random_prefix, register_users,
};
use crate::stats::{Recorder, Report, RssReport};
use crate::{node_for, BenchArgs};
use parking_lot::Mutex;
use parley_sdk::proto::{ConversationId, DeviceId, ErrorCode};
use parley_sdk::{
    ConnectionHandle, CursorTracker, Event, EventStream, Observation, OutgoingMessage, ServerFrame,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every event task needs to interpret what it receives.
struct RunContext {
    clock: Clock,
    /// Recipients per message, by conversation index.
    recipients: Vec<u64>,
    recorder: Mutex<Recorder>,
}

pub(crate) async fn run_traffic(nodes: &[String], args: &BenchArgs) -> anyhow::Result<Report> {
    let mut random = StdRng::from_os_rng();
    let (plan, user_count): (Vec<PlannedConversation>, usize) = match args.group_size {
        Some(group_size) => {
            anyhow::ensure!(
                (2..=parley_sdk::proto::limits::MAX_GROUP_MEMBERS).contains(&group_size),
                "--group-size must be between 2 and {}",
                parley_sdk::proto::limits::MAX_GROUP_MEMBERS
            );
            (
                plan_fanout(group_size, args.senders.unwrap_or(group_size)),
                args.users.max(group_size),
            )
        }
        None => {
            anyhow::ensure!(args.users >= 2, "--users must be at least 2 for traffic");
            (
                plan_mixed(
                    args.users,
                    args.conversations,
                    args.group_ratio,
                    args.group_members,
                    &mut random,
                ),
                args.users,
            )
        }
    };
    anyhow::ensure!(!plan.is_empty(), "the plan has no conversations");

    // REST setup goes to the first node; user i then connects to node i % nodes.
    let server = nodes[0].as_str();
    let prefix = random_prefix(&mut random);
    tracing::info!(users = user_count, conversations = plan.len(), %prefix, "registering");
    let users = register_users(
        server,
        &prefix,
        user_count,
        &args.password,
        args.setup_concurrency,
    )
    .await?;
    let conversation_ids = create_conversations(&users, &plan, args.setup_concurrency).await?;
    let configs = users
        .iter()
        .enumerate()
        .map(|(index, user)| {
            device_config(
                node_for(nodes, index),
                &user.client.token().unwrap_or_default(),
            )
        })
        .collect();
    tracing::info!("connecting {} devices", users.len());
    let connections = connect_all(configs, args.connect_concurrency).await?;

    let context = Arc::new(RunContext {
        clock: Clock::new(),
        recipients: plan
            .iter()
            .map(PlannedConversation::recipients_per_message)
            .collect(),
        recorder: Mutex::new(Recorder::default()),
    });
    let mut handles = Vec::with_capacity(connections.len());
    let mut event_tasks = Vec::with_capacity(connections.len());
    for connection in connections {
        let (handle, events) = connection.into_parts();
        let own_device_id = handle.device_id().clone();
        event_tasks.push(tokio::spawn(record_events(
            events,
            own_device_id,
            Arc::clone(&context),
        )));
        handles.push(handle);
    }

    let rss_sampler = RssSampler::start(args.server_pid);
    let started_at = Instant::now();
    let measured_from = started_at + args.warmup;
    let sending_until = measured_from + args.duration;
    let measured_sent = schedule_sends(
        &handles,
        &plan,
        &conversation_ids,
        &context.clock,
        args,
        started_at,
        measured_from,
        sending_until,
        &mut random,
    )
    .await;
    let measured_secs = Instant::now()
        .saturating_duration_since(measured_from)
        .as_secs_f64()
        .min(args.duration.as_secs_f64());
    context.recorder.lock().sent = measured_sent;

    let drain_deadline = Instant::now() + args.drain;
    while Instant::now() < drain_deadline {
        {
            let recorder = context.recorder.lock();
            if recorder.acked >= recorder.sent && recorder.delivered >= recorder.expected_deliveries
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give late duplicates a moment to show up before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let report = Report {
        mode: if args.group_size.is_some() {
            "traffic (fan-out)".into()
        } else {
            "traffic".into()
        },
        users: users.len(),
        conversations: plan.len(),
        target_rate: args.rate,
        message_size: args.message_size,
        server_rss: rss_sampler.finish(),
        loadgen_rss_kib: own_rss_kib(),
        ..Report::default()
    }
    .with_recorder(&context.recorder.lock(), measured_secs);

    drop(handles);
    for event_task in event_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), event_task).await;
    }
    Ok(report)
}

/// Sends at `args.rate` until `sending_until`; returns how many measured messages went out.
#[allow(clippy::too_many_arguments)]
async fn schedule_sends(
    handles: &[ConnectionHandle],
    plan: &[PlannedConversation],
    conversation_ids: &[ConversationId],
    clock: &Clock,
    args: &BenchArgs,
    started_at: Instant,
    measured_from: Instant,
    sending_until: Instant,
    random: &mut StdRng,
) -> u64 {
    let slots = send_slots(plan);
    let padding = "x".repeat(args.message_size);
    let tick_period = Duration::from_secs_f64((1.0 / args.rate).clamp(0.001, 0.010));
    let mut ticker = tokio::time::interval(tick_period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut issued: u64 = 0;
    let mut measured_sent: u64 = 0;
    loop {
        ticker.tick().await;
        let now = Instant::now();
        if now >= sending_until {
            break;
        }
        let phase = if now < measured_from {
            Phase::Warmup
        } else {
            Phase::Measured
        };
        let due_total = messages_due(args.rate, now.duration_since(started_at));
        while issued < due_total {
            let (sender_index, conversation_index) = slots[random.random_range(0..slots.len())];
            let tag = Tag {
                phase,
                conversation_index,
                sender_index,
                counter: issued,
                sent_at_micros: clock.now_micros(),
            };
            let client_msg_id = tag.encode();
            let content = tag.content(&client_msg_id, args.message_size, &padding);
            let message = OutgoingMessage {
                client_msg_id: Some(client_msg_id),
                ..OutgoingMessage::text(
                    conversation_ids[conversation_index as usize].clone(),
                    content,
                )
            };
            issued += 1;
            if handles[sender_index as usize].enqueue(message).is_ok() && phase == Phase::Measured {
                measured_sent += 1;
            }
        }
    }
    measured_sent
}

/// How many messages should have been sent `elapsed` into a run at `rate` per second.
pub(crate) fn messages_due(rate: f64, elapsed: Duration) -> u64 {
    (rate * elapsed.as_secs_f64()).floor() as u64
}

/// One device's event loop: acks, deliveries and refusals into the recorder.
async fn record_events(mut events: EventStream, own_device_id: DeviceId, context: Arc<RunContext>) {
    // Independent of the SDK's dedup: a second delivery of (conversation, seq) to this
    // device is a duplicate, whatever the SDK believes.
    let mut seen = CursorTracker::new();
    let mut batch = Vec::with_capacity(64);
    loop {
        if events.next_events(&mut batch, 64).await == 0 {
            return;
        }
        let now_micros = context.clock.now_micros();
        let mut recorder = context.recorder.lock();
        for event in batch.drain(..) {
            match event {
                Event::MsgAck(ack) => {
                    if let Some(tag) = Tag::parse(&ack.client_msg_id) {
                        if tag.phase == Phase::Measured {
                            let recipients = context
                                .recipients
                                .get(tag.conversation_index as usize)
                                .copied()
                                .unwrap_or(0);
                            recorder.record_ack(
                                now_micros.saturating_sub(tag.sent_at_micros),
                                recipients,
                            );
                        }
                    }
                }
                Event::NewMessage(message) => {
                    if message.sender_device_id == own_device_id {
                        continue;
                    }
                    let Some(tag) = Tag::parse(&message.content) else {
                        continue;
                    };
                    if seen.observe(&message.conversation_id, message.seq) == Observation::Duplicate
                    {
                        recorder.duplicated += 1;
                        continue;
                    }
                    if tag.phase == Phase::Measured {
                        recorder.record_delivery(now_micros.saturating_sub(tag.sent_at_micros));
                    }
                }
                Event::Frame(ServerFrame::Error {
                    code,
                    client_msg_id,
                    message,
                    ..
                }) => {
                    if code == ErrorCode::RateLimited {
                        recorder.rate_limited += 1;
                    } else if client_msg_id.is_some() {
                        recorder.send_errors += 1;
                        tracing::warn!(?code, %message, "send refused");
                    } else {
                        recorder.other_errors += 1;
                        tracing::warn!(?code, %message, "error frame");
                    }
                }
                Event::Disconnected { reason } => {
                    recorder.disconnects += 1;
                    tracing::warn!(%reason, "device disconnected");
                }
                Event::Closed { .. } => return,
                _ => {}
            }
        }
    }
}

/// Samples a process's RSS every 250 ms to find its peak.
pub(crate) struct RssSampler {
    pid: Option<u32>,
    before_kib: u64,
    peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    pub(crate) fn start(pid: Option<u32>) -> Self {
        let before_kib = pid.and_then(rss_kib).unwrap_or(0);
        let peak_kib = Arc::new(AtomicU64::new(before_kib));
        let stop = Arc::new(AtomicBool::new(false));
        if let Some(pid) = pid {
            let peak_kib = Arc::clone(&peak_kib);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(current_kib) = rss_kib(pid) {
                        peak_kib.fetch_max(current_kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            });
        }
        Self {
            pid,
            before_kib,
            peak_kib,
            stop,
        }
    }

    /// Stops sampling; `None` without a pid.
    pub(crate) fn finish(self) -> Option<RssReport> {
        self.stop.store(true, Ordering::Relaxed);
        let pid = self.pid?;
        let after_kib = rss_kib(pid).unwrap_or(0);
        Some(RssReport {
            before_kib: self.before_kib,
            after_kib,
            peak_kib: self.peak_kib.load(Ordering::Relaxed).max(after_kib),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schedule is cumulative, so a late tick catches up instead of losing sends.
    #[test]
    fn messages_due_is_cumulative() {
        assert_eq!(messages_due(200.0, Duration::from_millis(0)), 0);
        assert_eq!(messages_due(200.0, Duration::from_millis(4)), 0);
        assert_eq!(messages_due(200.0, Duration::from_millis(5)), 1);
        assert_eq!(messages_due(200.0, Duration::from_secs(30)), 6000);
        assert_eq!(messages_due(0.5, Duration::from_secs(3)), 1);
    }
}
