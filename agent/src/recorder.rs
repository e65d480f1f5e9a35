//! The capture loop of one camera: sleeps until the schedule's next instant, takes the
//! source's frames, judges them, and writes them to the spool. A schedule change wakes it at
//! once, and it captures only at instants [`Schedule::next_capture`] gives.
//!
//! Time is the injected [`Clock`](crate::clock::Clock): on a simulated clock the loop runs
//! through a day in milliseconds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use timelapser_core::schedule::Schedule;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::FramePolicy;
use crate::health::Health;
use crate::metrics::CameraMetrics;
use crate::quality::{QualityCheck, Verdict};
use crate::source::{Frame, Source};
use crate::spool::Spool;

/// How long the loop waits before looking again when the schedule has no instant ahead
/// (paused, or no window within its look-ahead), unless the schedule changes first.
const IDLE_RELOOK: chrono::Duration = chrono::Duration::hours(1);

/// What to do with frames that fail a quality check.
#[derive(Clone, Copy, Debug)]
pub struct QualityPolicy {
    /// Blank frames.
    pub blank: FramePolicy,
    /// Frozen frames.
    pub frozen: FramePolicy,
    /// Blank threshold (luma standard deviation).
    pub blank_stddev: f64,
    /// Frozen threshold (identical frames in a row).
    pub frozen_after: u32,
}

/// One camera's capture loop.
pub struct Recorder {
    /// For logs.
    pub label: String,
    /// The clock.
    pub clock: SharedClock,
    /// The source.
    pub source: Box<dyn Source>,
    /// The spool.
    pub spool: Arc<Spool>,
    /// The schedule in force (`None` until one is known).
    pub schedule: watch::Receiver<Option<Schedule>>,
    /// The camera's health.
    pub health: Health,
    /// The camera's counters.
    pub metrics: CameraMetrics,
    /// Quality policy.
    pub policy: QualityPolicy,
}

impl Recorder {
    /// Captures until `cancel`.
    pub async fn run(mut self, cancel: CancellationToken) {
        let quality = Arc::new(Mutex::new(QualityCheck::new(
            self.policy.blank_stddev,
            self.policy.frozen_after,
        )));
        let mut interval = None;
        loop {
            let schedule = self.schedule.borrow_and_update().clone();
            let Some(schedule) = schedule else {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    changed = self.schedule.changed() => if changed.is_err() { return },
                }
                continue;
            };
            if interval != Some(schedule.interval_seconds) {
                interval = Some(schedule.interval_seconds);
                self.source
                    .set_interval(Duration::from_secs(u64::from(schedule.interval_seconds)));
            }
            self.health.set_paused(schedule.paused);
            let now = self.clock.now();
            let next = schedule.next_capture(now);
            let wake = next.unwrap_or(now + IDLE_RELOOK);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                changed = self.schedule.changed() => {
                    if changed.is_err() { return }
                    continue;
                }
                _ = self.clock.sleep_until(wake) => {}
            }
            if let Some(at) = next {
                self.capture(at, &quality).await;
            }
        }
    }

    /// Takes and spools the frames of instant `at`.
    async fn capture(&mut self, at: DateTime<Utc>, quality: &Arc<Mutex<QualityCheck>>) {
        let frames = match self.source.capture(at).await {
            Ok(frames) => {
                self.health.set_source_problem(None);
                frames
            }
            Err(e) => {
                self.metrics.capture_failures.increment(1);
                self.health.set_source_problem(Some(e.0));
                return;
            }
        };
        for frame in frames {
            self.metrics.captured.increment(1);
            let verdict = {
                let quality = quality.clone();
                let jpeg = frame.jpeg.clone();
                tokio::task::spawn_blocking(move || {
                    quality
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .check(&jpeg)
                })
                .await
                .unwrap_or(Verdict::Good)
            };
            self.health.set_quality_problem(verdict.message());
            let skip = match verdict {
                Verdict::Good => false,
                Verdict::Blank { .. } => {
                    let skip = self.policy.blank == FramePolicy::Skip;
                    if skip {
                        self.metrics.skipped_blank.increment(1);
                    }
                    skip
                }
                Verdict::Frozen { .. } => {
                    let skip = self.policy.frozen == FramePolicy::Skip;
                    if skip {
                        self.metrics.skipped_frozen.increment(1);
                    }
                    skip
                }
                // The origin would refuse it (422): not worth a place in the spool.
                Verdict::Undecodable(_) => true,
            };
            if skip {
                self.release(&frame);
                continue;
            }
            self.spool_frame(frame).await;
        }
    }

    async fn spool_frame(&mut self, frame: Frame) {
        let spool = self.spool.clone();
        let jpeg = frame.jpeg.clone();
        let captured_at = frame.captured_at;
        let added = tokio::task::spawn_blocking(move || spool.add(&jpeg, captured_at)).await;
        match added {
            Ok(Ok(added)) => {
                self.health.set_spool_problem(None);
                self.metrics.spooled.increment(1);
                if added.dropped > 0 {
                    self.metrics.dropped.increment(added.dropped);
                    self.health.frames_dropped(self.clock.now(), added.dropped);
                    tracing::warn!(
                        camera = %self.label,
                        "spool full ({} bytes): dropped the {} oldest frames",
                        self.spool.bytes(),
                        added.dropped
                    );
                }
                self.metrics.spool_frames.set(self.spool.len() as f64);
                self.metrics.spool_bytes.set(self.spool.bytes() as f64);
                self.health.set_backlog(self.spool.len());
                self.release(&frame);
            }
            Ok(Err(e)) => {
                // The frame is lost (a folder's file stays, and is taken again next time).
                self.metrics.capture_failures.increment(1);
                self.health.set_spool_problem(Some(e.to_string()));
            }
            Err(e) => {
                self.metrics.capture_failures.increment(1);
                self.health
                    .set_spool_problem(Some(format!("writing failed: {e}")));
            }
        }
    }

    fn release(&mut self, frame: &Frame) {
        if let Err(e) = self.source.release(frame) {
            tracing::warn!(camera = %self.label, "{e}");
        }
    }
}
