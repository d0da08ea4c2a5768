//! The account as data, end to end: logging out everywhere, deleting the account
//! (password confirmed; revoked at once on every device and node), and the export.

use crate::harness::*;
use parley_proto::{AccountExport, ErrorCode, SystemEvent};
use parley_sdk::{CloseReason, Connection, Event};

async fn expect_revoked(connection: &mut Connection, what: &str) {
    expect(connection, what, |event| {
        matches!(
            event,
            Event::Closed {
                reason: CloseReason::Unauthorized
            }
        )
    })
    .await;
}

/// `DELETE /users/me/devices` revokes every token of the user, this one too, and closes
/// their sockets; other users are untouched.
#[tokio::test]
async fn logging_out_everywhere_closes_every_device() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let laptop = alice.new_device().await;
    let mut phone = alice.connect().await;
    let mut tablet = alice.connect_new_device().await;
    laptop.logout_everywhere().await.unwrap();
    expect_revoked(&mut phone, "the phone's socket").await;
    expect_revoked(&mut tablet, "the tablet's socket").await;
    for client in [&laptop, &alice.client] {
        assert_eq!(client.me().await.unwrap_err().status(), Some(401));
    }
    assert!(bob.client.me().await.is_ok());
}

/// With the password, the account goes at once: every device closed and refused, the
/// groups left with their system messages, the direct chat stopped, the messages kept
/// for the others from "Deleted account", the username held, the login gone.
#[tokio::test]
async fn deleting_the_account_revokes_everything_and_keeps_the_messages() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let chat = bob.direct_with(&alice).await.conversation_id;
    let team = bob
        .group_with("team", &[&alice, &carol])
        .await
        .conversation_id;
    for (id, text) in [(&chat, "hi bob"), (&team, "hi team")] {
        alice
            .client
            .send_rest(id, &text_request(text, text))
            .await
            .unwrap();
    }
    let mut phone = alice.connect().await;
    let mut laptop = alice.connect_new_device().await;
    let mut bob_socket = bob.connect().await;
    sync_done(&mut bob_socket).await;

    let wrong = alice
        .client
        .delete_account("not-my-password")
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.status(), wrong.code()),
        (Some(403), Some(ErrorCode::Forbidden))
    );
    assert!(alice.client.me().await.is_ok(), "nothing happened");

    alice.client.delete_account("password-123").await.unwrap();
    expect_revoked(&mut phone, "the phone").await;
    expect_revoked(&mut laptop, "the laptop").await;
    assert_eq!(alice.client.me().await.unwrap_err().status(), Some(401));
    let left = messages(&mut bob_socket, &team, 1).await.remove(0);
    assert!(
        matches!(&left.system, Some(SystemEvent::MemberLeft { user_id }) if user_id == &alice.user_id),
        "{left:?}"
    );
    let group = bob.client.conversation(&team).await.unwrap();
    assert!(group
        .members
        .unwrap()
        .iter()
        .all(|member| member.user_id != alice.user_id));

    let direct = bob.client.conversation(&chat).await.unwrap();
    let gone = direct
        .members
        .unwrap()
        .into_iter()
        .find(|member| member.user_id == alice.user_id)
        .expect("the tombstone stays in the direct chat");
    assert_eq!(gone.display_name.as_deref(), Some("Deleted account"));
    let history = bob.client.history(&chat, None, None, None).await.unwrap();
    assert!(history
        .messages
        .iter()
        .any(|message| message.sender_id == alice.user_id && message.content == "hi bob"));
    let refused = bob
        .client
        .send_rest(&chat, &text_request("late", "are you there?"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Blocked));
    let announced = bob
        .client
        .set_disappearing(&chat, 86_400)
        .await
        .unwrap_err();
    assert_eq!(
        announced.code(),
        Some(ErrorCode::Blocked),
        "nothing new in that chat"
    );
    // Nobody can start a chat with the deleted account or put it in a group.
    let reopened = carol
        .client
        .create_direct(&alice.user_id)
        .await
        .unwrap_err();
    assert_eq!(reopened.code(), Some(ErrorCode::NotFound));
    let added = bob
        .client
        .add_members(&team, std::slice::from_ref(&alice.user_id))
        .await
        .unwrap_err();
    assert_eq!(added.code(), Some(ErrorCode::NotFound));

    let login = parley_sdk::Client::new(&server.url).unwrap();
    let denied = login.login("alice", "password-123").await.unwrap_err();
    assert_eq!(denied.code(), Some(ErrorCode::InvalidCredentials));
    let taken = login
        .register("alice", "password-456", None)
        .await
        .unwrap_err();
    assert_eq!(
        taken.code(),
        Some(ErrorCode::UsernameTaken),
        "held for 30 days"
    );
    assert!(carol.client.search_users("alice").await.unwrap().is_empty());
    let profile = carol.client.user(&alice.user_id).await.unwrap();
    assert_eq!(profile.display_name, "Deleted account");
}

/// In a cluster, deleting the account through one node closes its sockets on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_deletion_closes_sockets_on_every_node() {
    let cluster = crate::cluster::TestCluster::start(2).await;
    let alice = cluster.nodes[0].user("alice").await;
    let far = cluster.on(1, &alice).await;
    let mut far_socket = far.connect().await;
    sync_done(&mut far_socket).await;
    let mut near_socket = alice.connect().await;
    sync_done(&mut near_socket).await;
    alice.client.delete_account("password-123").await.unwrap();
    expect_revoked(&mut near_socket, "the socket on this node").await;
    expect_revoked(&mut far_socket, "the socket on the other node").await;
    assert_eq!(far.client.me().await.unwrap_err().status(), Some(401));
}

/// The export is a download of the profile, blocks, the user's conversations (no last
/// message) and every message they sent, those in a group they left included; nothing
/// another user sent is in it.
#[tokio::test]
async fn the_export_holds_what_the_user_sent_and_nothing_foreign() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let chat = alice.direct_with(&bob).await.conversation_id;
    let team = bob.group_with("team", &[&alice]).await.conversation_id;
    let old = bob.group_with("old", &[&alice]).await.conversation_id;
    alice.client.block(&carol.user_id).await.unwrap();
    let secret = "bobssecretrecipe";
    bob.client
        .send_rest(&chat, &text_request("secret", secret))
        .await
        .unwrap();
    for (id, text) in [
        (&chat, "mine one"),
        (&team, "mine two"),
        (&old, "mine three"),
    ] {
        alice
            .client
            .send_rest(id, &text_request(text, text))
            .await
            .unwrap();
    }
    alice.client.leave(&old).await.unwrap();

    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/users/me/export", server.url))
        .bearer_auth(alice.token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        disposition,
        "attachment; filename=\"parley-export-alice.json\""
    );
    let bytes = response.bytes().await.unwrap();
    assert!(
        !bytes
            .windows(secret.len())
            .any(|window| window == secret.as_bytes()),
        "nothing bob wrote"
    );
    let export: AccountExport = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(export.format, "parley-export-1");
    assert_eq!(export.profile.username, "alice");
    assert_eq!(export.blocked.len(), 1);
    let mut texts: Vec<&str> = export
        .messages
        .iter()
        .map(|message| message.content.as_str())
        .collect();
    texts.sort_unstable();
    assert_eq!(texts, vec!["mine one", "mine three", "mine two"]);
    assert!(export
        .messages
        .iter()
        .all(|message| message.sender_id == alice.user_id));
    let mut conversations: Vec<_> = export
        .conversations
        .iter()
        .map(|conversation| conversation.conversation_id.clone())
        .collect();
    conversations.sort();
    let mut expected = vec![chat, team];
    expected.sort();
    assert_eq!(conversations, expected, "the ones she is in");
    assert!(export
        .conversations
        .iter()
        .all(|conversation| conversation.last_message.is_none()));
    // The SDK reads the same document.
    assert_eq!(alice.client.export().await.unwrap().messages.len(), 3);
}
