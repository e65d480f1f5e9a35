//! The `schedules` table: each camera's capture schedule, a JSON document.

use sqlx::{AnyConnection, Row};

/// A stored schedule: its JSON and its modification time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRow {
    /// `core::schedule::Schedule` as JSON.
    pub document: String,
    /// Modification, micros.
    pub updated_at: i64,
}

/// A camera's schedule.
pub async fn get(
    conn: &mut AnyConnection,
    camera_id: i64,
) -> Result<Option<ScheduleRow>, sqlx::Error> {
    let row = sqlx::query("SELECT document, updated_at FROM schedules WHERE camera_id = $1")
        .bind(camera_id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| {
        Ok(ScheduleRow {
            document: r.try_get("document")?,
            updated_at: r.try_get("updated_at")?,
        })
    })
    .transpose()
}

/// Sets a camera's schedule.
pub async fn put(
    conn: &mut AnyConnection,
    camera_id: i64,
    document: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO schedules (camera_id, document, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (camera_id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
    )
    .bind(camera_id)
    .bind(document)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
