//! Rendering timelapses into H.264 MP4 videos with Debian's ffmpeg, as a child process.
//!
//! A render reads its frames from a concat list file (paths of the stored originals, in capture
//! order; no frame is copied), writes a temp file, reports progress from ffmpeg's `-progress`
//! output (published as `video_progress`, at most [`PROGRESS_INTERVAL`] apart), then hashes the
//! file and renames it to `media/videos/<sha256>.mp4`: a finished video is just another
//! immutable, content-addressed file. A re-render is a new video with a new URL.
//!
//! Jobs survive restarts: the queue is the `videos` table; renders interrupted by a stop are
//! queued again at start (their temp files are removed with the rest of `tmp/`). A bounded
//! pool (one render at a time by default) runs them; cancelling one kills its ffmpeg.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use timelapser_core::events::Event;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::log_event;
use crate::db::{self, to_micros};
use crate::error::{Error, Result};
use crate::media::{MediaKind, MediaName};
use crate::state::AppState;

/// Progress events per video are at least this far apart (the last one always goes out).
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Frames per second when the request names none.
pub const DEFAULT_FPS: u32 = 24;

/// A running job: cancel it, and know when it has stopped.
#[derive(Clone)]
struct Job {
    cancel: CancellationToken,
    done: CancellationToken,
}

/// The render queue's handle, shared by the routes and the workers.
#[derive(Clone)]
pub struct Renderer {
    ffmpeg: Option<PathBuf>,
    queue: mpsc::UnboundedSender<i64>,
    jobs: Arc<Mutex<HashMap<i64, Job>>>,
}

/// The receiving end of the queue, for [`spawn_workers`].
pub struct Queue(mpsc::UnboundedReceiver<i64>);

/// Finds ffmpeg (`TIMELAPSER_FFMPEG`, else `ffmpeg` on PATH): `None`, with a warning, when it
/// is not installed; renders are then refused with 503 instead of failing later.
pub fn find_ffmpeg(configured: Option<&Path>) -> Option<PathBuf> {
    let candidate = configured
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("ffmpeg"));
    let works = std::process::Command::new(&candidate)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        Some(candidate)
    } else {
        tracing::warn!(ffmpeg = %candidate.display(), "ffmpeg is not available: videos cannot be rendered (install Debian's ffmpeg)");
        None
    }
}

impl Renderer {
    /// A renderer using `ffmpeg`, and its queue.
    pub fn new(ffmpeg: Option<PathBuf>) -> (Self, Queue) {
        let (queue, receiver) = mpsc::unbounded_channel();
        (
            Self {
                ffmpeg,
                queue,
                jobs: Arc::default(),
            },
            Queue(receiver),
        )
    }

    /// Whether renders can run.
    pub fn available(&self) -> bool {
        self.ffmpeg.is_some()
    }

    fn enqueue(&self, id: i64) {
        let _ = self.queue.send(id);
    }

    /// Cancels a running job and waits (a few seconds at most) until its ffmpeg is gone.
    async fn cancel(&self, id: i64) {
        let job = self.jobs.lock().expect("jobs lock").get(&id).cloned();
        if let Some(job) = job {
            job.cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), job.done.cancelled()).await;
        }
    }
}

/// Queues a render of a timelapse (`POST /api/timelapses/{id}/videos`).
pub async fn queue(
    state: &AppState,
    timelapse_id: i64,
    fps: Option<u32>,
) -> Result<timelapser_core::resources::Video> {
    let fps = fps.unwrap_or(DEFAULT_FPS);
    if !(1..=120).contains(&fps) {
        return Err(Error::Unprocessable("fps must be between 1 and 120".into()));
    }
    if !state.renderer.available() {
        return Err(Error::Unavailable(
            "ffmpeg is not installed on the origin; videos cannot be rendered".into(),
        ));
    }
    let now = to_micros(db::now());
    let mut tx = state.db.begin_write().await?;
    let timelapse = db::timelapses::get(&mut tx, timelapse_id)
        .await?
        .ok_or_else(|| Error::not_found("timelapse", timelapse_id))?;
    let frames = db::images::for_timelapse(&mut tx, timelapse_id)
        .await?
        .len() as i64;
    if frames == 0 {
        return Err(Error::Unprocessable(format!(
            "timelapse {timelapse_id} has no frames to render"
        )));
    }
    let video = db::videos::insert(
        &mut tx,
        timelapse_id,
        timelapse.camera_id,
        i64::from(fps),
        frames,
        now,
    )
    .await?
    .to_resource();
    let logged = log_event(
        &mut tx,
        Event::VideoQueued {
            video: video.clone(),
        },
        now,
    )
    .await?;
    state.events.commit(tx, vec![logged]).await?;
    state.renderer.enqueue(video.id);
    Ok(video)
}

/// Deletes a video (`DELETE /api/videos/{id}`): a queued or rendering one is cancelled (its
/// ffmpeg killed, its temp files removed, `video_failed` with "cancelled"); a ready one's file
/// goes unless another video has the same bytes.
pub async fn delete(state: &AppState, id: i64) -> Result<()> {
    let now = to_micros(db::now());
    let mut tx = state.db.begin_write().await?;
    let video = db::videos::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("video", id))?;
    let mut logged = Vec::new();
    if let Some(failed) = db::videos::set_failed(&mut tx, id, "cancelled", now).await? {
        logged.push(
            log_event(
                &mut tx,
                Event::VideoFailed {
                    video: failed.to_resource(),
                },
                now,
            )
            .await?,
        );
    }
    state.events.commit(tx, logged).await?;
    state.renderer.cancel(id).await;
    let mut tx = state.db.begin_write().await?;
    db::videos::delete(&mut tx, id).await?;
    let orphan = match &video.sha256 {
        Some(sha) if !db::videos::sha256_in_use(&mut tx, sha).await? => Some(sha.clone()),
        _ => None,
    };
    tx.commit().await?;
    if let Some(sha256) = orphan {
        let name = MediaName {
            kind: MediaKind::Video,
            sha256,
        };
        state.media_cache.forget(&name).await;
        state.media.remove(&name).await?;
    }
    Ok(())
}

/// Starts `workers` render workers, and queues again whatever a previous run left queued or
/// rendering.
pub async fn spawn_workers(
    state: AppState,
    queue: Queue,
    workers: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pending = {
        let mut tx = state.db.begin_write().await?;
        let ids = db::videos::requeue_interrupted(&mut tx, to_micros(db::now())).await?;
        tx.commit().await?;
        ids
    };
    if !pending.is_empty() {
        tracing::info!(?pending, "renders queued again after a restart");
    }
    for id in pending {
        state.renderer.enqueue(id);
    }
    let Queue(mut receiver) = queue;
    let permits = Arc::new(Semaphore::new(workers.max(1)));
    tokio::spawn(async move {
        loop {
            let id = tokio::select! {
                _ = shutdown.cancelled() => return,
                id = receiver.recv() => match id { Some(id) => id, None => return },
            };
            let permit = tokio::select! {
                _ = shutdown.cancelled() => return,
                permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            let state = state.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                run_job(&state, id, shutdown).await;
                drop(permit);
            });
        }
    });
    Ok(())
}

async fn run_job(state: &AppState, id: i64, shutdown: CancellationToken) {
    let job = Job {
        cancel: shutdown.child_token(),
        done: CancellationToken::new(),
    };
    state
        .renderer
        .jobs
        .lock()
        .expect("jobs lock")
        .insert(id, job.clone());
    let outcome = render(state, id, &job.cancel).await;
    let temps = temp_paths(state, id);
    for path in [&temps.0, &temps.1] {
        let _ = tokio::fs::remove_file(path).await;
    }
    state.renderer.jobs.lock().expect("jobs lock").remove(&id);
    job.done.cancel();
    match outcome {
        Ok(Outcome::Ready) | Ok(Outcome::Skipped) => {}
        Ok(Outcome::Interrupted) => {
            // Shutdown: left `rendering`, queued again at the next start.
            tracing::info!(video = id, "render interrupted by shutdown");
        }
        Err(reason) => {
            tracing::warn!(video = id, %reason, "render failed");
            if let Err(e) = record_end(state, id, End::Failed(&reason)).await {
                tracing::error!(video = id, error = %e, "could not record a failed render");
            }
        }
    }
}

enum Outcome {
    Ready,
    /// Not in flight any more (deleted or cancelled before it started).
    Skipped,
    /// Stopped by shutdown or cancellation.
    Interrupted,
}

/// How a render ended, as recorded.
enum End<'a> {
    Ready { bytes: u64, sha256: &'a str },
    Failed(&'a str),
}

/// Marks the video ready or failed and logs its event, in one transaction; nothing when the
/// video is no longer in flight (deleted meanwhile).
async fn record_end(state: &AppState, id: i64, end: End<'_>) -> Result<()> {
    let now = to_micros(db::now());
    let mut tx = state.db.begin_write().await?;
    let event = match end {
        End::Ready { bytes, sha256 } => {
            db::videos::set_ready(&mut tx, id, bytes as i64, sha256, now)
                .await?
                .map(|video| Event::VideoReady {
                    video: video.to_resource(),
                })
        }
        End::Failed(reason) => {
            db::videos::set_failed(&mut tx, id, reason, now)
                .await?
                .map(|video| Event::VideoFailed {
                    video: video.to_resource(),
                })
        }
    };
    let mut logged = Vec::new();
    if let Some(event) = event {
        logged.push(log_event(&mut tx, event, now).await?);
    }
    state.events.commit(tx, logged).await
}

fn temp_paths(state: &AppState, id: i64) -> (PathBuf, PathBuf) {
    let tmp = state.media.tmp_dir();
    (
        tmp.join(format!("render-{id}.txt")),
        tmp.join(format!("render-{id}.mp4")),
    )
}

/// Quotes a path for ffmpeg's concat list (`'` closes, `\'` is a quote, `'` reopens).
fn concat_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// Records progress and publishes `video_progress`; `false` when the video is no longer in
/// flight (cancelled).
async fn progress(state: &AppState, id: i64, value: f64) -> std::result::Result<bool, String> {
    let result: Result<bool> = async {
        let now = to_micros(db::now());
        let mut tx = state.db.begin_write().await?;
        let Some(video) =
            db::videos::set_progress(&mut tx, id, "rendering", value.clamp(0.0, 1.0), now).await?
        else {
            return Ok(false);
        };
        let logged = log_event(
            &mut tx,
            Event::VideoProgress {
                video: video.to_resource(),
            },
            now,
        )
        .await?;
        state.events.commit(tx, vec![logged]).await?;
        Ok(true)
    }
    .await;
    result.map_err(|e| format!("recording progress: {e}"))
}

async fn render(
    state: &AppState,
    id: i64,
    cancel: &CancellationToken,
) -> std::result::Result<Outcome, String> {
    let ffmpeg = state
        .renderer
        .ffmpeg
        .clone()
        .ok_or("ffmpeg is not installed")?;
    let (video, frames) = {
        let mut conn = state.db.pool().acquire().await.map_err(|e| e.to_string())?;
        let Some(video) = db::videos::get(&mut conn, id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(Outcome::Skipped);
        };
        if video.status != "queued" && video.status != "rendering" {
            return Ok(Outcome::Skipped);
        }
        let frames = db::images::for_timelapse(&mut conn, video.timelapse_id)
            .await
            .map_err(|e| e.to_string())?;
        (video, frames)
    };
    let first = frames.first().ok_or("the timelapse has no frames")?;
    if !progress(state, id, 0.0).await? {
        return Ok(Outcome::Skipped);
    }
    let (list, output) = temp_paths(state, id);
    let mut lines = String::new();
    for frame in &frames {
        let path = state.media.path(&MediaName {
            kind: MediaKind::Image,
            sha256: frame.sha256.clone(),
        });
        // ffmpeg's concat demuxer skips a file it cannot open and carries on; a video with a
        // frame silently missing is not what was asked for.
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Err(format!(
                "frame {} (image {}) is missing from the media directory",
                frame.sha256, frame.id
            ));
        }
        lines.push_str(&format!("file {}\n", concat_quote(&path)));
    }
    tokio::fs::write(&list, lines)
        .await
        .map_err(|e| format!("writing the frame list: {e}"))?;
    // yuv420p and even dimensions, so that every browser plays it; +faststart puts the index
    // first, so playback and seeking start before the whole file has arrived.
    let (width, height) = ((first.width.max(2) / 2) * 2, (first.height.max(2) / 2) * 2);
    let fps = video.fps.to_string();
    let mut child = tokio::process::Command::new(&ffmpeg)
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-xerror"])
        .args(["-f", "concat", "-safe", "0", "-r", &fps, "-i"])
        .arg(&list)
        .args(["-vf", &format!("scale={width}:{height},format=yuv420p")])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-r",
            &fps,
            "-movflags",
            "+faststart",
        ])
        .args(["-progress", "pipe:1", "-nostats", "-y"])
        .arg(&output)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start ffmpeg: {e}"))?;
    let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut stderr = child.stderr.take().expect("piped");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let total = video.frame_count.max(1) as f64;
    let mut last_sent = Instant::now() - PROGRESS_INTERVAL;
    let mut last_value = 0.0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = child.kill().await;
                return Ok(Outcome::Interrupted);
            }
            line = stdout.next_line() => match line {
                Ok(Some(line)) => {
                    if let Some(frame) = line.strip_prefix("frame=").and_then(|v| v.trim().parse::<f64>().ok()) {
                        let value = (frame / total).min(0.99);
                        if value > last_value && last_sent.elapsed() >= PROGRESS_INTERVAL {
                            last_value = value;
                            last_sent = Instant::now();
                            if !progress(state, id, value).await? {
                                let _ = child.kill().await;
                                return Ok(Outcome::Interrupted);
                            }
                        }
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
    let status = tokio::select! {
        _ = cancel.cancelled() => {
            let _ = child.kill().await;
            return Ok(Outcome::Interrupted);
        }
        status = child.wait() => status.map_err(|e| format!("waiting for ffmpeg: {e}"))?,
    };
    let errors = errors.await.unwrap_or_default();
    if !status.success() {
        let tail: String = errors
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("; ");
        return Err(format!(
            "ffmpeg failed ({status}): {}",
            if tail.is_empty() { "no message" } else { &tail }
        ));
    }
    // Hash, then move into place under the hash: only then is the video ready.
    let hashed = output.clone();
    let (sha256, bytes) = tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
        let mut file = std::fs::File::open(&hashed)?;
        let mut hasher = Sha256::new();
        let bytes = std::io::copy(&mut file, &mut hasher)?;
        Ok((hex::encode(hasher.finalize()), bytes))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("hashing the video: {e}"))?;
    let name = MediaName {
        kind: MediaKind::Video,
        sha256: sha256.clone(),
    };
    let store = state.media.clone();
    let (from, to) = (output.clone(), name.clone());
    tokio::task::spawn_blocking(move || store.persist_file(&from, &to))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("storing the video: {e}"))?;
    record_end(
        state,
        id,
        End::Ready {
            bytes,
            sha256: &sha256,
        },
    )
    .await
    .map_err(|e| format!("recording the finished video: {e}"))?;
    Ok(Outcome::Ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_paths_are_quoted() {
        assert_eq!(concat_quote(Path::new("/data/a.jpg")), "'/data/a.jpg'");
        assert_eq!(concat_quote(Path::new("/it's/a.jpg")), "'/it'\\''s/a.jpg'");
    }

    #[test]
    fn a_missing_ffmpeg_is_none() {
        assert!(find_ffmpeg(Some(Path::new("/nonexistent/ffmpeg"))).is_none());
    }
}
