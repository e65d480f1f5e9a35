-- Timelapser's schema (SQLite). Times are microseconds since the Unix epoch (UTC), the
-- resolution of the timestamp entity tags. Keep in step with ../postgres/0001_initial.sql.

CREATE TABLE cameras (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    token_hash      TEXT    NOT NULL UNIQUE,
    status          TEXT    NOT NULL DEFAULT 'unknown',
    status_message  TEXT,
    image_count     BIGINT  NOT NULL DEFAULT 0,
    last_capture_at BIGINT,
    last_seen_at    BIGINT,
    latest_image_id BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE TABLE timelapses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id   BIGINT  NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    image_count BIGINT  NOT NULL DEFAULT 0,
    started_at  BIGINT  NOT NULL,
    stopped_at  BIGINT,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX timelapses_camera ON timelapses (camera_id, status);

CREATE TABLE images (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id       BIGINT  NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    timelapse_id    BIGINT  REFERENCES timelapses (id) ON DELETE SET NULL,
    captured_at     BIGINT  NOT NULL,
    width           BIGINT  NOT NULL,
    height          BIGINT  NOT NULL,
    bytes           BIGINT  NOT NULL,
    thumbnail_bytes BIGINT  NOT NULL,
    sha256          TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    UNIQUE (camera_id, sha256)
);
CREATE INDEX images_camera_captured ON images (camera_id, captured_at DESC, id DESC);
CREATE INDEX images_timelapse ON images (timelapse_id, captured_at, id);
CREATE INDEX images_sha256 ON images (sha256);

CREATE TABLE videos (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    timelapse_id BIGINT  NOT NULL REFERENCES timelapses (id) ON DELETE CASCADE,
    camera_id    BIGINT  NOT NULL,
    status       TEXT    NOT NULL,
    progress     DOUBLE PRECISION NOT NULL DEFAULT 0,
    fps          BIGINT  NOT NULL,
    frame_count  BIGINT  NOT NULL DEFAULT 0,
    bytes        BIGINT,
    sha256       TEXT,
    error        TEXT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX videos_timelapse ON videos (timelapse_id, id);

CREATE TABLE settings (
    key        TEXT   PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE preferences (
    key        TEXT   PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    camera_id  BIGINT,
    created_at BIGINT  NOT NULL
);
