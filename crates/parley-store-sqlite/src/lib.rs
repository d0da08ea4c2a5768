//! The `Store` port on SQLite: parley's embedded, zero-dependency storage.
//!
//! One file in WAL mode with `synchronous=FULL`, so a commit survives a crash of the
//! process or the machine. All writes go through a pool of one connection (SQLite has one
//! writer anyway), which makes each transaction's read-then-write of `last_seq` race-free;
//! reads use a separate pool and never block on writes. `append_messages` is one
//! transaction for a whole group-commit batch. Write transactions begin `IMMEDIATE`: they
//! take the write lock first (waiting in the busy handler), so one that read before writing
//! can never be refused half-way because the checkpointer truncated the WAL in between.
//!
//! Full-text search has a file of its own, `parley-search.db`, written by the indexer on
//! its own connection from a log the commits append to (`index.rs`).
//!
//! `store.rs` is the `impl Store`, in the trait's order; `rows.rs` maps rows to records;
//! `batch.rs` holds the statements that run inside a write transaction. This file opens
//! the database, runs the checkpointer and maps sqlx errors into `StoreError`.

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
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    checkpointer: SqlitePool,
    /// Set when a commit overwrote text (an edit, a delete for everyone): the old pages
    /// are still in the WAL until it is truncated, so the checkpointer truncates it next.
    scrub_wal: Arc<AtomicBool>,
    /// The search index, in its own file (`index.rs`).
    index: Arc<SearchIndex>,
}

impl SqliteStore {
    /// Opens (creating if needed) `parley.db` in `data_dir` and migrates it.
    pub async fn open(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(StoreError::unavailable)?;
        let path = data_dir.join("parley.db");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(StoreError::unavailable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Statement journals of multi-row inserts stay in memory, not in temp files.
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-65536")
            .pragma("journal_size_limit", "67108864")
            // Deleted and overwritten content is zeroed in the file, not left in free
            // space: a message deleted for everyone is gone from the bytes on disk once
            // the WAL is checkpointed.
            .pragma("secure_delete", "on");
        // The writer never checkpoints by itself (only past ~200 MB of WAL, as a safety
        // net): a checkpoint inside a commit would stall every send queued behind it.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "50000"))
            .await
            .map_err(StoreError::unavailable)?;
        sqlx::migrate!("./migrations")
            .run(&writer)
            .await
            .map_err(StoreError::unavailable)?;
        let index = Arc::new(SearchIndex::open(data_dir, &writer).await?);
        // Readers see the index file too, as `search`: a search reads both in one query.
        let index_path = index_path(data_dir).display().to_string();
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(move |connection, _| {
                let index_path = index_path.clone();
                Box::pin(async move {
                    sqlx::query("ATTACH DATABASE ? AS search")
                        .bind(index_path)
                        .execute(connection)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(StoreError::unavailable)?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(StoreError::unavailable)?;
        let scrub_wal = Arc::new(AtomicBool::new(false));
        tokio::spawn(run_checkpoints(checkpointer.clone(), scrub_wal.clone()));
        let store = Self {
            writer,
            reader,
            checkpointer,
            scrub_wal,
            index,
        };
        tokio::spawn(run_indexer(store.clone()));
        Ok(store)
    }

    /// Closes the store: indexes what is logged, then checkpoints both files' WALs into
    /// them and truncates the WALs.
    pub async fn close(&self) {
        self.index.close(&self.reader, &self.writer).await;
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.checkpointer)
            .await
        {
            tracing::warn!(%error, "final checkpoint failed");
        }
        self.checkpointer.close().await;
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// The indexer: every 500 ms, replays what commits logged and tidies up after it
/// (`SearchIndex::catch_up`, `SearchIndex::tidy`), until the store is closed.
async fn run_indexer(store: SqliteStore) {
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if store.index.is_closed() || store.writer.is_closed() {
            return;
        }
        let pass = async {
            store.index.catch_up(&store.reader).await?;
            store
                .index
                .tidy(&store.writer, &store.scrub_wal, false)
                .await
        };
        if let Err(error) = pass.await {
            if store.index.is_closed() || store.writer.is_closed() {
                return;
            }
            tracing::warn!(%error, "indexing logged messages failed; retrying");
        }
    }
}

/// Copies the WAL back into the database beside the writer, on its own connection and
/// thread, without blocking commits (PASSIVE). After a commit that overwrote text (an
/// edit, a delete for everyone) it truncates the WAL instead, so the old text leaves the
/// disk within a second: that waits for readers and holds commits for the moment of the
/// truncation, which is why it is only done then. Ends when the store is closed.
async fn run_checkpoints(checkpointer: SqlitePool, scrub_wal: Arc<AtomicBool>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let scrub = scrub_wal.swap(false, Ordering::AcqRel);
        let statement = if scrub {
            "PRAGMA wal_checkpoint(TRUNCATE)"
        } else {
            "PRAGMA wal_checkpoint(PASSIVE)"
        };
        match sqlx::query_as::<_, (i64, i64, i64)>(statement)
            .fetch_one(&checkpointer)
            .await
        {
            // Busy: readers or the writer were in the way; try again next tick.
            Ok((busy, _, _)) if scrub && busy != 0 => scrub_wal.store(true, Ordering::Release),
            Ok(_) => {}
            Err(error) => {
                if scrub {
                    scrub_wal.store(true, Ordering::Release);
                }
                if checkpointer.is_closed() || matches!(error, sqlx::Error::PoolClosed) {
                    return;
                }
                tracing::warn!(%error, "background checkpoint failed");
            }
        }
    }
}

fn unavailable(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(ref database_error) => match database_error.kind() {
            sqlx::error::ErrorKind::UniqueViolation => {
                StoreError::Conflict(Conflict::Unique(database_error.message().to_owned()))
            }
            sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::MissingReference,
            _ => StoreError::unavailable(error),
        },
        other => StoreError::unavailable(other),
    }
}

mod account;
mod append;
mod batch;
mod blocks;
mod changes;
mod expiry;
mod index;
mod index_log;
mod media;
mod push;
mod rows;
mod settings;
mod store;
mod users;

use append::append;
use batch::*;
use blocks::refresh_send_blocked;
use changes::*;
use index::*;
use index_log::*;
use media::{attachments_column, attachments_exist, existing_media, refer_media, release_media};
use rows::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// The steps of an `EXPLAIN QUERY PLAN` query, joined by "; ".
    async fn query_plan<'q>(
        store: &SqliteStore,
        explain: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> String {
        let rows = explain.fetch_all(&store.reader).await.unwrap();
        let steps: Vec<String> = rows
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect();
        steps.join("; ")
    }

    /// User search reads an index, never the whole table (`SCAN users`).
    #[tokio::test]
    async fn user_search_uses_an_index() {
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(directory.path()).await.unwrap();
        for by in [SearchBy::Username, SearchBy::DisplayName] {
            let explain = format!("EXPLAIN QUERY PLAN {}", search_users_sql(by));
            let plan = query_plan(&store, sqlx::query(&explain).bind("ali").bind(20i64)).await;
            assert!(plan.contains("USING INDEX"), "{plan}");
            assert!(!plan.contains("SCAN users"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
    }

    /// The indexer finds each logged message by key: the log read joins conversations by
    /// `search_key` and messages by their primary key, never scanning a table; the log
    /// is read from a position on.
    #[tokio::test]
    async fn the_indexer_reads_messages_by_key() {
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(directory.path()).await.unwrap();
        for (sql, binds) in [(READ_LOG, [0i64, 100]), (FIRST_OLD_TERMS, [1i64 << 32, 0])] {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let query = sqlx::query(&explain).bind(binds[0]).bind(binds[1]);
            let plan = query_plan(&store, query).await;
            assert!(!plan.contains("SCAN"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
            if sql == READ_LOG {
                assert!(plan.contains("SEARCH m USING PRIMARY KEY"), "{plan}");
                assert!(
                    plan.contains("USING INDEX conversations_search_key"),
                    "{plan}"
                );
            }
        }
    }

    /// A page of history walks the primary key in order up to its limit, whichever end it
    /// starts from: no scan, no sort of the range.
    #[tokio::test]
    async fn history_pages_walk_the_primary_key() {
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(directory.path()).await.unwrap();
        for order in ["ASC", "DESC"] {
            let explain = format!("EXPLAIN QUERY PLAN {}", fetch_page_sql(order));
            let query = sqlx::query(&explain)
                .bind("c")
                .bind(0i64)
                .bind(i64::MAX)
                .bind(50i64)
                .bind("u");
            let plan = query_plan(&store, query).await;
            assert!(plan.contains("SEARCH messages USING PRIMARY KEY"), "{plan}");
            assert!(!plan.contains("SCAN"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
    }

    /// A row that no longer decodes is an error the caller sees, never a message quietly
    /// left out or read with a made-up value.
    #[tokio::test]
    async fn a_row_that_does_not_decode_is_reported() {
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(directory.path()).await.unwrap();
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(store.clone());
        let alice = parley_testkit::store::user(&store, "alice").await;
        let bob = parley_testkit::store::user(&store, "bob").await;
        let group = parley_testkit::store::group(&store, &[alice, bob]).await;
        let writer = SqliteStore::open(directory.path()).await.unwrap().writer;
        sqlx::query("UPDATE messages SET system = '{not json' WHERE seq = 1")
            .execute(&writer)
            .await
            .unwrap();
        let page = store
            .fetch_messages(
                &group,
                SeqRange::default(),
                PageFrom::Oldest,
                10,
                &UserId::from("u_reader"),
            )
            .await;
        assert!(
            matches!(
                page,
                Err(StoreError::Corrupt {
                    what: "system event",
                    ..
                })
            ),
            "{page:?}"
        );
        // The schema's CHECK keeps such roles out; a file written by other hands may not.
        sqlx::query("PRAGMA ignore_check_constraints = ON")
            .execute(&writer)
            .await
            .unwrap();
        sqlx::query("UPDATE members SET role = 'emperor'")
            .execute(&writer)
            .await
            .unwrap();
        let members = store.fetch_members(&group).await;
        assert!(
            matches!(members, Err(StoreError::Corrupt { what: "member", .. })),
            "{members:?}"
        );
    }

    /// The conversation tokens the index carries are not words anyone can search for:
    /// "c1", "_c1" or a prefix of them find nothing; a real word of the message does.
    #[tokio::test]
    async fn conversation_tokens_are_not_searchable_words() {
        let directory = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn Store> =
            std::sync::Arc::new(SqliteStore::open(directory.path()).await.unwrap());
        let alice = parley_testkit::store::user(&store, "alice").await;
        let bob = parley_testkit::store::user(&store, "bob").await;
        let group = parley_testkit::store::group(&store, &[alice.clone(), bob]).await;
        parley_testkit::store::send(
            &store,
            parley_testkit::store::say(&group, &alice, "lunch at noon"),
        )
        .await;
        for (query, hits) in [("lunch", 1), ("c1", 0), ("_c1", 0), ("c", 0), ("1", 0)] {
            let found = parley_testkit::store::search(&store, &alice, query, None).await;
            assert_eq!(found.len(), hits, "{query:?}");
        }
    }
}
