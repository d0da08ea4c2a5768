//! Cases: each user's own settings for a conversation (mute, archive, pin, marked
//! unread) and the list they shape.

use super::*;
use parley_core::store::{ChatSettingsUpdate, Conflict, ConversationPosition, MUTED_FOREVER};

async fn set(
    store: &Arc<dyn Store>,
    conversation_id: &ConversationId,
    user_id: &UserId,
    update: ChatSettingsUpdate,
) {
    store
        .update_chat_settings(conversation_id, user_id, &update, 5)
        .await
        .expect("settings");
}

fn pin_at(at: i64) -> ChatSettingsUpdate {
    ChatSettingsUpdate {
        pinned_at: Some(Some(Timestamp(at))),
        ..Default::default()
    }
}

fn archive_at(at: Option<Timestamp>) -> ChatSettingsUpdate {
    ChatSettingsUpdate {
        archived_at: Some(at),
        ..Default::default()
    }
}

/// Every page of `user_id`'s list under `filter`, `limit` at a time, each page starting
/// after the last one's final entry: the ids in order.
async fn list_all(
    store: &Arc<dyn Store>,
    user_id: &UserId,
    filter: ListFilter,
    limit: u32,
) -> Vec<ConversationId> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_conversations(user_id, filter, cursor, limit, UNREAD)
            .await
            .expect("list");
        ids.extend(
            page.iter()
                .map(|summary| summary.conversation.conversation_id.clone()),
        );
        let Some(last) = page.last() else {
            return ids;
        };
        if page.len() < limit as usize {
            return ids;
        }
        cursor = Some(ListCursor {
            pinned_at: last.pinned_at,
            last_activity_at: last.conversation.last_activity_at,
            conversation_id: last.conversation.conversation_id.clone(),
        });
    }
}

fn main_list() -> ListFilter {
    ListFilter::Archived {
        archived: false,
        now: Timestamp::now(),
    }
}

fn archive_list() -> ListFilter {
    ListFilter::Archived {
        archived: true,
        now: Timestamp::now(),
    }
}

/// Pinned conversations come first, the newest pin first, then the others by activity;
/// paging one at a time crosses from the pinned to the others without a gap or a repeat.
/// Pins are one user's own: the other member's list is by activity only.
pub async fn pinned_conversations_come_first_and_page_through(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let mut chats = Vec::new();
    for _ in 0..5 {
        chats.push(group(&store, &[alice.clone(), bob.clone()]).await);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    // By activity: 4, 3, 2, 1, 0. Pinned: 1 (earlier), then 3 (later, so first).
    set(&store, &chats[1], &alice, pin_at(1_000)).await;
    set(&store, &chats[3], &alice, pin_at(2_000)).await;
    let expected = vec![
        chats[3].clone(),
        chats[1].clone(),
        chats[4].clone(),
        chats[2].clone(),
        chats[0].clone(),
    ];
    for limit in [1, 2, 10] {
        assert_eq!(
            list_all(&store, &alice, main_list(), limit).await,
            expected,
            "pages of {limit}"
        );
        assert_eq!(
            list_all(&store, &alice, ListFilter::All, limit).await,
            expected
        );
    }
    let pinned = summary(&store, &chats[3], &alice).await;
    assert_eq!(pinned.pinned_at, Some(Timestamp(2_000)));
    assert_eq!(summary(&store, &chats[3], &bob).await.pinned_at, None);
    let by_activity: Vec<ConversationId> = chats.iter().rev().cloned().collect();
    assert_eq!(list_all(&store, &bob, main_list(), 2).await, by_activity);
    // Unpinned, it goes back to its place by activity.
    set(
        &store,
        &chats[3],
        &alice,
        ChatSettingsUpdate {
            pinned_at: Some(None),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        list_all(&store, &alice, main_list(), 2).await,
        vec![
            chats[1].clone(),
            chats[4].clone(),
            chats[3].clone(),
            chats[2].clone(),
            chats[0].clone()
        ]
    );
}

/// Pinning more than the maximum is refused and changes nothing; pinning one already
/// pinned again is allowed and keeps its place.
pub async fn pins_are_limited_and_a_refused_pin_changes_nothing(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let mut chats = Vec::new();
    for _ in 0..3 {
        chats.push(group(&store, std::slice::from_ref(&alice)).await);
    }
    for (at, chat) in chats.iter().take(2).enumerate() {
        store
            .update_chat_settings(chat, &alice, &pin_at(at as i64 + 1), 2)
            .await
            .unwrap();
    }
    let refused = store
        .update_chat_settings(
            &chats[2],
            &alice,
            &ChatSettingsUpdate {
                pinned_at: Some(Some(Timestamp(9))),
                marked_unread: Some(true),
                ..Default::default()
            },
            2,
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(Conflict::TooManyPinned))),
        "{refused:?}"
    );
    let untouched = summary(&store, &chats[2], &alice).await;
    assert_eq!(
        (untouched.pinned_at, untouched.marked_unread),
        (None, false)
    );
    store
        .update_chat_settings(&chats[0], &alice, &pin_at(50), 2)
        .await
        .expect("pinning a pinned conversation again");
    assert_eq!(
        summary(&store, &chats[0], &alice).await.pinned_at,
        Some(Timestamp(1)),
        "keeps its place"
    );
    let stranger = user(&store, "mallory").await;
    let not_member = store
        .update_chat_settings(&chats[0], &stranger, &pin_at(1), 2)
        .await;
    assert!(
        matches!(not_member, Err(StoreError::NotFound)),
        "{not_member:?}"
    );
}

/// An archived conversation leaves the main list for the archive; a message arriving
/// later brings it back, unless it is muted (until the mute ends); a reaction does not.
pub async fn a_message_brings_an_archived_chat_back_unless_muted(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let plain = group(&store, &[alice.clone(), bob.clone()]).await;
    let muted = group(&store, &[alice.clone(), bob.clone()]).await;
    let first = send(&store, say(&plain, &bob, "first")).await.seq;
    let now = Timestamp::now();
    set(&store, &plain, &alice, archive_at(Some(now))).await;
    set(
        &store,
        &muted,
        &alice,
        ChatSettingsUpdate {
            archived_at: Some(Some(now)),
            muted_until: Some(Some(MUTED_FOREVER)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(list_all(&store, &alice, main_list(), 10).await, vec![]);
    let mut archived = list_all(&store, &alice, archive_list(), 10).await;
    archived.sort();
    let mut both = vec![plain.clone(), muted.clone()];
    both.sort();
    assert_eq!(archived, both);
    assert_eq!(list_all(&store, &bob, archive_list(), 10).await, vec![]);
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    send(&store, react(&plain, &bob, first, "👍")).await;
    assert_eq!(list_all(&store, &alice, main_list(), 10).await, vec![]);
    send(&store, say(&plain, &bob, "news")).await;
    send(&store, say(&muted, &bob, "news")).await;
    assert_eq!(
        list_all(&store, &alice, main_list(), 10).await,
        vec![plain.clone()]
    );
    assert_eq!(
        list_all(&store, &alice, archive_list(), 10).await,
        vec![muted.clone()]
    );
    // The mute ends (a time in the past): the message since the archiving counts.
    set(
        &store,
        &muted,
        &alice,
        ChatSettingsUpdate {
            muted_until: Some(Some(Timestamp(1))),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(list_all(&store, &alice, archive_list(), 10).await, vec![]);
    // Archived again after the news: back in the archive.
    set(&store, &muted, &alice, archive_at(Some(Timestamp::now()))).await;
    assert_eq!(
        list_all(&store, &alice, archive_list(), 10).await,
        vec![muted.clone()]
    );
    set(&store, &muted, &alice, archive_at(None)).await;
    assert_eq!(list_all(&store, &alice, archive_list(), 10).await, vec![]);
}

/// Settings are stored as given and read back in the summary; absent fields stay; a mark
/// of unread is cleared when the read pointer moves, not by a delivery.
pub async fn settings_read_back_and_reading_clears_the_unread_mark(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let chat = group(&store, &[alice.clone(), bob.clone()]).await;
    let seq = send(&store, say(&chat, &bob, "hi")).await.seq;
    set(
        &store,
        &chat,
        &alice,
        ChatSettingsUpdate {
            muted_until: Some(Some(Timestamp(4_000_000_000_000))),
            marked_unread: Some(true),
            ..Default::default()
        },
    )
    .await;
    set(&store, &chat, &alice, archive_at(Some(Timestamp(7)))).await;
    let seen = summary(&store, &chat, &alice).await;
    assert_eq!(seen.muted_until, Some(Timestamp(4_000_000_000_000)));
    assert_eq!(seen.archived_at, Some(Timestamp(7)));
    assert!(seen.marked_unread);
    let others = summary(&store, &chat, &bob).await;
    assert_eq!(
        (others.muted_until, others.archived_at, others.marked_unread),
        (None, None, false)
    );
    store
        .update_receipts(vec![ReceiptUpdate {
            conversation_id: chat.clone(),
            user_id: alice.clone(),
            delivered_seq: seq,
            read_seq: 0,
        }])
        .await
        .unwrap();
    assert!(
        summary(&store, &chat, &alice).await.marked_unread,
        "delivered only"
    );
    read_up_to(&store, &chat, &alice, seq).await;
    assert!(!summary(&store, &chat, &alice).await.marked_unread);
    set(
        &store,
        &chat,
        &alice,
        ChatSettingsUpdate {
            muted_until: Some(None),
            ..Default::default()
        },
    )
    .await;
    let unmuted = summary(&store, &chat, &alice).await;
    assert_eq!(
        (unmuted.muted_until, unmuted.archived_at),
        (None, Some(Timestamp(7)))
    );
}

/// Delete chat for me: what the chat held when the user cleared it leaves their history,
/// search, preview, counts and list, and only theirs; it moves no receipt; a new message
/// brings the chat back with only what came after.
pub async fn clearing_a_chat_hides_its_past_from_that_user_only(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let mut mention = say(&conversation_id, &alice, "bob, the walrus report");
    mention.mentions = vec![bob.clone()];
    let first = send(&store, mention).await;
    let hidden = send(&store, say(&conversation_id, &alice, "walrus again")).await;
    store
        .hide_message(&bob, &conversation_id, hidden.seq)
        .await
        .expect("hide");
    let last = send(&store, say(&conversation_id, &alice, "one more walrus")).await;
    assert_eq!(
        summary(&store, &conversation_id, &bob)
            .await
            .unread_mentions,
        1
    );

    let cleared = store
        .clear_conversation(&conversation_id, &bob)
        .await
        .expect("clear");
    assert_eq!(cleared, last.seq, "cleared up to the end");

    assert!(history(&store, &conversation_id, &bob).await.is_empty());
    assert_eq!(
        seqs_of(&history(&store, &conversation_id, &alice).await),
        (1..=last.seq).collect::<Vec<_>>(),
        "the others keep everything"
    );
    assert!(found(&store, &bob, "walrus", &conversation_id)
        .await
        .is_empty());
    assert!(search(&store, &bob, "walrus", None).await.is_empty());
    assert_eq!(
        found(&store, &alice, "walrus", &conversation_id).await,
        vec![first.seq, hidden.seq, last.seq]
    );
    let bobs = summary(&store, &conversation_id, &bob).await;
    assert_eq!(
        (bobs.cleared_seq, bobs.unread_count, bobs.unread_mentions),
        (cleared, 0, 0)
    );
    assert_eq!(bobs.last_message, None, "no preview");
    assert_eq!(bobs.read_seq, 0, "the read pointer does not move");
    let receipts = store
        .fetch_receipts(&conversation_id, last.seq)
        .await
        .expect("receipts");
    assert!(
        !receipts.read_by.contains(&bob),
        "nobody is told bob read it"
    );
    assert_eq!(
        summary(&store, &conversation_id, &alice).await.cleared_seq,
        0
    );
    assert!(list_all(&store, &bob, main_list(), 10).await.is_empty());
    assert!(list_all(&store, &bob, ListFilter::All, 10).await.is_empty());
    assert_eq!(
        list_all(&store, &alice, main_list(), 10).await,
        vec![conversation_id.clone()]
    );
    let positions = store.list_conversation_positions(&bob).await.unwrap();
    assert_eq!(
        positions,
        vec![ConversationPosition {
            conversation_id: conversation_id.clone(),
            last_seq: last.seq,
            read_seq: cleared,
            cleared_seq: cleared,
        }]
    );

    // A reaction to an old message is no preview: the chat stays out. Changes to what bob
    // cleared read as hidden for him: an edit would bring the text back.
    let reaction = send(&store, react(&conversation_id, &alice, first.seq, "👍")).await;
    let edited_again = send(
        &store,
        edit(&conversation_id, &alice, first.seq, "walrus secret"),
    )
    .await;
    for change in [&reaction, &edited_again] {
        let seen_by_bob = seen(&store, &conversation_id, &bob, change.seq).await;
        assert!(
            seen_by_bob.hidden && seen_by_bob.content.is_empty(),
            "{seen_by_bob:?}"
        );
        let seen_by_alice = seen(&store, &conversation_id, &alice, change.seq).await;
        assert!(!seen_by_alice.hidden && !seen_by_alice.content.is_empty());
    }
    assert!(list_all(&store, &bob, main_list(), 10).await.is_empty());
    assert_eq!(
        summary(&store, &conversation_id, &bob).await.unread_count,
        0
    );

    let mut again = say(&conversation_id, &alice, "walrus news, bob");
    again.mentions = vec![bob.clone()];
    let new = send(&store, again).await;
    assert_eq!(
        list_all(&store, &bob, main_list(), 10).await,
        vec![conversation_id.clone()]
    );
    let bobs = summary(&store, &conversation_id, &bob).await;
    assert_eq!((bobs.unread_count, bobs.unread_mentions), (1, 1));
    assert_eq!(bobs.last_message.map(|message| message.seq), Some(new.seq));
    assert_eq!(
        seqs_of(&history(&store, &conversation_id, &bob).await),
        vec![reaction.seq, edited_again.seq, new.seq],
        "the (hidden) change entries and the new message"
    );
    assert_eq!(
        found(&store, &bob, "walrus", &conversation_id).await,
        vec![new.seq]
    );
    // Reading forward from before the clear starts after it all the same.
    let page = store
        .fetch_messages(
            &conversation_id,
            SeqRange {
                after_seq: Some(0),
                before_seq: None,
            },
            PageFrom::Oldest,
            100,
            &bob,
        )
        .await
        .unwrap();
    assert_eq!(
        seqs_of(&page),
        vec![reaction.seq, edited_again.seq, new.seq]
    );
}

/// Clearing takes the chat out of the pins and the archive and drops the unread mark;
/// clearing again moves the point on; only a member may clear.
pub async fn clearing_resets_the_list_settings_and_needs_membership(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let mallory = user(&store, "mallory").await;
    let conversation_id = direct(&store, &alice, &bob).await;
    send(&store, say(&conversation_id, &alice, "hello")).await;
    set(&store, &conversation_id, &bob, pin_at(10)).await;
    set(
        &store,
        &conversation_id,
        &bob,
        ChatSettingsUpdate {
            marked_unread: Some(true),
            muted_until: Some(Some(MUTED_FOREVER)),
            ..Default::default()
        },
    )
    .await;
    let first = store
        .clear_conversation(&conversation_id, &bob)
        .await
        .unwrap();
    let bobs = summary(&store, &conversation_id, &bob).await;
    assert_eq!(bobs.pinned_at, None);
    assert_eq!(bobs.archived_at, None);
    assert!(!bobs.marked_unread);
    assert_eq!(bobs.muted_until, Some(MUTED_FOREVER), "a mute stays");

    set(
        &store,
        &conversation_id,
        &bob,
        archive_at(Some(Timestamp(5))),
    )
    .await;
    let later = send(&store, say(&conversation_id, &bob, "bob writes")).await;
    let second = store
        .clear_conversation(&conversation_id, &bob)
        .await
        .unwrap();
    assert_eq!((first, second), (later.seq - 1, later.seq));
    assert_eq!(
        summary(&store, &conversation_id, &bob).await.archived_at,
        None
    );
    assert!(history(&store, &conversation_id, &bob).await.is_empty());
    assert_eq!(
        history(&store, &conversation_id, &alice).await.len() as i64,
        later.seq
    );

    assert!(matches!(
        store.clear_conversation(&conversation_id, &mallory).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .clear_conversation(&ConversationId("c_missing".into()), &bob)
            .await,
        Err(StoreError::NotFound)
    ));
}
