//! `impl Store for PgStore`, in the trait's order with the trait's doc comments (the
//! message reads and hiding are `messages.rs`'s). Reads run on the pool. Writes of several
//! statements run through `PgStore::write` (one transaction, tried again whole if it lost
//! a race to another node); those that give out a `seq` or change the members first lock
//! the rows of the conversations they touch, and hold them until they commit.

use super::*;

#[async_trait]
impl Store for PgStore {
    /// Answers once the backend can serve reads and writes (`/readyz`).
    async fn ping(&self) -> StoreResult<()> {
        // A server in recovery (a standby after a failover) answers reads but refuses
        // every write: not ready for a node that must commit messages.
        let read_only: bool = sqlx::query_scalar(
            "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::boolean",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        if read_only {
            return Err(StoreError::unavailable(ReadOnly));
        }
        Ok(())
    }

    // ---- users --------------------------------------------------------------------

    /// Creates a user. `Conflict` if the username is taken, or held after its account was
    /// deleted (until the `username_free_at` that `delete_account` was given).
    async fn insert_user(&self, user: UserRecord) -> StoreResult<()> {
        self.insert_user_row(user).await
    }

    /// `NotFound` if there is no such user.
    async fn fetch_user(&self, user_id: &UserId) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE user_id = $1"
        ))
        .bind(user_id.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        user_from_row(&row)
    }

    /// The users that exist among `user_ids` (at most a few hundred), in no set order.
    async fn fetch_users(&self, user_ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        let user_ids: Vec<&str> = user_ids.iter().map(UserId::as_str).collect();
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE user_id = ANY($1)"
        ))
        .bind(&user_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(user_from_row).collect()
    }

    /// `NotFound` if there is no such username.
    async fn fetch_user_by_username(&self, username: &str) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        user_from_row(&row)
    }

    /// Users whose username or display name starts with `query` (case-insensitive),
    /// usernames first, at most `limit`.
    async fn search_users(&self, query: &str, limit: u32) -> StoreResult<Vec<UserRecord>> {
        self.search_user_rows(query, limit).await
    }

    /// Applies a profile change and returns the new profile.
    async fn update_user(
        &self,
        user_id: &UserId,
        update: ProfileUpdate,
    ) -> StoreResult<UserRecord> {
        self.update_user_row(user_id, update).await
    }

    /// Records when the user's last device went offline.
    async fn update_last_seen(&self, user_id: &UserId, at: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_seen_at = $1 WHERE user_id = $2")
            .bind(at.millis())
            .bind(user_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    // ---- blocks -------------------------------------------------------------------

    async fn block_user(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: Timestamp,
    ) -> StoreResult<bool> {
        self.change_block(blocker, blocked, Some(at)).await
    }

    async fn unblock_user(&self, blocker: &UserId, blocked: &UserId) -> StoreResult<bool> {
        self.change_block(blocker, blocked, None).await
    }

    async fn list_blocked(&self, blocker: &UserId) -> StoreResult<Vec<(UserRecord, Timestamp)>> {
        self.select_blocked(blocker).await
    }

    async fn fetch_block_relations(&self, user_id: &UserId) -> StoreResult<BlockRelations> {
        let rows: Vec<(String, bool)> = sqlx::query_as(BLOCK_RELATIONS)
            .bind(user_id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(BlockRelations::from_pairs(
            rows.into_iter()
                .map(|(id, blocks_me)| (UserId(id), blocks_me)),
        ))
    }

    async fn fetch_direct_partners(&self, user_id: &UserId) -> StoreResult<HashSet<UserId>> {
        self.select_user_ids(DIRECT_PARTNERS, user_id).await
    }

    // ---- devices and sessions -----------------------------------------------------

    /// `NotFound` if the user does not exist or their account is deleted.
    async fn insert_device(&self, device: NewDevice) -> StoreResult<()> {
        self.insert_device_row(device).await
    }

    /// The session a token hash belongs to; `NotFound` if unknown or revoked.
    async fn fetch_session(&self, token_hash: &[u8]) -> StoreResult<SessionRecord> {
        let row = sqlx::query(
            "SELECT user_id, device_id FROM devices WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        session_from_row(&row)
    }

    /// The session of a device whose token still stands; `NotFound` if revoked.
    async fn fetch_session_by_device(&self, device_id: &DeviceId) -> StoreResult<SessionRecord> {
        let row = sqlx::query(
            "SELECT user_id, device_id FROM devices WHERE device_id = $1 AND revoked_at IS NULL",
        )
        .bind(device_id.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        session_from_row(&row)
    }

    /// Revokes a device's token at once. Revoking twice is not an error.
    async fn delete_device(&self, device_id: &DeviceId) -> StoreResult<()> {
        sqlx::query(
            "UPDATE devices SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL",
        )
        .bind(Timestamp::now().millis())
        .bind(device_id.as_str())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        // A logged-out device gets no push (the reads skip it meanwhile).
        parley_core::store::PushRecordStore::delete_push_subscription(self, device_id).await
    }

    async fn delete_devices(&self, user_id: &UserId) -> StoreResult<Vec<DeviceId>> {
        self.revoke_devices(user_id).await
    }

    // ---- account deletion and export ---------------------------------------------

    async fn delete_account(
        &self,
        user_id: &UserId,
        at: Timestamp,
        username_free_at: Timestamp,
    ) -> StoreResult<Vec<DeviceId>> {
        self.tombstone(user_id, at, username_free_at).await
    }

    async fn fetch_sent_conversations(&self, user_id: &UserId) -> StoreResult<Vec<ConversationId>> {
        self.sent_conversations(user_id).await
    }

    async fn fetch_sent_messages(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
    ) -> StoreResult<Vec<Message>> {
        self.sent_messages(user_id, conversation_id).await
    }

    // ---- conversations ------------------------------------------------------------

    /// Creates a conversation with its members (and system message, whose `seq` is 1).
    /// For a direct chat whose `direct_key` exists already, stores nothing and returns the
    /// existing conversation with `false`.
    async fn insert_conversation(
        &self,
        conversation: NewConversation,
    ) -> StoreResult<(ConversationRecord, bool)> {
        let conversation = &conversation;
        self.write("insert_conversation", |mut transaction| async move {
            if !insert_conversation_rows(&mut transaction, conversation).await? {
                // A direct chat that exists, perhaps committed by another node a moment ago.
                let direct_key = conversation.direct_key.as_deref().unwrap_or_default();
                let record =
                    fetch_conversation_where(&mut transaction, "direct_key", direct_key).await?;
                transaction.rollback().await.map_err(store_error)?;
                return Ok(Attempt::Done((record, false)));
            }
            if let Some(system_message) = &conversation.system_message {
                let mut positions = HashMap::from([(
                    conversation.conversation_id.clone(),
                    Position::new_conversation(),
                )]);
                let messages = std::slice::from_ref(system_message);
                match append_locked(&mut transaction, messages, &mut positions, None).await? {
                    Some(outcomes) => only_appended(outcomes)?,
                    None => return Ok(Attempt::Again),
                };
            }
            let conversation_id = conversation.conversation_id.as_str();
            let record =
                fetch_conversation_where(&mut transaction, "conversation_id", conversation_id)
                    .await?;
            transaction.commit().await.map_err(store_error)?;
            Ok(Attempt::Done((record, true)))
        })
        .await
    }

    /// `NotFound` if there is no such conversation.
    async fn fetch_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> StoreResult<ConversationRecord> {
        let row = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.conversation_id = $1"
        ))
        .bind(conversation_id.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        conversation_from_row(&row)
    }

    /// Members with their roles and names: the owner, then admins, then members, each by
    /// join time.
    async fn fetch_members(&self, conversation_id: &ConversationId) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT m.user_id, m.role, m.joined_at, u.username, u.display_name \
             FROM members m JOIN users u ON u.user_id = m.user_id \
             WHERE m.conversation_id = $1 \
             ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, \
                      m.joined_at, m.user_id",
        )
        .bind(conversation_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(member_from_row).collect()
    }

    /// One conversation as `user_id` sees it in the list; `NotFound` if not a member.
    /// `unread_count` counts the messages after the user's read pointer that `unread`
    /// lets count; `unread_mentions` the mentions of the user after it; `last_message` is
    /// the newest entry that is not a change entry and not hidden by the user (a deleted
    /// one shows as such).
    async fn fetch_conversation_summary(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        unread: Counting<'_>,
    ) -> StoreResult<ConversationSummary> {
        let sql = summary_select("WHERE m.user_id = $3 AND m.conversation_id = $4");
        let row = bind_counting(sqlx::query(&sql), unread)
            .bind(user_id.as_str())
            .bind(conversation_id.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        summary_from_row(&row)
    }

    async fn list_conversations(
        &self,
        user_id: &UserId,
        filter: ListFilter,
        cursor: Option<ListCursor>,
        limit: u32,
        unread: Counting<'_>,
    ) -> StoreResult<Vec<ConversationSummary>> {
        settings::list_conversations(&self.pool, user_id, filter, cursor, limit, unread).await
    }

    async fn update_chat_settings(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        update: &ChatSettingsUpdate,
        max_pinned: u32,
    ) -> StoreResult<()> {
        settings::update_chat_settings(&self.pool, conversation_id, user_id, update, max_pinned)
            .await
    }

    /// Deletes the chat for `user_id` alone, up to the conversation's `last_seq` now,
    /// and returns that `seq` (the user's new `cleared_seq`). From then on, for that
    /// user: history and sync start after it (`fetch_messages`), search leaves out what
    /// came before (`search_messages`), the preview and the unread and mention counts
    /// consider only what comes after, and the list leaves the chat out until an entry
    /// that would be its preview arrives. The chat is unpinned, unarchived and no longer
    /// marked unread; the user's hidden marks up to that `seq` go (they hide nothing any
    /// more). Their receipt pointers do not move: nobody is told they read anything.
    /// `NotFound` if the user is not a member.
    async fn clear_conversation(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> StoreResult<i64> {
        settings::clear_conversation(&self.pool, conversation_id, user_id).await
    }

    /// Every conversation of the user with where they stand in it.
    async fn list_conversation_positions(
        &self,
        user_id: &UserId,
    ) -> StoreResult<Vec<ConversationPosition>> {
        settings::positions(&self.pool, user_id).await
    }

    /// Applies membership or metadata changes and appends their system messages in the
    /// same transaction, if `members_version` is still `expected_members_version`, and
    /// moves `members_version` on by one; otherwise `Conflict` and nothing is written.
    /// Adding a present member or removing an absent one changes nothing for that user.
    /// The store applies no rules of its own (owner succession is one of the changes it is
    /// given). `NotFound` if the conversation does not exist.
    async fn update_conversation(
        &self,
        conversation_id: &ConversationId,
        update: ConversationUpdate,
    ) -> StoreResult<Vec<Appended>> {
        let update = &update;
        self.write("update_conversation", |mut transaction| async move {
            // The row lock makes the version check and the bump one step for every node.
            let mut positions =
                lock_positions(&mut transaction, &[conversation_id.as_str()]).await?;
            let position = positions
                .get_mut(conversation_id)
                .ok_or(StoreError::NotFound)?;
            if position.members_version != update.expected_members_version {
                return Err(StoreError::Conflict(Conflict::MembersVersion {
                    expected: update.expected_members_version,
                    found: position.members_version,
                }));
            }
            let now = update.system_messages.first().map_or_else(
                || Timestamp::now().millis(),
                |message| message.created_at.millis(),
            );
            for change in &update.changes {
                apply_change(
                    &mut transaction,
                    conversation_id,
                    change,
                    position.last_seq,
                    now,
                )
                .await?;
            }
            // The system messages go to the members after the change: the new version.
            position.members_version =
                bump_members_version(&mut transaction, conversation_id).await?;
            let messages = &update.system_messages;
            let appended =
                match append_locked(&mut transaction, messages, &mut positions, None).await? {
                    Some(outcomes) => only_appended(outcomes)?,
                    None => return Ok(Attempt::Again),
                };
            transaction.commit().await.map_err(store_error)?;
            Ok(Attempt::Done(appended))
        })
        .await
    }

    // ---- messages -----------------------------------------------------------------

    /// Appends messages in one transaction (group commit), in the given order, and returns
    /// one outcome each, in the same order.
    ///
    /// Change entries (`ContentType::is_change`, with `target_seq`) take effect in the
    /// same transaction, in order: the core has authorized them; the store checks only
    /// that the target is, at that moment, an ordinary message (not system, not a change)
    /// of the conversation and not deleted, else `AppendRefusal::TargetGone` (no `seq`
    /// used). A `reaction` sets the sender's one reaction on the target (`content` is the
    /// emoji) or clears it (`""`); an `edit` replaces the target's text, sets its
    /// `edited_at` and rewrites every earlier `edit` entry of the target to the new text
    /// (no older version stays readable) and re-indexes it; a `delete` empties the
    /// target's text and mentions for good, marks it deleted, empties its `edit` entries,
    /// drops its reactions and mentions and takes it out of the search index. Change
    /// entries do not move `last_activity_at`. Ordinary `text` messages are indexed for
    /// search (`crate::search::index_terms`) and their mentions counted. Gives each new
    /// message the next `seq` of its conversation (gap-free, from 1); a message whose
    /// `(sender_id, client_msg_id)` is already stored, or appears earlier in the batch, is
    /// a duplicate: nothing is written and the first message is returned, if it is in the
    /// same conversation (else `AppendRefusal::ClientMsgIdReused`). A new message whose
    /// sender is not a member at that moment is refused (`AppendRefusal::NotMember`) and
    /// uses no `seq`. Returns only once durably committed.
    async fn append_messages(&self, messages: Vec<NewMessage>) -> StoreResult<Vec<AppendOutcome>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        // Five statements whatever the batch size (lock the conversations, read the
        // memberships and duplicates, insert, write the positions); more for changes.
        let messages = &messages[..];
        self.write("append_messages", |mut transaction| async move {
            let conversation_ids: Vec<&str> = messages
                .iter()
                .map(|message| message.conversation_id.as_str())
                .collect();
            let mut positions = lock_positions(&mut transaction, &conversation_ids).await?;
            let memberships = fetch_memberships(&mut transaction, messages).await?;
            let memberships = Some(&memberships);
            match append_locked(&mut transaction, messages, &mut positions, memberships).await? {
                Some(outcomes) => {
                    transaction.commit().await.map_err(store_error)?;
                    Ok(Attempt::Done(outcomes))
                }
                None => Ok(Attempt::Again),
            }
        })
        .await
    }

    async fn purge_expired(&self, now: Timestamp, limit: u32) -> StoreResult<u32> {
        self.purge_batch(now, limit).await
    }

    /// The message `sender_id` stored with `client_msg_id`, if any (in any conversation).
    async fn fetch_message_by_client_id(
        &self,
        sender_id: &UserId,
        client_msg_id: &str,
    ) -> StoreResult<Option<Message>> {
        fetch_by_client_id(&self.pool, sender_id, client_msg_id).await
    }

    /// At most `limit` messages of `range`, in ascending `seq`, taken from the `from` end,
    /// in their current state as `viewer` sees them: `reactions` counted (with `me` for
    /// the viewer), and the messages the viewer hid with `hidden: true`, empty `content`
    /// and no mentions, reactions or reply (they keep their `seq`: no gap). Nothing up to
    /// the viewer's `cleared_seq` (`clear_conversation`) is returned.
    async fn fetch_messages(
        &self,
        conversation_id: &ConversationId,
        range: SeqRange,
        from: PageFrom,
        limit: u32,
        viewer: &UserId,
    ) -> StoreResult<Vec<Message>> {
        fetch_page(&self.pool, conversation_id, range, from, limit, viewer).await
    }

    /// One message in its current state, without `reactions`; `NotFound` if there is no
    /// such `seq`.
    async fn fetch_message(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<Message> {
        fetch_one(&self.pool, conversation_id, seq).await
    }

    /// Who reacted to the message `seq` with what, one entry per emoji in the order each
    /// was first used, users in the order they reacted.
    async fn fetch_reactions(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<Vec<ReactionUsers>> {
        fetch_reaction_users(&self.pool, conversation_id, seq).await
    }

    /// Hides the message `seq` from `user_id` (delete for me): it leaves their history,
    /// search, preview and mention count. Hiding twice is not an error. `NotFound` if
    /// there is no such message.
    async fn hide_message(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<()> {
        hide(&self.pool, user_id, conversation_id, seq).await
    }

    /// Full-text search: messages of `query.user_id`'s conversations (checked in the
    /// query: member now, not hidden by them, after their `cleared_seq`, not deleted)
    /// that contain a word starting with each term, newest `message_id` first, at most
    /// `limit`, in their current state without `reactions`.
    async fn search_messages(&self, query: SearchQuery<'_>) -> StoreResult<Vec<Message>> {
        search(&self.pool, query).await
    }

    /// The distinct senders of the messages with `after_seq < seq <= up_to_seq` that
    /// `counting` lets count (`except_own` does not apply: there is no asking user).
    async fn fetch_senders(
        &self,
        conversation_id: &ConversationId,
        after_seq: i64,
        up_to_seq: i64,
        counting: Counting<'_>,
    ) -> StoreResult<Vec<UserId>> {
        fetch_counted_senders(&self.pool, conversation_id, after_seq, up_to_seq, counting).await
    }

    // ---- receipts -----------------------------------------------------------------

    /// Moves pointers forward (never back; read implies delivered) and returns those that
    /// moved. Updates for users no longer members are ignored.
    async fn update_receipts(
        &self,
        updates: Vec<ReceiptUpdate>,
    ) -> StoreResult<Vec<ReceiptChange>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        // Three statements: lock and read the pointers, write those that moved, commit.
        let updates = &updates[..];
        self.write("update_receipts", |mut transaction| async move {
            let stored = lock_pointers(&mut transaction, updates).await?;
            let changes = move_pointers(updates, &stored);
            if !changes.is_empty() {
                store_pointers(&mut transaction, &changes).await?;
            }
            transaction.commit().await.map_err(store_error)?;
            Ok(Attempt::Done(changes))
        })
        .await
    }

    /// Who has received and read the message `seq` (the sender excluded).
    async fn fetch_receipts(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<MessageReceipts> {
        let sender: String = sqlx::query_scalar(
            "SELECT sender_id FROM messages WHERE conversation_id = $1 AND seq = $2",
        )
        .bind(conversation_id.as_str())
        .bind(seq)
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        let rows = sqlx::query(
            "SELECT user_id, read_seq >= $2 AS read FROM members \
             WHERE conversation_id = $1 AND user_id <> $3 AND delivered_seq >= $2 \
             AND joined_seq <= $2 ORDER BY user_id",
        )
        .bind(conversation_id.as_str())
        .bind(seq)
        .bind(&sender)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        let mut receipts = MessageReceipts::default();
        for row in &rows {
            let user_id = UserId(column(row, "user_id")?);
            if column::<bool>(row, "read")? {
                receipts.read_by.push(user_id.clone());
            }
            receipts.delivered_to.push(user_id);
        }
        Ok(receipts)
    }
}
