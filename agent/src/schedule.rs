//! Following the camera's schedule, which the origin owns: fetched with `If-None-Match` (a 304
//! when unchanged), then followed over the camera's event stream (`schedule_updated`), so a
//! change applies within a second or two without polling. The stream is opened before the
//! schedule is fetched, so a change between the two is not missed; it resumes with
//! `Last-Event-ID`.
//!
//! The last schedule known is kept in the spool directory (`schedule.json`): an agent
//! restarted while the origin is away follows it, and between failures the last one holds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use timelapser_core::events::{Event, EventStreamParser};
use timelapser_core::resources::CameraSchedule;
use timelapser_core::schedule::Schedule;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::health::Health;
use crate::origin::{OriginClient, ScheduleFetch};

/// The event stream sends a comment at least every 15 s: silence for this long is a dead
/// connection.
const STREAM_SILENCE: Duration = Duration::from_secs(45);

/// The event types followed.
const TYPES: &[&str] = &["schedule_updated"];

/// The schedule as kept on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    etag: Option<String>,
    schedule: CameraSchedule,
}

/// Keeps `schedule` up to date with the origin, until cancelled.
pub struct ScheduleFollower {
    client: OriginClient,
    store: PathBuf,
    label: String,
    schedule: watch::Sender<Option<Schedule>>,
    health: Health,
    etag: Option<String>,
    last_event_id: Option<String>,
    /// Fetches failed in a row (the first is a warning, the rest are debug).
    failures: u32,
}

impl ScheduleFollower {
    /// A follower that keeps the schedule in `spool_dir/schedule.json`; the schedule stored
    /// there, if any, is in force at once.
    pub fn new(
        client: OriginClient,
        spool_dir: &Path,
        label: String,
        schedule: watch::Sender<Option<Schedule>>,
        health: Health,
    ) -> Self {
        let store = spool_dir.join("schedule.json");
        let mut follower = Self {
            client,
            store,
            label,
            schedule,
            health,
            etag: None,
            last_event_id: None,
            failures: 0,
        };
        match std::fs::read(&follower.store) {
            Ok(bytes) => match serde_json::from_slice::<Stored>(&bytes) {
                Ok(stored) => {
                    tracing::info!(
                        camera = %follower.label,
                        "following the schedule kept from the last run until the origin answers"
                    );
                    follower.etag = stored.etag;
                    follower.apply(stored.schedule.schedule, false);
                    follower.health.set_schedule_problem(None);
                }
                Err(e) => tracing::warn!(
                    camera = %follower.label,
                    "{}: unreadable ({e}); waiting for the origin's schedule",
                    follower.store.display()
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                camera = %follower.label,
                "{}: {e}",
                follower.store.display()
            ),
        }
        follower
    }

    /// Follows until `cancel`.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            let stream = self
                .client
                .events(TYPES, self.last_event_id.as_deref())
                .await;
            let fetched = self.fetch().await;
            let mut retry_after = None;
            match stream {
                Ok(response) => {
                    if fetched {
                        backoff.reset();
                    }
                    let ended = tokio::select! {
                        _ = cancel.cancelled() => return,
                        ended = self.read_stream(response) => ended,
                    };
                    tracing::debug!(camera = %self.label, "event stream ended: {ended}");
                    retry_after = ended_retry(&ended);
                }
                Err(e) => tracing::debug!(camera = %self.label, "{e}"),
            }
            let delay = retry_after.unwrap_or_else(|| backoff.next_delay());
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One conditional fetch; true when the origin answered.
    async fn fetch(&mut self) -> bool {
        match self.client.schedule(self.etag.as_deref()).await {
            Ok(ScheduleFetch::NotModified) => {
                self.failures = 0;
                self.health.set_schedule_problem(None);
                true
            }
            Ok(ScheduleFetch::Fetched { schedule, etag }) => {
                self.failures = 0;
                self.etag = etag;
                self.persist(&schedule);
                self.apply(schedule.schedule, true);
                self.health.set_schedule_problem(None);
                true
            }
            Err(e) => {
                self.failures += 1;
                if self.failures == 1 {
                    tracing::warn!(camera = %self.label, "schedule: {e}; keeping the last one known");
                } else {
                    tracing::debug!(camera = %self.label, "schedule: {e}");
                }
                if self.schedule.borrow().is_none() {
                    self.health
                        .set_schedule_problem(Some(format!("waiting for the schedule: {e}")));
                }
                false
            }
        }
    }

    /// Reads events until the stream ends; says why it ended.
    async fn read_stream(&mut self, response: reqwest::Response) -> StreamEnd {
        let mut parser = EventStreamParser::new();
        let mut body = response.bytes_stream();
        loop {
            let chunk = match tokio::time::timeout(STREAM_SILENCE, body.next()).await {
                Err(_) => return StreamEnd::Silent,
                Ok(None) => return StreamEnd::Closed(parser.reconnection_time()),
                Ok(Some(Err(e))) => return StreamEnd::Failed(crate::net::describe(&e)),
                Ok(Some(Ok(chunk))) => chunk,
            };
            for message in parser.push(&chunk) {
                match Event::from_parts(&message.event, &message.data) {
                    Ok(Event::ScheduleUpdated { schedule, .. }) => {
                        tracing::info!(camera = %self.label, "schedule_updated received");
                        // The event carries the schedule, in force at once; its entity tag
                        // comes with a fetch (for the next revalidation to be a 304).
                        self.etag = None;
                        self.persist(&schedule);
                        self.apply(schedule.schedule, true);
                        self.fetch().await;
                    }
                    Ok(Event::Resync { reason }) => {
                        tracing::info!(camera = %self.label, "resync ({reason}): fetching the schedule");
                        self.fetch().await;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(camera = %self.label, "unknown event: {e}"),
                }
            }
            if !parser.last_event_id().is_empty() {
                self.last_event_id = Some(parser.last_event_id().to_owned());
            }
        }
    }

    fn apply(&self, schedule: Schedule, announce: bool) {
        if let Err(e) = schedule.validate() {
            tracing::warn!(camera = %self.label, "the origin's schedule is invalid ({e}); keeping the last one");
            return;
        }
        let changed = self.schedule.send_if_modified(|current| {
            if current.as_ref() == Some(&schedule) {
                return false;
            }
            *current = Some(schedule.clone());
            true
        });
        if changed && announce {
            tracing::info!(camera = %self.label, "schedule: {}", describe(&schedule));
        }
    }

    fn persist(&self, schedule: &CameraSchedule) {
        let stored = Stored {
            etag: self.etag.clone(),
            schedule: schedule.clone(),
        };
        if let Err(e) = write_atomically(&self.store, &stored) {
            tracing::warn!(camera = %self.label, "cannot keep the schedule in {}: {e}", self.store.display());
        }
    }
}

/// Why an event stream ended.
#[derive(Debug)]
enum StreamEnd {
    Silent,
    Closed(Option<u64>),
    Failed(String),
}

impl std::fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamEnd::Silent => write!(f, "silent for {} s", STREAM_SILENCE.as_secs()),
            StreamEnd::Closed(_) => write!(f, "closed by the origin"),
            StreamEnd::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// The origin's `retry:` after it closed the stream; otherwise the backoff decides.
fn ended_retry(ended: &StreamEnd) -> Option<Duration> {
    match ended {
        StreamEnd::Closed(Some(ms)) => Some(Duration::from_millis(*ms)),
        _ => None,
    }
}

/// A schedule in a few words, for the log.
pub fn describe(schedule: &Schedule) -> String {
    if schedule.paused {
        return "paused".into();
    }
    let mut text = format!("every {} s", schedule.interval_seconds);
    if !schedule.windows.is_empty() {
        let windows: Vec<String> = schedule
            .windows
            .iter()
            .map(|w| format!("{}–{}", w.start.format("%H:%M"), w.end.format("%H:%M")))
            .collect();
        text.push_str(&format!(", {} ({})", windows.join(", "), schedule.timezone));
    }
    if let Some(sun) = &schedule.sun {
        text.push_str(&format!(
            ", {} at {:.3}, {:.3}",
            if sun.civil_twilight {
                "civil dawn to dusk"
            } else {
                "sunrise to sunset"
            },
            sun.latitude,
            sun.longitude
        ));
    }
    text
}

/// Writes JSON to `path` through a temporary file, fsynced, renamed into place.
fn write_atomically(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
