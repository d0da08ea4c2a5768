//! Profile and group pictures: uploads through the media pipeline named by
//! `avatar_media_id`; who may set them, who may download them, and what is refused.

use crate::harness::*;
use crate::media::{declared, png, refused};
use parley_proto::rest::{UpdateConversationRequest, UpdateProfileRequest};
use parley_proto::{ErrorCode, MediaId, SystemEvent};
use parley_sdk::ServerFrame;

fn profile_picture(media_id: Option<&MediaId>) -> UpdateProfileRequest {
    UpdateProfileRequest {
        avatar_media_id: Some(media_id.cloned()),
        ..UpdateProfileRequest::default()
    }
}

fn group_picture(media_id: Option<&MediaId>) -> UpdateConversationRequest {
    UpdateConversationRequest {
        avatar_media_id: Some(media_id.cloned()),
        ..UpdateConversationRequest::default()
    }
}

/// A profile picture: set from one's own completed upload, seen on the profile by
/// anyone signed in, who may download it (the thumbnail too); removed with `null`, after
/// which only its uploader can fetch it.
#[tokio::test]
async fn a_profile_picture_is_everyones_to_see() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let picture = alice
        .client
        .upload(png(400, 300), "image/png", Some("me.png"))
        .await
        .unwrap();
    let profile = alice
        .client
        .update_me(&profile_picture(Some(&picture.media_id)))
        .await
        .unwrap();
    assert_eq!(profile.avatar_media_id.as_ref(), Some(&picture.media_id));
    assert_eq!(
        alice.client.me().await.unwrap().avatar_media_id,
        Some(picture.media_id.clone())
    );
    // bob shares no conversation with alice: the profile is public, so is its picture.
    let seen = bob.client.user(&alice.user_id).await.unwrap();
    assert_eq!(seen.avatar_media_id.as_ref(), Some(&picture.media_id));
    let found = bob.client.search_users("alice").await.unwrap();
    assert_eq!(found[0].avatar_media_id.as_ref(), Some(&picture.media_id));
    let small = bob
        .client
        .download_media(&picture.media_id, true)
        .await
        .unwrap();
    let small = image::load_from_memory(&small).unwrap();
    assert_eq!((small.width(), small.height()), (320, 240));
    bob.client
        .download_media(&picture.media_id, false)
        .await
        .unwrap();

    // Other profile fields leave it alone; `null` removes it.
    let renamed = alice
        .client
        .update_me(&UpdateProfileRequest {
            display_name: Some("Alice A.".into()),
            ..UpdateProfileRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(renamed.avatar_media_id.as_ref(), Some(&picture.media_id));
    let cleared = alice
        .client
        .update_me(&profile_picture(None))
        .await
        .unwrap();
    assert_eq!(cleared.avatar_media_id, None);
    let (status, code) = refused(bob.client.download_media(&picture.media_id, true).await);
    assert_eq!((status, code), (404, ErrorCode::NotFound));
    alice
        .client
        .download_media(&picture.media_id, true)
        .await
        .unwrap();
}

/// Only one's own, completed pictures become avatars: someone else's upload is unknown
/// (404), an upload not yet completed is `media_not_ready` (409), a file that is not a
/// picture is refused (400); the JSON body's `avatar_media_id` must be a media id.
#[tokio::test]
async fn only_ones_own_finished_pictures_become_avatars() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let bobs = bob
        .client
        .upload(png(64, 64), "image/png", None)
        .await
        .unwrap();
    let (status, code) = refused(
        alice
            .client
            .update_me(&profile_picture(Some(&bobs.media_id)))
            .await,
    );
    assert_eq!((status, code), (404, ErrorCode::NotFound));
    let unknown = MediaId::from("m_01J00000000000000000000000");
    let (status, _) = refused(
        alice
            .client
            .update_me(&profile_picture(Some(&unknown)))
            .await,
    );
    assert_eq!(status, 404);
    let pending = alice
        .client
        .create_media(&declared("image/png", 100))
        .await
        .unwrap();
    let (status, code) = refused(
        alice
            .client
            .update_me(&profile_picture(Some(&pending.media_id)))
            .await,
    );
    assert_eq!((status, code), (409, ErrorCode::MediaNotReady));
    let text = alice
        .client
        .upload(b"just words".to_vec(), "text/plain", Some("notes.txt"))
        .await
        .unwrap();
    let (status, code) = refused(
        alice
            .client
            .update_me(&profile_picture(Some(&text.media_id)))
            .await,
    );
    assert_eq!((status, code), (400, ErrorCode::InvalidRequest));
    assert_eq!(alice.client.me().await.unwrap().avatar_media_id, None);

    let response = reqwest::Client::new()
        .patch(format!("{}/api/v1/users/me", server.url))
        .bearer_auth(alice.token())
        .json(&serde_json::json!({"avatar_media_id": 42}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// A group's picture: admins set it (a system message and `conversation_updated` tell
/// the members), members download it, outsiders cannot; members who are not admins and
/// direct chats are refused; removing it is announced too.
#[tokio::test]
async fn a_group_picture_is_its_members() {
    let server = TestServer::start().await;
    let [alice, bob, eve] = server.users(["alice", "bob", "eve"]).await;
    let team = alice.group_with("Team", &[&bob]).await;
    let mut bob_socket = bob.connect().await;
    sync_done(&mut bob_socket).await;
    let logo = alice
        .client
        .upload(png(300, 300), "image/png", Some("logo.png"))
        .await
        .unwrap();
    let updated = alice
        .client
        .update_conversation(&team.conversation_id, &group_picture(Some(&logo.media_id)))
        .await
        .unwrap();
    assert_eq!(updated.avatar_media_id.as_ref(), Some(&logo.media_id));
    let announced = messages(&mut bob_socket, &team.conversation_id, 1).await;
    assert_eq!(
        announced[0].system,
        Some(SystemEvent::AvatarChanged {
            actor_id: alice.user_id.clone(),
            avatar_media_id: Some(logo.media_id.clone()),
        })
    );
    expect_frame(&mut bob_socket, "conversation_updated", |frame| {
        matches!(frame, ServerFrame::ConversationUpdated { conversation }
            if conversation.avatar_media_id.as_ref() == Some(&logo.media_id))
    })
    .await;
    // The same picture again changes nothing and announces nothing.
    let again = alice
        .client
        .update_conversation(&team.conversation_id, &group_picture(Some(&logo.media_id)))
        .await
        .unwrap();
    assert_eq!(again.last_seq, updated.last_seq);
    let listed = bob.client.conversations(None, None).await.unwrap();
    assert_eq!(
        listed.conversations[0].avatar_media_id.as_ref(),
        Some(&logo.media_id)
    );
    bob.client
        .download_media(&logo.media_id, true)
        .await
        .unwrap();
    let (status, _) = refused(eve.client.download_media(&logo.media_id, true).await);
    assert_eq!(status, 404);

    let bobs = bob
        .client
        .upload(png(50, 50), "image/png", None)
        .await
        .unwrap();
    let (status, code) = refused(
        bob.client
            .update_conversation(&team.conversation_id, &group_picture(Some(&bobs.media_id)))
            .await,
    );
    assert_eq!((status, code), (403, ErrorCode::Forbidden));
    let chat = alice.direct_with(&bob).await;
    let (status, _) = refused(
        alice
            .client
            .update_conversation(&chat.conversation_id, &group_picture(Some(&logo.media_id)))
            .await,
    );
    assert_eq!(status, 403);

    let removed = alice
        .client
        .update_conversation(&team.conversation_id, &group_picture(None))
        .await
        .unwrap();
    assert_eq!(removed.avatar_media_id, None);
    let announced = messages(&mut bob_socket, &team.conversation_id, 1).await;
    assert_eq!(
        announced[0].system,
        Some(SystemEvent::AvatarChanged {
            actor_id: alice.user_id.clone(),
            avatar_media_id: None,
        })
    );
    let (status, _) = refused(bob.client.download_media(&logo.media_id, true).await);
    assert_eq!(status, 404);
}
