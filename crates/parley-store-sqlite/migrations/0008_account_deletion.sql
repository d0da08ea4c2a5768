-- Account deletion. The user row stays as a tombstone (its messages keep a sender) with
-- `deleted_at` set and its username replaced by one no one can register; the old
-- username is held here until `free_at`, then a new account may take it.
ALTER TABLE users ADD COLUMN deleted_at INTEGER;
CREATE TABLE retired_usernames (
    username TEXT PRIMARY KEY,
    user_id  TEXT NOT NULL REFERENCES users (user_id),
    free_at  INTEGER NOT NULL
) WITHOUT ROWID;
