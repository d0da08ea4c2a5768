//! Cases: mentions and delete for me.

use super::*;

/// Mentions are stored and returned with the message, in order; `unread_mentions` counts
/// a user's mentions after their read pointer, and moving the pointer lowers it.
pub async fn mentions_are_stored_and_counted_after_the_read_pointer(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone(), carol.clone()]).await;
    let mention = |sender: &UserId, content: &str, mentioned: &[&UserId]| {
        let mut message = say(&conversation_id, sender, content);
        message.mentions = mentioned.iter().map(|&user_id| user_id.clone()).collect();
        message
    };
    let first = send(&store, mention(&alice, "bob, look", &[&bob])).await;
    let both = send(&store, mention(&alice, "carol and bob", &[&carol, &bob])).await;
    assert_eq!(both.mentions, vec![carol.clone(), bob.clone()]);
    send(&store, mention(&alice, "nobody in particular", &[])).await;
    let last = send(&store, mention(&bob, "alice?", &[&alice])).await;

    let returned = seen(&store, &conversation_id, &alice, both.seq).await;
    assert_eq!(returned.mentions, vec![carol.clone(), bob.clone()]);
    assert_eq!(
        store
            .fetch_message(&conversation_id, both.seq)
            .await
            .unwrap()
            .mentions,
        vec![carol.clone(), bob.clone()]
    );
    let mentions_of = |user_id: UserId| {
        let store = store.clone();
        let conversation_id = conversation_id.clone();
        async move {
            let counted = summary(&store, &conversation_id, &user_id)
                .await
                .unread_mentions;
            let listed = store
                .list_conversations(&user_id, ListFilter::All, None, 10, UNREAD)
                .await
                .unwrap();
            assert_eq!(listed[0].unread_mentions, counted, "the list agrees");
            counted
        }
    };
    assert_eq!(mentions_of(bob.clone()).await, 2);
    assert_eq!(mentions_of(carol.clone()).await, 1);
    assert_eq!(mentions_of(alice.clone()).await, 1);

    read_up_to(&store, &conversation_id, &bob, first.seq).await;
    assert_eq!(mentions_of(bob.clone()).await, 1, "the first is read");
    read_up_to(&store, &conversation_id, &carol, first.seq).await;
    assert_eq!(mentions_of(carol.clone()).await, 1, "hers is after");
    read_up_to(&store, &conversation_id, &bob, last.seq).await;
    assert_eq!(mentions_of(bob.clone()).await, 0);
}

/// A mention the user hid, or in a message deleted for everyone, does not count; another
/// user's hiding changes nothing for them.
pub async fn hidden_or_deleted_mentions_do_not_count(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone(), carol.clone()]).await;
    let mention = |content: &str, mentioned: &[&UserId]| {
        let mut message = say(&conversation_id, &alice, content);
        message.mentions = mentioned.iter().map(|&user_id| user_id.clone()).collect();
        message
    };
    let first = send(&store, mention("one", &[&bob])).await.seq;
    let second = send(&store, mention("two", &[&bob, &carol])).await.seq;
    let third = send(&store, mention("three", &[&bob, &carol])).await.seq;
    let unread_mentions = |user_id: &UserId| {
        let store = store.clone();
        let conversation_id = conversation_id.clone();
        let user_id = user_id.clone();
        async move {
            summary(&store, &conversation_id, &user_id)
                .await
                .unread_mentions
        }
    };
    assert_eq!(
        (unread_mentions(&bob).await, unread_mentions(&carol).await),
        (3, 2)
    );
    store
        .hide_message(&bob, &conversation_id, first)
        .await
        .unwrap();
    assert_eq!(
        (unread_mentions(&bob).await, unread_mentions(&carol).await),
        (2, 2),
        "bob hid one"
    );
    store
        .hide_message(&carol, &conversation_id, third)
        .await
        .unwrap();
    assert_eq!(
        (unread_mentions(&bob).await, unread_mentions(&carol).await),
        (2, 1),
        "carol hid another, for herself only"
    );
    send(&store, delete(&conversation_id, &alice, second)).await;
    assert_eq!(
        (unread_mentions(&bob).await, unread_mentions(&carol).await),
        (1, 0),
        "a deleted message mentions nobody"
    );
}

/// `hide_message` hides a message from one user: it comes back in their history with
/// `hidden`, empty content and no mentions, reactions or reply, keeping its `seq` (no
/// gap); everyone else sees it as before. Hiding twice is fine; a missing `seq` is
/// `NotFound`.
pub async fn hide_message_is_for_the_hider_only_and_idempotent(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone(), carol.clone()]).await;
    let context = send(&store, say(&conversation_id, &alice, "context"))
        .await
        .seq;
    let mut message = say(&conversation_id, &alice, "embarrassing typo");
    message.mentions = vec![bob.clone()];
    message.reply_to_seq = Some(context);
    let original = send(&store, message).await;
    let target = original.seq;
    send(&store, react(&conversation_id, &carol, target, "👍")).await;

    for missing in [99, 0] {
        let refused = store.hide_message(&bob, &conversation_id, missing).await;
        assert!(
            matches!(refused, Err(StoreError::NotFound)),
            "seq {missing}: {refused:?}"
        );
    }
    let nowhere = store
        .hide_message(&bob, &ConversationId::from("c_missing"), 1)
        .await;
    assert!(matches!(nowhere, Err(StoreError::NotFound)), "{nowhere:?}");
    store
        .hide_message(&bob, &conversation_id, target)
        .await
        .unwrap();
    store
        .hide_message(&bob, &conversation_id, target)
        .await
        .expect("hiding twice is not an error");

    let last_seq = store
        .fetch_conversation(&conversation_id)
        .await
        .unwrap()
        .last_seq;
    assert_eq!(
        seqs_of(&history(&store, &conversation_id, &bob).await),
        (1..=last_seq).collect::<Vec<_>>(),
        "a hidden message keeps its seq"
    );
    let hidden = seen(&store, &conversation_id, &bob, target).await;
    assert!(hidden.hidden);
    assert_eq!(hidden.message_id, original.message_id);
    assert_eq!(hidden.content, "");
    assert!(hidden.mentions.is_empty() && hidden.reactions.is_empty());
    assert_eq!(hidden.reply_to_seq, None);
    for viewer in [&alice, &carol] {
        let visible = seen(&store, &conversation_id, viewer, target).await;
        assert!(!visible.hidden);
        assert_eq!(visible.content, "embarrassing typo");
        assert_eq!(visible.mentions, vec![bob.clone()]);
        assert_eq!(visible.reply_to_seq, Some(context));
        assert_eq!(visible.reactions, vec![count("👍", 1, viewer == &carol)]);
    }
    assert!(!seen(&store, &conversation_id, &bob, context).await.hidden);
}

/// A hidden message is not the hider's preview (the newest entry they did not hide and
/// that is not a change is); others' previews are unchanged.
pub async fn hidden_messages_leave_the_hiders_preview(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let report = send(&store, say(&conversation_id, &alice, "quarterly report"))
        .await
        .seq;
    let numbers = send(&store, say(&conversation_id, &alice, "quarterly numbers"))
        .await
        .seq;
    store
        .hide_message(&bob, &conversation_id, numbers)
        .await
        .unwrap();
    assert_eq!(
        preview_seq(&store, &conversation_id, &bob).await,
        Some(report)
    );
    assert_eq!(
        preview_seq(&store, &conversation_id, &alice).await,
        Some(numbers),
        "hidden for bob only"
    );
    let listed = store
        .list_conversations(&bob, ListFilter::All, None, 10, UNREAD)
        .await
        .unwrap();
    assert_eq!(
        listed[0].last_message.as_ref().map(|message| message.seq),
        Some(report)
    );
    send(&store, react(&conversation_id, &bob, report, "👍")).await;
    assert_eq!(
        preview_seq(&store, &conversation_id, &bob).await,
        Some(report)
    );
    store
        .hide_message(&bob, &conversation_id, report)
        .await
        .unwrap();
    assert_eq!(
        preview_seq(&store, &conversation_id, &bob).await,
        Some(1),
        "back to the system message"
    );
    assert_eq!(
        store
            .fetch_conversation(&conversation_id)
            .await
            .unwrap()
            .last_seq,
        numbers + 1,
        "hiding writes nothing to the seq stream"
    );
}
