-- Disappearing messages: per conversation, how long what is sent now lives (0: off); per
-- message, when it expires (NULL: never). Reads show an expired message as hidden (its
-- `seq` stays accounted for); the purger empties it, earliest first, through the partial
-- index of the expiring messages not emptied yet (the messages that never expire, the
-- hot path's, write no entry there; an emptied one leaves it).
ALTER TABLE conversations ADD COLUMN disappearing_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN expires_at INTEGER;
CREATE INDEX messages_expiry ON messages (expires_at)
    WHERE expires_at IS NOT NULL AND content <> '';
