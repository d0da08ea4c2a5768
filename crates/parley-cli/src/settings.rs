//! `parley mute | archive | pin | mark-unread`: your own settings for a conversation;
//! `parley block | blocked | privacy`: whom you block and who sees your presence;
//! `parley disappear`: disappearing messages in a conversation; `parley account`: export,
//! log out everywhere, delete.

use super::*;
use parley_sdk::proto::{LastSeenPrivacy, MutedUntil, Timestamp};

/// `parley privacy <choice>`: who sees your online status and last seen.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LastSeenChoice {
    Everyone,
    /// The people you have a direct chat with.
    Contacts,
    Nobody,
}

/// `parley disappear <conversation> <after>`: the protocol's choices.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum DisappearAfter {
    #[value(name = "24h")]
    Day,
    #[value(name = "7d")]
    Week,
    #[value(name = "90d")]
    Quarter,
    Off,
}

pub(crate) async fn disappear(
    server: &str,
    conversation_id: String,
    after: DisappearAfter,
) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    let seconds = match after {
        DisappearAfter::Day => 86_400,
        DisappearAfter::Week => 7 * 86_400,
        DisappearAfter::Quarter => 90 * 86_400,
        DisappearAfter::Off => 0,
    };
    client
        .set_disappearing(&ConversationId::from(conversation_id), seconds)
        .await
        .context("setting disappearing messages")?;
    match after {
        DisappearAfter::Off => println!("disappearing messages off"),
        _ => println!("messages sent from now on disappear after {seconds} s"),
    }
    Ok(())
}

pub(crate) async fn block(server: &str, username: &str, block: bool) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    let user = resolve_username(&client, username).await?;
    if block {
        client.block(&user.user_id).await.context("blocking")?;
        println!("blocked {}", user.username);
    } else {
        client.unblock(&user.user_id).await.context("unblocking")?;
        println!("unblocked {}", user.username);
    }
    Ok(())
}

pub(crate) async fn blocked(server: &str, json: bool) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    let blocked = client
        .blocked_users()
        .await
        .context("listing blocked users")?;
    if json {
        print_json(&blocked)?;
    } else if blocked.is_empty() {
        println!("you block nobody");
    } else {
        for user in blocked {
            println!(
                "{} ({}) since {}",
                user.username, user.display_name, user.blocked_at
            );
        }
    }
    Ok(())
}

pub(crate) async fn privacy(server: &str, choice: LastSeenChoice) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    let privacy = match choice {
        LastSeenChoice::Everyone => LastSeenPrivacy::Everyone,
        LastSeenChoice::Contacts => LastSeenPrivacy::Contacts,
        LastSeenChoice::Nobody => LastSeenPrivacy::Nobody,
    };
    let profile = client
        .set_last_seen_privacy(privacy)
        .await
        .context("changing your privacy")?;
    println!(
        "online status and last seen: {}",
        profile.last_seen_privacy.as_str()
    );
    Ok(())
}

/// How long `--for` mutes: `forever`, or a number of minutes, hours, days or weeks
/// (`30m`, `8h`, `2d`, `1w`), counted from `now`.
pub(crate) fn mute_until(duration: &str, now: Timestamp) -> anyhow::Result<MutedUntil> {
    if duration == "forever" {
        return Ok(MutedUntil::Forever);
    }
    let invalid = || anyhow::anyhow!("--for takes 8h, 1w, forever, or a number of m, h, d or w");
    let unit = duration.chars().last().ok_or_else(invalid)?;
    let amount: i64 = duration[..duration.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| invalid())?;
    let minutes = match unit {
        'm' => 1,
        'h' => 60,
        'd' => 24 * 60,
        'w' => 7 * 24 * 60,
        _ => return Err(invalid()),
    };
    let millis = amount
        .checked_mul(minutes * 60_000)
        .filter(|millis| *millis > 0)
        .ok_or_else(invalid)?;
    Ok(MutedUntil::Until(Timestamp(
        now.millis().saturating_add(millis),
    )))
}

pub(crate) async fn mute(
    server: &str,
    conversation_id: String,
    duration: Option<String>,
) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    let until = duration
        .map(|duration| mute_until(&duration, Timestamp::now()))
        .transpose()?;
    client
        .mute(&ConversationId::from(conversation_id), until)
        .await
        .context("muting")?;
    match until {
        None => println!("unmuted"),
        Some(MutedUntil::Forever) => println!("muted"),
        Some(MutedUntil::Until(until)) => println!("muted until {until}"),
    }
    Ok(())
}

pub(crate) async fn archive(
    server: &str,
    conversation_id: String,
    archived: bool,
) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    client
        .archive(&ConversationId::from(conversation_id), archived)
        .await
        .context("archiving")?;
    println!("{}", if archived { "archived" } else { "unarchived" });
    Ok(())
}

pub(crate) async fn clear(server: &str, conversation_id: String) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    let conversation = client
        .clear_conversation(&ConversationId::from(conversation_id))
        .await
        .context("deleting the chat")?;
    println!(
        "deleted for you up to #{}",
        conversation.cleared_seq.unwrap_or_default()
    );
    Ok(())
}

pub(crate) async fn pin(server: &str, conversation_id: String, pinned: bool) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    client
        .pin(&ConversationId::from(conversation_id), pinned)
        .await
        .context("pinning")?;
    println!("{}", if pinned { "pinned" } else { "unpinned" });
    Ok(())
}

pub(crate) async fn mark_unread(
    server: &str,
    conversation_id: String,
    marked: bool,
) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    client
        .mark_unread(&ConversationId::from(conversation_id), marked)
        .await
        .context("marking unread")?;
    println!(
        "{}",
        if marked {
            "marked unread"
        } else {
            "unread mark cleared"
        }
    );
    Ok(())
}

/// `parley account …`
#[derive(Debug, clap::Subcommand)]
pub enum AccountCommand {
    /// Download everything you sent and what parley keeps about you, as JSON.
    Export {
        /// Write it to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Revoke every device's login, this one's too.
    LogoutEverywhere,
    /// Delete your account for good (your messages stay for the others).
    Delete {
        /// For scripts; prompted for when absent.
        #[arg(long, env = "PARLEY_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

pub(crate) async fn account(server: &str, command: AccountCommand) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    match command {
        AccountCommand::Export { output } => {
            let export = client.export().await.context("exporting your data")?;
            let text = serde_json::to_string_pretty(&export)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!(
                        "{} messages exported to {}",
                        export.messages.len(),
                        path.display()
                    );
                }
                None => println!("{text}"),
            }
        }
        AccountCommand::LogoutEverywhere => {
            client
                .logout_everywhere()
                .await
                .context("logging out everywhere")?;
            session::remove(&session::config_dir()?)?;
            println!("logged out of every device");
        }
        AccountCommand::Delete { password } => {
            let password = match password {
                Some(password) => password,
                None => prompt_password("Password (to delete your account): ")?,
            };
            client
                .delete_account(&password)
                .await
                .context("deleting your account")?;
            session::remove(&session::config_dir()?)?;
            println!("account deleted");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mute_durations() {
        let now = Timestamp(1_000_000);
        assert_eq!(mute_until("forever", now).unwrap(), MutedUntil::Forever);
        assert_eq!(
            mute_until("8h", now).unwrap(),
            MutedUntil::Until(Timestamp(1_000_000 + 8 * 3_600_000))
        );
        assert_eq!(
            mute_until("1w", now).unwrap(),
            MutedUntil::Until(Timestamp(1_000_000 + 7 * 24 * 3_600_000))
        );
        for bad in ["", "h", "0h", "-1h", "8", "8x", "99999999999999w", "ö"] {
            assert!(mute_until(bad, now).is_err(), "{bad}");
        }
    }
}
