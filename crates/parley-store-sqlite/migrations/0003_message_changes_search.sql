-- Message kinds and changes (reactions, edits, deletes for everyone), mentions, delete for
-- me, and full-text search.

-- Change entries name their target; text messages may mention members or be forwarded
-- copies. `edited_at` and `deleted` are the target's current state (the entries that
-- changed it stay in the `seq` stream).
ALTER TABLE messages ADD COLUMN target_seq INTEGER;
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE messages ADD COLUMN forwarded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
-- The change entries of a target (earlier edits to rewrite or empty). Partial: ordinary
-- messages, the hot path, write no entry here.
CREATE INDEX messages_targets ON messages (conversation_id, target_seq)
    WHERE target_seq IS NOT NULL;

-- Each user's one reaction per message; `seq` is the entry that set it (the order
-- emojis were first used in).
CREATE TABLE reactions (
    conversation_id TEXT NOT NULL,
    target_seq      INTEGER NOT NULL,
    user_id         TEXT NOT NULL,
    emoji           TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, target_seq, user_id)
) WITHOUT ROWID;

-- Who a message mentions, keyed for the count of a user's unread mentions in a
-- conversation (a range after their read pointer).
CREATE TABLE mentions (
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
) WITHOUT ROWID;

-- Delete for me.
CREATE TABLE hidden_messages (
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
) WITHOUT ROWID;

-- Search. A message's index row id is (search_key << 32) | seq: a conversation's messages
-- are one row id range (a search within it is a range of the index), and no mapping table
-- is written per message. `search_key` is a small number per conversation.
ALTER TABLE conversations ADD COLUMN search_key INTEGER;
UPDATE conversations SET search_key = rowid;
CREATE UNIQUE INDEX conversations_search_key ON conversations (search_key);

-- The index keeps terms, not text: the text is in `messages` only, so a delete empties it
-- in one place. The terms are made by parley-core's `search` module (folded words,
-- space-separated), which is why the tokenizer only has to split on spaces (should it
-- split a term at some rare character, the query is split the same way and matched as a
-- phrase: positions are kept for that). The `ascii` tokenizer and `detail = none` were
-- measured too: no faster to write, and slower tails for searches; each message
-- also carries its conversation's token `_c<search_key>` (`_` is a token character here
-- and never in a term), so a search over some conversations is an intersection of lists
-- inside the index. `prefix = '3'` also indexes every term's first three characters: a
-- query word of three letters (the usual first keystrokes) reads one list instead of
-- merging the lists of every term it starts. "External
-- content" that is never stored (`message_index_source` stays empty; queries read only
-- row ids): a message leaves the index by the `delete` command with the terms it was
-- indexed with, which the store computes again from the text. With `secure-delete` that
-- removes the terms from the index's pages at once; a contentless table would only mark
-- the row deleted and keep its words on disk until a merge.
CREATE TABLE message_index_source (terms TEXT);
CREATE VIRTUAL TABLE message_index USING fts5 (
    terms,
    content = 'message_index_source',
    tokenize = "unicode61 remove_diacritics 0 tokenchars '_'",
    prefix = '3'
);
INSERT INTO message_index (message_index, rank) VALUES ('secure-delete', 1);

-- Messages committed but not indexed yet. A commit only adds its messages here (one small
-- B-tree, drained all the time); the store's indexer moves them into `message_index`
-- every 250 ms or so in one transaction, and a search first indexes what is waiting.
-- Indexing in large batches writes far fewer, larger index segments than indexing each
-- small group commit, and keeps FTS5 off the path of the ack. Durable: after a crash the
-- indexer finds the rest here.
CREATE TABLE index_queue (
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;

-- Work the store does once after a migration (here: indexing the messages stored
-- before search existed, which needs parley-core's folding, not SQL).
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO store_meta (key, value) VALUES ('search_backfill', 'pending');
