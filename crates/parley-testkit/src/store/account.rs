//! Cases: logging out everywhere, deleting an account (a tombstone stays, the username
//! is held), and what an export reads.

use super::*;
use parley_core::store::{AppendRefusal, Conflict};
use parley_proto::LastSeenPrivacy;

pub(crate) async fn device(store: &Arc<dyn Store>, user_id: &UserId, token: u8) -> DeviceId {
    let device_id = ids::new_device_id();
    store
        .insert_device(NewDevice {
            device_id: device_id.clone(),
            user_id: user_id.clone(),
            name: None,
            token_hash: vec![token; 32],
            created_at: Timestamp::now(),
        })
        .await
        .expect("device");
    device_id
}

fn named(username: &str, user_id: UserId, created_at: Timestamp) -> UserRecord {
    UserRecord {
        user_id,
        username: username.to_owned(),
        password_hash: "$argon2id$test".to_owned(),
        display_name: username.to_owned(),
        status_message: None,
        avatar_url: None,
        avatar_media_id: None,
        push_previews: false,
        last_seen_privacy: LastSeenPrivacy::Everyone,
        last_seen_at: None,
        created_at,
        deleted_at: None,
    }
}

/// Every token of the user goes at once; other users' stay.
pub async fn logging_out_everywhere_revokes_every_token(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let mut devices = vec![
        device(&store, &alice, 1).await,
        device(&store, &alice, 2).await,
    ];
    device(&store, &bob, 3).await;
    let mut revoked = store.delete_devices(&alice).await.unwrap();
    revoked.sort();
    devices.sort();
    assert_eq!(revoked, devices);
    for token in [1, 2] {
        assert!(matches!(
            store.fetch_session(&[token; 32]).await,
            Err(StoreError::NotFound)
        ));
    }
    assert!(store.fetch_session(&[3; 32]).await.is_ok());
    assert!(store.delete_devices(&alice).await.unwrap().is_empty());
}

/// A deleted account: tokens gone, profile a tombstone not found by search, blocks and
/// settings gone, direct chats stopped both ways, messages kept; the username is held
/// until the time given, then free.
pub async fn a_deleted_account_leaves_a_tombstone(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let phone = device(&store, &alice, 7).await;
    let chat = direct(&store, &alice, &bob).await;
    let sent = send(&store, say(&chat, &alice, "hello from alice")).await;
    store
        .block_user(&alice, &carol, Timestamp(1))
        .await
        .unwrap();
    store
        .block_user(&carol, &alice, Timestamp(2))
        .await
        .unwrap();

    let at = Timestamp::now();
    let free_at = Timestamp(at.millis() + 30 * 86_400_000);
    assert_eq!(
        store.delete_account(&alice, at, free_at).await.unwrap(),
        vec![phone]
    );
    assert!(matches!(
        store.fetch_session(&[7; 32]).await,
        Err(StoreError::NotFound)
    ));
    let tombstone = store.fetch_user(&alice).await.unwrap();
    assert_eq!(tombstone.display_name, "Deleted account");
    assert_eq!(tombstone.deleted_at, Some(at));
    assert_ne!(tombstone.username, "alice");
    assert!(tombstone.password_hash.is_empty());
    assert_eq!(tombstone.last_seen_privacy, LastSeenPrivacy::Nobody);
    assert!(matches!(
        store.fetch_user_by_username("alice").await,
        Err(StoreError::NotFound)
    ));
    for query in ["alice", "deleted", &tombstone.username] {
        assert!(
            store.search_users(query, 10).await.unwrap().is_empty(),
            "{query:?} finds no deleted account"
        );
    }
    assert!(store
        .fetch_block_relations(&carol)
        .await
        .unwrap()
        .all()
        .next()
        .is_none());
    assert_eq!(
        append_one(&store, say(&chat, &bob, "are you there?")).await,
        Err(AppendRefusal::Blocked)
    );
    let kept = history(&store, &chat, &bob).await;
    assert_eq!(kept.len(), 1);
    assert_eq!((&kept[0].sender_id, kept[0].seq), (&alice, sent.seq));
    assert_eq!(kept[0].content, "hello from alice");

    // Held until `free_at`, then free.
    let early = named("alice", ids::new_user_id(), Timestamp(at.millis() + 1));
    assert!(matches!(
        store.insert_user(early).await,
        Err(StoreError::Conflict(Conflict::Username))
    ));
    let later = named("alice", ids::new_user_id(), Timestamp(free_at.millis() + 1));
    store.insert_user(later).await.unwrap();
    // Deleting again changes nothing more.
    assert!(store
        .delete_account(&alice, at, free_at)
        .await
        .unwrap()
        .is_empty());
}

/// What a user sent, by conversation (those they left too), without others' messages or
/// system messages.
pub async fn an_export_reads_only_what_the_user_sent(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let team = group(&store, &[alice.clone(), bob.clone()]).await;
    let other = group(&store, &[bob.clone(), alice.clone()]).await;
    let first = send(&store, say(&team, &bob, "bob's one")).await;
    send(&store, say(&team, &alice, "alice's one")).await;
    send(&store, say(&other, &bob, "bob's two")).await;
    remove_member(&store, &team, &bob, &bob).await;
    let mut conversations = store.fetch_sent_conversations(&bob).await.unwrap();
    conversations.sort();
    let mut expected = vec![team.clone(), other.clone()];
    expected.sort();
    assert_eq!(conversations, expected, "the group bob left too");
    let in_team = store.fetch_sent_messages(&bob, &team).await.unwrap();
    assert_eq!(seqs_of(&in_team), vec![first.seq]);
    assert!(in_team.iter().all(|message| message.sender_id == bob));
    let carol = user(&store, "carol").await;
    assert!(store
        .fetch_sent_conversations(&carol)
        .await
        .unwrap()
        .is_empty());
}
