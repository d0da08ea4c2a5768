//! The search index, in a database file of its own (`parley-search.db`, beside
//! `parley.db`).
//!
//! A commit only appends to `index_log` in the main file: the index changes it makes due.
//! A new text message logs its row id alone (the hot path writes a few bytes; the commit
//! hands its text to the indexer in memory, `index/fresh.rs`, and the indexer reads it
//! back from the messages only when that was lost, after a restart); an edit logs the old and new documents, a delete
//! for everyone the old one, made from the text of that moment. The indexer replays the log
//! into the index file in order, on its own connection, and records there how far it got,
//! in the same transaction. So the index's B-tree work, WAL frames and fsyncs never hold
//! the writer that commits messages (they run on another thread, usually the other core),
//! and the index's pages are written in large batches; a crash loses nothing (the log is
//! durable and the position moves with the entries it covers); and the index file can be
//! deleted: it is built again from `messages`. Searches read both files at once through
//! the readers, which attach the index file as `search`.
//!
//! Deleted and overwritten terms leave the index's pages at once (FTS5 `secure-delete`,
//! SQLite `secure_delete`) and the index's WAL is truncated after such a batch; the log
//! entries that carried them are deleted after the replay and the main file's WAL is
//! truncated too.

use super::*;
use std::path::PathBuf;

mod fresh;
use fresh::Fresh;

/// The index file's name in the data directory.
pub(crate) const INDEX_FILE: &str = "parley-search.db";

/// The index's layout (tokenizer, document, row ids). A file of another layout is rebuilt.
const LAYOUT: i64 = 1;

/// Most log entries one indexing transaction takes.
const INDEX_BATCH: i64 = 16_384;

/// Messages one transaction of a rebuild reads and indexes.
const REBUILD_BATCH: i64 = 4096;

/// How often the replayed log entries are deleted from the main file (a write on the
/// messages' writer, so not after every batch).
const LOG_CLEANUP_EVERY: Duration = Duration::from_secs(1);

/// The index file's schema. The index keeps terms (parley-core's folded words, space
/// separated) under the row ids of messages: `search_key << 32 | seq`, so a
/// conversation's messages are one range of row ids and nothing maps ids to messages.
/// Each document also carries its conversation's token `_c<search_key>` (`_` is a token
/// character here and never in a term): a search over some conversations intersects their
/// tokens' lists with the terms' lists inside FTS5, instead of checking every match of a
/// frequent word against the memberships. `prefix = '3'` also indexes each term's first
/// three characters, so a three-letter query word (the usual first keystrokes) reads one
/// list. Contentless, without column sizes: the index stores no text and no per-row
/// record besides its lists (searches read row ids only; nothing ranks by size), which
/// halves the cost of an insert; a row leaves by the `delete` command with the document it
/// was indexed with, which the log carries. The `ascii` tokenizer and `detail = none`
/// were measured too: no faster to write and slower tails for searches
/// (docs/benchmarks.md).
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS index_state (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        layout          INTEGER NOT NULL,
        indexed_through INTEGER NOT NULL
    )",
    "CREATE VIRTUAL TABLE IF NOT EXISTS message_index USING fts5 (
        terms,
        content = '',
        columnsize = 0,
        tokenize = \"unicode61 remove_diacritics 0 tokenchars '_'\",
        prefix = '3'
    )",
    "INSERT INTO message_index (message_index, rank) VALUES ('secure-delete', 1)",
];

/// The search index file and its indexer's state. Shared by the store's clones.
pub(crate) struct SearchIndex {
    writer: SqlitePool,
    /// Set when a commit logged index changes.
    pending: AtomicBool,
    /// Held while the log is replayed, so a search that catches up first waits for a
    /// pass already under way instead of missing what it is indexing.
    progress: tokio::sync::Mutex<Progress>,
    /// The texts of new messages that commits just logged, by log id: the indexer takes
    /// them from here instead of reading them back from the main file.
    fresh: std::sync::Mutex<Fresh>,
}

struct Progress {
    /// The last log entry the index file holds the result of.
    indexed_through: i64,
    /// Log entries up to this id are deleted from the main file.
    cleaned_through: i64,
    last_cleanup: std::time::Instant,
    /// Replayed entries took terms out (edits, deletes): the index's WAL is not truncated
    /// since.
    scrub_index: bool,
    /// Replayed entries that carried old terms are still in the main file's log.
    log_holds_old_terms: bool,
}

impl SearchIndex {
    /// Opens (creating if needed) the index file in `data_dir`. A new file, one of another
    /// layout, or one that has replayed past the end of this database's log (a copy of
    /// another database's index) is emptied and built again from the messages.
    pub(crate) async fn open(data_dir: &Path, main_writer: &SqlitePool) -> StoreResult<Self> {
        let path = index_path(data_dir);
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(StoreError::unavailable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // The index can be rebuilt from the log and the messages, and its position
            // commits with its entries: a power cut may roll back its last batches, which
            // are then replayed again. No fsync per batch.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-32768")
            .pragma("secure_delete", "on");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(StoreError::unavailable)?;
        create_schema(&writer).await?;
        let state: Option<(i64, i64)> =
            sqlx::query_as("SELECT layout, indexed_through FROM index_state")
                .fetch_optional(&writer)
                .await
                .map_err(unavailable)?;
        let last_logged = last_logged(main_writer).await?;
        let indexed_through = match state {
            Some((LAYOUT, through)) if through <= last_logged => through,
            _ => rebuild(&writer, main_writer, last_logged).await?,
        };
        Ok(Self {
            writer,
            // Whatever a crash left logged is replayed by the first pass.
            pending: AtomicBool::new(true),
            progress: tokio::sync::Mutex::new(Progress {
                indexed_through,
                cleaned_through: 0,
                last_cleanup: std::time::Instant::now(),
                scrub_index: false,
                log_holds_old_terms: true,
            }),
            fresh: std::sync::Mutex::new(Fresh::default()),
        })
    }

    /// Notes that a commit logged index changes.
    pub(crate) fn note_logged(&self) {
        self.pending.store(true, Ordering::Release);
    }

    /// Replays what commits logged, if anything: by the indexer every 500 ms, and by a
    /// search before it reads the index, so a search finds every message committed
    /// before it began (and none by words an edit removed).
    pub(crate) async fn catch_up(&self, reader: &SqlitePool) -> StoreResult<()> {
        let mut progress = self.progress.lock().await;
        self.catch_up_locked(&mut progress, reader).await
    }

    async fn catch_up_locked(
        &self,
        progress: &mut Progress,
        reader: &SqlitePool,
    ) -> StoreResult<()> {
        if self.pending.swap(false, Ordering::AcqRel) {
            if let Err(error) = self.replay(progress, reader).await {
                self.pending.store(true, Ordering::Release);
                return Err(error);
            }
        }
        Ok(())
    }

    /// The indexer's upkeep after a pass: deletes the replayed log entries from the main
    /// file (at most once a second unless `now`), raising `scrub_main_wal` when they held
    /// old terms; and truncates the index's WAL after terms were taken out, so they leave
    /// the disk.
    pub(crate) async fn tidy(
        &self,
        main_writer: &SqlitePool,
        scrub_main_wal: &AtomicBool,
        now: bool,
    ) -> StoreResult<()> {
        let mut progress = self.progress.lock().await;
        if progress.cleaned_through < progress.indexed_through
            && (now || progress.last_cleanup.elapsed() >= LOG_CLEANUP_EVERY)
        {
            sqlx::query("DELETE FROM index_log WHERE id <= ?")
                .bind(progress.indexed_through)
                .execute(main_writer)
                .await
                .map_err(unavailable)?;
            progress.cleaned_through = progress.indexed_through;
            progress.last_cleanup = std::time::Instant::now();
            if std::mem::take(&mut progress.log_holds_old_terms) {
                scrub_main_wal.store(true, Ordering::Release);
            }
        }
        if progress.scrub_index {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.writer)
                .await
                .map_err(unavailable)?;
            // Busy: a search was reading; the next pass tries again.
            progress.scrub_index = busy != 0;
        }
        Ok(())
    }

    /// Whether the index file is closed (the store was closed).
    pub(crate) fn is_closed(&self) -> bool {
        self.writer.is_closed()
    }

    /// Replays what is logged, deletes the replayed entries from the main file and
    /// checkpoints the index file into a truncated WAL; then closes it. (The store
    /// checkpoints and closes the main file after this.)
    pub(crate) async fn close(&self, reader: &SqlitePool, main_writer: &SqlitePool) {
        let scrub = AtomicBool::new(false);
        let pass = async {
            self.catch_up(reader).await?;
            self.tidy(main_writer, &scrub, true).await
        };
        if let Err(error) = pass.await {
            tracing::warn!(%error, "replaying the search index log failed; it stays logged");
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await
        {
            tracing::warn!(%error, "final checkpoint of the search index failed");
        }
        self.writer.close().await;
    }

    /// Replays the log after `progress.indexed_through` into the index, a batch per
    /// transaction, until it is read to its end.
    async fn replay(&self, progress: &mut Progress, reader: &SqlitePool) -> StoreResult<()> {
        loop {
            let rows = self.read_log(progress.indexed_through, reader).await?;
            let Some(&(last_id, ..)) = rows.last() else {
                return Ok(());
            };
            let complete = (rows.len() as i64) < INDEX_BATCH;
            let entries = resolve_entries(reader, rows).await?;
            let mut transaction = self
                .writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(unavailable)?;
            let took_out = apply_entries(&mut transaction, &entries).await?;
            sqlx::query("UPDATE index_state SET indexed_through = ?")
                .bind(last_id)
                .execute(&mut *transaction)
                .await
                .map_err(unavailable)?;
            transaction.commit().await.map_err(unavailable)?;
            progress.indexed_through = last_id;
            progress.scrub_index |= took_out;
            progress.log_holds_old_terms |= took_out;
            if complete {
                return Ok(());
            }
        }
    }
}

/// A batch of the log, in log order, with the stored state of each new message's row
/// (entries without terms): `(id, index_rowid, old_terms, new_terms, content, changed)`,
/// where `content` is `NULL` when the message is not stored (or the entry has terms) and
/// `changed` says it was edited, deleted for everyone or emptied by the purge of
/// disappearing messages since it was logged.
pub(crate) const READ_LOG: &str =
    "SELECT l.id, l.index_rowid, l.old_terms, l.new_terms, m.content, \
     (m.deleted = 1 OR m.edited_at IS NOT NULL OR m.content = '') \
     FROM index_log l \
     LEFT JOIN conversations c ON l.old_terms IS NULL AND l.new_terms IS NULL \
         AND c.search_key = (l.index_rowid >> 32) \
     LEFT JOIN messages m ON m.conversation_id = c.conversation_id \
         AND m.seq = (l.index_rowid & 4294967295) \
     WHERE l.id > ? ORDER BY l.id LIMIT ?";

type LogRow = (
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
);

/// The document the index holds for a message that was edited or deleted since its entry
/// `id` was logged: the old terms of its first later change, which took out what the
/// message's text was until then.
pub(crate) const FIRST_OLD_TERMS: &str = "SELECT old_terms FROM index_log \
     WHERE index_rowid = ? AND id > ? AND old_terms IS NOT NULL ORDER BY id LIMIT 1";

/// Turns log rows into the changes they make to the index, `(index_rowid, old, new)`. A
/// new message's entry carries no terms (the commit that sent it writes only its row id,
/// the hot path): its document is made here from its text. If it was edited or deleted
/// since, the log holds that change too, taking out the text as it was before; the
/// document is then that one, so the replay stays exact whatever it reads now.
async fn resolve_entries(reader: &SqlitePool, rows: Vec<LogRow>) -> StoreResult<Vec<LogEntry>> {
    let mut entries = Vec::with_capacity(rows.len());
    let mut to_fold: Vec<(usize, String)> = Vec::new();
    for (id, rowid, old_terms, new_terms, content, changed) in rows {
        if old_terms.is_some() || new_terms.is_some() {
            entries.push((rowid, old_terms, new_terms));
            continue;
        }
        // Changed since it was logged (edited, deleted, emptied by the purge), or no
        // message under that row id any more: the terms its first later change takes out
        // go in, so the replay stays exact; without such a change, nothing is indexed.
        if content.is_none() || changed == Some(true) {
            let first_old: Option<Option<String>> = sqlx::query_scalar(FIRST_OLD_TERMS)
                .bind(rowid)
                .bind(id)
                .fetch_optional(reader)
                .await
                .map_err(unavailable)?;
            if let Some(Some(document)) = first_old {
                entries.push((rowid, None, Some(document)));
            }
            continue;
        }
        let Some(content) = content else {
            continue;
        };
        to_fold.push((entries.len(), content));
        entries.push((rowid, None, None));
    }
    // Folding words is the costly part of a document: off the runtime's threads.
    let folded = tokio::task::spawn_blocking(move || {
        to_fold
            .into_iter()
            .map(|(at, content)| (at, index_terms(&content)))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(StoreError::unavailable)?;
    for (at, terms) in folded {
        let entry = &mut entries[at];
        entry.2 = Some(index_document(entry.0 >> 32, &terms));
    }
    Ok(entries)
}

/// The path of the index file in `data_dir` (the readers attach it).
pub(crate) fn index_path(data_dir: &Path) -> PathBuf {
    data_dir.join(INDEX_FILE)
}

/// A change to the index: `(index_rowid, old_terms, new_terms)`.
type LogEntry = (i64, Option<String>, Option<String>);

/// Applies log entries: in row id order, each row's entries in log order (entries of
/// different rows commute). FTS5 keeps a transaction's new entries in memory only while
/// row ids ascend and writes a segment each time one goes back, so commit order (row ids
/// of many conversations interleaved) would write a tiny segment every few rows and merge
/// them all again; sorted, the batch is one segment. New documents go in as multi-row
/// inserts, each removal (rare) on its own. Returns whether any terms were taken out.
async fn apply_entries(
    transaction: &mut Transaction<'_, Sqlite>,
    entries: &[LogEntry],
) -> StoreResult<bool> {
    let mut ordered: Vec<&LogEntry> = entries.iter().collect();
    // Stable: a row's entries keep their log order.
    ordered.sort_by_key(|(rowid, ..)| *rowid);
    let mut inserts: Vec<(i64, &str)> = Vec::new();
    let mut took_out = false;
    for (rowid, old_terms, new_terms) in ordered {
        if let Some(old_terms) = old_terms {
            insert_documents(transaction, &inserts).await?;
            inserts.clear();
            sqlx::query(
                "INSERT INTO message_index (message_index, rowid, terms) VALUES ('delete', ?, ?)",
            )
            .bind(rowid)
            .bind(old_terms)
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
            took_out = true;
        }
        if let Some(new_terms) = new_terms {
            inserts.push((*rowid, new_terms));
        }
    }
    insert_documents(transaction, &inserts).await?;
    Ok(took_out)
}

async fn insert_documents(
    transaction: &mut Transaction<'_, Sqlite>,
    documents: &[(i64, &str)],
) -> StoreResult<()> {
    for chunk in documents.chunks(INSERT_CHUNK) {
        let mut insert =
            sqlx::QueryBuilder::<Sqlite>::new("INSERT INTO message_index (rowid, terms) ");
        insert.push_values(chunk, |mut row, (rowid, terms)| {
            row.push_bind(*rowid).push_bind(*terms);
        });
        insert
            .build()
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

async fn create_schema(writer: &SqlitePool) -> StoreResult<()> {
    for statement in SCHEMA {
        sqlx::query(statement)
            .execute(writer)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// The id of the last entry ever logged (AUTOINCREMENT's counter: deleting replayed
/// entries does not move it back).
async fn last_logged(main_writer: &SqlitePool) -> StoreResult<i64> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'index_log'")
            .fetch_optional(main_writer)
            .await
            .map_err(unavailable)?;
    Ok(last.unwrap_or(0))
}

/// Empties the index file and indexes every message from the main file's current state,
/// then sets the position to `last_logged`: the log's entries so far are already
/// reflected in the messages' state. (Runs while the store opens: nothing commits
/// meanwhile.) Interrupted, it starts over: the position is written last.
async fn rebuild(
    writer: &SqlitePool,
    main_writer: &SqlitePool,
    last_logged: i64,
) -> StoreResult<i64> {
    for statement in ["DROP TABLE message_index", "DELETE FROM index_state"] {
        sqlx::query(statement)
            .execute(writer)
            .await
            .map_err(unavailable)?;
    }
    create_schema(writer).await?;
    let mut after: (String, i64) = (String::new(), 0);
    let mut indexed = 0usize;
    loop {
        let rows: Vec<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT m.conversation_id, m.seq, m.content, c.search_key FROM messages m \
             JOIN conversations c ON c.conversation_id = m.conversation_id \
             WHERE (m.conversation_id, m.seq) > (?, ?) AND m.content_type = 'text' \
             AND m.deleted = 0 AND m.content <> '' ORDER BY m.conversation_id, m.seq LIMIT ?",
        )
        .bind(&after.0)
        .bind(after.1)
        .bind(REBUILD_BATCH)
        .fetch_all(main_writer)
        .await
        .map_err(unavailable)?;
        let Some(last) = rows.last() else {
            break;
        };
        after = (last.0.clone(), last.1);
        let documents: Vec<(i64, String)> = rows
            .iter()
            .filter(|(_, seq, _, _)| *seq <= 0xFFFF_FFFF)
            .map(|(_, seq, content, search_key)| {
                (
                    index_rowid(*search_key, *seq),
                    index_document(*search_key, &index_terms(content)),
                )
            })
            .collect();
        let mut documents: Vec<(i64, &str)> = documents
            .iter()
            .map(|(rowid, terms)| (*rowid, terms.as_str()))
            .collect();
        documents.sort_unstable_by_key(|(rowid, _)| *rowid);
        let mut transaction = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        insert_documents(&mut transaction, &documents).await?;
        transaction.commit().await.map_err(unavailable)?;
        indexed += documents.len();
    }
    sqlx::query("INSERT INTO index_state (id, layout, indexed_through) VALUES (1, ?, ?)")
        .bind(LAYOUT)
        .bind(last_logged)
        .execute(writer)
        .await
        .map_err(unavailable)?;
    if indexed > 0 {
        tracing::info!(indexed, "search index built for the stored messages");
    }
    Ok(last_logged)
}
