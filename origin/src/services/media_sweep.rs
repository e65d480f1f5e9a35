//! Removing media files no row refers to, without ever leaving a row without its file.
//!
//! Content-addressed files are shared: the same bytes captured twice (by two cameras) are one
//! file, and a thumbnail is named by its original's hash. So a file goes only when no row
//! refers to it, and that is decided *while holding the writer lock*: every removal happens
//! under it, and every writer that is about to insert a row for a file checks, under the same
//! lock, that the file is there (and writes it again when it is not). Whichever comes first in
//! the writers' order, the other sees it — on SQLite and on PostgreSQL alike.
//!
//! A crash between a commit that dropped rows and the removal of their files leaves files
//! nobody refers to; [`sweep_orphans`] (at start-up, then periodically) removes those.

use std::time::{Duration, SystemTime};

use crate::db::{self, Db};
use crate::error::Result;
use crate::media::{MediaKind, MediaName, MediaStore};
use crate::media_cache::MediaCache;

/// The parts of the origin that removing a file touches.
#[derive(Clone, Copy)]
pub struct MediaFiles<'a> {
    /// The database (its writer lock, and which rows refer to what).
    pub db: &'a Db,
    /// The files.
    pub store: &'a MediaStore,
    /// What is known of them in memory.
    pub cache: &'a MediaCache,
}

/// Files checked per transaction, so a sweep holds the writer lock only briefly at a time.
const BATCH: usize = 200;

impl<'a> MediaFiles<'a> {
    /// The origin's own.
    pub fn of(state: &'a crate::state::AppState) -> Self {
        Self {
            db: &state.db,
            store: &state.media,
            cache: &state.media_cache,
        }
    }

    /// Removes those of `names` no row refers to (under the writer lock); returns how many.
    pub async fn remove_unreferenced(&self, names: &[MediaName]) -> Result<usize> {
        let mut removed = 0;
        for batch in names.chunks(BATCH) {
            let mut tx = self.db.begin_write().await?;
            removed += self.remove_unused(&mut tx, batch).await?;
            // Nothing was written: the transaction only held the lock.
            tx.commit().await?;
        }
        Ok(removed)
    }

    /// Works off the queue of files whose rows were deleted (`file_removals`, written in the
    /// deleting transaction): each file goes if no row refers to it any more, and its entry
    /// with it, under the writer lock, a batch at a time. Returns how many files went.
    pub async fn drain_removals(&self) -> Result<usize> {
        let mut removed = 0;
        loop {
            let mut tx = self.db.begin_write().await?;
            let batch = db::file_removals::batch(&mut tx, REMOVALS_PER_TRANSACTION).await?;
            if batch.is_empty() {
                tx.commit().await?;
                return Ok(removed);
            }
            let names: Vec<MediaName> = batch.iter().flat_map(|(_, n)| n.clone()).collect();
            removed += self.remove_unused(&mut tx, &names).await?;
            let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
            db::file_removals::done(&mut tx, &ids).await?;
            tx.commit().await?;
        }
    }

    /// Removes those of `names` no row refers to, asking which are in use with one query per
    /// table; `tx` holds the writer lock. Returns how many files went.
    async fn remove_unused(&self, tx: &mut db::WriteTx, names: &[MediaName]) -> Result<usize> {
        let hashes = |videos: bool| -> Vec<&str> {
            names
                .iter()
                .filter(|n| (n.kind == MediaKind::Video) == videos)
                .map(MediaName::sha256)
                .collect()
        };
        let images_use = db::media::referenced_among(tx, MediaKind::Image, &hashes(false)).await?;
        let videos_use = db::media::referenced_among(tx, MediaKind::Video, &hashes(true)).await?;
        let mut removed = 0;
        for name in names {
            let used = match name.kind {
                MediaKind::Video => &videos_use,
                MediaKind::Image | MediaKind::Thumbnail => &images_use,
            };
            if used.contains(name.sha256()) {
                continue;
            }
            self.cache.forget(name).await;
            match self.store.remove(name).await {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "could not remove a media file")
                }
            }
        }
        Ok(removed)
    }
}

/// Queued removals worked off per transaction: the writer lock is held for one query and
/// at most twice as many unlinks.
const REMOVALS_PER_TRANSACTION: i64 = 100;

/// Removes media files no row refers to and that are older than `grace` (so a file an
/// upload or render has just moved into place, before its row commits, is left alone).
/// Returns how many went.
pub async fn sweep_orphans(files: MediaFiles<'_>, grace: Duration) -> Result<usize> {
    let cutoff = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = 0;
    for kind in MediaKind::ALL {
        let listed = files.store.list(kind).await?;
        let old: Vec<MediaName> = listed
            .into_iter()
            .filter(|(_, modified)| *modified <= cutoff)
            .map(|(name, _)| name)
            .collect();
        removed += files.remove_unreferenced(&old).await?;
    }
    if removed > 0 {
        tracing::warn!(
            removed,
            "removed media files no row refers to (left by an interrupted write or delete)"
        );
    }
    Ok(removed)
}
