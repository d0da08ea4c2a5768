//! Fault tests: a cluster under load loses NATS, Redis, PostgreSQL or a node, and the
//! guarantees hold (`docs/protocol.md`, "Guarantees"; ARCHITECTURE.md, "Cluster mode:
//! where state lives, what a failure costs").
//!
//! The machine's shared services are never stopped: each test breaks a private NATS or
//! Redis (`parley_testkit::services`), a proxy in front of PostgreSQL, or a node process
//! of its own. Helpers here keep every connection's events ([`Recorder`]), send under load
//! and remember what became of each send ([`Sender`], [`Sent`]), and check a history
//! against those outcomes ([`check_history`]). Every wait is bounded.

mod nats;
mod node_loss;
mod postgres;
mod redis;

use crate::harness::*;
use futures::stream::{FuturesUnordered, StreamExt};
use parley_proto::{ConversationId, ErrorCode, Message, PresenceStatus, UserId};
use parley_sdk::{Client, Connection, ConnectionHandle, Event, SdkError, ServerFrame};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::error::Elapsed;
use tokio::time::Instant;

/// One send every this long per sender: steady load, far under any limit the tests set.
const SEND_EVERY: Duration = Duration::from_millis(20);
/// The longest a send may wait for its answer: longer is a hang, which fails the test.
/// Above every backend timeout (a Redis call gives up within ~7 s, a pool acquire 10 s).
const SEND_BOUND: Duration = Duration::from_secs(12);

/// Limits out of the way of steady load: only the faults should refuse sends.
pub fn generous_limits(config: &mut parley_server::Config) {
    config.limits.user_messages_per_minute = 1_000_000;
    config.limits.frames_per_second = 100_000;
}

/// Where a test is in its fault, as each send saw it when it was issued.
#[derive(Clone)]
pub struct Phase(Arc<AtomicU8>);

impl Default for Phase {
    fn default() -> Self {
        Self(Arc::new(AtomicU8::new(BEFORE)))
    }
}

pub const BEFORE: u8 = 0;
/// The fault is in effect (set once it is).
pub const DURING: u8 = 1;
/// Just before the repair: sends issued now may be answered either way.
pub const SETTLING: u8 = 2;
pub const AFTER: u8 = 3;

impl Phase {
    pub fn set(&self, phase: u8) {
        self.0.store(phase, Ordering::SeqCst);
    }

    fn get(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }
}

/// One send and when it was issued.
#[derive(Clone, Debug)]
pub struct Issued {
    pub client_msg_id: String,
    pub content: String,
    pub phase: u8,
}

/// What became of one [`Sender`]'s sends.
#[derive(Debug, Default)]
pub struct Sent {
    /// `msg_ack`ed, with the acked `seq` and when the ack came.
    pub acked: Vec<(Issued, i64, Instant)>,
    /// Refused by an `error` frame, with its code.
    pub refused: Vec<(Issued, ErrorCode)>,
    /// The connection ended before an answer: stored or not, the client cannot know.
    pub unknown: Vec<Issued>,
    /// Any other failure of the send.
    pub failed: Vec<(Issued, String)>,
    /// No answer within [`SEND_BOUND`].
    pub hung: Vec<Issued>,
    /// The longest wait for an answer.
    pub slowest: Duration,
    /// The longest wait for an answer, by the phase the send was issued in.
    pub slowest_by_phase: [Duration; 4],
}

impl Sent {
    pub fn acked_in(&self, phase: u8) -> usize {
        self.acked
            .iter()
            .filter(|(send, _, _)| send.phase == phase)
            .count()
    }

    /// Fails unless every send was answered, and only by an ack or `allowed` refusals.
    pub fn assert_answered(&self, allowed: &[ErrorCode]) {
        assert!(
            self.hung.is_empty(),
            "sends never answered: {:?}",
            self.hung
        );
        assert!(self.failed.is_empty(), "sends failed: {:?}", self.failed);
        let odd: Vec<_> = (self.refused.iter())
            .filter(|(_, code)| !allowed.contains(code))
            .collect();
        assert!(odd.is_empty(), "refused with unexpected codes: {odd:?}");
    }

    fn record(&mut self, send: Issued, answer: Result<Answer, Elapsed>, waited: Duration) {
        self.slowest = self.slowest.max(waited);
        let by_phase = &mut self.slowest_by_phase[usize::from(send.phase)];
        *by_phase = (*by_phase).max(waited);
        match answer {
            Ok(Ok(ack)) => self.acked.push((send, ack.seq, Instant::now())),
            Ok(Err(SdkError::Rejected { code, .. })) => self.refused.push((send, code)),
            Ok(Err(SdkError::ConnectionClosed)) => self.unknown.push(send),
            Ok(Err(error)) => self.failed.push((send, error.to_string())),
            Err(_) => self.hung.push(send),
        }
    }
}

/// What a send's handle answers.
type Answer = Result<parley_sdk::MsgAck, SdkError>;

/// Sends `"<label> <n>"` into one conversation every [`SEND_EVERY`] until stopped or the
/// connection ends, each send's answer awaited on the side (pipelined, as a client does).
pub struct Sender {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Sent>,
}

impl Sender {
    pub fn start(
        handle: ConnectionHandle,
        conversation_id: ConversationId,
        label: &str,
        phase: Phase,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (stopping, label) = (stop.clone(), label.to_owned());
        let task = tokio::spawn(async move {
            let mut sent = Sent::default();
            let mut in_flight = FuturesUnordered::new();
            let mut ticker = tokio::time::interval(SEND_EVERY);
            let (mut sending, mut counter) = (true, 0);
            loop {
                tokio::select! {
                    _ = ticker.tick(), if sending => {
                        if stopping.load(Ordering::SeqCst) {
                            sending = false;
                            continue;
                        }
                        counter += 1;
                        let content = format!("{label} {counter}");
                        let phase = phase.get();
                        match handle.send(conversation_id.clone(), content.clone()) {
                            Ok(send) => {
                                let issued = Issued {
                                    client_msg_id: send.client_msg_id().to_owned(),
                                    content,
                                    phase,
                                };
                                let at = Instant::now();
                                in_flight.push(async move {
                                    let answer = tokio::time::timeout(SEND_BOUND, send.ack()).await;
                                    (issued, answer, at.elapsed())
                                });
                            }
                            Err(_) => sending = false, // the connection ended
                        }
                    }
                    Some((send, answer, waited)) = in_flight.next(), if !in_flight.is_empty() => {
                        sent.record(send, answer, waited);
                    }
                    else => return sent,
                }
            }
        });
        Self { stop, task }
    }

    /// Stops sending, waits for every answer (each bounded) and returns the outcomes.
    pub async fn finish(self) -> Sent {
        self.stop.store(true, Ordering::SeqCst);
        within("the sender's last answers", self.task)
            .await
            .expect("the sender task")
    }
}

/// What one connection received, kept as it arrives so no wait skips anything.
#[derive(Default)]
pub struct Seen {
    /// `seq`s of `new_message`s (live, resent by a position check, or synced).
    pub messages: HashMap<ConversationId, BTreeMap<i64, Instant>>,
    pub presence: Vec<(Instant, UserId, PresenceStatus)>,
    pub sync_dones: usize,
    /// This connection's own sends acked.
    pub acks: usize,
}

impl Seen {
    pub fn seqs(&self, conversation_id: &ConversationId) -> Vec<i64> {
        (self.messages.get(conversation_id))
            .map_or_else(Vec::new, |seqs| seqs.keys().copied().collect())
    }

    /// When `user_id` was first seen with `status` at or after `since`.
    pub fn presence_since(
        &self,
        user_id: &UserId,
        status: PresenceStatus,
        since: Instant,
    ) -> Option<Instant> {
        (self.presence.iter())
            .find(|(at, id, seen)| *at >= since && id == user_id && *seen == status)
            .map(|(at, _, _)| *at)
    }
}

/// Reads a connection's events on a task of its own into [`Seen`].
pub struct Recorder {
    pub handle: ConnectionHandle,
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Recorder {
    pub fn start(mut connection: Connection) -> Self {
        let handle = connection.handle();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let recording = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = connection.next_event().await {
                let mut seen = recording.lock().unwrap();
                let now = Instant::now();
                match event {
                    Event::NewMessage(message) => {
                        (seen.messages.entry(message.conversation_id))
                            .or_default()
                            .insert(message.seq, now);
                    }
                    Event::Frame(ServerFrame::Presence {
                        user_id, status, ..
                    }) => seen.presence.push((now, user_id, status)),
                    Event::Frame(ServerFrame::SyncDone { .. }) => seen.sync_dones += 1,
                    Event::MsgAck(_) => seen.acks += 1,
                    _ => {}
                }
            }
        });
        Self { handle, seen, task }
    }

    pub fn seen<T>(&self, look: impl FnOnce(&Seen) -> T) -> T {
        look(&self.seen.lock().unwrap())
    }

    /// Polls what was seen until `probe` answers; fails after `WAIT`.
    pub async fn until<T>(&self, what: &str, mut probe: impl FnMut(&Seen) -> Option<T>) -> T {
        eventually(what, Duration::from_millis(20), || {
            std::future::ready(self.seen(&mut probe))
        })
        .await
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every message of a conversation, in `seq` order, page by page.
pub async fn full_history(client: &Client, conversation_id: &ConversationId) -> Vec<Message> {
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let page = within(
            "a history page",
            client.history(conversation_id, None, Some(after), Some(100)),
        )
        .await
        .expect("history");
        after = page.messages.last().map_or(after, |message| message.seq);
        stored.extend(page.messages);
        if !page.has_more {
            return stored;
        }
    }
}

/// Checks one conversation's history against the sends into it: `seq`s run from 1 with no
/// gap, nothing is stored twice, every acked send is stored once at its acked `seq`.
/// Returns how many times each content is stored, for the checks of refused sends.
pub fn check_history(history: &[Message], sent: &[&Sent]) -> HashMap<String, usize> {
    let seqs: Vec<i64> = history.iter().map(|message| message.seq).collect();
    let expected: Vec<i64> = (1..=history.len() as i64).collect();
    assert_eq!(seqs, expected, "seqs run from 1 with no gap");
    let mut by_client_id: HashMap<&str, i64> = HashMap::new();
    let mut contents: HashMap<String, usize> = HashMap::new();
    for message in history {
        let again = by_client_id.insert(message.client_msg_id.as_str(), message.seq);
        assert!(again.is_none(), "stored twice: {message:?}");
        *contents.entry(message.content.clone()).or_default() += 1;
    }
    for (send, seq, _) in sent.iter().flat_map(|sent| &sent.acked) {
        assert_eq!(
            by_client_id.get(send.client_msg_id.as_str()),
            Some(seq),
            "acked {send:?} is lost or moved"
        );
        assert_eq!(contents.get(&send.content), Some(&1), "{send:?} once");
    }
    contents
}

/// `GET /readyz`: the status and the body (each request bounded).
pub async fn readyz(url: &str) -> (u16, String) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let response = (http.get(format!("{url}/readyz")).send().await)
        .unwrap_or_else(|error| panic!("GET {url}/readyz: {error}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Waits until `/readyz` at `url` is 503 with a body naming `why`; returns the body.
pub async fn until_unready(url: &str, why: &str) -> String {
    eventually(
        &format!("{url}/readyz 503 with {why:?}"),
        Duration::from_millis(50),
        || async {
            let (status, body) = readyz(url).await;
            (status == 503 && body.contains(why)).then_some(body)
        },
    )
    .await
}

/// Waits until `/readyz` at `url` is 200.
pub async fn until_ready(url: &str) {
    eventually(
        &format!("{url}/readyz 200"),
        Duration::from_millis(50),
        || async { (readyz(url).await.0 == 200).then_some(()) },
    )
    .await;
}
