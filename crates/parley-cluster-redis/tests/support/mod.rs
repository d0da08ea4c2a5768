//! What the Redis tests share: the server's URL (`PARLEY_TEST_REDIS_URL`) and a fresh key
//! prefix per test, deleted when the test ends.

use std::time::Duration;

pub const URL_VARIABLE: &str = "PARLEY_TEST_REDIS_URL";

pub fn redis_url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// One test's key prefix; dropping it deletes every key under it (best effort: a key a
/// test leaves behind costs memory, not correctness, since no other test shares the prefix).
pub struct Prefix {
    pub url: String,
    pub name: String,
}

impl Prefix {
    pub fn fresh() -> Self {
        Self {
            url: redis_url(),
            name: format!("test-{}", ulid::Ulid::new().to_string().to_lowercase()),
        }
    }

    /// Fails the test: Redis is required, never skipped.
    pub fn unreachable(&self, error: impl std::fmt::Debug) -> ! {
        panic!(
            "cannot reach Redis at {} (set {URL_VARIABLE} to another URL, or start \
             redis-server): {error:?}",
            self.url
        )
    }

    /// The pattern every key of this prefix matches.
    pub fn pattern(&self) -> String {
        format!("parley:{{{}}}:*", self.name)
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let keys: Vec<String> = match redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(self.pattern())
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter(&mut connection)
        {
            Ok(keys) => keys.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        for batch in keys.chunks(500) {
            let _: Result<u64, _> = redis::cmd("DEL").arg(batch).query(&mut connection);
        }
    }
}
