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
    /// Who may read it (`everyone`, `signed_in`, `anonymous`).
    pub readers: String,
    /// Its id on the public stream (none for an event only signed-in people read).
    pub public_id: Option<i64>,
}

impl FromRow<'_, AnyRow> for EventRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            payload: row.try_get("payload")?,
            camera_id: row.try_get("camera_id")?,
            created_at: row.try_get("created_at")?,
            readers: row.try_get("readers")?,
            public_id: row.try_get("public_id")?,
        })
    }
}

/// Appends an event; returns its id and, when the public may read it, its public id (the
/// next of the public stream's own sequence, taken in the writer's transaction, so public ids
/// are dense and commit in order like ids).
pub async fn append(
    conn: &mut AnyConnection,
    name: &str,
    payload: &str,
    camera_id: Option<i64>,
    readers: &str,
    public: bool,
    now: i64,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    let public_id: Option<i64> = if public {
        let row = sqlx::query(
            "UPDATE event_log_meta SET public_seq = public_seq + 1 WHERE id = 1 \
             RETURNING public_seq",
        )
        .fetch_one(&mut *conn)
        .await?;
        Some(row.try_get("public_seq")?)
    } else {
        None
    };
    let row = sqlx::query(
        "INSERT INTO events (name, payload, camera_id, created_at, readers, public_id) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(name)
    .bind(payload)
    .bind(camera_id)
    .bind(now)
    .bind(readers)
    .bind(public_id)
    .fetch_one(conn)
    .await?;
    Ok((row.try_get("id")?, public_id))
}

/// The log id of the event with this public id, if it is retained.
pub async fn id_of_public(
    conn: &mut AnyConnection,
    public_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query("SELECT id FROM events WHERE public_id = $1")
        .bind(public_id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| r.try_get("id")).transpose()
}

/// The public id of the newest public event at or before log id `id` (0 when none).
pub async fn public_id_through(conn: &mut AnyConnection, id: i64) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(MAX(public_id), 0) AS BIGINT) AS p FROM events WHERE id <= $1",
    )
    .bind(id)
    .fetch_one(conn)
    .await?;
    row.try_get("p")
}

/// Up to `limit` events after `after`, in order.
pub async fn after(
    conn: &mut AnyConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, payload, camera_id, created_at, readers, public_id FROM events \
         WHERE id > $1 ORDER BY id LIMIT $2",
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

/// Deletes events older than `before` (micros) or beyond the newest `keep`, never the newest
/// event itself, and records the highest id deleted; returns how many were deleted.
pub async fn prune(conn: &mut AnyConnection, before: i64, keep: i64) -> Result<u64, sqlx::Error> {
    const CONDITION: &str = "id < (SELECT MAX(id) FROM events) \
         AND (created_at < $1 OR id <= (SELECT MAX(id) FROM events) - $2)";
    let row = sqlx::query(&format!(
        "SELECT MAX(id) AS hi FROM events WHERE {CONDITION}"
    ))
    .bind(before)
    .bind(keep)
    .fetch_one(&mut *conn)
    .await?;
    let Some(through): Option<i64> = row.try_get("hi")? else {
        return Ok(0);
    };
    let done = sqlx::query("DELETE FROM events WHERE id <= $1")
        .bind(through)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE event_log_meta SET pruned_through = $1 WHERE id = 1 AND pruned_through < $1",
    )
    .bind(through)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// The highest id ever pruned (0 when nothing was).
pub async fn pruned_through(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT pruned_through FROM event_log_meta WHERE id = 1")
        .fetch_one(conn)
        .await?;
    row.try_get("pruned_through")
}
