-- Render leases (issue 18): which origin renders a video, and until when. A replica claims a
-- queued video (or one whose lease ran out: its renderer died) with one conditional UPDATE,
-- renews the lease while ffmpeg runs and gives it back on a graceful shutdown; another
-- replica takes the video only once the lease has expired. Keep in step with
-- ../sqlite/0009_render_leases.sql.
ALTER TABLE videos ADD COLUMN lease_owner TEXT;
-- Micros since the epoch.
ALTER TABLE videos ADD COLUMN lease_expires_at BIGINT;
