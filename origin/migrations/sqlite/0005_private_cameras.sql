-- Private cameras: seen only by signed-in people (1 = public, 0 = private; an integer so one
-- query reads it on SQLite and PostgreSQL alike).
ALTER TABLE cameras ADD COLUMN public BIGINT NOT NULL DEFAULT 1;

-- Who may read a logged event on the event stream: 'everyone', 'signed_in' (an event of a
-- private camera) or 'anonymous' (the public's own view of a change, such as a camera that
-- turned private leaving the public gallery).
ALTER TABLE events ADD COLUMN readers TEXT NOT NULL DEFAULT 'everyone';

-- Paths the edge must forget (what it stored of a camera that turned private), until it has.
CREATE TABLE edge_purges (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    path       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- The public event stream's own ids: dense over the events the public may read, so that no
-- gap tells of a private camera's activity. Events logged before this migration keep their
-- log id as their public id (clients resuming with one find their place).
ALTER TABLE events ADD COLUMN public_id BIGINT;
UPDATE events SET public_id = id WHERE readers <> 'signed_in';
CREATE UNIQUE INDEX events_public_id ON events (public_id);
ALTER TABLE event_log_meta ADD COLUMN public_seq BIGINT NOT NULL DEFAULT 0;
UPDATE event_log_meta SET public_seq = COALESCE((SELECT MAX(id) FROM events), 0) WHERE id = 1;
