//! The limits a user's requests spend from, through the `RateLimiter` port (shared by
//! every node, so a limit is the same however many nodes there are).

use super::*;

/// Every limit's quota, from the configuration.
pub(super) struct Quotas {
    user_messages: Quota,
    group_messages: Quota,
    /// Other writes (conversations, members, renames, roles, profile) per user.
    writes: Quota,
    searches: Quota,
    media_uploads: Quota,
    auth_attempts: Quota,
    /// New direct chats and new groups of accounts younger than `new_account_period`.
    new_account_direct: Quota,
    new_account_groups: Quota,
}

impl Quotas {
    pub(super) fn from_config(config: &CoreConfig) -> Self {
        Self {
            user_messages: Quota::per_minute(config.user_messages_per_minute),
            group_messages: Quota::per_minute(config.group_messages_per_minute),
            writes: Quota::per_minute(config.writes_per_minute),
            searches: Quota::per_minute(config.searches_per_minute),
            media_uploads: Quota::per_minute(config.media_uploads_per_minute),
            auth_attempts: Quota::per_minute(config.auth_attempts_per_minute),
            new_account_direct: Quota::per_period(
                config.new_account_direct_chats_per_hour,
                std::time::Duration::from_secs(3600),
            ),
            new_account_groups: Quota::per_period(
                config.new_account_groups_per_day,
                std::time::Duration::from_secs(24 * 3600),
            ),
        }
    }
}

/// A user in one group: the key of the per-group buckets.
fn in_group(user_id: &UserId, conversation_id: &ConversationId) -> String {
    format!("{user_id}/{conversation_id}")
}

impl Chat {
    /// Takes a token from every bucket, or none.
    async fn acquire(&self, buckets: &[Bucket<'_>]) -> Result<()> {
        match self.inner.limiter.acquire(buckets).await? {
            Admission::Granted => Ok(()),
            Admission::Denied { retry_after } => Err(Error::RateLimited { retry_after }),
        }
    }

    /// A message: one of the user's sends, and in a group one of their sends to it.
    pub(super) async fn check_send_rate(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
        kind: ConversationType,
    ) -> Result<()> {
        let quotas = &self.inner.quotas;
        let user = Bucket::new(
            "user_messages",
            session.user_id.as_str(),
            quotas.user_messages,
        );
        if kind == ConversationType::Group {
            let group = Bucket::new(
                "group_messages",
                in_group(&session.user_id, conversation_id),
                quotas.group_messages,
            );
            self.acquire(&[group, user]).await
        } else {
            self.acquire(&[user]).await
        }
    }

    /// One of the user's writes a minute (REST-style changes that store or notify).
    pub(super) async fn check_write_rate(&self, session: &Session) -> Result<()> {
        let writes = Bucket::new("writes", session.user_id.as_str(), self.inner.quotas.writes);
        self.acquire(&[writes]).await
    }

    /// One of the user's searches a minute.
    pub(super) async fn check_search_rate(&self, session: &Session) -> Result<()> {
        let searches = Bucket::new(
            "searches",
            session.user_id.as_str(),
            self.inner.quotas.searches,
        );
        self.acquire(&[searches]).await
    }

    /// One of the user's uploads a minute.
    pub(super) async fn check_upload_rate(&self, session: &Session) -> Result<()> {
        let uploads = Bucket::new(
            "media_uploads",
            session.user_id.as_str(),
            self.inner.quotas.media_uploads,
        );
        self.acquire(&[uploads]).await
    }

    /// One register or login attempt from `origin` (the gateway's name for the client's
    /// network address), before any password is hashed.
    pub async fn check_auth_attempt(&self, origin: &str) -> Result<()> {
        let attempts = Bucket::new("auth_attempts", origin, self.inner.quotas.auth_attempts);
        self.acquire(&[attempts]).await
    }

    /// A change to a group stores a system message the members see like a message, so it
    /// spends from the same per-user-per-group bucket as sends, and one write.
    pub(super) async fn check_group_change_rate(
        &self,
        session: &Session,
        conversation_id: &ConversationId,
    ) -> Result<()> {
        let quotas = &self.inner.quotas;
        self.acquire(&[
            Bucket::new(
                "group_messages",
                in_group(&session.user_id, conversation_id),
                quotas.group_messages,
            ),
            Bucket::new("writes", session.user_id.as_str(), quotas.writes),
        ])
        .await
    }

    /// Before creating a conversation: one write, and for an account younger than
    /// `new_account_period` one of its new direct chats an hour or groups a day. Returns
    /// the new-account bucket spent from, so a creation that creates nothing refunds it
    /// with [`Chat::refund`].
    pub(super) async fn check_creation_rate(
        &self,
        session: &Session,
        kind: ConversationType,
    ) -> Result<Option<Bucket<'static>>> {
        let user = self.inner.store.fetch_user(&session.user_id).await?;
        let age_ms = Timestamp::now().millis() - user.created_at.millis();
        let quotas = &self.inner.quotas;
        let writes = Bucket::new("writes", session.user_id.to_string(), quotas.writes);
        if age_ms >= self.inner.config.new_account_period.as_millis() as i64 {
            self.acquire(&[writes]).await?;
            return Ok(None);
        }
        let new_account = match kind {
            ConversationType::Direct => Bucket::new(
                "new_account_direct",
                session.user_id.to_string(),
                quotas.new_account_direct,
            ),
            ConversationType::Group => Bucket::new(
                "new_account_groups",
                session.user_id.to_string(),
                quotas.new_account_groups,
            ),
        };
        self.acquire(&[new_account.clone(), writes]).await?;
        Ok(Some(new_account))
    }

    /// Gives a token back (the request it was spent on did nothing). Best effort.
    pub(super) async fn refund(&self, bucket: &Bucket<'_>) {
        if let Err(error) = self.inner.limiter.refund(bucket).await {
            tracing::warn!(%error, "rate limit refund failed");
        }
    }
}
