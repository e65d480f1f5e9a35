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
