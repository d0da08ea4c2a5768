-- Delete chat for me. See the SQLite migration of the same name.
ALTER TABLE members ADD COLUMN cleared_seq BIGINT NOT NULL DEFAULT 0;
