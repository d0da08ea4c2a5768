-- The search index moves out of this file into its own, `parley-search.db` (see
-- src/index.rs): its writes, WAL and fsyncs no longer hold the one writer that commits
-- messages. What stays here is the log of changes to the index, written in the commit
-- that makes them due (a new text message, an edit, a delete for everyone), so nothing is
-- lost by a crash; the indexer replays it into the index file in order and keeps how far
-- it got there, in the same transaction as the entries it wrote.
DROP TABLE message_index;
DROP TABLE message_index_source;
DROP TABLE index_queue;

-- One entry per change to the index: take `old_terms` out of row `index_rowid` (an edit,
-- a delete) and/or put `new_terms` in (a new message, an edit). The documents are made in
-- the commit, from the text as it is then, so a replay in `id` order leaves exactly the
-- terms of each message's current text. AUTOINCREMENT: ids never go back, even after
-- the indexed entries are deleted, so the index's position stays comparable (an index
-- file that is ahead of this log belongs to another copy of the database and is rebuilt).
-- Entries with `old_terms` hold deleted text until the indexer has replayed them (about a
-- second); the store then deletes them and truncates the WAL.
CREATE TABLE index_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    index_rowid INTEGER NOT NULL,
    old_terms   TEXT,
    new_terms   TEXT
);

-- A new index file fills itself from `messages` (see src/index.rs), so the backfill of
-- migration 0003 has no work left.
DELETE FROM store_meta WHERE key = 'search_backfill';
