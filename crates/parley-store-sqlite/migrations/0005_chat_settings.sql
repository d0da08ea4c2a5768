-- Each user's own settings for a conversation (`muted_until` is in 0001; "forever" is the
-- largest integer).

-- Archived at that time: the chat stays in the archive until a message arrives after it
-- (unless muted). Pinned at that time: pinned chats come first, the newest pin first.
-- Marked unread by hand: cleared when the user reads the conversation.
ALTER TABLE members ADD COLUMN archived_at INTEGER;
ALTER TABLE members ADD COLUMN pinned_at INTEGER;
ALTER TABLE members ADD COLUMN marked_unread INTEGER NOT NULL DEFAULT 0;
