//! A folder a camera uploads into (FTP, SMB). Only complete files are taken: a file is complete
//! when its size and modification time are the same at two looks `settle` apart (or it has
//! not changed since the previous poll), and it is a whole JPEG (SOI to EOI). A file still being
//! written changes between the looks, or lacks its EOI, and waits for a later poll. A file
//! renamed into place is complete at once; names a writer uses while writing (`.name`,
//! `*.part`, `*.tmp`, `*.filepart`) are never taken.
//!
//! A taken file is moved to `done/` in the folder, or deleted, only once its frame is in the
//! spool (see [`Source::release`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::mjpeg::is_complete_jpeg;
use super::{Frame, Source, SourceError};
use crate::config::{CaptureTime, TakenFiles};

/// Frames one poll takes at most (a folder that filled up is drained over several polls).
const MAX_FILES_PER_POLL: usize = 100;

/// A stable file that is still not a whole JPEG after this long is set aside in `rejected/`.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

const KIND: &str = "folder";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileState {
    len: u64,
    mtime: SystemTime,
}

/// A watched folder.
pub struct FolderSource {
    path: PathBuf,
    taken: TakenFiles,
    capture_time: CaptureTime,
    settle: Duration,
    /// The files at the previous poll, and when it was.
    previous: HashMap<PathBuf, FileState>,
    previous_at: Option<std::time::Instant>,
}

impl FolderSource {
    /// Watches `path`.
    pub fn new(
        path: PathBuf,
        taken: TakenFiles,
        capture_time: CaptureTime,
        settle: Duration,
    ) -> Self {
        Self {
            path,
            taken,
            capture_time,
            settle,
            previous: HashMap::new(),
            previous_at: None,
        }
    }

    async fn poll(&mut self, at: DateTime<Utc>) -> Result<Vec<Frame>, SourceError> {
        let first = scan(self.path.clone()).await?;
        let settled_since_previous = self.previous_at.is_some_and(|t| t.elapsed() >= self.settle);
        let all_known = first
            .iter()
            .all(|(path, state)| self.previous.get(path) == Some(state));
        let second = if settled_since_previous && all_known {
            first.clone()
        } else {
            tokio::time::sleep(self.settle).await;
            scan(self.path.clone()).await?
        };
        self.previous = second.clone();
        self.previous_at = Some(std::time::Instant::now());

        let mut stable: Vec<(PathBuf, FileState)> = second
            .into_iter()
            .filter(|(path, state)| state.len > 0 && first.get(path) == Some(state))
            .collect();
        stable.sort_by(|a, b| (a.1.mtime, &a.0).cmp(&(b.1.mtime, &b.0)));
        let mut frames = Vec::new();
        for (path, state) in stable.into_iter().take(MAX_FILES_PER_POLL) {
            let bytes = match tokio::fs::read(&path).await {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(SourceError(format!(
                        "{KIND}: cannot read {}: {e}",
                        path.display()
                    )))
                }
            };
            if !is_complete_jpeg(&bytes) {
                let age = state.mtime.elapsed().unwrap_or_default();
                if age >= GIVE_UP_AFTER {
                    set_aside(&self.path, &path);
                } else {
                    tracing::debug!("{}: not a whole JPEG yet; waiting", path.display());
                }
                continue;
            }
            let captured_at = match self.capture_time {
                CaptureTime::Mtime => DateTime::<Utc>::from(state.mtime),
                CaptureTime::Schedule => at,
            };
            frames.push(Frame {
                jpeg: Bytes::from(bytes),
                captured_at,
                file: Some(path),
            });
        }
        Ok(frames)
    }
}

impl Source for FolderSource {
    fn capture(&mut self, at: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Frame>, SourceError>> {
        Box::pin(self.poll(at))
    }

    fn release(&mut self, frame: &Frame) -> Result<(), SourceError> {
        let Some(path) = &frame.file else {
            return Ok(());
        };
        let result = match self.taken {
            TakenFiles::Delete => std::fs::remove_file(path),
            TakenFiles::Move => move_into(&self.path.join("done"), path),
        };
        self.previous.remove(path);
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SourceError(format!(
                "{KIND}: cannot {} {}: {e}",
                match self.taken {
                    TakenFiles::Delete => "delete",
                    TakenFiles::Move => "move to done/",
                },
                path.display()
            ))),
        }
    }
}

/// Whether a writer may still be writing under this name.
fn is_candidate(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.')
        && !name.ends_with('~')
        && (lower.ends_with(".jpg") || lower.ends_with(".jpeg"))
}

/// The candidate files of the folder with their sizes and modification times.
async fn scan(folder: PathBuf) -> Result<HashMap<PathBuf, FileState>, SourceError> {
    tokio::task::spawn_blocking(move || {
        let entries = std::fs::read_dir(&folder).map_err(|e| {
            SourceError(if e.kind() == std::io::ErrorKind::NotFound {
                format!("{KIND}: {} does not exist", folder.display())
            } else {
                format!("{KIND}: cannot read {}: {e}", folder.display())
            })
        })?;
        let mut files = HashMap::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_candidate(name) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let Ok(mtime) = meta.modified() else { continue };
            files.insert(
                entry.path(),
                FileState {
                    len: meta.len(),
                    mtime,
                },
            );
        }
        Ok(files)
    })
    .await
    .map_err(|e| SourceError(format!("{KIND}: scanning failed: {e}")))?
}

/// Moves `file` into `dir` (created if needed), never over another file.
fn move_into(dir: &Path, file: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = file.file_name().unwrap_or_default();
    let mut target = dir.join(name);
    let mut n = 1;
    while target.exists() {
        target = dir.join(format!("{}.{n}", name.to_string_lossy()));
        n += 1;
    }
    std::fs::rename(file, target)
}

fn set_aside(folder: &Path, file: &Path) {
    match move_into(&folder.join("rejected"), file) {
        Ok(()) => tracing::warn!(
            "{}: not a whole JPEG after {} min: moved to rejected/",
            file.display(),
            GIVE_UP_AFTER.as_secs() / 60
        ),
        Err(e) => tracing::warn!(
            "{}: not a whole JPEG, and cannot be moved: {e}",
            file.display()
        ),
    }
}

/// Checks a folder for `check`: it exists, can be read, and (to move or delete what is
/// taken) written.
pub fn probe(folder: &Path, taken: TakenFiles) -> Result<String, SourceError> {
    let entries = std::fs::read_dir(folder).map_err(|e| {
        SourceError(if e.kind() == std::io::ErrorKind::NotFound {
            format!("{KIND}: {} does not exist", folder.display())
        } else {
            format!("{KIND}: cannot read {}: {e}", folder.display())
        })
    })?;
    let waiting = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_candidate))
        .count();
    let probe = folder.join(".timelapser-agent-probe");
    std::fs::write(&probe, b"probe")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            SourceError(format!(
                "{KIND}: cannot write in {} (taken files are {}): {e}",
                folder.display(),
                match taken {
                    TakenFiles::Move => "moved to done/",
                    TakenFiles::Delete => "deleted",
                }
            ))
        })?;
    Ok(format!(
        "readable and writable, {waiting} JPEG files waiting"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_writer_uses_while_writing_are_not_taken() {
        for name in ["a.jpg", "B.JPEG", "2026-01-01 12.00.jpg"] {
            assert!(is_candidate(name), "{name}");
        }
        for name in [
            ".a.jpg",
            "a.jpg.part",
            "a.tmp",
            "a.jpg~",
            "a.png",
            "a.filepart",
        ] {
            assert!(!is_candidate(name), "{name}");
        }
    }
}
