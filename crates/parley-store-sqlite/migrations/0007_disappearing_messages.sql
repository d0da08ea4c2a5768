-- Disappearing messages: per conversation, how long what is sent now lives (0: off); per
-- message, when it expires (NULL: never). Reads leave out what expired; the purger
-- deletes it, earliest first, through the partial index (the messages that never expire,
-- the hot path's, write no entry there).
ALTER TABLE conversations ADD COLUMN disappearing_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN expires_at INTEGER;
CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;
