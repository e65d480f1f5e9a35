//! The spool: every frame is on disk, durably, before it is uploaded, and leaves the disk only
//! once the origin has it. A frame is written to `tmp/`, fsynced, renamed into `frames/` and
//! the directory fsynced; after a crash `frames/` holds exactly the frames that were spooled
//! (what `tmp/` holds is a frame whose capture never completed, and is removed).
//!
//! A file's name is its capture time and a sequence number,
//! `20260601T120000.000000Z-000000000042.jpg`: sorted by name, the spool is in capture order,
//! and the capture time survives a restart. The spool is bounded in bytes: beyond the bound the
//! oldest frames (not the one being uploaded) are dropped, and counted.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDateTime, Utc};
use tokio::sync::Notify;

const NAME_TIME_FORMAT: &str = "%Y%m%dT%H%M%S%.6fZ";

/// A spooled frame's identity: capture time (to the microsecond), then sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameKey {
    /// When it was captured.
    pub captured_at: DateTime<Utc>,
    /// The order in which it was spooled, among frames of the same instant.
    pub seq: u64,
}

impl FrameKey {
    /// Its file name.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{:012}.jpg",
            self.captured_at.format(NAME_TIME_FORMAT),
            self.seq
        )
    }

    /// The key a file name holds.
    pub fn parse(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(".jpg")?;
        let (time, seq) = stem.rsplit_once('-')?;
        let captured_at = NaiveDateTime::parse_from_str(time, NAME_TIME_FORMAT)
            .ok()?
            .and_utc();
        Some(Self {
            captured_at,
            seq: seq.parse().ok()?,
        })
    }
}

/// A frame waiting in the spool.
#[derive(Clone, Debug)]
pub struct Spooled {
    /// Its identity.
    pub key: FrameKey,
    /// Its file.
    pub path: PathBuf,
}

/// What adding a frame did.
#[derive(Clone, Debug, Default)]
pub struct Added {
    /// The new frame.
    pub key: Option<FrameKey>,
    /// Frames dropped to stay within the bound.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Inner {
    frames: BTreeMap<FrameKey, u64>,
    bytes: u64,
    next_seq: u64,
    in_flight: Option<FrameKey>,
    dropped: u64,
}

/// A camera's spool directory.
#[derive(Debug)]
pub struct Spool {
    root: PathBuf,
    frames_dir: PathBuf,
    tmp_dir: PathBuf,
    limit_bytes: u64,
    inner: Mutex<Inner>,
    added: Notify,
}

impl Spool {
    /// Opens (creating) the spool in `root`: removes what an interrupted write left in `tmp/`
    /// and takes stock of the frames in `frames/`.
    pub fn open(root: &Path, limit_bytes: u64) -> std::io::Result<Self> {
        let frames_dir = root.join("frames");
        let tmp_dir = root.join("tmp");
        std::fs::create_dir_all(&frames_dir).map_err(|e| context(e, "create", &frames_dir))?;
        std::fs::create_dir_all(&tmp_dir).map_err(|e| context(e, "create", &tmp_dir))?;
        for entry in std::fs::read_dir(&tmp_dir)? {
            let entry = entry?;
            let _ = std::fs::remove_file(entry.path());
        }
        // Writable? (A read-only spool would otherwise show only at the first frame.)
        let probe = tmp_dir.join("probe");
        File::create(&probe)
            .and_then(|mut f| f.write_all(b"probe"))
            .map_err(|e| context(e, "write in", &tmp_dir))?;
        let _ = std::fs::remove_file(&probe);
        let mut inner = Inner::default();
        for entry in std::fs::read_dir(&frames_dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(key) = name.to_str().and_then(FrameKey::parse) else {
                tracing::warn!(
                    "{}: not a spooled frame's name; left alone",
                    entry.path().display()
                );
                continue;
            };
            let bytes = entry.metadata()?.len();
            inner.bytes += bytes;
            inner.next_seq = inner.next_seq.max(key.seq + 1);
            inner.frames.insert(key, bytes);
        }
        Ok(Self {
            root: root.to_owned(),
            frames_dir,
            tmp_dir,
            limit_bytes,
            inner: Mutex::new(inner),
            added: Notify::new(),
        })
    }

    /// The spool's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes a frame durably; then drops the oldest frames beyond the bound.
    pub fn add(&self, jpeg: &[u8], captured_at: DateTime<Utc>) -> std::io::Result<Added> {
        let key = {
            let mut inner = self.lock();
            let seq = inner.next_seq;
            inner.next_seq += 1;
            FrameKey {
                // The name keeps microseconds: so does the key.
                captured_at: DateTime::from_timestamp_micros(captured_at.timestamp_micros())
                    .unwrap_or(captured_at),
                seq,
            }
        };
        let name = key.file_name();
        let tmp = self.tmp_dir.join(format!("{name}.tmp"));
        let target = self.frames_dir.join(&name);
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(jpeg)?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&tmp, &target)?;
            File::open(&self.frames_dir)?.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(context(e, "write in", &self.frames_dir));
        }
        let mut dropped = 0;
        {
            let mut inner = self.lock();
            inner.frames.insert(key, jpeg.len() as u64);
            inner.bytes += jpeg.len() as u64;
            while inner.bytes > self.limit_bytes && inner.frames.len() > 1 {
                let in_flight = inner.in_flight;
                let Some(oldest) = inner
                    .frames
                    .keys()
                    .copied()
                    .find(|k| Some(*k) != in_flight && *k != key)
                else {
                    break;
                };
                if let Some(bytes) = inner.frames.remove(&oldest) {
                    inner.bytes -= bytes;
                }
                let _ = std::fs::remove_file(self.frames_dir.join(oldest.file_name()));
                inner.dropped += 1;
                dropped += 1;
            }
        }
        self.added.notify_one();
        Ok(Added {
            key: Some(key),
            dropped,
        })
    }

    /// The oldest frame, marked as being uploaded (so that the bound does not drop it).
    pub fn oldest(&self) -> Option<Spooled> {
        let mut inner = self.lock();
        let key = *inner.frames.keys().next()?;
        inner.in_flight = Some(key);
        Some(Spooled {
            key,
            path: self.frames_dir.join(key.file_name()),
        })
    }

    /// The origin has the frame: it leaves the spool.
    pub fn remove(&self, key: FrameKey) -> std::io::Result<()> {
        self.forget(key);
        match std::fs::remove_file(self.frames_dir.join(key.file_name())) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The origin refused the frame for good (415, 422, ...): it is kept aside in `rejected/`
    /// for a person to look at, and the uploads go on.
    pub fn reject(&self, key: FrameKey) -> std::io::Result<PathBuf> {
        self.forget(key);
        let dir = self.root.join("rejected");
        std::fs::create_dir_all(&dir)?;
        let target = dir.join(key.file_name());
        std::fs::rename(self.frames_dir.join(key.file_name()), &target)?;
        Ok(target)
    }

    fn forget(&self, key: FrameKey) {
        let mut inner = self.lock();
        if let Some(bytes) = inner.frames.remove(&key) {
            inner.bytes -= bytes;
        }
        if inner.in_flight == Some(key) {
            inner.in_flight = None;
        }
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// Whether no frame waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Frames dropped since the spool was opened.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Completes when a frame is added (or was added since the last wait).
    pub async fn frame_added(&self) {
        self.added.notified().await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn context(e: std::io::Error, what: &str, path: &Path) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + secs, 123_456_789).unwrap()
    }

    #[test]
    fn names_sort_in_capture_order_and_give_the_time_back() {
        let a = FrameKey {
            captured_at: at(0),
            seq: 7,
        };
        let b = FrameKey {
            captured_at: at(1),
            seq: 2,
        };
        assert!(a.file_name() < b.file_name());
        let parsed = FrameKey::parse(&a.file_name()).unwrap();
        assert_eq!(parsed.seq, 7);
        assert_eq!(
            parsed.captured_at.timestamp_micros(),
            at(0).timestamp_micros()
        );
        assert_eq!(FrameKey::parse("notes.txt"), None);
    }

    #[test]
    fn frames_survive_a_reopen_in_order_and_tmp_leftovers_go() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = Spool::open(dir.path(), 1 << 20).unwrap();
            spool.add(b"second", at(5)).unwrap();
            spool.add(b"first", at(1)).unwrap();
            std::fs::write(dir.path().join("tmp/half-written.tmp"), b"x").unwrap();
        }
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.len(), 2);
        assert_eq!(spool.bytes(), 11);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        let first = spool.oldest().unwrap();
        assert_eq!(std::fs::read(&first.path).unwrap(), b"first");
        spool.remove(first.key).unwrap();
        let next = spool.oldest().unwrap();
        assert_eq!(std::fs::read(&next.path).unwrap(), b"second");
        // New frames after a reopen never reuse a sequence number.
        let added = spool.add(b"third", at(5)).unwrap().key.unwrap();
        assert!(added.seq > next.key.seq);
    }

    #[test]
    fn beyond_the_bound_the_oldest_frames_are_dropped_but_not_the_one_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 30).unwrap();
        for i in 0..3 {
            spool.add(&[i as u8; 10], at(i)).unwrap();
        }
        assert_eq!((spool.len(), spool.dropped()), (3, 0));
        let in_flight = spool.oldest().unwrap();
        let added = spool.add(&[9; 10], at(10)).unwrap();
        assert_eq!(added.dropped, 1);
        assert_eq!((spool.len(), spool.bytes(), spool.dropped()), (3, 30, 1));
        // The frame being uploaded is still there; the next oldest went.
        assert!(in_flight.path.exists());
        assert_eq!(spool.oldest().unwrap().key, in_flight.key);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("frames"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn a_rejected_frame_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let key = spool.add(b"bad", at(0)).unwrap().key.unwrap();
        let path = spool.reject(key).unwrap();
        assert!(path.starts_with(dir.path().join("rejected")));
        assert!(spool.is_empty());
    }

    #[test]
    fn a_spool_under_a_file_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let error = Spool::open(&file.join("spool"), 1 << 20).unwrap_err();
        assert!(error.to_string().contains("cannot create"), "{error}");
        assert!(error.to_string().contains("file/spool/frames"), "{error}");
    }
}
