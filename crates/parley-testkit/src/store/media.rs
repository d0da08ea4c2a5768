//! Cases: media records (pending, completed, quota usage), who may read them through the
//! messages that carry them, and what `collect_media` takes.

use super::*;
use parley_core::store::{MediaCollection, MediaRecord, StoreResult};
use parley_proto::{Media, MediaId, MediaStatus, Thumbnail};

fn pending(owner_id: &UserId, size: u64, created_at: Timestamp) -> MediaRecord {
    MediaRecord {
        media: Media {
            media_id: ids::new_media_id(),
            status: MediaStatus::Pending,
            content_type: "image/png".into(),
            size,
            filename: Some("été.png".into()),
            width: None,
            height: None,
            duration_ms: Some(1500),
            thumbnail: None,
            blurhash: None,
        },
        owner_id: owner_id.clone(),
        declared_type: "image/png".into(),
        sha256: Some("ab".repeat(32)),
        created_at,
        sent: false,
    }
}

/// Stores a pending upload and completes it as processing would.
async fn ready(store: &Arc<dyn Store>, owner_id: &UserId, created_at: Timestamp) -> Media {
    let record = pending(owner_id, 1000, created_at);
    store
        .insert_media(record.clone(), u64::MAX)
        .await
        .expect("insert media");
    let done = Media {
        status: MediaStatus::Ready,
        size: 900,
        width: Some(640),
        height: Some(480),
        duration_ms: None,
        thumbnail: Some(Thumbnail {
            width: 320,
            height: 240,
        }),
        blurhash: Some("LEHV6nWB2yk8pyo0adR*.7kCMdnj".into()),
        ..record.media
    };
    store.complete_media(&done).await.expect("complete").media
}

fn with_attachments(mut message: NewMessage, attachments: Vec<Media>) -> NewMessage {
    message.attachments = attachments;
    message
}

async fn readable(store: &Arc<dyn Store>, media_id: &MediaId, user_id: &UserId) -> bool {
    store.media_readable(media_id, user_id).await.unwrap()
}

/// A pending upload reads back as stored; completing it once sets what processing
/// found, and completing again changes nothing. Usage counts every upload of the owner.
pub async fn media_records_complete_once(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let record = pending(&alice, 1000, Timestamp::now());
    store.insert_media(record.clone(), u64::MAX).await.unwrap();
    assert_eq!(store.fetch_media(record.media_id()).await.unwrap(), record);
    assert!(matches!(
        store.fetch_media(&MediaId::from("m_none")).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .insert_media(
                pending(&UserId::from("u_nobody"), 1, Timestamp::now()),
                u64::MAX
            )
            .await,
        Err(StoreError::MissingReference)
    ));
    let done = Media {
        status: MediaStatus::Ready,
        size: 800,
        width: Some(10),
        height: Some(20),
        ..record.media.clone()
    };
    let completed = store.complete_media(&done).await.unwrap();
    assert_eq!(completed.media, done);
    assert_eq!(completed.owner_id, alice);
    let again = Media {
        size: 1,
        ..done.clone()
    };
    assert_eq!(store.complete_media(&again).await.unwrap().media, done);
    store
        .insert_media(pending(&alice, 5000, Timestamp::now()), u64::MAX)
        .await
        .unwrap();
    assert_eq!(store.media_usage(&alice).await.unwrap(), 5800);
    assert_eq!(store.media_usage(&bob).await.unwrap(), 0);
}

/// One completion at a time holds an upload: a second claim fails until the first is
/// released or runs out; a ready or unknown upload cannot be claimed.
pub async fn one_completion_claims_an_upload(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let record = pending(&alice, 1000, Timestamp::now());
    store.insert_media(record.clone(), u64::MAX).await.unwrap();
    let id = record.media_id();
    let now = Timestamp::now();
    let later = Timestamp(now.millis() + 60_000);
    assert!(store.claim_media(id, now, later).await.unwrap());
    assert!(!store.claim_media(id, now, later).await.unwrap());
    store.release_media_claim(id).await.unwrap();
    assert!(store.claim_media(id, now, later).await.unwrap());
    // Past the claim's time, another completion may take over.
    let after = Timestamp(later.millis() + 1);
    assert!(store
        .claim_media(id, after, Timestamp(after.millis() + 60_000))
        .await
        .unwrap());
    let done = Media {
        status: MediaStatus::Ready,
        ..record.media.clone()
    };
    store.complete_media(&done).await.unwrap();
    store.release_media_claim(id).await.unwrap();
    assert!(!store.claim_media(id, after, later).await.unwrap());
    assert!(!store
        .claim_media(&MediaId::from("m_none"), now, later)
        .await
        .unwrap());
}

/// An upload is recorded only within the owner's quota, counted with their pending
/// uploads; uploads started at the same moment never pass it together.
pub async fn the_media_quota_holds_under_concurrent_uploads(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let quota = 10_000;
    store
        .insert_media(pending(&alice, 6000, Timestamp::now()), quota)
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_media(pending(&alice, 4001, Timestamp::now()), quota)
            .await,
        Err(StoreError::Conflict(
            parley_core::store::Conflict::MediaQuota { used: 6000 }
        ))
    ));
    store
        .insert_media(pending(&bob, 4001, Timestamp::now()), quota)
        .await
        .unwrap();
    let attempts: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let record = pending(&alice, 1000, Timestamp::now());
            tokio::spawn(async move { store.insert_media(record, quota).await })
        })
        .collect();
    let mut accepted = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(()) => accepted += 1,
            Err(StoreError::Conflict(parley_core::store::Conflict::MediaQuota { .. })) => {}
            Err(error) => panic!("unexpected {error:?}"),
        }
    }
    assert_eq!(accepted, 4);
    assert_eq!(store.media_usage(&alice).await.unwrap(), quota);
}

/// Attachments are stored with the message and read back with it; its members may read
/// the media while the message carries it, others (and members who hid it, or cleared
/// the chat past it) may not; a delete for everyone takes the attachments away.
pub async fn attachments_make_media_readable_to_members(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let eve = user(&store, "eve").await;
    let team = group(&store, &[alice.clone(), bob.clone(), carol.clone()]).await;
    let photo = ready(&store, &alice, Timestamp::now()).await;
    assert!(!readable(&store, &photo.media_id, &bob).await);
    let sent = send(
        &store,
        with_attachments(say(&team, &alice, "look"), vec![photo.clone()]),
    )
    .await;
    assert_eq!(sent.attachments, vec![photo.clone()]);
    let read_back = history(&store, &team, &bob).await;
    assert_eq!(read_back.last().unwrap().attachments, vec![photo.clone()]);
    assert_eq!(
        store
            .fetch_message(&team, sent.seq)
            .await
            .unwrap()
            .attachments,
        vec![photo.clone()]
    );
    assert!(store.fetch_media(&photo.media_id).await.unwrap().sent);
    for member in [&bob, &carol] {
        assert!(readable(&store, &photo.media_id, member).await);
    }
    assert!(!readable(&store, &photo.media_id, &eve).await);
    store.hide_message(&carol, &team, sent.seq).await.unwrap();
    assert!(!readable(&store, &photo.media_id, &carol).await);
    assert!(history(&store, &team, &carol)
        .await
        .last()
        .unwrap()
        .attachments
        .is_empty());
    remove_member(&store, &team, &alice, &bob).await;
    assert!(!readable(&store, &photo.media_id, &bob).await);
    send(&store, delete(&team, &alice, sent.seq)).await;
    let deleted = store.fetch_message(&team, sent.seq).await.unwrap();
    assert!(deleted.deleted && deleted.attachments.is_empty());
    assert!(!readable(&store, &photo.media_id, &alice).await);
}

/// Never-sent uploads go once older than the cut-off; sent ones stay while a message
/// carries them and go after the last one is deleted; each is returned once.
pub async fn collection_takes_unsent_and_released_media(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let chat = direct(&store, &alice, &bob).await;
    let old = Timestamp(Timestamp::now().millis() - 3 * 86_400_000);
    let unsent_old = ready(&store, &alice, old).await;
    let unsent_new = ready(&store, &alice, Timestamp::now()).await;
    let sent_old = ready(&store, &alice, old).await;
    let twice = ready(&store, &alice, old).await;
    let first = send(
        &store,
        with_attachments(
            say(&chat, &alice, "a"),
            vec![sent_old.clone(), twice.clone()],
        ),
    )
    .await;
    let second = send(
        &store,
        with_attachments(say(&chat, &bob, "fwd"), vec![twice.clone()]),
    )
    .await;
    let cut_off = MediaCollection {
        unsent_before: Timestamp(Timestamp::now().millis() - 86_400_000),
        limit: 100,
    };
    let ids = |records: Vec<MediaRecord>| -> Vec<MediaId> {
        let mut ids: Vec<MediaId> = records
            .into_iter()
            .map(|record| record.media.media_id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(store.collect_media(cut_off).await.unwrap()),
        vec![unsent_old.media_id.clone()]
    );
    assert!(store.collect_media(cut_off).await.unwrap().is_empty());
    assert!(matches!(
        store.fetch_media(&unsent_old.media_id).await,
        Err(StoreError::NotFound)
    ));
    send(&store, delete(&chat, &alice, first.seq)).await;
    // `twice` is still carried by the second message.
    assert_eq!(
        ids(store.collect_media(cut_off).await.unwrap()),
        vec![sent_old.media_id.clone()]
    );
    send(&store, delete(&chat, &bob, second.seq)).await;
    assert_eq!(
        ids(store.collect_media(cut_off).await.unwrap()),
        vec![twice.media_id.clone()]
    );
    store.fetch_media(&unsent_new.media_id).await.unwrap();
    assert!(store.collect_media(cut_off).await.unwrap().is_empty());
}

fn set_avatar(media_id: Option<&MediaId>) -> ProfileUpdate {
    ProfileUpdate {
        avatar_media_id: Some(media_id.cloned()),
        ..ProfileUpdate::default()
    }
}

async fn set_group_avatar(
    store: &Arc<dyn Store>,
    team: &ConversationId,
    actor_id: &UserId,
    media_id: Option<&MediaId>,
) -> StoreResult<parley_core::store::Appended> {
    let event = SystemEvent::AvatarChanged {
        actor_id: actor_id.clone(),
        avatar_media_id: media_id.cloned(),
    };
    change(
        store,
        team,
        ConversationChange::SetAvatar(media_id.cloned()),
        system(team, actor_id, event),
    )
    .await
}

/// A profile picture is anyone's to read and a group's its members'; both keep their
/// media from collection (even an upload older than the unsent cut-off) until replaced,
/// removed or the account deleted; naming media that is gone is `MissingReference`.
pub async fn avatars_are_readable_and_kept_while_shown(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let eve = user(&store, "eve").await;
    let team = group(&store, &[alice.clone(), bob.clone()]).await;
    let old = Timestamp(Timestamp::now().millis() - 3 * 86_400_000);
    let cut_off = MediaCollection {
        unsent_before: Timestamp(Timestamp::now().millis() - 86_400_000),
        limit: 100,
    };
    let face = ready(&store, &alice, old).await;
    let logo = ready(&store, &alice, old).await;
    let profile = store
        .update_user(&alice, set_avatar(Some(&face.media_id)))
        .await
        .unwrap();
    assert_eq!(profile.avatar_media_id.as_ref(), Some(&face.media_id));
    assert_eq!(
        store.fetch_user(&alice).await.unwrap().avatar_media_id,
        Some(face.media_id.clone())
    );
    set_group_avatar(&store, &team, &alice, Some(&logo.media_id))
        .await
        .unwrap();
    assert_eq!(
        store
            .fetch_conversation(&team)
            .await
            .unwrap()
            .avatar_media_id,
        Some(logo.media_id.clone())
    );
    assert!(store.collect_media(cut_off).await.unwrap().is_empty());
    for anyone in [&bob, &eve] {
        assert!(readable(&store, &face.media_id, anyone).await);
    }
    assert!(readable(&store, &logo.media_id, &bob).await);
    assert!(!readable(&store, &logo.media_id, &eve).await);

    // Replaced: the old picture is collected, the new one kept.
    let newer = ready(&store, &alice, old).await;
    store
        .update_user(&alice, set_avatar(Some(&newer.media_id)))
        .await
        .unwrap();
    let collected = store.collect_media(cut_off).await.unwrap();
    assert_eq!(collected.len(), 1);
    assert_eq!(collected[0].media.media_id, face.media_id);
    assert!(!readable(&store, &face.media_id, &bob).await);

    // Gone media cannot become a picture, and the failed change leaves the old one.
    assert!(matches!(
        store
            .update_user(&alice, set_avatar(Some(&face.media_id)))
            .await,
        Err(StoreError::MissingReference)
    ));
    assert!(matches!(
        set_group_avatar(&store, &team, &alice, Some(&face.media_id)).await,
        Err(StoreError::MissingReference)
    ));
    assert_eq!(
        store.fetch_user(&alice).await.unwrap().avatar_media_id,
        Some(newer.media_id.clone())
    );

    // Removed from the group: collected; the account deleted: its picture too, while a
    // group picture the account uploaded stays for the group.
    set_group_avatar(&store, &team, &alice, None).await.unwrap();
    assert_eq!(
        store
            .fetch_conversation(&team)
            .await
            .unwrap()
            .avatar_media_id,
        None
    );
    let collected = store.collect_media(cut_off).await.unwrap();
    assert_eq!(collected.len(), 1);
    assert_eq!(collected[0].media.media_id, logo.media_id);
    let banner = ready(&store, &alice, old).await;
    set_group_avatar(&store, &team, &alice, Some(&banner.media_id))
        .await
        .unwrap();
    store
        .delete_account(&alice, Timestamp::now(), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        store.fetch_user(&alice).await.unwrap().avatar_media_id,
        None
    );
    assert!(!readable(&store, &newer.media_id, &bob).await);
    let collected = store.collect_media(cut_off).await.unwrap();
    assert_eq!(collected.len(), 1);
    assert_eq!(collected[0].media.media_id, newer.media_id);
    assert!(readable(&store, &banner.media_id, &bob).await);
}
