//! Uploads the spool to the origin, oldest frame first, each with its `Capture-Time`. A frame
//! leaves the spool only once the origin has it: 201 (new) or 200 (the same bytes were already
//! stored, as when an upload whose answer was lost is sent again after a crash). Failures are
//! retried with exponential backoff, in order, for as long as it takes.
//!
//! Shutdown never interrupts an upload: the one in flight finishes, then the loop stops.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::clock::SharedClock;
use crate::health::{human_duration, Health};
use crate::metrics::CameraMetrics;
use crate::origin::{OriginClient, UploadError, Uploaded};
use crate::spool::Spool;

/// The first retry wait.
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// One camera's uploads.
pub struct Uploader {
    /// For logs.
    pub label: String,
    /// The origin.
    pub client: OriginClient,
    /// The spool.
    pub spool: Arc<Spool>,
    /// The camera's health.
    pub health: Health,
    /// The camera's counters.
    pub metrics: CameraMetrics,
    /// The clock (for the outage's length).
    pub clock: SharedClock,
    /// The longest retry wait.
    pub max_backoff: Duration,
}

impl Uploader {
    /// Uploads until `cancel` (finishing the upload in flight).
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(FIRST_RETRY, self.max_backoff);
        let mut failing_since = None;
        let mut failures = 0u64;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let Some(frame) = self.spool.oldest() else {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = self.spool.frame_added() => continue,
                }
            };
            let jpeg = match tokio::fs::read(&frame.path).await {
                Ok(bytes) => Bytes::from(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Dropped from a full spool meanwhile.
                    let _ = self.spool.remove(frame.key);
                    continue;
                }
                Err(e) => {
                    tracing::error!(camera = %self.label, "cannot read {}: {e}", frame.path.display());
                    self.wait(&mut backoff, &cancel).await;
                    continue;
                }
            };
            // Not raced with `cancel`: an upload in flight is finished.
            let result = self.client.upload(jpeg, frame.key.captured_at).await;
            let now = self.clock.now();
            match result {
                Ok(how) => {
                    if let Err(e) = self.spool.remove(frame.key) {
                        tracing::error!(camera = %self.label, "cannot remove {} from the spool: {e}", frame.path.display());
                    }
                    self.metrics.uploaded.increment(1);
                    self.metrics.spool_frames.set(self.spool.len() as f64);
                    self.metrics.spool_bytes.set(self.spool.bytes() as f64);
                    if let Some(since) = failing_since.take() {
                        tracing::info!(
                            camera = %self.label,
                            "the origin takes frames again after {}; {} frames to upload",
                            human_duration(now - since),
                            self.spool.len()
                        );
                    }
                    failures = 0;
                    backoff.reset();
                    self.health.upload_succeeded(now, self.spool.len());
                    tracing::debug!(
                        camera = %self.label,
                        captured_at = %frame.key.captured_at,
                        "uploaded ({})",
                        match how {
                            Uploaded::Created => "new",
                            Uploaded::AlreadyStored => "already stored",
                        }
                    );
                }
                Err(UploadError::Rejected(reason)) => {
                    match self.spool.reject(frame.key) {
                        Ok(path) => tracing::warn!(
                            camera = %self.label,
                            "{reason}: the frame is kept in {}",
                            path.display()
                        ),
                        Err(e) => tracing::error!(
                            camera = %self.label,
                            "{reason}; and it cannot be set aside: {e}"
                        ),
                    }
                    self.metrics.rejected.increment(1);
                    self.health.frame_rejected(now, reason);
                }
                Err(UploadError::Retry(reason) | UploadError::Refused(reason)) => {
                    self.metrics.upload_failures.increment(1);
                    self.health.upload_failed(now);
                    failures += 1;
                    if failing_since.is_none() {
                        failing_since = Some(now);
                        tracing::warn!(camera = %self.label, "{reason}: frames stay in the spool and are retried");
                    } else if failures.is_multiple_of(20) {
                        tracing::warn!(camera = %self.label, "{reason} ({failures} attempts; {} frames spooled)", self.spool.len());
                    }
                    self.wait(&mut backoff, &cancel).await;
                }
            }
        }
    }

    async fn wait(&self, backoff: &mut Backoff, cancel: &CancellationToken) {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}
