//! [`Chat`]: every operation a user can do, with its checks, over the ports.
//!
//! The gateway authenticates a token into a [`Session`] and calls one method per REST call
//! or WebSocket frame. Each method checks membership and roles here, not in the gateway,
//! applies limits, and publishes what other devices must see on the `Bus`. It owns no
//! socket and no SQL; durable state lives in the `Store`, which alone assigns `seq`.

use crate::auth;
use crate::bus::{Bus, BusEvent};
use crate::commit::{next_batch, Barrier, CommitRequest, PendingChange, PendingSend};
use crate::config::CoreConfig;
use crate::error::{Error, Result};
use crate::ids;
use crate::membership::{ConversationMembers, MembershipCache};
use crate::presence::PresenceRegistry;
use crate::ratelimit::RateLimiter;
use crate::receipts::ReceiptTracker;
use crate::rules::{self, ChangeIntent};
use crate::store::{
    AppendRefusal, Appended, ConversationRecord, ConversationSummary, ConversationUpdate,
    ListCursor, NewConversation, NewDevice, NewMessage, PageFrom, ProfileUpdate, ReceiptChange,
    SeqRange, Store, StoreError, UserRecord,
};
use parley_proto::frames::Cursors;
use parley_proto::rest::{
    AuthResponse, ConversationList, CreateConversationRequest, MessagePage, ReceiptsResponse,
    UnreadCount, UnreadSummary, UpdateConversationRequest, UpdateProfileRequest,
};
use parley_proto::{
    Conversation, ConversationId, ConversationType, Member, Message, PresenceStatus, Profile,
    PublicProfile, ReceiptStatus, Role, ServerFrame, SystemEvent, Timestamp, UserId,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// An authenticated device: the store's session record, as every operation takes it.
pub type Session = crate::store::SessionRecord;

/// A send as a client asks for it.
#[derive(Clone, Debug)]
pub struct SendRequest {
    pub client_msg_id: String,
    pub conversation_id: ConversationId,
    pub content: String,
    pub content_type: Option<String>,
    pub reply_to_seq: Option<i64>,
    /// The WebSocket connection it came on (`None` for REST): it is answered with
    /// `msg_ack` and skipped by the fan-out.
    pub origin_connection: Option<u64>,
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
    members: MembershipCache,
    receipts: ReceiptTracker,
    user_limiter: RateLimiter<UserId>,
    group_limiter: RateLimiter<(UserId, ConversationId)>,
    /// Other writes (conversations, members, renames, roles, profile) per user.
    write_limiter: RateLimiter<UserId>,
    search_limiter: RateLimiter<UserId>,
    /// New direct chats and new groups of accounts younger than `new_account_period`.
    new_account_direct_limiter: RateLimiter<UserId>,
    new_account_group_limiter: RateLimiter<UserId>,
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

impl Chat {
    /// Builds the service and starts its background tasks (group commit, receipt flush)
    /// on the current tokio runtime.
    pub fn new(
        config: CoreConfig,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        presence: Arc<dyn PresenceRegistry>,
    ) -> Self {
        let (commit_queue, commit_receiver) = mpsc::channel(64 * 1024);
        let inner = Arc::new(Inner {
            user_limiter: RateLimiter::per_minute(config.user_messages_per_minute),
            group_limiter: RateLimiter::per_minute(config.group_messages_per_minute),
            write_limiter: RateLimiter::per_minute(config.writes_per_minute),
            search_limiter: RateLimiter::per_minute(config.searches_per_minute),
            new_account_direct_limiter: RateLimiter::per_period(
                config.new_account_direct_chats_per_hour,
                std::time::Duration::from_secs(3600),
            ),
            new_account_group_limiter: RateLimiter::per_period(
                config.new_account_groups_per_day,
                std::time::Duration::from_secs(24 * 3600),
            ),
            config,
            store,
            bus,
            presence,
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
        tokio::spawn(run_committer(inner.clone(), commit_receiver));
        tokio::spawn(run_receipt_flusher(Arc::downgrade(&inner)));
        Chat { inner }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.inner.bus
    }

    /// Stops taking sends, commits what is queued and writes pending receipts.
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

    // ---- accounts ---------------------------------------------------------------------

    /// `POST /auth/register`: creates the user and their first device.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        display_name: Option<String>,
        device_name: Option<String>,
    ) -> Result<AuthResponse> {
        auth::validate_username(username).map_err(Error::Invalid)?;
        auth::validate_password(password).map_err(Error::Invalid)?;
        let display_name = match display_name {
            Some(name) => checked_name("display_name", name, MAX_DISPLAY_NAME)?,
            None => username.to_owned(),
        };
        let device_name = optional_text("device_name", device_name, MAX_DISPLAY_NAME)?;
        match self.inner.store.fetch_user_by_username(username).await {
            Ok(_) => return Err(Error::UsernameTaken),
            Err(StoreError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
        let password_hash = self.hash_password(password).await?;
        let user = UserRecord {
            user_id: ids::new_user_id(),
            username: username.to_owned(),
            password_hash,
            display_name,
            status_message: None,
            avatar_url: None,
            last_seen_visible: true,
            last_seen_at: None,
            created_at: Timestamp::now(),
        };
        let user_id = user.user_id.clone();
        match self.inner.store.insert_user(user).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::UsernameTaken),
            Err(error) => return Err(error.into()),
        }
        self.new_device(user_id, device_name).await
    }

    /// `POST /auth/login`: checks the password and creates a device.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        device_name: Option<String>,
    ) -> Result<AuthResponse> {
        let device_name = optional_text("device_name", device_name, MAX_DISPLAY_NAME)?;
        let user = match self.inner.store.fetch_user_by_username(username).await {
            Ok(user) => Some(user),
            Err(StoreError::NotFound) => None,
            Err(error) => return Err(error.into()),
        };
        // Verify against a dummy hash for unknown users so timing does not reveal them.
        let stored_hash = user
            .as_ref()
            .map(|user| user.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_owned());
        let password = password.to_owned();
        // Verifying costs as much as hashing: it shares the same bound.
        let verified = self
            .bounded_hashing(move || auth::verify_password(&stored_hash, &password))
            .await?
            .unwrap_or(false);
        match user {
            Some(user) if verified => self.new_device(user.user_id, device_name).await,
            _ => Err(Error::InvalidCredentials),
        }
    }

    async fn hash_password(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        let (memory, iterations) = (
            self.inner.config.argon2_memory_kib,
            self.inner.config.argon2_iterations,
        );
        self.bounded_hashing(move || auth::hash_password(&password, memory, iterations))
            .await?
            .map_err(|error| Error::Invalid(error.to_string()))?
            .map_err(Error::Invalid)
    }

    /// Runs an Argon2 hash or verification on the blocking pool, at most one per core at
    /// a time over every caller (register, login): a burst queues here. The permit lives
    /// in the blocking job, so a caller that goes away (a client hanging up) does not free
    /// it while the hash still runs.
    async fn bounded_hashing<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<std::result::Result<T, tokio::task::JoinError>> {
        let permit = self
            .inner
            .password_hashing
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::ShuttingDown)?;
        let inner = self.inner.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let running = inner.hashing_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            let peak = inner
                .hashing_peak
                .fetch_max(running, Ordering::SeqCst)
                .max(running);
            metrics::gauge!("parley_password_hashing_peak").set(peak as f64);
            let result = work();
            inner.hashing_in_flight.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            result
        })
        .await;
        Ok(outcome)
    }

    async fn new_device(&self, user_id: UserId, name: Option<String>) -> Result<AuthResponse> {
        let token = auth::new_token();
        let device_id = ids::new_device_id();
        self.inner
            .store
            .insert_device(NewDevice {
                device_id: device_id.clone(),
                user_id: user_id.clone(),
                name,
                token_hash: auth::token_hash(&token),
                created_at: Timestamp::now(),
            })
            .await?;
        Ok(AuthResponse {
            user_id,
            device_id,
            token,
        })
    }

    /// The session of a bearer token; `Unauthorized` if unknown or revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Session> {
        if token.is_empty() || token.len() > 256 {
            return Err(Error::Unauthorized);
        }
        match self
            .inner
            .store
            .fetch_session(&auth::token_hash(token))
            .await
        {
            Ok(session) => Ok(session),
            Err(StoreError::NotFound) => Err(Error::Unauthorized),
            Err(error) => Err(error.into()),
        }
    }

    /// The same device's session again, if its token still stands (a logout may have
    /// revoked it since `session` was read).
    pub async fn authenticate_session(&self, session: &Session) -> Result<()> {
        match self
            .inner
            .store
            .fetch_session_by_device(&session.device_id)
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound) => Err(Error::Unauthorized),
            Err(error) => Err(error.into()),
        }
    }

    /// Whether storage answers (for readiness probes).
    pub async fn check_ready(&self) -> Result<()> {
        match self
            .inner
            .store
            .fetch_user(&UserId::from("u_readiness_probe"))
            .await
        {
            Ok(_) | Err(StoreError::NotFound) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// `POST /auth/logout`: revokes the token and closes the device's sockets everywhere.
    pub async fn logout(&self, session: &Session) -> Result<()> {
        self.inner.store.delete_device(&session.device_id).await?;
        self.publish(BusEvent::CloseDevice {
            device_id: session.device_id.clone(),
        })
        .await;
        Ok(())
    }

    // ---- profiles ---------------------------------------------------------------------

    /// `GET /users/me`
    pub async fn me(&self, session: &Session) -> Result<Profile> {
        let user = self.inner.store.fetch_user(&session.user_id).await?;
        Ok(own_profile(user))
    }

    /// `PATCH /users/me`
    pub async fn update_me(
        &self,
        session: &Session,
        request: UpdateProfileRequest,
    ) -> Result<Profile> {
        let update = ProfileUpdate {
            display_name: match request.display_name {
                Some(name) => Some(checked_name("display_name", name, MAX_DISPLAY_NAME)?),
                None => None,
            },
            status_message: match request.status_message {
                Some(text) => Some(optional_text(
                    "status_message",
                    Some(text),
                    MAX_STATUS_MESSAGE,
                )?),
                None => None,
            },
            avatar_url: match request.avatar_url {
                Some(url) => Some(optional_url(url)?),
                None => None,
            },
            last_seen_visible: request.last_seen_visible,
        };
        self.check_write_rate(session)?;
        let user = self
            .inner
            .store
            .update_user(&session.user_id, update)
            .await?;
        Ok(own_profile(user))
    }

    /// `GET /users/{id}`
    pub async fn user(&self, user_id: &UserId) -> Result<PublicProfile> {
        match self.inner.store.fetch_user(user_id).await {
            Ok(user) => Ok(public_profile(user)),
            Err(StoreError::NotFound) => Err(Error::NotFound("user")),
            Err(error) => Err(error.into()),
        }
    }

    /// `GET /users?query=`: by username or display name prefix.
    pub async fn search_users(
        &self,
        session: &Session,
        query: &str,
        limit: u32,
    ) -> Result<Vec<PublicProfile>> {
        let query = query.trim();
        if query.is_empty() || query.chars().count() > 64 {
            return Err(Error::Invalid("query must be 1-64 characters".into()));
        }
        self.inner
            .search_limiter
            .try_take(&session.user_id, Instant::now())
            .map_err(|retry_after| Error::RateLimited { retry_after })?;
        let users = self
            .inner
            .store
            .search_users(&query.to_lowercase(), limit.clamp(1, 50))
            .await?;
        Ok(users.into_iter().map(public_profile).collect())
    }

    // ---- conversations ----------------------------------------------------------------

    /// The members of a conversation, from the cache.
    async fn members(&self, conversation_id: &ConversationId) -> Result<Arc<ConversationMembers>> {
        if let Some(members) = self.inner.members.get(conversation_id) {
            return Ok(members);
        }
        let generation = self.inner.members.generation();
        let record = match self.inner.store.fetch_conversation(conversation_id).await {
            Ok(record) => record,
            Err(StoreError::NotFound) => return Err(Error::NotMember),
            Err(error) => return Err(error.into()),
        };
        let members = self.inner.store.fetch_members(conversation_id).await?;
        let members = Arc::new(ConversationMembers::new(
            record.kind,
            members,
            record.members_version,
        ));
        self.inner
            .members
            .insert_if_current(conversation_id.clone(), members.clone(), generation);
        Ok(members)
    }

    /// The members, if `user_id` is one of them; `NotMember` otherwise (also for
    /// conversations that do not exist, so ids cannot be probed).
    async fn members_for(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<Arc<ConversationMembers>> {
        let members = self.members(conversation_id).await?;
        if members.is_member(user_id) {
            Ok(members)
        } else {
            Err(Error::NotMember)
        }
    }

    /// `POST /conversations`: returns the conversation and whether it was created now.
    pub async fn create_conversation(
        &self,
        session: &Session,
        request: CreateConversationRequest,
    ) -> Result<(Conversation, bool)> {
        let now = Timestamp::now();
        let new_conversation = match request {
            CreateConversationRequest::Direct { participant_ids } => {
                let others: Vec<UserId> = participant_ids
                    .into_iter()
                    .filter(|user_id| user_id != &session.user_id)
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                let other = match others.as_slice() {
                    [other] => other.clone(),
                    [] => session.user_id.clone(),
                    _ => {
                        return Err(Error::Invalid(
                            "a direct conversation has exactly one other participant".into(),
                        ))
                    }
                };
                self.user(&other).await?;
                let mut members = vec![(session.user_id.clone(), Role::Member)];
                if other != session.user_id {
                    members.push((other.clone(), Role::Member));
                }
                NewConversation {
                    conversation_id: ids::new_conversation_id(),
                    kind: ConversationType::Direct,
                    name: None,
                    description: None,
                    direct_key: Some(ids::direct_key(&session.user_id, &other)),
                    members,
                    created_at: now,
                    system_message: None,
                }
            }
            CreateConversationRequest::Group {
                name,
                member_ids,
                description,
            } => {
                let name = checked_name("name", name, MAX_GROUP_NAME)?;
                let description = optional_text("description", description, MAX_DESCRIPTION)?;
                let mut seen = HashSet::new();
                seen.insert(session.user_id.clone());
                let mut members = vec![(session.user_id.clone(), Role::Owner)];
                for user_id in member_ids {
                    if seen.insert(user_id.clone()) {
                        members.push((user_id, Role::Member));
                    }
                }
                if members.len() > self.inner.config.max_group_members {
                    return Err(Error::GroupFull {
                        limit: self.inner.config.max_group_members,
                    });
                }
                for (user_id, _) in &members[1..] {
                    self.user(user_id).await?;
                }
                let conversation_id = ids::new_conversation_id();
                let system_message = self.system_message(
                    session,
                    &conversation_id,
                    SystemEvent::GroupCreated {
                        actor_id: session.user_id.clone(),
                        name: name.clone(),
                        user_ids: members.iter().map(|(user_id, _)| user_id.clone()).collect(),
                    },
                    now,
                );
                NewConversation {
                    conversation_id,
                    kind: ConversationType::Group,
                    name: Some(name),
                    description,
                    direct_key: None,
                    members,
                    created_at: now,
                    system_message: Some(system_message),
                }
            }
        };
        let system_message = new_conversation.system_message.clone();
        let new_account_limit = self
            .check_creation_rate(session, new_conversation.kind)
            .await?;
        let (record, created) = match self.inner.store.insert_conversation(new_conversation).await {
            Ok(inserted) => inserted,
            Err(error) => {
                if let Some(limiter) = new_account_limit {
                    limiter.refund(&session.user_id);
                }
                return Err(error.into());
            }
        };
        if let (false, Some(limiter)) = (created, new_account_limit) {
            // Opening an existing direct chat creates nothing.
            limiter.refund(&session.user_id);
        }
        let members = self
            .inner
            .store
            .fetch_members(&record.conversation_id)
            .await?;
        let record_members_version = record.members_version;
        let conversation = conversation_view(record, Some(members.clone()), None);
        if created {
            self.inner.members.insert(
                conversation.conversation_id.clone(),
                Arc::new(ConversationMembers::new(
                    conversation.kind,
                    members,
                    record_members_version,
                )),
            );
            // `seq` 1 goes out before anyone learns of the conversation, so no member's
            // first send can be announced ahead of it.
            if let Some(system_message) = system_message {
                self.fan_out(&system_message.with_seq(1), None).await;
            }
            let _ = self.announce_conversation(&conversation).await;
        }
        let summary = self
            .inner
            .store
            .fetch_conversation_summary(&conversation.conversation_id, &session.user_id)
            .await?;
        Ok((self.summary_view(summary).await?, created))
    }

    /// `GET /conversations/{id}`: with members and roles.
    pub async fn conversation(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
    ) -> Result<Conversation> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        let summary = self
            .inner
            .store
            .fetch_conversation_summary(conversation_id, &session.user_id)
            .await
            .map_err(not_found_is_not_member)?;
        let mut conversation = summary_to_conversation(summary);
        conversation.members = Some(members.members.clone());
        Ok(conversation)
    }

    /// `GET /conversations?cursor=&limit=`: newest activity first.
    pub async fn list_conversations(
        &self,
        session: &Session,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ConversationList> {
        let cursor = match cursor {
            Some(text) if !text.is_empty() => Some(parse_list_cursor(text)?),
            _ => None,
        };
        let limit = limit.clamp(1, 100);
        let summaries = self
            .inner
            .store
            .list_conversations(&session.user_id, cursor, limit + 1)
            .await?;
        let has_more = summaries.len() > limit as usize;
        let mut conversations = Vec::with_capacity(summaries.len().min(limit as usize));
        for summary in summaries.into_iter().take(limit as usize) {
            conversations.push(self.summary_view(summary).await?);
        }
        let next_cursor = if has_more {
            conversations.last().map(|last| {
                format!(
                    "{}~{}",
                    last.last_activity_at.millis(),
                    last.conversation_id
                )
            })
        } else {
            None
        };
        Ok(ConversationList {
            conversations,
            next_cursor,
        })
    }

    async fn summary_view(&self, summary: ConversationSummary) -> Result<Conversation> {
        let inline = summary.conversation.kind == ConversationType::Direct
            || summary.conversation.member_count as usize <= INLINE_MEMBERS_MAX;
        let members = if inline {
            Some(
                self.members(&summary.conversation.conversation_id)
                    .await?
                    .members
                    .clone(),
            )
        } else {
            None
        };
        let mut conversation = summary_to_conversation(summary);
        conversation.members = members;
        Ok(conversation)
    }

    /// `PATCH /conversations/{id}`: group admins rename or describe.
    pub async fn update_conversation(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        request: UpdateConversationRequest,
    ) -> Result<Conversation> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        let name = match request.name {
            Some(name) => Some(checked_name("name", name, MAX_GROUP_NAME)?),
            None => None,
        };
        let description = match request.description {
            Some(text) => Some(checked_text("description", text, 0, MAX_DESCRIPTION)?),
            None => None,
        };
        let intent = ChangeIntent::Rename { name, description };
        // Checked here for a quick answer, and again at commit against the members then.
        self.plan(&members, session, &intent)?;
        if matches!(
            &intent,
            ChangeIntent::Rename {
                name: None,
                description: None
            }
        ) {
            return Err(Error::Invalid(
                "nothing to change: give name or description".into(),
            ));
        }
        self.check_group_change_rate(session, conversation_id)?;
        self.change_conversation(session, conversation_id, intent)
            .await?;
        self.conversation(session, conversation_id).await
    }

    /// `POST /conversations/{id}/members`: group admins add users.
    pub async fn add_members(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        user_ids: Vec<UserId>,
    ) -> Result<Vec<Member>> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        let plan = self.plan(&members, session, &ChangeIntent::AddMembers(user_ids))?;
        let Some(SystemEvent::MembersAdded {
            user_ids: joining, ..
        }) = plan.events.first()
        else {
            return Ok(members.members.clone());
        };
        for user_id in joining {
            self.user(user_id).await?;
        }
        let intent = ChangeIntent::AddMembers(joining.clone());
        self.check_group_change_rate(session, conversation_id)?;
        self.change_conversation(session, conversation_id, intent)
            .await?;
        Ok(self.members(conversation_id).await?.members.clone())
    }

    /// What `intent` would do now, by the group rules (`rules::plan_change`).
    fn plan(
        &self,
        members: &ConversationMembers,
        session: &Session,
        intent: &ChangeIntent,
    ) -> Result<rules::ChangePlan> {
        rules::plan_change(
            members,
            &session.user_id,
            intent,
            self.inner.config.max_group_members,
        )
    }

    /// `PATCH /conversations/{id}/members/{user_id}`: the owner makes a member an admin or
    /// an admin a member, or hands ownership over (and becomes an admin).
    pub async fn set_role(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        user_id: &UserId,
        role: Role,
    ) -> Result<Vec<Member>> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        let intent = ChangeIntent::SetRole {
            user_id: user_id.clone(),
            role,
        };
        // Checked here for a quick answer, and again at commit against the members then.
        if self.plan(&members, session, &intent)?.is_noop() {
            return Ok(members.members.clone());
        }
        self.check_group_change_rate(session, conversation_id)?;
        self.change_conversation(session, conversation_id, intent)
            .await?;
        Ok(self.members(conversation_id).await?.members.clone())
    }

    /// `DELETE /conversations/{id}/members/{user_id}`: admins remove members; anyone
    /// leaves. Only the owner may remove an admin; nobody removes the owner. When the
    /// owner leaves, the longest-standing admin (else member) becomes the owner.
    pub async fn remove_member(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<()> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        let intent = ChangeIntent::Remove {
            user_id: user_id.clone(),
        };
        self.plan(&members, session, &intent)?;
        // Leaving is never rate limited: a user must always be able to get out.
        if user_id != &session.user_id {
            self.check_group_change_rate(session, conversation_id)?;
        }
        self.change_conversation(session, conversation_id, intent)
            .await
    }

    /// Queues a change behind every send before it; the committer authorizes it against
    /// the members at that moment, stores it and announces it (see `apply_change`).
    async fn change_conversation(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        intent: ChangeIntent,
    ) -> Result<()> {
        let (reply, outcome) = oneshot::channel();
        self.inner
            .commit_queue
            .send(CommitRequest::Change(PendingChange {
                conversation_id: conversation_id.clone(),
                actor: session.clone(),
                intent,
                reply,
            }))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        outcome.await.map_err(|_| Error::ShuttingDown)?
    }

    /// The members as the store has them now, past the cache: what a change is decided on.
    async fn fresh_members(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<(ConversationRecord, ConversationMembers)> {
        let record = self
            .inner
            .store
            .fetch_conversation(conversation_id)
            .await
            .map_err(not_found_is_not_member)?;
        let members = self.inner.store.fetch_members(conversation_id).await?;
        let members = ConversationMembers::new(record.kind, members, record.members_version);
        Ok((record, members))
    }

    /// Runs a change in the committer, between batches. Authorizes it against the members
    /// as they are now (a request checked against an older state is decided again) and
    /// stores it only if they have not moved since (`members_version`; another node may
    /// change them in cluster mode). Then, still in the committer so that everything is
    /// announced in `seq` order with the sends around it: every node's member cache is
    /// dropped, the system messages go to old and new members, removed members get
    /// `conversation_removed`, and the current members get `conversation_updated`. If the
    /// change is stored but an announcement fails, the caller gets `Error::Bus`.
    async fn apply_change(
        &self,
        actor: &Session,
        conversation_id: &ConversationId,
        intent: ChangeIntent,
    ) -> Result<()> {
        let mut attempts = 0;
        let (before, plan, appended) = loop {
            let (_, before) = self.fresh_members(conversation_id).await?;
            let plan = rules::plan_change(
                &before,
                &actor.user_id,
                &intent,
                self.inner.config.max_group_members,
            )?;
            if plan.is_noop() {
                return Ok(());
            }
            let now = Timestamp::now();
            let update = ConversationUpdate {
                expected_members_version: before.version,
                changes: plan.changes.clone(),
                system_messages: plan
                    .events
                    .iter()
                    .map(|event| self.system_message(actor, conversation_id, event.clone(), now))
                    .collect(),
            };
            match self
                .inner
                .store
                .update_conversation(conversation_id, update)
                .await
            {
                Ok(appended) => break (before, plan, appended),
                Err(StoreError::Conflict(_)) if attempts < MAX_CHANGE_ATTEMPTS => attempts += 1,
                // Other nodes kept changing the members: busy, not the caller's fault.
                Err(StoreError::Conflict(reason)) => {
                    return Err(Error::Store(StoreError::Unavailable(reason.into())))
                }
                Err(error) => return Err(error.into()),
            }
        };
        self.inner.members.invalidate(conversation_id);
        let mut announced = self
            .publish_checked(BusEvent::MembershipChanged {
                conversation_id: conversation_id.clone(),
            })
            .await;
        let (record, after) = self.fresh_members(conversation_id).await?;
        let mut recipients: Vec<UserId> = after.user_ids.to_vec();
        for user_id in before.user_ids.iter() {
            if !after.is_member(user_id) {
                recipients.push(user_id.clone());
            }
        }
        let recipients: Arc<[UserId]> = Arc::from(recipients);
        for appended in &appended {
            let frame = ServerFrame::NewMessage(appended.message.clone());
            announced = announced.and(self.deliver_checked(recipients.clone(), &frame).await);
        }
        if !plan.removed.is_empty() {
            let frame = ServerFrame::ConversationRemoved {
                conversation_id: conversation_id.clone(),
            };
            announced = announced.and(self.deliver_checked(plan.removed.into(), &frame).await);
        }
        let conversation = conversation_view(record, Some(after.members), None);
        announced.and(self.announce_conversation(&conversation).await)
    }

    async fn announce_conversation(&self, conversation: &Conversation) -> Result<()> {
        let user_ids: Arc<[UserId]> = conversation
            .members
            .iter()
            .flatten()
            .map(|member| member.user_id.clone())
            .collect();
        self.deliver_checked(
            user_ids,
            &ServerFrame::ConversationUpdated {
                conversation: conversation.clone(),
            },
        )
        .await
    }

    fn system_message(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        event: SystemEvent,
        created_at: Timestamp,
    ) -> NewMessage {
        let message_id = ids::new_message_id();
        NewMessage {
            client_msg_id: format!("{SYSTEM_CLIENT_ID_PREFIX}{message_id}"),
            content: system_text(&event),
            message_id,
            conversation_id: conversation_id.clone(),
            sender_id: session.user_id.clone(),
            sender_device_id: session.device_id.clone(),
            content_type: "system".to_owned(),
            reply_to_seq: None,
            created_at,
            system: Some(event),
        }
    }

    // ---- messages ---------------------------------------------------------------------

    /// Checks a send and queues it for the next group commit. The queue keeps the order of
    /// calls, so one connection's sends get `seq`s in the order it sent them. Await the
    /// returned receiver for the stored message (`msg_ack`).
    pub async fn submit_message(
        &self,
        session: &Session,
        request: SendRequest,
    ) -> Result<oneshot::Receiver<Result<Appended>>> {
        if self.inner.shutting_down.load(Ordering::Relaxed) {
            return Err(Error::ShuttingDown);
        }
        let client_msg_id = request.client_msg_id;
        let id_chars = client_msg_id.chars().count();
        if id_chars == 0 || id_chars > parley_proto::limits::MAX_CLIENT_MSG_ID {
            return Err(Error::Invalid(
                "client_msg_id must be 1-128 characters".into(),
            ));
        }
        if request.content.len() > self.inner.config.max_content_bytes {
            return Err(Error::ContentTooLarge {
                limit: self.inner.config.max_content_bytes,
            });
        }
        check_content(&request.content)?;
        if client_msg_id.starts_with(SYSTEM_CLIENT_ID_PREFIX) {
            return Err(Error::Invalid(format!(
                "client_msg_id must not start with '{SYSTEM_CLIENT_ID_PREFIX}' (reserved)"
            )));
        }
        let content_type = match request.content_type {
            None => "text".to_owned(),
            Some(content_type) => {
                let valid = !content_type.is_empty()
                    && content_type.len() <= 64
                    && content_type != "system"
                    && content_type.bytes().all(|byte| {
                        byte.is_ascii_lowercase()
                            || byte.is_ascii_digit()
                            || b"./+-_".contains(&byte)
                    });
                if !valid {
                    return Err(Error::Invalid(
                        "content_type must be 1-64 characters of a-z 0-9 . / + - _, and not 'system'".into(),
                    ));
                }
                content_type
            }
        };
        if let Err(refusal) = self
            .admit_send(session, &request.conversation_id, request.reply_to_seq)
            .await
        {
            return self
                .first_ack_or(refusal, session, &request.conversation_id, &client_msg_id)
                .await;
        }
        let (reply, outcome) = oneshot::channel();
        let pending = PendingSend {
            message: NewMessage {
                message_id: ids::new_message_id(),
                conversation_id: request.conversation_id,
                sender_id: session.user_id.clone(),
                sender_device_id: session.device_id.clone(),
                client_msg_id,
                content: request.content,
                content_type,
                reply_to_seq: request.reply_to_seq,
                created_at: Timestamp::now(),
                system: None,
            },
            reply,
            queued_at: Instant::now(),
            origin_connection: request.origin_connection,
        };
        self.inner
            .commit_queue
            .send(CommitRequest::Send(pending))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        Ok(outcome)
    }

    /// The checks a send must pass besides its own fields: membership, `reply_to_seq`,
    /// rate limits (which spend a token when passed).
    async fn admit_send(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        reply_to_seq: Option<i64>,
    ) -> Result<()> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        if let Some(reply_to_seq) = reply_to_seq {
            let record = self.inner.store.fetch_conversation(conversation_id).await?;
            if reply_to_seq < 1 || reply_to_seq > record.last_seq {
                return Err(Error::NotFound("message for reply_to_seq"));
            }
        }
        self.check_send_rate(session, conversation_id, members.kind)
    }

    /// A refused send may be the retry of one already stored (the sender has since hit
    /// a rate limit or been removed): the protocol promises the first message's ack
    /// again, so look before refusing.
    async fn first_ack_or(
        &self,
        refusal: Error,
        session: &Session,
        conversation_id: &ConversationId,
        client_msg_id: &str,
    ) -> Result<oneshot::Receiver<Result<Appended>>> {
        if !matches!(refusal, Error::NotMember | Error::RateLimited { .. }) {
            return Err(refusal);
        }
        match self
            .inner
            .store
            .fetch_message_by_client_id(&session.user_id, client_msg_id)
            .await?
        {
            Some(first) if &first.conversation_id == conversation_id => {
                let (reply, outcome) = oneshot::channel();
                let _ = reply.send(Ok(Appended {
                    message: first,
                    duplicate: true,
                }));
                Ok(outcome)
            }
            // Stored in another conversation: not a retry of this send.
            Some(_) | None => Err(refusal),
        }
    }

    /// Sends and waits for the commit (the REST fallback).
    pub async fn send_message(&self, session: &Session, request: SendRequest) -> Result<Appended> {
        let outcome = self.submit_message(session, request).await?;
        outcome.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Spends one of the user's writes a minute (REST-style changes that store or notify).
    fn check_write_rate(&self, session: &Session) -> Result<()> {
        self.inner
            .write_limiter
            .try_take(&session.user_id, Instant::now())
            .map_err(|retry_after| Error::RateLimited { retry_after })
    }

    /// A change to a group stores a system message the members see like a message, so it
    /// spends from the same per-user-per-group bucket as sends, and one write.
    fn check_group_change_rate(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
    ) -> Result<()> {
        let group_key = (session.user_id.clone(), conversation_id.clone());
        self.inner
            .group_limiter
            .try_take(&group_key, Instant::now())
            .map_err(|retry_after| Error::RateLimited { retry_after })?;
        self.check_write_rate(session).inspect_err(|_| {
            self.inner.group_limiter.refund(&group_key);
        })
    }

    /// Before creating a conversation: one write, and for an account younger than
    /// `new_account_period` one of its new direct chats an hour or groups a day. Returns
    /// the new-account limiter spent from, so a creation that creates nothing refunds it.
    async fn check_creation_rate(
        &self,
        session: &Session,
        kind: ConversationType,
    ) -> Result<Option<&RateLimiter<UserId>>> {
        let user = self.inner.store.fetch_user(&session.user_id).await?;
        let age_ms = Timestamp::now().millis() - user.created_at.millis();
        let is_new = age_ms < self.inner.config.new_account_period.as_millis() as i64;
        let limiter = match kind {
            ConversationType::Direct => &self.inner.new_account_direct_limiter,
            ConversationType::Group => &self.inner.new_account_group_limiter,
        };
        let now = Instant::now();
        if is_new {
            limiter
                .try_take(&session.user_id, now)
                .map_err(|retry_after| Error::RateLimited { retry_after })?;
        }
        if let Err(retry_after) = self.inner.write_limiter.try_take(&session.user_id, now) {
            if is_new {
                limiter.refund(&session.user_id);
            }
            return Err(Error::RateLimited { retry_after });
        }
        Ok(is_new.then_some(limiter))
    }

    fn check_send_rate(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        kind: ConversationType,
    ) -> Result<()> {
        let now = Instant::now();
        let group_key = (kind == ConversationType::Group)
            .then(|| (session.user_id.clone(), conversation_id.clone()));
        if let Some(group_key) = &group_key {
            self.inner
                .group_limiter
                .try_take(group_key, now)
                .map_err(|retry_after| Error::RateLimited { retry_after })?;
        }
        if let Err(retry_after) = self.inner.user_limiter.try_take(&session.user_id, now) {
            if let Some(group_key) = &group_key {
                self.inner.group_limiter.refund(group_key);
            }
            return Err(Error::RateLimited { retry_after });
        }
        Ok(())
    }

    /// After a commit: `new_message` to every device of every member but the sending
    /// device, and the sender's read pointer moves to their own message.
    async fn fan_out(&self, message: &Message, origin_connection: Option<u64>) {
        let members = match self.members(&message.conversation_id).await {
            Ok(members) => members,
            Err(error) => {
                tracing::error!(%error, conversation_id = %message.conversation_id, "fan-out skipped: members unavailable");
                return;
            }
        };
        metrics::counter!("parley_messages_total").increment(1);
        let frame: Arc<str> = ServerFrame::NewMessage(message.clone()).to_json().into();
        self.publish(BusEvent::Deliver {
            user_ids: members.user_ids.clone(),
            except_connection: origin_connection,
            frame,
            created_at_ms: Some(message.created_at.millis()),
        })
        .await;
        if message.content_type != "system" {
            self.inner
                .receipts
                .note(&message.conversation_id, &message.sender_id, 0, message.seq);
        }
    }

    /// `GET /conversations/{id}/messages`: a page in ascending `seq`.
    pub async fn history(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<MessagePage> {
        self.members_for(conversation_id, &session.user_id).await?;
        let limit = limit.clamp(1, parley_proto::limits::MAX_HISTORY_PAGE);
        // Scrolling back takes the newest end; reading forward (only after_seq) the oldest.
        let from = if after_seq.is_some() && before_seq.is_none() {
            PageFrom::Oldest
        } else {
            PageFrom::Newest
        };
        let mut messages = self
            .inner
            .store
            .fetch_messages(
                conversation_id,
                SeqRange {
                    after_seq,
                    before_seq,
                },
                from,
                limit + 1,
            )
            .await?;
        let has_more = messages.len() > limit as usize;
        if has_more {
            match from {
                PageFrom::Oldest => {
                    messages.pop();
                }
                PageFrom::Newest => {
                    messages.remove(0);
                }
            }
        }
        Ok(MessagePage { messages, has_more })
    }

    /// One page of `sync` for one conversation: messages after `after_seq`, oldest first.
    pub async fn sync_page(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Message>> {
        self.members_for(conversation_id, &session.user_id).await?;
        Ok(self
            .inner
            .store
            .fetch_messages(
                conversation_id,
                SeqRange {
                    after_seq: Some(after_seq),
                    before_seq: None,
                },
                PageFrom::Oldest,
                limit,
            )
            .await?)
    }

    /// What a `sync` must send: for each conversation of the user, where to start and at
    /// most how many messages (`None`: all). Conversations with a cursor resume after it;
    /// those without one get their newest unread messages, at most
    /// `sync_uncursored_limit`. Also returns cursors the user gave for conversations they
    /// are not in, and the final `sync_done` cursors.
    pub async fn plan_sync(&self, session: &Session, cursors: &Cursors) -> Result<SyncPlan> {
        let positions = self
            .inner
            .store
            .list_conversation_positions(&session.user_id)
            .await?;
        let mut plan = SyncPlan::default();
        let mut known = HashSet::new();
        for (conversation_id, last_seq, read_seq) in positions {
            known.insert(conversation_id.clone());
            let start = match cursors.get(&conversation_id) {
                Some(cursor) => (*cursor).clamp(0, last_seq),
                None => read_seq.max(last_seq - i64::from(self.inner.config.sync_uncursored_limit)),
            };
            if start < last_seq {
                plan.ranges.push((conversation_id.clone(), start, last_seq));
            }
            plan.done.insert(conversation_id, last_seq);
        }
        plan.not_member = cursors
            .keys()
            .filter(|conversation_id| !known.contains(*conversation_id))
            .cloned()
            .collect();
        Ok(plan)
    }

    // ---- receipts ---------------------------------------------------------------------

    /// `ack`: this device has everything up to `seq`.
    pub async fn ack(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<()> {
        self.members_for(conversation_id, &session.user_id).await?;
        if seq < 0 {
            return Err(Error::Invalid("seq must not be negative".into()));
        }
        self.inner
            .receipts
            .note(conversation_id, &session.user_id, seq, 0);
        Ok(())
    }

    /// `read` / `POST /conversations/{id}/read`: the user has read up to `up_to_seq`.
    pub async fn read(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        up_to_seq: i64,
    ) -> Result<()> {
        self.members_for(conversation_id, &session.user_id).await?;
        if up_to_seq < 0 {
            return Err(Error::Invalid("up_to_seq must not be negative".into()));
        }
        self.inner
            .receipts
            .note(conversation_id, &session.user_id, 0, up_to_seq);
        Ok(())
    }

    /// Writes pending receipts now instead of at the next tick (tests, shutdown).
    pub async fn flush_receipts(&self) {
        flush_receipts(&self.inner).await;
    }

    /// `GET /conversations/{id}/messages/{seq}/receipts`
    pub async fn receipts(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<ReceiptsResponse> {
        self.members_for(conversation_id, &session.user_id).await?;
        let record = self.inner.store.fetch_conversation(conversation_id).await?;
        if seq < 1 || seq > record.last_seq {
            return Err(Error::NotFound("message"));
        }
        // Pointers still in memory count too: flush so the answer is current.
        flush_receipts(&self.inner).await;
        let receipts = self
            .inner
            .store
            .fetch_receipts(conversation_id, seq)
            .await?;
        Ok(ReceiptsResponse {
            delivered_to: receipts.delivered_to,
            read_by: receipts.read_by,
        })
    }

    /// `GET /unread`: unread counts per conversation and in total.
    pub async fn unread(&self, session: &Session) -> Result<UnreadSummary> {
        let mut conversations = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .inner
                .store
                .list_conversations(&session.user_id, cursor.clone(), 100)
                .await?;
            let done = page.len() < 100;
            cursor = page.last().map(|summary| ListCursor {
                last_activity_at: summary.conversation.last_activity_at,
                conversation_id: summary.conversation.conversation_id.clone(),
            });
            conversations.extend(
                page.into_iter()
                    .filter(|summary| summary.unread_count > 0)
                    .map(|summary| UnreadCount {
                        conversation_id: summary.conversation.conversation_id,
                        unread_count: summary.unread_count,
                    }),
            );
            if done {
                break;
            }
        }
        Ok(UnreadSummary {
            total: conversations.iter().map(|count| count.unread_count).sum(),
            conversations,
        })
    }

    async fn announce_receipt_change(&self, change: ReceiptChange) -> Result<()> {
        let members = self.members(&change.conversation_id).await?;
        let frame = |status, up_to_seq| ServerFrame::Receipt {
            conversation_id: change.conversation_id.clone(),
            user_id: change.user_id.clone(),
            status,
            up_to_seq,
        };
        let delivered_moved = change.delivered_seq > change.old_delivered_seq
            && change.delivered_seq > change.read_seq;
        let read_moved = change.read_seq > change.old_read_seq;
        if members.kind == ConversationType::Direct {
            // Two people: the other side and the reader's own devices (the echo).
            if delivered_moved {
                self.deliver(
                    members.user_ids.clone(),
                    &frame(ReceiptStatus::Delivered, change.delivered_seq),
                )
                .await;
            }
            if read_moved {
                self.deliver(
                    members.user_ids.clone(),
                    &frame(ReceiptStatus::Read, change.read_seq),
                )
                .await;
            }
            return Ok(());
        }
        // Groups: no N² fan-out. The reader's devices get their own read pointer; the
        // senders of the messages the pointer passed get the receipt, if still members.
        if read_moved {
            let mut recipients: Vec<UserId> = self
                .inner
                .store
                .fetch_senders(
                    &change.conversation_id,
                    change.old_read_seq,
                    change.read_seq,
                )
                .await?
                .into_iter()
                .filter(|sender_id| members.is_member(sender_id))
                .collect();
            if !recipients.contains(&change.user_id) {
                recipients.push(change.user_id.clone());
            }
            self.deliver(
                Arc::from(recipients),
                &frame(ReceiptStatus::Read, change.read_seq),
            )
            .await;
        }
        if delivered_moved {
            let recipients: Vec<UserId> = self
                .inner
                .store
                .fetch_senders(
                    &change.conversation_id,
                    change.old_delivered_seq,
                    change.delivered_seq,
                )
                .await?
                .into_iter()
                .filter(|sender_id| sender_id != &change.user_id && members.is_member(sender_id))
                .collect();
            if !recipients.is_empty() {
                self.deliver(
                    Arc::from(recipients),
                    &frame(ReceiptStatus::Delivered, change.delivered_seq),
                )
                .await;
            }
        }
        Ok(())
    }

    // ---- presence and typing ----------------------------------------------------------

    /// A device connected. Announces `online` when it is the user's first.
    pub async fn connected(&self, session: &Session, connection_id: u64) {
        match self
            .inner
            .presence
            .connect(&session.user_id, &session.device_id, connection_id)
            .await
        {
            Ok(true) => {
                let frame = ServerFrame::Presence {
                    user_id: session.user_id.clone(),
                    status: PresenceStatus::Online,
                    last_seen: None,
                };
                self.publish(BusEvent::Presence {
                    user_id: session.user_id.clone(),
                    frame: frame.to_json().into(),
                })
                .await;
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "presence connect failed"),
        }
    }

    /// A device disconnected. Stores `last_seen` and announces `offline` when it was the
    /// user's last.
    pub async fn disconnected(&self, session: &Session, connection_id: u64) {
        match self
            .inner
            .presence
            .disconnect(&session.user_id, connection_id)
            .await
        {
            Ok(true) => {
                let now = Timestamp::now();
                if let Err(error) = self
                    .inner
                    .store
                    .update_last_seen(&session.user_id, now)
                    .await
                {
                    tracing::warn!(%error, "could not store last_seen");
                }
                let visible = self
                    .inner
                    .store
                    .fetch_user(&session.user_id)
                    .await
                    .map(|user| user.last_seen_visible)
                    .unwrap_or(false);
                // A quick reconnect (a page reload) may have announced `online` while
                // this task was writing: then `offline` would be the wrong last word.
                let back_online = self
                    .inner
                    .presence
                    .online(std::slice::from_ref(&session.user_id))
                    .await
                    .map(|online| online.first().copied().unwrap_or(false))
                    .unwrap_or(false);
                if back_online {
                    return;
                }
                let frame = ServerFrame::Presence {
                    user_id: session.user_id.clone(),
                    status: PresenceStatus::Offline,
                    last_seen: visible.then_some(now),
                };
                self.publish(BusEvent::Presence {
                    user_id: session.user_id.clone(),
                    frame: frame.to_json().into(),
                })
                .await;
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "presence disconnect failed"),
        }
    }

    /// `presence_subscribe`: the current presence of each user, to send right away; later
    /// changes arrive as `BusEvent::Presence`.
    pub async fn presence_snapshot(&self, user_ids: &[UserId]) -> Result<Vec<ServerFrame>> {
        if user_ids.len() > MAX_PRESENCE_USERS {
            return Err(Error::Invalid(format!(
                "at most {MAX_PRESENCE_USERS} users per presence_subscribe"
            )));
        }
        let online = self
            .inner
            .presence
            .online(user_ids)
            .await
            .map_err(|error| Error::Bus(error.to_string()))?;
        // One query for all of them, not one per user.
        let users: std::collections::HashMap<UserId, UserRecord> = self
            .inner
            .store
            .fetch_users(user_ids)
            .await?
            .into_iter()
            .map(|user| (user.user_id.clone(), user))
            .collect();
        let mut frames = Vec::with_capacity(user_ids.len());
        for (user_id, is_online) in user_ids.iter().zip(online) {
            let Some(user) = users.get(user_id) else {
                continue;
            };
            frames.push(ServerFrame::Presence {
                user_id: user_id.clone(),
                status: if is_online {
                    PresenceStatus::Online
                } else {
                    PresenceStatus::Offline
                },
                last_seen: if is_online || !user.last_seen_visible {
                    None
                } else {
                    user.last_seen_at
                },
            });
        }
        Ok(frames)
    }

    /// `typing`: relayed to the other members' devices; not stored; not relayed in
    /// groups larger than `typing_max_group`.
    pub async fn typing(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        is_typing: bool,
    ) -> Result<()> {
        let members = self.members_for(conversation_id, &session.user_id).await?;
        if members.kind == ConversationType::Group
            && members.members.len() > self.inner.config.typing_max_group
        {
            return Ok(());
        }
        let frame = ServerFrame::Typing {
            conversation_id: conversation_id.clone(),
            user_id: session.user_id.clone(),
            is_typing,
        };
        self.deliver(members.others(&session.user_id), &frame).await;
        Ok(())
    }

    // ---- plumbing ---------------------------------------------------------------------

    async fn deliver(&self, user_ids: Arc<[UserId]>, frame: &ServerFrame) {
        let _ = self.deliver_checked(user_ids, frame).await;
    }

    /// Like `deliver`, answering whether the bus took the frame.
    async fn deliver_checked(&self, user_ids: Arc<[UserId]>, frame: &ServerFrame) -> Result<()> {
        if user_ids.is_empty() {
            return Ok(());
        }
        self.publish_checked(BusEvent::Deliver {
            user_ids,
            except_connection: None,
            frame: frame.to_json().into(),
            created_at_ms: None,
        })
        .await
    }

    async fn publish(&self, event: BusEvent) {
        // Not fatal: devices catch up with `sync`.
        let _ = self.publish_checked(event).await;
    }

    async fn publish_checked(&self, event: BusEvent) -> Result<()> {
        self.inner.bus.publish(event).await.map_err(|error| {
            tracing::warn!(%error, "bus publish failed");
            Error::Bus(error.to_string())
        })
    }
}

/// The answer to a `sync`.
#[derive(Debug, Default)]
pub struct SyncPlan {
    /// `(conversation, after_seq, up_to_seq)` to stream, oldest first.
    pub ranges: Vec<(ConversationId, i64, i64)>,
    /// Cursors named in the request that are not the user's conversations.
    pub not_member: Vec<ConversationId>,
    /// The `sync_done` cursors: every conversation of the user with its `last_seq`.
    pub done: Cursors,
}

/// An Argon2id hash of a random password, verified against for unknown usernames.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$u3Wz0mJ0O7bCfjX2lXj1mK0Y3qQkqQbE6pN3c8m7U4o";

async fn run_committer(inner: Arc<Inner>, mut queue: mpsc::Receiver<CommitRequest>) {
    let chat = Chat {
        inner: inner.clone(),
    };
    drop(inner);
    while let Some((sends, barrier)) =
        next_batch(&mut queue, chat.inner.config.max_commit_batch).await
    {
        if !sends.is_empty() {
            let (messages, replies): (Vec<_>, Vec<_>) = sends
                .into_iter()
                .map(|pending| {
                    (
                        pending.message,
                        (pending.reply, pending.queued_at, pending.origin_connection),
                    )
                })
                .unzip();
            metrics::histogram!("parley_commit_batch_size").record(messages.len() as f64);
            let count = messages.len();
            match chat.inner.store.append_messages(messages).await {
                Ok(outcomes) => {
                    debug_assert_eq!(outcomes.len(), count);
                    for (outcome, (reply, queued_at, origin_connection)) in
                        outcomes.into_iter().zip(replies)
                    {
                        metrics::histogram!("parley_ack_latency_seconds")
                            .record(queued_at.elapsed().as_secs_f64());
                        let answer = match outcome {
                            Ok(appended) => {
                                if !appended.duplicate {
                                    chat.fan_out(&appended.message, origin_connection).await;
                                }
                                Ok(appended)
                            }
                            Err(AppendRefusal::NotMember) => Err(Error::NotMember),
                            Err(AppendRefusal::ClientMsgIdReused) => Err(Error::ClientMsgIdReused),
                        };
                        let _ = reply.send(answer);
                    }
                }
                Err(error) => {
                    tracing::error!(%error, count, "group commit failed");
                    let text = error.to_string();
                    for (reply, _, _) in replies {
                        let _ = reply.send(Err(Error::Store(StoreError::Unavailable(
                            text.clone().into(),
                        ))));
                    }
                }
            }
        }
        match barrier {
            Some(Barrier::Change(pending)) => {
                let PendingChange {
                    conversation_id,
                    actor,
                    intent,
                    reply,
                } = *pending;
                let outcome = chat.apply_change(&actor, &conversation_id, intent).await;
                let _ = reply.send(outcome);
            }
            Some(Barrier::Flush(done)) => {
                let _ = done.send(());
            }
            None => {}
        }
    }
}

async fn run_receipt_flusher(inner: std::sync::Weak<Inner>) {
    let interval = match inner.upgrade() {
        Some(inner) => inner.config.receipt_flush_interval,
        None => return,
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        flush_receipts(&inner).await;
    }
}

async fn flush_receipts(inner: &Arc<Inner>) {
    let _one_at_a_time = inner.receipt_flush.lock().await;
    let updates = inner.receipts.take();
    if updates.is_empty() {
        return;
    }
    let changes = match inner.store.update_receipts(updates.clone()).await {
        Ok(changes) => changes,
        Err(error) => {
            tracing::warn!(%error, "receipt flush failed; will retry");
            for update in updates {
                inner.receipts.note(
                    &update.conversation_id,
                    &update.user_id,
                    update.delivered_seq,
                    update.read_seq,
                );
            }
            return;
        }
    };
    let chat = Chat {
        inner: inner.clone(),
    };
    for change in changes {
        if let Err(error) = chat.announce_receipt_change(change).await {
            tracing::warn!(%error, "receipt announcement failed");
        }
    }
}

fn not_found_is_not_member(error: StoreError) -> Error {
    match error {
        StoreError::NotFound => Error::NotMember,
        other => other.into(),
    }
}

fn checked_text(field: &str, text: String, min_chars: usize, max_chars: usize) -> Result<String> {
    let trimmed = text.trim();
    let count = trimmed.chars().count();
    if count < min_chars
        || count > max_chars
        || trimmed.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(Error::Invalid(format!(
            "{field} must be {min_chars}-{max_chars} characters without control characters"
        )));
    }
    Ok(trimmed.to_owned())
}

/// Characters that reorder the text around them: a name with one can show as something
/// else ("Admin" spelled backwards by U+202E), so names refuse them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A name shown on one line next to messages (display names, group names): 1 to
/// `max_chars` characters, no control characters, no line breaks, no bidi overrides.
fn checked_name(field: &str, text: String, max_chars: usize) -> Result<String> {
    let text = checked_text(field, text, 1, max_chars)?;
    if text
        .chars()
        .any(|c| c == '\n' || c == '\u{2028}' || c == '\u{2029}' || is_bidi_control(c))
    {
        return Err(Error::Invalid(format!(
            "{field} must be one line without bidirectional override characters"
        )));
    }
    Ok(text)
}

/// Message content: no control characters but line feeds and tabs, and something besides
/// white space.
fn check_content(content: &str) -> Result<()> {
    if content
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::Invalid(
            "content must not contain control characters other than line feed and tab".into(),
        ));
    }
    if content.trim().is_empty() {
        return Err(Error::Invalid(
            "content must not be empty or only white space".into(),
        ));
    }
    Ok(())
}

fn optional_text(field: &str, text: Option<String>, max_chars: usize) -> Result<Option<String>> {
    match text {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => checked_text(field, text, 1, max_chars).map(Some),
    }
}

fn optional_url(url: String) -> Result<Option<String>> {
    let url = url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    if url.len() > MAX_AVATAR_URL
        || !(url.starts_with("https://") || url.starts_with("http://"))
        || url.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Error::Invalid(
            "avatar_url must be an http(s) URL without spaces or control characters".into(),
        ));
    }
    Ok(Some(url.to_owned()))
}

fn parse_list_cursor(text: &str) -> Result<ListCursor> {
    let invalid = || Error::Invalid("cursor is not one this server gave".into());
    let (millis, conversation_id) = text.split_once('~').ok_or_else(invalid)?;
    Ok(ListCursor {
        last_activity_at: Timestamp(millis.parse().map_err(|_| invalid())?),
        conversation_id: ConversationId(conversation_id.to_owned()),
    })
}

fn own_profile(user: UserRecord) -> Profile {
    Profile {
        user_id: user.user_id,
        username: user.username,
        display_name: user.display_name,
        status_message: user.status_message,
        avatar_url: user.avatar_url,
        last_seen_visible: user.last_seen_visible,
        created_at: user.created_at,
    }
}

fn public_profile(user: UserRecord) -> PublicProfile {
    PublicProfile {
        user_id: user.user_id,
        username: user.username,
        display_name: user.display_name,
        status_message: user.status_message,
        avatar_url: user.avatar_url,
    }
}

/// A conversation without one member's state (for `conversation_updated`, which every
/// member receives alike; `unread_count` and `last_read_seq` are 0 there).
fn conversation_view(
    record: ConversationRecord,
    members: Option<Vec<Member>>,
    last_message: Option<Message>,
) -> Conversation {
    Conversation {
        conversation_id: record.conversation_id,
        kind: record.kind,
        name: record.name,
        description: record.description,
        member_count: members
            .as_ref()
            .map(|members| members.len() as u32)
            .unwrap_or(record.member_count),
        members,
        created_at: record.created_at,
        last_activity_at: record.last_activity_at,
        last_seq: record.last_seq,
        last_message,
        unread_count: 0,
        last_read_seq: 0,
        muted_until: None,
    }
}

fn summary_to_conversation(summary: ConversationSummary) -> Conversation {
    let mut conversation = conversation_view(summary.conversation, None, summary.last_message);
    conversation.unread_count = summary.unread_count;
    conversation.last_read_seq = summary.read_seq;
    conversation.muted_until = summary.muted_until;
    conversation
}

/// The human text of a system message (clients may render `system` themselves).
fn system_text(event: &SystemEvent) -> String {
    match event {
        SystemEvent::GroupCreated { name, .. } => format!("created the group \"{name}\""),
        SystemEvent::MembersAdded { user_ids, .. } => {
            format!("added {} member(s)", user_ids.len())
        }
        SystemEvent::MemberRemoved { .. } => "removed a member".to_owned(),
        SystemEvent::MemberLeft { .. } => "left the group".to_owned(),
        SystemEvent::RoleChanged { role, .. } => format!("made a member {}", role.as_str()),
        SystemEvent::ConversationRenamed {
            name: Some(name), ..
        } => {
            format!("renamed the group to \"{name}\"")
        }
        SystemEvent::ConversationRenamed { .. } => "changed the group description".to_owned(),
    }
}
