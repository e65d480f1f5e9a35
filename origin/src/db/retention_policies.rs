//! The `retention_policies` table: each camera's own retention, a JSON document
//! (`core::resources::Retention`); a camera without a row follows the site's.

use sqlx::{AnyConnection, Row};

/// A camera's stored policy and its modification time (micros).
pub async fn get(
    conn: &mut AnyConnection,
    camera_id: i64,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    let row =
        sqlx::query("SELECT document, updated_at FROM retention_policies WHERE camera_id = $1")
            .bind(camera_id)
            .fetch_optional(conn)
            .await?;
    row.map(|r| Ok((r.try_get("document")?, r.try_get("updated_at")?)))
        .transpose()
}

/// Every stored policy, by camera.
pub async fn all(conn: &mut AnyConnection) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT camera_id, document FROM retention_policies")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("camera_id")?, r.try_get("document")?)))
        .collect()
}

/// Sets a camera's policy.
pub async fn put(
    conn: &mut AnyConnection,
    camera_id: i64,
    document: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO retention_policies (camera_id, document, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (camera_id) DO UPDATE SET document = excluded.document, \
         updated_at = excluded.updated_at",
    )
    .bind(camera_id)
    .bind(document)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
