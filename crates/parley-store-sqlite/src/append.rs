//! `Store::append_messages`: one group commit. The statements it runs inside the
//! transaction are in `batch.rs`. New text messages are logged for the indexer
//! (`index_log`, see `index.rs`), not indexed here.

use super::*;

/// See `Store::append_messages`. `scrub_wal` is raised when the commit overwrote text (an
/// edit, a delete for everyone), so the checkpointer truncates the WAL.
pub(crate) async fn append(
    writer: &SqlitePool,
    scrub_wal: &AtomicBool,
    index: &SearchIndex,
    messages: Vec<NewMessage>,
) -> StoreResult<Vec<AppendOutcome>> {
    // A fixed handful of statements per batch, whatever its size: each statement is a
    // round trip to sqlx's SQLite thread, so per-message statements would cap
    // throughput at the context-switch rate rather than at SQLite's speed.
    let mut transaction = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let stored = fetch_stored_duplicates(&mut transaction, &messages).await?;
    // Within the transaction this connection is the only writer, so `last_seq` is
    // read once per conversation and written once at the end.
    let mut positions = fetch_last_seqs(&mut transaction, &messages).await?;
    let memberships = fetch_memberships(&mut transaction, &messages).await?;
    // The attachments' media as this transaction sees them: the collector writes in
    // transactions of its own, so none can go between this read and the commit.
    let media = existing_media(&mut transaction, &messages).await?;
    let mut first_in_batch: HashMap<(UserId, String), usize> = HashMap::new();
    // Change targets seen in this batch: `(ordinary, deleted)` per `(conversation, seq)`.
    let mut targets: HashMap<(ConversationId, i64), (bool, bool)> = HashMap::new();
    let has_changes = messages
        .iter()
        .any(|message| message.content_type.is_change());
    let mut outcomes: Vec<AppendOutcome> = Vec::with_capacity(messages.len());
    for message in messages {
        let key = (message.sender_id.clone(), message.client_msg_id.clone());
        if let Some(first) = stored.get(&key) {
            outcomes.push(if first.conversation_id == message.conversation_id {
                Ok(Appended {
                    message: first.clone(),
                    duplicate: true,
                    members_version: 0,
                })
            } else {
                Err(AppendRefusal::ClientMsgIdReused)
            });
            continue;
        }
        if let Some(&index) = first_in_batch.get(&key) {
            let outcome = match outcomes[index].clone() {
                Ok(first) if first.message.conversation_id != message.conversation_id => {
                    Err(AppendRefusal::ClientMsgIdReused)
                }
                first => first.map(|appended| Appended {
                    duplicate: true,
                    members_version: 0,
                    ..appended
                }),
            };
            outcomes.push(outcome);
            continue;
        }
        let membership = (message.conversation_id.clone(), message.sender_id.clone());
        match memberships.get(&membership) {
            None => {
                outcomes.push(Err(AppendRefusal::NotMember));
                continue;
            }
            Some(true) if !message.content_type.is_system() => {
                outcomes.push(Err(AppendRefusal::Blocked));
                continue;
            }
            Some(_) => {}
        }
        if !attachments_exist(&message, &media) {
            outcomes.push(Err(AppendRefusal::MediaGone));
            continue;
        }
        let is_change = message.content_type.is_change();
        if is_change {
            // The target as this transaction sees it, earlier entries of the batch
            // included (a message appended or deleted just before).
            let target_seq = message.target_seq.unwrap_or_default();
            let key = (message.conversation_id.clone(), target_seq);
            let state = match targets.get(&key) {
                Some(state) => Some(*state),
                None => {
                    let state =
                        target_state(&mut transaction, &message.conversation_id, target_seq)
                            .await?;
                    if let Some(state) = state {
                        targets.insert(key.clone(), state);
                    }
                    state
                }
            };
            if state != Some((true, false)) {
                outcomes.push(Err(AppendRefusal::TargetGone));
                continue;
            }
            if message.content_type == ContentType::DELETE {
                targets.insert(key, (true, true));
            }
        }
        let position = positions
            .get_mut(&message.conversation_id)
            .ok_or(StoreError::NotFound)?;
        position.last_seq += 1;
        position.moved = true;
        if !is_change {
            position.activity = position.activity.max(message.created_at.millis());
        }
        let seq = position.last_seq;
        if has_changes {
            targets.insert(
                (message.conversation_id.clone(), seq),
                (!message.content_type.is_system() && !is_change, false),
            );
        }
        first_in_batch.insert(key, outcomes.len());
        let expires_at = parley_core::rules::expires_at(
            &message.content_type,
            message.created_at,
            position.disappearing_seconds,
        );
        let mut message = message.with_seq(seq);
        message.expires_at = expires_at;
        outcomes.push(Ok(Appended {
            message,
            duplicate: false,
            members_version: position.members_version,
        }));
    }
    let new_messages: Vec<&Message> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .filter(|appended| !appended.duplicate)
        .map(|appended| &appended.message)
        .collect();
    for chunk in new_messages.chunks(INSERT_CHUNK) {
        let mut insert =
            sqlx::QueryBuilder::<Sqlite>::new(format!("INSERT INTO messages ({INSERT_COLUMNS}) "));
        insert.push_values(chunk, |mut row, message| {
            let system = message
                .system
                .as_ref()
                .map(|event| serde_json::to_string(event).expect("system events serialize"));
            row.push_bind(message.conversation_id.as_str())
                .push_bind(message.seq)
                .push_bind(message.message_id.as_str())
                .push_bind(message.sender_id.as_str())
                .push_bind(message.sender_device_id.as_str())
                .push_bind(message.client_msg_id.as_str())
                .push_bind(message.content.as_str())
                .push_bind(message.content_type.as_str())
                .push_bind(message.reply_to_seq)
                .push_bind(system)
                .push_bind(message.created_at.millis())
                .push_bind(message.target_seq)
                .push_bind(mentions_column(&message.mentions))
                .push_bind(i64::from(message.forwarded))
                .push_bind(message.expires_at.map(Timestamp::millis))
                .push_bind(attachments_column(&message.attachments));
        });
        insert
            .build()
            .execute(&mut *transaction)
            .await
            .map_err(unavailable)?;
    }
    refer_media(&mut transaction, &new_messages).await?;
    let search_key = |conversation_id: &ConversationId| {
        positions
            .get(conversation_id)
            .map_or(0, |position| position.search_key)
    };
    // New text is logged by row id only: the indexer reads the text and makes its
    // document, off this writer.
    let indexed: Vec<&Message> = outcomes
        .iter()
        .filter_map(|outcome| {
            let appended = outcome
                .as_ref()
                .ok()
                .filter(|appended| !appended.duplicate)?;
            is_indexed(&appended.message).then_some(&appended.message)
        })
        .collect();
    let to_index: Vec<IndexChange> = indexed
        .iter()
        .map(|message| IndexChange {
            rowid: index_rowid(search_key(&message.conversation_id), message.seq),
            old_terms: None,
            new_terms: None,
        })
        .collect();
    let log_ids = log_for_index(&mut transaction, &to_index).await?;
    // Handed to the indexer in memory once committed (it reads them back otherwise).
    let fresh: Vec<(i64, String)> = log_ids
        .into_iter()
        .zip(indexed.iter().map(|message| message.content.clone()))
        .collect();
    let logged = !to_index.is_empty();
    let mentioned: Vec<(&UserId, &ConversationId, i64)> = new_messages
        .iter()
        .filter(|message| !message.is_change())
        .flat_map(|message| {
            message
                .mentions
                .iter()
                .map(|user_id| (user_id, &message.conversation_id, message.seq))
        })
        .collect();
    insert_mentions(&mut transaction, &mentioned).await?;
    let mut overwrote_text = false;
    for change in new_messages.iter().filter(|message| message.is_change()) {
        overwrote_text |= change.content_type != ContentType::REACTION;
        apply_message_change(
            &mut transaction,
            change,
            search_key(&change.conversation_id),
        )
        .await?;
    }
    let moved: Vec<(&ConversationId, &Position)> = positions
        .iter()
        .filter(|(_, position)| position.moved)
        .collect();
    for chunk in moved.chunks(INSERT_CHUNK) {
        let mut update = sqlx::QueryBuilder::<Sqlite>::new(
            "UPDATE conversations SET last_seq = v.column2, \
             last_activity_at = MAX(last_activity_at, v.column3) FROM (",
        );
        update.push_values(chunk, |mut row, (conversation_id, position)| {
            row.push_bind(conversation_id.as_str())
                .push_bind(position.last_seq)
                .push_bind(position.activity);
        });
        update.push(") AS v WHERE conversations.conversation_id = v.column1");
        update
            .build()
            .execute(&mut *transaction)
            .await
            .map_err(unavailable)?;
    }
    transaction.commit().await.map_err(unavailable)?;
    index.remember(fresh);
    if overwrote_text {
        scrub_wal.store(true, Ordering::Release);
    }
    // An edit or delete logs its target too.
    if logged || overwrote_text {
        index.note_logged();
    }
    Ok(outcomes)
}
