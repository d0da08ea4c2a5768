//! The `Store` conformance suite. Each function checks one behaviour on an empty store.

use parley_core::ids;
use parley_core::rules::{RECEIPT_SENDERS, UNREAD};
use parley_core::search::query_terms;
use parley_core::store::{
    AppendOutcome, ConversationChange, ConversationSummary, ConversationUpdate, Counting,
    ListCursor, ListFilter, NewConversation, NewDevice, NewMessage, PageFrom, ProfileUpdate,
    ReceiptUpdate, SearchQuery, SeqRange, StoreError, UserRecord,
};
use parley_core::Store;
use parley_proto::{
    ContentType, ConversationId, ConversationType, DeviceId, LastSeenPrivacy, Message, MessageId,
    ReactionCount, ReactionUsers, Role, SystemEvent, Timestamp, UserId,
};
use std::collections::HashSet;
use std::sync::Arc;

/// Creates a user named `username` and returns its id.
pub async fn user(store: &Arc<dyn Store>, username: &str) -> UserId {
    let user_id = ids::new_user_id();
    store
        .insert_user(UserRecord {
            user_id: user_id.clone(),
            username: username.to_owned(),
            password_hash: "$argon2id$test".to_owned(),
            display_name: format!("{username} display"),
            status_message: None,
            avatar_url: None,
            avatar_media_id: None,
            push_previews: false,
            last_seen_privacy: LastSeenPrivacy::Everyone,
            last_seen_at: None,
            created_at: Timestamp::now(),
            deleted_at: None,
        })
        .await
        .expect("insert user");
    user_id
}

/// A text message from `sender_id` with the given client id.
pub fn text(
    conversation_id: &ConversationId,
    sender_id: &UserId,
    client_msg_id: &str,
) -> NewMessage {
    NewMessage {
        message_id: ids::new_message_id(),
        conversation_id: conversation_id.clone(),
        sender_id: sender_id.clone(),
        sender_device_id: DeviceId::from("d_test"),
        client_msg_id: client_msg_id.to_owned(),
        content: format!("hello {client_msg_id}"),
        content_type: ContentType::TEXT,
        reply_to_seq: None,
        created_at: Timestamp::now(),
        system: None,
        target_seq: None,
        mentions: Vec::new(),
        forwarded: false,
        attachments: Vec::new(),
    }
}

pub(crate) fn system(
    conversation_id: &ConversationId,
    actor_id: &UserId,
    event: SystemEvent,
) -> NewMessage {
    let mut message = text(
        conversation_id,
        actor_id,
        &format!("system:{}", ids::new_message_id()),
    );
    message.content_type = ContentType::SYSTEM;
    message.system = Some(event);
    message
}

/// `actor_id` removes `user_id`, with its system message.
pub async fn remove_member(
    store: &Arc<dyn Store>,
    conversation_id: &ConversationId,
    actor_id: &UserId,
    user_id: &UserId,
) -> parley_core::store::Appended {
    let event = SystemEvent::MemberRemoved {
        actor_id: actor_id.clone(),
        user_id: user_id.clone(),
    };
    change(
        store,
        conversation_id,
        ConversationChange::RemoveMember(user_id.clone()),
        system(conversation_id, actor_id, event),
    )
    .await
    .expect("remove member")
}

/// Applies one change with its system message at the conversation's current
/// `members_version`.
pub async fn change(
    store: &Arc<dyn Store>,
    conversation_id: &ConversationId,
    change: ConversationChange,
    system_message: NewMessage,
) -> Result<parley_core::store::Appended, StoreError> {
    let expected_members_version = match store.fetch_conversation(conversation_id).await {
        Ok(record) => record.members_version,
        Err(StoreError::NotFound) => 0,
        Err(error) => return Err(error),
    };
    let mut appended = store
        .update_conversation(
            conversation_id,
            ConversationUpdate {
                expected_members_version,
                changes: vec![change],
                system_messages: vec![system_message],
            },
        )
        .await?;
    Ok(appended.remove(0))
}

/// `actor` adds `joining` as a member, with its `members_added` system message.
pub async fn add_member(
    store: &Arc<dyn Store>,
    conversation_id: &ConversationId,
    actor: &UserId,
    joining: &UserId,
) -> Result<parley_core::store::Appended, StoreError> {
    change(
        store,
        conversation_id,
        ConversationChange::AddMembers(vec![(joining.clone(), Role::Member)]),
        system(
            conversation_id,
            actor,
            SystemEvent::MembersAdded {
                actor_id: actor.clone(),
                user_ids: vec![joining.clone()],
            },
        ),
    )
    .await
}

/// A group owned by the first user with the others as members.
pub async fn group(store: &Arc<dyn Store>, users: &[UserId]) -> ConversationId {
    let conversation_id = ids::new_conversation_id();
    let members = users
        .iter()
        .enumerate()
        .map(|(index, user_id)| {
            (
                user_id.clone(),
                if index == 0 {
                    Role::Owner
                } else {
                    Role::Member
                },
            )
        })
        .collect();
    store
        .insert_conversation(NewConversation {
            conversation_id: conversation_id.clone(),
            kind: ConversationType::Group,
            name: Some("team".into()),
            description: None,
            direct_key: None,
            members,
            created_at: Timestamp::now(),
            system_message: Some(system(
                &conversation_id,
                &users[0],
                SystemEvent::GroupCreated {
                    actor_id: users[0].clone(),
                    name: "team".into(),
                    user_ids: users.to_vec(),
                },
            )),
        })
        .await
        .expect("insert group");
    conversation_id
}

pub async fn users_are_unique_and_searchable(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    user(&store, "alicia").await;
    user(&store, "bob_x").await;
    let duplicate = store
        .insert_user(UserRecord {
            user_id: ids::new_user_id(),
            username: "alice".into(),
            password_hash: "x".into(),
            display_name: "other".into(),
            status_message: None,
            avatar_url: None,
            avatar_media_id: None,
            push_previews: false,
            last_seen_privacy: LastSeenPrivacy::Everyone,
            last_seen_at: None,
            created_at: Timestamp::now(),
            deleted_at: None,
        })
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );
    assert_eq!(
        store.fetch_user_by_username("alice").await.unwrap().user_id,
        alice
    );
    assert!(matches!(
        store.fetch_user_by_username("nobody").await,
        Err(StoreError::NotFound)
    ));
    let found: Vec<String> = store
        .search_users("ali", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|user| user.username)
        .collect();
    assert_eq!(found, vec!["alice", "alicia"]);
    // `_` is literal, not a wildcard.
    assert_eq!(store.search_users("bob_", 10).await.unwrap().len(), 1);
    assert!(store.search_users("b_b", 10).await.unwrap().is_empty());
    let updated = store
        .update_user(
            &alice,
            ProfileUpdate {
                display_name: Some("Alice A.".into()),
                status_message: Some(Some("busy".into())),
                last_seen_privacy: Some(LastSeenPrivacy::Contacts),
                ..ProfileUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.display_name, "Alice A.");
    assert_eq!(updated.status_message.as_deref(), Some("busy"));
    assert_eq!(
        store.fetch_user(&alice).await.unwrap().last_seen_privacy,
        LastSeenPrivacy::Contacts
    );
}

pub async fn sessions_resolve_until_revoked(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let device_id = ids::new_device_id();
    store
        .insert_device(NewDevice {
            device_id: device_id.clone(),
            user_id: alice.clone(),
            name: Some("laptop".into()),
            token_hash: vec![1, 2, 3],
            created_at: Timestamp::now(),
        })
        .await
        .unwrap();
    let session = store.fetch_session(&[1, 2, 3]).await.unwrap();
    assert_eq!(
        (session.user_id, session.device_id.clone()),
        (alice, device_id.clone())
    );
    store.delete_device(&device_id).await.unwrap();
    store.delete_device(&device_id).await.unwrap();
    assert!(matches!(
        store.fetch_session(&[1, 2, 3]).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn direct_conversations_are_created_once(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let direct = |first: &UserId, second: &UserId| NewConversation {
        conversation_id: ids::new_conversation_id(),
        kind: ConversationType::Direct,
        name: None,
        description: None,
        direct_key: Some(ids::direct_key(first, second)),
        members: vec![
            (first.clone(), Role::Member),
            (second.clone(), Role::Member),
        ],
        created_at: Timestamp::now(),
        system_message: None,
    };
    let (first, created) = store
        .insert_conversation(direct(&alice, &bob))
        .await
        .unwrap();
    assert!(created);
    let (again, created_again) = store
        .insert_conversation(direct(&bob, &alice))
        .await
        .unwrap();
    assert!(!created_again);
    assert_eq!(first.conversation_id, again.conversation_id);
    assert_eq!(first.last_seq, 0);
    assert_eq!(
        store
            .fetch_members(&first.conversation_id)
            .await
            .unwrap()
            .len(),
        2
    );
}

pub async fn groups_start_with_their_system_message(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob]).await;
    let record = store.fetch_conversation(&conversation_id).await.unwrap();
    assert_eq!((record.last_seq, record.member_count), (1, 2));
    let messages = store
        .fetch_messages(
            &conversation_id,
            SeqRange::default(),
            PageFrom::Oldest,
            10,
            &UserId::from("u_reader"),
        )
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].seq, 1);
    assert!(matches!(
        messages[0].system,
        Some(SystemEvent::GroupCreated { .. })
    ));
    let members = store.fetch_members(&conversation_id).await.unwrap();
    assert_eq!(members[0].user_id, alice);
    assert_eq!(members[0].role, Role::Owner);
    assert_eq!(members[0].username.as_deref(), Some("alice"));
}

pub async fn seq_is_gap_free_under_concurrent_appends(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let tasks = (0..8).map(|task| {
        let store = store.clone();
        let conversation_id = conversation_id.clone();
        let sender = if task % 2 == 0 {
            alice.clone()
        } else {
            bob.clone()
        };
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for batch in 0..10 {
                let messages = (0..5)
                    .map(|index| {
                        text(
                            &conversation_id,
                            &sender,
                            &format!("t{task}-b{batch}-{index}"),
                        )
                    })
                    .collect();
                for appended in store.append_messages(messages).await.unwrap() {
                    let appended = appended.expect("members may send");
                    assert!(!appended.duplicate);
                    seqs.push(appended.message.seq);
                }
            }
            seqs
        })
    });
    let mut all = Vec::new();
    for seqs in futures::future::join_all(tasks).await {
        let seqs = seqs.unwrap();
        assert!(
            seqs.windows(2).all(|pair| pair[0] < pair[1]),
            "one task's seqs increase"
        );
        all.extend(seqs);
    }
    all.sort_unstable();
    let expected: Vec<i64> = (2..=401).collect();
    assert_eq!(
        all, expected,
        "every seq from 2 (1 is the system message) exactly once"
    );
    let record = store.fetch_conversation(&conversation_id).await.unwrap();
    assert_eq!(record.last_seq, 401);
}

pub async fn duplicates_return_the_first_message(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let first = store
        .append_messages(vec![text(&conversation_id, &alice, "m1")])
        .await
        .unwrap()
        .remove(0)
        .expect("members may send");
    assert!(!first.duplicate);
    let mut retry = text(&conversation_id, &alice, "m1");
    retry.content = "a different body".into();
    let again = store
        .append_messages(vec![retry])
        .await
        .unwrap()
        .remove(0)
        .expect("members may send");
    assert!(again.duplicate);
    assert_eq!(again.message, first.message, "the first message, unchanged");
    let looked_up = store
        .fetch_message_by_client_id(&alice, "m1")
        .await
        .unwrap();
    assert_eq!(looked_up.as_ref(), Some(&first.message));
    assert_eq!(
        store.fetch_message_by_client_id(&bob, "m1").await.unwrap(),
        None
    );
    // The same client id from another sender is another message.
    let other = store
        .append_messages(vec![text(&conversation_id, &bob, "m1")])
        .await
        .unwrap()
        .remove(0)
        .expect("members may send");
    assert!(!other.duplicate);
    assert_eq!(
        other.message.seq,
        first.message.seq + 1,
        "the duplicate used no seq"
    );
}

pub async fn a_client_id_reused_in_another_conversation_is_refused(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let first_group = group(&store, std::slice::from_ref(&alice)).await;
    let second_group = group(&store, std::slice::from_ref(&alice)).await;
    let second_start = store
        .fetch_conversation(&second_group)
        .await
        .unwrap()
        .last_seq;
    let stored = store
        .append_messages(vec![text(&first_group, &alice, "id-1")])
        .await
        .unwrap()
        .remove(0)
        .expect("members may send");
    // Already stored, and earlier in the same batch: both refused, neither uses a seq.
    let outcomes = store
        .append_messages(vec![
            text(&second_group, &alice, "id-1"),
            text(&first_group, &alice, "id-2"),
            text(&second_group, &alice, "id-2"),
            text(&first_group, &alice, "id-1"),
        ])
        .await
        .unwrap();
    use parley_core::store::AppendRefusal;
    assert_eq!(outcomes[0], Err(AppendRefusal::ClientMsgIdReused));
    assert!(outcomes[1].as_ref().is_ok_and(|a| !a.duplicate));
    assert_eq!(outcomes[2], Err(AppendRefusal::ClientMsgIdReused));
    let retry = outcomes[3]
        .as_ref()
        .expect("a retry in its own conversation");
    assert!(retry.duplicate);
    assert_eq!(retry.message, stored.message);
    let second = store.fetch_conversation(&second_group).await.unwrap();
    assert_eq!(second.last_seq, second_start, "refused sends use no seq");
}

pub async fn duplicates_within_one_batch_store_once(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let conversation_id = group(&store, std::slice::from_ref(&alice)).await;
    let outcomes = store
        .append_messages(vec![
            text(&conversation_id, &alice, "a"),
            text(&conversation_id, &alice, "a"),
            text(&conversation_id, &alice, "b"),
        ])
        .await
        .unwrap();
    let seqs: Vec<(i64, bool)> = outcomes
        .iter()
        .map(|outcome| {
            let appended = outcome.as_ref().expect("members may send");
            (appended.message.seq, appended.duplicate)
        })
        .collect();
    assert_eq!(seqs, vec![(2, false), (2, true), (3, false)]);
    assert_eq!(
        store
            .fetch_conversation(&conversation_id)
            .await
            .unwrap()
            .last_seq,
        3
    );
}

pub async fn history_ranges_are_exact(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let conversation_id = group(&store, std::slice::from_ref(&alice)).await;
    let messages = (0..20)
        .map(|index| text(&conversation_id, &alice, &format!("h{index}")))
        .collect();
    store.append_messages(messages).await.unwrap();
    let seqs =
        |messages: Vec<parley_proto::Message>| messages.iter().map(|m| m.seq).collect::<Vec<_>>();
    let after = store
        .fetch_messages(
            &conversation_id,
            SeqRange {
                after_seq: Some(5),
                before_seq: None,
            },
            PageFrom::Oldest,
            3,
            &UserId::from("u_reader"),
        )
        .await
        .unwrap();
    assert_eq!(seqs(after), vec![6, 7, 8]);
    let before = store
        .fetch_messages(
            &conversation_id,
            SeqRange {
                after_seq: None,
                before_seq: Some(10),
            },
            PageFrom::Newest,
            3,
            &UserId::from("u_reader"),
        )
        .await
        .unwrap();
    assert_eq!(seqs(before), vec![7, 8, 9]);
    let newest = store
        .fetch_messages(
            &conversation_id,
            SeqRange::default(),
            PageFrom::Newest,
            2,
            &UserId::from("u_reader"),
        )
        .await
        .unwrap();
    assert_eq!(seqs(newest), vec![20, 21]);
    let tail = store
        .fetch_messages(
            &conversation_id,
            SeqRange {
                after_seq: Some(21),
                before_seq: None,
            },
            PageFrom::Oldest,
            10,
            &UserId::from("u_reader"),
        )
        .await
        .unwrap();
    assert!(tail.is_empty());
    let senders = store
        .fetch_senders(&conversation_id, 0, 21, RECEIPT_SENDERS)
        .await
        .unwrap();
    assert_eq!(
        senders,
        vec![alice],
        "system messages have no receipts to send"
    );
}

pub async fn membership_changes_commit_with_their_system_message(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    store
        .append_messages(vec![text(&conversation_id, &alice, "before carol")])
        .await
        .unwrap();
    let added = add_member(&store, &conversation_id, &alice, &carol)
        .await
        .unwrap();
    assert_eq!(added.message.seq, 3);
    let summary = store
        .fetch_conversation_summary(&conversation_id, &carol, UNREAD)
        .await
        .unwrap();
    assert_eq!(summary.conversation.member_count, 3);
    assert_eq!(
        summary.unread_count, 1,
        "history before joining is not unread; the join message is"
    );
    let removed = remove_member(&store, &conversation_id, &alice, &bob).await;
    assert_eq!(removed.message.seq, 4);
    let members: Vec<UserId> = store
        .fetch_members(&conversation_id)
        .await
        .unwrap()
        .into_iter()
        .map(|member| member.user_id)
        .collect();
    assert_eq!(members, vec![alice.clone(), carol]);
    change(
        &store,
        &conversation_id,
        ConversationChange::Rename {
            name: Some("renamed".into()),
            description: None,
        },
        system(
            &conversation_id,
            &alice,
            SystemEvent::ConversationRenamed {
                actor_id: alice.clone(),
                name: Some("renamed".into()),
                description: None,
            },
        ),
    )
    .await
    .unwrap();
    let record = store.fetch_conversation(&conversation_id).await.unwrap();
    assert_eq!(
        (record.name.as_deref(), record.last_seq, record.member_count),
        (Some("renamed"), 5, 2)
    );
    let missing = change(
        &store,
        &ConversationId::from("c_missing"),
        ConversationChange::Rename {
            name: Some("x".into()),
            description: None,
        },
        system(
            &ConversationId::from("c_missing"),
            &alice,
            SystemEvent::MemberLeft {
                user_id: alice.clone(),
            },
        ),
    )
    .await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

pub async fn only_members_append(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let mallory = user(&store, "mallory").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let before_removal = store
        .append_messages(vec![text(&conversation_id, &bob, "kept")])
        .await
        .unwrap()
        .remove(0)
        .expect("a member may send");
    remove_member(&store, &conversation_id, &alice, &bob).await;
    let outcomes = store
        .append_messages(vec![
            text(&conversation_id, &mallory, "intruder"),
            text(&conversation_id, &bob, "after removal"),
            text(&conversation_id, &bob, "kept"),
            text(&conversation_id, &alice, "still here"),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes[0],
        Err(parley_core::store::AppendRefusal::NotMember)
    );
    assert_eq!(
        outcomes[1],
        Err(parley_core::store::AppendRefusal::NotMember)
    );
    let retry = outcomes[2]
        .as_ref()
        .expect("a retry of a stored message is answered");
    assert!(retry.duplicate);
    assert_eq!(retry.message, before_removal.message);
    let fine = outcomes[3].as_ref().expect("members still send");
    assert_eq!(
        fine.message.seq, 4,
        "refused messages use no seq (1 created, 2 kept, 3 removal)"
    );
}

pub async fn changes_apply_only_at_the_expected_members_version(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let before = store.fetch_conversation(&conversation_id).await.unwrap();
    // Two changes decided on the same state: the first applies, the second is refused
    // whole (no role change, no system message, no seq).
    let hand_over = |to: &UserId, from: &UserId| ConversationUpdate {
        expected_members_version: before.members_version,
        changes: vec![ConversationChange::SetRoles(vec![
            (to.clone(), Role::Owner),
            (from.clone(), Role::Admin),
        ])],
        system_messages: vec![system(
            &conversation_id,
            from,
            SystemEvent::RoleChanged {
                actor_id: from.clone(),
                user_id: to.clone(),
                role: Role::Owner,
            },
        )],
    };
    let first = store
        .update_conversation(&conversation_id, hand_over(&bob, &alice))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let second = store
        .update_conversation(&conversation_id, hand_over(&alice, &bob))
        .await;
    assert!(
        matches!(second, Err(StoreError::Conflict(_))),
        "a stale members_version is refused: {second:?}"
    );
    let after = store.fetch_conversation(&conversation_id).await.unwrap();
    assert_eq!(after.members_version, before.members_version + 1);
    assert_eq!(
        after.last_seq,
        before.last_seq + 1,
        "the refused change used no seq"
    );
    let roles: Vec<(UserId, Role)> = store
        .fetch_members(&conversation_id)
        .await
        .unwrap()
        .into_iter()
        .map(|member| (member.user_id, member.role))
        .collect();
    assert!(roles.contains(&(bob.clone(), Role::Owner)));
    assert!(roles.contains(&(alice.clone(), Role::Admin)));
    // Several changes and messages in one update, in order, with consecutive seqs; the
    // store adds no rule of its own (removing the owner names no successor).
    let leave = ConversationUpdate {
        expected_members_version: after.members_version,
        changes: vec![
            ConversationChange::RemoveMember(bob.clone()),
            ConversationChange::SetRoles(vec![(alice.clone(), Role::Owner)]),
        ],
        system_messages: vec![
            system(
                &conversation_id,
                &bob,
                SystemEvent::MemberLeft {
                    user_id: bob.clone(),
                },
            ),
            system(
                &conversation_id,
                &bob,
                SystemEvent::RoleChanged {
                    actor_id: bob.clone(),
                    user_id: alice.clone(),
                    role: Role::Owner,
                },
            ),
        ],
    };
    let appended = store
        .update_conversation(&conversation_id, leave)
        .await
        .unwrap();
    let seqs: Vec<i64> = appended.iter().map(|a| a.message.seq).collect();
    assert_eq!(seqs, vec![after.last_seq + 1, after.last_seq + 2]);
    let members = store.fetch_members(&conversation_id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].user_id.clone(), members[0].role),
        (alice, Role::Owner)
    );
}

pub async fn list_is_newest_first_with_cursor_and_unread(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let mut conversation_ids = Vec::new();
    for _ in 0..3 {
        conversation_ids.push(group(&store, &[alice.clone(), bob.clone()]).await);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    // Activity in the oldest conversation moves it to the top.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    store
        .append_messages(vec![
            text(&conversation_ids[0], &bob, "x"),
            text(&conversation_ids[0], &bob, "y"),
        ])
        .await
        .unwrap();
    let first_page = store
        .list_conversations(&alice, ListFilter::All, None, 2, UNREAD)
        .await
        .unwrap();
    let ids: Vec<&ConversationId> = first_page
        .iter()
        .map(|summary| &summary.conversation.conversation_id)
        .collect();
    assert_eq!(ids, vec![&conversation_ids[0], &conversation_ids[2]]);
    assert_eq!(
        first_page[0].unread_count, 2,
        "bob's two messages; alice's own system message is not unread"
    );
    assert_eq!(first_page[0].last_message.as_ref().map(|m| m.seq), Some(3));
    let last = &first_page[1].conversation;
    let second_page = store
        .list_conversations(
            &alice,
            ListFilter::All,
            Some(ListCursor {
                pinned_at: None,
                last_activity_at: last.last_activity_at,
                conversation_id: last.conversation_id.clone(),
            }),
            2,
            UNREAD,
        )
        .await
        .unwrap();
    assert_eq!(second_page.len(), 1);
    assert_eq!(
        second_page[0].conversation.conversation_id,
        conversation_ids[1]
    );
    let positions = store.list_conversation_positions(&alice).await.unwrap();
    assert_eq!(positions.len(), 3);
}

pub async fn receipts_never_go_back_or_past_the_end(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let messages = (0..4)
        .map(|index| text(&conversation_id, &alice, &format!("r{index}")))
        .collect();
    store.append_messages(messages).await.unwrap();
    let update = |delivered_seq, read_seq| ReceiptUpdate {
        conversation_id: conversation_id.clone(),
        user_id: bob.clone(),
        delivered_seq,
        read_seq,
    };
    let changes = store.update_receipts(vec![update(3, 0)]).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].old_delivered_seq, changes[0].delivered_seq),
        (0, 3)
    );
    assert!(
        store
            .update_receipts(vec![update(2, 0)])
            .await
            .unwrap()
            .is_empty(),
        "no step back"
    );
    let changes = store.update_receipts(vec![update(0, 99)]).await.unwrap();
    assert_eq!(
        (changes[0].read_seq, changes[0].delivered_seq),
        (5, 5),
        "clamped to last_seq; read implies delivered"
    );
    let receipts = store.fetch_receipts(&conversation_id, 4).await.unwrap();
    assert_eq!(receipts.read_by, vec![bob.clone()]);
    assert_eq!(
        receipts.delivered_to,
        vec![bob.clone()],
        "the sender is not listed"
    );
    let outsider = user(&store, "mallory").await;
    let ignored = store
        .update_receipts(vec![ReceiptUpdate {
            conversation_id: conversation_id.clone(),
            user_id: outsider,
            delivered_seq: 3,
            read_seq: 3,
        }])
        .await
        .unwrap();
    assert!(ignored.is_empty(), "non-members have no pointers");
}

pub async fn non_members_see_nothing(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let mallory = user(&store, "mallory").await;
    let conversation_id = group(&store, std::slice::from_ref(&alice)).await;
    assert!(matches!(
        store
            .fetch_conversation_summary(&conversation_id, &mallory, UNREAD)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(store
        .list_conversations(&mallory, ListFilter::All, None, 10, UNREAD)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_conversation_positions(&mallory)
        .await
        .unwrap()
        .is_empty());
    let members: HashSet<UserId> = store
        .fetch_members(&conversation_id)
        .await
        .unwrap()
        .into_iter()
        .map(|member| member.user_id)
        .collect();
    assert!(!members.contains(&mallory));
}

/// `ping` answers `Ok` on a store that serves reads and writes (`/readyz` asks it), before
/// and after a write.
pub async fn a_ready_store_answers_ping(store: Arc<dyn Store>) {
    store.ping().await.expect("a fresh store answers");
    user(&store, "alice").await;
    store
        .ping()
        .await
        .expect("a store that has written answers");
}

/// `update_last_seen` stores when the user's last device went offline: `fetch_user` and
/// `fetch_users` read it back, a later call replaces it, and nothing else of the user
/// changes (the `offline` presence frame carries it).
pub async fn last_seen_is_stored_and_read_back(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let before = store.fetch_user(&alice).await.unwrap();
    assert_eq!(before.last_seen_at, None, "never seen");
    let first = Timestamp::from_millis(1_790_000_000_123);
    store.update_last_seen(&alice, first).await.unwrap();
    assert_eq!(
        store.fetch_user(&alice).await.unwrap(),
        UserRecord {
            last_seen_at: Some(first),
            ..before.clone()
        }
    );
    let later = Timestamp::from_millis(first.millis() + 60_000);
    store.update_last_seen(&alice, later).await.unwrap();
    let mut both = store
        .fetch_users(&[alice.clone(), bob.clone()])
        .await
        .unwrap();
    both.sort_by(|one, other| one.username.cmp(&other.username));
    let seen: Vec<(&str, Option<Timestamp>)> = both
        .iter()
        .map(|record| (record.username.as_str(), record.last_seen_at))
        .collect();
    assert_eq!(seen, vec![("alice", Some(later)), ("bob", None)]);
}

/// `fetch_members` lists the owner first, then admins, then members, each group by join
/// time (the order clients show, `protocol.md`), whatever the order of ids or of
/// role changes.
pub async fn members_are_ordered_owner_admins_then_by_join_time(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let dave = user(&store, "dave").await;
    let erin = user(&store, "erin").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    // Joins a few milliseconds apart, in an order unrelated to the ids.
    for joining in [&erin, &carol, &dave] {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        add_member(&store, &conversation_id, &alice, joining)
            .await
            .unwrap();
    }
    // The last to join becomes owner; the first owner and a later joiner become admins.
    change(
        &store,
        &conversation_id,
        ConversationChange::SetRoles(vec![
            (carol.clone(), Role::Admin),
            (dave.clone(), Role::Owner),
            (alice.clone(), Role::Admin),
        ]),
        system(
            &conversation_id,
            &alice,
            SystemEvent::RoleChanged {
                actor_id: alice.clone(),
                user_id: dave.clone(),
                role: Role::Owner,
            },
        ),
    )
    .await
    .unwrap();
    let members: Vec<(UserId, Role)> = store
        .fetch_members(&conversation_id)
        .await
        .unwrap()
        .into_iter()
        .map(|member| (member.user_id, member.role))
        .collect();
    assert_eq!(
        members,
        vec![
            (dave, Role::Owner),
            (alice, Role::Admin),
            (carol, Role::Admin),
            (bob, Role::Member),
            (erin, Role::Member),
        ]
    );
}

/// `Rename` sets what it names and keeps what it leaves `None` (a `PATCH` with only a
/// description keeps the name), with its system message and a new `members_version`.
pub async fn rename_changes_only_what_it_names(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let conversation_id = group(&store, std::slice::from_ref(&alice)).await;
    let rename = |name: Option<&str>, description: Option<&str>| {
        (
            ConversationChange::Rename {
                name: name.map(str::to_owned),
                description: description.map(str::to_owned),
            },
            system(
                &conversation_id,
                &alice,
                SystemEvent::ConversationRenamed {
                    actor_id: alice.clone(),
                    name: name.map(str::to_owned),
                    description: description.map(str::to_owned),
                },
            ),
        )
    };
    let before = store.fetch_conversation(&conversation_id).await.unwrap();
    assert_eq!(
        (before.name.as_deref(), before.description.as_deref()),
        (Some("team"), None)
    );

    let (described, message) = rename(None, Some("release crew"));
    let appended = change(&store, &conversation_id, described, message)
        .await
        .unwrap();
    let record = store.fetch_conversation(&conversation_id).await.unwrap();
    assert_eq!(
        (record.name.as_deref(), record.description.as_deref()),
        (Some("team"), Some("release crew")),
        "no name given: the name stays"
    );
    assert_eq!(appended.message.seq, before.last_seq + 1);
    assert_eq!(record.members_version, before.members_version + 1);

    let (renamed, message) = rename(Some("crew"), None);
    change(&store, &conversation_id, renamed, message)
        .await
        .unwrap();
    let record = store.fetch_conversation(&conversation_id).await.unwrap();
    assert_eq!(
        (record.name.as_deref(), record.description.as_deref()),
        (Some("crew"), Some("release crew")),
        "no description given: the description stays"
    );

    let (both, message) = rename(Some("ops"), Some("on call"));
    change(&store, &conversation_id, both, message)
        .await
        .unwrap();
    let record = store.fetch_conversation(&conversation_id).await.unwrap();
    assert_eq!(
        (record.name.as_deref(), record.description.as_deref()),
        (Some("ops"), Some("on call"))
    );
    assert_eq!(record.last_seq, before.last_seq + 3);
}

/// Owner succession is decided in `core` and given to the store as changes: removing the
/// owner and promoting a successor in one update leaves exactly one owner, and a role
/// for a member removed earlier in the same update is ignored, not a re-add. The store
/// adds no rule of its own: removing an owner alone names no successor.
pub async fn owner_succession_is_a_change_the_store_is_given(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone(), carol.clone()]).await;
    let before = store.fetch_conversation(&conversation_id).await.unwrap();
    let appended = store
        .update_conversation(
            &conversation_id,
            ConversationUpdate {
                expected_members_version: before.members_version,
                changes: vec![
                    ConversationChange::RemoveMember(alice.clone()),
                    ConversationChange::SetRoles(vec![
                        (bob.clone(), Role::Owner),
                        (alice.clone(), Role::Admin),
                    ]),
                ],
                system_messages: vec![
                    system(
                        &conversation_id,
                        &alice,
                        SystemEvent::MemberLeft {
                            user_id: alice.clone(),
                        },
                    ),
                    system(
                        &conversation_id,
                        &alice,
                        SystemEvent::RoleChanged {
                            actor_id: alice.clone(),
                            user_id: bob.clone(),
                            role: Role::Owner,
                        },
                    ),
                ],
            },
        )
        .await
        .unwrap();
    assert_eq!(appended.len(), 2);
    let members: Vec<(UserId, Role)> = store
        .fetch_members(&conversation_id)
        .await
        .unwrap()
        .into_iter()
        .map(|member| (member.user_id, member.role))
        .collect();
    assert_eq!(
        members,
        vec![(bob.clone(), Role::Owner), (carol.clone(), Role::Member)]
    );
    let after = store.fetch_conversation(&conversation_id).await.unwrap();
    assert_eq!(
        (after.member_count, after.members_version),
        (2, before.members_version + 1),
        "one update, one version"
    );
    assert!(matches!(
        store
            .fetch_conversation_summary(&conversation_id, &alice, UNREAD)
            .await,
        Err(StoreError::NotFound)
    ));

    remove_member(&store, &conversation_id, &bob, &bob).await;
    let members = store.fetch_members(&conversation_id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].user_id.clone(), members[0].role),
        (carol, Role::Member),
        "the store promotes nobody by itself"
    );
}

/// Each new message carries the `members_version` of its conversation in the transaction
/// that stored it: its recipients are the members at that version. Appends after a
/// membership change (the change's own system messages included) carry the moved
/// version; a retry of a stored message is a duplicate and carries 0.
pub async fn appends_carry_the_members_version_they_were_stored_at(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    let other_id = group(&store, &[bob.clone(), alice.clone()]).await;
    let version = store
        .fetch_conversation(&conversation_id)
        .await
        .unwrap()
        .members_version;
    let first = store
        .append_messages(vec![text(&conversation_id, &alice, "v1")])
        .await
        .unwrap()
        .remove(0)
        .expect("members may send");
    assert_eq!(first.members_version, version);

    let added = add_member(&store, &conversation_id, &alice, &carol)
        .await
        .unwrap();
    let moved = store
        .fetch_conversation(&conversation_id)
        .await
        .unwrap()
        .members_version;
    assert_eq!(moved, version + 1);
    assert_eq!(
        added.members_version, moved,
        "the change's system message goes to the members after it (carol included)"
    );

    let other_version = store
        .fetch_conversation(&other_id)
        .await
        .unwrap()
        .members_version;
    let outcomes = store
        .append_messages(vec![
            text(&conversation_id, &alice, "v2"),
            text(&other_id, &bob, "elsewhere"),
            text(&conversation_id, &carol, "v2 from carol"),
            text(&conversation_id, &alice, "v1"),
            text(&conversation_id, &alice, "v2"),
        ])
        .await
        .unwrap();
    let versions: Vec<(i64, bool)> = outcomes
        .iter()
        .map(|outcome| {
            let appended = outcome.as_ref().expect("members may send");
            (appended.members_version, appended.duplicate)
        })
        .collect();
    assert_eq!(
        versions,
        vec![
            (moved, false),
            (other_version, false),
            (moved, false),
            (0, true),
            (0, true),
        ],
        "each conversation's own version; 0 for a duplicate, stored before or in the batch"
    );
}

/// Counts and sender lists follow the rule the core gives (`Counting`), whatever it is:
/// the store holds no rule of its own about own or system messages.
pub async fn counts_follow_the_rule_they_are_given(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    // seq 1: alice's system message ("created the group").
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    store
        .append_messages(vec![
            text(&conversation_id, &alice, "from alice"),
            text(&conversation_id, &bob, "from bob"),
        ])
        .await
        .unwrap();
    let system = [ContentType::SYSTEM];
    let rules = [
        (
            Counting {
                except_types: &[],
                except_own: false,
            },
            3,
        ),
        (
            Counting {
                except_types: &[],
                except_own: true,
            },
            2,
        ),
        (
            Counting {
                except_types: &system,
                except_own: false,
            },
            2,
        ),
        (
            Counting {
                except_types: &system,
                except_own: true,
            },
            1,
        ),
    ];
    for (rule, expected) in rules {
        let summary = store
            .fetch_conversation_summary(&conversation_id, &bob, rule)
            .await
            .unwrap();
        assert_eq!(summary.unread_count, expected, "{rule:?}");
        let listed = store
            .list_conversations(&bob, ListFilter::All, None, 10, rule)
            .await
            .unwrap();
        assert_eq!(listed[0].unread_count, expected, "{rule:?} in the list");
    }
    let everyone = Counting {
        except_types: &[],
        except_own: false,
    };
    let mut senders = store
        .fetch_senders(&conversation_id, 0, 3, everyone)
        .await
        .unwrap();
    senders.sort();
    let mut both = vec![alice.clone(), bob.clone()];
    both.sort();
    assert_eq!(senders, both);
    let no_system = Counting {
        except_types: &system,
        except_own: false,
    };
    assert!(store
        .fetch_senders(&conversation_id, 0, 1, no_system)
        .await
        .unwrap()
        .is_empty());
}

/// A joiner's pointers start at the end of the history before they joined: nothing of it
/// is unread, and what comes after (their own `members_added` included) is.
pub async fn joiners_start_with_the_history_read(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let conversation_id = group(&store, &[alice.clone(), bob.clone()]).await;
    store
        .append_messages(vec![
            text(&conversation_id, &alice, "one"),
            text(&conversation_id, &bob, "two"),
        ])
        .await
        .unwrap();
    let added = add_member(&store, &conversation_id, &alice, &carol)
        .await
        .unwrap();
    assert_eq!(added.message.seq, 4);
    let summary = store
        .fetch_conversation_summary(&conversation_id, &carol, UNREAD)
        .await
        .unwrap();
    assert_eq!(
        summary.read_seq, 3,
        "read up to the last message before joining"
    );
    assert_eq!(summary.unread_count, 1, "the members_added message is news");
}

// ---- message changes, mentions, hiding and search --------------------------------

mod account;
mod blocks;
mod deletes;
mod expiry;
mod kit;
mod media;
mod mentions_hiding;
mod push;
mod reactions_edits;
mod search;
mod settings;

pub use account::*;
pub use blocks::*;
pub use deletes::*;
pub use expiry::*;
pub use kit::*;
pub use media::*;
pub use mentions_hiding::*;
pub use push::*;
pub use reactions_edits::*;
pub use search::*;
pub use settings::*;
