-- Media: uploads, and which messages carry them.
CREATE TABLE media (
    media_id         TEXT PRIMARY KEY,
    owner_id         TEXT NOT NULL REFERENCES users (user_id),
    status           TEXT NOT NULL,
    declared_type    TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    size             INTEGER NOT NULL,
    filename         TEXT,
    sha256           TEXT,
    width            INTEGER,
    height           INTEGER,
    duration_ms      INTEGER,
    thumbnail_width  INTEGER,
    thumbnail_height INTEGER,
    blurhash         TEXT,
    created_at       INTEGER NOT NULL,
    -- A message carried it once (never-sent uploads are collected after a day).
    sent             INTEGER NOT NULL DEFAULT 0,
    -- A message that carried it was deleted or expired: collect it if none carries it now.
    released         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX media_owner ON media (owner_id);
CREATE INDEX media_unsent ON media (created_at) WHERE sent = 0;
CREATE INDEX media_released ON media (media_id) WHERE released = 1;

-- One row per attachment of a stored message: who may download the media, and what
-- keeps it from being collected.
CREATE TABLE media_refs (
    media_id        TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (media_id, conversation_id, seq)
) WITHOUT ROWID;
CREATE INDEX media_refs_message ON media_refs (conversation_id, seq);

-- A message's attachments as sent (JSON array of media objects); NULL: none, or gone.
ALTER TABLE messages ADD COLUMN attachments TEXT;

-- The purge's index covers messages that are only attachments (empty content) too.
DROP INDEX messages_expiry;
CREATE INDEX messages_expiry ON messages (expires_at)
    WHERE expires_at IS NOT NULL AND (content <> '' OR attachments IS NOT NULL);
