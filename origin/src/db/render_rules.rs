//! The `render_rules` table: rules that render a camera's frames on their own
//! (`core::render::RenderRule` as JSON), and the due instant of each one's last run.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

const COLUMNS: &str = "r.id, r.camera_id, r.document, r.last_due, r.last_result, r.created_at, \
    r.updated_at";

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRow {
    /// Id.
    pub id: i64,
    /// Its camera.
    pub camera_id: i64,
    /// The rule, JSON.
    pub document: String,
    /// Due instant of the last run claimed, micros.
    pub last_due: Option<i64>,
    /// What the last run did.
    pub last_result: Option<String>,
    /// Creation, micros.
    pub created_at: i64,
    /// Modification, micros.
    pub updated_at: i64,
}

impl FromRow<'_, AnyRow> for RuleRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            camera_id: row.try_get("camera_id")?,
            document: row.try_get("document")?,
            last_due: row.try_get("last_due")?,
            last_result: row.try_get("last_result")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// One rule (not of a camera being deleted).
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<RuleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM render_rules r JOIN cameras c ON c.id = r.camera_id \
         WHERE r.id = $1 AND c.deleting = 0"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A camera's rules, oldest first.
pub async fn for_camera(
    conn: &mut AnyConnection,
    camera_id: i64,
) -> Result<Vec<RuleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM render_rules r WHERE r.camera_id = $1 ORDER BY r.id"
    ))
    .bind(camera_id)
    .fetch_all(conn)
    .await
}

/// Every rule of the cameras not being deleted.
pub async fn all(conn: &mut AnyConnection) -> Result<Vec<RuleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM render_rules r JOIN cameras c ON c.id = r.camera_id \
         WHERE c.deleting = 0 ORDER BY r.id"
    ))
    .fetch_all(conn)
    .await
}

/// Adds a rule.
pub async fn insert(
    conn: &mut AnyConnection,
    camera_id: i64,
    document: &str,
    last_due: Option<i64>,
    now: i64,
) -> Result<RuleRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO render_rules (camera_id, document, last_due, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id, camera_id, document, last_due, \
         last_result, created_at, updated_at",
    )
    .bind(camera_id)
    .bind(document)
    .bind(last_due)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Replaces a rule's document; its last run moves to `last_due` if that is later (a changed
/// rule runs from its next due time on).
pub async fn update(
    conn: &mut AnyConnection,
    id: i64,
    document: &str,
    last_due: Option<i64>,
    now: i64,
) -> Result<Option<RuleRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE render_rules SET document = $1, updated_at = $2, \
         last_due = CASE WHEN last_due IS NULL OR last_due < $3 THEN $3 ELSE last_due END \
         WHERE id = $4 RETURNING id, camera_id, document, last_due, last_result, \
         created_at, updated_at",
    )
    .bind(document)
    .bind(now)
    .bind(last_due)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Deletes a rule; whether it existed.
pub async fn delete(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM render_rules WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Claims the run due at `due` (micros): true when this transaction moved the rule's last
/// run forward to it, false when a run at or after it was claimed already (by another
/// replica, say; PostgreSQL re-reads the row after the other's commit).
pub async fn claim(conn: &mut AnyConnection, id: i64, due: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE render_rules SET last_due = $1 WHERE id = $2 AND (last_due IS NULL OR last_due < $1)",
    )
    .bind(due)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records what a run did.
pub async fn set_result(
    conn: &mut AnyConnection,
    id: i64,
    result: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE render_rules SET last_result = $1 WHERE id = $2")
        .bind(result)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
