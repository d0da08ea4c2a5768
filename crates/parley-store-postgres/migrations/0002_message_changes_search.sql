-- Message kinds and changes (reactions, edits, deletes for everyone), mentions, delete for
-- me, and full-text search: the SQLite store's 0003 on PostgreSQL.
--
-- Runs as one transaction, under sqlx's advisory lock (see `PgStore::connect_with`): when
-- several nodes start at once, one applies it and the others find it applied. The new
-- columns have constant defaults, so adding them rewrites no row.

-- Change entries name their target; text messages may mention members or be forwarded
-- copies. `edited_at` and `deleted` are the target's current state (the entries that
-- changed it stay in the `seq` stream). `mentions` is a JSON array of user ids, NULL for
-- none.
--
-- `search_terms` are the message's terms for full-text search, made by parley-core's
-- `search::index_terms` (folded words), never by a PostgreSQL parser or dictionary: the
-- store writes `array_to_tsvector` of them. NULL means not indexed (not `text`, deleted,
-- or stored before this migration and not yet backfilled); indexed text without words
-- has the empty tsvector.
ALTER TABLE messages
    ADD COLUMN target_seq   BIGINT,
    ADD COLUMN mentions     JSONB,
    ADD COLUMN forwarded    BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN edited_at    BIGINT,
    ADD COLUMN deleted      BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN search_terms tsvector;

-- The change entries of a target (earlier edits to rewrite or empty). Partial: ordinary
-- messages, the hot path, write no entry here.
CREATE INDEX messages_targets ON messages (conversation_id, target_seq)
    WHERE target_seq IS NOT NULL;

-- Search: prefix queries (`'term':*`) on the terms. Rows without terms (NULL) have no
-- entry to look up.
CREATE INDEX messages_search ON messages USING GIN (search_terms);

-- The text messages stored before search existed, still to be indexed: what the backfill
-- at store open reads. Empty once it has run (new text messages are stored with their
-- terms), so it costs the hot path only the check of its condition, and every start
-- finds the work done, or resumes it, without scanning the messages.
CREATE INDEX messages_unindexed ON messages (conversation_id, seq)
    WHERE search_terms IS NULL AND content_type = 'text' AND NOT deleted;

-- Each user's one reaction per message; `seq` is the entry that set it (the order
-- emojis were first used in).
CREATE TABLE reactions (
    conversation_id TEXT COLLATE "C" NOT NULL,
    target_seq      BIGINT NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL,
    emoji           TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, target_seq, user_id)
);

-- Who a message mentions, keyed for the count of a user's unread mentions in a
-- conversation (a range after their read pointer).
CREATE TABLE mentions (
    user_id         TEXT COLLATE "C" NOT NULL,
    conversation_id TEXT COLLATE "C" NOT NULL,
    seq             BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
);

-- Delete for me.
CREATE TABLE hidden_messages (
    user_id         TEXT COLLATE "C" NOT NULL,
    conversation_id TEXT COLLATE "C" NOT NULL,
    seq             BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
);
