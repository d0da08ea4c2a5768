-- Push notifications: whether they carry the text, where each device's go, and the
-- server's own secrets (the VAPID key pair), kept with the data every node shares.
ALTER TABLE users ADD COLUMN push_previews BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE push_subscriptions (
    device_id  TEXT COLLATE "C" PRIMARY KEY REFERENCES devices (device_id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (user_id),
    kind       TEXT NOT NULL,
    endpoint   TEXT,
    p256dh     TEXT,
    auth       TEXT,
    token      TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
