//! A camera's health, as a person reads it: each part of the agent says what is wrong with its
//! piece (the source, the spool, the frames, the origin), and [`HealthState::status`] makes the
//! one status and message the origin shows ("RTSP: connection refused", "frames are black",
//! "spooling: origin unreachable for 4 min", "ok"). The reporter sends it through
//! `PUT /api/cameras/{id}/status` on every change and as a heartbeat.
//!
//! The status is `error` only when no frame can be recorded (the source or the spool fails):
//! a capture marks the camera online again at the origin, so a frame-quality problem is an
//! `online` status with a message, not an `error` that every capture would undo.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use timelapser_core::resources::CameraStatus;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::origin::OriginClient;

/// How long a notice of dropped or refused frames stays in the message.
const DROP_NOTICE: chrono::Duration = chrono::Duration::hours(1);

/// The shortest gap between two reports that differ only in their message.
const MESSAGE_GAP: Duration = Duration::from_secs(2);

/// The longest the reporter waits before looking again (messages such as "for 4 min" age).
const RELOOK: Duration = Duration::from_secs(30);

/// What each part says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthState {
    /// No capture has been tried yet.
    pub starting: bool,
    /// No answer about the schedule yet (neither a schedule nor a failure to get one).
    pub awaiting_schedule: bool,
    /// The source fails (no frame).
    pub source: Option<String>,
    /// The spool cannot be written.
    pub spool: Option<String>,
    /// The frames are blank or frozen.
    pub quality: Option<String>,
    /// No schedule is known yet.
    pub schedule: Option<String>,
    /// The schedule is paused.
    pub paused: bool,
    /// Uploads have failed since then.
    pub unreachable_since: Option<DateTime<Utc>>,
    /// How long the last outage lasted (while its backlog drains).
    pub last_outage: Option<chrono::Duration>,
    /// Frames waiting in the spool.
    pub backlog: usize,
    /// Frames dropped from a full spool, and when the last was.
    pub dropped: u64,
    /// When frames were last dropped.
    pub last_drop: Option<DateTime<Utc>>,
    /// The origin refused a frame for good: the last reason, and when.
    pub rejected: Option<(String, DateTime<Utc>)>,
}

impl HealthState {
    /// The status and message at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> (CameraStatus, String) {
        if let Some(spool) = &self.spool {
            return (CameraStatus::Error, format!("spool: {spool}"));
        }
        if let Some(source) = &self.source {
            return (CameraStatus::Error, source.clone());
        }
        if let Some(schedule) = &self.schedule {
            return (CameraStatus::Error, schedule.clone());
        }
        let mut parts = Vec::new();
        if self.awaiting_schedule {
            parts.push("starting: waiting for the schedule from the origin".into());
        } else if self.starting {
            parts.push("starting".into());
        }
        if let Some(quality) = &self.quality {
            parts.push(quality.clone());
        }
        if let Some(since) = self.unreachable_since {
            parts.push(format!(
                "spooling: origin unreachable for {}",
                human_duration(now - since)
            ));
        } else if let (Some(outage), true) = (self.last_outage, self.backlog > 1) {
            parts.push(format!(
                "uploading {} spooled frames (origin was unreachable for {})",
                self.backlog,
                human_duration(outage)
            ));
        }
        if self.last_drop.is_some_and(|at| now - at < DROP_NOTICE) {
            parts.push(format!(
                "spool full: {} oldest frames dropped",
                self.dropped
            ));
        }
        if let Some((reason, _)) = self
            .rejected
            .as_ref()
            .filter(|(_, at)| now - *at < DROP_NOTICE)
        {
            parts.push(reason.clone());
        }
        if self.paused {
            parts.push("schedule paused".into());
        }
        if parts.is_empty() {
            parts.push("ok".into());
        }
        (CameraStatus::Online, parts.join("; "))
    }
}

/// "45 s", "4 min", "3 h".
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    if secs < 120 {
        format!("{secs} s")
    } else if secs < 2 * 3600 {
        format!("{} min", secs / 60)
    } else {
        format!("{} h", secs / 3600)
    }
}

/// A camera's health, shared by its parts.
#[derive(Clone, Debug)]
pub struct Health(Arc<watch::Sender<HealthState>>);

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// A camera starting: no capture tried, no schedule known yet.
    pub fn new() -> Self {
        Self(Arc::new(
            watch::channel(HealthState {
                starting: true,
                awaiting_schedule: true,
                ..HealthState::default()
            })
            .0,
        ))
    }

    /// A capture has been tried.
    pub fn set_started(&self) {
        self.update(|s| s.starting = false);
    }

    /// The current state.
    pub fn state(&self) -> HealthState {
        self.0.borrow().clone()
    }

    /// Watches changes.
    pub fn subscribe(&self) -> watch::Receiver<HealthState> {
        self.0.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut HealthState)) {
        self.0.send_if_modified(|state| {
            let before = state.clone();
            f(state);
            *state != before
        });
    }

    /// The source gave a frame, or says why not.
    pub fn set_source_problem(&self, problem: Option<String>) {
        self.update(|s| s.source = problem);
    }

    /// The spool took a frame, or says why not.
    pub fn set_spool_problem(&self, problem: Option<String>) {
        self.update(|s| s.spool = problem);
    }

    /// The frames' quality.
    pub fn set_quality_problem(&self, problem: Option<String>) {
        self.update(|s| s.quality = problem);
    }

    /// Whether a schedule is known.
    pub fn set_schedule_problem(&self, problem: Option<String>) {
        self.update(|s| {
            s.awaiting_schedule = false;
            s.schedule = problem;
        });
    }

    /// Whether the schedule is paused.
    pub fn set_paused(&self, paused: bool) {
        self.update(|s| s.paused = paused);
    }

    /// An upload failed and will be retried.
    pub fn upload_failed(&self, now: DateTime<Utc>) {
        self.update(|s| {
            s.unreachable_since.get_or_insert(now);
        });
    }

    /// An upload went through; `backlog` frames still wait.
    pub fn upload_succeeded(&self, now: DateTime<Utc>, backlog: usize) {
        self.update(|s| {
            if let Some(since) = s.unreachable_since.take() {
                s.last_outage = Some(now - since);
            }
            if backlog == 0 {
                s.last_outage = None;
            }
            s.backlog = backlog;
        });
    }

    /// The spool's size changed.
    pub fn set_backlog(&self, backlog: usize) {
        self.update(|s| s.backlog = backlog);
    }

    /// Frames were dropped from a full spool.
    pub fn frames_dropped(&self, now: DateTime<Utc>, count: u64) {
        self.update(|s| {
            s.dropped += count;
            s.last_drop = Some(now);
        });
    }

    /// The origin refused a frame for good.
    pub fn frame_rejected(&self, now: DateTime<Utc>, reason: String) {
        self.update(|s| s.rejected = Some((reason, now)));
    }
}

/// Sends the camera's status on every change (messages at most every 2 s) and every
/// `heartbeat`, until cancelled; then reports the camera offline ("agent stopped").
pub async fn report(
    client: OriginClient,
    health: Health,
    clock: SharedClock,
    heartbeat: Duration,
    label: String,
    cancel: CancellationToken,
) {
    let mut changes = health.subscribe();
    let mut sent: Option<(CameraStatus, String)> = None;
    let mut logged: Option<(CameraStatus, String)> = None;
    let mut last_put = Instant::now() - MESSAGE_GAP;
    let mut next_heartbeat = Instant::now();
    let mut failures = 0u32;
    loop {
        let current = changes.borrow_and_update().status(clock.now());
        if logged.as_ref() != Some(&current) {
            match current.0 {
                CameraStatus::Error => {
                    tracing::warn!(camera = %label, status = current.0.as_str(), "{}", current.1)
                }
                _ => tracing::info!(camera = %label, status = current.0.as_str(), "{}", current.1),
            }
            logged = Some(current.clone());
        }
        let status_changed = sent.as_ref().map(|s| s.0) != Some(current.0);
        let message_changed = sent.as_ref() != Some(&current);
        let due = status_changed
            || (message_changed && Instant::now() >= last_put + MESSAGE_GAP)
            || Instant::now() >= next_heartbeat;
        let mut retry = None;
        if due {
            last_put = Instant::now();
            match client.put_status(current.0, &current.1).await {
                Ok(()) => {
                    sent = Some(current);
                    next_heartbeat = Instant::now() + heartbeat;
                    failures = 0;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::debug!(camera = %label, "status not sent: {e}");
                    }
                    // Tried again soon: the origin may be back any moment.
                    retry = Some(Duration::from_secs(u64::from(failures.min(5))));
                }
            }
        }
        let now = Instant::now();
        let wait = match retry {
            Some(retry) => retry,
            None if sent.as_ref().map(|s| &s.1) != logged.as_ref().map(|l| &l.1) => {
                (last_put + MESSAGE_GAP).saturating_duration_since(now)
            }
            None => next_heartbeat.saturating_duration_since(now).min(RELOOK),
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = changes.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(wait) => {}
        }
    }
    let stopped = client.put_status(CameraStatus::Offline, "agent stopped");
    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(3), stopped).await {
        tracing::debug!(camera = %label, "offline status not sent: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn an_all_well_camera_is_online_and_ok() {
        assert_eq!(
            HealthState::default().status(at(0)),
            (CameraStatus::Online, "ok".into())
        );
    }

    #[test]
    fn a_camera_starts_waiting_for_its_schedule_then_for_its_first_frame() {
        let health = Health::new();
        assert_eq!(
            health.state().status(at(0)),
            (
                CameraStatus::Online,
                "starting: waiting for the schedule from the origin".into()
            )
        );
        health.set_schedule_problem(None);
        assert_eq!(
            health.state().status(at(0)),
            (CameraStatus::Online, "starting".into())
        );
        health.set_started();
        assert_eq!(health.state().status(at(0)).1, "ok");
    }

    #[test]
    fn no_frame_at_all_is_an_error_naming_the_cause() {
        let health = Health::new();
        health.set_schedule_problem(None);
        health.set_source_problem(Some("RTSP: connection refused".into()));
        assert_eq!(
            health.state().status(at(0)),
            (CameraStatus::Error, "RTSP: connection refused".into())
        );
        health.set_spool_problem(Some("cannot write in /x: Read-only file system".into()));
        assert_eq!(
            health.state().status(at(0)).1,
            "spool: cannot write in /x: Read-only file system"
        );
    }

    #[test]
    fn an_outage_reads_as_spooling_then_as_a_backlog_draining() {
        let health = Health::new();
        health.set_schedule_problem(None);
        health.set_started();
        health.set_quality_problem(Some("frames are black".into()));
        health.upload_failed(at(0));
        health.upload_failed(at(60));
        assert_eq!(
            health.state().status(at(240)),
            (
                CameraStatus::Online,
                "frames are black; spooling: origin unreachable for 4 min".into()
            )
        );
        health.upload_succeeded(at(300), 29);
        assert_eq!(
            health.state().status(at(301)).1,
            "frames are black; uploading 29 spooled frames (origin was unreachable for 5 min)"
        );
        health.set_quality_problem(None);
        health.upload_succeeded(at(330), 0);
        assert_eq!(health.state().status(at(331)).1, "ok");
    }

    #[test]
    fn dropped_frames_are_reported_for_an_hour() {
        let health = Health::new();
        health.set_schedule_problem(None);
        health.set_started();
        health.frames_dropped(at(0), 3);
        health.frames_dropped(at(10), 2);
        assert_eq!(
            health.state().status(at(20)).1,
            "spool full: 5 oldest frames dropped"
        );
        assert_eq!(health.state().status(at(10 + 3600)).1, "ok");
    }
}
