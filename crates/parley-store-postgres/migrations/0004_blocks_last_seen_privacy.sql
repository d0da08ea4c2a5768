-- Blocking, and who sees a user's online status and last seen. See the SQLite migration
-- of the same name.
CREATE TABLE blocks (
    blocker_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id),
    blocked_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_blocked ON blocks (blocked_id, blocker_id);

ALTER TABLE members ADD COLUMN send_blocked BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE users ADD COLUMN last_seen_privacy TEXT NOT NULL DEFAULT 'everyone'
    CHECK (last_seen_privacy IN ('everyone', 'contacts', 'nobody'));
UPDATE users SET last_seen_privacy = 'nobody' WHERE NOT last_seen_visible;
