//! Which media files rows refer to.

use sqlx::AnyConnection;
use timelapser_core::paths::{MediaKind, MediaName};

/// Whether any row refers to this file: an image for originals and thumbnails (a thumbnail is
/// named by its original's hash), a video for videos.
pub async fn is_referenced(
    conn: &mut AnyConnection,
    name: &MediaName,
) -> Result<bool, sqlx::Error> {
    match name.kind {
        MediaKind::Image | MediaKind::Thumbnail => {
            super::images::sha256_in_use(conn, name.sha256()).await
        }
        MediaKind::Video => super::videos::sha256_in_use(conn, name.sha256()).await,
    }
}

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
