//! Builders and readers the change, mention, hiding and search cases share.

use super::*;

/// A text message from `sender_id` saying `content`, with a fresh client id.
pub fn say(conversation_id: &ConversationId, sender_id: &UserId, content: &str) -> NewMessage {
    let mut message = text(
        conversation_id,
        sender_id,
        &format!("say:{}", ids::new_message_id()),
    );
    message.content = content.to_owned();
    message
}

/// A change entry of `kind` (`reaction`, `edit`, `delete`) from `sender_id` on the message
/// `target_seq`, with `content` (an emoji or `""`, the new text, `""`).
pub fn change_entry(
    conversation_id: &ConversationId,
    sender_id: &UserId,
    kind: ContentType,
    target_seq: i64,
    content: &str,
) -> NewMessage {
    let mut message = say(conversation_id, sender_id, content);
    message.content_type = kind;
    message.target_seq = Some(target_seq);
    message
}

/// `sender_id` sets (or with `""` clears) their reaction on `target_seq`.
pub fn react(
    conversation_id: &ConversationId,
    sender_id: &UserId,
    target_seq: i64,
    emoji: &str,
) -> NewMessage {
    change_entry(
        conversation_id,
        sender_id,
        ContentType::REACTION,
        target_seq,
        emoji,
    )
}

/// `sender_id` replaces the text of `target_seq` with `content`.
pub fn edit(
    conversation_id: &ConversationId,
    sender_id: &UserId,
    target_seq: i64,
    content: &str,
) -> NewMessage {
    change_entry(
        conversation_id,
        sender_id,
        ContentType::EDIT,
        target_seq,
        content,
    )
}

/// `sender_id` deletes `target_seq` for everyone.
pub fn delete(conversation_id: &ConversationId, sender_id: &UserId, target_seq: i64) -> NewMessage {
    change_entry(
        conversation_id,
        sender_id,
        ContentType::DELETE,
        target_seq,
        "",
    )
}

/// Appends one message and returns its outcome.
pub async fn append_one(store: &Arc<dyn Store>, message: NewMessage) -> AppendOutcome {
    store
        .append_messages(vec![message])
        .await
        .expect("append")
        .remove(0)
}

/// Appends one message that must be stored as new, and returns it with its `seq`.
pub async fn send(store: &Arc<dyn Store>, message: NewMessage) -> Message {
    let appended = append_one(store, message).await.expect("stored");
    assert!(!appended.duplicate, "a new message");
    appended.message
}

/// A conversation's whole history as `viewer` sees it.
pub async fn history(
    store: &Arc<dyn Store>,
    conversation_id: &ConversationId,
    viewer: &UserId,
) -> Vec<Message> {
    store
        .fetch_messages(
            conversation_id,
            SeqRange::default(),
            PageFrom::Oldest,
            1000,
            viewer,
        )
        .await
        .expect("history")
}

/// The message `seq` as `viewer` sees it in the history.
pub async fn seen(
    store: &Arc<dyn Store>,
    conversation_id: &ConversationId,
    viewer: &UserId,
    seq: i64,
) -> Message {
    let mut page = store
        .fetch_messages(
            conversation_id,
            SeqRange {
                after_seq: Some(seq - 1),
                before_seq: Some(seq + 1),
            },
            PageFrom::Oldest,
            10,
            viewer,
        )
        .await
        .expect("history");
    assert_eq!(page.len(), 1, "seq {seq} is in the history");
    page.remove(0)
}

/// The reactions on `seq` as `viewer` sees them.
pub async fn reactions_seen(
    store: &Arc<dyn Store>,
    conversation_id: &ConversationId,
    viewer: &UserId,
    seq: i64,
) -> Vec<ReactionCount> {
    seen(store, conversation_id, viewer, seq).await.reactions
}

pub fn count(emoji: &str, count: u32, me: bool) -> ReactionCount {
    ReactionCount {
        emoji: emoji.to_owned(),
        count,
        me,
    }
}

pub fn seqs_of(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|message| message.seq).collect()
}

/// What `user_id` finds for `query` (folded as `parley_core::search` folds it), in one
/// conversation or in all of theirs, as the store orders it.
pub async fn search(
    store: &Arc<dyn Store>,
    user_id: &UserId,
    query: &str,
    conversation_id: Option<&ConversationId>,
) -> Vec<Message> {
    let terms = query_terms(query);
    assert!(!terms.is_empty(), "{query:?} has terms");
    store
        .search_messages(SearchQuery {
            user_id,
            terms: &terms,
            conversation_id,
            before: None,
            limit: 100,
        })
        .await
        .expect("search")
}

/// The `seq`s `user_id` finds for `query` in one conversation, ascending.
pub async fn found(
    store: &Arc<dyn Store>,
    user_id: &UserId,
    query: &str,
    conversation_id: &ConversationId,
) -> Vec<i64> {
    let results = search(store, user_id, query, Some(conversation_id)).await;
    assert!(
        results
            .iter()
            .all(|message| &message.conversation_id == conversation_id),
        "{query:?}: only the conversation asked for"
    );
    let mut seqs = seqs_of(&results);
    seqs.sort_unstable();
    seqs
}

pub async fn summary(
    store: &Arc<dyn Store>,
    conversation_id: &ConversationId,
    user_id: &UserId,
) -> ConversationSummary {
    store
        .fetch_conversation_summary(conversation_id, user_id, UNREAD)
        .await
        .expect("summary")
}

/// The `seq` of the conversation's preview for `user_id`.
pub async fn preview_seq(
    store: &Arc<dyn Store>,
    conversation_id: &ConversationId,
    user_id: &UserId,
) -> Option<i64> {
    summary(store, conversation_id, user_id)
        .await
        .last_message
        .map(|message| message.seq)
}

/// Moves `user_id`'s read (and delivered) pointer to `seq`.
pub async fn read_up_to(
    store: &Arc<dyn Store>,
    conversation_id: &ConversationId,
    user_id: &UserId,
    seq: i64,
) {
    store
        .update_receipts(vec![ReceiptUpdate {
            conversation_id: conversation_id.clone(),
            user_id: user_id.clone(),
            delivered_seq: seq,
            read_seq: seq,
        }])
        .await
        .expect("receipts");
}

/// A new direct conversation between `first` and `second`.
pub async fn direct(store: &Arc<dyn Store>, first: &UserId, second: &UserId) -> ConversationId {
    let (record, created) = store
        .insert_conversation(NewConversation {
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
        })
        .await
        .expect("direct conversation");
    assert!(created);
    record.conversation_id
}
