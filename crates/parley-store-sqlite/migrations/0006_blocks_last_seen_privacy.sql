-- Blocking, and who sees a user's online status and last seen.

-- `blocker_id` blocks `blocked_id` since `created_at`. Looked up both ways: the primary
-- key by blocker (their list), the index by the blocked user (who blocks me).
CREATE TABLE blocks (
    blocker_id TEXT NOT NULL REFERENCES users (user_id),
    blocked_id TEXT NOT NULL REFERENCES users (user_id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;
CREATE INDEX blocks_blocked ON blocks (blocked_id, blocker_id);

-- Set on both members of a direct conversation while a block stands between them (either
-- way): the commit refuses their messages there, read with the membership it checks
-- anyway, so a send costs no extra lookup.
ALTER TABLE members ADD COLUMN send_blocked INTEGER NOT NULL DEFAULT 0;

-- 'everyone', 'contacts' (people with a direct chat with the user) or 'nobody'. Replaces
-- `last_seen_visible` (0 became 'nobody'), which is no longer read or written.
ALTER TABLE users ADD COLUMN last_seen_privacy TEXT NOT NULL DEFAULT 'everyone'
    CHECK (last_seen_privacy IN ('everyone', 'contacts', 'nobody'));
UPDATE users SET last_seen_privacy = 'nobody' WHERE last_seen_visible = 0;
