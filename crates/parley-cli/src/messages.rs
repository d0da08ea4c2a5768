//! `parley react | edit | delete | forward | search`: what one does to messages besides
//! sending them.

use super::*;
use parley_sdk::proto::rest::ForwardRequest;
use std::collections::HashMap;

pub(crate) async fn react(
    server: &str,
    conversation_id: String,
    seq: i64,
    emoji: Option<String>,
    remove: bool,
) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    let emoji = if remove {
        String::new()
    } else {
        emoji.unwrap_or_default()
    };
    client
        .react(&ConversationId::from(conversation_id), seq, &emoji)
        .await
        .context("reacting")?;
    if emoji.is_empty() {
        println!("reaction to #{seq} removed");
    } else {
        println!("reacted {emoji} to #{seq}");
    }
    Ok(())
}

pub(crate) async fn edit(
    server: &str,
    conversation_id: String,
    seq: i64,
    text: Vec<String>,
) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    client
        .edit(&ConversationId::from(conversation_id), seq, &text.join(" "))
        .await
        .context("editing")?;
    println!("edited #{seq}");
    Ok(())
}

pub(crate) async fn delete(
    server: &str,
    conversation_id: String,
    seq: i64,
    for_me: bool,
) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    let conversation_id = ConversationId::from(conversation_id);
    if for_me {
        client
            .hide_message(&conversation_id, seq)
            .await
            .context("deleting for you")?;
        println!("#{seq} deleted for you");
    } else {
        client
            .delete_message(&conversation_id, seq)
            .await
            .context("deleting for everyone")?;
        println!("#{seq} deleted for everyone");
    }
    Ok(())
}

pub(crate) async fn forward(
    server: &str,
    conversation_id: String,
    seq: i64,
    to: Vec<String>,
) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    let copies = client
        .forward(&ForwardRequest {
            from_conversation_id: ConversationId::from(conversation_id),
            seq,
            to_conversation_ids: to.into_iter().map(ConversationId::from).collect(),
            client_msg_id: Some(parley_sdk::new_client_msg_id()),
        })
        .await
        .context("forwarding")?;
    for copy in copies {
        println!("forwarded as #{} in {}", copy.seq, copy.conversation_id);
    }
    Ok(())
}

pub(crate) async fn search(
    server: &str,
    query: Vec<String>,
    conversation_id: Option<String>,
    limit: u32,
    cursor: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let (client, saved) = logged_in(server)?;
    let conversation_id = conversation_id.map(ConversationId::from);
    let page = client
        .search(
            &query.join(" "),
            conversation_id.as_ref(),
            cursor.as_deref(),
            Some(limit),
        )
        .await
        .context("searching")?;
    if json {
        return print_json(&page);
    }
    let mut titles: HashMap<ConversationId, String> = HashMap::new();
    for result in &page.results {
        if !titles.contains_key(&result.conversation_id) {
            let conversation = client.conversation(&result.conversation_id).await?;
            titles.insert(
                result.conversation_id.clone(),
                output::conversation_title(&conversation, &saved.user_id),
            );
        }
        println!(
            "{} #{} {}  {}",
            result.conversation_id, result.seq, titles[&result.conversation_id], result.snippet
        );
    }
    if page.results.is_empty() {
        println!("no messages found");
    }
    if let Some(cursor) = page.next_cursor {
        println!("… more: --cursor {cursor}");
    }
    Ok(())
}
