-- parley schema, v1. Times are milliseconds since the Unix epoch.

CREATE TABLE users (
    user_id           TEXT PRIMARY KEY,
    username          TEXT NOT NULL UNIQUE,
    password_hash     TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    status_message    TEXT,
    avatar_url        TEXT,
    last_seen_visible INTEGER NOT NULL DEFAULT 1,
    last_seen_at      INTEGER,
    created_at        INTEGER NOT NULL
);
CREATE INDEX users_display_name ON users (lower(display_name));

CREATE TABLE devices (
    device_id   TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (user_id),
    name        TEXT,
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX devices_user ON devices (user_id);

-- `encryption` is 'none' today; end-to-end encrypted conversations will say so here, and
-- their messages carry ciphertext in `content` with their own `content_type`.
CREATE TABLE conversations (
    conversation_id  TEXT PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    name             TEXT,
    description      TEXT,
    direct_key       TEXT UNIQUE,
    encryption       TEXT NOT NULL DEFAULT 'none',
    created_at       INTEGER NOT NULL,
    last_seq         INTEGER NOT NULL DEFAULT 0,
    last_activity_at INTEGER NOT NULL,
    member_count     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE members (
    conversation_id TEXT NOT NULL REFERENCES conversations (conversation_id),
    user_id         TEXT NOT NULL REFERENCES users (user_id),
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at       INTEGER NOT NULL,
    joined_seq      INTEGER NOT NULL DEFAULT 0,
    delivered_seq   INTEGER NOT NULL DEFAULT 0,
    read_seq        INTEGER NOT NULL DEFAULT 0,
    muted_until     INTEGER,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_user ON members (user_id);

-- One row per message; (conversation_id, seq) is the order. `message_id` is a ULID made by
-- the server (unique by construction), so it carries no index of its own: each index is
-- one more B-tree written per message on the hot path. Edits, deletes and reactions
-- will be new columns or tables keyed by the same pair, never a renumbering.
CREATE TABLE messages (
    conversation_id  TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    message_id       TEXT NOT NULL,
    sender_id        TEXT NOT NULL,
    sender_device_id TEXT NOT NULL,
    client_msg_id    TEXT NOT NULL,
    content          TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    reply_to_seq     INTEGER,
    system           TEXT,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
-- Dedup of retries. Keyed client id first: clients make time-ordered ids (ULIDs), so new
-- entries land at the right edge of the index instead of at one place per sender, and a
-- group commit dirties a few index pages rather than one per active sender.
CREATE UNIQUE INDEX messages_dedup ON messages (client_msg_id, sender_id);
