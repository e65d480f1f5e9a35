//! RTSP and V4L2 cameras: one long-lived ffmpeg per camera, decoding the stream and handing
//! over JPEGs at a modest rate on its stdout; the latest is kept, and a scheduled instant takes
//! it if it is fresh. Opening a session costs seconds (connect, then wait for a key frame), so
//! a session is kept, never opened per frame.
//!
//! A session that ends, fails or stalls (no frame for two intervals, at least 5 s) is killed
//! and restarted after an exponential backoff with jitter, for as long as the agent runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::mjpeg::MjpegSplitter;
use super::{Frame, Source, SourceError};
use crate::backoff::Backoff;
use crate::config::{Camera, SourceSpec};
use crate::metrics::CameraMetrics;
use crate::redact::redact;

/// The longest a new session may take to its first frame (connect, DESCRIBE, a key frame).
const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(20);

/// The shortest stall timeout.
const MIN_STALL: Duration = Duration::from_secs(5);

/// The longest stall timeout, however long the interval: frames flow at `stream_fps`
/// whatever the schedule, so a stream silent for this long is dead.
const MAX_STALL: Duration = Duration::from_secs(60);

/// The first reconnection wait.
const FIRST_RECONNECT: Duration = Duration::from_secs(1);

/// ffmpeg's stderr lines kept to explain why a session ended.
const STDERR_LINES: usize = 20;

/// The ffmpeg arguments that read `source` and write JPEGs to stdout at `fps` frames a
/// second. For `check`, `one_frame` writes the first frame only.
pub fn ffmpeg_args(source: &SourceSpec, fps: f64, one_frame: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-hide_banner", "-nostdin", "-loglevel", "error"]
        .map(OsString::from)
        .to_vec();
    match source {
        SourceSpec::Rtsp { url } => {
            // TCP: no lost UDP packets smearing frames, and it passes NAT and firewalls.
            args.extend(["-rtsp_transport", "tcp", "-i"].map(OsString::from));
            args.push(url.as_str().into());
        }
        SourceSpec::V4l2 { device } => {
            args.extend(["-f", "v4l2", "-i"].map(OsString::from));
            args.push(device.as_os_str().to_owned());
        }
        SourceSpec::Snapshot { .. } | SourceSpec::Folder { .. } => {
            unreachable!("ffmpeg reads streams only")
        }
    }
    args.extend(["-an", "-sn", "-dn"].map(OsString::from));
    if one_frame {
        args.extend(["-frames:v", "1"].map(OsString::from));
    } else {
        args.extend(["-vf".into(), format!("fps={fps}").into()]);
    }
    args.extend(
        [
            "-c:v",
            "mjpeg",
            "-pix_fmt",
            "yuvj420p",
            "-q:v",
            "3",
            "-f",
            "image2pipe",
            "pipe:1",
        ]
        .map(OsString::from),
    );
    args
}

/// The stall timeout for an interval: two intervals, within 5 s to 60 s, and never less than
/// three frame periods.
pub fn stall_timeout(interval: Duration, fps: f64) -> Duration {
    (interval * 2)
        .clamp(MIN_STALL, MAX_STALL)
        .max(Duration::from_secs_f64(3.0 / fps))
}

/// What the session keeps for the capture loop.
#[derive(Clone, Debug, Default)]
struct StreamState {
    /// The latest frame and when it arrived.
    latest: Option<(Instant, Bytes)>,
    /// Why there is no session, while there is none.
    error: Option<String>,
    /// A first frame or a first failure has happened.
    opened: bool,
}

/// A stream source: the session runs in its own task from [`StreamSource::start`] until the
/// source is dropped (which kills ffmpeg).
pub struct StreamSource {
    state: watch::Receiver<StreamState>,
    stall_ms: Arc<AtomicU64>,
    fresh_within: Duration,
    fps: f64,
    kind: &'static str,
    session: JoinHandle<()>,
}

impl Drop for StreamSource {
    fn drop(&mut self) {
        self.session.abort();
    }
}

/// How to run ffmpeg for a camera.
#[derive(Clone, Debug)]
struct Session {
    program: PathBuf,
    args: Vec<OsString>,
    kind: &'static str,
    device: Option<PathBuf>,
    label: String,
}

impl StreamSource {
    /// Starts the camera's session.
    pub fn start(camera: &Camera, metrics: CameraMetrics) -> Self {
        let (tx, state) = watch::channel(StreamState::default());
        let stall_ms = Arc::new(AtomicU64::new(
            stall_timeout(Duration::from_secs(60), camera.stream_fps).as_millis() as u64,
        ));
        let session = Session {
            program: camera.ffmpeg.clone(),
            args: ffmpeg_args(&camera.source, camera.stream_fps, false),
            kind: camera.source.kind(),
            device: match &camera.source {
                SourceSpec::V4l2 { device } => Some(device.clone()),
                _ => None,
            },
            label: camera.label.clone(),
        };
        let task = tokio::spawn(keep_streaming(
            session,
            tx,
            stall_ms.clone(),
            camera.reconnect_max,
            metrics,
        ));
        Self {
            state,
            stall_ms,
            fresh_within: Duration::from_secs_f64((2.0 / camera.stream_fps).max(2.0)),
            fps: camera.stream_fps,
            kind: camera.source.kind(),
            session: task,
        }
    }

    fn fresh_frame(&self, state: &StreamState) -> Option<Bytes> {
        state
            .latest
            .as_ref()
            .filter(|(at, _)| at.elapsed() <= self.fresh_within)
            .map(|(_, jpeg)| jpeg.clone())
    }
}

impl Source for StreamSource {
    fn capture(&mut self, at: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Frame>, SourceError>> {
        Box::pin(async move {
            let frame = |jpeg| {
                Ok(vec![Frame {
                    jpeg,
                    captured_at: at,
                    file: None,
                }])
            };
            let mut state = self.state.clone();
            if let Some(jpeg) = self.fresh_frame(&state.borrow_and_update()) {
                return frame(jpeg);
            }
            // No fresh frame: wait a little for the next one (a session just reconnected).
            let deadline = Instant::now() + self.fresh_within;
            loop {
                match tokio::time::timeout_at(deadline, state.changed()).await {
                    Ok(Ok(())) => {
                        if let Some(jpeg) = self.fresh_frame(&state.borrow_and_update()) {
                            return frame(jpeg);
                        }
                    }
                    Ok(Err(_)) => {
                        return Err(SourceError(format!("{}: the session ended", self.kind)))
                    }
                    Err(_) => {
                        let state = state.borrow();
                        if !state.opened {
                            return Ok(Vec::new());
                        }
                        return Err(SourceError(state.error.clone().unwrap_or_else(|| {
                            format!(
                                "{}: no frame for {} s",
                                self.kind,
                                state
                                    .latest
                                    .as_ref()
                                    .map_or(0, |(at, _)| at.elapsed().as_secs())
                            )
                        })));
                    }
                }
            }
        })
    }

    fn opened(&self) -> bool {
        self.state.borrow().opened
    }

    fn set_interval(&mut self, interval: Duration) {
        let stall = stall_timeout(interval, self.fps);
        self.stall_ms
            .store(stall.as_millis() as u64, Ordering::Relaxed);
    }
}

/// Runs sessions one after another for as long as the source lives.
async fn keep_streaming(
    session: Session,
    state: watch::Sender<StreamState>,
    stall_ms: Arc<AtomicU64>,
    reconnect_max: Duration,
    metrics: CameraMetrics,
) {
    let mut backoff = Backoff::new(FIRST_RECONNECT, reconnect_max);
    loop {
        let ended = run_session(&session, &state, &stall_ms).await;
        if ended.frames > 0 {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::warn!(
            camera = %session.label,
            frames = ended.frames,
            "{}; reconnecting in {:.1} s",
            ended.message,
            delay.as_secs_f64()
        );
        state.send_modify(|s| {
            s.error = Some(ended.message);
            s.opened = true;
        });
        metrics.reconnects.increment(1);
        tokio::time::sleep(delay).await;
    }
}

/// How a session ended.
struct SessionEnd {
    frames: u64,
    message: String,
}

/// One ffmpeg, from start to exit (or kill).
async fn run_session(
    session: &Session,
    state: &watch::Sender<StreamState>,
    stall_ms: &AtomicU64,
) -> SessionEnd {
    let kind = session.kind;
    let mut child = match Command::new(&session.program)
        .args(&session.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            return SessionEnd {
                frames: 0,
                message: spawn_error(kind, &session.program, &e),
            }
        }
    };
    let stderr = child.stderr.take().map(|stderr| {
        let label = session.label.clone();
        tokio::spawn(read_stderr(stderr, label))
    });
    let Some(mut stdout) = child.stdout.take() else {
        return SessionEnd {
            frames: 0,
            message: format!("{kind}: ffmpeg's output is not readable"),
        };
    };
    let mut splitter = MjpegSplitter::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut frames = 0u64;
    let mut last_frame = Instant::now();
    let stalled = loop {
        let stall = Duration::from_millis(stall_ms.load(Ordering::Relaxed));
        let limit = if frames == 0 {
            FIRST_FRAME_WITHIN.max(stall)
        } else {
            stall
        };
        match tokio::time::timeout_at(last_frame + limit, stdout.read(&mut buffer)).await {
            Err(_) => {
                break Some(format!(
                    "{kind}: the stream stalled (no frame for {} s)",
                    limit.as_secs()
                ))
            }
            Ok(Ok(0)) => break None,
            Ok(Ok(n)) => {
                for jpeg in splitter.push(&buffer[..n]) {
                    frames += 1;
                    last_frame = Instant::now();
                    state.send_modify(|s| {
                        s.latest = Some((last_frame, jpeg));
                        s.error = None;
                        s.opened = true;
                    });
                }
            }
            Ok(Err(e)) => break Some(format!("{kind}: reading ffmpeg's output: {e}")),
        }
    };
    let _ = child.start_kill();
    let status = child.wait().await.ok();
    let lines = match stderr {
        Some(task) => task.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let explained = explain(kind, session.device.as_deref(), &lines);
    let message = match (stalled, explained) {
        // What ffmpeg said beats "stalled" (a connection that timed out also stalls).
        (_, Some(explained)) => explained,
        (Some(stalled), None) => stalled,
        (None, None) => match lines.last() {
            Some(last) => format!("{kind}: the stream ended ({last})"),
            None => format!(
                "{kind}: the stream ended (ffmpeg {})",
                status.map_or("was killed".into(), |s| s.to_string())
            ),
        },
    };
    SessionEnd { frames, message }
}

/// ffmpeg's stderr, redacted, logged at debug and the last lines kept.
async fn read_stderr(stderr: tokio::process::ChildStderr, label: String) -> Vec<String> {
    let mut lines = BufReader::new(stderr).lines();
    let mut kept = std::collections::VecDeque::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = redact(line.trim());
        if line.is_empty() {
            continue;
        }
        tracing::debug!(camera = %label, "ffmpeg: {line}");
        if kept.len() == STDERR_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
    kept.into()
}

fn spawn_error(kind: &str, program: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!(
            "{kind}: ffmpeg was not found ({}): install Debian's ffmpeg package",
            program.display()
        )
    } else {
        format!("{kind}: cannot start ffmpeg ({}): {e}", program.display())
    }
}

/// What ffmpeg's last words mean, when they say something a person can act on.
pub fn explain(kind: &str, device: Option<&Path>, lines: &[String]) -> Option<String> {
    let text = lines.join("\n").to_lowercase();
    let has = |needle: &str| text.contains(needle);
    let what = if has("401 unauthorized") || has("authorization failed") {
        "wrong credentials (401 Unauthorized)".to_owned()
    } else if has("403 forbidden") {
        "access forbidden (403 Forbidden)".to_owned()
    } else if has("404 not found") {
        "no such stream on the camera (404 Not Found)".to_owned()
    } else if has("503 service unavailable") {
        "the camera's server failed (503 Service Unavailable)".to_owned()
    } else if has("connection refused") {
        "connection refused".to_owned()
    } else if has("connection timed out") {
        "connection timed out".to_owned()
    } else if has("no route to host") {
        "no route to host".to_owned()
    } else if has("network is unreachable") {
        "network unreachable".to_owned()
    } else if has("name or service not known")
        || has("temporary failure in name resolution")
        || has("failed to resolve hostname")
    {
        "cannot resolve the camera's host name".to_owned()
    } else if has("connection reset") || has("broken pipe") {
        "the connection was reset".to_owned()
    } else if has("no such file or directory") {
        match device {
            Some(device) => format!(
                "{} does not exist (is the camera plugged in?)",
                device.display()
            ),
            None => "no such file or directory".to_owned(),
        }
    } else if has("device or resource busy") {
        "the device is busy (another program is using it)".to_owned()
    } else if has("permission denied") {
        "permission denied (is the agent's user in the video group?)".to_owned()
    } else if has("invalid data found") {
        "the stream is not video that ffmpeg can decode".to_owned()
    } else {
        return None;
    };
    Some(format!("{kind}: {what}"))
}

/// One frame from a camera's stream, for `check`: ffmpeg run once, at most 20 s.
pub async fn probe(camera: &Camera) -> Result<Bytes, SourceError> {
    let kind = camera.source.kind();
    if let SourceSpec::V4l2 { device } = &camera.source {
        if !device.exists() {
            return Err(SourceError(format!(
                "{kind}: {} does not exist (is the camera plugged in?)",
                device.display()
            )));
        }
    }
    let output = Command::new(&camera.ffmpeg)
        .args(ffmpeg_args(&camera.source, camera.stream_fps, true))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(FIRST_FRAME_WITHIN, output).await {
        Err(_) => {
            return Err(SourceError(format!(
                "{kind}: no frame within {} s",
                FIRST_FRAME_WITHIN.as_secs()
            )))
        }
        Ok(Err(e)) => return Err(SourceError(spawn_error(kind, &camera.ffmpeg, &e))),
        Ok(Ok(output)) => output,
    };
    if let Some(jpeg) = MjpegSplitter::new().push(&output.stdout).into_iter().next() {
        return Ok(jpeg);
    }
    let lines: Vec<String> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|l| redact(l.trim()))
        .filter(|l| !l.is_empty())
        .collect();
    let device = match &camera.source {
        SourceSpec::V4l2 { device } => Some(device.as_path()),
        _ => None,
    };
    Err(SourceError(explain(kind, device, &lines).unwrap_or_else(
        || match lines.last() {
            Some(last) => format!("{kind}: no frame ({last})"),
            None => format!("{kind}: no frame (ffmpeg {})", output.status),
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(source: SourceSpec) -> Vec<String> {
        ffmpeg_args(&source, 0.5, false)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn rtsp_is_read_over_tcp_and_written_as_jpegs_at_the_frame_rate() {
        let url = reqwest::Url::parse("rtsp://u:p@192.0.2.1:554/live").unwrap();
        let args = args(SourceSpec::Rtsp { url });
        let line = args.join(" ");
        assert!(
            line.contains("-rtsp_transport tcp -i rtsp://u:p@192.0.2.1:554/live"),
            "{line}"
        );
        assert!(line.contains("-vf fps=0.5"), "{line}");
        assert!(line.ends_with("-c:v mjpeg -pix_fmt yuvj420p -q:v 3 -f image2pipe pipe:1"));
    }

    #[test]
    fn v4l2_reads_the_device() {
        let args = args(SourceSpec::V4l2 {
            device: "/dev/video2".into(),
        });
        let line = args.join(" ");
        assert!(line.contains("-f v4l2 -i /dev/video2 -an"), "{line}");
        assert!(!line.contains("rtsp"), "{line}");
    }

    #[test]
    fn ffmpeg_messages_become_status_messages() {
        let lines = |text: &str| text.lines().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            explain(
                "RTSP",
                None,
                &lines("[tcp @ 0x1] Connection to tcp://127.0.0.1:1?timeout=0 failed: Connection refused\nrtsp://***@127.0.0.1:1/x: Connection refused")
            ),
            Some("RTSP: connection refused".into())
        );
        assert_eq!(
            explain(
                "RTSP",
                None,
                &lines("[rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized")
            ),
            Some("RTSP: wrong credentials (401 Unauthorized)".into())
        );
        assert_eq!(
            explain(
                "V4L2",
                Some(Path::new("/dev/video7")),
                &lines("[video4linux2,v4l2 @ 0x1] Cannot open video device /dev/video7: No such file or directory")
            ),
            Some("V4L2: /dev/video7 does not exist (is the camera plugged in?)".into())
        );
        assert_eq!(explain("RTSP", None, &lines("something new")), None);
    }

    #[test]
    fn the_stall_timeout_follows_the_interval_within_bounds() {
        assert_eq!(stall_timeout(Duration::from_secs(1), 1.0), MIN_STALL);
        assert_eq!(
            stall_timeout(Duration::from_secs(10), 1.0),
            Duration::from_secs(20)
        );
        assert_eq!(stall_timeout(Duration::from_secs(3600), 1.0), MAX_STALL);
        assert_eq!(
            stall_timeout(Duration::from_secs(1), 0.1),
            Duration::from_secs(30)
        );
    }

    #[tokio::test]
    async fn check_names_a_missing_v4l2_device() {
        let token = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(token.path(), "t").unwrap();
        let mut config =
            crate::config::CameraConfig::new("http://o", 1, "v4l2:///dev/video97", "/tmp/s");
        config.token_file = Some(token.path().to_owned());
        let camera = config.resolve().unwrap();
        let error = probe(&camera).await.unwrap_err();
        assert_eq!(
            error.0,
            "V4L2: /dev/video97 does not exist (is the camera plugged in?)"
        );
    }
}
