//! The `videos` table.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};
use timelapser_core::render::RenderOptions;
use timelapser_core::resources::{self, Video, VideoStatus};

use super::from_micros;

const COLUMNS: &str = "id, timelapse_id, camera_id, status, progress, fps, frame_count, bytes, \
    sha256, error, created_at, updated_at, options, frame_rate, render_key, rule_id";

/// One video.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoRow {
    /// Id.
    pub id: i64,
    /// Timelapse.
    pub timelapse_id: i64,
    /// Camera of the timelapse.
    pub camera_id: i64,
    /// `queued`, `rendering`, `ready` or `failed`.
    pub status: VideoStatus,
    /// 0..1.
    pub progress: f64,
    /// Frames per second.
    pub fps: i64,
    /// Frames.
    pub frame_count: i64,
    /// File size once ready.
    pub bytes: Option<i64>,
    /// File hash once ready.
    pub sha256: Option<String>,
    /// Failure reason.
    pub error: Option<String>,
    /// Creation, micros.
    pub created_at: i64,
    /// Modification, micros.
    pub updated_at: i64,
    /// What the render was asked for (the defaults for videos older than options).
    pub options: RenderOptions,
    /// Exact frames per second (`fps` for videos older than options).
    pub frame_rate: f64,
    /// The render's content address.
    pub render_key: Option<String>,
    /// The rule that made it.
    pub rule_id: Option<i64>,
}

impl FromRow<'_, AnyRow> for VideoRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            timelapse_id: row.try_get("timelapse_id")?,
            camera_id: row.try_get("camera_id")?,
            status: {
                let status: String = row.try_get("status")?;
                VideoStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
                    index: "status".into(),
                    source: format!("not a video status: {status:?}").into(),
                })?
            },
            progress: row.try_get("progress")?,
            fps: row.try_get("fps")?,
            frame_count: row.try_get("frame_count")?,
            bytes: row.try_get("bytes")?,
            sha256: row.try_get("sha256")?,
            error: row.try_get("error")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            options: match row.try_get::<Option<String>, _>("options")? {
                Some(json) => {
                    serde_json::from_str(&json).map_err(|e| sqlx::Error::ColumnDecode {
                        index: "options".into(),
                        source: Box::new(e),
                    })?
                }
                None => RenderOptions::default(),
            },
            frame_rate: row
                .try_get::<Option<f64>, _>("frame_rate")?
                .unwrap_or(row.try_get::<i64, _>("fps")? as f64),
            render_key: row.try_get("render_key")?,
            rule_id: row.try_get("rule_id")?,
        })
    }
}

impl VideoRow {
    /// The API representation.
    pub fn to_resource(&self) -> Video {
        Video {
            id: self.id,
            timelapse_id: self.timelapse_id,
            camera_id: self.camera_id,
            status: self.status,
            progress: self.progress,
            fps: self.fps as u32,
            frame_rate: self.frame_rate,
            frame_count: self.frame_count as u64,
            duration_seconds: if self.frame_rate > 0.0 {
                ((self.frame_count as f64 / self.frame_rate) * 1000.0).round() / 1000.0
            } else {
                0.0
            },
            options: self.options.clone(),
            rule_id: self.rule_id,
            bytes: self.bytes.map(|b| b as u64),
            sha256: self.sha256.clone(),
            url: self.sha256.as_deref().map(resources::video_url),
            error: self.error.clone(),
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        }
    }
}

/// One video.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<VideoRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM videos WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The videos of a timelapse, newest first.
pub async fn for_timelapse(
    conn: &mut AnyConnection,
    timelapse_id: i64,
) -> Result<Vec<VideoRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM videos WHERE timelapse_id = $1 ORDER BY id DESC"
    ))
    .bind(timelapse_id)
    .fetch_all(conn)
    .await
}

/// Videos queued or rendering.
pub async fn count_in_flight(
    conn: &mut AnyConnection,
    public_only: bool,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM videos WHERE status IN ('queued', 'rendering') \
         AND ($1 = 0 OR {})",
        super::cameras::OF_A_PUBLIC_CAMERA
    ))
    .bind(i64::from(public_only))
    .fetch_one(conn)
    .await?;
    row.try_get("n")
}

/// Bytes of ready videos.
pub async fn storage_bytes(
    conn: &mut AnyConnection,
    public_only: bool,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS total FROM videos WHERE status = 'ready' \
         AND ($1 = 0 OR {})",
        super::cameras::OF_A_PUBLIC_CAMERA
    ))
    .bind(i64::from(public_only))
    .fetch_one(conn)
    .await?;
    row.try_get("total")
}

/// Whether a public camera shows this video.
pub async fn sha256_public(conn: &mut AnyConnection, sha256: &str) -> Result<bool, sqlx::Error> {
    super::exists(
        conn,
        "SELECT 1 FROM videos v JOIN cameras c ON c.id = v.camera_id \
         WHERE v.sha256 = $1 AND c.public = 1",
        sha256.to_owned(),
    )
    .await
}

/// Videos queued or rendering, oldest first.
pub async fn in_flight(conn: &mut AnyConnection) -> Result<Vec<VideoRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM videos WHERE status IN ('queued', 'rendering') ORDER BY id"
    ))
    .fetch_all(conn)
    .await
}

/// What a new render is.
pub struct NewVideo<'a> {
    /// Its timelapse.
    pub timelapse_id: i64,
    /// The timelapse's camera.
    pub camera_id: i64,
    /// Its options.
    pub options: &'a RenderOptions,
    /// Its exact frame rate.
    pub frame_rate: f64,
    /// Frames it will have.
    pub frame_count: i64,
    /// Its content address.
    pub render_key: &'a str,
    /// The rule that asked for it.
    pub rule_id: Option<i64>,
}

/// Queues a render.
pub async fn insert(
    conn: &mut AnyConnection,
    video: &NewVideo<'_>,
    now: i64,
) -> Result<VideoRow, sqlx::Error> {
    let options = serde_json::to_string(video.options).expect("options serialize");
    sqlx::query_as(&format!(
        "INSERT INTO videos (timelapse_id, camera_id, status, progress, fps, frame_count, \
         options, frame_rate, render_key, rule_id, created_at, updated_at) \
         VALUES ($1, $2, 'queued', 0, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {COLUMNS}"
    ))
    .bind(video.timelapse_id)
    .bind(video.camera_id)
    .bind(video.frame_rate.round().max(1.0) as i64)
    .bind(video.frame_count)
    .bind(options)
    .bind(video.frame_rate)
    .bind(video.render_key)
    .bind(video.rule_id)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// The video with this content address that is ready or on its way (a failed one is tried
/// again), if any.
pub async fn find_by_render_key(
    conn: &mut AnyConnection,
    render_key: &str,
) -> Result<Option<VideoRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM videos WHERE render_key = $1 AND status <> 'failed' \
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(render_key)
    .fetch_optional(conn)
    .await
}

/// Moves a video to `rendering` with a progress, for the render holding its lease; `None`
/// when it is no longer in flight (cancelled) or the lease is no longer `owner`'s.
pub async fn set_progress(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    progress: f64,
    now: i64,
) -> Result<Option<VideoRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE videos SET status = 'rendering', progress = $1, updated_at = $2 \
         WHERE id = $3 AND status IN ('queued', 'rendering') AND lease_owner = $4 \
         RETURNING {COLUMNS}"
    ))
    .bind(progress)
    .bind(now)
    .bind(id)
    .bind(owner)
    .fetch_optional(conn)
    .await
}

/// Marks a render done, for the render holding its lease (which it gives back).
pub async fn set_ready(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    bytes: i64,
    sha256: &str,
    now: i64,
) -> Result<Option<VideoRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE videos SET status = 'ready', progress = 1, bytes = $1, sha256 = $2, error = NULL, \
         updated_at = $3, lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $4 AND status IN ('queued', 'rendering') AND lease_owner = $5 \
         RETURNING {COLUMNS}"
    ))
    .bind(bytes)
    .bind(sha256)
    .bind(now)
    .bind(id)
    .bind(owner)
    .fetch_optional(conn)
    .await
}

/// Whose failure it is: the render holding the lease, or anyone (a cancellation).
#[derive(Clone, Copy, Debug)]
pub enum FailedBy<'a> {
    /// The render holding the lease (nothing changes if it lost it).
    Lease(&'a str),
    /// A deletion or cancellation, whoever renders.
    Anyone,
}

/// Marks a render failed, with the reason (its lease, if any, goes).
pub async fn set_failed(
    conn: &mut AnyConnection,
    id: i64,
    by: FailedBy<'_>,
    error: &str,
    now: i64,
) -> Result<Option<VideoRow>, sqlx::Error> {
    let lease = match by {
        FailedBy::Lease(_) => "AND lease_owner = $4",
        FailedBy::Anyone => "",
    };
    let query = format!(
        "UPDATE videos SET status = 'failed', error = $1, updated_at = $2, lease_owner = NULL, \
         lease_expires_at = NULL WHERE id = $3 AND status IN ('queued', 'rendering') {lease} \
         RETURNING {COLUMNS}"
    );
    let query = sqlx::query_as(&query).bind(error).bind(now).bind(id);
    match by {
        FailedBy::Lease(owner) => query.bind(owner),
        FailedBy::Anyone => query,
    }
    .fetch_optional(conn)
    .await
}

/// Takes the render lease of a video in flight for `owner` until `expires_at` (micros), if
/// nobody holds it or its holder's lease ran out before `now`: one conditional UPDATE, so of
/// two replicas claiming at once exactly one gets it (PostgreSQL re-checks the condition on
/// the row it waited for; SQLite has one writer). Whether `owner` has it now.
pub async fn claim_lease(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE videos SET lease_owner = $1, lease_expires_at = $2 \
         WHERE id = $3 AND status IN ('queued', 'rendering') \
         AND (lease_owner IS NULL OR lease_expires_at < $4)",
    )
    .bind(owner)
    .bind(expires_at)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Extends `owner`'s lease to `expires_at`; false when it is no longer `owner`'s (expired and
/// taken, or the video is no longer in flight).
pub async fn renew_lease(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE videos SET lease_expires_at = $1 \
         WHERE id = $2 AND lease_owner = $3 AND status IN ('queued', 'rendering')",
    )
    .bind(expires_at)
    .bind(id)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives `owner`'s lease back (a render stopped by shutdown), so another replica, or this
/// one's next start, takes the video at once.
pub async fn release_lease(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE videos SET lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(())
}

/// Videos in flight that nobody renders: no lease, or one that ran out before `now`.
pub async fn claimable(conn: &mut AnyConnection, now: i64) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id FROM videos WHERE status IN ('queued', 'rendering') \
         AND (lease_owner IS NULL OR lease_expires_at < $1) ORDER BY id",
    )
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| r.try_get("id")).collect()
}

/// Deletes a video row.
pub async fn delete(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM videos WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The distinct hashes of a camera's finished videos (for removing files when it goes).
pub async fn sha256s_of_camera(
    conn: &mut AnyConnection,
    camera_id: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT DISTINCT sha256 FROM videos WHERE camera_id = $1 AND sha256 IS NOT NULL",
    )
    .bind(camera_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| r.try_get("sha256")).collect()
}

/// Ready videos of a camera made before `cutoff` (micros) whose timelapse is not protected:
/// what its video retention removes.
pub async fn expired(
    conn: &mut AnyConnection,
    camera_id: i64,
    cutoff: i64,
) -> Result<Vec<VideoRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM videos WHERE camera_id = $1 AND status = 'ready' \
         AND created_at < $2 AND timelapse_id NOT IN (SELECT id FROM timelapses WHERE protected = 1) \
         ORDER BY id"
    ))
    .bind(camera_id)
    .bind(cutoff)
    .fetch_all(conn)
    .await
}
