//! The SSE event catalogue of API.md, and the `text/event-stream` wire format (HTML Living
//! Standard §9.2 "Server-sent events").
//!
//! - [`Event`]: every event the system emits, with its payload; [`Event::name`] is the
//!   `event:` field and [`Event::data`] the one-line JSON `data:` field.
//! - [`encode_event`], [`encode_retry`], [`encode_comment`]: the encoder. Field values that
//!   would end a line (CR, LF) are refused for `id` and `event`, and split into several `data:`
//!   lines for data, so no value can inject a field.
//! - [`EventStreamParser`]: an incremental parser that follows the spec's parsing rules, for
//!   tests, tools and any Rust client.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::resources::{
    Camera, CameraSchedule, CameraStatus, DashboardStats, DeletionReason, HealthStatus, Image,
    Timelapse, Video,
};

/// Every event of the catalogue (API.md "Event names and payloads"). Each payload carries what
/// a page needs to update itself, so no client refetches anything on an event.
///
/// The names are generated from the variants (`strum`, snake_case, as serde names them), so
/// the catalogue, [`Event::name`] and [`EVENT_NAMES`] cannot disagree.
#[derive(
    Clone, Debug, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames,
)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Event {
    /// A camera was created.
    CameraCreated {
        /// The new camera.
        camera: Camera,
    },
    /// A camera's name or other metadata changed.
    CameraUpdated {
        /// The camera as it is now.
        camera: Camera,
    },
    /// A camera was deleted.
    CameraDeleted {
        /// Its id.
        camera_id: i64,
    },
    /// A camera went online, offline or into error (only on a real change).
    CameraStatusChanged {
        /// The camera.
        camera_id: i64,
        /// Its new status.
        status: CameraStatus,
        /// The host's message, if any.
        message: Option<String>,
        /// When the change happened.
        at: DateTime<Utc>,
    },
    /// A capture was accepted.
    ImageCaptured {
        /// The camera.
        camera_id: i64,
        /// The running timelapse it belongs to.
        timelapse_id: Option<i64>,
        /// The new image, with its URLs.
        image: Image,
        /// The camera's image count after this capture.
        image_count: u64,
    },
    /// A timelapse started.
    TimelapseStarted {
        /// The timelapse.
        timelapse: Timelapse,
    },
    /// A timelapse stopped.
    TimelapseStopped {
        /// The timelapse.
        timelapse: Timelapse,
    },
    /// A timelapse changed (its name, or whether it is protected).
    TimelapseUpdated {
        /// The timelapse as it is now.
        timelapse: Timelapse,
    },
    /// A timelapse was deleted, with its videos (its frames too, or kept as the camera's).
    TimelapseDeleted {
        /// The camera.
        camera_id: i64,
        /// The timelapse's id.
        timelapse_id: i64,
        /// Whether its frames were deleted with it (each batch also as `images_deleted`).
        frames_deleted: bool,
    },
    /// Images were deleted (one event per batch of at most a few hundred).
    ImagesDeleted {
        /// The camera.
        camera_id: i64,
        /// The deleted images' ids.
        image_ids: Vec<i64>,
        /// Why.
        reason: DeletionReason,
        /// The camera's image count afterwards.
        image_count: u64,
        /// The camera's latest image afterwards.
        latest_image: Option<Image>,
    },
    /// A video was deleted (by someone, or by retention).
    VideoDeleted {
        /// The camera.
        camera_id: i64,
        /// Its timelapse.
        timelapse_id: i64,
        /// The video's id.
        video_id: i64,
    },
    /// The media disk is short of space: the oldest unprotected frames were pruned, or
    /// nothing is left to prune and captures are refused (507) until space is freed. Also
    /// when a camera's size cap reached into its running timelapse.
    StoragePressure {
        /// The camera whose size cap pruned its running timelapse; `None` for the disk.
        camera_id: Option<i64>,
        /// Bytes free on the media disk.
        free_bytes: u64,
        /// The free-space threshold.
        threshold_bytes: u64,
        /// Images pruned for it.
        images_pruned: u64,
        /// Whether nothing prunable is left (captures get 507).
        exhausted: bool,
        /// What happened, for people.
        message: String,
    },
    /// A render was queued.
    VideoQueued {
        /// The video.
        video: Video,
    },
    /// A render progressed (coalesced to a few per second per video).
    VideoProgress {
        /// The video, with its progress.
        video: Video,
    },
    /// A render finished; the video has its URL.
    VideoReady {
        /// The video.
        video: Video,
    },
    /// A render failed; the video has its error.
    VideoFailed {
        /// The video.
        video: Video,
    },
    /// Settings changed.
    SettingsUpdated {
        /// The keys that changed.
        keys: Vec<String>,
        /// The new modification time.
        updated_at: DateTime<Utc>,
        /// The new ETag of `/api/settings`.
        etag: String,
    },
    /// The dashboard numbers changed (coalesced to at most one a second).
    StatsUpdated(DashboardStats),
    /// A camera's capture schedule changed (its agent follows this to apply it at once).
    ScheduleUpdated {
        /// The camera.
        camera_id: i64,
        /// The schedule as `GET /api/cameras/{id}/schedule` now represents it.
        schedule: CameraSchedule,
    },
    /// A component's health changed (only on change).
    HealthChanged {
        /// `database`, `media_disk`, `ffmpeg` or `event_log`.
        component: String,
        /// Its new health.
        status: HealthStatus,
        /// What is wrong, if anything.
        message: Option<String>,
    },
    /// The client missed events that are no longer retained: reload everything.
    Resync {
        /// Why.
        reason: String,
    },
}

/// Every event name of the catalogue, in API.md's order (the variants' order).
pub const EVENT_NAMES: &[&str] = <Event as strum::VariantNames>::VARIANTS;

/// Why an event could not be decoded from a name and data.
#[derive(Debug, thiserror::Error)]
#[error("not an event of the catalogue: {0}")]
pub struct UnknownEvent(#[from] serde_json::Error);

impl Event {
    /// The `event:` field: the catalogue name.
    pub fn name(&self) -> &'static str {
        self.into()
    }

    /// The payload as one line of JSON (serde_json escapes every newline).
    pub fn data(&self) -> String {
        let mut tagged = serde_json::to_value(self).expect("events serialize");
        let data = tagged
            .get_mut("data")
            .map(serde_json::Value::take)
            .unwrap_or(serde_json::Value::Null);
        data.to_string()
    }

    /// Decodes an event from its name and JSON data (what a client receives).
    pub fn from_parts(name: &str, data: &str) -> Result<Self, UnknownEvent> {
        let data: serde_json::Value = serde_json::from_str(data)?;
        Ok(serde_json::from_value(
            serde_json::json!({ "event": name, "data": data }),
        )?)
    }

    /// The camera the event concerns, for `?camera_id=` filters; `None` for system-wide
    /// events (settings, stats, health, resync), which camera filters let through.
    pub fn camera_id(&self) -> Option<i64> {
        match self {
            Event::CameraCreated { camera } | Event::CameraUpdated { camera } => Some(camera.id),
            Event::CameraDeleted { camera_id }
            | Event::ScheduleUpdated { camera_id, .. }
            | Event::CameraStatusChanged { camera_id, .. }
            | Event::ImageCaptured { camera_id, .. }
            | Event::TimelapseDeleted { camera_id, .. }
            | Event::ImagesDeleted { camera_id, .. }
            | Event::VideoDeleted { camera_id, .. } => Some(*camera_id),
            Event::StoragePressure { camera_id, .. } => *camera_id,
            Event::TimelapseStarted { timelapse }
            | Event::TimelapseStopped { timelapse }
            | Event::TimelapseUpdated { timelapse } => Some(timelapse.camera_id),
            Event::VideoQueued { video }
            | Event::VideoProgress { video }
            | Event::VideoReady { video }
            | Event::VideoFailed { video } => Some(video.camera_id),
            Event::SettingsUpdated { .. }
            | Event::StatsUpdated(_)
            | Event::HealthChanged { .. }
            | Event::Resync { .. } => None,
        }
    }

    /// The whole frame: `id:`, `event:`, `data:` and the blank line that dispatches it.
    pub fn to_frame(&self, id: u64) -> String {
        encode_event(Some(&id.to_string()), Some(self.name()), &self.data())
            .expect("ids are digits, names are identifiers")
    }
}

/// A field value that would break the stream's framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidField {
    /// `id` or `event` containing CR or LF would end the field and inject another.
    #[error("the {0} field may not contain a line break")]
    LineBreak(&'static str),
    /// `id` containing NUL is ignored by clients (HTML §9.2.6), losing the resume point.
    #[error("the id field may not contain NUL")]
    Nul,
}

fn check_field(name: &'static str, value: &str) -> Result<(), InvalidField> {
    if value.contains(['\r', '\n']) {
        return Err(InvalidField::LineBreak(name));
    }
    if name == "id" && value.contains('\0') {
        return Err(InvalidField::Nul);
    }
    Ok(())
}

/// Splits on CRLF, LF or CR, as the parser does, so encoder and parser agree on lines.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

/// Encodes one event: optional `id:` and `event:`, one `data:` line per line of `data`, then a
/// blank line. Multi-line data arrives at the client joined by LF.
pub fn encode_event(
    id: Option<&str>,
    event: Option<&str>,
    data: &str,
) -> Result<String, InvalidField> {
    let mut out = String::with_capacity(data.len() + 64);
    if let Some(id) = id {
        check_field("id", id)?;
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    if let Some(event) = event {
        check_field("event", event)?;
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    for line in lines(data) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Ok(out)
}

/// The header fields of an event-stream response besides framing (API.md "Events"): the media
/// type, `no-cache, no-transform` (no cache stores it, no proxy rewrites it) and
/// `X-Accel-Buffering: no` (nginx and its kind pass each event on at once).
pub fn stream_fields() -> http::HeaderMap {
    let mut fields = http::HeaderMap::new();
    fields.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    fields.insert(
        http::header::CACHE_CONTROL,
        crate::ContentKind::EventStream.cache_control(),
    );
    fields.insert(
        http::HeaderName::from_static("x-accel-buffering"),
        http::HeaderValue::from_static("no"),
    );
    fields
}

/// The heartbeat: an empty comment, which clients ignore and which keeps idle connections (and
/// the proxies on their way) open.
pub const HEARTBEAT: &str = ":\n\n";

/// `retry: <ms>`: the reconnection time the client should use.
pub fn encode_retry(milliseconds: u64) -> String {
    format!("retry: {milliseconds}\n\n")
}

/// A comment (`: text`), one per line of `text`: keeps proxies from closing an idle stream.
pub fn encode_comment(text: &str) -> String {
    let mut out = String::new();
    for line in lines(text) {
        out.push(':');
        if !line.is_empty() {
            out.push(' ');
            out.push_str(line);
        }
        out.push('\n');
    }
    out.push('\n');
    out
}

/// An event as a client dispatches it (HTML §9.2.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEvent {
    /// The event type; `message` when the stream gave none.
    pub event: String,
    /// The data, lines joined by LF, without the final LF.
    pub data: String,
    /// The last event ID at dispatch time (persists across events until changed).
    pub last_event_id: String,
}

/// An incremental `text/event-stream` parser following HTML §9.2.6: a leading BOM is skipped;
/// lines end in CRLF, LF or CR (also across chunk boundaries); lines starting with `:` are
/// comments; a field without `:` has an empty value; one space after `:` is dropped; `retry`
/// takes only ASCII digits; an `id` containing NUL is ignored; a blank line dispatches the
/// event unless its data is empty; an event not ended by a blank line is dropped at EOF.
#[derive(Clone, Debug, Default)]
pub struct EventStreamParser {
    buffer: Vec<u8>,
    started: bool,
    /// The previous chunk ended in CR: an LF starting the next one belongs to it.
    pending_cr: bool,
    /// How much of `buffer` is known to hold no line break (so a long line arriving in many
    /// chunks is scanned once, not once per chunk).
    scanned: usize,
    data: String,
    event_type: String,
    last_event_id: String,
    reconnection_time: Option<u64>,
}

impl EventStreamParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last `retry:` value received, in milliseconds.
    pub fn reconnection_time(&self) -> Option<u64> {
        self.reconnection_time
    }

    /// The last event ID buffer (what a client sends as `Last-Event-ID` on reconnect).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<MessageEvent> {
        let mut events = Vec::new();
        if self.pending_cr && !bytes.is_empty() {
            self.pending_cr = false;
            if let [b'\n', rest @ ..] = bytes {
                bytes = rest;
            }
        }
        self.buffer.extend_from_slice(bytes);
        if !self.started {
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if self.buffer.len() < BOM.len() && BOM.starts_with(&self.buffer) {
                return events; // could still be a BOM
            }
            if self.buffer.starts_with(BOM) {
                self.buffer.drain(..BOM.len());
            }
            self.started = true;
        }
        let mut start = 0;
        let mut i = self.scanned;
        while i < self.buffer.len() {
            match self.buffer[i] {
                b'\n' => {
                    let line = self.buffer[start..i].to_vec();
                    self.process_line(&line, &mut events);
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    let line = self.buffer[start..i].to_vec();
                    self.process_line(&line, &mut events);
                    i += 1;
                    if i == self.buffer.len() {
                        self.pending_cr = true;
                    } else if self.buffer[i] == b'\n' {
                        i += 1;
                    }
                    start = i;
                }
                _ => i += 1,
            }
        }
        self.buffer.drain(..start);
        self.scanned = self.buffer.len();
        events
    }

    /// Ends the stream: an event without its terminating blank line is discarded (HTML §9.2.6
    /// "Once the end of the file is reached, any pending data must be discarded"). Returns
    /// whether anything was: data fields of an undispatched event, or an unterminated line.
    pub fn finish(self) -> bool {
        !self.data.is_empty() || !self.buffer.is_empty()
    }

    fn process_line(&mut self, line: &[u8], events: &mut Vec<MessageEvent>) {
        let line = String::from_utf8_lossy(line);
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => self.event_type = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_event_id = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.reconnection_time = value.parse().ok().or(Some(u64::MAX));
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<MessageEvent>) {
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        let event = std::mem::take(&mut self.event_type);
        events.push(MessageEvent {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
            last_event_id: self.last_event_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{CameraStatus, VideoStatus};
    use chrono::TimeZone;
    use proptest::prelude::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_stream_is_announced_as_api_md_says_and_its_heartbeat_is_an_empty_comment() {
        let fields = stream_fields();
        assert_eq!(fields["content-type"], "text/event-stream");
        assert_eq!(fields["cache-control"], "no-cache, no-transform");
        assert_eq!(fields["x-accel-buffering"], "no");
        assert_eq!(HEARTBEAT, encode_comment(""));
        let mut parser = EventStreamParser::new();
        assert!(parser.push(HEARTBEAT.as_bytes()).is_empty());
        assert!(!parser.finish());
    }

    fn parse_all(stream: &[u8]) -> Vec<MessageEvent> {
        let mut p = EventStreamParser::new();
        p.push(stream)
    }

    fn ev(event: &str, data: &str, id: &str) -> MessageEvent {
        MessageEvent {
            event: event.into(),
            data: data.into(),
            last_event_id: id.into(),
        }
    }

    fn at() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).unwrap()
    }

    fn image() -> Image {
        Image {
            id: 7,
            camera_id: 1,
            timelapse_id: Some(3),
            captured_at: at(),
            width: 1920,
            height: 1080,
            bytes: 1000,
            sha256: "ab".into(),
            url: "/media/images/ab.jpg".into(),
            thumbnail_url: "/media/thumbnails/ab.jpg".into(),
        }
    }

    fn camera() -> Camera {
        Camera {
            id: 1,
            name: "Roof".into(),
            status: CameraStatus::Online,
            status_message: None,
            image_count: 1,
            last_capture_at: Some(at()),
            latest_image: Some(image()),
            public: true,
            created_at: at(),
            updated_at: at(),
        }
    }

    fn timelapse() -> Timelapse {
        Timelapse {
            id: 3,
            camera_id: 1,
            name: "Spring".into(),
            status: crate::resources::TimelapseStatus::Running,
            image_count: 0,
            started_at: at(),
            stopped_at: None,
            updated_at: at(),
            protected: false,
        }
    }

    fn video() -> Video {
        Video {
            id: 9,
            timelapse_id: 3,
            camera_id: 1,
            status: VideoStatus::Rendering,
            progress: 0.5,
            fps: 24,
            frame_count: 100,
            frame_rate: 24.0,
            duration_seconds: 100.0 / 24.0,
            options: Default::default(),
            rule_id: None,
            bytes: None,
            sha256: None,
            url: None,
            error: None,
            created_at: at(),
            updated_at: at(),
        }
    }

    fn catalogue() -> Vec<Event> {
        vec![
            Event::CameraCreated { camera: camera() },
            Event::CameraUpdated { camera: camera() },
            Event::CameraDeleted { camera_id: 1 },
            Event::CameraStatusChanged {
                camera_id: 1,
                status: CameraStatus::Offline,
                message: Some("no heartbeat".into()),
                at: at(),
            },
            Event::ImageCaptured {
                camera_id: 1,
                timelapse_id: Some(3),
                image: image(),
                image_count: 1,
            },
            Event::TimelapseStarted {
                timelapse: timelapse(),
            },
            Event::TimelapseStopped {
                timelapse: timelapse(),
            },
            Event::TimelapseUpdated {
                timelapse: timelapse(),
            },
            Event::TimelapseDeleted {
                camera_id: 1,
                timelapse_id: 3,
                frames_deleted: true,
            },
            Event::ImagesDeleted {
                camera_id: 1,
                image_ids: vec![7, 8],
                reason: crate::resources::DeletionReason::Retention,
                image_count: 0,
                latest_image: None,
            },
            Event::VideoDeleted {
                camera_id: 1,
                timelapse_id: 3,
                video_id: 9,
            },
            Event::StoragePressure {
                camera_id: None,
                free_bytes: 1,
                threshold_bytes: 2,
                images_pruned: 3,
                exhausted: false,
                message: "pruned".into(),
            },
            Event::VideoQueued { video: video() },
            Event::VideoProgress { video: video() },
            Event::VideoReady { video: video() },
            Event::VideoFailed { video: video() },
            Event::SettingsUpdated {
                keys: vec!["offline_after_seconds".into()],
                updated_at: at(),
                etag: "\"1700000000.000000\"".into(),
            },
            Event::StatsUpdated(DashboardStats::default()),
            Event::ScheduleUpdated {
                camera_id: 1,
                schedule: CameraSchedule {
                    camera_id: 1,
                    schedule: crate::schedule::Schedule::every(10, "UTC"),
                    updated_at: at(),
                },
            },
            Event::HealthChanged {
                component: "database".into(),
                status: HealthStatus::Ok,
                message: None,
            },
            Event::Resync {
                reason: "retention".into(),
            },
        ]
    }

    #[test]
    fn catalogue_names_match_api_md() {
        // API.md's list, written out: the generated names must be exactly these.
        let api_md = [
            "camera_created",
            "camera_updated",
            "camera_deleted",
            "camera_status_changed",
            "image_captured",
            "timelapse_started",
            "timelapse_stopped",
            // Added by this project (README): storage lifecycle.
            "timelapse_updated",
            "timelapse_deleted",
            "images_deleted",
            "video_deleted",
            "storage_pressure",
            "video_queued",
            "video_progress",
            "video_ready",
            "video_failed",
            "settings_updated",
            "stats_updated",
            // Added by this project (README): a camera's schedule, for its agent.
            "schedule_updated",
            "health_changed",
            "resync",
        ];
        assert_eq!(EVENT_NAMES, api_md);
        let names: Vec<_> = catalogue().iter().map(Event::name).collect();
        assert_eq!(names, api_md);
        // serde's tag (what the log stores and `from_parts` reads) is the same name.
        for event in catalogue() {
            let tagged = serde_json::to_value(&event).unwrap();
            assert_eq!(tagged["event"], event.name());
        }
    }

    #[test]
    fn every_event_round_trips_through_the_wire() {
        for (i, event) in catalogue().into_iter().enumerate() {
            let frame = event.to_frame(i as u64 + 1);
            let parsed = parse_all(frame.as_bytes());
            assert_eq!(parsed.len(), 1, "{frame}");
            assert_eq!(parsed[0].event, event.name());
            assert_eq!(parsed[0].last_event_id, (i + 1).to_string());
            assert!(!parsed[0].data.contains('\n'), "one data line");
            assert_eq!(
                Event::from_parts(&parsed[0].event, &parsed[0].data).unwrap(),
                event
            );
        }
    }

    #[test]
    fn payloads_have_the_api_md_fields() {
        let data: serde_json::Value = serde_json::from_str(
            &Event::ImageCaptured {
                camera_id: 1,
                timelapse_id: None,
                image: image(),
                image_count: 4,
            }
            .data(),
        )
        .unwrap();
        assert_eq!(data["camera_id"], 1);
        assert!(data["timelapse_id"].is_null());
        assert_eq!(data["image_count"], 4);
        assert_eq!(data["image"]["thumbnail_url"], "/media/thumbnails/ab.jpg");
        let status: serde_json::Value = serde_json::from_str(
            &Event::CameraStatusChanged {
                camera_id: 2,
                status: CameraStatus::Online,
                message: None,
                at: at(),
            }
            .data(),
        )
        .unwrap();
        assert_eq!(
            status,
            serde_json::json!({"camera_id": 2, "status": "online", "message": null, "at": "2023-11-14T22:13:20Z"})
        );
        let stats: serde_json::Value =
            serde_json::from_str(&Event::StatsUpdated(DashboardStats::default()).data()).unwrap();
        assert_eq!(stats["cameras"]["total"], 0);
        assert_eq!(
            Event::Resync { reason: "x".into() }.data(),
            r#"{"reason":"x"}"#
        );
    }

    #[test]
    fn unknown_events_are_errors() {
        assert!(Event::from_parts("camera_exploded", "{}").is_err());
        assert!(Event::from_parts("resync", "not json").is_err());
        assert!(Event::from_parts("resync", "{}").is_err());
    }

    #[test]
    fn camera_filter_scope() {
        assert_eq!(Event::CameraDeleted { camera_id: 4 }.camera_id(), Some(4));
        assert_eq!(Event::VideoReady { video: video() }.camera_id(), Some(1));
        assert_eq!(
            Event::Resync {
                reason: String::new()
            }
            .camera_id(),
            None
        );
    }

    #[test]
    fn encoder_writes_fields_and_splits_multiline_data() {
        assert_eq!(
            encode_event(Some("5"), Some("ping"), "a\nb\r\nc\rd").unwrap(),
            "id: 5\nevent: ping\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        assert_eq!(encode_event(None, None, "").unwrap(), "data: \n\n");
        assert_eq!(encode_retry(3000), "retry: 3000\n\n");
        assert_eq!(encode_comment("keep-alive"), ": keep-alive\n\n");
        assert_eq!(encode_comment("a\nb"), ": a\n: b\n\n");
    }

    #[test]
    fn encoder_refuses_field_injection() {
        assert_eq!(
            encode_event(Some("1\nevent: evil"), None, "x"),
            Err(InvalidField::LineBreak("id"))
        );
        assert_eq!(
            encode_event(None, Some("a\rb"), "x"),
            Err(InvalidField::LineBreak("event"))
        );
        assert_eq!(encode_event(Some("1\0"), None, "x"), Err(InvalidField::Nul));
        // Data cannot inject either: every line becomes a data line.
        let frame = encode_event(None, Some("safe"), "x\n\nevent: evil\nid: 99").unwrap();
        let parsed = parse_all(frame.as_bytes());
        assert_eq!(parsed, vec![ev("safe", "x\n\nevent: evil\nid: 99", "")]);
    }

    #[test]
    fn parser_follows_the_spec_examples() {
        // HTML §9.2.6 examples.
        let stream = b"data: YHOO\ndata: +2\ndata: 10\n\n";
        assert_eq!(parse_all(stream), vec![ev("message", "YHOO\n+2\n10", "")]);
        let stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n";
        assert_eq!(
            parse_all(stream),
            vec![
                ev("message", "first event", "1"),
                ev("message", "second event", ""),
                ev("message", " third event", "")
            ]
        );
        let stream = b"data\n\ndata\ndata\n\ndata:";
        assert_eq!(
            parse_all(stream),
            vec![ev("message", "", ""), ev("message", "\n", "")]
        );
        let stream = b"data:test\n\ndata: test\n\n";
        assert_eq!(
            parse_all(stream),
            vec![ev("message", "test", ""), ev("message", "test", "")]
        );
    }

    #[test]
    fn parser_handles_bom_and_all_line_endings() {
        let stream = b"\xEF\xBB\xBFevent: a\r\ndata: 1\r\rdata: 2\n\n";
        assert_eq!(
            parse_all(stream),
            vec![ev("a", "1", ""), ev("message", "2", "")]
        );
        // Only one leading BOM is skipped; a second makes the first field name unknown.
        let stream = b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n";
        assert_eq!(parse_all(stream), vec![ev("message", "y", "")]);
    }

    #[test]
    fn parser_handles_chunk_boundaries() {
        let stream = b"\xEF\xBB\xBFid: 7\r\ndata: hello\r\n\r\nevent: b\rdata: w\xC3\xB6rld\r\r";
        let whole = parse_all(stream);
        for split in 0..stream.len() {
            let mut p = EventStreamParser::new();
            let mut got = p.push(&stream[..split]);
            got.extend(p.push(&stream[split..]));
            assert_eq!(got, whole, "split at {split}");
        }
        for chunk in [1, 2, 3] {
            let mut p = EventStreamParser::new();
            let got: Vec<_> = stream.chunks(chunk).flat_map(|c| p.push(c)).collect();
            assert_eq!(got, whole, "chunks of {chunk}");
        }
        assert_eq!(
            whole,
            vec![ev("message", "hello", "7"), ev("b", "w\u{f6}rld", "7")]
        );
    }

    #[test]
    fn long_lines_in_small_chunks_are_scanned_once() {
        // Found by fuzzing: each chunk used to rescan the whole unfinished line (quadratic).
        let line = format!("data: {}\n\n", "x".repeat(4 << 20));
        let mut p = EventStreamParser::new();
        let mut events = Vec::new();
        for chunk in line.as_bytes().chunks(4096) {
            events.extend(p.push(chunk));
        }
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.len(), 4 << 20);
        assert_eq!(p.scanned, 0);
    }

    #[test]
    fn parser_retry_takes_digits_only() {
        let mut p = EventStreamParser::new();
        p.push(b"retry: 1500\n\n");
        assert_eq!(p.reconnection_time(), Some(1500));
        p.push(b"retry: 15x\nretry: -1\nretry:\nretry: 1.5\n\n");
        assert_eq!(p.reconnection_time(), Some(1500));
    }

    #[test]
    fn parser_ignores_ids_with_nul_and_keeps_the_last_id() {
        let mut p = EventStreamParser::new();
        let got = p.push(b"id: 1\ndata: a\n\nid: 2\0\ndata: b\n\ndata: c\n\n");
        assert_eq!(
            got,
            vec![
                ev("message", "a", "1"),
                ev("message", "b", "1"),
                ev("message", "c", "1")
            ]
        );
        assert_eq!(p.last_event_id(), "1");
        // An empty id resets it.
        let got = p.push(b"id\ndata: d\n\n");
        assert_eq!(got, vec![ev("message", "d", "")]);
    }

    #[test]
    fn parser_does_not_dispatch_without_data_and_drops_incomplete_events() {
        let mut p = EventStreamParser::new();
        assert!(p.push(b"event: lonely\nid: 5\n\n").is_empty());
        // The event type was reset by the blank line, the id was not.
        assert_eq!(p.push(b"data: x\n\n"), vec![ev("message", "x", "5")]);
        assert!(p.push(b"data: never finished\n").is_empty());
        assert!(p.finish(), "the incomplete event is discarded");
        let mut p = EventStreamParser::new();
        assert!(p.push(b"data: unterminated").is_empty());
        assert!(p.finish(), "the unterminated line is discarded");
        let mut p = EventStreamParser::new();
        assert_eq!(p.push(b"data: whole\n\n"), vec![ev("message", "whole", "")]);
        assert!(!p.finish(), "nothing pending after a complete event");
    }

    #[test]
    fn parser_ignores_unknown_fields_and_comments() {
        assert_eq!(
            parse_all(b":comment\nfoo: bar\nDATA: no\ndata: yes\n\n"),
            vec![ev("message", "yes", "")]
        );
    }

    proptest! {
        #[test]
        fn prop_encode_parse_round_trip(id in "[0-9]{1,6}", name in "[a-z_]{1,12}", data in "\\PC{0,60}") {
            // Any data survives, with its line breaks normalised to LF.
            let frame = encode_event(Some(&id), Some(&name), &data).unwrap();
            let parsed = parse_all(frame.as_bytes());
            let expected = data.replace("\r\n", "\n").replace('\r', "\n");
            prop_assert_eq!(parsed, vec![ev(&name, &expected, &id)]);
        }

        #[test]
        fn prop_parser_is_chunking_invariant(stream in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b':'), Just(b' '), Just(b'd'), Just(b'a'), Just(b't'), Just(0xEF), Just(0xBB), Just(0xBF)], 0..80), split in 0usize..80) {
            let split = split.min(stream.len());
            let whole = parse_all(&stream);
            let mut p = EventStreamParser::new();
            let mut got = p.push(&stream[..split]);
            got.extend(p.push(&stream[split..]));
            prop_assert_eq!(got, whole);
        }
    }
}
