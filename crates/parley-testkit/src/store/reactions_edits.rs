//! Cases: reactions and edits.

use super::*;

/// A `reaction` sets its sender's one reaction on the target: another one replaces it and
/// `""` clears it. `fetch_messages` counts them per emoji with `me` for the viewer;
/// `fetch_message` carries none; the entries stay in the `seq` stream.
pub async fn reactions_are_one_per_user_and_counted_per_viewer(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let dave = user(&store, "dave").await;
    let everyone = [alice.clone(), bob.clone(), carol.clone(), dave.clone()];
    let conversation_id = group(&store, &everyone).await;
    let target = send(&store, say(&conversation_id, &alice, "lunch?"))
        .await
        .seq;
    let outcomes = store
        .append_messages(vec![
            react(&conversation_id, &bob, target, "👍"),
            react(&conversation_id, &carol, target, "👍"),
            react(&conversation_id, &alice, target, "❤️"),
        ])
        .await
        .unwrap();
    let entry_seqs: Vec<i64> = outcomes
        .iter()
        .map(|outcome| {
            outcome
                .as_ref()
                .expect("a reaction to a message")
                .message
                .seq
        })
        .collect();
    assert_eq!(entry_seqs, vec![target + 1, target + 2, target + 3]);
    assert_eq!(
        reactions_seen(&store, &conversation_id, &bob, target).await,
        vec![count("👍", 2, true), count("❤️", 1, false)]
    );
    assert_eq!(
        reactions_seen(&store, &conversation_id, &alice, target).await,
        vec![count("👍", 2, false), count("❤️", 1, true)]
    );
    assert_eq!(
        reactions_seen(&store, &conversation_id, &dave, target).await,
        vec![count("👍", 2, false), count("❤️", 1, false)]
    );

    // Bob changes his mind: still one reaction of his, now the other one.
    send(&store, react(&conversation_id, &bob, target, "❤️")).await;
    assert_eq!(
        reactions_seen(&store, &conversation_id, &bob, target).await,
        vec![count("👍", 1, false), count("❤️", 2, true)],
        "a second reaction replaces the first"
    );
    // Carol takes hers back; dave clears one he never set.
    send(&store, react(&conversation_id, &carol, target, "")).await;
    send(&store, react(&conversation_id, &dave, target, "")).await;
    assert_eq!(
        reactions_seen(&store, &conversation_id, &carol, target).await,
        vec![count("❤️", 2, false)],
        "an emoji nobody uses any more is gone"
    );
    assert_eq!(
        store
            .fetch_reactions(&conversation_id, target)
            .await
            .unwrap(),
        vec![ReactionUsers {
            emoji: "❤️".into(),
            user_ids: vec![alice.clone(), bob.clone()],
        }]
    );
    let fetched = store.fetch_message(&conversation_id, target).await.unwrap();
    assert_eq!(fetched.content, "lunch?");
    assert!(
        fetched.reactions.is_empty(),
        "fetch_message has no reactions"
    );

    let entries: Vec<Message> = history(&store, &conversation_id, &alice)
        .await
        .into_iter()
        .filter(|message| message.seq > target)
        .collect();
    assert_eq!(
        seqs_of(&entries),
        (target + 1..=target + 6).collect::<Vec<_>>()
    );
    assert!(entries.iter().all(
        |entry| entry.content_type == ContentType::REACTION && entry.target_seq == Some(target)
    ));
}

/// `fetch_reactions` lists one entry per emoji in the order each was first used, its users
/// in the order they reacted with it (a user who switches is last of the new emoji), and
/// nothing for a message without reactions; `fetch_messages` counts in the same order.
pub async fn fetch_reactions_groups_by_emoji_in_order_of_first_use(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let dave = user(&store, "dave").await;
    let everyone = [alice.clone(), bob.clone(), carol.clone(), dave.clone()];
    let conversation_id = group(&store, &everyone).await;
    let target = send(&store, say(&conversation_id, &alice, "we shipped"))
        .await
        .seq;
    let quiet = send(&store, say(&conversation_id, &alice, "no one cares"))
        .await
        .seq;
    for (reactor, emoji) in [(&bob, "🎉"), (&carol, "👍"), (&dave, "🎉"), (&alice, "👍")] {
        send(&store, react(&conversation_id, reactor, target, emoji)).await;
    }
    let users = |emoji: &str, user_ids: &[&UserId]| ReactionUsers {
        emoji: emoji.to_owned(),
        user_ids: user_ids.iter().map(|&user_id| user_id.clone()).collect(),
    };
    assert_eq!(
        store
            .fetch_reactions(&conversation_id, target)
            .await
            .unwrap(),
        vec![users("🎉", &[&bob, &dave]), users("👍", &[&carol, &alice])]
    );
    assert_eq!(
        reactions_seen(&store, &conversation_id, &alice, target).await,
        vec![count("🎉", 2, false), count("👍", 2, true)]
    );

    send(&store, react(&conversation_id, &dave, target, "👍")).await;
    assert_eq!(
        store
            .fetch_reactions(&conversation_id, target)
            .await
            .unwrap(),
        vec![users("🎉", &[&bob]), users("👍", &[&carol, &alice, &dave])]
    );
    assert_eq!(
        reactions_seen(&store, &conversation_id, &dave, target).await,
        vec![count("🎉", 1, false), count("👍", 3, true)]
    );
    assert!(store
        .fetch_reactions(&conversation_id, quiet)
        .await
        .unwrap()
        .is_empty());
    assert!(reactions_seen(&store, &conversation_id, &alice, quiet)
        .await
        .is_empty());
}

/// Reaction entries move `last_seq` but are never unread (`rules::UNREAD`) and never the
/// preview, whoever sent them.
pub async fn reactions_are_never_unread_nor_the_preview(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let news = send(&store, say(&conversation_id, &bob, "news")).await.seq;
    let reply = send(&store, say(&conversation_id, &alice, "reply"))
        .await
        .seq;
    read_up_to(&store, &conversation_id, &alice, reply).await;
    send(&store, react(&conversation_id, &bob, reply, "👍")).await;
    let last = send(&store, react(&conversation_id, &bob, reply, "🎉"))
        .await
        .seq;

    let for_alice = summary(&store, &conversation_id, &alice).await;
    assert_eq!(for_alice.conversation.last_seq, last);
    assert_eq!(for_alice.unread_count, 0, "bob's reactions are not unread");
    assert_eq!(
        for_alice.last_message.as_ref().map(|message| message.seq),
        Some(reply)
    );
    let listed = store
        .list_conversations(&alice, ListFilter::All, None, 10, UNREAD)
        .await
        .unwrap();
    assert_eq!(listed[0].unread_count, 0);
    assert_eq!(
        listed[0].last_message.as_ref().map(|message| message.seq),
        Some(reply)
    );
    assert_eq!(
        summary(&store, &conversation_id, &bob).await.unread_count,
        2,
        "the system message and alice's reply, no reaction"
    );

    read_up_to(&store, &conversation_id, &bob, last).await;
    send(&store, react(&conversation_id, &alice, news, "😂")).await;
    let for_bob = summary(&store, &conversation_id, &bob).await;
    assert_eq!(for_bob.unread_count, 0, "alice's reaction is not unread");
    assert_eq!(
        for_bob.last_message.as_ref().map(|message| message.seq),
        Some(reply)
    );
}

/// An `edit` replaces the target's text and sets its `edited_at`, and every earlier edit
/// entry of the target now carries the newest text: no older version stays readable. The
/// preview is the target, edited, not the edit entry.
pub async fn an_edit_replaces_the_text_and_every_earlier_edit(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let original = send(&store, say(&conversation_id, &alice, "first draft")).await;
    let target = original.seq;
    let first_edit = send(
        &store,
        edit(&conversation_id, &alice, target, "second draft"),
    )
    .await;
    let second_edit = send(
        &store,
        edit(&conversation_id, &alice, target, "final words"),
    )
    .await;

    let edited = seen(&store, &conversation_id, &bob, target).await;
    assert_eq!(edited.content, "final words");
    assert_eq!(edited.content_type, ContentType::TEXT);
    assert_eq!(edited.message_id, original.message_id);
    assert!(!edited.deleted);
    let edited_at = edited.edited_at.expect("edited_at is set");
    assert!(edited_at >= original.created_at, "{edited_at:?}");
    for entry in [&first_edit, &second_edit] {
        let entry = seen(&store, &conversation_id, &bob, entry.seq).await;
        assert_eq!(entry.content_type, ContentType::EDIT);
        assert_eq!(entry.target_seq, Some(target));
        assert_eq!(entry.content, "final words", "edit {} rewritten", entry.seq);
    }
    let readable = history(&store, &conversation_id, &bob).await;
    assert!(
        readable
            .iter()
            .all(|message| !message.content.contains("draft")),
        "no older version is readable: {readable:?}"
    );
    let fetched = store.fetch_message(&conversation_id, target).await.unwrap();
    assert_eq!(
        (fetched.content.as_str(), fetched.edited_at.is_some()),
        ("final words", true)
    );
    assert_eq!(
        store
            .fetch_message(&conversation_id, first_edit.seq)
            .await
            .unwrap()
            .content,
        "final words"
    );
    let preview = summary(&store, &conversation_id, &bob)
        .await
        .last_message
        .expect("a preview");
    assert_eq!(
        (preview.seq, preview.content.as_str()),
        (target, "final words")
    );
}

/// Search finds an edited message by its new words only, as the target (never its edit
/// entries, whose text matches too), in its current state without reactions.
pub async fn an_edited_message_is_found_by_its_new_words_only(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let target = send(&store, say(&conversation_id, &alice, "meeting on tuesday"))
        .await
        .seq;
    send(&store, react(&conversation_id, &bob, target, "👍")).await;
    assert_eq!(
        found(&store, &bob, "tuesday", &conversation_id).await,
        vec![target]
    );
    send(
        &store,
        edit(&conversation_id, &alice, target, "meeting on thursday"),
    )
    .await;
    assert!(found(&store, &bob, "tuesday", &conversation_id)
        .await
        .is_empty());
    let results = search(&store, &bob, "thursday", Some(&conversation_id)).await;
    assert_eq!(seqs_of(&results), vec![target], "the target, not the edit");
    assert_eq!(results[0].content, "meeting on thursday");
    assert!(results[0].edited_at.is_some());
    assert!(results[0].reactions.is_empty(), "search has no reactions");
    assert_eq!(
        found(&store, &bob, "meeting", &conversation_id).await,
        vec![target]
    );

    send(
        &store,
        edit(&conversation_id, &alice, target, "call on friday"),
    )
    .await;
    for old in ["tuesday", "thursday", "meeting"] {
        assert!(
            found(&store, &bob, old, &conversation_id).await.is_empty(),
            "{old}"
        );
    }
    assert_eq!(
        found(&store, &alice, "friday", &conversation_id).await,
        vec![target]
    );
}
