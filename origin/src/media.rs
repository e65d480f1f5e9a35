//! Media files on disk: content-addressed, written atomically, and never reached by a path
//! that came from a request without being checked.
//!
//! Layout under the data directory:
//! ```text
//! media/images/<sha256>.jpg       originals
//! media/thumbnails/<sha256>.jpg   thumbnails (named by the original's hash)
//! media/videos/<sha256>.mp4       rendered videos
//! tmp/                            files being written; emptied at start-up
//! ```
//! A file appears under `media/` only complete and durable: it is written in `tmp/`, fsynced,
//! renamed into place, and the directory fsynced. The database row that refers to it is
//! committed after that, so a crash can leave an unreferenced file but never a row without
//! its file, and never a partial file where a reader can see it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub use timelapser_core::paths::{is_sha256_hex, MediaKind, MediaName};

/// The media directory.
#[derive(Clone, Debug)]
pub struct MediaStore {
    media: PathBuf,
    tmp: PathBuf,
}

impl MediaStore {
    /// Opens (creating) the media folders under `data_dir`, and removes whatever a crash left
    /// half-written in `tmp/`.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let media = data_dir.join("media");
        let tmp = data_dir.join("tmp");
        for kind in MediaKind::ALL {
            std::fs::create_dir_all(media.join(kind.folder()))
                .with_context(|| format!("creating {}", media.join(kind.folder()).display()))?;
        }
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut removed = 0;
        for entry in std::fs::read_dir(&tmp)? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::warn!(
                removed,
                "removed partial files left by an interrupted write"
            );
        }
        Ok(Self { media, tmp })
    }

    /// The path of a media file (a [`MediaName`] is only ever a validated hash).
    pub fn path(&self, name: &MediaName) -> PathBuf {
        self.media.join(name.kind.folder()).join(name.file_name())
    }

    /// Every media file of a kind, with its modification time (for the orphan sweep); names
    /// that are not media names (a stray file) are skipped.
    pub fn list(&self, kind: MediaKind) -> anyhow::Result<Vec<(MediaName, std::time::SystemTime)>> {
        let folder = self.media.join(kind.folder());
        let mut files = Vec::new();
        for entry in
            std::fs::read_dir(&folder).with_context(|| format!("listing {}", folder.display()))?
        {
            let entry = entry?;
            let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|file| MediaName::parse(kind.folder(), file))
            else {
                continue;
            };
            match entry.metadata() {
                Ok(metadata) if metadata.is_file() => files.push((name, metadata.modified()?)),
                _ => {}
            }
        }
        Ok(files)
    }

    /// Whether a media file is present.
    pub async fn exists(&self, name: &MediaName) -> bool {
        tokio::fs::try_exists(self.path(name))
            .await
            .unwrap_or(false)
    }

    /// The temp folder, for writers that stream (video renders).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Writes `bytes` as `name` atomically and durably, unless the file already exists (the
    /// name is the content's hash, so an existing file already has these bytes).
    pub async fn write(&self, name: &MediaName, bytes: bytes::Bytes) -> anyhow::Result<()> {
        let store = self.clone();
        let name = name.clone();
        tokio::task::spawn_blocking(move || store.write_blocking(&name, &bytes))
            .await
            .context("media writer panicked")?
    }

    fn write_blocking(&self, name: &MediaName, bytes: &[u8]) -> anyhow::Result<()> {
        let target = self.path(name);
        if target.exists() {
            return Ok(());
        }
        let mut temp = tempfile::Builder::new()
            .prefix(&format!("{}-", name.kind.folder()))
            .tempfile_in(&self.tmp)
            .context("creating a temp file")?;
        temp.write_all(bytes).context("writing media")?;
        temp.as_file().sync_all().context("syncing media")?;
        temp.persist(&target)
            .with_context(|| format!("moving media into {}", target.display()))?;
        sync_dir(target.parent().expect("media files live in a folder"))?;
        Ok(())
    }

    /// Moves a finished temp file into place as `name` (fsync, rename, fsync dir).
    pub fn persist_file(&self, temp: &Path, name: &MediaName) -> anyhow::Result<PathBuf> {
        let target = self.path(name);
        std::fs::File::open(temp)?.sync_all()?;
        std::fs::rename(temp, &target)
            .with_context(|| format!("moving {} into {}", temp.display(), target.display()))?;
        sync_dir(target.parent().expect("media files live in a folder"))?;
        Ok(target)
    }

    /// Removes a media file if present; whether it was.
    pub async fn remove(&self, name: &MediaName) -> anyhow::Result<bool> {
        match tokio::fs::remove_file(self.path(name)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The media folder (its file system's free space is the media disk's).
    pub fn media_root(&self) -> &Path {
        &self.media
    }

    /// Free and total bytes of the file system holding the media (free: for unprivileged
    /// writers, `f_bavail`).
    pub fn disk_space(&self) -> std::io::Result<(u64, u64)> {
        let s = rustix::fs::statvfs(&self.media)?;
        Ok((
            s.f_bavail.saturating_mul(s.f_frsize),
            s.f_blocks.saturating_mul(s.f_frsize),
        ))
    }
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[tokio::test]
    async fn writes_are_atomic_and_tmp_is_cleaned_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp/leftover"), b"partial").unwrap();
        let store = MediaStore::open(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        let name = MediaName::new(MediaKind::Thumbnail, HASH).unwrap();
        store
            .write(&name, bytes::Bytes::from_static(b"abc"))
            .await
            .unwrap();
        assert_eq!(std::fs::read(store.path(&name)).unwrap(), b"abc");
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        store.remove(&name).await.unwrap();
        assert!(!store.path(&name).exists());
        store.remove(&name).await.unwrap();
    }
}
