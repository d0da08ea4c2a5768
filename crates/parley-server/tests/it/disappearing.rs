//! Disappearing messages end to end, in whichever mode the run is in: who may set them,
//! the announcement, `expires_at` on what is sent after, and an expired message gone from
//! history, sync, search and storage. (The test server allows a 1-second setting and
//! purges every 100 ms; the defaults are 24 h, 7 d and 90 d, purged every 10 s.)

use crate::backends::cluster_mode;
use crate::harness::*;
use parley_proto::rest::UpdateConversationRequest;
use parley_proto::{ErrorCode, ServerFrame, SystemEvent};
use std::time::Duration;

/// The messages a fresh device's first sync brings, up to its `sync_done`.
async fn synced(connection: &mut parley_sdk::Connection) -> Vec<parley_proto::Message> {
    let mut messages = Vec::new();
    loop {
        let event = within("the sync", connection.next_event()).await;
        match event {
            Some(parley_sdk::Event::NewMessage(message)) => messages.push(message),
            Some(parley_sdk::Event::Frame(ServerFrame::SyncDone { .. })) => return messages,
            Some(_) => {}
            None => panic!("the connection ended before sync_done"),
        }
    }
}

fn disappearing(seconds: u32) -> UpdateConversationRequest {
    UpdateConversationRequest {
        disappearing_seconds: Some(seconds),
        ..Default::default()
    }
}

async fn start() -> TestServer {
    TestServer::start_with(|config| {
        config.limits.disappearing_choices_secs = vec![1, 86_400];
        config.limits.expiry_purge_interval_ms = 100;
    })
    .await
}

/// Either member of a direct chat turns it on (announced by a system message); what is
/// sent then carries `expires_at` and, once expired, shows nothing in history and sync
/// (it keeps its `seq`, as a hidden message does), is not found by search, and its text
/// is gone from the database; turned off, messages stay.
#[tokio::test]
async fn an_expired_message_is_gone_from_every_read_and_from_storage() {
    let mut server = start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let id = alice.direct_with(&bob).await.conversation_id;
    let mut bob_socket = bob.connect().await;
    sync_done(&mut bob_socket).await;

    let odd = bob
        .client
        .update_conversation(&id, &disappearing(3600))
        .await
        .unwrap_err();
    assert_eq!(odd.code(), Some(ErrorCode::InvalidRequest));
    let on = bob
        .client
        .update_conversation(&id, &disappearing(1))
        .await
        .unwrap();
    assert_eq!(on.disappearing_seconds, 1);
    let announcement = messages(&mut bob_socket, &id, 1).await.remove(0);
    assert!(
        matches!(
            announcement.system,
            Some(SystemEvent::DisappearingChanged { seconds: 1, .. })
        ),
        "{announcement:?}"
    );
    assert_eq!(announcement.expires_at, None, "the announcement stays");
    assert_eq!(
        alice
            .client
            .conversation(&id)
            .await
            .unwrap()
            .disappearing_seconds,
        1
    );

    let word = "quixoticmarmalade";
    let sent = alice
        .client
        .send_rest(&id, &text_request("gone", &format!("{word} soon")))
        .await
        .unwrap();
    let expires_at = sent.expires_at.expect("sent while it is on");
    assert_eq!(expires_at.millis() - sent.created_at.millis(), 1000);
    let live = messages(&mut bob_socket, &id, 1).await;
    assert_eq!(live[0].expires_at, Some(expires_at));

    let expired = eventually(
        "the message expires",
        Duration::from_millis(100),
        || async {
            let page = bob.client.history(&id, None, None, None).await.unwrap();
            page.messages
                .into_iter()
                .find(|message| message.seq == sent.seq && message.hidden)
        },
    )
    .await;
    assert!(expired.content.is_empty() && expired.mentions.is_empty());
    let found = bob.client.search(word, None, None, None).await.unwrap();
    assert!(found.results.is_empty(), "not found by search");
    // A device syncing from the start gets nothing of it either.
    let mut fresh = bob.connect_new_device().await;
    let messages = synced(&mut fresh).await;
    assert!(
        messages
            .iter()
            .any(|message| message.seq == announcement.seq),
        "the sync ran"
    );
    for message in messages.iter().filter(|message| message.seq == sent.seq) {
        assert!(message.hidden && message.content.is_empty(), "{message:?}");
    }
    let refused = bob.client.react(&id, sent.seq, "👍").await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::TargetNotFound));

    alice
        .client
        .update_conversation(&id, &disappearing(0))
        .await
        .unwrap();
    let stays = alice
        .client
        .send_rest(&id, &text_request("stays", "this one stays"))
        .await
        .unwrap();
    assert_eq!(stays.expires_at, None);

    // Purged from storage, not only hidden.
    if cluster_mode() {
        let url = server
            .config()
            .database_url
            .expect("cluster mode runs on PostgreSQL");
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM messages WHERE content LIKE '%' || $1 || '%'")
                .bind(word)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(rows, 0, "the row is deleted");
        return;
    }
    let data_dir = server.config().data_dir;
    server.server.take().unwrap().shutdown().await.unwrap();
    assert_gone_from_files(&data_dir, word, "the expired text");
}

/// In a group only admins set it; a member is refused and nothing is announced.
#[tokio::test]
async fn in_a_group_only_admins_set_disappearing_messages() {
    let server = start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let id = alice.group_with("team", &[&bob]).await.conversation_id;
    let refused = bob
        .client
        .update_conversation(&id, &disappearing(86_400))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));
    let set = alice
        .client
        .update_conversation(&id, &disappearing(86_400))
        .await
        .unwrap();
    assert_eq!(set.disappearing_seconds, 86_400);
    // Setting what is set already announces nothing new.
    let before = alice.client.conversation(&id).await.unwrap().last_seq;
    alice
        .client
        .update_conversation(&id, &disappearing(86_400))
        .await
        .unwrap();
    assert_eq!(
        alice.client.conversation(&id).await.unwrap().last_seq,
        before
    );
}
