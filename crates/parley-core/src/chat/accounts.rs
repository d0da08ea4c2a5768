//! Accounts and profiles: register, login (Argon2 bounded to one hash per core), tokens,
//! logout, the caller's profile and other users'. Passwords and tokens never leave here
//! except as hashes.

use super::*;

impl Chat {
    /// Creates the user and their first device.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        display_name: Option<String>,
        device_name: Option<String>,
    ) -> Result<Credentials> {
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
            avatar_media_id: None,
            push_previews: false,
            last_seen_privacy: parley_proto::LastSeenPrivacy::Everyone,
            last_seen_at: None,
            created_at: Timestamp::now(),
            deleted_at: None,
        };
        let user_id = user.user_id.clone();
        match self.inner.store.insert_user(user).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::UsernameTaken),
            Err(error) => return Err(error.into()),
        }
        self.new_device(user_id, device_name).await
    }

    /// Checks the password and creates a device.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        device_name: Option<String>,
    ) -> Result<Credentials> {
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
            // An account deleted between the check and the device: no login either.
            Some(user) if verified => match self.new_device(user.user_id, device_name).await {
                Err(Error::Store(StoreError::NotFound)) => Err(Error::InvalidCredentials),
                other => other,
            },
            _ => Err(Error::InvalidCredentials),
        }
    }

    pub(super) async fn hash_password(&self, password: &str) -> Result<String> {
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
    pub(super) async fn bounded_hashing<T: Send + 'static>(
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

    pub(super) async fn new_device(
        &self,
        user_id: UserId,
        name: Option<String>,
    ) -> Result<Credentials> {
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
        Ok(Credentials {
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

    /// Revokes the token and closes the device's sockets on every node.
    pub async fn logout(&self, session: &Session) -> Result<()> {
        self.inner.store.delete_device(&session.device_id).await?;
        self.publish(BusEvent::CloseDevice {
            user_id: session.user_id.clone(),
            device_id: session.device_id.clone(),
        })
        .await;
        Ok(())
    }

    // ---- profiles ---------------------------------------------------------------------

    /// The user's own profile.
    pub async fn me(&self, session: &Session) -> Result<Profile> {
        let user = self.inner.store.fetch_user(&session.user_id).await?;
        Ok(own_profile(user))
    }

    /// Changes the user's own profile.
    pub async fn update_me(&self, session: &Session, request: ProfileChanges) -> Result<Profile> {
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
            avatar_media_id: match request.avatar_media_id {
                Some(media_id) => Some(self.checked_avatar(session, media_id).await?),
                None => None,
            },
            last_seen_privacy: request.last_seen_privacy,
            push_previews: request.push_previews,
        };
        self.check_write_rate(session).await?;
        let before = match update.last_seen_privacy {
            Some(_) => Some(self.inner.store.fetch_user(&session.user_id).await?),
            None => None,
        };
        let user = self
            .inner
            .store
            .update_user(&session.user_id, update)
            .await
            .map_err(avatars::avatar_gone)?;
        if before.is_some_and(|before| before.last_seen_privacy != user.last_seen_privacy) {
            // Not fatal: the profile changed; watchers see the new rule from the next
            // change of presence or subscribe.
            if let Err(error) = self.presence_privacy_changed(&session.user_id).await {
                tracing::warn!(%error, "could not announce a presence privacy change");
            }
        }
        Ok(own_profile(user))
    }

    /// Another user's public profile (a deleted account's tombstone too: "Deleted
    /// account", so the messages it sent still name someone).
    pub async fn user(&self, user_id: &UserId) -> Result<PublicProfile> {
        match self.inner.store.fetch_user(user_id).await {
            Ok(user) => Ok(public_profile(user)),
            Err(StoreError::NotFound) => Err(Error::NotFound("user")),
            Err(error) => Err(error.into()),
        }
    }

    /// A user who may be put in a conversation: `NotFound` for one who does not exist or
    /// whose account was deleted.
    pub(super) async fn live_user(&self, user_id: &UserId) -> Result<()> {
        match self.inner.store.fetch_user(user_id).await {
            Ok(user) if user.deleted_at.is_none() => Ok(()),
            Ok(_) | Err(StoreError::NotFound) => Err(Error::NotFound("user")),
            Err(error) => Err(error.into()),
        }
    }

    /// Users by username or display name prefix.
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
        self.check_search_rate(session).await?;
        let users = self
            .inner
            .store
            .search_users(&query.to_lowercase(), limit.clamp(1, 50))
            .await?;
        Ok(users.into_iter().map(public_profile).collect())
    }
}

/// An Argon2id hash of a random password, verified against for unknown usernames.
pub(super) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$u3Wz0mJ0O7bCfjX2lXj1mK0Y3qQkqQbE6pN3c8m7U4o";
