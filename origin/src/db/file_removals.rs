//! The `file_removals` table: files whose rows went, to remove once no row refers to them.
//! Entries are written in the transaction that deletes the rows, so a crash between that
//! commit and the removal leaves them for the next start (`services::media_sweep`).

use sqlx::{AnyConnection, Row};
use timelapser_core::paths::{MediaKind, MediaName};

/// Queues the files of these hashes: an image's original and thumbnail (`MediaKind::Image`),
/// or a video. One statement per few hundred hashes.
pub async fn enqueue(
    conn: &mut AnyConnection,
    kind: MediaKind,
    sha256s: impl IntoIterator<Item = &str>,
) -> Result<(), sqlx::Error> {
    let sha256s: Vec<&str> = sha256s.into_iter().collect();
    for chunk in sha256s.chunks(500) {
        let values = (0..chunk.len())
            .map(|i| format!("($1, ${})", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO file_removals (kind, sha256) VALUES {values}");
        let mut query = sqlx::query(&sql).bind(kind.folder());
        for sha256 in chunk {
            query = query.bind(*sha256);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// At most `limit` queued entries: their ids and the files each names.
pub async fn batch(
    conn: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<(i64, Vec<MediaName>)>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, kind, sha256 FROM file_removals ORDER BY id LIMIT $1")
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            let kind: String = r.try_get("kind")?;
            let sha256: String = r.try_get("sha256")?;
            let kinds: &[MediaKind] = if kind == MediaKind::Video.folder() {
                &[MediaKind::Video]
            } else {
                &[MediaKind::Image, MediaKind::Thumbnail]
            };
            let names = kinds
                .iter()
                .filter_map(|k| MediaName::new(*k, sha256.clone()))
                .collect();
            Ok((id, names))
        })
        .collect()
}

/// Removes worked-off entries.
pub async fn done(conn: &mut AnyConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let list = ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(&format!("DELETE FROM file_removals WHERE id IN ({list})"))
        .execute(conn)
        .await?;
    Ok(())
}
