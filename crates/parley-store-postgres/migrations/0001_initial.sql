-- parley schema on PostgreSQL: the same tables, columns and rules as the SQLite store's
-- 0001 + 0002. Times are milliseconds since the Unix epoch (BIGINT), as in SQLite, so both
-- stores read and write the same numbers. Ids are opaque ASCII strings made by the server:
-- they compare byte by byte (COLLATE "C"), as in SQLite, which is also what every node
-- sorts conversation rows by before locking them.

CREATE TABLE users (
    user_id           TEXT COLLATE "C" PRIMARY KEY,
    username          TEXT NOT NULL UNIQUE,
    password_hash     TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    status_message    TEXT,
    avatar_url        TEXT,
    last_seen_visible BOOLEAN NOT NULL DEFAULT TRUE,
    last_seen_at      BIGINT,
    created_at        BIGINT NOT NULL
);
-- Prefix search (`search_users`): a range scan with the pattern operators (`~>=~`, `~<~`),
-- which these indexes serve whatever the database's collation.
CREATE INDEX users_username_prefix ON users (lower(username) text_pattern_ops);
CREATE INDEX users_display_name_prefix ON users (lower(display_name) text_pattern_ops);

CREATE TABLE devices (
    device_id   TEXT COLLATE "C" PRIMARY KEY,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users (user_id),
    name        TEXT,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX devices_user ON devices (user_id);

-- `encryption` is 'none' today; end-to-end encrypted conversations will say so here, and
-- their messages carry ciphertext in `content` with their own `content_type`.
-- A conversation's row is also its lock: every write that gives out a `seq` or changes
-- the members takes it `FOR UPDATE` first, so nodes append to it one transaction at a time.
CREATE TABLE conversations (
    conversation_id  TEXT COLLATE "C" PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    name             TEXT,
    description      TEXT,
    direct_key       TEXT COLLATE "C" UNIQUE,
    encryption       TEXT NOT NULL DEFAULT 'none',
    created_at       BIGINT NOT NULL,
    last_seq         BIGINT NOT NULL DEFAULT 0,
    last_activity_at BIGINT NOT NULL,
    member_count     INTEGER NOT NULL DEFAULT 0,
    -- Membership changes are decided by the core against one state of the members and
    -- applied only if that state still stands: this version moves on with every change.
    members_version  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE members (
    conversation_id TEXT COLLATE "C" NOT NULL REFERENCES conversations (conversation_id),
    user_id         TEXT COLLATE "C" NOT NULL REFERENCES users (user_id),
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at       BIGINT NOT NULL,
    joined_seq      BIGINT NOT NULL DEFAULT 0,
    delivered_seq   BIGINT NOT NULL DEFAULT 0,
    read_seq        BIGINT NOT NULL DEFAULT 0,
    muted_until     BIGINT,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_user ON members (user_id);

-- One row per message; (conversation_id, seq) is the order. `message_id` is a ULID made by
-- the server (unique by construction), so it carries no index of its own, and, as in
-- SQLite, no foreign key: the store writes messages only under the conversation's row
-- lock, and each index or trigger is one more write per message on the hot path. Edits,
-- deletes and reactions will be new columns or tables keyed by the same pair.
-- `system` is a system message's event, serde's JSON of `SystemEvent`.
CREATE TABLE messages (
    conversation_id  TEXT COLLATE "C" NOT NULL,
    seq              BIGINT NOT NULL,
    message_id       TEXT COLLATE "C" NOT NULL,
    sender_id        TEXT COLLATE "C" NOT NULL,
    sender_device_id TEXT COLLATE "C" NOT NULL,
    client_msg_id    TEXT COLLATE "C" NOT NULL,
    content          TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    reply_to_seq     BIGINT,
    system           JSONB,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
-- Dedup of retries, the arbiter of `ON CONFLICT` in appends. Keyed client id first, as in
-- SQLite: clients make time-ordered ids (ULIDs), so new entries land at the right edge of
-- the index instead of at one place per sender.
CREATE UNIQUE INDEX messages_dedup ON messages (client_msg_id, sender_id);
