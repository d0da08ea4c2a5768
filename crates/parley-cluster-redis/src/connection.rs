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

/// Whether Redis is known to be down, so calls fail at once instead of each waiting out
/// the reconnect attempts (about half a second): a socket whose sends check a rate limit
/// must get its refusals at the pace it sends, not two a second.
///
/// A call that fails for the connection (refused, dropped, I/O, timeout) marks Redis
/// down; until [`PROBE_INTERVAL`] has passed, calls fail at once with [`RedisDown`]; then
/// one call goes through as a probe (the others keep failing at once), and a success
/// clears the mark. Errors of a command itself (a script's) say nothing about the link.
#[derive(Debug, Default)]
pub(crate) struct Health(parking_lot::Mutex<Option<tokio::time::Instant>>);

/// How often a call probes a Redis that is known to be down.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// The error of a call refused at once because Redis is known to be down.
#[derive(Debug, thiserror::Error)]
#[error("Redis is down (a recent call could not reach it); retrying every {PROBE_INTERVAL:?}")]
pub(crate) struct RedisDown;

impl Health {
    /// `Err` while Redis is known to be down and it is not yet time to probe.
    pub(crate) fn admit(&self) -> Result<(), RedisDown> {
        let mut down = self.0.lock();
        match *down {
            Some(probe_at) if tokio::time::Instant::now() < probe_at => Err(RedisDown),
            Some(_) => {
                // This call probes; the others wait for its answer by failing at once.
                *down = Some(tokio::time::Instant::now() + PROBE_INTERVAL);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// What a call that was admitted found.
    pub(crate) fn record<T>(&self, outcome: &Result<T, RedisError>) {
        match outcome {
            Ok(_) => *self.0.lock() = None,
            Err(error)
                if error.is_io_error()
                    || error.is_timeout()
                    || error.is_connection_refusal()
                    || error.is_connection_dropped() =>
            {
                *self.0.lock() = Some(tokio::time::Instant::now() + PROBE_INTERVAL);
            }
            Err(_) => {}
        }
    }
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
