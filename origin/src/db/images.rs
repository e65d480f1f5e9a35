//! The `images` table.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};
use timelapser_core::resources::{self, Image};

use super::from_micros;

/// The columns of an image, in [`ImageRow`]'s order.
pub const COLUMNS: &str =
    "id, camera_id, timelapse_id, captured_at, width, height, bytes, thumbnail_bytes, sha256";

/// The columns of an image prefixed `i_` (joined as `i`), for [`ImageRow::from_prefixed`].
pub const PREFIXED_COLUMNS: &str = "i.id AS i_id, i.camera_id AS i_camera_id, \
    i.timelapse_id AS i_timelapse_id, i.captured_at AS i_captured_at, i.width AS i_width, \
    i.height AS i_height, i.bytes AS i_bytes, i.thumbnail_bytes AS i_thumbnail_bytes, \
    i.sha256 AS i_sha256";

/// One stored image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRow {
    /// Id.
    pub id: i64,
    /// Camera.
    pub camera_id: i64,
    /// Timelapse running at capture time.
    pub timelapse_id: Option<i64>,
    /// Capture time, micros.
    pub captured_at: i64,
    /// Width of the original.
    pub width: i64,
    /// Height of the original.
    pub height: i64,
    /// Bytes of the original.
    pub bytes: i64,
    /// Bytes of the thumbnail.
    pub thumbnail_bytes: i64,
    /// SHA-256 of the original, hex.
    pub sha256: String,
}

impl ImageRow {
    /// Reads an image from columns named with `prefix` (`""` or `"i_"` in joins).
    pub fn from_prefixed(row: &AnyRow, prefix: &str) -> Result<Option<Self>, sqlx::Error> {
        let col = |name: &str| format!("{prefix}{name}");
        let id: Option<i64> = row.try_get(col("id").as_str())?;
        let Some(id) = id else { return Ok(None) };
        Ok(Some(Self {
            id,
            camera_id: row.try_get(col("camera_id").as_str())?,
            timelapse_id: row.try_get(col("timelapse_id").as_str())?,
            captured_at: row.try_get(col("captured_at").as_str())?,
            width: row.try_get(col("width").as_str())?,
            height: row.try_get(col("height").as_str())?,
            bytes: row.try_get(col("bytes").as_str())?,
            thumbnail_bytes: row.try_get(col("thumbnail_bytes").as_str())?,
            sha256: row.try_get(col("sha256").as_str())?,
        }))
    }

    /// The API representation.
    pub fn to_resource(&self) -> Image {
        Image {
            id: self.id,
            camera_id: self.camera_id,
            timelapse_id: self.timelapse_id,
            captured_at: from_micros(self.captured_at),
            width: self.width as u32,
            height: self.height as u32,
            bytes: self.bytes as u64,
            sha256: self.sha256.clone(),
            url: resources::image_url(&self.sha256),
            thumbnail_url: resources::thumbnail_url(&self.sha256),
        }
    }
}

impl FromRow<'_, AnyRow> for ImageRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Self::from_prefixed(row, "")?.ok_or_else(|| sqlx::Error::ColumnNotFound("id".into()))
    }
}

/// A capture to insert.
#[derive(Clone, Debug)]
pub struct NewImage {
    /// Camera.
    pub camera_id: i64,
    /// Running timelapse.
    pub timelapse_id: Option<i64>,
    /// Capture time, micros.
    pub captured_at: i64,
    /// Width.
    pub width: i64,
    /// Height.
    pub height: i64,
    /// Bytes of the original.
    pub bytes: i64,
    /// Bytes of the thumbnail.
    pub thumbnail_bytes: i64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Insert time, micros.
    pub created_at: i64,
}

/// The image of a camera with these bytes, if stored.
pub async fn find_by_sha256(
    conn: &mut AnyConnection,
    camera_id: i64,
    sha256: &str,
) -> Result<Option<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM images WHERE camera_id = $1 AND sha256 = $2"
    ))
    .bind(camera_id)
    .bind(sha256)
    .fetch_optional(conn)
    .await
}

/// Inserts an image; `None` when the camera already has these bytes.
pub async fn insert(
    conn: &mut AnyConnection,
    new: &NewImage,
) -> Result<Option<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO images (camera_id, timelapse_id, captured_at, width, height, bytes, \
         thumbnail_bytes, sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (camera_id, sha256) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(new.camera_id)
    .bind(new.timelapse_id)
    .bind(new.captured_at)
    .bind(new.width)
    .bind(new.height)
    .bind(new.bytes)
    .bind(new.thumbnail_bytes)
    .bind(&new.sha256)
    .bind(new.created_at)
    .fetch_optional(conn)
    .await
}

/// One image by id.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM images WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The most recently captured image of a camera.
pub async fn latest_for_camera(
    conn: &mut AnyConnection,
    camera_id: i64,
) -> Result<Option<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM images WHERE camera_id = $1 \
         ORDER BY captured_at DESC, id DESC LIMIT 1"
    ))
    .bind(camera_id)
    .fetch_optional(conn)
    .await
}

/// A page of a camera's images captured in `[from, to)` (micros), newest first, strictly
/// before the cursor `(captured_at, id)`.
pub async fn page(
    conn: &mut AnyConnection,
    camera_id: i64,
    captured: std::ops::Range<i64>,
    limit: i64,
    before: Option<(i64, i64)>,
) -> Result<Vec<ImageRow>, sqlx::Error> {
    match before {
        None => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM images WHERE camera_id = $1 \
                 AND captured_at >= $2 AND captured_at < $3 \
                 ORDER BY captured_at DESC, id DESC LIMIT $4"
            ))
            .bind(camera_id)
            .bind(captured.start)
            .bind(captured.end)
            .bind(limit)
            .fetch_all(conn)
            .await
        }
        Some((captured_at, id)) => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM images WHERE camera_id = $1 \
                 AND captured_at >= $2 AND captured_at < $3 \
                 AND (captured_at < $4 OR (captured_at = $4 AND id < $5)) \
                 ORDER BY captured_at DESC, id DESC LIMIT $6"
            ))
            .bind(camera_id)
            .bind(captured.start)
            .bind(captured.end)
            .bind(captured_at)
            .bind(id)
            .bind(limit)
            .fetch_all(conn)
            .await
        }
    }
}

/// Every image of a timelapse in capture order (the frames of its videos).
pub async fn for_timelapse(
    conn: &mut AnyConnection,
    timelapse_id: i64,
) -> Result<Vec<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM images WHERE timelapse_id = $1 ORDER BY captured_at, id"
    ))
    .bind(timelapse_id)
    .fetch_all(conn)
    .await
}

/// The frames of a timelapse captured in `[from, to)` (micros; either end open), in capture
/// order: what a render reads.
pub async fn for_render(
    conn: &mut AnyConnection,
    timelapse_id: i64,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM images WHERE timelapse_id = $1 \
         AND ($2 IS NULL OR captured_at >= $2) AND ($3 IS NULL OR captured_at < $3) \
         ORDER BY captured_at, id"
    ))
    .bind(timelapse_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}

/// The newest timelapse of a camera with frames captured in `[from, to)` (micros): the one
/// an automatic rule renders.
pub async fn newest_timelapse_between(
    conn: &mut AnyConnection,
    camera_id: i64,
    from: i64,
    to: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT MAX(timelapse_id) AS timelapse_id FROM images WHERE camera_id = $1 \
         AND captured_at >= $2 AND captured_at < $3",
    )
    .bind(camera_id)
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await?;
    row.try_get("timelapse_id")
}

/// Images stored, and images captured at or after `since` (micros).
pub async fn counts(
    conn: &mut AnyConnection,
    since: i64,
    public_only: bool,
) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS total, \
         CAST(COALESCE(SUM(CASE WHEN captured_at >= $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS recent \
         FROM images WHERE $2 = 0 OR {}",
        super::cameras::OF_A_PUBLIC_CAMERA
    ))
    .bind(since)
    .bind(i64::from(public_only))
    .fetch_one(conn)
    .await?;
    Ok((row.try_get("total")?, row.try_get("recent")?))
}

/// Bytes of distinct media (the same bytes captured by two cameras are stored once).
pub async fn storage_bytes(
    conn: &mut AnyConnection,
    public_only: bool,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT CAST(COALESCE(SUM(b), 0) AS BIGINT) AS total FROM \
         (SELECT MAX(bytes + thumbnail_bytes) AS b FROM images \
          WHERE $1 = 0 OR {} GROUP BY sha256) AS distinct_media",
        super::cameras::OF_A_PUBLIC_CAMERA
    ))
    .bind(i64::from(public_only))
    .fetch_one(conn)
    .await?;
    row.try_get("total")
}

/// Whether a public camera shows these bytes (so everyone may fetch them).
pub async fn sha256_public(conn: &mut AnyConnection, sha256: &str) -> Result<bool, sqlx::Error> {
    super::exists(
        conn,
        "SELECT 1 FROM images i JOIN cameras c ON c.id = i.camera_id \
         WHERE i.sha256 = $1 AND c.public = 1",
        sha256.to_owned(),
    )
    .await
}

/// The distinct hashes of a camera's images (for cleaning up files when it is deleted).
pub async fn sha256s_of_camera(
    conn: &mut AnyConnection,
    camera_id: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT DISTINCT sha256 FROM images WHERE camera_id = $1")
        .bind(camera_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| r.try_get("sha256")).collect()
}

/// An image about to be deleted: what its deletion changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doomed {
    /// Id.
    pub id: i64,
    /// Camera.
    pub camera_id: i64,
    /// Timelapse.
    pub timelapse_id: Option<i64>,
    /// Bytes of the original and the thumbnail.
    pub bytes: i64,
    /// The files' hash.
    pub sha256: String,
}

/// Which images a deletion takes, oldest first.
#[derive(Clone, Copy, Debug)]
pub enum Selection<'a> {
    /// These images of a camera, unless a protected timelapse holds them.
    Ids {
        /// The camera.
        camera_id: i64,
        /// The ids.
        ids: &'a [i64],
    },
    /// A camera's images captured in `[from, to)` (micros), except protected timelapses'.
    Range {
        /// The camera.
        camera_id: i64,
        /// First capture time included.
        from: i64,
        /// First capture time excluded.
        to: i64,
    },
    /// A camera's images captured before `cutoff` that retention may prune (retention by age).
    PrunableBefore {
        /// The camera.
        camera_id: i64,
        /// Micros.
        cutoff: i64,
    },
    /// A camera's (or, with `None`, the site's) prunable images; with `into_running`, a
    /// running timelapse's frames count as prunable too.
    Prunable {
        /// The camera, or every camera.
        camera_id: Option<i64>,
        /// Whether running timelapses' frames may go.
        into_running: bool,
    },
    /// Every frame of a timelapse (it is being deleted with its frames).
    Timelapse(i64),
    /// Every image of a camera (it is being deleted).
    Camera(i64),
}

/// Frames of a protected timelapse are never taken by anything but deleting the timelapse or
/// the camera.
const NOT_PROTECTED: &str =
    "(timelapse_id IS NULL OR timelapse_id NOT IN (SELECT id FROM timelapses WHERE protected = 1))";

/// What retention and disk pressure may prune: not a protected timelapse's frames, nor a
/// running one's, nor those a render is reading.
const PRUNABLE: &str = "(timelapse_id IS NULL OR timelapse_id NOT IN (SELECT id FROM timelapses \
    WHERE protected = 1 OR status = 'running' OR id IN \
    (SELECT timelapse_id FROM videos WHERE status IN ('queued', 'rendering'))))";

/// At most `limit` images of a selection, oldest first.
pub async fn select(
    conn: &mut AnyConnection,
    selection: Selection<'_>,
    limit: i64,
) -> Result<Vec<Doomed>, sqlx::Error> {
    const COLS: &str = "id, camera_id, timelapse_id, bytes + thumbnail_bytes AS b, sha256";
    const ORDER: &str = "ORDER BY captured_at, id";
    let query = match selection {
        Selection::Ids { camera_id, ids } => {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let list = ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            sqlx::query(&format!(
                "SELECT {COLS} FROM images WHERE camera_id = $1 AND id IN ({list}) \
                 AND {NOT_PROTECTED} {ORDER} LIMIT $2"
            ))
            .bind(camera_id)
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
        Selection::Range {
            camera_id,
            from,
            to,
        } => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM images WHERE camera_id = $1 AND captured_at >= $2 \
                 AND captured_at < $3 AND {NOT_PROTECTED} {ORDER} LIMIT $4"
            ))
            .bind(camera_id)
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
        Selection::PrunableBefore { camera_id, cutoff } => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM images WHERE camera_id = $1 AND captured_at < $2 \
                 AND {PRUNABLE} {ORDER} LIMIT $3"
            ))
            .bind(camera_id)
            .bind(cutoff)
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
        Selection::Prunable {
            camera_id,
            into_running,
        } => {
            let rule = if into_running {
                NOT_PROTECTED
            } else {
                PRUNABLE
            };
            sqlx::query(&format!(
                "SELECT {COLS} FROM images WHERE ($1 = 0 OR camera_id = $1) AND {rule} \
                 {ORDER} LIMIT $2"
            ))
            .bind(camera_id.unwrap_or(0))
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
        Selection::Timelapse(timelapse_id) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM images WHERE timelapse_id = $1 {ORDER} LIMIT $2"
            ))
            .bind(timelapse_id)
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
        Selection::Camera(camera_id) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM images WHERE camera_id = $1 {ORDER} LIMIT $2"
            ))
            .bind(camera_id)
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
    };
    query
        .iter()
        .map(|r| {
            Ok(Doomed {
                id: r.try_get("id")?,
                camera_id: r.try_get("camera_id")?,
                timelapse_id: r.try_get("timelapse_id")?,
                bytes: r.try_get("b")?,
                sha256: r.try_get("sha256")?,
            })
        })
        .collect()
}

/// Whether a camera has an image that a protected timelapse holds among `ids`.
pub async fn any_protected(
    conn: &mut AnyConnection,
    camera_id: i64,
    ids: &[i64],
) -> Result<bool, sqlx::Error> {
    if ids.is_empty() {
        return Ok(false);
    }
    let list = ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    super::exists(
        conn,
        &format!(
            "SELECT 1 FROM images WHERE camera_id = $1 AND id IN ({list}) AND NOT {NOT_PROTECTED}"
        ),
        camera_id,
    )
    .await
}

/// Deletes images by id.
pub async fn delete(conn: &mut AnyConnection, ids: &[i64]) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let list = ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let done = sqlx::query(&format!("DELETE FROM images WHERE id IN ({list})"))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Bytes (originals and thumbnails) each camera captured at or after `since` (micros), in
/// one query (the `images_captured` index holds the range).
pub async fn bytes_since_by_camera(
    conn: &mut AnyConnection,
    since: i64,
) -> Result<std::collections::HashMap<i64, i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT camera_id, CAST(SUM(bytes + thumbnail_bytes) AS BIGINT) AS b FROM images \
         WHERE captured_at >= $1 GROUP BY camera_id",
    )
    .bind(since)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("camera_id")?, r.try_get("b")?)))
        .collect()
}
