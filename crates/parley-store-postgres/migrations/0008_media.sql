-- Media: uploads, and which messages carry them (see the SQLite schema for the rules).
CREATE TABLE media (
    media_id         TEXT COLLATE "C" PRIMARY KEY,
    owner_id         TEXT COLLATE "C" NOT NULL REFERENCES users (user_id),
    status           TEXT NOT NULL,
    declared_type    TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    size             BIGINT NOT NULL,
    filename         TEXT,
    sha256           TEXT,
    width            BIGINT,
    height           BIGINT,
    duration_ms      BIGINT,
    thumbnail_width  BIGINT,
    thumbnail_height BIGINT,
    blurhash         TEXT,
    created_at       BIGINT NOT NULL,
    sent             BOOLEAN NOT NULL DEFAULT false,
    released         BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX media_owner ON media (owner_id);
CREATE INDEX media_unsent ON media (created_at) WHERE NOT sent;
CREATE INDEX media_released ON media (media_id) WHERE released;

CREATE TABLE media_refs (
    media_id        TEXT COLLATE "C" NOT NULL,
    conversation_id TEXT COLLATE "C" NOT NULL,
    seq             BIGINT NOT NULL,
    PRIMARY KEY (media_id, conversation_id, seq)
);
CREATE INDEX media_refs_message ON media_refs (conversation_id, seq);

ALTER TABLE messages ADD COLUMN attachments JSONB;

-- The purge's index covers messages that are only attachments (empty content) too.
DROP INDEX messages_expiry;
CREATE INDEX messages_expiry ON messages (expires_at)
    WHERE expires_at IS NOT NULL AND (content <> '' OR attachments IS NOT NULL);
