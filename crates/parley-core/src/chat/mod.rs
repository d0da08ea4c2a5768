//! [`Chat`]: every operation a user can do, with its checks, over the ports.
//!
//! The gateway authenticates a token into a [`Session`] and calls one method per REST call
//! or WebSocket frame. Each method checks membership and roles here, not in the gateway,
//! applies limits, and publishes what other devices must see on the `Bus`. It owns no
//! socket and no SQL; durable state lives in the `Store`, which alone assigns `seq`.
//!
//! One idea per file, each an `impl Chat` block: `accounts` (register, login, tokens,
//! profiles), `conversations` (the members cache, creation, the list), `changes` (group
//! changes decided at commit), `messages` (send, fan-out, history, sync), `receipts`,
//! `presence` (and typing); `validation` and `views` hold the free functions they share.
//! This file has the service's state, its construction and shutdown, and the bus plumbing.

use crate::auth;
use crate::bus::{Bus, BusEvent, BusReceiver, ConnectionId, Interest, NodeId};
use crate::commit::{CommitRequest, PendingChange, PendingSend};
use crate::config::CoreConfig;
use crate::error::{Error, Result};
use crate::ids;
use crate::membership::{ConversationMembers, MembershipCache};
use crate::presence::PresenceRegistry;
use crate::ratelimit::{Admission, Bucket, Quota, RateLimiter};
use crate::receipts::ReceiptTracker;
use crate::rules::{self, ChangeIntent};
use crate::store::{
    Appended, ConversationPosition, ConversationRecord, ConversationSummary, ConversationUpdate,
    ListCursor, ListFilter, MessageReceipts, NewConversation, NewDevice, NewMessage, PageFrom,
    ProfileUpdate, ReceiptChange, SeqRange, Store, StoreError, UserRecord,
};
use parley_proto::frames::Cursors;
use parley_proto::{
    ContentType, Conversation, ConversationId, ConversationType, MediaId, Member, Message,
    MutedUntil, PresenceStatus, Profile, PublicProfile, ReactionUsers, ReceiptStatus, Role,
    ServerFrame, SystemEvent, Timestamp, UserId,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

mod account_data;
mod accounts;
mod avatars;
mod blocks;
mod changes;
mod conversations;
mod edits;
mod expiry;
mod limits;
mod media;
mod media_parts;
mod messages;
mod node;
mod presence;
mod push;
mod receipts;
mod search;
mod settings;
mod types;
mod validation;
mod views;

pub use account_data::{EXPORT_FORMAT, USERNAME_HOLD};
use edits::canonical_reaction;
use edits::{check_change_fields, checked_mentions};
use limits::Quotas;
pub use media::{original_key, thumbnail_key, NewUpload, Upload};
pub use media_parts::UploadPart;
pub use messages::SyncPlan;
use node::NodeState;
pub use node::Ports;
pub use push::PushTarget;
use receipts::flush_receipts;
pub use search::{SearchHit, SearchPage};
pub use settings::MAX_PINNED;
pub use types::*;
use validation::*;
use views::*;

/// An authenticated device: the store's session record, as every operation takes it.
pub type Session = crate::store::SessionRecord;

/// A send as a client asks for it.
#[derive(Clone, Debug)]
pub struct SendRequest {
    pub client_msg_id: String,
    pub conversation_id: ConversationId,
    pub content: String,
    pub content_type: Option<ContentType>,
    pub reply_to_seq: Option<i64>,
    /// For `reaction`, `edit` and `delete`: the message changed.
    pub target_seq: Option<i64>,
    /// For ordinary messages: members mentioned.
    pub mentions: Vec<UserId>,
    /// Completed media (at most 10); `content` is their caption.
    pub attachments: Vec<MediaId>,
    /// Set by [`Chat::forward`] only: the copy is marked as forwarded (and may carry
    /// media the sender can read rather than only their own).
    pub forwarded: bool,
    /// The WebSocket connection it came on (`None` for REST): it is answered with
    /// `msg_ack` and skipped by the fan-out.
    pub origin_connection: Option<ConnectionId>,
}

/// System messages' `client_msg_id`s start with this; clients may not use it, so a
/// user's send can never be taken for a duplicate of a system message.
pub const SYSTEM_CLIENT_ID_PREFIX: &str = "system:";
/// Times a change is decided again when another node changed the members meanwhile.
const MAX_CHANGE_ATTEMPTS: u32 = 8;
/// Lists with members inline when they are at most this big.
const INLINE_MEMBERS_MAX: usize = 32;
/// Most users one `presence_subscribe` or search may name.
const MAX_PRESENCE_USERS: usize = 256;
const MAX_DISPLAY_NAME: usize = 64;
const MAX_STATUS_MESSAGE: usize = 256;
const MAX_GROUP_NAME: usize = 128;
const MAX_DESCRIPTION: usize = 2048;
const MAX_AVATAR_URL: usize = 2048;

/// The chat service. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Chat {
    inner: Arc<Inner>,
}

struct Inner {
    config: CoreConfig,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    presence: Arc<dyn PresenceRegistry>,
    limiter: Arc<dyn RateLimiter>,
    media: Arc<dyn crate::MediaStore>,
    /// Uploads being completed (read, hashed, decoded) at once: one per two cores (each
    /// may hold its picture's bytes and up to 512 MiB of decoder memory, and a decode
    /// keeps a core busy: messages keep the others), at most two.
    picture_processing: Arc<tokio::sync::Semaphore>,
    /// Uploads this node is completing now: one completion of each at a time.
    completing: parking_lot::Mutex<HashSet<MediaId>>,
    quotas: Quotas,
    /// This node's connections and what it asked the bus for.
    node: NodeState,
    members: MembershipCache,
    receipts: ReceiptTracker,
    commit_queue: mpsc::Sender<CommitRequest>,
    shutting_down: AtomicBool,
    /// One receipt flush at a time (ticker, `receipts()`, shutdown): concurrent flushes
    /// could announce pointers out of order.
    receipt_flush: tokio::sync::Mutex<()>,
    /// Argon2 runs with tens of MiB each: at most one per core at a time, so a burst of
    /// logins queues instead of multiplying memory and starving the event loop.
    password_hashing: Arc<tokio::sync::Semaphore>,
    /// Hashes running now and the most that ever ran at once (`/metrics`).
    hashing_in_flight: std::sync::atomic::AtomicUsize,
    hashing_peak: std::sync::atomic::AtomicUsize,
}

/// Announcements waiting for the bus before the committer waits too.
const FAN_OUT_QUEUE: usize = 16 * 1024;

impl Chat {
    /// Builds the service and starts its background tasks (group commit, fan-out, receipt
    /// flush, presence lease) on the current tokio runtime.
    pub fn new(config: CoreConfig, ports: Ports) -> Self {
        let (commit_queue, commit_receiver) = mpsc::channel(64 * 1024);
        let (announcements, announcement_receiver) = mpsc::channel(FAN_OUT_QUEUE);
        let inner = Arc::new(Inner {
            quotas: Quotas::from_config(&config),
            node: NodeState::new(ports.bus.node_id().clone()),
            config,
            store: ports.store,
            bus: ports.bus,
            presence: ports.presence,
            limiter: ports.limiter,
            media: ports.media,
            picture_processing: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map_or(1, |cores| (cores.get() / 2).clamp(1, 2)),
            )),
            completing: parking_lot::Mutex::new(HashSet::new()),
            members: MembershipCache::default(),
            receipts: ReceiptTracker::default(),
            commit_queue,
            shutting_down: AtomicBool::new(false),
            receipt_flush: tokio::sync::Mutex::new(()),
            password_hashing: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |cores| cores.get()),
            )),
            hashing_in_flight: Default::default(),
            hashing_peak: Default::default(),
        });
        let chat = Chat { inner };
        tokio::spawn(crate::commit::run_committer(
            chat.clone(),
            commit_receiver,
            announcements,
        ));
        tokio::spawn(crate::commit::run_fan_out(
            chat.clone(),
            announcement_receiver,
        ));
        let config = &chat.inner.config;
        tokio::spawn(run_periodically(
            Arc::downgrade(&chat.inner),
            config.receipt_flush_interval,
            |inner| async move { flush_receipts(&inner).await },
        ));
        tokio::spawn(run_periodically(
            Arc::downgrade(&chat.inner),
            config.expiry_purge_interval,
            |inner| async move { expiry::purge_expired(&inner).await },
        ));
        tokio::spawn(run_periodically(
            Arc::downgrade(&chat.inner),
            config.media_collect_interval,
            |inner| async move { media::collect(&inner).await },
        ));
        tokio::spawn(node::run_lease_keeper(Arc::downgrade(&chat.inner)));
        chat
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub(crate) fn bus(&self) -> &Arc<dyn Bus> {
        &self.inner.bus
    }

    /// This node's name in the cluster.
    pub fn node_id(&self) -> &NodeId {
        self.inner.bus.node_id()
    }

    /// Most sends one group commit takes.
    pub(crate) fn max_commit_batch(&self) -> usize {
        self.inner.config.max_commit_batch
    }

    /// This node's stream of bus events, for the gateway to hand to its sockets (once per
    /// node). Pass each event to [`Chat::on_bus_event`] first.
    pub async fn events(&self) -> Result<BusReceiver> {
        Ok(self.inner.bus.subscribe().await?)
    }

    /// Whether this node can serve: its store, bus, presence registry and rate limiter
    /// all answer (`/readyz`). The first that does not is the error.
    pub async fn check_ready(&self) -> Result<()> {
        if self.inner.shutting_down.load(Ordering::Relaxed) {
            return Err(Error::ShuttingDown);
        }
        self.inner.store.ping().await?;
        self.inner.bus.ping().await?;
        self.inner.presence.ping().await?;
        self.inner.limiter.ping().await?;
        Ok(())
    }

    /// Stops taking sends, commits and announces what is queued and writes pending
    /// receipts.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let (done, flushed) = oneshot::channel();
        if self
            .inner
            .commit_queue
            .send(CommitRequest::Flush(done))
            .await
            .is_ok()
        {
            let _ = flushed.await;
        }
        flush_receipts(&self.inner).await;
    }

    /// Handles a bus event that concerns the core (cache invalidation).
    pub fn on_bus_event(&self, event: &BusEvent) {
        if let BusEvent::MembershipChanged { conversation_id } = event {
            self.inner.members.invalidate(conversation_id);
        }
    }

    async fn deliver(&self, user_ids: Arc<[UserId]>, frame: ServerFrame) {
        // Not fatal: devices catch up with `sync`.
        let _ = self
            .publish_checked(vec![deliver_event(user_ids, frame)])
            .await;
    }

    async fn publish(&self, event: BusEvent) {
        // Not fatal: devices catch up with `sync`.
        let _ = self.publish_checked(vec![event]).await;
    }

    async fn publish_checked(&self, events: Vec<BusEvent>) -> Result<()> {
        self.inner.bus.publish(events).await.map_err(|error| {
            tracing::warn!(%error, "bus publish failed");
            Error::Bus(error)
        })
    }
}

/// Runs `job` every `interval` for as long as the service lives: the task holds the
/// service only while a run is under way, so dropping the last `Chat` ends it.
async fn run_periodically<F, Fut>(
    inner: std::sync::Weak<Inner>,
    interval: std::time::Duration,
    job: F,
) where
    F: Fn(Arc<Inner>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        job(inner).await;
    }
}

/// `frame` for every socket of `user_ids`.
fn deliver_event(user_ids: Arc<[UserId]>, frame: ServerFrame) -> BusEvent {
    BusEvent::Deliver {
        user_ids,
        except_connection: None,
        frame: Arc::new(frame),
        created_at_ms: None,
    }
}

fn not_found_is_not_member(error: StoreError) -> Error {
    match error {
        StoreError::NotFound => Error::NotMember,
        other => other.into(),
    }
}
