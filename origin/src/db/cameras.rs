//! The `cameras` table.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use timelapser_core::resources::{Camera, CameraStatus};

use super::from_micros;
use super::images::ImageRow;

/// A camera joined with its latest image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraRow {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Status (wire name).
    pub status: String,
    /// Status message.
    pub status_message: Option<String>,
    /// Images captured.
    pub image_count: i64,
    /// Latest capture time, micros.
    pub last_capture_at: Option<i64>,
    /// Latest capture or heartbeat, micros.
    pub last_seen_at: Option<i64>,
    /// Creation, micros.
    pub created_at: i64,
    /// Modification, micros.
    pub updated_at: i64,
    /// The latest image.
    pub latest_image: Option<ImageRow>,
    /// Whether everyone may see it.
    pub public: bool,
}

/// Cameras (not being deleted) joined with their latest image (`i_` columns).
static SELECT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT c.id, c.name, c.status, c.status_message, c.image_count, c.last_capture_at, \
         c.last_seen_at, c.created_at, c.updated_at, c.public, {} \
         FROM cameras c LEFT JOIN images i ON i.id = c.latest_image_id WHERE c.deleting = 0",
        super::images::PREFIXED_COLUMNS
    )
});

impl CameraRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            status: row.try_get("status")?,
            status_message: row.try_get("status_message")?,
            image_count: row.try_get("image_count")?,
            last_capture_at: row.try_get("last_capture_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            latest_image: ImageRow::from_prefixed(row, "i_")?,
            public: row.try_get::<i64, _>("public")? != 0,
        })
    }

    /// The status, `unknown` if the stored name is not one.
    pub fn status(&self) -> CameraStatus {
        CameraStatus::parse(&self.status).unwrap_or(CameraStatus::Unknown)
    }

    /// The API representation.
    pub fn to_resource(&self) -> Camera {
        Camera {
            id: self.id,
            name: self.name.clone(),
            status: self.status(),
            status_message: self.status_message.clone(),
            image_count: self.image_count as u64,
            last_capture_at: self.last_capture_at.map(from_micros),
            latest_image: self.latest_image.as_ref().map(ImageRow::to_resource),
            public: self.public,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        }
    }
}

/// Inserts a camera; returns its id.
pub async fn insert(
    conn: &mut AnyConnection,
    name: &str,
    token_hash: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO cameras (name, token_hash, status, image_count, created_at, updated_at) \
         VALUES ($1, $2, 'unknown', 0, $3, $3) RETURNING id",
    )
    .bind(name)
    .bind(token_hash)
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_get("id")
}

/// One camera with its latest image.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<CameraRow>, sqlx::Error> {
    let row = sqlx::query(&format!("{} AND c.id = $1", *SELECT))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(CameraRow::from_row).transpose()
}

/// Every camera, by id.
pub async fn list(conn: &mut AnyConnection) -> Result<Vec<CameraRow>, sqlx::Error> {
    let rows = sqlx::query(&format!("{} ORDER BY c.id", *SELECT))
        .fetch_all(conn)
        .await?;
    rows.iter().map(CameraRow::from_row).collect()
}

/// Whether a camera exists.
pub async fn exists(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    super::exists(
        conn,
        "SELECT 1 FROM cameras WHERE id = $1 AND deleting = 0",
        id,
    )
    .await
}

/// The token hash of a camera.
pub async fn token_hash(conn: &mut AnyConnection, id: i64) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT token_hash FROM cameras WHERE id = $1 AND deleting = 0")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| r.try_get("token_hash")).transpose()
}

/// The camera whose token has this hash.
pub async fn id_by_token_hash(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query("SELECT id FROM cameras WHERE token_hash = $1 AND deleting = 0")
        .bind(token_hash)
        .fetch_optional(conn)
        .await?;
    row.map(|r| r.try_get("id")).transpose()
}

/// Renames a camera; false when it does not exist.
pub async fn rename(
    conn: &mut AnyConnection,
    id: i64,
    name: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE cameras SET name = $1, updated_at = $2 WHERE id = $3 AND deleting = 0")
            .bind(name)
            .bind(now)
            .bind(id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// A condition on a row's `camera_id`, true for rows of public cameras: with `$n = 0 OR` in
/// front, the numbers of all cameras or of the public ones (`public_only` bound as 0 or 1).
pub(crate) const OF_A_PUBLIC_CAMERA: &str =
    "camera_id IN (SELECT id FROM cameras WHERE public = 1)";

/// Makes a camera public or private; false when it does not exist.
pub async fn set_public(
    conn: &mut AnyConnection,
    id: i64,
    public: bool,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE cameras SET public = $1, updated_at = $2 WHERE id = $3 AND deleting = 0",
    )
    .bind(i64::from(public))
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether a camera is public; `None` when it does not exist. A camera being deleted is
/// private (it is marked so), so what is logged of its deletion reaches no public reader.
pub async fn is_public(conn: &mut AnyConnection, id: i64) -> Result<Option<bool>, sqlx::Error> {
    let row = sqlx::query("SELECT public FROM cameras WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| r.try_get::<i64, _>("public").map(|p| p != 0))
        .transpose()
}

/// Whether any camera is private.
pub async fn any_private(conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    super::exists(
        conn,
        "SELECT 1 FROM cameras WHERE public = $1 AND deleting = 0",
        0_i64,
    )
    .await
}

/// Replaces a camera's token hash.
pub async fn set_token_hash(
    conn: &mut AnyConnection,
    id: i64,
    token_hash: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE cameras SET token_hash = $1 WHERE id = $2")
        .bind(token_hash)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes a camera's row (its remaining images, timelapses and videos go with it); false
/// when absent. [`crate::services::storage`] empties it in batches first.
pub async fn delete(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM cameras WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Sets status and message, and notes the camera was heard from at `seen_at`.
pub async fn set_status(
    conn: &mut AnyConnection,
    id: i64,
    status: &str,
    message: Option<&str>,
    seen_at: Option<i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE cameras SET status = $1, status_message = $2, \
         last_seen_at = COALESCE($3, last_seen_at), updated_at = $4 WHERE id = $5",
    )
    .bind(status)
    .bind(message)
    .bind(seen_at)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts a new image of `bytes` (original and thumbnail): bumps the count, moves `latest_image_id` and `last_capture_at` when the
/// image is the newest by capture time, and marks the camera seen. Returns the new count.
pub async fn record_capture(
    conn: &mut AnyConnection,
    id: i64,
    image_id: i64,
    captured_at: i64,
    bytes: i64,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE cameras SET image_count = image_count + 1, bytes_stored = bytes_stored + $5, \
         latest_image_id = CASE WHEN last_capture_at IS NULL OR $1 >= last_capture_at \
             THEN $2 ELSE latest_image_id END, \
         last_capture_at = CASE WHEN last_capture_at IS NULL OR $1 >= last_capture_at \
             THEN $1 ELSE last_capture_at END, \
         last_seen_at = $3, updated_at = $3 WHERE id = $4 RETURNING image_count",
    )
    .bind(captured_at)
    .bind(image_id)
    .bind(now)
    .bind(id)
    .bind(bytes)
    .fetch_one(conn)
    .await?;
    row.try_get("image_count")
}

/// Online cameras not heard from since `cutoff` (micros).
pub async fn silent_since(conn: &mut AnyConnection, cutoff: i64) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id FROM cameras WHERE status = 'online' AND deleting = 0 \
         AND (last_seen_at IS NULL OR last_seen_at < $1) ORDER BY id",
    )
    .bind(cutoff)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| r.try_get("id")).collect()
}

/// Cameras counted by status.
pub async fn count_by_status(
    conn: &mut AnyConnection,
    public_only: bool,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM cameras \
         WHERE public >= $1 AND deleting = 0 GROUP BY status",
    )
    .bind(i64::from(public_only))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
        .collect()
}

/// Marks a camera for deletion: from now on no read sees it, its token opens nothing, and it
/// is private (its media reaches no public reader). False when there is no such camera.
pub async fn mark_deleting(
    conn: &mut AnyConnection,
    id: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE cameras SET deleting = 1, public = 0, updated_at = $1 WHERE id = $2 AND deleting = 0",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Cameras marked for deletion and not yet gone (what a restart resumes).
pub async fn deleting(conn: &mut AnyConnection) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query("SELECT id FROM cameras WHERE deleting = 1 ORDER BY id")
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| r.try_get("id")).collect()
}

/// Takes deleted images off a camera's numbers: its count and bytes, and its latest image
/// and last capture time (those of the newest image left).
pub async fn forget_images(
    conn: &mut AnyConnection,
    id: i64,
    images: i64,
    bytes: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE cameras SET image_count = image_count - $1, bytes_stored = bytes_stored - $2, \
         latest_image_id = (SELECT i.id FROM images i WHERE i.camera_id = $3 \
             ORDER BY i.captured_at DESC, i.id DESC LIMIT 1), \
         last_capture_at = (SELECT MAX(i.captured_at) FROM images i WHERE i.camera_id = $3), \
         updated_at = $4 WHERE id = $3",
    )
    .bind(images)
    .bind(bytes)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A camera's image count and latest image, whether or not it is being deleted.
pub async fn image_state(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<(i64, Option<ImageRow>), sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT c.image_count, {} FROM cameras c LEFT JOIN images i ON i.id = c.latest_image_id \
         WHERE c.id = $1",
        super::images::PREFIXED_COLUMNS
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    match row {
        None => Ok((0, None)),
        Some(row) => Ok((
            row.try_get("image_count")?,
            ImageRow::from_prefixed(&row, "i_")?,
        )),
    }
}

/// What each camera (not being deleted) stores: id, name, images and bytes.
pub async fn storage(
    conn: &mut AnyConnection,
) -> Result<Vec<(i64, String, i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, image_count, bytes_stored FROM cameras WHERE deleting = 0 ORDER BY id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("name")?,
                r.try_get("image_count")?,
                r.try_get("bytes_stored")?,
            ))
        })
        .collect()
}

/// The bytes a camera stores (for its size cap).
pub async fn bytes_stored(conn: &mut AnyConnection, id: i64) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT bytes_stored FROM cameras WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map_or(Ok(0), |r| r.try_get("bytes_stored"))
}
