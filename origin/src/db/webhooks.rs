//! The `webhooks`, `webhook_deliveries`, `webhook_attempts` and `webhook_cursor` tables.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

/// A webhook as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// Id.
    pub id: i64,
    /// Where deliveries go.
    pub url: String,
    /// The signing secret.
    pub secret: String,
    /// Comma-separated webhook event names.
    pub events: String,
    /// Whether new events are delivered.
    pub enabled: bool,
    /// It is sent only events with larger ids.
    pub since_event_id: i64,
    /// Creation, micros.
    pub created_at: i64,
    /// Modification, micros.
    pub updated_at: i64,
}

impl std::fmt::Debug for WebhookRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRow")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &"***")
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

const WEBHOOK_COLUMNS: &str =
    "id, url, secret, events, enabled, since_event_id, created_at, updated_at";

impl FromRow<'_, AnyRow> for WebhookRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            url: row.try_get("url")?,
            secret: row.try_get("secret")?,
            events: row.try_get("events")?,
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            since_event_id: row.try_get("since_event_id")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// Inserts a webhook that is sent the events logged after the newest one now (read in the
/// caller's write transaction, so no event committed later is missed).
pub async fn insert(
    conn: &mut AnyConnection,
    url: &str,
    secret: &str,
    events: &str,
    enabled: bool,
    now: i64,
) -> Result<WebhookRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO webhooks (url, secret, events, enabled, since_event_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, (SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM events), $5, $5) \
         RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(url)
    .bind(secret)
    .bind(events)
    .bind(i64::from(enabled))
    .bind(now)
    .fetch_one(conn)
    .await
}

/// A webhook by id.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<WebhookRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Every webhook, by id.
pub async fn list(conn: &mut AnyConnection) -> Result<Vec<WebhookRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY id"
    ))
    .fetch_all(conn)
    .await
}

/// The enabled webhooks (the dispatcher's subscribers).
pub async fn enabled(conn: &mut AnyConnection) -> Result<Vec<WebhookRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE enabled = 1 ORDER BY id"
    ))
    .fetch_all(conn)
    .await
}

/// Writes a webhook's changeable fields; `None` when it does not exist.
pub async fn update(
    conn: &mut AnyConnection,
    webhook: &WebhookRow,
) -> Result<Option<WebhookRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE webhooks SET url = $2, secret = $3, events = $4, enabled = $5, updated_at = $6 \
         WHERE id = $1 RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(webhook.id)
    .bind(&webhook.url)
    .bind(&webhook.secret)
    .bind(&webhook.events)
    .bind(i64::from(webhook.enabled))
    .bind(webhook.updated_at)
    .fetch_optional(conn)
    .await
}

/// Deletes a webhook; its deliveries and their attempts go with it (`ON DELETE CASCADE`).
/// Whether it existed.
pub async fn delete(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The id of the last event the dispatcher has read.
pub async fn cursor(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT last_event_id FROM webhook_cursor WHERE id = 1")
        .fetch_one(conn)
        .await?;
    row.try_get("last_event_id")
}

/// Moves the cursor from `from` to `to`; false (nothing changed) when it is no longer at
/// `from` (another dispatcher moved it).
pub async fn advance_cursor(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_cursor SET last_event_id = $2 WHERE id = 1 AND last_event_id = $1",
    )
    .bind(from)
    .bind(to)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A delivery to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery<'a> {
    /// The webhook.
    pub webhook_id: i64,
    /// The logged event.
    pub event_id: i64,
    /// The webhook event name.
    pub event: &'a str,
    /// The logged event's payload, JSON text.
    pub payload: &'a str,
    /// When the event was logged, micros.
    pub event_created_at: i64,
}

/// Inserts a delivery due at once (none when this event already has one for this webhook);
/// whether one was inserted.
pub async fn insert_delivery(
    conn: &mut AnyConnection,
    delivery: &NewDelivery<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO webhook_deliveries \
         (webhook_id, event_id, event, payload, event_created_at, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (webhook_id, event_id) DO NOTHING",
    )
    .bind(delivery.webhook_id)
    .bind(delivery.event_id)
    .bind(delivery.event)
    .bind(delivery.payload)
    .bind(delivery.event_created_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A pending delivery whose next attempt is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// The delivery.
    pub id: i64,
    /// Its webhook.
    pub webhook_id: i64,
}

/// Up to `limit` pending deliveries of enabled webhooks (other than those of `busy`) that are
/// due at `now` and not leased to an attempt in flight, the longest due first.
pub async fn due(
    conn: &mut AnyConnection,
    now: i64,
    busy: &[i64],
    limit: i64,
) -> Result<Vec<Due>, sqlx::Error> {
    // Ids come from the database as integers: the list is digits and commas only.
    let not_busy = if busy.is_empty() {
        String::new()
    } else {
        let list = busy
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        format!("AND d.webhook_id NOT IN ({list})")
    };
    let rows = sqlx::query(&format!(
        "SELECT d.id AS id, d.webhook_id AS webhook_id FROM webhook_deliveries d \
         JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
         AND (d.lease_until IS NULL OR d.lease_until <= $1) AND w.enabled = 1 {not_busy} \
         ORDER BY d.next_attempt_at, d.id LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Due {
                id: r.try_get("id")?,
                webhook_id: r.try_get("webhook_id")?,
            })
        })
        .collect()
}

/// A claimed attempt: what the deliverer needs to send it.
#[derive(Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The delivery.
    pub id: i64,
    /// Its webhook.
    pub webhook_id: i64,
    /// The logged event.
    pub event_id: i64,
    /// The webhook event name.
    pub event: String,
    /// The logged event's payload, JSON text.
    pub payload: String,
    /// When the event was logged, micros.
    pub event_created_at: i64,
    /// This attempt's number (1 for the first).
    pub attempt: i64,
    /// Where to send it.
    pub url: String,
    /// What to sign it with.
    pub secret: String,
}

impl std::fmt::Debug for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed")
            .field("id", &self.id)
            .field("webhook_id", &self.webhook_id)
            .field("event", &self.event)
            .field("attempt", &self.attempt)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Leases deliveries (by id, from [`due`] in the same write transaction) until `lease_until`
/// and counts the attempt about to be made: a crash during it still counts, so a delivery that
/// crashes the origin is not retried for ever. Returns what to send.
pub async fn claim(
    conn: &mut AnyConnection,
    ids: &[i64],
    lease_until: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Ids come from the database as integers: the list is digits and commas only.
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    sqlx::query(&format!(
        "UPDATE webhook_deliveries SET attempt_count = attempt_count + 1, lease_until = $1 \
         WHERE id IN ({list})"
    ))
    .bind(lease_until)
    .execute(&mut *conn)
    .await?;
    let rows = sqlx::query(&format!(
        "SELECT d.id AS id, d.webhook_id AS webhook_id, d.event_id AS event_id, \
         d.event AS event, d.payload AS payload, d.event_created_at AS event_created_at, \
         d.attempt_count AS attempt, w.url AS url, w.secret AS secret \
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.id IN ({list}) ORDER BY d.next_attempt_at, d.id"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Claimed {
                id: r.try_get("id")?,
                webhook_id: r.try_get("webhook_id")?,
                event_id: r.try_get("event_id")?,
                event: r.try_get("event")?,
                payload: r.try_get("payload")?,
                event_created_at: r.try_get("event_created_at")?,
                attempt: r.try_get("attempt")?,
                url: r.try_get("url")?,
                secret: r.try_get("secret")?,
            })
        })
        .collect()
}

/// Gives up, as failed, the deliveries whose last attempt was claimed but never recorded (the
/// origin stopped during it) and that have no attempt left.
pub async fn fail_abandoned(
    conn: &mut AnyConnection,
    now: i64,
    max_attempts: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, \
         lease_until = NULL, last_error = 'the origin stopped during the last attempt' \
         WHERE status = 'pending' AND attempt_count >= $2 \
         AND lease_until IS NOT NULL AND lease_until <= $1",
    )
    .bind(now)
    .bind(max_attempts)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// When it was sent, micros.
    pub at: i64,
    /// How long it took.
    pub duration_ms: i64,
    /// The receiver's status code, if it answered.
    pub status_code: Option<i64>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// What follows: delivered, another attempt at a time (micros), or failed.
    pub next: Next,
}

/// What follows an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The receiver answered 2xx, at this time (micros).
    Delivered(i64),
    /// Another attempt at this time (micros).
    RetryAt(i64),
    /// No attempt left.
    Failed,
}

/// Records attempt number `attempt` of a delivery and what follows, if the delivery is still
/// this attempt's (its lease did not run out and another attempt was not claimed since);
/// whether it was.
pub async fn record(
    conn: &mut AnyConnection,
    delivery_id: i64,
    attempt: i64,
    outcome: &Outcome,
) -> Result<bool, sqlx::Error> {
    let (status, next_attempt_at, delivered_at) = match outcome.next {
        Next::Delivered(at) => ("delivered", None, Some(at)),
        Next::RetryAt(at) => ("pending", Some(at), None),
        Next::Failed => ("failed", None, None),
    };
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, delivered_at = $5, \
         lease_until = NULL, last_status_code = $6, last_error = $7 \
         WHERE id = $1 AND attempt_count = $2 AND status = 'pending'",
    )
    .bind(delivery_id)
    .bind(attempt)
    .bind(status)
    .bind(next_attempt_at)
    .bind(delivered_at)
    .bind(outcome.status_code)
    .bind(outcome.error.as_deref())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, attempt, at, duration_ms, status_code, error) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(delivery_id)
    .bind(attempt)
    .bind(outcome.at)
    .bind(outcome.duration_ms)
    .bind(outcome.status_code)
    .bind(outcome.error.as_deref())
    .execute(conn)
    .await?;
    Ok(true)
}

/// When the next pending delivery of an enabled webhook is due (or its lease runs out), if
/// any is pending.
pub async fn next_due(conn: &mut AnyConnection) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT CAST(MIN(CASE WHEN d.lease_until IS NOT NULL AND d.lease_until > d.next_attempt_at \
         THEN d.lease_until ELSE d.next_attempt_at END) AS BIGINT) AS at \
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.status = 'pending' AND w.enabled = 1",
    )
    .fetch_one(conn)
    .await?;
    row.try_get("at")
}

/// Deletes delivered and failed deliveries created before `before` (micros), with their
/// attempts; how many.
pub async fn prune(conn: &mut AnyConnection, before: i64) -> Result<u64, sqlx::Error> {
    const FINISHED: &str =
        "SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1";
    sqlx::query(&format!(
        "DELETE FROM webhook_attempts WHERE delivery_id IN ({FINISHED})"
    ))
    .bind(before)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query(&format!(
        "DELETE FROM webhook_deliveries WHERE id IN ({FINISHED})"
    ))
    .bind(before)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A delivery as its log shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Id.
    pub id: i64,
    /// Webhook.
    pub webhook_id: i64,
    /// The logged event.
    pub event_id: i64,
    /// The webhook event name.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made (or in flight).
    pub attempt_count: i64,
    /// When the next attempt is due, micros.
    pub next_attempt_at: Option<i64>,
    /// When delivered, micros.
    pub delivered_at: Option<i64>,
    /// The last status code.
    pub last_status_code: Option<i64>,
    /// The last error.
    pub last_error: Option<String>,
    /// Creation, micros.
    pub created_at: i64,
}

impl FromRow<'_, AnyRow> for DeliveryRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            webhook_id: row.try_get("webhook_id")?,
            event_id: row.try_get("event_id")?,
            event: row.try_get("event")?,
            status: row.try_get("status")?,
            attempt_count: row.try_get("attempt_count")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
            delivered_at: row.try_get("delivered_at")?,
            last_status_code: row.try_get("last_status_code")?,
            last_error: row.try_get("last_error")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// A webhook's newest `limit` deliveries, newest first.
pub async fn deliveries(
    conn: &mut AnyConnection,
    webhook_id: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, webhook_id, event_id, event, status, attempt_count, next_attempt_at, \
         delivered_at, last_status_code, last_error, created_at FROM webhook_deliveries \
         WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(webhook_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// One recorded attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    /// The delivery.
    pub delivery_id: i64,
    /// 1 for the first.
    pub attempt: i64,
    /// When, micros.
    pub at: i64,
    /// How long.
    pub duration_ms: i64,
    /// The status code, if answered.
    pub status_code: Option<i64>,
    /// The error, if any.
    pub error: Option<String>,
}

/// The recorded attempts of these deliveries, by delivery and attempt.
pub async fn attempts(
    conn: &mut AnyConnection,
    delivery_ids: &[i64],
) -> Result<Vec<AttemptRow>, sqlx::Error> {
    if delivery_ids.is_empty() {
        return Ok(Vec::new());
    }
    // Ids come from the database as integers: the list is digits and commas only.
    let list = delivery_ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let rows = sqlx::query(&format!(
        "SELECT delivery_id, attempt, at, duration_ms, status_code, error FROM webhook_attempts \
         WHERE delivery_id IN ({list}) ORDER BY delivery_id, attempt"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AttemptRow {
                delivery_id: r.try_get("delivery_id")?,
                attempt: r.try_get("attempt")?,
                at: r.try_get("at")?,
                duration_ms: r.try_get("duration_ms")?,
                status_code: r.try_get("status_code")?,
                error: r.try_get("error")?,
            })
        })
        .collect()
}
