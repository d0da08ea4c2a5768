//! Receipt pointers inside the caller's write transaction: lock and read them, move them
//! (forward only, never past the end, read implying delivered), write those that moved.
//!
//! Member rows are locked in one order by every writer, so two nodes flushing receipts at
//! once wait for each other instead of deadlocking; conversation rows are not locked (a
//! `last_seq` read a moment early only clamps a pointer a little lower).

use super::*;

/// Where one member's pointers stand, read under the member row's lock.
pub(crate) struct Pointers {
    pub(crate) delivered_seq: i64,
    pub(crate) read_seq: i64,
    pub(crate) last_seq: i64,
}

/// Locks the member rows of these `(conversation_id, user_id)` pairs (`FOR UPDATE`, in
/// one order for every writer) and reads their pointers with their conversation's
/// `last_seq`. Pairs that are not memberships are absent.
pub(crate) async fn lock_pointers(
    connection: &mut sqlx::PgConnection,
    updates: &[ReceiptUpdate],
) -> StoreResult<HashMap<(ConversationId, UserId), Pointers>> {
    let (conversation_ids, user_ids): (Vec<&str>, Vec<&str>) = updates
        .iter()
        .map(|update| (update.conversation_id.as_str(), update.user_id.as_str()))
        .unzip();
    let rows = sqlx::query(
        "SELECT m.conversation_id, m.user_id, m.delivered_seq, m.read_seq, c.last_seq \
         FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id \
         WHERE (m.conversation_id, m.user_id) IN (SELECT * FROM UNNEST($1::text[], $2::text[])) \
         ORDER BY m.conversation_id, m.user_id FOR UPDATE OF m",
    )
    .bind(&conversation_ids)
    .bind(&user_ids)
    .fetch_all(&mut *connection)
    .await
    .map_err(store_error)?;
    rows.iter()
        .map(|row| {
            Ok((
                (
                    ConversationId(column(row, "conversation_id")?),
                    UserId(column(row, "user_id")?),
                ),
                Pointers {
                    delivered_seq: column(row, "delivered_seq")?,
                    read_seq: column(row, "read_seq")?,
                    last_seq: column(row, "last_seq")?,
                },
            ))
        })
        .collect()
}

/// Writes the pointers that moved, in one statement.
pub(crate) async fn store_pointers(
    connection: &mut sqlx::PgConnection,
    changes: &[ReceiptChange],
) -> StoreResult<()> {
    let conversation_ids: Vec<&str> = changes.iter().map(|c| c.conversation_id.as_str()).collect();
    let user_ids: Vec<&str> = changes.iter().map(|c| c.user_id.as_str()).collect();
    let delivered_seqs: Vec<i64> = changes.iter().map(|c| c.delivered_seq).collect();
    let read_seqs: Vec<i64> = changes.iter().map(|c| c.read_seq).collect();
    sqlx::query(
        "UPDATE members m SET delivered_seq = v.delivered_seq, read_seq = v.read_seq, \
         marked_unread = m.marked_unread AND v.read_seq = m.read_seq \
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[]) \
           AS v(conversation_id, user_id, delivered_seq, read_seq) \
         WHERE m.conversation_id = v.conversation_id AND m.user_id = v.user_id",
    )
    .bind(&conversation_ids)
    .bind(&user_ids)
    .bind(&delivered_seqs)
    .bind(&read_seqs)
    .execute(&mut *connection)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// Where a batch of receipt updates moves the `stored` pointers: never back, never past
/// the conversation's end (a client cannot pre-read messages that do not exist yet), read
/// implying delivered. Several updates of one member combine into one change, from where
/// the pointers stood before the batch; members absent from `stored` are ignored, and so
/// are updates that move nothing.
pub(crate) fn move_pointers(
    updates: &[ReceiptUpdate],
    stored: &HashMap<(ConversationId, UserId), Pointers>,
) -> Vec<ReceiptChange> {
    let mut changes: Vec<ReceiptChange> = Vec::new();
    let mut index: HashMap<(&ConversationId, &UserId), usize> = HashMap::new();
    for update in updates {
        let key = (update.conversation_id.clone(), update.user_id.clone());
        let Some(pointers) = stored.get(&key) else {
            continue;
        };
        let position = *index
            .entry((&update.conversation_id, &update.user_id))
            .or_insert_with(|| {
                changes.push(ReceiptChange {
                    conversation_id: update.conversation_id.clone(),
                    user_id: update.user_id.clone(),
                    old_delivered_seq: pointers.delivered_seq,
                    delivered_seq: pointers.delivered_seq,
                    old_read_seq: pointers.read_seq,
                    read_seq: pointers.read_seq,
                });
                changes.len() - 1
            });
        let change = &mut changes[position];
        change.read_seq = change.read_seq.max(update.read_seq.min(pointers.last_seq));
        change.delivered_seq = change
            .delivered_seq
            .max(update.delivered_seq.min(pointers.last_seq))
            .max(change.read_seq);
    }
    changes.retain(|change| {
        change.delivered_seq != change.old_delivered_seq || change.read_seq != change.old_read_seq
    });
    changes
}
