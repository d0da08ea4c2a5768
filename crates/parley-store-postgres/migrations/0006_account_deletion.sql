-- Account deletion. See the SQLite migration of the same name.
ALTER TABLE users ADD COLUMN deleted_at BIGINT;
CREATE TABLE retired_usernames (
    username TEXT COLLATE "C" PRIMARY KEY,
    user_id  TEXT COLLATE "C" NOT NULL REFERENCES users (user_id),
    free_at  BIGINT NOT NULL
);
