//! Reaching Redis: one reconnecting, multiplexed connection per backend, with timeouts,
//! and the key prefix every key of a backend starts with.
//!
//! Both backends (and every node's handle made by `join`) share one `ConnectionManager`:
//! commands are pipelined on one socket, and a broken socket is replaced on the next
//! command. Every wait is bounded (connecting, each reply, the reconnect attempts), so a
//! Redis that is down or silent gives an error, never a hang. Nothing here knows a port.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisError;
use std::time::Duration;

/// How long a backend waits for Redis before its call fails (as the port's `Unavailable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// One attempt to open the connection (TCP and handshake).
    pub connect: Duration,
    /// One command's reply. A script's work is bounded (`reap` removes a bounded batch per
    /// run), so a reply this late means Redis is stuck or unreachable.
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(2),
        }
    }
}

/// Attempts after the first to open a connection, spaced by a short backoff: a call made
/// while Redis is down waits at most about `(1 + RECONNECT_RETRIES) * connect` plus the
/// backoff (at most [`RECONNECT_MAX_DELAY`] each).
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// Opens the connection to `url` (`redis://host:port/db`), failing if Redis cannot be
/// reached within the timeouts.
pub(crate) async fn open(url: &str, timeouts: Timeouts) -> Result<ConnectionManager, RedisError> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.response))
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_max_delay(RECONNECT_MAX_DELAY);
    ConnectionManager::new_with_config(client, config).await
}

/// One `PING`, answered within the response timeout, or the error that kept it.
pub(crate) async fn ping(redis: &ConnectionManager) -> Result<(), RedisError> {
    let mut redis = redis.clone();
    redis::cmd("PING").query_async::<()>(&mut redis).await
}

/// A key prefix that cannot be used: it must be 1-64 characters of `a-z A-Z 0-9 - _ .`.
#[derive(Debug, thiserror::Error)]
#[error("invalid Redis key prefix {0:?}: use 1-64 characters of a-z A-Z 0-9 - _ .")]
pub struct InvalidPrefix(String);

/// The start of every key of one deployment: `parley:{<prefix>}:`. The braces make the
/// prefix a Redis Cluster hash tag, so all of a deployment's keys hash to one slot, as
/// the scripts (which compute keys they were not given) need.
pub(crate) fn key_space(prefix: &str) -> Result<String, InvalidPrefix> {
    let valid = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    if valid {
        Ok(format!("parley:{{{prefix}}}:"))
    } else {
        Err(InvalidPrefix(prefix.chars().take(80).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_become_a_hash_tag_and_odd_ones_are_refused() {
        assert_eq!(key_space("prod-1").unwrap(), "parley:{prod-1}:");
        for prefix in ["", "a}b", "a{b", "a:b", "a*", &"x".repeat(65)] {
            assert!(key_space(prefix).is_err(), "{prefix:?}");
        }
    }
}
