//! The `timelapses` table.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};
use timelapser_core::resources::{Timelapse, TimelapseStatus};

use super::from_micros;

const COLUMNS: &str =
    "id, camera_id, name, status, image_count, started_at, stopped_at, updated_at, protected";

/// One timelapse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelapseRow {
    /// Id.
    pub id: i64,
    /// Camera.
    pub camera_id: i64,
    /// Name.
    pub name: String,
    /// `running` or `stopped`.
    pub status: String,
    /// Frames.
    pub image_count: i64,
    /// Start, micros.
    pub started_at: i64,
    /// Stop, micros.
    pub stopped_at: Option<i64>,
    /// Modification, micros.
    pub updated_at: i64,
    /// Never pruned.
    pub protected: bool,
}

impl FromRow<'_, AnyRow> for TimelapseRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            camera_id: row.try_get("camera_id")?,
            name: row.try_get("name")?,
            status: row.try_get("status")?,
            image_count: row.try_get("image_count")?,
            started_at: row.try_get("started_at")?,
            stopped_at: row.try_get("stopped_at")?,
            updated_at: row.try_get("updated_at")?,
            protected: row.try_get::<i64, _>("protected")? != 0,
        })
    }
}

impl TimelapseRow {
    /// The API representation.
    pub fn to_resource(&self) -> Timelapse {
        Timelapse {
            id: self.id,
            camera_id: self.camera_id,
            name: self.name.clone(),
            status: if self.status == "running" {
                TimelapseStatus::Running
            } else {
                TimelapseStatus::Stopped
            },
            image_count: self.image_count as u64,
            started_at: from_micros(self.started_at),
            stopped_at: self.stopped_at.map(from_micros),
            updated_at: from_micros(self.updated_at),
            protected: self.protected,
        }
    }
}

/// Starts a timelapse.
pub async fn insert(
    conn: &mut AnyConnection,
    camera_id: i64,
    name: &str,
    now: i64,
) -> Result<TimelapseRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO timelapses (camera_id, name, status, image_count, started_at, updated_at) \
         VALUES ($1, $2, 'running', 0, $3, $3) RETURNING {COLUMNS}"
    ))
    .bind(camera_id)
    .bind(name)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// One timelapse.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<TimelapseRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM timelapses WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The running timelapse of a camera.
pub async fn running_for_camera(
    conn: &mut AnyConnection,
    camera_id: i64,
) -> Result<Option<TimelapseRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM timelapses WHERE camera_id = $1 AND status = 'running' \
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(camera_id)
    .fetch_optional(conn)
    .await
}

/// The timelapse of a camera that was running at `at` (micros): started at or before it and
/// not stopped by then. A frame is filed under it by its capture time, not its arrival.
pub async fn running_at(
    conn: &mut AnyConnection,
    camera_id: i64,
    at: i64,
) -> Result<Option<TimelapseRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM timelapses WHERE camera_id = $1 AND started_at <= $2          AND (stopped_at IS NULL OR stopped_at > $2) ORDER BY started_at DESC, id DESC LIMIT 1"
    ))
    .bind(camera_id)
    .bind(at)
    .fetch_optional(conn)
    .await
}

/// A camera's timelapses, newest first.
pub async fn for_camera(
    conn: &mut AnyConnection,
    camera_id: i64,
) -> Result<Vec<TimelapseRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM timelapses WHERE camera_id = $1 ORDER BY id DESC"
    ))
    .bind(camera_id)
    .fetch_all(conn)
    .await
}

/// Stops a running timelapse; returns it as stopped, or `None` if it was not running.
pub async fn stop(
    conn: &mut AnyConnection,
    id: i64,
    now: i64,
) -> Result<Option<TimelapseRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE timelapses SET status = 'stopped', stopped_at = $1, updated_at = $1 \
         WHERE id = $2 AND status = 'running' RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Counts a frame.
pub async fn record_capture(
    conn: &mut AnyConnection,
    id: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE timelapses SET image_count = image_count + 1, updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets a timelapse's name and protection; false when it does not exist.
pub async fn update(
    conn: &mut AnyConnection,
    id: i64,
    name: &str,
    protected: bool,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE timelapses SET name = $1, protected = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(name)
    .bind(i64::from(protected))
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Takes deleted frames off a timelapse's count.
pub async fn forget_images(
    conn: &mut AnyConnection,
    id: i64,
    images: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE timelapses SET image_count = image_count - $1, updated_at = $2 WHERE id = $3",
    )
    .bind(images)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a timelapse (its videos go with it; its frames stay as the camera's).
pub async fn delete(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM timelapses WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
