-- Webhooks (issue 16): operators' URLs that are POSTed a signed JSON body when a video is
-- ready or failed, a camera goes offline or online, or storage is under pressure. Keep in
-- step with ../postgres/0008_webhooks.sql.

-- The secret is kept as given: the origin needs it to sign (it is never read back by the
-- API). events is a comma-separated list of webhook event names. A webhook is sent only the
-- events logged after since_event_id (the newest event when it was created).
CREATE TABLE webhooks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    url            TEXT    NOT NULL,
    secret         TEXT    NOT NULL,
    events         TEXT    NOT NULL,
    enabled        BIGINT  NOT NULL DEFAULT 1,
    since_event_id BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

-- One event to one webhook. The dispatcher inserts them from the event log (the payload is
-- copied: the log is pruned); the deliverer claims due ones with a lease (lease_until), so
-- two replicas never send the same attempt, and a crash mid-attempt lets the lease run out.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       BIGINT  NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         BIGINT  NOT NULL,
    event            TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    event_created_at BIGINT  NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending',
    attempt_count    BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    lease_until      BIGINT,
    last_status_code BIGINT,
    last_error       TEXT,
    delivered_at     BIGINT,
    created_at       BIGINT  NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id DESC);

-- Each attempt's outcome (the delivery log).
CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id BIGINT  NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     BIGINT  NOT NULL,
    at          BIGINT  NOT NULL,
    duration_ms BIGINT  NOT NULL,
    status_code BIGINT,
    error       TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);

-- How far the dispatcher has read the event log (one row): it moves in the transaction that
-- inserts the deliveries, so a crash neither loses nor repeats one.
CREATE TABLE webhook_cursor (
    id            BIGINT PRIMARY KEY,
    last_event_id BIGINT NOT NULL
);
INSERT INTO webhook_cursor (id, last_event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;
