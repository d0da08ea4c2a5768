-- Push notifications: whether they carry the text, where each device's go, and the
-- server's own secrets (the VAPID key pair), kept with the data.
ALTER TABLE users ADD COLUMN push_previews INTEGER NOT NULL DEFAULT 0;
CREATE TABLE push_subscriptions (
    device_id  TEXT PRIMARY KEY REFERENCES devices (device_id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (user_id),
    kind       TEXT NOT NULL,
    endpoint   TEXT,
    p256dh     TEXT,
    auth       TEXT,
    token      TEXT,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
