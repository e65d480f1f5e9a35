-- Storage lifecycle (issue 15): retention, deletes that never orphan or lose a file, and no
-- full disk. Keep in step with ../postgres/0006_storage.sql.

-- Bytes of each camera's originals and thumbnails, kept with image_count by every capture
-- and delete (the dashboard's storage per camera, and the size caps of retention).
ALTER TABLE cameras ADD COLUMN bytes_stored BIGINT NOT NULL DEFAULT 0;
UPDATE cameras SET bytes_stored =
    (SELECT COALESCE(SUM(bytes + thumbnail_bytes), 0) FROM images WHERE camera_id = cameras.id);

-- A camera being deleted in the background (1): gone from every read at once, its media
-- removed in batches, the row last. A restart resumes it.
ALTER TABLE cameras ADD COLUMN deleting BIGINT NOT NULL DEFAULT 0;

-- A protected timelapse (1): retention and disk pressure never prune its frames or videos.
ALTER TABLE timelapses ADD COLUMN protected BIGINT NOT NULL DEFAULT 0;

-- Each camera's own retention (core::resources::Retention as JSON; null fields: the site's).
CREATE TABLE retention_policies (
    camera_id  BIGINT PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    document   TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Files whose rows were deleted, written in the deleting transaction and worked off after
-- its commit (a file goes only if no row refers to it any more). A crash in between leaves
-- the entries, and the next start finishes them.
CREATE TABLE file_removals (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind   TEXT   NOT NULL,
    sha256 TEXT   NOT NULL
);

-- The site's oldest frames first (disk pressure).
CREATE INDEX images_captured ON images (captured_at, id);
CREATE INDEX videos_camera ON videos (camera_id, created_at);
