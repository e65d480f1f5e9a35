//! The JSON representations of API.md's resources, shared by the origin (which sends them),
//! the event catalogue (whose payloads carry them) and any Rust client.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::paths::{media_url, MediaKind};
use crate::schedule::Schedule;

/// A camera's reported state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraStatus {
    /// Never heard from.
    Unknown,
    /// Captured or reported within `offline_after_seconds`.
    Online,
    /// Silent for longer than `offline_after_seconds`.
    Offline,
    /// The camera host reported a fault.
    Error,
}

impl CameraStatus {
    /// The wire name (`"online"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CameraStatus::Unknown => "unknown",
            CameraStatus::Online => "online",
            CameraStatus::Offline => "offline",
            CameraStatus::Error => "error",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Unknown, Self::Online, Self::Offline, Self::Error]
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Image id.
    pub id: i64,
    /// The camera that captured it.
    pub camera_id: i64,
    /// The timelapse that was running when it was captured.
    pub timelapse_id: Option<i64>,
    /// When the camera captured it.
    pub captured_at: DateTime<Utc>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Size of the original in bytes.
    pub bytes: u64,
    /// SHA-256 of the original, hex.
    pub sha256: String,
    /// `/media/images/<sha256>.jpg`.
    pub url: String,
    /// `/media/thumbnails/<sha256>.jpg`.
    pub thumbnail_url: String,
}

/// A camera and its latest state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Camera {
    /// Camera id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Current status.
    pub status: CameraStatus,
    /// The host's message with the status, if any.
    pub status_message: Option<String>,
    /// Number of images captured.
    pub image_count: u64,
    /// When the latest image was captured.
    pub last_capture_at: Option<DateTime<Utc>>,
    /// The latest image.
    pub latest_image: Option<Image>,
    /// Whether everyone may see it (the gallery, the public event stream, shared caches);
    /// a private camera is seen only by signed-in people.
    #[serde(default = "public_by_default")]
    pub public: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last modification time.
    pub updated_at: DateTime<Utc>,
}

fn public_by_default() -> bool {
    true
}

/// Whether a timelapse is collecting frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelapseStatus {
    /// Captures are added to it.
    Running,
    /// Closed.
    Stopped,
}

impl TimelapseStatus {
    /// The wire name (`"running"`, `"stopped"`).
    pub fn as_str(self) -> &'static str {
        match self {
            TimelapseStatus::Running => "running",
            TimelapseStatus::Stopped => "stopped",
        }
    }
}

/// A run of captures of one camera, to be rendered into videos.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timelapse {
    /// Timelapse id.
    pub id: i64,
    /// Its camera.
    pub camera_id: i64,
    /// Display name.
    pub name: String,
    /// Running or stopped.
    pub status: TimelapseStatus,
    /// Frames collected.
    pub image_count: u64,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// Stop time, once stopped.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Last modification time.
    pub updated_at: DateTime<Utc>,
    /// Protected from retention and disk-pressure pruning: its frames and videos stay until
    /// someone deletes them (or the timelapse, or the camera).
    #[serde(default)]
    pub protected: bool,
}

/// Where a render is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoStatus {
    /// Waiting for a worker.
    Queued,
    /// Being rendered.
    Rendering,
    /// Rendered; `url` is set.
    Ready,
    /// Failed; `error` says why.
    Failed,
}

impl VideoStatus {
    /// The wire name (`"queued"`, ...), also what the database stores.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoStatus::Queued => "queued",
            VideoStatus::Rendering => "rendering",
            VideoStatus::Ready => "ready",
            VideoStatus::Failed => "failed",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Rendering, Self::Ready, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    /// Whether the render is still to finish (queued or rendering).
    pub fn in_flight(self) -> bool {
        matches!(self, VideoStatus::Queued | VideoStatus::Rendering)
    }
}

/// A rendered (or rendering) video of a timelapse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Video {
    /// Video id.
    pub id: i64,
    /// Its timelapse.
    pub timelapse_id: i64,
    /// The camera of its timelapse (an addition to API.md, so camera pages can filter events).
    pub camera_id: i64,
    /// Queued, rendering, ready or failed.
    pub status: VideoStatus,
    /// 0..1.
    pub progress: f64,
    /// Frames per second, rounded (see `frame_rate`).
    pub fps: u32,
    /// Frames per second exactly: fractional when derived from `options.duration_seconds`.
    #[serde(default)]
    pub frame_rate: f64,
    /// Frames in the video.
    pub frame_count: u64,
    /// Length in seconds (`frame_count / frame_rate`).
    #[serde(default)]
    pub duration_seconds: f64,
    /// What the render was asked for, normalised.
    #[serde(default)]
    pub options: crate::render::RenderOptions,
    /// The automatic rule that made it, if one did.
    #[serde(default)]
    pub rule_id: Option<i64>,
    /// Size of the file once ready.
    pub bytes: Option<u64>,
    /// SHA-256 of the file once ready.
    pub sha256: Option<String>,
    /// `/media/videos/<sha256>.mp4` once ready.
    pub url: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last modification time.
    pub updated_at: DateTime<Utc>,
}

/// A camera's capture schedule (`GET /api/cameras/{id}/schedule`): the schedule's fields
/// beside the camera's id and the schedule's modification time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraSchedule {
    /// The camera.
    pub camera_id: i64,
    /// The schedule.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Cameras counted by status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraCounts {
    /// All cameras.
    pub total: u64,
    /// Online.
    pub online: u64,
    /// Offline.
    pub offline: u64,
    /// Never heard from.
    pub unknown: u64,
    /// Reporting a fault.
    pub error: u64,
}

/// The operator dashboard's aggregate numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardStats {
    /// Cameras by status.
    pub cameras: CameraCounts,
    /// Images stored.
    pub images_total: u64,
    /// Images captured since midnight UTC.
    pub images_today: u64,
    /// Bytes of media stored (originals, thumbnails, videos).
    pub storage_bytes: u64,
    /// Videos queued or rendering.
    pub renders_in_flight: u64,
    /// The media disk and each camera's share of it: for signed-in people only (the public's
    /// numbers say nothing of the machine or of private cameras).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSummary>,
}

/// Where the media disk stands, and what each camera takes of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageSummary {
    /// Bytes free on the media disk (for unprivileged writers).
    pub free_bytes: u64,
    /// Size of the media disk.
    pub total_bytes: u64,
    /// Free space below which the oldest unprotected frames are pruned.
    pub threshold_bytes: u64,
    /// Bytes captured in the last 24 hours, all cameras.
    pub bytes_per_day: u64,
    /// Whole days until free space reaches the threshold at the last 24 hours' rate; `None`
    /// when nothing was captured (no end in sight).
    pub days_left: Option<u64>,
    /// Each camera's images.
    pub cameras: Vec<CameraStorage>,
}

/// What one camera's images take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraStorage {
    /// The camera.
    pub camera_id: i64,
    /// Its name.
    pub name: String,
    /// Images stored.
    pub images: u64,
    /// Bytes of its originals and thumbnails (bytes shared with another camera count for
    /// both).
    pub bytes: u64,
    /// Bytes captured in the last 24 hours.
    pub bytes_per_day: u64,
}

/// How long a camera keeps what it captured (`GET/PUT /api/cameras/{id}/retention`). Each
/// field is a number, where 0 means no limit, or `null` for the site's default (the settings
/// `retention_images_days`, `retention_images_max_bytes`, `retention_videos_days`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Keep images this many days after capture.
    #[serde(default)]
    pub images_days: Option<u32>,
    /// Keep at most this many bytes of images (originals and thumbnails), oldest go first.
    #[serde(default)]
    pub images_max_bytes: Option<u64>,
    /// Keep ready videos this many days after they were made.
    #[serde(default)]
    pub videos_days: Option<u32>,
}

impl Retention {
    /// The fields a PUT may carry.
    pub const FIELDS: &'static [&'static str] = &["images_days", "images_max_bytes", "videos_days"];

    /// This policy with the `null` fields taken from `site` (whose fields are all set).
    pub fn or(self, site: Retention) -> Retention {
        Retention {
            images_days: self.images_days.or(site.images_days),
            images_max_bytes: self.images_max_bytes.or(site.images_max_bytes),
            videos_days: self.videos_days.or(site.videos_days),
        }
    }

    /// The age limit of images, if any (0 and `null` are none).
    pub fn images_age_limit(&self) -> Option<u32> {
        self.images_days.filter(|d| *d > 0)
    }

    /// The size cap of images, if any.
    pub fn images_size_cap(&self) -> Option<u64> {
        self.images_max_bytes.filter(|b| *b > 0)
    }

    /// The age limit of videos, if any.
    pub fn videos_age_limit(&self) -> Option<u32> {
        self.videos_days.filter(|d| *d > 0)
    }
}

/// A camera's retention as the API represents it: what the camera sets, and what applies
/// once the site's defaults fill its gaps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraRetention {
    /// The camera.
    pub camera_id: i64,
    /// The camera's own policy (`null`: the site's).
    #[serde(flatten)]
    pub retention: Retention,
    /// The policy in force.
    pub effective: Retention,
    /// Last change of the camera's own policy.
    pub updated_at: DateTime<Utc>,
}

/// Why images were deleted (`images_deleted`'s `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionReason {
    /// Someone deleted them.
    Requested,
    /// Older than the camera's retention.
    Retention,
    /// Over the camera's size cap.
    SizeCap,
    /// The disk was short of space.
    DiskPressure,
    /// Their timelapse was deleted with its frames.
    TimelapseDeleted,
    /// Their camera was deleted.
    CameraDeleted,
}

/// System settings: setting keys to JSON values, with their common modification time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The settings.
    #[serde(flatten)]
    pub values: BTreeMap<String, serde_json::Value>,
    /// When any setting last changed.
    pub updated_at: DateTime<Utc>,
}

/// Health of one component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Working.
    Ok,
    /// Working with a problem (low disk, slow database).
    Degraded,
    /// Not working.
    Down,
}

/// The path of an original image: `/media/images/<sha256>.jpg`.
pub fn image_url(sha256: &str) -> String {
    media_url(MediaKind::Image, sha256)
}

/// The path of a thumbnail: `/media/thumbnails/<sha256>.jpg`.
pub fn thumbnail_url(sha256: &str) -> String {
    media_url(MediaKind::Thumbnail, sha256)
}

/// The path of a video: `/media/videos/<sha256>.mp4`.
pub fn video_url(sha256: &str) -> String {
    media_url(MediaKind::Video, sha256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn camera_serializes_as_api_md_says() {
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let camera = Camera {
            id: 1,
            name: "Roof".into(),
            status: CameraStatus::Online,
            status_message: None,
            image_count: 0,
            last_capture_at: None,
            latest_image: None,
            public: true,
            created_at: at,
            updated_at: at,
        };
        let json = serde_json::to_value(&camera).unwrap();
        assert_eq!(json["status"], "online");
        assert_eq!(json["created_at"], "2023-11-14T22:13:20Z");
        assert!(json["latest_image"].is_null());
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 10);
        assert_eq!(json["public"], true);
        // A camera written before `public` existed is public.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("public");
        assert!(serde_json::from_value::<Camera>(old).unwrap().public);
    }

    #[test]
    fn settings_flatten_values_beside_updated_at() {
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let settings = Settings {
            values: [("offline_after_seconds".to_string(), serde_json::json!(120))].into(),
            updated_at: at,
        };
        let json = serde_json::to_value(&settings).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"offline_after_seconds": 120, "updated_at": "2023-11-14T22:13:20Z"})
        );
    }

    #[test]
    fn video_status_names_round_trip() {
        for (status, name) in [
            (VideoStatus::Queued, "queued"),
            (VideoStatus::Rendering, "rendering"),
            (VideoStatus::Ready, "ready"),
            (VideoStatus::Failed, "failed"),
        ] {
            assert_eq!(status.as_str(), name);
            assert_eq!(VideoStatus::parse(name), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), name);
        }
        assert_eq!(VideoStatus::parse("done"), None);
    }

    #[test]
    fn status_names_round_trip() {
        for s in ["unknown", "online", "offline", "error"] {
            assert_eq!(CameraStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(CameraStatus::parse("ONLINE"), None);
    }

    #[test]
    fn media_urls() {
        assert_eq!(image_url("ab"), "/media/images/ab.jpg");
        assert_eq!(thumbnail_url("ab"), "/media/thumbnails/ab.jpg");
        assert_eq!(video_url("ab"), "/media/videos/ab.mp4");
    }
}
