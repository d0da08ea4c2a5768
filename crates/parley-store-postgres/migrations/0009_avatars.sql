-- Profile and group pictures: uploads (media) named by the user or the group. The media
-- they name are `sent` (never collected as unused uploads); one replaced is `released`.
ALTER TABLE users ADD COLUMN avatar_media_id TEXT;
ALTER TABLE conversations ADD COLUMN avatar_media_id TEXT;
CREATE INDEX users_avatar ON users (avatar_media_id) WHERE avatar_media_id IS NOT NULL;
CREATE INDEX conversations_avatar ON conversations (avatar_media_id)
    WHERE avatar_media_id IS NOT NULL;
