-- Each user's own settings for a conversation (`muted_until` is in 0001; "forever" is the
-- largest bigint). See the SQLite migration of the same name.
ALTER TABLE members ADD COLUMN archived_at BIGINT;
ALTER TABLE members ADD COLUMN pinned_at BIGINT;
ALTER TABLE members ADD COLUMN marked_unread BOOLEAN NOT NULL DEFAULT FALSE;
