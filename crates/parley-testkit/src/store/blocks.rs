//! Cases: blocks between users, and the direct chat they stop.

use super::*;
use parley_core::store::{AppendRefusal, BlockRelations};

fn set(users: &[&UserId]) -> HashSet<UserId> {
    users.iter().map(|&user_id| user_id.clone()).collect()
}

/// A block stops the pair's direct chat both ways, leaves their groups alone, and is
/// read back from both sides; nothing refused is stored or uses a `seq`.
pub async fn a_block_stops_the_direct_chat_both_ways(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let chat = direct(&store, &alice, &bob).await;
    let with_carol = direct(&store, &alice, &carol).await;
    let team = group(&store, &[alice.clone(), bob.clone(), carol.clone()]).await;
    send(&store, say(&chat, &bob, "before")).await;

    assert!(store
        .block_user(&alice, &bob, Timestamp(1_000))
        .await
        .unwrap());
    assert!(!store
        .block_user(&alice, &bob, Timestamp(2_000))
        .await
        .unwrap());
    for sender in [&bob, &alice] {
        assert_eq!(
            append_one(&store, say(&chat, sender, "refused")).await,
            Err(AppendRefusal::Blocked)
        );
    }
    // Changes too: no reaction across the block.
    assert_eq!(
        append_one(&store, react(&chat, &bob, 1, "👍")).await,
        Err(AppendRefusal::Blocked)
    );
    let stored = history(&store, &chat, &alice).await;
    assert_eq!(seqs_of(&stored), vec![1], "nothing refused is stored");
    assert_eq!(store.fetch_conversation(&chat).await.unwrap().last_seq, 1);
    // Groups and other direct chats still flow.
    send(&store, say(&team, &bob, "to the group")).await;
    send(&store, say(&team, &alice, "back to the group")).await;
    send(&store, say(&with_carol, &alice, "hi carol")).await;

    assert_eq!(
        store.fetch_block_relations(&alice).await.unwrap(),
        BlockRelations {
            blocked: set(&[&bob]),
            blocked_by: HashSet::new(),
        }
    );
    let of_bob = store.fetch_block_relations(&bob).await.unwrap();
    assert_eq!(of_bob.blocked_by, set(&[&alice]));
    assert!(of_bob.with(&alice) && !of_bob.with(&carol));
    let listed = store.list_blocked(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0.user_id, bob);
    assert_eq!(
        listed[0].1,
        Timestamp(1_000),
        "blocking again keeps the first time"
    );
    assert!(store.list_blocked(&bob).await.unwrap().is_empty());

    assert!(store.unblock_user(&alice, &bob).await.unwrap());
    assert!(!store.unblock_user(&alice, &bob).await.unwrap());
    send(&store, say(&chat, &bob, "after")).await;
    assert!(store
        .fetch_block_relations(&alice)
        .await
        .unwrap()
        .all()
        .next()
        .is_none());
}

/// While either of two blocks stands the chat stays stopped; a direct chat created after
/// a block starts stopped; blocking someone who does not exist writes nothing.
pub async fn blocks_both_ways_and_new_direct_chats(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let dave = user(&store, "dave").await;
    let chat = direct(&store, &alice, &bob).await;
    store.block_user(&alice, &bob, Timestamp(1)).await.unwrap();
    store.block_user(&bob, &alice, Timestamp(2)).await.unwrap();
    store.unblock_user(&alice, &bob).await.unwrap();
    assert_eq!(
        append_one(&store, say(&chat, &alice, "still stopped")).await,
        Err(AppendRefusal::Blocked)
    );
    store.unblock_user(&bob, &alice).await.unwrap();
    send(&store, say(&chat, &alice, "open again")).await;

    // Dave blocks Alice before they have a chat: the new chat starts stopped.
    store.block_user(&dave, &alice, Timestamp(3)).await.unwrap();
    let later = direct(&store, &alice, &dave).await;
    assert_eq!(
        append_one(&store, say(&later, &alice, "hello?")).await,
        Err(AppendRefusal::Blocked)
    );
    // "People I chat with": the direct chats where one has written (Alice wrote to Bob;
    // nobody wrote in the chat with Dave).
    assert_eq!(
        store.fetch_direct_partners(&alice).await.unwrap(),
        set(&[&bob])
    );
    assert!(store.fetch_direct_partners(&bob).await.unwrap().is_empty());
    assert!(store.fetch_direct_partners(&dave).await.unwrap().is_empty());

    let nobody = UserId::from("u_nobody");
    assert!(matches!(
        store.block_user(&alice, &nobody, Timestamp(4)).await,
        Err(StoreError::MissingReference | StoreError::NotFound)
    ));
    assert!(store.list_blocked(&alice).await.unwrap().is_empty());
}
