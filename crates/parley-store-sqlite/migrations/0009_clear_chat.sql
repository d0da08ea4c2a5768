-- Delete chat for me: the `seq` up to which this member no longer sees the conversation
-- (history, sync, search, preview and counts start after it; 0: never cleared).
ALTER TABLE members ADD COLUMN cleared_seq INTEGER NOT NULL DEFAULT 0;
