//! Cases: disappearing messages — `expires_at` from the conversation's setting, expired
//! messages hidden from every read at once (their `seq` stays), and emptied by the purge
//! with everything hanging off them.

use super::*;
use parley_core::store::{AppendRefusal, ConversationChange};

const DAY_MS: i64 = 86_400_000;

/// Turns disappearing messages to `seconds` in `conversation_id`, with its system message.
async fn set_disappearing(
    store: &Arc<dyn Store>,
    conversation_id: &ConversationId,
    actor: &UserId,
    seconds: u32,
) -> Message {
    change(
        store,
        conversation_id,
        ConversationChange::SetDisappearing(seconds),
        system(
            conversation_id,
            actor,
            SystemEvent::DisappearingChanged {
                actor_id: actor.clone(),
                seconds,
            },
        ),
    )
    .await
    .expect("set disappearing")
    .message
}

/// `content` from `sender_id`, sent `ago_ms` before now.
fn said_ago(
    conversation_id: &ConversationId,
    sender_id: &UserId,
    content: &str,
    ago_ms: i64,
) -> NewMessage {
    let mut message = say(conversation_id, sender_id, content);
    message.created_at = Timestamp(Timestamp::now().millis() - ago_ms);
    message
}

/// Messages sent after the setting carry `expires_at` (ordinary ones only); expired ones
/// read as hidden in history (no gap), and leave single reads, search and change targets
/// at once; turning it off stops it for what follows.
pub async fn expired_messages_leave_every_read_at_once(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let team = group(&store, &[alice.clone(), bob.clone()]).await;
    let before = send(&store, say(&team, &alice, "kept forever")).await;
    assert_eq!(before.expires_at, None);
    let announced = set_disappearing(&store, &team, &alice, 86_400).await;
    assert_eq!(announced.expires_at, None, "the announcement stays");
    assert_eq!(
        store
            .fetch_conversation(&team)
            .await
            .unwrap()
            .disappearing_seconds,
        86_400
    );
    let fresh = send(&store, say(&team, &bob, "fresh lemon")).await;
    assert_eq!(
        fresh.expires_at,
        Some(Timestamp(fresh.created_at.millis() + DAY_MS))
    );
    // Sent two days ago under a one-day setting: expired already.
    let stale = send(&store, said_ago(&team, &bob, "stale lemon", 2 * DAY_MS)).await;
    assert!(stale.expires_at.unwrap() < Timestamp::now());
    let reaction = append_one(&store, react(&team, &alice, fresh.seq, "👍"))
        .await
        .expect("a reaction");
    assert_eq!(
        reaction.message.expires_at, None,
        "changes go with their target"
    );

    let seen = history(&store, &team, &alice).await;
    let shown = |seq: i64| seen.iter().find(|message| message.seq == seq).cloned();
    assert_eq!(shown(fresh.seq).unwrap().content, "fresh lemon");
    assert_eq!(shown(before.seq).unwrap().content, "kept forever");
    let gone = shown(stale.seq).expect("an expired message keeps its seq");
    assert!(
        gone.hidden && gone.content.is_empty(),
        "expired: shows nothing: {gone:?}"
    );
    assert!(matches!(
        store.fetch_message(&team, stale.seq).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(found(&store, &alice, "lemon", &team).await, vec![fresh.seq]);
    assert_eq!(
        append_one(&store, react(&team, &alice, stale.seq, "👍")).await,
        Err(AppendRefusal::TargetGone)
    );

    // An edit entry carries the text: it expires with its target.
    let edit_entry = send(&store, edit(&team, &bob, fresh.seq, "fresh lime")).await;
    let entry = history(&store, &team, &alice)
        .await
        .into_iter()
        .find(|message| message.seq == edit_entry.seq)
        .expect("the edit entry");
    assert_eq!(entry.expires_at, fresh.expires_at);

    set_disappearing(&store, &team, &bob, 0).await;
    let after = send(&store, say(&team, &alice, "after it is off")).await;
    assert_eq!(after.expires_at, None);
}

/// The purge empties expired messages for good, with their change entries (edited text),
/// reactions, mentions and search terms, a batch at a time, and leaves the rest. The rows
/// stay as empty tombstones: `seq` has no gap.
pub async fn the_purge_deletes_expired_messages_and_what_hangs_off_them(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let team = group(&store, &[alice.clone(), bob.clone()]).await;
    let kept = send(&store, say(&team, &alice, "kept melon")).await;
    set_disappearing(&store, &team, &alice, 86_400).await;
    let mut mentioning = say(&team, &bob, "hey melon");
    mentioning.mentions = vec![alice.clone()];
    let mentioned = send(&store, mentioning).await;
    let first_melon = say(&team, &bob, "first melon");
    let edited_client_id = first_melon.client_msg_id.clone();
    let edited = send(&store, first_melon).await;
    send(&store, edit(&team, &bob, edited.seq, "second papaya")).await;
    send(&store, react(&team, &alice, edited.seq, "🎉")).await;
    let others: Vec<Message> = {
        let mut sent = Vec::new();
        for index in 0..5 {
            sent.push(send(&store, say(&team, &bob, &format!("filler {index}"))).await);
        }
        sent
    };
    assert_eq!(summary(&store, &team, &alice).await.unread_mentions, 1);
    assert_eq!(
        found(&store, &alice, "papaya", &team).await,
        vec![edited.seq]
    );

    // Nothing is due yet.
    assert_eq!(store.purge_expired(Timestamp::now(), 100).await.unwrap(), 0);
    // Two days on, in batches of three.
    let later = Timestamp(Timestamp::now().millis() + 2 * DAY_MS);
    // The mention, the edited message and its edit entry (it expires with it), the fillers.
    let expiring = 3 + others.len() as u32;
    let mut purged = 0;
    loop {
        let batch = store.purge_expired(later, 3).await.unwrap();
        assert!(batch <= 3);
        purged += batch;
        if batch < 3 {
            break;
        }
    }
    assert_eq!(purged, expiring);
    assert_eq!(store.purge_expired(later, 3).await.unwrap(), 0);

    let left = history(&store, &team, &alice).await;
    let seqs = seqs_of(&left);
    assert_eq!(
        seqs,
        (1..=*seqs.last().unwrap()).collect::<Vec<_>>(),
        "no gap in seq"
    );
    for message in &left {
        if message.seq == kept.seq {
            assert_eq!(message.content, "kept melon");
        } else if message.expires_at.is_some() {
            // (Read before they expire by the clock: purged "two days on", emptied now.)
            assert!(message.content.is_empty(), "{message:?}");
        }
        assert!(!message.content.contains("papaya") && !message.content.contains("first"));
    }
    // Emptied in storage, not only hidden on the way out.
    let stored = store
        .fetch_message_by_client_id(&bob, &edited_client_id)
        .await
        .unwrap()
        .expect("the tombstone stays");
    assert_eq!((stored.seq, stored.content.as_str()), (edited.seq, ""));
    assert!(stored.mentions.is_empty() && stored.edited_at.is_none());
    assert!(store
        .fetch_reactions(&team, edited.seq)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(summary(&store, &team, &alice).await.unread_mentions, 0);
    assert!(found(&store, &alice, "papaya", &team).await.is_empty());
    assert!(found(&store, &alice, "melon", &team).await == vec![kept.seq]);
    let mention = store.fetch_message(&team, mentioned.seq).await.unwrap();
    assert!(mention.content.is_empty() && mention.mentions.is_empty());
    // Purged before the indexer got to it: the index stays exact (a word of it is not
    // found; the others still are, and later messages get indexed).
    let lagging = send(&store, said_ago(&team, &bob, "guava lagging", 0)).await;
    assert!(lagging.expires_at.is_some());
    let again_later = Timestamp(Timestamp::now().millis() + 3 * DAY_MS);
    assert_eq!(store.purge_expired(again_later, 100).await.unwrap(), 1);
    assert!(found(&store, &alice, "guava", &team).await.is_empty());
    assert_eq!(found(&store, &alice, "melon", &team).await, vec![kept.seq]);
    // The conversation goes on: `seq` keeps counting from where it was.
    let next = send(&store, say(&team, &alice, "still here")).await;
    assert!(next.seq > others.last().unwrap().seq);
}
