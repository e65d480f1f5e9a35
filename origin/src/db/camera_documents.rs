//! Tables holding one JSON document per camera, with its modification time: each camera's
//! capture schedule (`core::schedule::Schedule`) and its own retention
//! (`core::resources::Retention`; a camera without a row follows the site's).

use sqlx::{AnyConnection, Row};

/// Which document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// `schedules`: read by the camera's agent.
    Schedules,
    /// `retention_policies`.
    RetentionPolicies,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Schedules => "schedules",
            Table::RetentionPolicies => "retention_policies",
        }
    }
}

/// A stored document: its JSON and its modification time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraDocument {
    /// The document, JSON.
    pub document: String,
    /// Modification, micros.
    pub updated_at: i64,
}

/// A camera's document.
pub async fn get(
    conn: &mut AnyConnection,
    table: Table,
    camera_id: i64,
) -> Result<Option<CameraDocument>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT document, updated_at FROM {} WHERE camera_id = $1",
        table.name()
    ))
    .bind(camera_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(CameraDocument {
            document: r.try_get("document")?,
            updated_at: r.try_get("updated_at")?,
        })
    })
    .transpose()
}

/// Every camera's document, by camera.
pub async fn all(
    conn: &mut AnyConnection,
    table: Table,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let rows = sqlx::query(&format!("SELECT camera_id, document FROM {}", table.name()))
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("camera_id")?, r.try_get("document")?)))
        .collect()
}

/// Sets a camera's document.
pub async fn put(
    conn: &mut AnyConnection,
    table: Table,
    camera_id: i64,
    document: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {} (camera_id, document, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (camera_id) DO UPDATE SET document = excluded.document, \
         updated_at = excluded.updated_at",
        table.name()
    ))
    .bind(camera_id)
    .bind(document)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
