//! `impl Store for SqliteStore`, in the trait's order with the trait's doc comments.

use super::*;

#[async_trait]
impl Store for SqliteStore {
    /// Answers once the backend can serve reads and writes (`/readyz`).
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(unavailable)?;
        // The writer too: a store whose writer is stuck cannot take messages.
        sqlx::query("SELECT 1")
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    // ---- users --------------------------------------------------------------------

    /// Creates a user. `Conflict` if the username is taken, or held after its account was
    /// deleted (until the `username_free_at` that `delete_account` was given).
    async fn insert_user(&self, user: UserRecord) -> StoreResult<()> {
        users::insert_user(&self.writer, user).await
    }

    /// `NotFound` if there is no such user.
    async fn fetch_user(&self, user_id: &UserId) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE user_id = ?"
        ))
        .bind(user_id.as_str())
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(user_from_row(&row))
    }

    /// The users that exist among `user_ids` (at most a few hundred), in no set order.
    async fn fetch_users(&self, user_ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        let mut users = Vec::with_capacity(user_ids.len());
        for chunk in user_ids.chunks(INSERT_CHUNK) {
            let mut select = sqlx::QueryBuilder::<Sqlite>::new(format!(
                "SELECT {USER_COLUMNS} FROM users WHERE user_id IN ("
            ));
            push_list(&mut select, chunk.iter().map(UserId::as_str));
            let rows = select
                .build()
                .fetch_all(&self.reader)
                .await
                .map_err(unavailable)?;
            users.extend(rows.iter().map(user_from_row));
        }
        Ok(users)
    }

    /// `NotFound` if there is no such username.
    async fn fetch_user_by_username(&self, username: &str) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = ?"
        ))
        .bind(username)
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(user_from_row(&row))
    }

    /// Users whose username or display name starts with `query` (case-insensitive),
    /// usernames first, at most `limit`.
    async fn search_users(&self, query: &str, limit: u32) -> StoreResult<Vec<UserRecord>> {
        users::search_users(&self.reader, query, limit).await
    }

    /// Applies a profile change and returns the new profile.
    async fn update_user(
        &self,
        user_id: &UserId,
        update: ProfileUpdate,
    ) -> StoreResult<UserRecord> {
        users::update_user(&self.writer, user_id, update).await
    }

    /// Records when the user's last device went offline.
    async fn update_last_seen(&self, user_id: &UserId, at: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_seen_at = ? WHERE user_id = ?")
            .bind(at.millis())
            .bind(user_id.as_str())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    // ---- blocks -------------------------------------------------------------------

    async fn block_user(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: Timestamp,
    ) -> StoreResult<bool> {
        blocks::change_block(&self.writer, blocker, blocked, Some(at)).await
    }

    async fn unblock_user(&self, blocker: &UserId, blocked: &UserId) -> StoreResult<bool> {
        blocks::change_block(&self.writer, blocker, blocked, None).await
    }

    async fn list_blocked(&self, blocker: &UserId) -> StoreResult<Vec<(UserRecord, Timestamp)>> {
        blocks::list_blocked(&self.reader, blocker).await
    }

    async fn fetch_block_relations(&self, user_id: &UserId) -> StoreResult<BlockRelations> {
        blocks::fetch_block_relations(&self.reader, user_id).await
    }

    async fn fetch_direct_partners(&self, user_id: &UserId) -> StoreResult<HashSet<UserId>> {
        blocks::fetch_direct_partners(&self.reader, user_id).await
    }

    // ---- devices and sessions -----------------------------------------------------

    /// `NotFound` if the user does not exist or their account is deleted.
    async fn insert_device(&self, device: NewDevice) -> StoreResult<()> {
        // Not for an account deleted meanwhile (a login racing the deletion).
        let inserted = sqlx::query(
            "INSERT INTO devices (device_id, user_id, name, token_hash, created_at) \
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS \
             (SELECT 1 FROM users WHERE user_id = ?2 AND deleted_at IS NULL)",
        )
        .bind(device.device_id.as_str())
        .bind(device.user_id.as_str())
        .bind(&device.name)
        .bind(&device.token_hash)
        .bind(device.created_at.millis())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The session a token hash belongs to; `NotFound` if unknown or revoked.
    async fn fetch_session(&self, token_hash: &[u8]) -> StoreResult<SessionRecord> {
        let row = sqlx::query(
            "SELECT user_id, device_id FROM devices WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(SessionRecord {
            user_id: UserId(row.get("user_id")),
            device_id: DeviceId(row.get("device_id")),
        })
    }

    /// The session of a device whose token still stands; `NotFound` if revoked.
    async fn fetch_session_by_device(&self, device_id: &DeviceId) -> StoreResult<SessionRecord> {
        let row = sqlx::query(
            "SELECT user_id, device_id FROM devices WHERE device_id = ? AND revoked_at IS NULL",
        )
        .bind(device_id.as_str())
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(SessionRecord {
            user_id: UserId(row.get("user_id")),
            device_id: DeviceId(row.get("device_id")),
        })
    }

    /// Revokes a device's token at once. Revoking twice is not an error.
    async fn delete_device(&self, device_id: &DeviceId) -> StoreResult<()> {
        sqlx::query("UPDATE devices SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL")
            .bind(Timestamp::now().millis())
            .bind(device_id.as_str())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        // A logged-out device gets no push (the reads skip it meanwhile).
        parley_core::store::PushRecordStore::delete_push_subscription(self, device_id).await
    }

    async fn delete_devices(&self, user_id: &UserId) -> StoreResult<Vec<DeviceId>> {
        account::delete_devices(&self.writer, user_id).await
    }

    // ---- account deletion and export ---------------------------------------------

    async fn delete_account(
        &self,
        user_id: &UserId,
        at: Timestamp,
        username_free_at: Timestamp,
    ) -> StoreResult<Vec<DeviceId>> {
        account::delete_account(&self.writer, &self.scrub_wal, user_id, at, username_free_at).await
    }

    async fn fetch_sent_conversations(&self, user_id: &UserId) -> StoreResult<Vec<ConversationId>> {
        account::fetch_sent_conversations(&self.reader, user_id).await
    }

    async fn fetch_sent_messages(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
    ) -> StoreResult<Vec<Message>> {
        account::fetch_sent_messages(&self.reader, user_id, conversation_id).await
    }

    // ---- conversations ------------------------------------------------------------

    /// Creates a conversation with its members (and system message, whose `seq` is 1).
    /// For a direct chat whose `direct_key` exists already, stores nothing and returns the
    /// existing conversation with `false`.
    async fn insert_conversation(
        &self,
        conversation: NewConversation,
    ) -> StoreResult<(ConversationRecord, bool)> {
        let mut transaction = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        if let Some(direct_key) = &conversation.direct_key {
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT conversation_id FROM conversations WHERE direct_key = ?",
            )
            .bind(direct_key)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(unavailable)?;
            if let Some(existing) = existing {
                drop(transaction);
                let record = self.fetch_conversation(&ConversationId(existing)).await?;
                return Ok((record, false));
            }
        }
        let created_at = conversation.created_at.millis();
        sqlx::query(
            "INSERT INTO conversations (conversation_id, kind, name, description, direct_key, \
             created_at, last_seq, last_activity_at, member_count, search_key) \
             VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, \
             (SELECT IFNULL(MAX(search_key), 0) + 1 FROM conversations))",
        )
        .bind(conversation.conversation_id.as_str())
        .bind(conversation.kind.as_str())
        .bind(&conversation.name)
        .bind(&conversation.description)
        .bind(&conversation.direct_key)
        .bind(created_at)
        .bind(created_at)
        .bind(conversation.members.len() as i64)
        .execute(&mut *transaction)
        .await
        .map_err(unavailable)?;
        for (user_id, role) in &conversation.members {
            sqlx::query(
                "INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
            )
            .bind(conversation.conversation_id.as_str())
            .bind(user_id.as_str())
            .bind(role.as_str())
            .bind(created_at)
            .execute(&mut *transaction)
            .await
            .map_err(|error| match unavailable(error) {
                StoreError::MissingReference => StoreError::NotFound,
                other => other,
            })?;
        }
        if let (Some(_), [(first, _), (second, _)]) =
            (&conversation.direct_key, conversation.members.as_slice())
        {
            refresh_send_blocked(&mut transaction, first, second).await?;
        }
        if let Some(system_message) = conversation.system_message {
            append_in_transaction(&mut transaction, system_message).await?;
        }
        transaction.commit().await.map_err(unavailable)?;
        let record = self
            .fetch_conversation(&conversation.conversation_id)
            .await?;
        Ok((record, true))
    }

    /// `NotFound` if there is no such conversation.
    async fn fetch_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> StoreResult<ConversationRecord> {
        let row = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.conversation_id = ?"
        ))
        .bind(conversation_id.as_str())
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        conversation_from_row(&row)
    }

    /// Members with their roles and names, owners first then by join time.
    async fn fetch_members(&self, conversation_id: &ConversationId) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT m.user_id, m.role, m.joined_at, u.username, u.display_name \
             FROM members m JOIN users u ON u.user_id = m.user_id \
             WHERE m.conversation_id = ? \
             ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, \
                      m.joined_at, m.user_id",
        )
        .bind(conversation_id.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
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
        let sql = format!(
            "{} WHERE m.user_id = ?1 AND m.conversation_id = ?2",
            summary_select(unread, 3)
        );
        let query = sqlx::query(&sql)
            .bind(user_id.as_str())
            .bind(conversation_id.as_str());
        let row = bind_types(query, unread)
            .fetch_one(&self.reader)
            .await
            .map_err(unavailable)?;
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
        settings::list_conversations(&self.reader, user_id, filter, cursor, limit, unread).await
    }

    async fn update_chat_settings(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        update: &ChatSettingsUpdate,
        max_pinned: u32,
    ) -> StoreResult<()> {
        settings::update_chat_settings(&self.writer, conversation_id, user_id, update, max_pinned)
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
        settings::clear_conversation(&self.writer, conversation_id, user_id).await
    }

    /// Every conversation of the user with where they stand in it.
    async fn list_conversation_positions(
        &self,
        user_id: &UserId,
    ) -> StoreResult<Vec<ConversationPosition>> {
        let rows = sqlx::query(
            "SELECT c.conversation_id, c.last_seq, MAX(m.read_seq, m.cleared_seq) AS read_seq, \
             m.cleared_seq FROM members m \
             JOIN conversations c ON c.conversation_id = m.conversation_id WHERE m.user_id = ?",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| ConversationPosition {
                conversation_id: ConversationId(row.get("conversation_id")),
                last_seq: row.get("last_seq"),
                read_seq: row.get("read_seq"),
                cleared_seq: row.get("cleared_seq"),
            })
            .collect())
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
        let mut transaction = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        // The one writer connection serializes this with every other write, so the check
        // and the bump below see no change in between.
        let members_version: i64 = sqlx::query_scalar(
            "SELECT members_version FROM conversations WHERE conversation_id = ?",
        )
        .bind(conversation_id.as_str())
        .fetch_one(&mut *transaction)
        .await
        .map_err(unavailable)?;
        if members_version != update.expected_members_version {
            return Err(StoreError::Conflict(Conflict::MembersVersion {
                expected: update.expected_members_version,
                found: members_version,
            }));
        }
        let last_seq = last_seq_of(&mut transaction, conversation_id).await?;
        let now = update.system_messages.first().map_or_else(
            || Timestamp::now().millis(),
            |message| message.created_at.millis(),
        );
        for change in update.changes {
            apply_change(&mut transaction, conversation_id, change, last_seq, now).await?;
        }
        sqlx::query(
            "UPDATE conversations SET members_version = members_version + 1 \
             WHERE conversation_id = ?",
        )
        .bind(conversation_id.as_str())
        .execute(&mut *transaction)
        .await
        .map_err(unavailable)?;
        let mut appended = Vec::with_capacity(update.system_messages.len());
        for message in update.system_messages {
            appended.push(append_in_transaction(&mut transaction, message).await?);
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(appended)
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
    /// search (`crate::search::index_terms`) and their mentions counted. Gives each new message the next `seq` of its
    /// conversation (gap-free, from 1); a message whose `(sender_id, client_msg_id)` is
    /// already stored, or appears earlier in the batch, is a duplicate: nothing is written
    /// and the first message is returned, if it is in the same conversation (else
    /// `AppendRefusal::ClientMsgIdReused`). A new message whose sender is not a member at
    /// that moment is refused (`AppendRefusal::NotMember`) and uses no `seq`. Returns only
    /// once durably committed.
    async fn append_messages(&self, messages: Vec<NewMessage>) -> StoreResult<Vec<AppendOutcome>> {
        append(&self.writer, &self.scrub_wal, &self.index, messages).await
    }

    async fn purge_expired(&self, now: Timestamp, limit: u32) -> StoreResult<u32> {
        expiry::purge_expired(&self.writer, &self.scrub_wal, &self.index, now, limit).await
    }

    /// The message `sender_id` stored with `client_msg_id`, if any (in any conversation).
    async fn fetch_message_by_client_id(
        &self,
        sender_id: &UserId,
        client_msg_id: &str,
    ) -> StoreResult<Option<Message>> {
        let row = sqlx::query(&select_by_client_id())
            .bind(sender_id.as_str())
            .bind(client_msg_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(message_from_row).transpose()
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
        let order = match from {
            PageFrom::Oldest => "ASC",
            PageFrom::Newest => "DESC",
        };
        let rows = sqlx::query(&fetch_page_sql(order))
            .bind(conversation_id.as_str())
            .bind(range.after_seq.unwrap_or(0))
            .bind(range.before_seq.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .bind(viewer.as_str())
            .fetch_all(&self.reader)
            .await
            .map_err(unavailable)?;
        let cleared: i64 = rows.first().map_or(0, |row| row.get("viewer_cleared"));
        let mut messages: Vec<Message> = rows
            .iter()
            .map(message_from_row)
            .collect::<StoreResult<_>>()?;
        if from == PageFrom::Newest {
            messages.reverse();
        }
        hide_changes_to_cleared(&mut messages, cleared);
        with_current_state(&self.reader, conversation_id, messages, viewer).await
    }

    /// One message in its current state, without `reactions`; `NotFound` if there is no
    /// such `seq`.
    async fn fetch_message(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<Message> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND seq = ?2 \
             AND {unexpired}",
            unexpired = unexpired_sql("", 3),
        ))
        .bind(conversation_id.as_str())
        .bind(seq)
        .bind(Timestamp::now().millis())
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        message_from_row(&row)
    }

    /// Who reacted to the message `seq` with what, one entry per emoji in the order each
    /// was first used, users in the order they reacted.
    async fn fetch_reactions(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<Vec<ReactionUsers>> {
        reactions_of(&self.reader, conversation_id, seq).await
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
        hide(&self.writer, user_id, conversation_id, seq).await
    }

    /// Full-text search: messages of `query.user_id`'s conversations (checked in the
    /// query: member now, not hidden by them, after their `cleared_seq`, not deleted)
    /// that contain a word starting with each term, newest `message_id` first, at most
    /// `limit`, in their current state without `reactions`.
    async fn search_messages(&self, query: SearchQuery<'_>) -> StoreResult<Vec<Message>> {
        self.index.catch_up(&self.reader).await?;
        search(&self.reader, query).await
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
        let mut select = sqlx::QueryBuilder::<Sqlite>::new(
            "SELECT DISTINCT sender_id FROM messages WHERE conversation_id = ",
        );
        select
            .push_bind(conversation_id.as_str())
            .push(" AND seq > ")
            .push_bind(after_seq)
            .push(" AND seq <= ")
            .push_bind(up_to_seq);
        if !counting.except_types.is_empty() {
            select.push(" AND content_type NOT IN (");
            push_list(
                &mut select,
                counting.except_types.iter().map(ContentType::as_str),
            );
        }
        let senders: Vec<String> = select
            .build_query_scalar()
            .fetch_all(&self.reader)
            .await
            .map_err(unavailable)?;
        Ok(senders.into_iter().map(UserId).collect())
    }

    // ---- receipts -----------------------------------------------------------------

    /// Moves pointers forward (never back; read implies delivered) and returns those that
    /// moved. Updates for users no longer members are ignored.
    async fn update_receipts(
        &self,
        updates: Vec<ReceiptUpdate>,
    ) -> StoreResult<Vec<ReceiptChange>> {
        let mut transaction = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        let mut changes = Vec::new();
        for chunk in updates.chunks(INSERT_CHUNK) {
            let mut select = sqlx::QueryBuilder::<Sqlite>::new(
                "SELECT m.conversation_id, m.user_id, m.delivered_seq, m.read_seq, c.last_seq \
                 FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id \
                 WHERE (m.conversation_id, m.user_id) IN (VALUES ",
            );
            push_pair_list(
                &mut select,
                chunk
                    .iter()
                    .map(|update| (update.conversation_id.as_str(), update.user_id.as_str())),
            );
            let rows = select
                .build()
                .fetch_all(&mut *transaction)
                .await
                .map_err(unavailable)?;
            let current: HashMap<(String, String), (i64, i64, i64)> = rows
                .iter()
                .map(|row| {
                    (
                        (row.get("conversation_id"), row.get("user_id")),
                        (
                            row.get("delivered_seq"),
                            row.get("read_seq"),
                            row.get("last_seq"),
                        ),
                    )
                })
                .collect();
            let mut moved = Vec::new();
            for update in chunk {
                // Updates for users no longer members have no row and are ignored.
                let key = (update.conversation_id.0.clone(), update.user_id.0.clone());
                let Some(&(old_delivered, old_read, last_seq)) = current.get(&key) else {
                    continue;
                };
                // Pointers never pass the end: a client cannot pre-read future messages.
                let read_seq = old_read.max(update.read_seq.min(last_seq));
                let delivered_seq = old_delivered
                    .max(update.delivered_seq.min(last_seq))
                    .max(read_seq);
                if read_seq == old_read && delivered_seq == old_delivered {
                    continue;
                }
                moved.push(ReceiptChange {
                    conversation_id: update.conversation_id.clone(),
                    user_id: update.user_id.clone(),
                    old_delivered_seq: old_delivered,
                    delivered_seq,
                    old_read_seq: old_read,
                    read_seq,
                });
            }
            if moved.is_empty() {
                continue;
            }
            let mut write = sqlx::QueryBuilder::<Sqlite>::new(
                "UPDATE members SET delivered_seq = v.column3, read_seq = v.column4, \
                 marked_unread = marked_unread AND v.column4 = members.read_seq FROM (",
            );
            write.push_values(&moved, |mut row, change| {
                row.push_bind(change.conversation_id.as_str())
                    .push_bind(change.user_id.as_str())
                    .push_bind(change.delivered_seq)
                    .push_bind(change.read_seq);
            });
            write.push(
                ") AS v WHERE members.conversation_id = v.column1 AND members.user_id = v.column2",
            );
            write
                .build()
                .execute(&mut *transaction)
                .await
                .map_err(unavailable)?;
            changes.extend(moved);
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(changes)
    }

    /// Who has received and read the message `seq` (the sender excluded).
    async fn fetch_receipts(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> StoreResult<MessageReceipts> {
        let sender: String = sqlx::query_scalar(
            "SELECT sender_id FROM messages WHERE conversation_id = ? AND seq = ?",
        )
        .bind(conversation_id.as_str())
        .bind(seq)
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        let rows = sqlx::query(
            "SELECT user_id, delivered_seq >= ?2 AS delivered, read_seq >= ?2 AS read FROM members \
             WHERE conversation_id = ?1 AND user_id != ?3 AND delivered_seq >= ?2 \
             AND joined_seq <= ?2 ORDER BY user_id",
        )
        .bind(conversation_id.as_str())
        .bind(seq)
        .bind(&sender)
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        let mut receipts = MessageReceipts::default();
        for row in rows {
            let user_id = UserId(row.get("user_id"));
            if row.get::<bool, _>("read") {
                receipts.read_by.push(user_id.clone());
            }
            receipts.delivered_to.push(user_id);
        }
        Ok(receipts)
    }
}
