//! The `parley` command-line client: account, conversations, messages, live chat, bench.
//!
//! [`Command`] is the clap subcommand set that the `parley` binary embeds next to
//! `serve`; [`run`] executes one against the server given by the binary's global
//! `--server`. Login state lives in [`session`]; everything else goes through
//! `parley-sdk`, so the CLI holds no protocol logic of its own.

mod chat;
mod media;
mod messages;
pub mod output;
pub mod session;
mod settings;

use anyhow::{bail, Context as _};
use output::NameBook;
use parley_sdk::proto::rest::SendMessageRequest;
use parley_sdk::proto::{ConversationId, PublicProfile, UserId};
use parley_sdk::Client;
use session::{prompt_new_password, prompt_password, Session};

/// `parley <command>`: everything a person or a script does as a client.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create an account and log in with it.
    Register {
        /// 3-32 characters of a-z, 0-9, `_` and `.`.
        username: String,
        /// The name others see (defaults to the username).
        #[arg(long)]
        display_name: Option<String>,
        /// For scripts; prompted for when absent.
        #[arg(long, env = "PARLEY_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Log in (a new device) and keep the token in the config directory.
    Login {
        username: String,
        /// For scripts; prompted for when absent.
        #[arg(long, env = "PARLEY_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// How this device shows up in the device list.
        #[arg(long, default_value = "parley cli")]
        device_name: String,
    },
    /// Revoke the token everywhere and forget it.
    Logout,
    /// Show who is logged in.
    Whoami {
        #[arg(long)]
        json: bool,
    },
    /// Search users by username or display name.
    Users {
        query: String,
        #[arg(long)]
        json: bool,
    },
    /// List conversations: pinned first, then newest activity first.
    Conversations {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// The archived conversations instead.
        #[arg(long)]
        archived: bool,
        #[arg(long)]
        json: bool,
    },
    /// Mute a conversation's notifications: for 8h, 1w, or forever (`--off` unmutes).
    Mute {
        conversation_id: String,
        /// 8h, 1w, forever, or any number of m, h, d or w (e.g. 30m, 2d).
        #[arg(long = "for", default_value = "forever", conflicts_with = "off")]
        duration: String,
        #[arg(long)]
        off: bool,
    },
    /// Move a conversation to the archive (`--undo` takes it out); a new message brings
    /// it back unless it is muted.
    Archive {
        conversation_id: String,
        #[arg(long)]
        undo: bool,
    },
    /// Pin a conversation to the top of the list, at most 5 (`--undo` unpins).
    Pin {
        conversation_id: String,
        #[arg(long)]
        undo: bool,
    },
    /// Mark a conversation as unread (`--undo` clears the mark; reading it does too).
    MarkUnread {
        conversation_id: String,
        #[arg(long)]
        undo: bool,
    },
    /// Delete a chat for yourself: what it holds so far leaves your history and list.
    Clear { conversation_id: String },
    /// Block a user (`--undo` unblocks): no direct messages either way, no presence.
    Block {
        username: String,
        #[arg(long)]
        undo: bool,
    },
    /// List the users you block.
    Blocked {
        #[arg(long)]
        json: bool,
    },
    /// Disappearing messages for what is sent from now on: 24h, 7d, 90d or off.
    Disappear {
        conversation_id: String,
        #[arg(value_enum)]
        after: settings::DisappearAfter,
    },
    /// Who sees your online status and last seen.
    Privacy {
        #[arg(value_enum)]
        last_seen: settings::LastSeenChoice,
    },
    /// Your account: export your data, log out everywhere, delete it.
    #[command(subcommand)]
    Account(settings::AccountCommand),
    /// Create a direct chat or a group.
    #[command(subcommand)]
    Create(CreateCommand),
    /// Send a text message.
    Send {
        conversation_id: String,
        /// The text, or the caption of the attachments (words are joined with spaces).
        #[arg(required_unless_present = "attach", num_args = 1..)]
        text: Vec<String>,
        /// A file to attach (photo, video, voice note, any file); repeat for several.
        #[arg(long, value_name = "FILE")]
        attach: Vec<std::path::PathBuf>,
    },
    /// Save a photo, video or file someone sent (its `media_id`) to a file.
    Download {
        media_id: String,
        #[arg(long, short)]
        out: std::path::PathBuf,
        /// The picture's thumbnail instead.
        #[arg(long)]
        thumbnail: bool,
    },
    /// Set your profile picture from a picture file (or a group's, with `--group`;
    /// `--remove` takes it away).
    Avatar {
        #[arg(required_unless_present = "remove")]
        file: Option<std::path::PathBuf>,
        /// The group (its id) whose picture to set, if you are one of its admins.
        #[arg(long, value_name = "CONVERSATION_ID")]
        group: Option<String>,
        #[arg(long, conflicts_with = "file")]
        remove: bool,
    },
    /// Show messages, oldest first.
    History {
        conversation_id: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only messages before this seq (page backwards).
        #[arg(long)]
        before: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Mark a conversation read up to a seq.
    Read { conversation_id: String, seq: i64 },
    /// React to a message with an emoji (`--remove` takes your reaction back).
    React {
        conversation_id: String,
        seq: i64,
        /// One emoji, e.g. 👍.
        #[arg(required_unless_present = "remove")]
        emoji: Option<String>,
        #[arg(long, conflicts_with = "emoji")]
        remove: bool,
    },
    /// Replace the text of one of your messages (within 48 hours).
    Edit {
        conversation_id: String,
        seq: i64,
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Delete a message for everyone, or only for you (`--for-me`).
    Delete {
        conversation_id: String,
        seq: i64,
        #[arg(long)]
        for_me: bool,
    },
    /// Copy a message into up to five other conversations.
    Forward {
        conversation_id: String,
        seq: i64,
        /// The conversations to copy it to.
        #[arg(required = true, num_args = 1..=5)]
        to: Vec<String>,
    },
    /// Search your messages (every word matches words it starts, any case or accent).
    Search {
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        /// Only in this conversation.
        #[arg(long = "in")]
        conversation_id: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The `next_cursor` of a previous page.
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Open a conversation live: print what arrives, send each line typed.
    Chat {
        conversation_id: String,
        /// Messages of history to show first.
        #[arg(long, default_value_t = 20)]
        history: u32,
    },
    /// Load-test a server (see `parley bench --help`).
    Bench {
        #[command(flatten)]
        args: parley_loadgen::BenchArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `parley create …`
#[derive(Debug, clap::Subcommand)]
pub enum CreateCommand {
    /// A direct chat with one user (returns the existing one if there is one).
    Direct {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// A group with you as owner.
    Group {
        name: String,
        /// Usernames of the other members.
        usernames: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Runs one command against `server` (e.g. `http://127.0.0.1:8080`).
pub async fn run(command: Command, server: &str) -> anyhow::Result<()> {
    let server = session::normalize_server(server);
    match command {
        Command::Register {
            username,
            display_name,
            password,
        } => {
            let password = match password {
                Some(password) => password,
                None => prompt_new_password()?,
            };
            let client = Client::new(&server)?;
            let auth = client
                .register(&username, &password, display_name.as_deref())
                .await
                .with_context(|| format!("registering {username}"))?;
            let path = save_session(&server, &username, &auth)?;
            println!(
                "registered {username} ({}), logged in; session saved to {}",
                auth.user_id,
                path.display()
            );
        }
        Command::Login {
            username,
            password,
            device_name,
        } => {
            let password = match password {
                Some(password) => password,
                None => prompt_password(&format!("password for {username}: "))?,
            };
            let client = Client::new(&server)?;
            let auth = client
                .login_device(&username, &password, Some(&device_name))
                .await
                .with_context(|| format!("logging in as {username}"))?;
            let path = save_session(&server, &username, &auth)?;
            println!(
                "logged in as {username} (device {}); session saved to {}",
                auth.device_id,
                path.display()
            );
        }
        Command::Logout => {
            let dir = session::config_dir()?;
            let Some(saved) = session::load(&dir)? else {
                println!("not logged in");
                return Ok(());
            };
            let client = Client::new(&saved.server)?.with_token(saved.token.clone());
            match client.logout().await {
                Ok(()) => {}
                // Already revoked: forgetting it locally is all that is left to do.
                Err(error) if error.status() == Some(401) => {}
                Err(error) => return Err(error).context("logging out"),
            }
            session::remove(&dir)?;
            println!("logged out {}", saved.username);
        }
        Command::Whoami { json } => {
            let (client, saved) = logged_in(&server)?;
            let profile = client.me().await.context("fetching your profile")?;
            if json {
                print_json(&profile)?;
            } else {
                println!(
                    "{} ({}) user {} device {} on {}",
                    profile.username,
                    profile.display_name,
                    profile.user_id,
                    saved.device_id,
                    saved.server
                );
                if let Some(status_message) = profile.status_message {
                    println!("status: {status_message}");
                }
            }
        }
        Command::Users { query, json } => {
            let (client, _) = logged_in(&server)?;
            let users = client
                .search_users(&query)
                .await
                .context("searching users")?;
            if json {
                print_json(&users)?;
            } else if users.is_empty() {
                println!("no users match {query:?}");
            } else {
                for profile in &users {
                    println!("{}", output::user_line(profile));
                }
            }
        }
        Command::Conversations {
            limit,
            archived,
            json,
        } => {
            let (client, saved) = logged_in(&server)?;
            let list = if archived {
                client.archived_conversations(None, Some(limit)).await
            } else {
                client.conversations(None, Some(limit)).await
            }
            .context("listing conversations")?;
            if json {
                print_json(&list)?;
            } else if list.conversations.is_empty() {
                println!("no conversations yet: try `parley create direct <username>`");
            } else {
                for conversation in &list.conversations {
                    println!(
                        "{}",
                        output::conversation_line(conversation, &saved.user_id)
                    );
                }
            }
        }
        Command::Account(command) => settings::account(&server, command).await?,
        Command::Create(create) => {
            let (client, saved) = logged_in(&server)?;
            let (conversation, json) = match create {
                CreateCommand::Direct { username, json } => {
                    let user = resolve_username(&client, &username).await?;
                    (client.create_direct(&user.user_id).await?, json)
                }
                CreateCommand::Group {
                    name,
                    usernames,
                    json,
                } => {
                    let mut member_ids: Vec<UserId> = Vec::with_capacity(usernames.len());
                    for username in &usernames {
                        member_ids.push(resolve_username(&client, username).await?.user_id);
                    }
                    (client.create_group(&name, &member_ids).await?, json)
                }
            };
            if json {
                print_json(&conversation)?;
            } else {
                println!(
                    "{}",
                    output::conversation_line(&conversation, &saved.user_id)
                );
            }
        }
        Command::Send {
            conversation_id,
            text,
            attach,
        } => media::send(&server, conversation_id, text, attach).await?,
        Command::Download {
            media_id,
            out,
            thumbnail,
        } => media::download(&server, media_id, out, thumbnail).await?,
        Command::Avatar { file, group, .. } => media::avatar(&server, file, group).await?,
        Command::History {
            conversation_id,
            limit,
            before,
            json,
        } => {
            let (client, _) = logged_in(&server)?;
            let conversation_id = ConversationId::from(conversation_id);
            let page = client
                .history(&conversation_id, before, None, Some(limit))
                .await
                .context("fetching history")?;
            if json {
                print_json(&page)?;
            } else {
                let conversation = client.conversation(&conversation_id).await?;
                let names = NameBook::from_members(conversation.members.as_deref().unwrap_or(&[]));
                if page.has_more {
                    let oldest = page.messages.first().map_or(0, |message| message.seq);
                    println!("… older messages: --before {oldest}");
                }
                for message in &page.messages {
                    println!("{}", output::message_line(message, &names));
                }
            }
        }
        Command::Read {
            conversation_id,
            seq,
        } => {
            let (client, _) = logged_in(&server)?;
            client
                .mark_read(&ConversationId::from(conversation_id), seq)
                .await
                .context("marking read")?;
            println!("read up to #{seq}");
        }
        Command::Mute {
            conversation_id,
            duration,
            off,
        } => settings::mute(&server, conversation_id, (!off).then_some(duration)).await?,
        Command::Archive {
            conversation_id,
            undo,
        } => settings::archive(&server, conversation_id, !undo).await?,
        Command::Pin {
            conversation_id,
            undo,
        } => settings::pin(&server, conversation_id, !undo).await?,
        Command::MarkUnread {
            conversation_id,
            undo,
        } => settings::mark_unread(&server, conversation_id, !undo).await?,
        Command::Clear { conversation_id } => settings::clear(&server, conversation_id).await?,
        Command::Block { username, undo } => settings::block(&server, &username, !undo).await?,
        Command::Blocked { json } => settings::blocked(&server, json).await?,
        Command::Disappear {
            conversation_id,
            after,
        } => settings::disappear(&server, conversation_id, after).await?,
        Command::Privacy { last_seen } => settings::privacy(&server, last_seen).await?,
        Command::React {
            conversation_id,
            seq,
            emoji,
            remove,
        } => messages::react(&server, conversation_id, seq, emoji, remove).await?,
        Command::Edit {
            conversation_id,
            seq,
            text,
        } => messages::edit(&server, conversation_id, seq, text).await?,
        Command::Delete {
            conversation_id,
            seq,
            for_me,
        } => messages::delete(&server, conversation_id, seq, for_me).await?,
        Command::Forward {
            conversation_id,
            seq,
            to,
        } => messages::forward(&server, conversation_id, seq, to).await?,
        Command::Search {
            query,
            conversation_id,
            limit,
            cursor,
            json,
        } => messages::search(&server, query, conversation_id, limit, cursor, json).await?,
        Command::Chat {
            conversation_id,
            history,
        } => {
            let (client, saved) = logged_in(&server)?;
            chat::run_chat(
                client,
                saved,
                ConversationId::from(conversation_id),
                history,
            )
            .await?;
        }
        Command::Bench { args, json } => {
            let is_traffic = args.mode == parley_loadgen::Mode::Traffic;
            let report = parley_loadgen::run(&server, args).await?;
            if json {
                print_json(&report)?;
            } else {
                print!("{report}");
            }
            if is_traffic && !report.is_clean() {
                bail!(
                    "the run lost {} deliveries, duplicated {}, left {} sends unacknowledged",
                    report.lost,
                    report.duplicated,
                    report.unacked
                );
            }
        }
    }
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn save_session(
    server: &str,
    username: &str,
    auth: &parley_sdk::proto::rest::AuthResponse,
) -> anyhow::Result<std::path::PathBuf> {
    let saved = Session {
        server: server.to_owned(),
        username: username.to_owned(),
        user_id: auth.user_id.to_string(),
        device_id: auth.device_id.to_string(),
        token: auth.token.clone(),
    };
    session::save(&session::config_dir()?, &saved)
}

/// The saved session for `server` and a client using it.
fn logged_in(server: &str) -> anyhow::Result<(Client, Session)> {
    let dir = session::config_dir()?;
    let Some(saved) = session::load(&dir)? else {
        bail!("not logged in: run `parley login <username>` first");
    };
    if saved.server != server {
        bail!(
            "your session is for {}, not {server}: run `parley --server {server} login <username>`",
            saved.server
        );
    }
    let client = Client::new(server)?.with_token(saved.token.clone());
    Ok((client, saved))
}

/// The user with exactly this username (search may return partial matches).
async fn resolve_username(client: &Client, username: &str) -> anyhow::Result<PublicProfile> {
    let candidates = client
        .search_users(username)
        .await
        .with_context(|| format!("looking up {username}"))?;
    pick_exact_username(candidates, username)
}

fn pick_exact_username(
    candidates: Vec<PublicProfile>,
    username: &str,
) -> anyhow::Result<PublicProfile> {
    let wanted = username.trim_start_matches('@').to_ascii_lowercase();
    candidates
        .into_iter()
        .find(|profile| profile.username == wanted)
        .with_context(|| format!("no user named {username}"))
}

#[cfg(test)]
mod tests;
