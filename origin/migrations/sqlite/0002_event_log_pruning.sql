-- The highest event id ever pruned from the log: a client resuming from an id at or below it
-- missed events that are gone, and is told to resync.
CREATE TABLE event_log_meta (
    id             INTEGER PRIMARY KEY,
    pruned_through BIGINT NOT NULL
);
INSERT INTO event_log_meta (id, pruned_through) VALUES (1, 0);
