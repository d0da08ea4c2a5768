-- Disappearing messages. See the SQLite migration of the same name.
ALTER TABLE conversations ADD COLUMN disappearing_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN expires_at BIGINT;
CREATE INDEX messages_expiry ON messages (expires_at)
    WHERE expires_at IS NOT NULL AND content <> '';
