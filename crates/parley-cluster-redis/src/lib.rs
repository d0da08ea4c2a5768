//! The cluster backends of two ports on Redis: [`RedisPresence`] (`PresenceRegistry`:
//! which users have a live connection on any node, under per-node leases) and
//! [`RedisRateLimiter`] (`RateLimiter`: token buckets shared by every node).
//!
//! Both behave as their in-process references in `parley_core::local` and pass the same
//! conformance suites (`tests/conformance.rs`). Every step that reads or writes more than
//! one key is **one Lua script** (`src/lua/`, sent with EVALSHA, falling back to EVAL when
//! Redis does not know it yet), and every script reads **Redis's clock** (`TIME`), never a
//! node's, so nodes with skewed clocks agree on whose lease is current and how full a
//! bucket is. Nothing is cached on the nodes: a handle is a connection and a key prefix.
//! Any Redis error, timeout included, is the port's `Unavailable` (bounded by
//! [`Timeouts`]: a Redis that is down fails a call, it never hangs one).
//!
//! # Key layout
//!
//! Every key starts with `parley:{<prefix>}:`, the prefix given at `connect` (the same on
//! every node of one cluster; tests use a fresh one each). The braces are a Redis Cluster
//! hash tag: all keys of one deployment live in one slot, as scripts that find keys
//! through other keys need. After it:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `presence:nodes` | set | the node ids with a lease or unreaped connections: what `reap` walks (no `SCAN`) |
//! | `presence:lease:<node>` | hash | `term` (the lease term's number) and `until_ms` (Redis time it lapses); never deleted, so a term number never repeats for a node id |
//! | `presence:terms:<node>` | set | the node's term numbers that still have connections (usually one; two after a lapse, until `reap`) |
//! | `presence:conns:<node>:<term>` | hash | serial → user id: the connections registered in that term, `reap`'s index |
//! | `presence:user:<user_id>` | hash | `<node>/<serial>` → `<term>:<device_id>`: the user's connections, so `connect`, `disconnect` and `online` read only that user's |
//! | `rate:<limit>:<key>` | hash | `tokens`, `updated_us` (Redis time); expires when the bucket would be full again, as a missing bucket is (a `:` in `<limit>` is written `%3A`) |
//!
//! A connection is **live** when its node's `lease` hash has its `term` and an `until_ms`
//! later than now. Liveness is computed on every read, so a dead node's users are offline
//! the moment its lease lapses, before anyone reaps.
//!
//! # Why each script is atomic
//!
//! Redis runs one script at a time, so each step below sees and leaves a consistent
//! registry even with every node calling at once:
//!
//! - `connect` starts or keeps the node's term, answers "was offline" and adds the
//!   connection to the user's hash and the term's index: two nodes connecting one user's
//!   first two devices cannot both answer `true`.
//! - `disconnect` removes the connection and answers "last one": of two last devices
//!   closing at once exactly one announces the offline. When it does, it also removes the
//!   user's leftover connections of lapsed terms, so `reap` cannot announce it again.
//! - `heartbeat` renews a current lease or starts the next term (`Lost`) in one step, so a
//!   node cannot renew a lease that another node's `reap` has just judged lapsed.
//! - `reap` removes every connection of a term that is not live and reports the users it
//!   left with no connection: several nodes reaping at once run one after another, and
//!   only the run that removes a user's last connection reports them, so once in all. It
//!   removes at most a batch per run ([`DEFAULT_REAP_BATCH`]); the rest go to the next.
//! - `online` and `online_devices` read connections and leases at one instant.
//! - `acquire` checks every bucket, then takes a token from all of them or from none: two
//!   callers cannot both take the last token, and a refusal leaves every bucket as it was.
//! - `refund` adds the token and caps it at the capacity in one step.
//!
//! # What Redis must be
//!
//! Redis 5 or later (scripts replicated by their effects, so `TIME` may precede writes;
//! tested on 7.0), one primary: every node must reach the same one. It must not evict
//! presence keys: run it with `maxmemory-policy noeviction` or a `volatile-*` policy
//! (only buckets have a TTL, and an evicted bucket is merely full). A lost `lease` hash
//! would restart its node's terms at 0 and could count old connections again. A Redis
//! that restarts empty is survivable: every lease reads as lost, each node's next
//! `heartbeat` answers `Lost`, and the nodes register their connections again.
//!
//! A call whose reply is lost (a timeout after Redis ran the script) may have taken
//! effect: in particular a `reap` whose answer is lost has removed its departures, and
//! nobody announces them (their users do show offline).

mod connection;
mod presence;
mod ratelimit;

pub use connection::{InvalidPrefix, Timeouts};
pub use presence::{RedisPresence, DEFAULT_REAP_BATCH};
pub use ratelimit::RedisRateLimiter;
