//! The agent's configuration: a TOML file with one `[[camera]]` table per camera, or the
//! same fields as flags for a single camera. Tokens and passwords come from a file or an
//! environment variable, never from the file itself, so a config can be shown and versioned.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::redact::redact;

/// The default spool bound: 1 GiB.
pub const DEFAULT_SPOOL_LIMIT_BYTES: u64 = 1 << 30;

/// A configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// One table per camera.
    #[serde(rename = "camera", default)]
    pub cameras: Vec<CameraConfig>,
}

/// What to do with a frame that fails a quality check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FramePolicy {
    /// Report it in the camera's status and upload it anyway.
    #[default]
    Report,
    /// Report it and do not upload it.
    Skip,
}

/// What becomes of a file a folder source has taken (once it is in the spool).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TakenFiles {
    /// Moved into `done/` inside the folder.
    #[default]
    Move,
    /// Deleted.
    Delete,
}

/// Where a folder frame's capture time comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureTime {
    /// The file's modification time (when the camera wrote it).
    #[default]
    Mtime,
    /// The scheduled instant at which the agent took it.
    Schedule,
}

/// One camera as written in the config (or given as flags).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// A name for logs; default `camera <id>`.
    pub name: Option<String>,
    /// The origin, e.g. `https://timelapser.example.org`.
    pub origin: String,
    /// The camera's id on the origin.
    pub camera_id: i64,
    /// A file holding the camera's upload token.
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the camera's upload token.
    pub token_env: Option<String>,
    /// `rtsp://`, `rtsps://`, `http://`, `https://`, `v4l2:///dev/videoN` or `dir:///path`.
    pub source: String,
    /// The source's user name (instead of putting it in the URL).
    pub username: Option<String>,
    /// A file holding the source's password.
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the source's password.
    pub password_env: Option<String>,
    /// Where frames wait for the origin.
    pub spool_dir: PathBuf,
    /// The most bytes the spool holds; the oldest frames are dropped beyond it.
    #[serde(default = "default_spool_limit")]
    pub spool_limit_bytes: u64,
    /// Blank frames (black, or one flat colour).
    #[serde(default)]
    pub blank_frames: FramePolicy,
    /// Frozen frames (the same picture again).
    #[serde(default)]
    pub frozen_frames: FramePolicy,
    /// A frame whose luma standard deviation is below this is blank.
    #[serde(default = "default_blank_stddev")]
    pub blank_luma_stddev: f64,
    /// Identical frames in a row before the stream counts as frozen.
    #[serde(default = "default_frozen_after")]
    pub frozen_after: u32,
    /// Folder sources: move taken files to `done/` or delete them.
    #[serde(default)]
    pub taken_files: TakenFiles,
    /// Folder sources: capture time from the file's mtime or the schedule.
    #[serde(default)]
    pub capture_time: CaptureTime,
    /// Folder sources: how long a file's size and mtime must stay unchanged to be complete.
    #[serde(default = "default_settle_ms")]
    pub folder_settle_ms: u64,
    /// Stream sources: frames a second ffmpeg decodes and hands over.
    #[serde(default = "default_stream_fps")]
    pub stream_fps: f64,
    /// Stream sources: the longest wait between reconnection attempts.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_seconds: u64,
    /// The longest wait between upload attempts.
    #[serde(default = "default_upload_max")]
    pub upload_max_backoff_seconds: u64,
    /// Seconds between status heartbeats (a change is sent at once).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_seconds: u64,
    /// The ffmpeg binary; `ffmpeg` on PATH by default.
    pub ffmpeg: Option<PathBuf>,
}

fn default_spool_limit() -> u64 {
    DEFAULT_SPOOL_LIMIT_BYTES
}
fn default_blank_stddev() -> f64 {
    4.0
}
fn default_frozen_after() -> u32 {
    3
}
fn default_settle_ms() -> u64 {
    2_000
}
fn default_stream_fps() -> f64 {
    1.0
}
fn default_reconnect_max() -> u64 {
    60
}
fn default_upload_max() -> u64 {
    30
}
fn default_heartbeat() -> u64 {
    60
}

impl CameraConfig {
    /// A camera with every optional field at its default.
    pub fn new(
        origin: impl Into<String>,
        camera_id: i64,
        source: impl Into<String>,
        spool_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            name: None,
            origin: origin.into(),
            camera_id,
            token_file: None,
            token_env: None,
            source: source.into(),
            username: None,
            password_file: None,
            password_env: None,
            spool_dir: spool_dir.into(),
            spool_limit_bytes: default_spool_limit(),
            blank_frames: FramePolicy::default(),
            frozen_frames: FramePolicy::default(),
            blank_luma_stddev: default_blank_stddev(),
            frozen_after: default_frozen_after(),
            taken_files: TakenFiles::default(),
            capture_time: CaptureTime::default(),
            folder_settle_ms: default_settle_ms(),
            stream_fps: default_stream_fps(),
            reconnect_max_seconds: default_reconnect_max(),
            upload_max_backoff_seconds: default_upload_max(),
            heartbeat_seconds: default_heartbeat(),
            ffmpeg: None,
        }
    }
}

/// A config that cannot be used: which camera, which field, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{camera}: {field}: {message}")]
pub struct ConfigError {
    /// `camera 3 "garden"`, or `config` for the file as a whole.
    pub camera: String,
    /// The field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// User name and password for a source.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Where frames come from.
#[derive(Clone, Debug)]
pub enum SourceSpec {
    /// An RTSP stream (ffmpeg; credentials inside the URL, as ffmpeg takes them).
    Rtsp {
        /// The URL given to ffmpeg (may hold credentials: never log it, see [`Self::shown`]).
        url: Url,
    },
    /// An HTTP(S) snapshot URL.
    Snapshot {
        /// The URL without credentials.
        url: Url,
        /// Basic or digest credentials.
        credentials: Option<Credentials>,
    },
    /// A V4L2 device.
    V4l2 {
        /// `/dev/videoN`.
        device: PathBuf,
    },
    /// A folder a camera uploads into.
    Folder {
        /// The folder.
        path: PathBuf,
    },
}

impl SourceSpec {
    /// The source as it may be shown: credentials replaced by `***`.
    pub fn shown(&self) -> String {
        match self {
            SourceSpec::Rtsp { url } | SourceSpec::Snapshot { url, .. } => redact(url.as_str()),
            SourceSpec::V4l2 { device } => format!("v4l2://{}", device.display()),
            SourceSpec::Folder { path } => format!("dir://{}", path.display()),
        }
    }

    /// The protocol's name in status messages ("RTSP: connection refused").
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Rtsp { .. } => "RTSP",
            SourceSpec::Snapshot { .. } => "HTTP snapshot",
            SourceSpec::V4l2 { .. } => "V4L2",
            SourceSpec::Folder { .. } => "folder",
        }
    }
}

/// A camera ready to run: secrets read, source parsed, every number checked.
#[derive(Clone, Debug)]
pub struct Camera {
    /// For logs: `camera 3 "garden"`.
    pub label: String,
    /// The origin's base URL, without a trailing slash.
    pub origin: Url,
    /// The camera's id.
    pub camera_id: i64,
    /// The upload token.
    pub token: Token,
    /// The source.
    pub source: SourceSpec,
    /// The spool directory.
    pub spool_dir: PathBuf,
    /// The spool bound.
    pub spool_limit_bytes: u64,
    /// Blank frames.
    pub blank_frames: FramePolicy,
    /// Frozen frames.
    pub frozen_frames: FramePolicy,
    /// Blank threshold.
    pub blank_luma_stddev: f64,
    /// Frozen threshold.
    pub frozen_after: u32,
    /// Folder: taken files.
    pub taken_files: TakenFiles,
    /// Folder: capture time.
    pub capture_time: CaptureTime,
    /// Folder: settle time.
    pub folder_settle: Duration,
    /// Stream: frame rate handed over by ffmpeg.
    pub stream_fps: f64,
    /// Stream: longest reconnect wait.
    pub reconnect_max: Duration,
    /// Longest upload retry wait.
    pub upload_max_backoff: Duration,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
}

/// A camera's upload token; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            camera: "config".into(),
            field: path.display().to_string(),
            message: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text).map_err(|mut e| {
            e.field = format!("{}: {}", path.display(), e.field);
            e
        })
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError {
            camera: "config".into(),
            field: "TOML".into(),
            message: e.to_string().trim().replace('\n', " "),
        })
    }

    /// Every camera resolved; the first error is returned.
    pub fn resolve(&self) -> Result<Vec<Camera>, ConfigError> {
        if self.cameras.is_empty() {
            return Err(ConfigError {
                camera: "config".into(),
                field: "camera".into(),
                message: "no [[camera]] table: nothing to record".into(),
            });
        }
        let mut spools = HashSet::new();
        let mut cameras = Vec::new();
        for camera in &self.cameras {
            let camera = camera.resolve()?;
            if !spools.insert(camera.spool_dir.clone()) {
                return Err(ConfigError {
                    camera: camera.label,
                    field: "spool_dir".into(),
                    message: format!(
                        "{} is another camera's spool too: each camera needs its own",
                        camera.spool_dir.display()
                    ),
                });
            }
            cameras.push(camera);
        }
        Ok(cameras)
    }
}

impl CameraConfig {
    /// The label used in messages.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("camera {} {name:?}", self.camera_id),
            None => format!("camera {}", self.camera_id),
        }
    }

    /// Reads the secrets and checks every field.
    pub fn resolve(&self) -> Result<Camera, ConfigError> {
        let label = self.label();
        let fail = |field: &str, message: String| ConfigError {
            camera: label.clone(),
            field: field.to_owned(),
            message,
        };
        let mut origin = Url::parse(&self.origin)
            .map_err(|e| fail("origin", format!("{:?} is not a URL: {e}", self.origin)))?;
        if !matches!(origin.scheme(), "http" | "https") {
            return Err(fail(
                "origin",
                format!(
                    "must be an http:// or https:// URL, not {}",
                    origin.scheme()
                ),
            ));
        }
        if !origin.username().is_empty() || origin.password().is_some() {
            return Err(fail(
                "origin",
                "must not hold credentials: the camera's token authenticates the agent".into(),
            ));
        }
        let trimmed = origin.path().trim_end_matches('/').to_owned();
        origin.set_path(&trimmed);
        if self.camera_id <= 0 {
            return Err(fail("camera_id", "must be a positive integer".into()));
        }
        let token = secret(
            &label,
            ("token_file", self.token_file.as_deref()),
            ("token_env", self.token_env.as_deref()),
        )?
        .ok_or_else(|| {
            fail(
                "token_file",
                "the camera's token is needed: set token_file (a file holding it) or token_env \
                 (an environment variable holding it)"
                    .into(),
            )
        })?;
        let password = secret(
            &label,
            ("password_file", self.password_file.as_deref()),
            ("password_env", self.password_env.as_deref()),
        )?;
        let source = self.source_spec(password).map_err(|m| fail("source", m))?;
        if self.spool_limit_bytes < 1 << 20 {
            return Err(fail(
                "spool_limit_bytes",
                "must be at least 1048576 (1 MiB)".into(),
            ));
        }
        if !(self.stream_fps > 0.0 && self.stream_fps <= 30.0) {
            return Err(fail("stream_fps", "must be above 0 and at most 30".into()));
        }
        if !(self.blank_luma_stddev >= 0.0 && self.blank_luma_stddev < 128.0) {
            return Err(fail("blank_luma_stddev", "must be 0 to 128".into()));
        }
        if self.frozen_after < 2 {
            return Err(fail(
                "frozen_after",
                "must be at least 2 (frames in a row)".into(),
            ));
        }
        for (field, value) in [
            ("reconnect_max_seconds", self.reconnect_max_seconds),
            (
                "upload_max_backoff_seconds",
                self.upload_max_backoff_seconds,
            ),
            ("heartbeat_seconds", self.heartbeat_seconds),
        ] {
            if !(1..=3600).contains(&value) {
                return Err(fail(field, "must be 1 to 3600 seconds".into()));
            }
        }
        if self.spool_dir.as_os_str().is_empty() {
            return Err(fail("spool_dir", "must not be empty".into()));
        }
        Ok(Camera {
            label,
            origin,
            camera_id: self.camera_id,
            token: Token(token),
            source,
            spool_dir: self.spool_dir.clone(),
            spool_limit_bytes: self.spool_limit_bytes,
            blank_frames: self.blank_frames,
            frozen_frames: self.frozen_frames,
            blank_luma_stddev: self.blank_luma_stddev,
            frozen_after: self.frozen_after,
            taken_files: self.taken_files,
            capture_time: self.capture_time,
            folder_settle: Duration::from_millis(self.folder_settle_ms),
            stream_fps: self.stream_fps,
            reconnect_max: Duration::from_secs(self.reconnect_max_seconds),
            upload_max_backoff: Duration::from_secs(self.upload_max_backoff_seconds),
            heartbeat: Duration::from_secs(self.heartbeat_seconds),
            ffmpeg: self.ffmpeg.clone().unwrap_or_else(|| "ffmpeg".into()),
        })
    }

    fn source_spec(&self, password: Option<String>) -> Result<SourceSpec, String> {
        let shown = redact(&self.source);
        let mut url = Url::parse(&self.source).map_err(|e| {
            format!(
                "{shown:?} is not a URL ({e}); use rtsp://, rtsps://, http://, https://, \
                 v4l2:///dev/videoN or dir:///path"
            )
        })?;
        let credentials = match (&self.username, password) {
            (Some(username), Some(password)) => Some(Credentials {
                username: username.clone(),
                password,
            }),
            (Some(username), None) => Some(Credentials {
                username: username.clone(),
                password: String::new(),
            }),
            (None, Some(_)) => {
                return Err("a password is set but no username".into());
            }
            (None, None) if !url.username().is_empty() => Some(Credentials {
                username: percent_decode(url.username()),
                password: percent_decode(url.password().unwrap_or("")),
            }),
            (None, None) => None,
        };
        match url.scheme() {
            "rtsp" | "rtsps" => {
                if url.host_str().is_none() {
                    return Err(format!("{shown} has no host"));
                }
                if let Some(c) = &credentials {
                    // ffmpeg takes RTSP credentials only inside the URL.
                    url.set_username(&c.username)
                        .and_then(|()| url.set_password(Some(&c.password)))
                        .map_err(|()| format!("{shown}: cannot carry credentials"))?;
                }
                Ok(SourceSpec::Rtsp { url })
            }
            "http" | "https" => {
                if url.host_str().is_none() {
                    return Err(format!("{shown} has no host"));
                }
                let _ = url.set_username("");
                let _ = url.set_password(None);
                Ok(SourceSpec::Snapshot { url, credentials })
            }
            "v4l2" => {
                let device = PathBuf::from(url.path());
                if !device.starts_with("/dev") {
                    return Err(format!(
                        "{shown}: a V4L2 source is a device path such as v4l2:///dev/video0"
                    ));
                }
                Ok(SourceSpec::V4l2 { device })
            }
            "dir" => {
                let path = PathBuf::from(percent_decode(url.path()));
                if !path.is_absolute() || url.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(format!(
                        "{shown}: a folder source is an absolute path such as dir:///srv/ftp/cam1"
                    ));
                }
                Ok(SourceSpec::Folder { path })
            }
            other => Err(format!(
                "{other}:// is not a source this agent reads; use rtsp://, rtsps://, http://, \
                 https://, v4l2:///dev/videoN or dir:///path"
            )),
        }
    }
}

/// A secret from a file or an environment variable (at most one of them), trimmed.
fn secret(
    label: &str,
    (file_field, file): (&str, Option<&Path>),
    (env_field, env): (&str, Option<&str>),
) -> Result<Option<String>, ConfigError> {
    let fail = |field: &str, message: String| ConfigError {
        camera: label.to_owned(),
        field: field.to_owned(),
        message,
    };
    let value = match (file, env) {
        (Some(_), Some(_)) => {
            return Err(fail(
                file_field,
                format!("set {file_field} or {env_field}, not both"),
            ))
        }
        (Some(path), None) => std::fs::read_to_string(path)
            .map_err(|e| fail(file_field, format!("cannot read {}: {e}", path.display())))?,
        (None, Some(name)) => std::env::var(name).map_err(|_| {
            fail(
                env_field,
                format!("the environment variable {name} is not set"),
            )
        })?,
        (None, None) => return Ok(None),
    };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(fail(
            if file.is_some() {
                file_field
            } else {
                env_field
            },
            "is empty".into(),
        ));
    }
    Ok(Some(value))
}

/// Percent-decoding of a URL component (userinfo, path), bytes kept as UTF-8 lossily.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(byte) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_file() -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "secret-token\n").unwrap();
        file
    }

    fn camera(source: &str, token: &Path) -> CameraConfig {
        let mut c = CameraConfig::new("http://127.0.0.1:8000/", 3, source, "/var/spool/x");
        c.token_file = Some(token.to_owned());
        c
    }

    #[test]
    fn a_file_with_two_cameras_resolves() {
        let token = token_file();
        let text = format!(
            r#"
            [[camera]]
            name = "garden"
            origin = "https://timelapser.example.org"
            camera_id = 3
            token_file = "{0}"
            source = "rtsp://viewer:pa%40ss@192.0.2.10:554/stream1"
            spool_dir = "/var/spool/timelapser-agent/garden"
            spool_limit_bytes = 2_000_000_000
            blank_frames = "skip"

            [[camera]]
            origin = "https://timelapser.example.org"
            camera_id = 4
            token_file = "{0}"
            source = "dir:///srv/ftp/cam4"
            spool_dir = "/var/spool/timelapser-agent/cam4"
            taken_files = "delete"
            capture_time = "schedule"
            "#,
            token.path().display()
        );
        let cameras = FileConfig::parse(&text).unwrap().resolve().unwrap();
        assert_eq!(cameras.len(), 2);
        assert_eq!(cameras[0].label, "camera 3 \"garden\"");
        assert_eq!(cameras[0].token, Token("secret-token".into()));
        assert_eq!(cameras[0].blank_frames, FramePolicy::Skip);
        assert_eq!(
            cameras[0].source.shown(),
            "rtsp://***@192.0.2.10:554/stream1"
        );
        assert!(!format!("{:?}", cameras[0]).contains("secret-token"));
        match &cameras[1].source {
            SourceSpec::Folder { path } => assert_eq!(path, Path::new("/srv/ftp/cam4")),
            other => panic!("{other:?}"),
        }
        assert_eq!(cameras[1].taken_files, TakenFiles::Delete);
        assert_eq!(
            cameras[1].origin.as_str(),
            "https://timelapser.example.org/"
        );
    }

    #[test]
    fn snapshot_credentials_leave_the_url() {
        let token = token_file();
        let camera = camera("http://admin:pw%21@cam.local/snap.jpg", token.path())
            .resolve()
            .unwrap();
        match camera.source {
            SourceSpec::Snapshot { url, credentials } => {
                assert_eq!(url.as_str(), "http://cam.local/snap.jpg");
                let c = credentials.unwrap();
                assert_eq!((c.username.as_str(), c.password.as_str()), ("admin", "pw!"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rtsp_credentials_from_fields_go_into_the_url_for_ffmpeg() {
        let token = token_file();
        let password = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(password.path(), "p@ss word\n").unwrap();
        let mut c = camera("rtsp://192.0.2.10/live", token.path());
        c.username = Some("viewer".into());
        c.password_file = Some(password.path().to_owned());
        let camera = c.resolve().unwrap();
        match &camera.source {
            SourceSpec::Rtsp { url } => {
                assert_eq!(url.username(), "viewer");
                assert_eq!(url.password(), Some("p%40ss%20word"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(camera.source.shown(), "rtsp://***@192.0.2.10/live");
    }

    #[test]
    fn each_mistake_names_its_field() {
        let token = token_file();
        let cases: Vec<(CameraConfig, &str)> = vec![
            (camera("ftp://cam/x", token.path()), "source"),
            (camera("v4l2://video0", token.path()), "source"),
            (camera("dir://relative/path", token.path()), "source"),
            (
                CameraConfig::new("http://o", 3, "rtsp://h/x", "/s"),
                "token_file",
            ),
            (
                {
                    let mut c = camera("rtsp://h/x", token.path());
                    c.origin = "ftp://o".into();
                    c
                },
                "origin",
            ),
            (
                {
                    let mut c = camera("rtsp://h/x", token.path());
                    c.camera_id = 0;
                    c
                },
                "camera_id",
            ),
            (
                {
                    let mut c = camera("rtsp://h/x", token.path());
                    c.token_env = Some("X".into());
                    c
                },
                "token_file",
            ),
            (
                {
                    let mut c = camera("rtsp://h/x", token.path());
                    c.token_file = None;
                    c.token_env = Some("TIMELAPSER_AGENT_TEST_SURELY_UNSET".into());
                    c
                },
                "token_env",
            ),
            (
                {
                    let mut c = camera("rtsp://h/x", token.path());
                    c.spool_limit_bytes = 10;
                    c
                },
                "spool_limit_bytes",
            ),
            (
                {
                    let mut c = camera("rtsp://h/x", token.path());
                    c.stream_fps = 0.0;
                    c
                },
                "stream_fps",
            ),
        ];
        for (config, field) in cases {
            let error = config.resolve().unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
    }

    #[test]
    fn two_cameras_may_not_share_a_spool() {
        let token = token_file();
        let config = FileConfig {
            cameras: vec![
                camera("rtsp://a/x", token.path()),
                camera("rtsp://b/x", token.path()),
            ],
        };
        assert_eq!(config.resolve().unwrap_err().field, "spool_dir");
    }

    #[test]
    fn the_example_config_parses_and_holds_no_secret() {
        let text = include_str!("../agent.example.toml");
        let config = FileConfig::parse(text).unwrap();
        assert_eq!(config.cameras.len(), 4);
        assert!(config
            .cameras
            .iter()
            .all(|c| c.token_file.is_some() != c.token_env.is_some()));
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let error = FileConfig::parse("[[camera]]\ntoken = \"literal\"\n").unwrap_err();
        assert!(error.message.contains("token"), "{error}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%41%4a"), "AJ");
    }
}
