//! Rendering timelapses into H.264 MP4 videos with Debian's ffmpeg, as a child process.
//!
//! A render reads its frames from a concat list file (paths of the stored originals, in capture
//! order: the media files themselves on disk, copies fetched into `tmp/` from an object
//! store), writes a temp file, reports progress from ffmpeg's `-progress` output (published as
//! `video_progress`, at most [`PROGRESS_INTERVAL`] apart), then hashes the file and stores it
//! as `videos/<sha256>.mp4`: a finished video is just another immutable, content-addressed
//! file. A re-render is a new video with a new URL.
//!
//! Jobs survive restarts and are shared by replicas: the queue is the `videos` table, and a
//! render runs under a lease on its row (`lease_owner`, `lease_expires_at`). A worker claims
//! the lease with one conditional UPDATE before it starts ffmpeg, renews it every third of
//! its length while ffmpeg runs, and kills ffmpeg at once if a renewal fails (the lease was
//! taken, or the database cannot say): so two ffmpeg runs of one video never overlap, on one
//! origin or on several. A graceful stop gives the lease back; a replica that dies keeps it
//! until it expires, and then any replica takes the video over. Every replica looks for
//! videos nobody renders at start and then periodically ([`Renderer::spawn_workers`]). A
//! bounded pool (one render at a time by default) runs them; cancelling one kills its ffmpeg.
//!
//! - [`ffmpeg`]: the command line, the concat list (pure);
//! - [`progress`]: reading `-progress` output (pure);
//! - this module: the [`Renderer`] handle (queue, cancel, delete) and the workers.

pub mod ffmpeg;
pub mod progress;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use timelapser_core::events::Event;
use timelapser_core::render::{render_key, Overlay, OverlayText, RenderOptions, RenderRequest};
use timelapser_core::resources::Video;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::bus::LoggedEvent;
use crate::db::videos::FailedBy;
use crate::db::{self, to_micros, Db, WriteTx};
use crate::error::{Error, Result};
use crate::event_log::{log_event, EventLog};
use crate::media::{MediaKind, MediaName, MediaStore};
use crate::media_cache::MediaCache;
use crate::services::media_sweep::MediaFiles;
use progress::ProgressLine;

/// Progress events per video are at least this far apart (the last one always goes out).
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Frames fetched at once from an object store for a render.
const FRAME_FETCHES: usize = 8;

/// Why a render failed: what the video's `error` says.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No ffmpeg on this origin.
    #[error("ffmpeg is not installed")]
    FfmpegMissing,
    /// The timelapse has no frames.
    #[error("the timelapse has no frames")]
    NoFrames,
    /// A frame's file is gone.
    #[error("frame {sha256} (image {image}) is missing from the media store")]
    FrameMissing {
        /// The image id.
        image: i64,
        /// Its hash.
        sha256: String,
    },
    /// ffmpeg could not be started.
    #[error("cannot start ffmpeg: {0}")]
    Spawn(std::io::Error),
    /// ffmpeg exited with an error.
    #[error("ffmpeg failed ({status}): {message}")]
    Ffmpeg {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The last lines it wrote to stderr.
        message: String,
    },
    /// The rendered file was removed before it was recorded.
    #[error("the rendered file was removed before it could be recorded")]
    OutputVanished,
    /// Reading or writing files.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The database.
    #[error("{0}")]
    Database(#[from] Error),
}

impl RenderError {
    fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| RenderError::Io { what, source }
    }
}

impl From<sqlx::Error> for RenderError {
    fn from(e: sqlx::Error) -> Self {
        RenderError::Database(e.into())
    }
}

/// A running job: cancel it, and know when it has stopped.
#[derive(Clone)]
struct Job {
    cancel: CancellationToken,
    done: CancellationToken,
}

/// The render queue's handle, shared by the routes and the workers: it holds what renders
/// use (the database, the media, the event log), not the whole application.
#[derive(Clone)]
pub struct Renderer(Arc<Inner>);

struct Inner {
    ffmpeg: Option<PathBuf>,
    db: Db,
    media: MediaStore,
    media_cache: MediaCache,
    events: EventLog,
    queue: mpsc::UnboundedSender<i64>,
    jobs: Mutex<HashMap<i64, Job>>,
    /// Ids queued here or rendering here, so the periodic scan queues nothing twice.
    pending: Mutex<HashSet<i64>>,
    /// This process's name in `lease_owner`: unique per run.
    owner: String,
    /// How long a lease lasts without renewal.
    lease: Duration,
}

/// The receiving end of the queue, for [`Renderer::spawn_workers`].
pub struct Queue(mpsc::UnboundedReceiver<i64>);

/// Finds ffmpeg (`TIMELAPSER_FFMPEG`, else `ffmpeg` on PATH): `None`, with a warning, when it
/// is not installed; renders are then refused with 503 instead of failing later.
pub fn find_ffmpeg(configured: Option<&Path>) -> Option<PathBuf> {
    let candidate = configured
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("ffmpeg"));
    if ffmpeg_works(&candidate) {
        Some(candidate)
    } else {
        tracing::warn!(ffmpeg = %candidate.display(), "ffmpeg is not available: videos cannot be rendered (install Debian's ffmpeg)");
        None
    }
}

/// Whether `ffmpeg -version` runs and succeeds.
pub fn ffmpeg_works(ffmpeg: &Path) -> bool {
    std::process::Command::new(ffmpeg)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How a render ended.
enum Outcome {
    Ready,
    /// Not in flight any more (deleted or cancelled before it started).
    Skipped,
    /// Stopped by shutdown or cancellation.
    Interrupted,
}

/// What [`Renderer::change_lease`] does to this process's lease of a video.
#[derive(Clone, Copy, Debug)]
enum LeaseChange {
    /// Takes it, if free or expired.
    Claim,
    /// Extends it, if still held.
    Renew,
    /// Gives it back.
    Release,
}

/// How a render ended, as recorded.
enum End<'a> {
    Ready { bytes: u64, name: &'a MediaName },
    Failed(&'a str),
}

/// A render asked for: the video, and whether this request queued it (or found it made).
#[derive(Clone, Debug)]
pub struct Queued {
    /// The video.
    pub video: Video,
    /// Whether it was queued now (false: the same render existed).
    pub created: bool,
}

/// What [`queue_in`] did.
pub enum Queuing {
    /// A new video, with its `video_queued` event to commit.
    Queued(Video, Box<LoggedEvent>),
    /// The video the same render made before, ready or on its way.
    Existing(Video),
    /// No frames in the range: nothing written.
    NoFrames,
}

/// The frames a render of `options` reads, in order: the timelapse's frames in the range,
/// every n-th.
async fn select_frames(
    conn: &mut sqlx::AnyConnection,
    timelapse_id: i64,
    options: &RenderOptions,
) -> std::result::Result<Vec<db::images::ImageRow>, sqlx::Error> {
    let frames = db::images::for_render(
        conn,
        timelapse_id,
        options.from.map(to_micros),
        options.to.map(to_micros),
    )
    .await?;
    Ok(frames
        .into_iter()
        .enumerate()
        .filter(|(index, _)| options.takes(*index))
        .map(|(_, frame)| frame)
        .collect())
}

/// Queues a render inside the caller's write transaction (see [`Queuing`]). Start a new
/// video with [`Renderer::start`] after the commit.
pub async fn queue_in(
    tx: &mut WriteTx,
    timelapse_id: i64,
    mut options: RenderOptions,
    timezone: &str,
    rule_id: Option<i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Queuing> {
    let timelapse = db::timelapses::get(tx, timelapse_id)
        .await?
        .ok_or_else(|| Error::not_found("timelapse", timelapse_id))?;
    let camera = db::cameras::get(tx, timelapse.camera_id)
        .await?
        .ok_or_else(|| Error::not_found("timelapse", timelapse_id))?;
    let frames = select_frames(tx, timelapse_id, &options).await?;
    if frames.is_empty() {
        return Ok(Queuing::NoFrames);
    }
    options.timezone = options
        .overlay
        .contains(&Overlay::Time)
        .then(|| timezone.to_owned());
    let frame_rate = options.frame_rate(frames.len() as u64);
    let text = OverlayText {
        timezone,
        camera: &camera.name,
    };
    let key = render_key(
        frames.iter().map(|f| f.sha256.as_str()),
        &options,
        frame_rate,
        &text,
    );
    if let Some(existing) = db::videos::find_by_render_key(tx, &key).await? {
        return Ok(Queuing::Existing(existing.to_resource()));
    }
    let now = to_micros(now);
    let video = db::videos::insert(
        tx,
        &db::videos::NewVideo {
            timelapse_id,
            camera_id: timelapse.camera_id,
            options: &options,
            frame_rate,
            frame_count: frames.len() as i64,
            render_key: &key,
            rule_id,
        },
        now,
    )
    .await?
    .to_resource();
    let logged = log_event(
        tx,
        Event::VideoQueued {
            video: video.clone(),
        },
        now,
    )
    .await?;
    Ok(Queuing::Queued(video, Box::new(logged)))
}

impl Renderer {
    /// A renderer using `ffmpeg`, and its queue; its renders hold leases of `lease`.
    pub fn new(
        ffmpeg: Option<PathBuf>,
        db: Db,
        media: MediaStore,
        media_cache: MediaCache,
        events: EventLog,
        lease: Duration,
    ) -> (Self, Queue) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let owner = format!(
            "{}-{}-{:016x}",
            rustix::system::uname().nodename().to_string_lossy(),
            std::process::id(),
            rand::random::<u64>()
        );
        let inner = Inner {
            ffmpeg,
            db,
            media,
            media_cache,
            events,
            queue,
            jobs: Mutex::default(),
            pending: Mutex::default(),
            owner,
            lease: lease.max(Duration::from_millis(300)),
        };
        (Self(Arc::new(inner)), Queue(receiver))
    }

    /// Whether renders can run.
    pub fn available(&self) -> bool {
        self.0.ffmpeg.is_some()
    }

    /// The ffmpeg in use.
    pub fn ffmpeg(&self) -> Option<&Path> {
        self.0.ffmpeg.as_deref()
    }

    fn files(&self) -> MediaFiles<'_> {
        MediaFiles {
            db: &self.0.db,
            store: &self.0.media,
            cache: &self.0.media_cache,
        }
    }

    /// Queues a render of a timelapse (`POST /api/timelapses/{id}/videos`), or finds the
    /// video the same request made before (same frames, options and overlay text: the same
    /// content address), ready or on its way; overlay times are shown in `timezone`.
    pub async fn queue(
        &self,
        timelapse_id: i64,
        request: RenderRequest,
        timezone: &str,
    ) -> Result<Queued> {
        let options = request
            .validate()
            .map_err(|e| Error::Unprocessable(e.to_string()))?;
        self.require_ffmpeg()?;
        let mut tx = self.0.db.begin_write().await?;
        match queue_in(&mut tx, timelapse_id, options, timezone, None, db::now()).await? {
            Queuing::Queued(video, logged) => {
                self.0.events.commit(tx, vec![*logged]).await?;
                self.start(video.id);
                Ok(Queued {
                    video,
                    created: true,
                })
            }
            Queuing::Existing(video) => Ok(Queued {
                video,
                created: false,
            }),
            Queuing::NoFrames => Err(Error::Unprocessable(format!(
                "timelapse {timelapse_id} has no frames to render in the range asked for (from, to)"
            ))),
        }
    }

    /// 503 when ffmpeg is missing.
    pub fn require_ffmpeg(&self) -> Result<()> {
        if self.available() {
            Ok(())
        } else {
            Err(Error::Unavailable(
                "ffmpeg is not installed on the origin; videos cannot be rendered".into(),
            ))
        }
    }

    /// Starts a video queued by [`queue_in`] once its transaction has committed (unless it
    /// is queued or rendering here already).
    pub fn start(&self, video_id: i64) {
        if self
            .0
            .pending
            .lock()
            .expect("pending lock")
            .insert(video_id)
        {
            let _ = self.0.queue.send(video_id);
        }
    }

    /// This process's name in the leases it holds.
    pub fn lease_owner(&self) -> &str {
        &self.0.owner
    }

    /// Deletes a video (`DELETE /api/videos/{id}`): a queued or rendering one is cancelled (its
    /// ffmpeg killed, its temp files removed, `video_failed` with "cancelled"); a ready one's
    /// file goes unless another video has the same bytes.
    pub async fn delete(&self, id: i64) -> Result<()> {
        let now = to_micros(db::now());
        let mut tx = self.0.db.begin_write().await?;
        let video = db::videos::get(&mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found("video", id))?;
        let mut logged = Vec::new();
        if let Some(failed) =
            db::videos::set_failed(&mut tx, id, FailedBy::Anyone, "cancelled", now).await?
        {
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
        self.0.events.commit(tx, logged).await?;
        self.cancel(id).await;
        let mut tx = self.0.db.begin_write().await?;
        if !db::videos::delete(&mut tx, id).await? {
            // Deleted with its timelapse or camera meanwhile.
            tx.commit().await?;
            return Ok(());
        }
        db::file_removals::enqueue(&mut tx, MediaKind::Video, video.sha256.as_deref()).await?;
        let logged = log_event(
            &mut tx,
            Event::VideoDeleted {
                camera_id: video.camera_id,
                timelapse_id: video.timelapse_id,
                video_id: id,
            },
            now,
        )
        .await?;
        self.0.events.commit(tx, vec![logged]).await?;
        self.files().drain_removals().await?;
        Ok(())
    }

    /// Waits (for at most `within`) until the jobs running now have stopped: their ffmpeg
    /// gone, their temp files removed, their lease given back. Shutdown calls it after
    /// cancelling them, before the database closes.
    pub async fn stopped(&self, within: Duration) {
        let running: Vec<Job> = self
            .0
            .jobs
            .lock()
            .expect("jobs lock")
            .values()
            .cloned()
            .collect();
        let all = futures::future::join_all(running.iter().map(|job| job.done.cancelled()));
        let _ = tokio::time::timeout(within, all).await;
    }

    /// Cancels a running job and waits (a few seconds at most) until its ffmpeg is gone.
    async fn cancel(&self, id: i64) {
        let job = self.0.jobs.lock().expect("jobs lock").get(&id).cloned();
        if let Some(job) = job {
            job.cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), job.done.cancelled()).await;
        }
    }

    /// Starts `workers` render workers, and the scan that queues here every video in flight
    /// that nobody renders (left by a previous run, queued by another replica, or given up
    /// by a replica that died): at once, then every third of a lease.
    pub async fn spawn_workers(
        &self,
        queue: Queue,
        workers: usize,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        self.queue_claimable().await?;
        let scanner = self.clone();
        let scan_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(scanner.0.lease / 3);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = scan_shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                if let Err(e) = scanner.queue_claimable().await {
                    tracing::warn!(error = %e, "looking for renders to take over failed");
                }
            }
        });
        let Queue(mut receiver) = queue;
        let permits = Arc::new(Semaphore::new(workers.max(1)));
        let renderer = self.clone();
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
                let renderer = renderer.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    renderer.run_job(id, shutdown).await;
                    drop(permit);
                });
            }
        });
        Ok(())
    }

    /// Queues here the videos in flight whose lease is free or ran out.
    async fn queue_claimable(&self) -> std::result::Result<(), sqlx::Error> {
        let ids = {
            let mut conn = self.0.db.pool().acquire().await?;
            db::videos::claimable(&mut conn, to_micros(db::now())).await?
        };
        for id in ids {
            self.start(id);
        }
        Ok(())
    }

    fn lease_end(&self) -> i64 {
        to_micros(db::now() + self.0.lease)
    }

    /// Changes this process's lease of `id` in a write transaction of its own, through the
    /// writer queue like every write (SQLite has one writer at a time). Whether it applied
    /// (a release always does).
    async fn change_lease(
        &self,
        id: i64,
        change: LeaseChange,
    ) -> std::result::Result<bool, sqlx::Error> {
        let owner = &self.0.owner;
        let mut tx = self.0.db.begin_write().await?;
        let applied = match change {
            LeaseChange::Claim => {
                db::videos::claim_lease(&mut tx, id, owner, to_micros(db::now()), self.lease_end())
                    .await?
            }
            LeaseChange::Renew => {
                db::videos::renew_lease(&mut tx, id, owner, self.lease_end()).await?
            }
            LeaseChange::Release => {
                db::videos::release_lease(&mut tx, id, owner).await?;
                true
            }
        };
        tx.commit().await?;
        Ok(applied)
    }

    /// Renews the lease of `id` every third of its length until `job` is done; a renewal
    /// that fails cancels the job, well before the lease can run out and be taken.
    async fn keep_lease(&self, id: i64, job: Job) {
        let mut ticker = tokio::time::interval(self.0.lease / 3);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = job.done.cancelled() => return,
                _ = job.cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let renewed = self.change_lease(id, LeaseChange::Renew);
            // Half a lease to answer: a renewal begun a third of a lease after the last one
            // ends, at the latest, with a sixth of the lease left, before anyone may take it.
            let failure = match tokio::time::timeout(self.0.lease / 2, renewed).await {
                Ok(Ok(true)) => continue,
                Ok(Ok(false)) => "the render lease was lost".to_owned(),
                Ok(Err(e)) => format!("the render lease could not be renewed: {e}"),
                Err(_) => "renewing the render lease timed out".to_owned(),
            };
            tracing::warn!(video = id, "{failure}: stopping ffmpeg");
            job.cancel.cancel();
            return;
        }
    }

    async fn run_job(&self, id: i64, shutdown: CancellationToken) {
        match self.change_lease(id, LeaseChange::Claim).await {
            Ok(true) => {}
            claimed => {
                // Rendered elsewhere, finished or deleted; or the database failed, and the
                // periodic scan offers it again.
                if let Err(e) = claimed {
                    tracing::warn!(video = id, error = %e, "could not claim a render; trying again later");
                }
                self.0.pending.lock().expect("pending lock").remove(&id);
                return;
            }
        }
        let job = Job {
            cancel: shutdown.child_token(),
            done: CancellationToken::new(),
        };
        self.0
            .jobs
            .lock()
            .expect("jobs lock")
            .insert(id, job.clone());
        let keeper = {
            let renderer = self.clone();
            let job = job.clone();
            tokio::spawn(async move { renderer.keep_lease(id, job).await })
        };
        let outcome = self.render(id, &job.cancel).await;
        let (list, output) = self.temp_paths(id);
        for path in [&list, &output, &self.name_path(id)] {
            let _ = tokio::fs::remove_file(path).await;
        }
        let _ = tokio::fs::remove_dir_all(self.frames_dir(id)).await;
        if matches!(outcome, Ok(Outcome::Interrupted)) {
            // Shutdown or a lost lease: the video stays in flight; the lease (if still ours)
            // is given back so the next start, or another replica, takes it at once.
            if let Err(e) = self.change_lease(id, LeaseChange::Release).await {
                tracing::warn!(video = id, error = %e, "could not give a render lease back; it expires on its own");
            }
        }
        self.0.jobs.lock().expect("jobs lock").remove(&id);
        job.done.cancel();
        let _ = keeper.await;
        self.0.pending.lock().expect("pending lock").remove(&id);
        match outcome {
            Ok(Outcome::Ready) | Ok(Outcome::Skipped) => {}
            Ok(Outcome::Interrupted) => {
                tracing::info!(
                    video = id,
                    "render interrupted (shutdown, cancellation or a lost lease)"
                );
            }
            Err(reason) => {
                let reason = reason.to_string();
                tracing::warn!(video = id, %reason, "render failed");
                if let Err(e) = self.record_end(id, End::Failed(&reason)).await {
                    tracing::error!(video = id, error = %e, "could not record a failed render");
                }
            }
        }
    }

    /// Marks the video ready or failed and logs its event, in one transaction; nothing when
    /// the video is no longer in flight (deleted meanwhile). A ready video's file is checked
    /// under the writer lock, where files are removed (see `services::media_sweep`).
    async fn record_end(&self, id: i64, end: End<'_>) -> std::result::Result<(), RenderError> {
        let now = to_micros(db::now());
        let mut tx = self.0.db.begin_write().await?;
        let event = match end {
            End::Ready { bytes, name } => {
                if !self.0.media.exists(name).await {
                    return Err(RenderError::OutputVanished);
                }
                db::videos::set_ready(&mut tx, id, &self.0.owner, bytes as i64, name.sha256(), now)
                    .await?
                    .map(|video| Event::VideoReady {
                        video: video.to_resource(),
                    })
            }
            End::Failed(reason) => {
                db::videos::set_failed(&mut tx, id, FailedBy::Lease(&self.0.owner), reason, now)
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
        self.0.events.commit(tx, logged).await?;
        Ok(())
    }

    fn temp_paths(&self, id: i64) -> (PathBuf, PathBuf) {
        let tmp = self.0.media.tmp_dir();
        (
            tmp.join(format!("render-{id}.txt")),
            tmp.join(format!("render-{id}.mp4")),
        )
    }

    fn frames_dir(&self, id: i64) -> PathBuf {
        self.0.media.tmp_dir().join(format!("render-{id}-frames"))
    }

    fn name_path(&self, id: i64) -> PathBuf {
        self.0.media.tmp_dir().join(format!("render-{id}-name.txt"))
    }

    /// Records progress and publishes `video_progress`; `false` when the video is no longer
    /// in flight (cancelled).
    async fn progress(&self, id: i64, value: f64) -> std::result::Result<bool, RenderError> {
        let now = to_micros(db::now());
        let mut tx = self.0.db.begin_write().await?;
        let Some(video) =
            db::videos::set_progress(&mut tx, id, &self.0.owner, value.clamp(0.0, 1.0), now)
                .await?
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
        self.0.events.commit(tx, vec![logged]).await?;
        Ok(true)
    }

    async fn render(
        &self,
        id: i64,
        cancel: &CancellationToken,
    ) -> std::result::Result<Outcome, RenderError> {
        let ffmpeg = self.0.ffmpeg.clone().ok_or(RenderError::FfmpegMissing)?;
        let (video, frames, camera_name) = {
            let mut conn = self.0.db.pool().acquire().await?;
            let Some(video) = db::videos::get(&mut conn, id).await? else {
                return Ok(Outcome::Skipped);
            };
            if !video.status.in_flight() {
                return Ok(Outcome::Skipped);
            }
            let frames = select_frames(&mut conn, video.timelapse_id, &video.options).await?;
            let camera = db::cameras::get(&mut conn, video.camera_id).await?;
            (video, frames, camera.map(|c| c.name).unwrap_or_default())
        };
        let first = frames.first().ok_or(RenderError::NoFrames)?;
        if !self.progress(id, 0.0).await? {
            return Ok(Outcome::Skipped);
        }
        let (list, output) = self.temp_paths(id);
        let options = &video.options;
        let zone: Option<Tz> = options.timezone.as_deref().and_then(|z| z.parse().ok());
        // Frames in an object store are fetched into a folder of this render's (a few at a
        // time); on disk ffmpeg reads the media files themselves.
        let scratch = self.frames_dir(id);
        let wanted: Vec<(i64, String)> = frames.iter().map(|f| (f.id, f.sha256.clone())).collect();
        let fetched: Vec<std::result::Result<PathBuf, RenderError>> =
            futures::stream::iter(wanted.into_iter().map(|(image, sha256)| {
                let (media, scratch) = (self.0.media.clone(), scratch.clone());
                async move { frame_file(&media, image, sha256, &scratch).await }
            }))
            .buffered(FRAME_FETCHES)
            .collect()
            .await;
        let mut entries = Vec::with_capacity(frames.len());
        for (frame, path) in frames.iter().zip(fetched) {
            let time = zone.map(|zone| {
                db::from_micros(frame.captured_at)
                    .with_timezone(&zone)
                    .format("%Y-%m-%d %H:%M:%S %Z")
                    .to_string()
            });
            entries.push((path?, time));
        }
        tokio::fs::write(
            &list,
            ffmpeg::concat_list(entries.iter().map(|(p, t)| (p.as_path(), t.as_deref()))),
        )
        .await
        .map_err(RenderError::io("writing the frame list"))?;
        let name_file = if options.overlay.contains(&Overlay::Camera) {
            let path = self.name_path(id);
            tokio::fs::write(&path, camera_name.as_bytes())
                .await
                .map_err(RenderError::io("writing the camera's name"))?;
            Some(path)
        } else {
            None
        };
        let (width, height) = options.preset.output_size(
            first.width.clamp(2, i64::from(u32::MAX)) as u32,
            first.height.clamp(2, i64::from(u32::MAX)) as u32,
        );
        let invocation = ffmpeg::Invocation {
            list,
            output: output.clone(),
            frame_rate: video.frame_rate,
            preset: options.preset,
            width,
            height,
            deflicker: options.deflicker,
            time_overlay: zone.is_some(),
            name_overlay: name_file,
            font: ffmpeg::default_font(),
        };
        let mut child = tokio::process::Command::new(&ffmpeg)
            .args(invocation.arguments())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(RenderError::Spawn)?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut stderr = child.stderr.take().expect("piped");
        let errors = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let total = frames.len().max(1) as u64;
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
                        let Some(ProgressLine::Frame(frame)) = progress::parse_line(&line) else {
                            continue;
                        };
                        let value = progress::fraction(frame, total);
                        if value > last_value && last_sent.elapsed() >= PROGRESS_INTERVAL {
                            last_value = value;
                            last_sent = Instant::now();
                            if !self.progress(id, value).await? {
                                let _ = child.kill().await;
                                return Ok(Outcome::Interrupted);
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
            status = child.wait() => status.map_err(RenderError::io("waiting for ffmpeg"))?,
        };
        let errors = errors.await.unwrap_or_default();
        if !status.success() {
            return Err(RenderError::Ffmpeg {
                status,
                message: ffmpeg::error_summary(&errors),
            });
        }
        // Hash, then move into place under the hash: only then is the video ready.
        let hashed = output.clone();
        let (sha256, bytes) =
            tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
                let mut file = std::fs::File::open(&hashed)?;
                let mut hasher = Sha256::new();
                let bytes = std::io::copy(&mut file, &mut hasher)?;
                Ok((hex::encode(hasher.finalize()), bytes))
            })
            .await
            .map_err(|e| RenderError::Io {
                what: "hashing the video",
                source: std::io::Error::other(e),
            })?
            .map_err(RenderError::io("hashing the video"))?;
        let name = MediaName::new(MediaKind::Video, sha256).expect("a SHA-256 in hex");
        self.0
            .media
            .write_file(&output, &name)
            .await
            .map_err(|e| RenderError::Io {
                what: "storing the video",
                source: std::io::Error::other(e),
            })?;
        self.record_end(id, End::Ready { bytes, name: &name })
            .await?;
        Ok(Outcome::Ready)
    }
}

/// A local file with a frame's bytes for ffmpeg (see [`MediaStore::local_file`]).
///
/// ffmpeg's concat demuxer skips a file it cannot open and carries on; a video with a frame
/// silently missing is not what was asked for, so a missing frame fails the render here.
async fn frame_file(
    media: &MediaStore,
    image: i64,
    sha256: String,
    scratch: &Path,
) -> std::result::Result<PathBuf, RenderError> {
    let Some(name) = MediaName::new(MediaKind::Image, sha256.clone()) else {
        return Err(RenderError::FrameMissing { image, sha256 });
    };
    match media.local_file(&name, scratch).await {
        Ok(path) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(RenderError::FrameMissing { image, sha256 })
        }
        Err(source) => Err(RenderError::Io {
            what: "reading a frame from the media store",
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ffmpeg_is_none() {
        assert!(find_ffmpeg(Some(Path::new("/nonexistent/ffmpeg"))).is_none());
    }

    #[test]
    fn failures_say_what_went_wrong() {
        let missing = RenderError::FrameMissing {
            image: 3,
            sha256: "ab".into(),
        };
        assert_eq!(
            missing.to_string(),
            "frame ab (image 3) is missing from the media store"
        );
        assert_eq!(
            RenderError::FfmpegMissing.to_string(),
            "ffmpeg is not installed"
        );
    }
}
