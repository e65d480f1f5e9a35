//! The `edge_purges` table: paths the edge must forget, kept until it has.

use sqlx::{AnyConnection, Row};
use timelapser_core::paths::{MediaKind, MEDIA_PREFIX};

/// Queues paths.
pub async fn insert(
    conn: &mut AnyConnection,
    paths: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    for path in paths {
        sqlx::query("INSERT INTO edge_purges (path, created_at) VALUES ($1, $2)")
            .bind(path)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Queues the media of a camera that no public camera shows (after the camera turned private,
/// in the same transaction): its originals, thumbnails and videos.
pub async fn insert_private_media_of_camera(
    conn: &mut AnyConnection,
    camera_id: i64,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let not_public_elsewhere = |table: &str| {
        format!(
            "SELECT DISTINCT x.sha256 AS sha256 FROM {table} x WHERE x.camera_id = $1 \
             AND x.sha256 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {table} y \
             JOIN cameras c ON c.id = y.camera_id WHERE y.sha256 = x.sha256 AND c.public = 1)"
        )
    };
    let mut queued = 0;
    for (table, kind) in [
        ("images", MediaKind::Image),
        ("images", MediaKind::Thumbnail),
        ("videos", MediaKind::Video),
    ] {
        let done = sqlx::query(&format!(
            "INSERT INTO edge_purges (path, created_at) \
             SELECT '{MEDIA_PREFIX}{}/' || sha256 || '.{}', $2 FROM ({}) AS private_media",
            kind.folder(),
            kind.extension(),
            not_public_elsewhere(table)
        ))
        .bind(camera_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        queued += done.rows_affected();
    }
    Ok(queued)
}

/// The oldest queued paths, with their ids.
pub async fn oldest(
    conn: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, path FROM edge_purges ORDER BY id LIMIT $1")
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("path")?)))
        .collect()
}

/// Removes purged paths by id.
pub async fn delete(conn: &mut AnyConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    // Ids come from the database as integers: the list is digits and commas only.
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    sqlx::query(&format!("DELETE FROM edge_purges WHERE id IN ({list})"))
        .execute(conn)
        .await?;
    Ok(())
}
