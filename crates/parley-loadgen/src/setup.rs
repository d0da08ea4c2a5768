//! Getting a run ready: fresh users, the planned conversations, one connection each.
//!
//! Users are named `<prefix>_<index>` with a random prefix per run, so runs never
//! collide on a long-lived server. Requests run with bounded parallelism (password
//! hashing makes registration the slowest part). Nothing here measures anything.

use crate::plan::PlannedConversation;
use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt};
use parley_sdk::proto::{ConversationId, UserId};
use parley_sdk::{Client, Connection, ConnectionConfig};
use rand::Rng;
use std::time::Duration;

/// One registered simulated user.
#[derive(Clone, Debug)]
pub struct SimUser {
    pub username: String,
    pub user_id: UserId,
    /// Logged in with the user's first device.
    pub client: Client,
}

/// A username prefix unique to this run: `lg` and six random base-36 characters.
pub fn random_prefix(random: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut prefix = String::from("lg");
    for _ in 0..6 {
        prefix.push(ALPHABET[random.random_range(0..ALPHABET.len())] as char);
    }
    prefix
}

/// Registers `count` users named `<prefix>_<index>`, in index order.
pub async fn register_users(
    server: &str,
    prefix: &str,
    count: usize,
    password: &str,
    concurrency: usize,
) -> anyhow::Result<Vec<SimUser>> {
    let shared_pool = Client::new(server)?;
    futures::stream::iter(0..count)
        .map(|index| {
            let client = shared_pool.new_session();
            async move {
                let username = format!("{prefix}_{index}");
                let auth = client
                    .register(&username, password, Some(&format!("Load user {index}")))
                    .await
                    .with_context(|| format!("registering {username} at {server}"))?;
                anyhow::Ok(SimUser {
                    username,
                    user_id: auth.user_id,
                    client,
                })
            }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

/// Creates the planned conversations (each by its first member), in plan order.
pub async fn create_conversations(
    users: &[SimUser],
    plan: &[PlannedConversation],
    concurrency: usize,
) -> anyhow::Result<Vec<ConversationId>> {
    futures::stream::iter(plan)
        .map(|planned| async move {
            let creator = &users[planned.members[0]];
            let conversation = if planned.is_group {
                let member_ids: Vec<UserId> = planned.members[1..]
                    .iter()
                    .map(|&member| users[member].user_id.clone())
                    .collect();
                creator
                    .client
                    .create_group(
                        &format!("load group of {}", planned.members.len()),
                        &member_ids,
                    )
                    .await
            } else {
                creator
                    .client
                    .create_direct(&users[planned.members[1]].user_id)
                    .await
            }
            .with_context(|| format!("creating a conversation as {}", creator.username))?;
            anyhow::Ok(conversation.conversation_id)
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

/// The connection settings of a simulated device: SDK defaults, small buffers, a
/// generous connect timeout (thousands of handshakes queue up on two cores).
pub fn device_config(server: &str, token: &str) -> ConnectionConfig {
    let mut config = ConnectionConfig::new(server, token);
    config.connect_timeout = Duration::from_secs(60);
    config.read_buffer_size = 2 * 1024;
    config
}

/// Opens one connection per config, `concurrency` handshakes at a time, in order.
pub async fn connect_all(
    configs: Vec<ConnectionConfig>,
    concurrency: usize,
) -> anyhow::Result<Vec<Connection>> {
    futures::stream::iter(configs)
        .map(|config| async move {
            Connection::connect(config)
                .await
                .context("opening a WebSocket")
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    /// Prefixes are valid usernames (with `_<index>`) and differ between runs.
    #[test]
    fn prefixes_are_valid_and_distinct() {
        let mut random = StdRng::seed_from_u64(5);
        let first = random_prefix(&mut random);
        let second = random_prefix(&mut random);
        assert_ne!(first, second);
        let username = format!("{first}_99999");
        assert!(username.len() <= 32);
        assert!(username
            .chars()
            .all(|character| character.is_ascii_lowercase()
                || character.is_ascii_digit()
                || character == '_'));
    }
}
