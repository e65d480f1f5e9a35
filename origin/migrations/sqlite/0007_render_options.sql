-- Render options, content-addressed renders and automatic render rules (issue 16).
-- Keep in step with ../postgres/0007_render_options.sql.

-- What a render was asked for (core::render::RenderOptions as JSON; NULL: the defaults, for
-- videos made before options existed), its exact frame rate, its content address (frames,
-- options and overlay text hashed: the same request finds the same video) and the rule that
-- made it.
ALTER TABLE videos ADD COLUMN options TEXT;
ALTER TABLE videos ADD COLUMN frame_rate DOUBLE PRECISION;
ALTER TABLE videos ADD COLUMN render_key TEXT;
ALTER TABLE videos ADD COLUMN rule_id BIGINT;
CREATE INDEX videos_render_key ON videos (render_key);

-- Rules that render a camera's frames on their own (core::render::RenderRule as JSON).
-- last_due: the due instant (micros) of the last run claimed; a run is claimed by moving it
-- forward in the transaction that queues the video, so it happens once, whichever replica
-- gets there first, and a run missed while no origin ran is made up at the next start.
CREATE TABLE render_rules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id   BIGINT NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    document    TEXT   NOT NULL,
    last_due    BIGINT,
    last_result TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX render_rules_camera ON render_rules (camera_id, id);
