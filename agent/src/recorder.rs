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
            if schedule.paused {
                self.health.set_started();
            }
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
        let captured = self.source.capture(at).await;
        if !self.source.opened() {
            // A stream's first session is still connecting: not a failure yet.
            return;
        }
        self.health.set_started();
        let frames = match captured {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SimulatedClock};
    use crate::source::SourceError;
    use chrono::{NaiveTime, TimeZone};
    use chrono_tz::Europe::Paris;
    use futures::future::BoxFuture;
    use timelapser_core::schedule::DailyWindow;

    type Hook = Box<dyn FnMut(DateTime<Utc>) + Send>;

    /// A source backed by one JPEG, recording the instants it is asked for.
    struct ScriptedSource {
        jpeg: bytes::Bytes,
        asked: Arc<Mutex<Vec<DateTime<Utc>>>>,
        hook: Hook,
    }

    impl Source for ScriptedSource {
        fn capture(&mut self, at: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Frame>, SourceError>> {
            self.asked.lock().unwrap().push(at);
            (self.hook)(at);
            let frame = Frame {
                jpeg: self.jpeg.clone(),
                captured_at: at,
                file: None,
            };
            Box::pin(async move { Ok(vec![frame]) })
        }
    }

    fn jpeg() -> bytes::Bytes {
        let image = image::GrayImage::from_fn(32, 24, |x, y| image::Luma([(x * 7 + y * 5) as u8]));
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner().into()
    }

    fn hm(text: &str) -> NaiveTime {
        NaiveTime::parse_from_str(text, "%H:%M").unwrap()
    }

    fn paris(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Paris
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Two simulated days across the spring DST change, with the schedule changed at noon on
    /// the second: every frame on the grid, inside the window in force, none missing.
    #[tokio::test]
    async fn two_simulated_days_follow_the_window_and_a_change_at_noon() {
        let daytime = Schedule {
            windows: vec![DailyWindow {
                start: hm("08:00"),
                end: hm("18:00"),
            }],
            ..Schedule::every(900, "Europe/Paris")
        };
        let hourly = Schedule {
            interval_seconds: 3600,
            ..daytime.clone()
        };
        let start = paris(2026, 3, 28, 0, 0);
        let end = paris(2026, 3, 30, 0, 0);
        let change_at = paris(2026, 3, 29, 12, 0);
        let clock = SimulatedClock::new(start);
        let (schedule_tx, schedule_rx) = watch::channel(Some(daytime.clone()));
        let cancel = CancellationToken::new();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let hook: Hook = {
            let cancel = cancel.clone();
            let hourly = hourly.clone();
            let mut changed = false;
            Box::new(move |at| {
                if at >= change_at && !changed {
                    changed = true;
                    schedule_tx.send_replace(Some(hourly.clone()));
                }
                if at >= end {
                    cancel.cancel();
                }
            })
        };
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(Spool::open(dir.path(), 1 << 30).unwrap());
        let recorder = Recorder {
            label: "simulated".into(),
            clock: Arc::new(clock.clone()),
            source: Box::new(ScriptedSource {
                jpeg: jpeg(),
                asked: asked.clone(),
                hook,
            }),
            spool: spool.clone(),
            schedule: schedule_rx,
            health: Health::new(),
            metrics: CameraMetrics::detached(),
            policy: QualityPolicy {
                blank: FramePolicy::Report,
                frozen: FramePolicy::Report,
                blank_stddev: 4.0,
                frozen_after: 3,
            },
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), recorder.run(cancel))
            .await
            .expect("two simulated days in under 30 s");

        let asked: Vec<DateTime<Utc>> = asked
            .lock()
            .unwrap()
            .iter()
            .copied()
            .filter(|t| *t < end)
            .collect();
        let mut expected = Vec::new();
        let mut t = start;
        while let Some(next) = (if t < change_at { &daytime } else { &hourly }).next_capture(t) {
            if next >= end {
                break;
            }
            expected.push(next);
            t = next;
        }
        assert_eq!(asked, expected, "frame by frame");
        // 08:00 to 17:45 every 15 min on the first day; on the second, to noon, then hourly.
        assert_eq!(asked.len(), 40 + 17 + 5);
        assert_eq!(asked[0], paris(2026, 3, 28, 8, 0));
        assert_eq!(asked[40], paris(2026, 3, 29, 8, 0), "after the DST change");
        assert_eq!(asked[57], paris(2026, 3, 29, 13, 0), "hourly after noon");
        assert!(clock.now() >= end);
        // Each frame is in the spool under its capture time.
        let mut spooled = Vec::new();
        while let Some(frame) = spool.oldest() {
            spooled.push(frame.key.captured_at);
            spool.remove(frame.key).unwrap();
        }
        spooled.retain(|t| *t < end);
        assert_eq!(spooled, expected);
    }
}
