//! Cases: full-text search.

use super::*;

/// Each term matches the words it is a prefix of, whole words only: `hol` finds
/// "Holiday", `liday` does not, and a term longer than the word finds nothing.
pub async fn search_matches_whole_word_prefixes(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let conversation_id = group(&store, std::slice::from_ref(&alice)).await;
    let holiday = send(
        &store,
        say(&conversation_id, &alice, "Holiday plans for August"),
    )
    .await
    .seq;
    let party = send(
        &store,
        say(&conversation_id, &alice, "an alcohol-free party"),
    )
    .await
    .seq;
    for (query, expected) in [
        ("hol", vec![holiday]),
        ("Holiday", vec![holiday]),
        ("plan", vec![holiday]),
        ("aug", vec![holiday]),
        ("free", vec![party]),
        ("alcohol", vec![party]),
        ("liday", vec![]),
        ("cohol", vec![]),
        ("holidays", vec![]),
        ("partying", vec![]),
    ] {
        assert_eq!(
            found(&store, &alice, query, &conversation_id).await,
            expected,
            "{query:?}"
        );
    }
}

/// Search ignores case and accents both ways: `creme` finds "Crème", `CRÈME` finds
/// "creme", decomposed or composed.
pub async fn search_ignores_case_and_accents(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let conversation_id = group(&store, std::slice::from_ref(&alice)).await;
    let brulee = send(
        &store,
        say(&conversation_id, &alice, "Crème brûlée tonight"),
    )
    .await
    .seq;
    let fraiche = send(
        &store,
        say(&conversation_id, &alice, "creme fraiche please"),
    )
    .await
    .seq;
    let cream = send(&store, say(&conversation_id, &alice, "CREAM"))
        .await
        .seq;
    for (query, expected) in [
        ("creme", vec![brulee, fraiche]),
        ("CRÈME", vec![brulee, fraiche]),
        ("Cre\u{300}me", vec![brulee, fraiche]),
        ("crem", vec![brulee, fraiche]),
        ("cre", vec![brulee, fraiche, cream]),
        ("brulee", vec![brulee]),
        ("BRÛL", vec![brulee]),
        ("fraîche", vec![fraiche]),
        ("Cream", vec![cream]),
    ] {
        assert_eq!(
            found(&store, &alice, query, &conversation_id).await,
            expected,
            "{query:?}"
        );
    }
}

/// Every term must match a word of the message, in any order.
pub async fn search_requires_every_term(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let conversation_id = group(&store, std::slice::from_ref(&alice)).await;
    let red_apple = send(&store, say(&conversation_id, &alice, "red apple pie"))
        .await
        .seq;
    let green_apple = send(&store, say(&conversation_id, &alice, "green apple"))
        .await
        .seq;
    let red_car = send(&store, say(&conversation_id, &alice, "a red car"))
        .await
        .seq;
    for (query, expected) in [
        ("red apple", vec![red_apple]),
        ("apple red", vec![red_apple]),
        ("re ap", vec![red_apple]),
        ("apple", vec![red_apple, green_apple]),
        ("red", vec![red_apple, red_car]),
        ("red apple pie car", vec![]),
        ("red banana", vec![]),
    ] {
        assert_eq!(
            found(&store, &alice, query, &conversation_id).await,
            expected,
            "{query:?}"
        );
    }
}

/// Results come newest `message_id` first, across conversations; paging with `before`
/// (the last result's id, exclusive) and `limit` returns each result once, none skipped.
pub async fn search_is_newest_first_and_pages_without_gaps(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let first_id = group(&store, std::slice::from_ref(&alice)).await;
    let second_id = group(&store, std::slice::from_ref(&alice)).await;
    let mut expected: Vec<MessageId> = Vec::new();
    for index in 0..7 {
        let conversation_id = if index % 2 == 0 {
            &first_id
        } else {
            &second_id
        };
        let report = say(conversation_id, &alice, &format!("weekly report {index}"));
        expected.push(send(&store, report).await.message_id);
        send(&store, say(conversation_id, &alice, "unrelated chatter")).await;
    }
    expected.sort_unstable_by(|one, other| other.cmp(one));
    let terms = query_terms("report");
    let page = |before: Option<MessageId>, limit: u32| {
        let store = store.clone();
        let alice = alice.clone();
        let terms = terms.clone();
        async move {
            store
                .search_messages(SearchQuery {
                    user_id: &alice,
                    terms: &terms,
                    conversation_id: None,
                    before: before.as_ref(),
                    limit,
                })
                .await
                .expect("search")
                .into_iter()
                .map(|message| message.message_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(None, 100).await, expected, "newest message_id first");
    assert_eq!(page(Some(expected[0].clone()), 100).await, expected[1..]);
    let mut paged: Vec<MessageId> = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let next = page(paged.last().cloned(), 3).await;
        if next.is_empty() {
            break;
        }
        sizes.push(next.len());
        paged.extend(next);
        assert!(sizes.len() <= 3, "paging ends");
    }
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(paged, expected, "every result once, in order");
}

/// `conversation_id` restricts the search to that conversation; without it the search
/// covers all the user's conversations and never another's.
pub async fn search_is_restricted_to_the_given_conversation(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let mallory = user(&store, "mallory").await;
    let shared_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let own_id = group(&store, std::slice::from_ref(&alice)).await;
    let foreign_id = group(&store, std::slice::from_ref(&mallory)).await;
    let shared = vec![
        send(&store, say(&shared_id, &alice, "budget draft"))
            .await
            .seq,
        send(&store, say(&shared_id, &bob, "budget approved"))
            .await
            .seq,
    ];
    let own = send(&store, say(&own_id, &alice, "my budget")).await.seq;
    send(&store, say(&foreign_id, &mallory, "stolen budget")).await;

    assert_eq!(found(&store, &alice, "budget", &shared_id).await, shared);
    assert_eq!(found(&store, &alice, "budget", &own_id).await, vec![own]);
    assert!(
        found(&store, &alice, "budget", &foreign_id)
            .await
            .is_empty(),
        "not her conversation"
    );
    let mut everywhere: Vec<(ConversationId, i64)> = search(&store, &alice, "budget", None)
        .await
        .into_iter()
        .map(|message| (message.conversation_id, message.seq))
        .collect();
    everywhere.sort();
    let mut expected = vec![
        (shared_id.clone(), shared[0]),
        (shared_id.clone(), shared[1]),
        (own_id.clone(), own),
    ];
    expected.sort();
    assert_eq!(everywhere, expected);
    let for_bob: Vec<ConversationId> = search(&store, &bob, "budget", None)
        .await
        .into_iter()
        .map(|message| message.conversation_id)
        .collect();
    assert_eq!(for_bob, vec![shared_id.clone(), shared_id]);
}

/// Search covers the conversations the user is a member of now: a removed member finds
/// nothing there any more (the messages from when they were in included); back in, they
/// find them again.
pub async fn search_covers_only_conversations_the_user_is_in_now(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let launch = send(&store, say(&conversation_id, &alice, "launch date is set"))
        .await
        .seq;
    assert_eq!(
        found(&store, &bob, "launch", &conversation_id).await,
        vec![launch]
    );
    remove_member(&store, &conversation_id, &alice, &bob).await;
    assert!(found(&store, &bob, "launch", &conversation_id)
        .await
        .is_empty());
    assert!(search(&store, &bob, "launch", None).await.is_empty());
    assert_eq!(
        found(&store, &alice, "launch", &conversation_id).await,
        vec![launch]
    );
    add_member(&store, &conversation_id, &alice, &bob)
        .await
        .unwrap();
    assert_eq!(
        seqs_of(&search(&store, &bob, "launch", None).await),
        vec![launch],
        "a member again"
    );
}

/// Only ordinary messages are results: not system messages, not change entries (an edit
/// entry whose text matches is not a result, its target is).
pub async fn search_skips_system_messages_and_change_entries(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    // This suite's system messages say "hello system:…".
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    add_member(&store, &conversation_id, &alice, &carol)
        .await
        .unwrap();
    let hello = send(&store, say(&conversation_id, &bob, "hello world"))
        .await
        .seq;
    assert_eq!(
        found(&store, &alice, "hello", &conversation_id).await,
        vec![hello],
        "system messages are not results"
    );
    let target = send(&store, say(&conversation_id, &alice, "alpha version"))
        .await
        .seq;
    send(
        &store,
        edit(&conversation_id, &alice, target, "omega version"),
    )
    .await;
    send(&store, react(&conversation_id, &bob, target, "👍")).await;
    let doomed = send(&store, say(&conversation_id, &alice, "omega mistake"))
        .await
        .seq;
    send(&store, delete(&conversation_id, &alice, doomed)).await;
    for query in ["omega", "version", "omega version"] {
        let results = search(&store, &carol, query, Some(&conversation_id)).await;
        assert_eq!(seqs_of(&results), vec![target], "{query:?}");
        assert_eq!(results[0].content_type, ContentType::TEXT);
    }
}

/// A message one user hid leaves their search only: the others still find it.
pub async fn search_leaves_out_only_what_the_searcher_hid(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let secret = send(&store, say(&conversation_id, &alice, "secret recipe"))
        .await
        .seq;
    let book = send(&store, say(&conversation_id, &bob, "recipe book"))
        .await
        .seq;
    store
        .hide_message(&bob, &conversation_id, secret)
        .await
        .unwrap();
    assert_eq!(
        found(&store, &bob, "recipe", &conversation_id).await,
        vec![book]
    );
    assert_eq!(
        found(&store, &alice, "recipe", &conversation_id).await,
        vec![secret, book]
    );
    store
        .hide_message(&alice, &conversation_id, book)
        .await
        .unwrap();
    assert_eq!(
        found(&store, &alice, "recipe", &conversation_id).await,
        vec![secret]
    );
    assert_eq!(
        found(&store, &bob, "recipe", &conversation_id).await,
        vec![book]
    );
}

/// `forwarded` is stored and read back everywhere a message is: the append's answer,
/// history, `fetch_message`, the client-id lookup, search and the preview.
pub async fn forwarded_copies_are_marked(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let plain = send(&store, say(&conversation_id, &alice, "look again")).await;
    let mut copy = say(&conversation_id, &alice, "look at this");
    copy.forwarded = true;
    let client_msg_id = copy.client_msg_id.clone();
    let forwarded = send(&store, copy).await;
    assert!(forwarded.forwarded && !plain.forwarded);
    assert!(
        seen(&store, &conversation_id, &bob, forwarded.seq)
            .await
            .forwarded
    );
    assert!(
        !seen(&store, &conversation_id, &bob, plain.seq)
            .await
            .forwarded
    );
    assert!(
        store
            .fetch_message(&conversation_id, forwarded.seq)
            .await
            .unwrap()
            .forwarded
    );
    let by_client_id = store
        .fetch_message_by_client_id(&alice, &client_msg_id)
        .await
        .unwrap()
        .expect("stored");
    assert!(by_client_id.forwarded);
    let mut results: Vec<(i64, bool)> = search(&store, &bob, "look", Some(&conversation_id))
        .await
        .into_iter()
        .map(|message| (message.seq, message.forwarded))
        .collect();
    results.sort_unstable();
    assert_eq!(results, vec![(plain.seq, false), (forwarded.seq, true)]);
    let preview = summary(&store, &conversation_id, &bob)
        .await
        .last_message
        .expect("a preview");
    assert_eq!((preview.seq, preview.forwarded), (forwarded.seq, true));
}

/// `fetch_message` reads one message (or change entry) in its current state without
/// reactions, as the history shows it otherwise; `NotFound` for a `seq` that is not there.
pub async fn fetch_message_reads_one_message_in_its_current_state(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let target = send(&store, say(&conversation_id, &alice, "before"))
        .await
        .seq;
    send(&store, react(&conversation_id, &bob, target, "👍")).await;
    let edit_entry = send(&store, edit(&conversation_id, &alice, target, "after"))
        .await
        .seq;
    let fetched = store.fetch_message(&conversation_id, target).await.unwrap();
    let in_history = seen(&store, &conversation_id, &alice, target).await;
    assert_eq!(in_history.reactions.len(), 1);
    assert_eq!(
        fetched,
        Message {
            reactions: Vec::new(),
            ..in_history
        }
    );
    assert_eq!(fetched.content, "after");
    let entry = store
        .fetch_message(&conversation_id, edit_entry)
        .await
        .unwrap();
    assert_eq!(
        (entry.content_type, entry.target_seq),
        (ContentType::EDIT, Some(target))
    );
    for (conversation, seq) in [
        (&conversation_id, 99),
        (&conversation_id, 0),
        (&ConversationId::from("c_missing"), 1),
    ] {
        let missing = store.fetch_message(conversation, seq).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound)),
            "{conversation} {seq}: {missing:?}"
        );
    }
}
