//! The `events` table: the durable event log behind SSE ids and resume.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

/// One logged event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    /// The increasing id (the SSE `id:`).
    pub id: i64,
    /// The catalogue name.
    pub name: String,
    /// The JSON payload.
    pub payload: String,
    /// The camera it concerns, for filters.
    pub camera_id: Option<i64>,
    /// When it was logged, micros.
    pub created_at: i64,
}

impl FromRow<'_, AnyRow> for EventRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            payload: row.try_get("payload")?,
            camera_id: row.try_get("camera_id")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Appends an event; returns its id.
pub async fn append(
    conn: &mut AnyConnection,
    name: &str,
    payload: &str,
    camera_id: Option<i64>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO events (name, payload, camera_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(name)
    .bind(payload)
    .bind(camera_id)
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_get("id")
}

/// Up to `limit` events after `after`, in order.
pub async fn after(
    conn: &mut AnyConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, payload, camera_id, created_at FROM events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The smallest and largest retained ids.
pub async fn bounds(conn: &mut AnyConnection) -> Result<(Option<i64>, Option<i64>), sqlx::Error> {
    let row = sqlx::query("SELECT MIN(id) AS lo, MAX(id) AS hi FROM events")
        .fetch_one(conn)
        .await?;
    Ok((row.try_get("lo")?, row.try_get("hi")?))
}

/// Deletes events older than `before` (micros) and beyond the newest `keep`; returns how many.
pub async fn prune(conn: &mut AnyConnection, before: i64, keep: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM events WHERE created_at < $1 OR id <= \
         (SELECT COALESCE(MAX(id), 0) - $2 FROM events)",
    )
    .bind(before)
    .bind(keep)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
