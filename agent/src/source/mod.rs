//! Where frames come from, behind one small trait: the capture loop asks a [`Source`] for the
//! frames of a scheduled instant and never knows whether they came from an RTSP session, an
//! HTTP snapshot, a USB camera or a folder. Tests put a file-backed source behind it.

pub mod folder;
pub mod mjpeg;
pub mod snapshot;
pub mod stream;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::config::{Camera, SourceSpec};
use crate::metrics::CameraMetrics;

/// A JPEG and when it was captured.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The JPEG.
    pub jpeg: Bytes,
    /// Its capture time (the `Capture-Time` it is uploaded with).
    pub captured_at: DateTime<Utc>,
    /// The file it came from (folder sources), released once the frame is spooled.
    pub file: Option<PathBuf>,
}

/// Why a source gave no frame, as the camera's status message says it
/// ("RTSP: connection refused").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// A camera's frames.
pub trait Source: Send {
    /// The frames for the scheduled instant `at` (several for a folder that filled up, none
    /// when a folder is empty).
    fn capture(&mut self, at: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Frame>, SourceError>>;

    /// The frame is in the spool (or deliberately skipped): the source may let go of it (a
    /// folder moves or deletes its file).
    fn release(&mut self, _frame: &Frame) -> Result<(), SourceError> {
        Ok(())
    }

    /// The schedule's interval changed (a stream's stall timeout follows it).
    fn set_interval(&mut self, _interval: Duration) {}

    /// False while the source is still opening for the first time (a stream's first session
    /// before its first frame): an instant without a frame then is not a failure.
    fn opened(&self) -> bool {
        true
    }
}

/// The source a camera's config names.
pub fn open(camera: &Camera, metrics: CameraMetrics) -> Box<dyn Source> {
    match &camera.source {
        SourceSpec::Rtsp { .. } | SourceSpec::V4l2 { .. } => {
            Box::new(stream::StreamSource::start(camera, metrics))
        }
        SourceSpec::Snapshot { url, credentials } => Box::new(snapshot::SnapshotSource::new(
            url.clone(),
            credentials.clone(),
        )),
        SourceSpec::Folder { path } => Box::new(folder::FolderSource::new(
            path.clone(),
            camera.taken_files,
            camera.capture_time,
            camera.folder_settle,
        )),
    }
}

/// Probes a camera's source once (for `check`): what it gave, or why not.
pub async fn probe(camera: &Camera) -> Result<String, SourceError> {
    let started = std::time::Instant::now();
    let took = |what: String| format!("{what} in {:.1} s", started.elapsed().as_secs_f64());
    match &camera.source {
        SourceSpec::Rtsp { .. } | SourceSpec::V4l2 { .. } => {
            let jpeg = stream::probe(camera).await?;
            Ok(took(jpeg_summary(&jpeg, camera.source.kind())?))
        }
        SourceSpec::Snapshot { url, credentials } => {
            let mut source = snapshot::SnapshotSource::new(url.clone(), credentials.clone());
            let jpeg = source.fetch().await?;
            Ok(took(jpeg_summary(&jpeg, camera.source.kind())?))
        }
        SourceSpec::Folder { path } => folder::probe(path, camera.taken_files),
    }
}

/// "a 1280×720 JPEG (143 KiB)", or why the bytes are not a usable JPEG.
pub fn jpeg_summary(jpeg: &[u8], kind: &str) -> Result<String, SourceError> {
    let (width, height) = jpeg_dimensions(jpeg)
        .map_err(|e| SourceError(format!("{kind}: the image does not decode: {e}")))?;
    Ok(format!(
        "a {width}×{height} JPEG ({} KiB)",
        jpeg.len().div_ceil(1024)
    ))
}

/// The dimensions in a JPEG's header.
pub fn jpeg_dimensions(jpeg: &[u8]) -> Result<(u32, u32), String> {
    image::ImageReader::with_format(std::io::Cursor::new(jpeg), image::ImageFormat::Jpeg)
        .into_dimensions()
        .map_err(|e| e.to_string())
}
