-- Each camera's capture schedule (core::schedule::Schedule as JSON), read by its agent.
CREATE TABLE schedules (
    camera_id  BIGINT PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    document   TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Cameras created before schedules existed get the site's defaults: its capture interval and
-- its time zone (settings values are stored as JSON text), all day, not paused.
INSERT INTO schedules (camera_id, document, updated_at)
SELECT id,
       '{"interval_seconds":'
           || COALESCE((SELECT value FROM settings WHERE key = 'capture_interval_seconds'), '10')
           || ',"timezone":'
           || COALESCE((SELECT value FROM settings WHERE key = 'timezone'), '"UTC"')
           || ',"windows":[],"sun":null,"paused":false}',
       created_at
FROM cameras;
