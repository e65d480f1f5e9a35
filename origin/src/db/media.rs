//! Which media files rows refer to.

use sqlx::AnyConnection;
use timelapser_core::paths::{MediaKind, MediaName};

/// Whether a public camera shows this file (anyone may fetch it); false for files only
/// private cameras show, and for files no row refers to.
pub async fn is_public(conn: &mut AnyConnection, name: &MediaName) -> Result<bool, sqlx::Error> {
    match name.kind {
        MediaKind::Image | MediaKind::Thumbnail => {
            super::images::sha256_public(conn, name.sha256()).await
        }
        MediaKind::Video => super::videos::sha256_public(conn, name.sha256()).await,
    }
}

/// Which of these hashes rows still refer to: images' (for originals and thumbnails) or
/// videos'. One query for the lot.
pub async fn referenced_among(
    conn: &mut AnyConnection,
    kind: MediaKind,
    sha256s: &[&str],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    use sqlx::Row;
    if sha256s.is_empty() {
        return Ok(Default::default());
    }
    let table = match kind {
        MediaKind::Image | MediaKind::Thumbnail => "images",
        MediaKind::Video => "videos",
    };
    let params = (1..=sha256s.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT DISTINCT sha256 FROM {table} WHERE sha256 IN ({params})");
    let mut query = sqlx::query(&sql);
    for sha256 in sha256s {
        query = query.bind(*sha256);
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter().map(|r| r.try_get("sha256")).collect()
}
