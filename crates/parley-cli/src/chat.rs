//! `parley chat <conversation>`: one conversation, live, in the terminal.
//!
//! Shows recent history, then everything the SDK connection reports for this
//! conversation (messages, receipts, typing, presence, reconnects) while each line typed
//! on stdin is sent. Messages shown are marked read. `/quit` or end of input closes the
//! connection cleanly. Other conversations' traffic is ignored, not shown.

use crate::output::{self, NameBook};
use crate::session::Session;
use anyhow::Context as _;
use parley_sdk::proto::{frames::Cursors, ConversationId, PresenceStatus, ReceiptStatus, UserId};
use parley_sdk::{Client, CloseReason, Connection, Event, ServerFrame};
use tokio::io::AsyncBufReadExt;

pub(crate) async fn run_chat(
    client: Client,
    saved: Session,
    conversation_id: ConversationId,
    history_limit: u32,
) -> anyhow::Result<()> {
    let conversation = client
        .conversation(&conversation_id)
        .await
        .with_context(|| format!("opening {conversation_id}"))?;
    let members = conversation.members.clone().unwrap_or_default();
    let mut names = NameBook::from_members(&members);
    println!(
        "— {} ({} members) — type to send, /quit to leave",
        output::conversation_title(&conversation, &saved.user_id),
        conversation.member_count
    );
    let mut last_shown_seq = 0;
    if history_limit > 0 {
        let page = client
            .history(&conversation_id, None, None, Some(history_limit))
            .await
            .context("fetching history")?;
        for message in &page.messages {
            println!("{}", output::message_line(message, &names));
            last_shown_seq = message.seq;
        }
    }
    // Live delivery picks up after what was shown; `sync` fills anything in between.
    let resume_from = if history_limit == 0 {
        conversation.last_seq
    } else {
        last_shown_seq
    };

    let mut config = client.connection_config()?;
    config.initial_cursors = Cursors::from([(conversation_id.clone(), resume_from)]);
    let mut connection = Connection::connect(config)
        .await
        .context("connecting to the live feed")?;
    let other_member_ids: Vec<UserId> = members
        .iter()
        .filter(|member| member.user_id.as_str() != saved.user_id)
        .map(|member| member.user_id.clone())
        .collect();
    if !other_member_ids.is_empty() && other_member_ids.len() <= 50 {
        connection.presence_subscribe(other_member_ids)?;
    }
    if last_shown_seq > conversation.last_read_seq {
        connection.read(conversation_id.clone(), last_shown_seq)?;
    }

    let mut stdin_lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = stdin_lines.next_line(), if stdin_open => {
                match line.context("reading stdin")? {
                    None => {
                        stdin_open = false;
                        connection.close().await.ok();
                    }
                    Some(line) if line.trim() == "/quit" => {
                        connection.close().await.ok();
                    }
                    Some(line) if line.trim().is_empty() => {}
                    Some(line) => {
                        connection.send(conversation_id.clone(), line)?;
                    }
                }
            }
            event = connection.next_event() => {
                let Some(event) = event else { return Ok(()) };
                if let Some(text) = describe(&event, &conversation_id, &mut names, &saved) {
                    println!("{text}");
                }
                match event {
                    Event::NewMessage(message) if message.conversation_id == conversation_id => {
                        connection.read(conversation_id.clone(), message.seq)?;
                    }
                    Event::Closed { reason: CloseReason::ByClient } => return Ok(()),
                    Event::Closed { reason } => {
                        anyhow::bail!("connection closed: {reason:?}");
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The line to print for an event, if it concerns this conversation.
fn describe(
    event: &Event,
    conversation_id: &ConversationId,
    names: &mut NameBook,
    saved: &Session,
) -> Option<String> {
    match event {
        Event::NewMessage(message) if &message.conversation_id == conversation_id => {
            Some(output::message_line(message, names))
        }
        Event::MsgAck(ack) if &ack.conversation_id == conversation_id => Some(format!(
            "#{} {} you: ✓ sent",
            ack.seq,
            output::clock_time(ack.created_at)
        )),
        Event::Frame(frame) => describe_frame(frame, conversation_id, names, saved),
        Event::Disconnected { reason } => Some(format!("  ! disconnected: {reason}")),
        Event::Reconnecting { attempt, delay } => Some(format!(
            "  ! reconnecting in {:.1} s (attempt {attempt})",
            delay.as_secs_f64()
        )),
        Event::Connected { resumed: true, .. } => Some("  · reconnected".into()),
        _ => None,
    }
}

/// The line to print for a frame the SDK passed on, if it concerns this conversation.
fn describe_frame(
    frame: &ServerFrame,
    conversation_id: &ConversationId,
    names: &mut NameBook,
    saved: &Session,
) -> Option<String> {
    match frame {
        ServerFrame::Receipt {
            conversation_id: receipt_conversation,
            user_id,
            status,
            up_to_seq,
        } if receipt_conversation == conversation_id && user_id.as_str() != saved.user_id => {
            let verb = match status {
                ReceiptStatus::Delivered => "received",
                ReceiptStatus::Read => "read",
            };
            Some(format!(
                "  · {} {verb} up to #{up_to_seq}",
                names.name(user_id.as_str())
            ))
        }
        ServerFrame::Typing {
            conversation_id: typing_conversation,
            user_id,
            is_typing: true,
        } if typing_conversation == conversation_id => {
            Some(format!("  · {} is typing…", names.name(user_id.as_str())))
        }
        ServerFrame::Presence {
            user_id, status, ..
        } => {
            let state = match status {
                PresenceStatus::Online => "online",
                PresenceStatus::Offline => "offline",
            };
            Some(format!("  · {} is {state}", names.name(user_id.as_str())))
        }
        ServerFrame::ConversationUpdated { conversation }
            if &conversation.conversation_id == conversation_id =>
        {
            if let Some(members) = &conversation.members {
                *names = NameBook::from_members(members);
            }
            Some(format!(
                "  · conversation updated: {} ({} members)",
                output::conversation_title(conversation, &saved.user_id),
                conversation.member_count
            ))
        }
        ServerFrame::ConversationRemoved {
            conversation_id: removed,
        } if removed == conversation_id => Some("  · you are no longer a member".into()),
        ServerFrame::Error { code, message, .. } => {
            Some(format!("  ! {}: {message}", code.as_str()))
        }
        _ => None,
    }
}
