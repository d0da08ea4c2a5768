//! Cases: deletes for everyone, targets, batches, activity.

use super::*;

/// A `delete` marks the target deleted and empties its text and mentions for good,
/// empties its edit entries and drops its reactions; the preview shows it as deleted.
pub async fn a_delete_empties_the_target_and_its_edits(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone(), carol.clone()]).await;
    let mut message = say(&conversation_id, &alice, "secret plan");
    message.mentions = vec![bob.clone()];
    let target = send(&store, message).await.seq;
    let edit_entry = send(
        &store,
        edit(&conversation_id, &alice, target, "secret plan v2"),
    )
    .await
    .seq;
    send(&store, react(&conversation_id, &carol, target, "👍")).await;
    send(&store, react(&conversation_id, &bob, target, "😮")).await;
    let delete_entry = send(&store, delete(&conversation_id, &alice, target))
        .await
        .seq;

    let deleted = seen(&store, &conversation_id, &carol, target).await;
    assert!(deleted.deleted);
    assert_eq!(deleted.content, "");
    assert!(deleted.mentions.is_empty(), "{:?}", deleted.mentions);
    assert!(deleted.reactions.is_empty(), "{:?}", deleted.reactions);
    let emptied = seen(&store, &conversation_id, &carol, edit_entry).await;
    assert_eq!(
        (emptied.content_type, emptied.content.as_str()),
        (ContentType::EDIT, "")
    );
    let entry = seen(&store, &conversation_id, &carol, delete_entry).await;
    assert_eq!(
        (entry.content_type, entry.target_seq),
        (ContentType::DELETE, Some(target))
    );
    let fetched = store.fetch_message(&conversation_id, target).await.unwrap();
    assert!(fetched.deleted && fetched.content.is_empty() && fetched.mentions.is_empty());
    assert!(store
        .fetch_reactions(&conversation_id, target)
        .await
        .unwrap()
        .is_empty());
    let readable = history(&store, &conversation_id, &bob).await;
    assert!(
        readable
            .iter()
            .all(|message| !message.content.contains("secret")),
        "nothing of the deleted text is readable: {readable:?}"
    );
    let preview = summary(&store, &conversation_id, &carol)
        .await
        .last_message
        .expect("a preview");
    assert_eq!(
        (preview.seq, preview.deleted, preview.content.as_str()),
        (target, true, ""),
        "the preview is the deleted message, shown as such"
    );
}

/// A deleted message leaves search (for everyone) and no longer counts as a mention.
pub async fn a_deleted_message_leaves_search_and_mentions(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let mut message = say(&conversation_id, &alice, "confidential numbers");
    message.mentions = vec![bob.clone()];
    let target = send(&store, message).await.seq;
    let other = send(&store, say(&conversation_id, &alice, "public numbers"))
        .await
        .seq;
    assert_eq!(
        summary(&store, &conversation_id, &bob)
            .await
            .unread_mentions,
        1
    );
    assert_eq!(
        found(&store, &bob, "confidential", &conversation_id).await,
        vec![target]
    );

    send(&store, delete(&conversation_id, &alice, target)).await;
    assert_eq!(
        summary(&store, &conversation_id, &bob)
            .await
            .unread_mentions,
        0
    );
    for searcher in [&alice, &bob] {
        assert!(found(&store, searcher, "confidential", &conversation_id)
            .await
            .is_empty());
        assert_eq!(
            found(&store, searcher, "numbers", &conversation_id).await,
            vec![other]
        );
    }
}

/// A change to a deleted message (an edit, a reaction, another delete) is refused with
/// `TargetGone` and uses no `seq`: the next message gets the next one, gap-free.
pub async fn changes_to_a_deleted_message_are_refused_and_use_no_seq(store: Arc<dyn Store>) {
    use parley_core::store::AppendRefusal;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let target = send(&store, say(&conversation_id, &alice, "oops"))
        .await
        .seq;
    let deleted_at = send(&store, delete(&conversation_id, &alice, target))
        .await
        .seq;
    let outcomes = store
        .append_messages(vec![
            edit(&conversation_id, &alice, target, "revived"),
            react(&conversation_id, &bob, target, "👍"),
            delete(&conversation_id, &alice, target),
            say(&conversation_id, &bob, "after"),
        ])
        .await
        .unwrap();
    for outcome in &outcomes[..3] {
        assert_eq!(*outcome, Err(AppendRefusal::TargetGone));
    }
    let after = outcomes[3].as_ref().expect("an ordinary message");
    assert_eq!(
        after.message.seq,
        deleted_at + 1,
        "refused changes use no seq"
    );
    let record = store.fetch_conversation(&conversation_id).await.unwrap();
    assert_eq!(record.last_seq, deleted_at + 1);
    assert_eq!(
        seqs_of(&history(&store, &conversation_id, &bob).await),
        (1..=deleted_at + 1).collect::<Vec<_>>()
    );
    let still = seen(&store, &conversation_id, &bob, target).await;
    assert!(still.deleted && still.content.is_empty() && still.reactions.is_empty());
}

/// Only an ordinary message of the conversation is a target: a system message, a change
/// entry (reaction, edit or delete), a `seq` that does not exist there (even if it does in
/// another conversation) are `TargetGone`, for every kind of change, using no `seq`.
pub async fn only_ordinary_messages_of_the_conversation_are_targets(store: Arc<dyn Store>) {
    use parley_core::store::AppendRefusal;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let other_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let fill = (0..12)
        .map(|index| say(&other_id, &alice, &format!("elsewhere {index}")))
        .collect();
    store.append_messages(fill).await.unwrap();
    let target = send(&store, say(&conversation_id, &alice, "ordinary"))
        .await
        .seq;
    let reaction = send(&store, react(&conversation_id, &bob, target, "👍"))
        .await
        .seq;
    let edit_entry = send(&store, edit(&conversation_id, &alice, target, "edited"))
        .await
        .seq;
    let doomed = send(&store, say(&conversation_id, &alice, "doomed"))
        .await
        .seq;
    let delete_entry = send(&store, delete(&conversation_id, &alice, doomed))
        .await
        .seq;
    let last_seq = store
        .fetch_conversation(&conversation_id)
        .await
        .unwrap()
        .last_seq;
    let elsewhere = last_seq + 3;
    assert!(
        store.fetch_conversation(&other_id).await.unwrap().last_seq >= elsewhere,
        "that seq exists in the other conversation"
    );
    let targets = [1, reaction, edit_entry, delete_entry, elsewhere, 0, -1];
    let mut batch = Vec::new();
    for target_seq in targets {
        batch.push(react(&conversation_id, &bob, target_seq, "👍"));
        batch.push(edit(&conversation_id, &alice, target_seq, "x"));
        batch.push(delete(&conversation_id, &alice, target_seq));
    }
    batch.push(say(&conversation_id, &alice, "next"));
    let mut outcomes = store.append_messages(batch).await.unwrap();
    let next = outcomes.pop().unwrap().expect("an ordinary message");
    for (index, outcome) in outcomes.iter().enumerate() {
        assert_eq!(
            *outcome,
            Err(AppendRefusal::TargetGone),
            "change {index} on seq {}",
            targets[index / 3]
        );
    }
    assert_eq!(next.message.seq, last_seq + 1, "refused changes use no seq");
    let intact = seen(&store, &conversation_id, &bob, target).await;
    assert_eq!(
        (
            intact.content.as_str(),
            intact.deleted,
            intact.reactions.len()
        ),
        ("edited", false, 1)
    );
}

/// Targets are checked in batch order: a message appended earlier in the same batch is a
/// valid target; one appended later is not there yet (`TargetGone`, no `seq`).
pub async fn a_target_appended_earlier_in_the_batch_is_valid(store: Arc<dyn Store>) {
    use parley_core::store::AppendRefusal;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let start = store
        .fetch_conversation(&conversation_id)
        .await
        .unwrap()
        .last_seq;
    let fresh = start + 1;
    let outcomes = store
        .append_messages(vec![
            react(&conversation_id, &bob, fresh, "🎉"),
            say(&conversation_id, &alice, "fresh"),
            react(&conversation_id, &bob, fresh, "👍"),
            edit(&conversation_id, &alice, fresh, "fresher"),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes[0], Err(AppendRefusal::TargetGone), "not there yet");
    let seqs: Vec<i64> = outcomes[1..]
        .iter()
        .map(|outcome| outcome.as_ref().expect("stored").message.seq)
        .collect();
    assert_eq!(seqs, vec![fresh, fresh + 1, fresh + 2]);
    let message = seen(&store, &conversation_id, &bob, fresh).await;
    assert_eq!(message.content, "fresher");
    assert!(message.edited_at.is_some());
    assert_eq!(message.reactions, vec![count("👍", 1, true)]);
}

/// A delete takes effect within its batch: an edit or a reaction of the same target later
/// in the batch is `TargetGone` and uses no `seq`.
pub async fn a_delete_then_an_edit_in_one_batch_refuses_the_edit(store: Arc<dyn Store>) {
    use parley_core::store::AppendRefusal;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let target = send(&store, say(&conversation_id, &alice, "original"))
        .await
        .seq;
    let outcomes = store
        .append_messages(vec![
            delete(&conversation_id, &alice, target),
            edit(&conversation_id, &alice, target, "too late"),
            react(&conversation_id, &bob, target, "👍"),
            say(&conversation_id, &bob, "next"),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes[0].as_ref().map(|appended| appended.message.seq),
        Ok(target + 1)
    );
    assert_eq!(outcomes[1], Err(AppendRefusal::TargetGone));
    assert_eq!(outcomes[2], Err(AppendRefusal::TargetGone));
    assert_eq!(
        outcomes[3].as_ref().map(|appended| appended.message.seq),
        Ok(target + 2)
    );
    let deleted = seen(&store, &conversation_id, &bob, target).await;
    assert!(deleted.deleted);
    assert_eq!(deleted.content, "");
    assert!(deleted.reactions.is_empty());
    assert!(history(&store, &conversation_id, &bob)
        .await
        .iter()
        .all(|message| !message.content.contains("late")));
    assert!(found(&store, &bob, "late", &conversation_id)
        .await
        .is_empty());
}

/// Change entries move `last_seq` but not `last_activity_at`: a reaction, edit or delete
/// does not bring a conversation to the top of the list; a new message does.
pub async fn change_entries_move_last_seq_but_not_last_activity(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let quiet_id = group(&store, std::slice::from_ref(&alice)).await;
    let target = send(&store, say(&quiet_id, &alice, "old news")).await.seq;
    let doomed = send(&store, say(&quiet_id, &alice, "older news")).await.seq;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let busy_id = group(&store, std::slice::from_ref(&alice)).await;
    let before = store.fetch_conversation(&quiet_id).await.unwrap();
    // Dated an hour ahead: had they counted as activity, the order would flip.
    let later = Timestamp::from_millis(Timestamp::now().millis() + 3_600_000);
    let mut changes = vec![
        react(&quiet_id, &alice, target, "👍"),
        edit(&quiet_id, &alice, target, "old news, corrected"),
        delete(&quiet_id, &alice, doomed),
    ];
    for change in &mut changes {
        change.created_at = later;
    }
    for outcome in store.append_messages(changes).await.unwrap() {
        outcome.expect("a change of an ordinary message");
    }
    let after = store.fetch_conversation(&quiet_id).await.unwrap();
    assert_eq!(after.last_seq, before.last_seq + 3, "changes take seqs");
    assert_eq!(
        after.last_activity_at, before.last_activity_at,
        "changes are no activity"
    );
    let order = |listed: Vec<ConversationSummary>| -> Vec<ConversationId> {
        listed
            .into_iter()
            .map(|summary| summary.conversation.conversation_id)
            .collect()
    };
    assert_eq!(
        order(
            store
                .list_conversations(&alice, ListFilter::All, None, 10, UNREAD)
                .await
                .unwrap()
        ),
        vec![busy_id.clone(), quiet_id.clone()]
    );

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    send(&store, say(&quiet_id, &alice, "fresh news")).await;
    let moved = store.fetch_conversation(&quiet_id).await.unwrap();
    assert!(moved.last_activity_at > before.last_activity_at);
    assert_eq!(
        order(
            store
                .list_conversations(&alice, ListFilter::All, None, 10, UNREAD)
                .await
                .unwrap()
        ),
        vec![quiet_id, busy_id]
    );
}
