//! The `Store` port on PostgreSQL: the truth that every node of a cluster shares.
//!
//! Any number of `PgStore`s (one per node, each with its own pool) may write at once. A
//! conversation's row is its lock: every transaction that gives out a `seq` or changes the
//! members takes it `FOR UPDATE` first (several at once in `conversation_id` order, so two
//! batches cannot deadlock), so `seq` stays gap-free and dedup and membership are decided
//! against committed state. `append_messages` is one transaction of a fixed handful of
//! statements for a whole group-commit batch (`UNNEST` arrays, not one statement a row).
//!
//! `store.rs` is the `impl Store`, in the trait's order; `batch.rs` holds the statements
//! that run inside a write transaction (`changes.rs` those that apply message changes
//! and mentions, `receipts.rs` those that move receipt pointers); `messages.rs` the
//! message reads with a shape of their own (history pages as one reader sees them,
//! search); `rows.rs` maps rows to records. This file connects, migrates (under sqlx's advisory
//! lock), backfills the search terms of messages stored before search existed, retries
//! writes that lost a race, and maps sqlx errors into `StoreError`. The
//! store decides no rule of the core's (what counts as unread, who may change a group).

use async_trait::async_trait;
use parley_core::message_state::{group_reactions, hide_changes_to_cleared, with_state};
use parley_core::store::{
    AppendOutcome, AppendRefusal, Appended, BlockRelations, ChatSettingsUpdate, Conflict,
    ConversationChange, ConversationPosition, ConversationRecord, ConversationSummary,
    ConversationUpdate, Counting, ListCursor, ListFilter, MessageReceipts, NewConversation,
    NewDevice, NewMessage, PageFrom, ProfileUpdate, ReceiptChange, ReceiptUpdate, SearchQuery,
    SeqRange, SessionRecord, Store, StoreError, StoreResult, UserRecord,
};
use parley_proto::{
    ContentType, ConversationId, ConversationType, DeviceId, LastSeenPrivacy, MediaId, Member,
    Message, MessageId, ReactionUsers, Role, Timestamp, UserId,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

/// The PostgreSQL store. Cheap to clone (a pool handle). A commit is as durable as the
/// server's `synchronous_commit` makes it: `on`, PostgreSQL's default, is what "returns
/// only once durably committed" asks for.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// How many times a write transaction is tried when it loses a race it cannot see coming
/// (a deadlock, or a `client_msg_id` committed by another node for another conversation).
const MAX_ATTEMPTS: u32 = 5;

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/database`) and migrates the schema.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::unavailable)?;
        Self::connect_with(options, Self::pool_options()).await
    }

    /// The pool settings [`PgStore::connect`] uses: a few connections per node, since
    /// the core writes through one committer and reads are short.
    pub fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
    }

    /// Connects with explicit options (say, a `search_path` for a schema of its own) and
    /// migrates the schema. Safe when several nodes start at once: sqlx's migrator holds a
    /// PostgreSQL advisory lock (`pg_advisory_lock`, keyed by the database name) from
    /// before it reads `_sqlx_migrations` until it has applied what is missing, so one node
    /// migrates and the others wait, then find nothing left to do.
    pub async fn connect_with(
        connect_options: PgConnectOptions,
        pool_options: PgPoolOptions,
    ) -> StoreResult<Self> {
        // Migrate on a connection of its own, closed afterwards: the advisory lock is held
        // by the session, and a failed migration returns without unlocking, so that
        // session must end rather than go back to a pool and block every later start.
        let migrating = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(pool_options.get_acquire_timeout())
            .connect_with(connect_options.clone())
            .await
            .map_err(StoreError::unavailable)?;
        let migrated = sqlx::migrate!("./migrations").run(&migrating).await;
        migrating.close().await;
        migrated.map_err(StoreError::unavailable)?;
        let pool = pool_options
            .connect_with(connect_options)
            .await
            .map_err(StoreError::unavailable)?;
        backfill_search_terms(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs one write transaction, trying it again (on a fresh transaction) while it loses
    /// a race: `attempt` commits and returns `Done`, or returns `Again` (or a deadlock or
    /// serialization failure) having written nothing that stays.
    async fn write<T, F, Fut>(&self, what: &'static str, mut attempt: F) -> StoreResult<T>
    where
        F: FnMut(Transaction<'static, Postgres>) -> Fut,
        Fut: Future<Output = StoreResult<Attempt<T>>>,
    {
        let mut tries = 1;
        loop {
            let transaction = self.pool.begin().await.map_err(store_error)?;
            match attempt(transaction).await {
                Ok(Attempt::Done(value)) => return Ok(value),
                Ok(Attempt::Again) if tries < MAX_ATTEMPTS => {}
                Err(error) if tries < MAX_ATTEMPTS && is_transient(&error) => {}
                Ok(Attempt::Again) => {
                    return Err(StoreError::Conflict(Conflict::Unique(
                        "messages_dedup".to_owned(),
                    )))
                }
                Err(error) => return Err(error),
            }
            tracing::debug!(what, tries, "a write transaction lost a race; trying again");
            tries += 1;
        }
    }
}

/// Messages per transaction of the search backfill.
const BACKFILL_BATCH: i64 = 1000;

/// Indexes the text messages stored before search existed (migration 0002 added
/// `search_terms` as NULL), a batch per transaction, at store open. Their terms are made
/// here, by `parley_core::search`, as for new messages; a text without words gets the
/// empty `tsvector`, so no message is picked up twice. The rows come from the partial index
/// `messages_unindexed`, which is empty once this has run: a later start costs one index
/// lookup.
///
/// Idempotent, and safe when several nodes start at once: each batch locks its rows
/// `FOR UPDATE SKIP LOCKED`, so nodes share the work instead of waiting for each other,
/// and this never waits for a lock (no deadlock with appends). A row another transaction
/// holds is that transaction's: an edit or a delete (which set the terms, or take the
/// message out of the index) or another node's batch; if that node stops before it
/// commits, the row is still unindexed at the next start.
async fn backfill_search_terms(pool: &PgPool) -> StoreResult<()> {
    let mut indexed = 0usize;
    loop {
        let mut transaction = pool.begin().await.map_err(store_error)?;
        let rows = sqlx::query(
            "SELECT conversation_id, seq, content FROM messages \
             WHERE search_terms IS NULL AND content_type = 'text' AND NOT deleted \
             ORDER BY conversation_id, seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BACKFILL_BATCH)
        .fetch_all(&mut *transaction)
        .await
        .map_err(store_error)?;
        if rows.is_empty() {
            break;
        }
        let mut conversation_ids: Vec<String> = Vec::with_capacity(rows.len());
        let mut seqs: Vec<i64> = Vec::with_capacity(rows.len());
        let mut documents: Vec<String> = Vec::with_capacity(rows.len());
        for row in &rows {
            conversation_ids.push(column(row, "conversation_id")?);
            seqs.push(column(row, "seq")?);
            documents.push(index_document(column(row, "content")?));
        }
        sqlx::query(&format!(
            "UPDATE messages m SET search_terms = {terms} \
             FROM UNNEST($1::text[], $2::bigint[], $3::text[]) AS v(conversation_id, seq, terms) \
             WHERE m.conversation_id = v.conversation_id AND m.seq = v.seq \
             AND m.search_terms IS NULL",
            terms = terms_sql("v.terms"),
        ))
        .bind(&conversation_ids)
        .bind(&seqs)
        .bind(&documents)
        .execute(&mut *transaction)
        .await
        .map_err(store_error)?;
        transaction.commit().await.map_err(store_error)?;
        indexed += rows.len();
    }
    if indexed > 0 {
        tracing::info!(
            indexed,
            "search terms stored for messages stored before search existed"
        );
    }
    Ok(())
}

/// What one try of a write transaction came to.
pub(crate) enum Attempt<T> {
    /// Committed.
    Done(T),
    /// Lost a race with another node and wrote nothing: try again from the start, when
    /// the reads will see what the other node committed.
    Again,
}

/// The server answers but takes no writes (a standby, or `default_transaction_read_only`).
#[derive(Debug)]
struct ReadOnly;

impl std::fmt::Display for ReadOnly {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("the PostgreSQL server is read-only")
    }
}

impl std::error::Error for ReadOnly {}

/// Maps a sqlx error by its kind, never by its text.
fn store_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::corrupt("row", error)
        }
        sqlx::Error::Database(ref database_error) => match database_error.kind() {
            sqlx::error::ErrorKind::UniqueViolation => {
                let rule = database_error
                    .constraint()
                    .unwrap_or_else(|| database_error.message());
                StoreError::Conflict(Conflict::Unique(rule.to_owned()))
            }
            sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::MissingReference,
            _ => StoreError::unavailable(error),
        },
        other => StoreError::unavailable(other),
    }
}

/// A failure that trying the same transaction again can cure: PostgreSQL chose it as the
/// victim of a deadlock (`40P01`) or of a serialization failure (`40001`).
fn is_transient(error: &StoreError) -> bool {
    let StoreError::Unavailable { source } = error else {
        return false;
    };
    match source.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(database_error)) => {
            matches!(database_error.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

mod account;
mod batch;
mod blocks;
mod changes;
mod expiry;
mod media;
mod messages;
mod push;
mod receipts;
mod rows;
mod settings;
mod store;
mod users;

use batch::*;
use blocks::*;
use changes::*;
use messages::*;
use receipts::*;
use rows::*;

#[cfg(test)]
mod tests;
