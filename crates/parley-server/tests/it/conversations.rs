//! Direct chats and groups: creation, roles, membership changes as system messages.

use crate::harness::*;
use parley_proto::rest::UpdateConversationRequest;
use parley_proto::{ConversationType, ErrorCode, Role, SystemEvent};
use parley_sdk::{Event, ServerFrame};

fn rename(name: &str, description: Option<&str>) -> UpdateConversationRequest {
    UpdateConversationRequest {
        name: Some(name.to_owned()),
        description: description.map(str::to_owned),
        disappearing_seconds: None,
        avatar_media_id: None,
    }
}

/// A direct conversation between two users is created once, whoever asks.
#[tokio::test]
async fn direct_conversation_is_created_once() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let first = alice.direct_with(&bob).await;
    let again = alice.direct_with(&bob).await;
    let from_bob = bob.direct_with(&alice).await;
    assert_eq!(first.conversation_id, again.conversation_id);
    assert_eq!(first.conversation_id, from_bob.conversation_id);
    assert_eq!(first.kind, ConversationType::Direct);
    assert_eq!(first.members.as_ref().map(Vec::len), Some(2));
    let missing = alice
        .client
        .create_direct(&parley_proto::UserId::from("u_nobody"))
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(404));
}

/// Groups: the creator owns it; admins-only operations are refused to members; every
/// membership change is a system message in `seq` order that every member sees, and
/// `conversation_updated` reaches members' devices.
#[tokio::test]
async fn group_lifecycle_with_roles_and_system_messages() {
    let server = TestServer::start().await;
    let [alice, bob, carol, dave] = server.users(["alice", "bob", "carol", "dave"]).await;
    let mut bob_connection = bob.connect().await;

    let group = alice.group_with("Book club", &[&bob, &carol]).await;
    let conversation_id = group.conversation_id.clone();
    let members = group.members.clone().unwrap();
    assert_eq!(members[0].user_id, alice.user_id);
    assert_eq!(members[0].role, Role::Owner);
    assert_eq!(group.last_seq, 1, "the creation is message 1");
    expect_frame(&mut bob_connection, "conversation_updated", |frame| {
        matches!(frame, ServerFrame::ConversationUpdated { conversation: c } if c.conversation_id == conversation_id)
    })
    .await;

    let refused = bob
        .client
        .update_conversation(&conversation_id, &rename("Mine", None))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(403), Some(ErrorCode::Forbidden))
    );
    let refused = bob
        .client
        .add_members(&conversation_id, std::slice::from_ref(&dave.user_id))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));

    let renamed = alice
        .client
        .update_conversation(&conversation_id, &rename("Readers", Some("Monthly")))
        .await
        .unwrap();
    assert_eq!(renamed.name.as_deref(), Some("Readers"));
    alice
        .client
        .add_members(&conversation_id, std::slice::from_ref(&dave.user_id))
        .await
        .unwrap();
    alice
        .client
        .remove_member(&conversation_id, &carol.user_id)
        .await
        .unwrap();
    bob.client.leave(&conversation_id).await.unwrap();

    let history = dave
        .client
        .history(&conversation_id, None, None, None)
        .await
        .unwrap();
    let events: Vec<(i64, SystemEvent)> = history
        .messages
        .iter()
        .map(|message| (message.seq, message.system.clone().expect("system message")))
        .collect();
    assert_eq!(events.len(), 5);
    assert!(matches!(events[0], (1, SystemEvent::GroupCreated { .. })));
    assert!(matches!(
        events[1],
        (2, SystemEvent::ConversationRenamed { .. })
    ));
    assert!(
        matches!(&events[2], (3, SystemEvent::MembersAdded { user_ids, .. }) if user_ids == &vec![dave.user_id.clone()])
    );
    assert!(
        matches!(&events[3], (4, SystemEvent::MemberRemoved { user_id, .. }) if user_id == &carol.user_id)
    );
    assert!(
        matches!(&events[4], (5, SystemEvent::MemberLeft { user_id }) if user_id == &bob.user_id)
    );

    // Bob saw every change up to his own leaving, then was told he is out.
    expect(
        &mut bob_connection,
        "bob's leave message",
        |event| matches!(event, Event::NewMessage(m) if m.seq == 5),
    )
    .await;
    expect_frame(&mut bob_connection, "conversation_removed", |frame| {
        matches!(frame, ServerFrame::ConversationRemoved { conversation_id: id } if id == &conversation_id)
    })
    .await;
    let gone = carol
        .client
        .history(&conversation_id, None, None, None)
        .await
        .unwrap_err();
    assert_eq!(
        (gone.status(), gone.code()),
        (Some(403), Some(ErrorCode::NotMember))
    );
    let details = alice.client.conversation(&conversation_id).await.unwrap();
    let member_ids: Vec<_> = details
        .members
        .unwrap()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(
        member_ids,
        vec![alice.user_id.clone(), dave.user_id.clone()]
    );
}

/// The list is ordered by last activity, pages with a cursor, and carries the last
/// message and the unread count.
#[tokio::test]
async fn conversation_list_orders_by_activity_with_unread_counts() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let with_bob = alice.direct_with(&bob).await;
    let with_carol = alice.direct_with(&carol).await;
    let bob_connection = bob.connect().await;
    for text in ["one", "two", "three"] {
        bob_connection
            .send_and_wait(with_bob.conversation_id.clone(), text)
            .await
            .unwrap();
    }
    let list = alice.client.conversations(None, Some(1)).await.unwrap();
    assert_eq!(
        list.conversations[0].conversation_id,
        with_bob.conversation_id
    );
    assert_eq!(list.conversations[0].unread_count, 3);
    assert_eq!(
        list.conversations[0].last_message.as_ref().unwrap().content,
        "three"
    );
    let next = list.next_cursor.expect("a second page");
    let page_two = alice
        .client
        .conversations(Some(&next), Some(1))
        .await
        .unwrap();
    assert_eq!(
        page_two.conversations[0].conversation_id,
        with_carol.conversation_id
    );
    assert!(page_two.next_cursor.is_none());
    let unread = alice.client.unread().await.unwrap();
    assert_eq!(unread.total, 3);
    assert_eq!(
        bob.client.unread().await.unwrap().total,
        0,
        "own messages are not unread"
    );
    let bad_cursor = alice
        .client
        .conversations(Some("garbage"), None)
        .await
        .unwrap_err();
    assert_eq!(bad_cursor.status(), Some(400));
}

/// Only the owner sets roles: an admin may then rename and add; handing ownership over
/// makes the old owner an admin; each change is a system message. The actor's own device
/// receives system messages live (it has no `msg_ack` for them).
#[tokio::test]
async fn owner_sets_roles_and_hands_over_ownership() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let mut alice_connection = alice.connect().await;
    let conversation_id = alice.group_with("g", &[&bob, &carol]).await.conversation_id;
    expect(&mut alice_connection, "the creation message on the creator's device", |event| {
        matches!(event, Event::NewMessage(m) if m.conversation_id == conversation_id && m.seq == 1)
    })
    .await;
    let http = reqwest::Client::new();
    let set_role = |actor: &crate::harness::TestUser, target: &parley_proto::UserId, role: &str| {
        http.patch(format!(
            "{}/api/v1/conversations/{}/members/{}",
            server.url, conversation_id, target
        ))
        .bearer_auth(actor.token())
        .json(&serde_json::json!({ "role": role }))
        .send()
    };
    let refused = set_role(&bob, &carol.user_id, "admin").await.unwrap();
    assert_eq!(refused.status(), 403);
    let promoted = set_role(&alice, &bob.user_id, "admin").await.unwrap();
    assert_eq!(promoted.status(), 200);
    bob.client
        .update_conversation(&conversation_id, &rename("Bob's now", None))
        .await
        .unwrap();
    let refused = bob
        .client
        .remove_member(&conversation_id, &alice.user_id)
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some(ErrorCode::Forbidden),
        "an admin cannot remove the owner"
    );
    let bad_role = set_role(&alice, &bob.user_id, "emperor").await.unwrap();
    assert_eq!(bad_role.status(), 400);

    let handed_over = set_role(&alice, &carol.user_id, "owner").await.unwrap();
    assert_eq!(handed_over.status(), 200);
    let members = alice
        .client
        .conversation(&conversation_id)
        .await
        .unwrap()
        .members
        .unwrap();
    let role_of = |user_id: &parley_proto::UserId| {
        members.iter().find(|m| &m.user_id == user_id).unwrap().role
    };
    assert_eq!(
        (
            role_of(&carol.user_id),
            role_of(&alice.user_id),
            role_of(&bob.user_id)
        ),
        (Role::Owner, Role::Admin, Role::Admin)
    );
    let history = carol
        .client
        .history(&conversation_id, None, None, None)
        .await
        .unwrap();
    let changes: Vec<_> = history
        .messages
        .iter()
        .filter_map(|m| match &m.system {
            Some(SystemEvent::RoleChanged { user_id, role, .. }) => Some((user_id.clone(), *role)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (bob.user_id.clone(), Role::Admin),
            (carol.user_id.clone(), Role::Owner)
        ]
    );
    let wrong_method = http
        .put(format!(
            "{}/api/v1/conversations/{}",
            server.url, conversation_id
        ))
        .bearer_auth(alice.token())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let body: serde_json::Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
}

/// Groups have a member limit, at creation and when adding: `422 group_full`.
#[tokio::test]
async fn groups_refuse_members_past_the_limit() {
    let server = TestServer::start_with(|config| config.limits.max_group_members = 3).await;
    let alice = server.user("alice").await;
    let mut others = Vec::new();
    for name in ["bob", "carol", "dave"] {
        others.push(server.user(name).await.user_id);
    }
    let too_big = alice.client.create_group("big", &others).await.unwrap_err();
    assert_eq!(
        (too_big.status(), too_big.code()),
        (Some(422), Some(ErrorCode::GroupFull))
    );
    let group = alice
        .client
        .create_group("full", &others[..2])
        .await
        .unwrap();
    let refused = alice
        .client
        .add_members(&group.conversation_id, &others[2..])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::GroupFull));
    let members = alice
        .client
        .conversation(&group.conversation_id)
        .await
        .unwrap()
        .members
        .unwrap();
    assert_eq!(members.len(), 3, "nothing was added");
}
