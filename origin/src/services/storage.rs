//! The storage lifecycle: deleting images, timelapses, videos and cameras; retention; and a
//! media disk that never fills.
//!
//! Every deletion goes the same way, a batch at a time ([`BATCH`] rows, so no transaction
//! holds the writer lock for long): in one write transaction the rows go, the numbers they
//! were counted in (camera, timelapse) move, the event is logged, and their files are queued
//! in `file_removals`; after the commit the queue is worked off (a file goes only when no row
//! refers to it, decided under the writer lock: [`super::media_sweep`]). A crash anywhere
//! leaves either the rows and their files, or no rows and queued files that the next start
//! removes: never a row without its file.
//!
//! - Retention ([`apply_retention`]): per camera, images older than N days, images over a
//!   size cap (oldest first), ready videos older than N days; the camera's policy, with the
//!   site's settings filling its gaps. Frames of protected timelapses, running ones and those
//!   a render is reading are left; a size cap that cannot be met otherwise reaches into the
//!   running timelapse, and says so with `storage_pressure`. A background task runs it at
//!   start-up, every `--retention-interval` and when a policy changes; on PostgreSQL one
//!   replica at a time (an advisory lock).
//! - Disk pressure ([`make_room`]): before a capture is written, the media disk must keep
//!   its free-space threshold. Below it the site's oldest prunable frames go (a batch at a
//!   time, until the threshold and some headroom are free), with `storage_pressure`; when
//!   nothing is left to prune the capture is refused with 507, and nothing is written.
//! - Cameras are deleted in the background ([`delete_camera`] marks, [`empty_cameras`]
//!   empties): a restart resumes what a crash interrupted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use timelapser_core::conditional::{Precondition, Preconditions, Validators};
use timelapser_core::events::Event;
use timelapser_core::paths::MediaKind;
use timelapser_core::resources::{CameraRetention, DeletionReason, Retention, Timelapse};
use timelapser_core::EntityTag;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::media_sweep::MediaFiles;
use crate::auth::Audience;
use crate::bus::Readers;
use crate::cache::Represented;
use crate::db::{self, from_micros, images::Selection, to_micros, JobKey};
use crate::error::{Error, Result};
use crate::event_log::{log_event, log_event_for};
use crate::state::AppState;

/// Where cameras' own retention is kept.
const RETENTION: db::camera_documents::Table = db::camera_documents::Table::RetentionPolicies;

/// Rows deleted per transaction (a capture waits for at most one).
pub const BATCH: i64 = 250;

/// What the storage lifecycle keeps between calls: its wake-ups, the disk-pressure lock and
/// whether the disk is out of prunable frames.
#[derive(Default)]
pub struct Storage {
    retention: Notify,
    deletions: Notify,
    pressure: tokio::sync::Mutex<()>,
    exhausted: AtomicBool,
}

impl Storage {
    /// Runs retention soon (a policy changed).
    pub fn wake_retention(&self) {
        self.retention.notify_one();
    }

    /// Empties cameras marked for deletion soon.
    pub fn wake_deletions(&self) {
        self.deletions.notify_one();
    }
}

/// What a deletion removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Images.
    pub images: u64,
    /// Their bytes (originals and thumbnails; shared files count for each row).
    pub bytes: u64,
}

impl std::ops::AddAssign for Deleted {
    fn add_assign(&mut self, other: Self) {
        self.images += other.images;
        self.bytes += other.bytes;
    }
}

/// Deletes one batch of a selection: at most [`BATCH`] images, oldest first, or fewer when
/// `enough_bytes` is reached. Logs one `images_deleted` per camera, then removes the files
/// no row refers to any more. Nothing deleted means nothing (left) to delete.
pub async fn delete_batch(
    state: &AppState,
    selection: Selection<'_>,
    reason: DeletionReason,
    enough_bytes: Option<u64>,
) -> Result<Deleted> {
    let now = to_micros(db::now());
    let mut tx = state.db.begin_write().await?;
    let mut doomed = db::images::select(&mut tx, selection, BATCH).await?;
    if let Some(enough) = enough_bytes {
        let mut sum = 0_u64;
        let keep = doomed
            .iter()
            .take_while(|d| {
                let under = sum < enough;
                sum += d.bytes as u64;
                under
            })
            .count();
        doomed.truncate(keep);
    }
    if doomed.is_empty() {
        tx.commit().await?;
        return Ok(Deleted::default());
    }
    let ids: Vec<i64> = doomed.iter().map(|d| d.id).collect();
    db::images::delete(&mut tx, &ids).await?;
    let mut cameras: BTreeMap<i64, (Vec<i64>, i64)> = BTreeMap::new();
    let mut timelapses: BTreeMap<i64, i64> = BTreeMap::new();
    for d in &doomed {
        let entry = cameras.entry(d.camera_id).or_default();
        entry.0.push(d.id);
        entry.1 += d.bytes;
        if let Some(t) = d.timelapse_id {
            *timelapses.entry(t).or_default() += 1;
        }
    }
    for (timelapse_id, count) in &timelapses {
        db::timelapses::forget_images(&mut tx, *timelapse_id, *count, now).await?;
    }
    let mut logged = Vec::with_capacity(cameras.len());
    for (camera_id, (image_ids, bytes)) in cameras {
        db::cameras::forget_images(&mut tx, camera_id, image_ids.len() as i64, bytes, now).await?;
        let (image_count, latest) = db::cameras::image_state(&mut tx, camera_id).await?;
        logged.push(
            log_event(
                &mut tx,
                Event::ImagesDeleted {
                    camera_id,
                    image_ids,
                    reason,
                    image_count: image_count.max(0) as u64,
                    latest_image: latest.as_ref().map(db::images::ImageRow::to_resource),
                },
                now,
            )
            .await?,
        );
    }
    let hashes: BTreeSet<&str> = doomed.iter().map(|d| d.sha256.as_str()).collect();
    db::file_removals::enqueue(&mut tx, MediaKind::Image, hashes).await?;
    state.events.commit(tx, logged).await?;
    MediaFiles::of(state).drain_removals().await?;
    Ok(Deleted {
        images: doomed.len() as u64,
        bytes: doomed.iter().map(|d| d.bytes as u64).sum(),
    })
}

/// Deletes a whole selection, a batch at a time.
pub async fn delete_all(
    state: &AppState,
    selection: Selection<'_>,
    reason: DeletionReason,
) -> Result<Deleted> {
    let mut total = Deleted::default();
    loop {
        let batch = delete_batch(state, selection, reason, None).await?;
        if batch.images == 0 {
            return Ok(total);
        }
        total += batch;
    }
}

/// `DELETE /api/images/{id}`: one image; 409 when a protected timelapse holds it.
pub async fn delete_image(state: &AppState, id: i64) -> Result<()> {
    let camera_id = {
        let mut conn = state.db.pool().acquire().await?;
        let image = db::images::get(&mut conn, id)
            .await?
            .ok_or_else(|| Error::not_found("image", id))?;
        if !db::cameras::exists(&mut conn, image.camera_id).await? {
            return Err(Error::not_found("image", id));
        }
        if db::images::any_protected(&mut conn, image.camera_id, &[id]).await? {
            return Err(Error::Conflict(format!(
                "image {id} is a frame of a protected timelapse; unprotect the timelapse first"
            )));
        }
        image.camera_id
    };
    let ids = [id];
    let deleted = delete_batch(
        state,
        Selection::Ids {
            camera_id,
            ids: &ids,
        },
        DeletionReason::Requested,
        None,
    )
    .await?;
    if deleted.images == 0 {
        // Deleted (or protected) by someone else in between.
        return Err(Error::not_found("image", id));
    }
    Ok(())
}

/// `DELETE /api/cameras/{id}/images?from=&to=`: a camera's images captured in `[from, to)`,
/// except protected timelapses' frames. Returns what went.
pub async fn delete_range(
    state: &AppState,
    camera_id: i64,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Deleted> {
    if from.is_none() && to.is_none() {
        return Err(Error::Unprocessable(
            "from and/or to (RFC 3339 times) are required: a range of capture times; to delete \
             every image, delete the camera"
                .into(),
        ));
    }
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(Error::Unprocessable(format!(
                "from ({}) must be before to ({})",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
    }
    super::cameras::require_visible(state, camera_id, Audience::SignedIn).await?;
    delete_all(
        state,
        Selection::Range {
            camera_id,
            from: from.map_or(i64::MIN, to_micros),
            to: to.map_or(i64::MAX, to_micros),
        },
        DeletionReason::Requested,
    )
    .await
}

/// A timelapse whose camera is not being deleted; 404 otherwise.
async fn timelapse_of_a_camera(
    conn: &mut sqlx::AnyConnection,
    id: i64,
) -> Result<db::timelapses::TimelapseRow> {
    match db::timelapses::get(conn, id).await? {
        Some(t) if db::cameras::exists(conn, t.camera_id).await? => Ok(t),
        _ => Err(Error::not_found("timelapse", id)),
    }
}

/// `PATCH /api/timelapses/{id}` `{name?, protected?}`: logs `timelapse_updated` when
/// something changed.
pub async fn update_timelapse(
    state: &AppState,
    id: i64,
    name: Option<&str>,
    protected: Option<bool>,
) -> Result<Timelapse> {
    let name = name.map(super::cameras::validate_name).transpose()?;
    let now = db::now();
    let mut tx = state.db.begin_write().await?;
    let current = timelapse_of_a_camera(&mut tx, id).await?;
    let name = name.unwrap_or_else(|| current.name.clone());
    let protected = protected.unwrap_or(current.protected);
    if name == current.name && protected == current.protected {
        tx.commit().await?;
        return Ok(current.to_resource());
    }
    db::timelapses::update(&mut tx, id, &name, protected, to_micros(now)).await?;
    let updated = db::timelapses::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("timelapse", id))?
        .to_resource();
    let logged = log_event(
        &mut tx,
        Event::TimelapseUpdated {
            timelapse: updated.clone(),
        },
        to_micros(now),
    )
    .await?;
    state.events.commit(tx, vec![logged]).await?;
    if !protected {
        // Its frames may be due.
        state.storage.wake_retention();
    }
    Ok(updated)
}

/// `DELETE /api/timelapses/{id}?frames=keep|delete`: the timelapse and its videos (renders
/// in flight cancelled), and its frames too with `with_frames`; 409 while it runs.
pub async fn delete_timelapse(state: &AppState, id: i64, with_frames: bool) -> Result<()> {
    let timelapse = {
        let mut conn = state.db.pool().acquire().await?;
        timelapse_of_a_camera(&mut conn, id).await?
    };
    if timelapse.status == "running" {
        return Err(Error::Conflict(format!(
            "timelapse {id} is running; stop it first"
        )));
    }
    cancel_renders(state, |v| v.timelapse_id == id).await?;
    if with_frames {
        delete_all(
            state,
            Selection::Timelapse(id),
            DeletionReason::TimelapseDeleted,
        )
        .await?;
    }
    let now = to_micros(db::now());
    let mut tx = state.db.begin_write().await?;
    let videos = db::videos::for_timelapse(&mut tx, id).await?;
    let video_files: Vec<&str> = videos.iter().filter_map(|v| v.sha256.as_deref()).collect();
    db::file_removals::enqueue(&mut tx, MediaKind::Video, video_files).await?;
    if !db::timelapses::delete(&mut tx, id).await? {
        return Err(Error::not_found("timelapse", id));
    }
    let logged = log_event(
        &mut tx,
        Event::TimelapseDeleted {
            camera_id: timelapse.camera_id,
            timelapse_id: id,
            frames_deleted: with_frames,
        },
        now,
    )
    .await?;
    state.events.commit(tx, vec![logged]).await?;
    MediaFiles::of(state).drain_removals().await?;
    Ok(())
}

/// Cancels and deletes the renders in flight that `which` picks (their frames or their
/// timelapse are going).
async fn cancel_renders(
    state: &AppState,
    which: impl Fn(&db::videos::VideoRow) -> bool,
) -> Result<()> {
    let in_flight = {
        let mut conn = state.db.pool().acquire().await?;
        db::videos::in_flight(&mut conn).await?
    };
    for video in in_flight.iter().filter(|v| which(v)) {
        match state.renderer.delete(video.id).await {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `DELETE /api/cameras/{id}`: marks the camera deleted (gone from every read at once, its
/// token refused, `camera_deleted` logged) and has the background task empty it.
pub async fn delete_camera(state: &AppState, id: i64) -> Result<()> {
    let now = to_micros(db::now());
    let mut tx = state.db.begin_write().await?;
    let public = db::cameras::is_public(&mut tx, id).await?;
    if !db::cameras::mark_deleting(&mut tx, id, now).await? {
        return Err(Error::not_found("camera", id));
    }
    // Its readers are decided from what it was: marking made it private.
    let logged = log_event_for(
        &mut tx,
        Event::CameraDeleted { camera_id: id },
        Readers::of_camera(public.unwrap_or(true)),
        now,
    )
    .await?;
    state.events.commit(tx, vec![logged]).await?;
    state.storage.wake_deletions();
    Ok(())
}

/// Empties every camera marked for deletion: its images a batch at a time, then its videos'
/// files, then its row (timelapses, videos, schedule and policy go with it). Returns how
/// many cameras went.
pub async fn empty_cameras(state: &AppState) -> Result<usize> {
    let ids = {
        let mut conn = state.db.pool().acquire().await?;
        db::cameras::deleting(&mut conn).await?
    };
    for &id in &ids {
        if state.shutdown.is_cancelled() {
            break;
        }
        let images =
            delete_all(state, Selection::Camera(id), DeletionReason::CameraDeleted).await?;
        cancel_renders(state, |v| v.camera_id == id).await?;
        let mut tx = state.db.begin_write().await?;
        let videos = db::videos::sha256s_of_camera(&mut tx, id).await?;
        db::file_removals::enqueue(&mut tx, MediaKind::Video, videos.iter().map(String::as_str))
            .await?;
        // A capture that passed its token check before the camera was marked may have
        // committed since: its row goes with the camera's, its files with the queue.
        let late = db::images::sha256s_of_camera(&mut tx, id).await?;
        db::file_removals::enqueue(&mut tx, MediaKind::Image, late.iter().map(String::as_str))
            .await?;
        db::cameras::delete(&mut tx, id).await?;
        tx.commit().await?;
        MediaFiles::of(state).drain_removals().await?;
        tracing::info!(camera_id = id, images = images.images, "camera deleted");
    }
    Ok(ids.len())
}

/// The site's retention: the settings `retention_images_days`, `retention_images_max_bytes`
/// and `retention_videos_days` (0: no limit).
pub async fn site_retention(state: &AppState) -> Result<Retention> {
    let get = |key: &'static str| async move { super::settings::integer(state, key).await };
    Ok(Retention {
        images_days: Some(u32::try_from(get("retention_images_days").await?).unwrap_or(0)),
        images_max_bytes: Some(
            u64::try_from(get("retention_images_max_bytes").await?).unwrap_or(0),
        ),
        videos_days: Some(u32::try_from(get("retention_videos_days").await?).unwrap_or(0)),
    })
}

fn decode_retention(camera_id: i64, document: &str) -> Result<Retention> {
    serde_json::from_str(document).map_err(|e| {
        Error::Internal(anyhow::anyhow!(
            "camera {camera_id}'s stored retention: {e}"
        ))
    })
}

fn retention_etag(retention: &CameraRetention) -> EntityTag {
    EntityTag::composite_with_timestamp(retention.camera_id, retention.updated_at)
}

async fn camera_retention(
    state: &AppState,
    conn: &mut sqlx::AnyConnection,
    camera_id: i64,
) -> Result<CameraRetention> {
    if !db::cameras::exists(conn, camera_id).await? {
        return Err(Error::not_found("camera", camera_id));
    }
    let (retention, updated_at) =
        match db::camera_documents::get(conn, RETENTION, camera_id).await? {
            Some(row) => (decode_retention(camera_id, &row.document)?, row.updated_at),
            None => (Retention::default(), 0),
        };
    Ok(CameraRetention {
        camera_id,
        retention,
        effective: retention.or(site_retention(state).await?),
        updated_at: from_micros(updated_at),
    })
}

/// `GET /api/cameras/{id}/retention`.
pub async fn get_retention(
    state: &AppState,
    camera_id: i64,
) -> Result<Represented<CameraRetention>> {
    let mut conn = state.db.pool().acquire().await?;
    let retention = camera_retention(state, &mut conn, camera_id).await?;
    let etag = retention_etag(&retention);
    Represented::json(retention, etag)
}

/// Parses a PUT body: a policy's fields (`camera_id`, `effective` and `updated_at`,
/// read-only, are ignored); an unknown key or a bad value is a 422 naming it.
fn parse_retention(body: &[u8]) -> Result<Retention> {
    let fields = crate::routes::document_fields(
        body,
        "a retention policy",
        &["camera_id", "effective", "updated_at"],
    )?;
    if let Some(unknown) = fields
        .keys()
        .find(|k| !Retention::FIELDS.contains(&k.as_str()))
    {
        return Err(Error::Unprocessable(format!(
            "{unknown}: not a retention field; fields are {}",
            Retention::FIELDS.join(", ")
        )));
    }
    for (field, max) in [
        ("images_days", 36_500_u64),
        ("images_max_bytes", 1 << 60),
        ("videos_days", 36_500),
    ] {
        match fields.get(field) {
            None | Some(Value::Null) => {}
            Some(v) if v.as_u64().is_some_and(|n| n <= max) => {}
            Some(v) => {
                return Err(Error::Unprocessable(format!(
                    "{field}: expected null (the site's) or an integer from 0 (no limit) to {max}, not {v}"
                )))
            }
        }
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| Error::Unprocessable(format!("not a retention policy: {e}")))
}

/// `PUT /api/cameras/{id}/retention`: validates, honours If-Match, stores, and runs
/// retention soon.
pub async fn put_retention(
    state: &AppState,
    camera_id: i64,
    preconditions: &Preconditions,
    body: &[u8],
) -> Result<Represented<CameraRetention>> {
    let retention = parse_retention(body)?;
    let now = db::now();
    let mut tx = state.db.begin_write().await?;
    let current = camera_retention(state, &mut tx, camera_id).await?;
    match preconditions.evaluate(
        &axum::http::Method::PUT,
        &Validators::new(Some(&retention_etag(&current)), None),
    ) {
        Precondition::Proceed => {}
        Precondition::NotModified | Precondition::Failed => return Err(Error::PreconditionFailed),
    }
    let document = serde_json::to_string(&retention).map_err(|e| Error::Internal(e.into()))?;
    db::camera_documents::put(&mut tx, RETENTION, camera_id, &document, to_micros(now)).await?;
    tx.commit().await?;
    state.storage.wake_retention();
    let updated = CameraRetention {
        camera_id,
        retention,
        effective: retention.or(site_retention(state).await?),
        updated_at: now,
    };
    let etag = retention_etag(&updated);
    Represented::json(updated, etag)
}

/// What a retention sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Images older than their camera's limit.
    pub expired: Deleted,
    /// Images over their camera's size cap.
    pub over_cap: Deleted,
    /// Of those, frames of running timelapses.
    pub running_frames: u64,
    /// Videos older than their camera's limit.
    pub videos: u64,
}

/// Applies every camera's retention at the clock's now (see the module docs). On
/// PostgreSQL, `None` when another replica is sweeping.
pub async fn apply_retention(state: &AppState) -> Result<Option<RetentionReport>> {
    let Some(lock) = state.db.try_job_lock(JobKey::Retention).await? else {
        return Ok(None);
    };
    let result = sweep_retention(state).await;
    lock.release().await;
    result.map(Some)
}

async fn sweep_retention(state: &AppState) -> Result<RetentionReport> {
    let now = state.clock.now();
    let site = site_retention(state).await?;
    let (cameras, policies) = {
        let mut conn = state.db.pool().acquire().await?;
        let cameras = db::cameras::storage(&mut conn).await?;
        let policies: BTreeMap<i64, String> = db::camera_documents::all(&mut conn, RETENTION)
            .await?
            .into_iter()
            .collect();
        (cameras, policies)
    };
    let mut report = RetentionReport::default();
    for (camera_id, name, _, _) in cameras {
        let own = match policies.get(&camera_id) {
            Some(document) => decode_retention(camera_id, document)?,
            None => Retention::default(),
        };
        let policy = own.or(site);
        if let Some(days) = policy.images_age_limit() {
            let cutoff = to_micros(now - chrono::Duration::days(i64::from(days)));
            report.expired += delete_all(
                state,
                Selection::PrunableBefore { camera_id, cutoff },
                DeletionReason::Retention,
            )
            .await?;
        }
        if let Some(cap) = policy.images_size_cap() {
            let mut running = Deleted::default();
            loop {
                let stored = {
                    let mut conn = state.db.pool().acquire().await?;
                    db::cameras::bytes_stored(&mut conn, camera_id)
                        .await?
                        .max(0) as u64
                };
                if stored <= cap {
                    break;
                }
                let excess = Some(stored - cap);
                let mut batch = delete_batch(
                    state,
                    Selection::Prunable {
                        camera_id: Some(camera_id),
                        into_running: false,
                    },
                    DeletionReason::SizeCap,
                    excess,
                )
                .await?;
                if batch.images == 0 {
                    batch = delete_batch(
                        state,
                        Selection::Prunable {
                            camera_id: Some(camera_id),
                            into_running: true,
                        },
                        DeletionReason::SizeCap,
                        excess,
                    )
                    .await?;
                    running += batch;
                }
                if batch.images == 0 {
                    break;
                }
                report.over_cap += batch;
            }
            if running.images > 0 {
                report.running_frames += running.images;
                let (free, total) = state.media.disk_space().unwrap_or((0, 0));
                let event = Event::StoragePressure {
                    camera_id: Some(camera_id),
                    free_bytes: free,
                    threshold_bytes: state.config.min_free.threshold(total),
                    images_pruned: running.images,
                    exhausted: false,
                    message: format!(
                        "{name}: its size cap of {cap} bytes pruned {} frames of its running \
                         timelapse (everything else it may prune was gone)",
                        running.images
                    ),
                };
                announce_pressure(state, event).await?;
            }
        }
        if let Some(days) = policy.videos_age_limit() {
            let cutoff = to_micros(now - chrono::Duration::days(i64::from(days)));
            let expired = {
                let mut conn = state.db.pool().acquire().await?;
                db::videos::expired(&mut conn, camera_id, cutoff).await?
            };
            for video in expired {
                // The one way a video goes (`DELETE /api/videos/{id}` too): its row, its
                // file unless another video has the same bytes, `video_deleted`.
                match state.renderer.delete(video.id).await {
                    Ok(()) => report.videos += 1,
                    Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    if report != RetentionReport::default() {
        tracing::info!(?report, "retention applied");
    }
    Ok(report)
}

/// Logs a `storage_pressure` event, for signed-in readers only: the disk is the operators'
/// business, not the public's (even for a public camera).
async fn announce_pressure(state: &AppState, event: Event) -> Result<()> {
    tracing::warn!(data = %event.data(), "storage pressure");
    let now = to_micros(db::now());
    let mut tx = state.db.begin_write().await?;
    let logged = log_event_for(&mut tx, event, Readers::SignedIn, now).await?;
    state.events.commit(tx, vec![logged]).await?;
    Ok(())
}

/// Makes sure the media disk keeps its free-space threshold after `needed` more bytes:
/// prunes the site's oldest prunable frames (then running timelapses' frames) while it does
/// not, with `storage_pressure`; 507 when nothing is left to prune.
///
/// Media in an object store has no threshold to keep: nothing is pruned for room.
pub async fn make_room(state: &AppState, needed: u64) -> Result<()> {
    if !state.media.is_disk() {
        return Ok(());
    }
    let enough = |free: u64, total: u64| {
        free >= state
            .config
            .min_free
            .threshold(total)
            .saturating_add(needed)
    };
    let (free, total) = disk_space(state)?;
    if enough(free, total) {
        if state.storage.exhausted.swap(false, Ordering::SeqCst) {
            tracing::info!(free, "the media disk has room again");
        }
        return Ok(());
    }
    let _pruning = state.storage.pressure.lock().await;
    let mut pruned = 0_u64;
    let mut into_running = false;
    let outcome = loop {
        let (free, total) = disk_space(state)?;
        let threshold = state.config.min_free.threshold(total);
        if enough(free, total) {
            break Ok((free, threshold));
        }
        // Free the shortfall and an eighth of the threshold more, so that the next captures
        // do not each prune a frame.
        let shortfall = (threshold + needed + threshold / 8).saturating_sub(free);
        let batch = delete_batch(
            state,
            Selection::Prunable {
                camera_id: None,
                into_running,
            },
            DeletionReason::DiskPressure,
            Some(shortfall),
        )
        .await?;
        if batch.images == 0 {
            if into_running {
                break Err((free, threshold));
            }
            into_running = true;
        }
        pruned += batch.images;
    };
    match outcome {
        Ok((free, threshold)) => {
            state.storage.exhausted.store(false, Ordering::SeqCst);
            if pruned > 0 {
                let event = Event::StoragePressure {
                    camera_id: None,
                    free_bytes: free,
                    threshold_bytes: threshold,
                    images_pruned: pruned,
                    exhausted: false,
                    message: format!(
                        "the media disk fell below {} MiB free: the {pruned} oldest unprotected \
                         frames were pruned",
                        threshold / (1024 * 1024)
                    ),
                };
                announce_pressure(state, event).await?;
            }
            Ok(())
        }
        Err((free, threshold)) => {
            if !state.storage.exhausted.swap(true, Ordering::SeqCst) || pruned > 0 {
                let event = Event::StoragePressure {
                    camera_id: None,
                    free_bytes: free,
                    threshold_bytes: threshold,
                    images_pruned: pruned,
                    exhausted: true,
                    message: format!(
                        "the media disk has {} MiB free, under its threshold of {} MiB, and \
                         every frame left is protected: captures are refused until space is \
                         freed",
                        free / (1024 * 1024),
                        threshold / (1024 * 1024)
                    ),
                };
                announce_pressure(state, event).await?;
            }
            Err(Error::InsufficientStorage(format!(
                "the media disk has {} bytes free, under its threshold of {threshold} bytes, and \
                 nothing unprotected is left to prune; the capture was not stored",
                free
            )))
        }
    }
}

fn disk_space(state: &AppState) -> Result<(u64, u64)> {
    state.media.disk_space().map_err(|e| {
        Error::Internal(anyhow::anyhow!(
            "cannot read the media disk's free space: {e}"
        ))
    })
}

/// Runs retention at start-up, every `interval` and when woken; and empties cameras marked
/// for deletion at start-up (what a crash interrupted) and when woken.
pub fn spawn(state: AppState, interval: Duration, shutdown: CancellationToken) {
    let deleter = state.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            match deleter.db.try_job_lock(JobKey::CameraDeletion).await {
                Ok(Some(lock)) => {
                    if let Err(e) = empty_cameras(&deleter).await {
                        tracing::warn!(error = %e, "emptying deleted cameras failed; retrying");
                    }
                    lock.release().await;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "emptying deleted cameras failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = deleter.storage.deletions.notified() => {}
                // Another replica's deletion, or a retry after an error.
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
    });
    tokio::spawn(async move {
        loop {
            if let Err(e) = apply_retention(&state).await {
                tracing::warn!(error = %e, "retention failed");
            }
            // Disk pressure without captures (videos, other files on the disk) is met too.
            match make_room(&state, 0).await {
                Ok(()) | Err(Error::InsufficientStorage(_)) => {}
                Err(e) => tracing::warn!(error = %e, "checking the media disk failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = state.storage.retention.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_bodies_name_what_is_wrong() {
        assert_eq!(
            parse_retention(br#"{"images_days": 30, "videos_days": null, "effective": {}}"#)
                .unwrap(),
            Retention {
                images_days: Some(30),
                images_max_bytes: None,
                videos_days: None,
            }
        );
        for (body, names) in [
            (&br#"{"images_days": -1}"#[..], "images_days"),
            (br#"{"images_max_bytes": "1GB"}"#, "images_max_bytes"),
            (br#"{"videos_days": 1.5}"#, "videos_days"),
            (br#"{"keep": 3}"#, "keep"),
            (br#"[]"#, "JSON object"),
        ] {
            match parse_retention(body) {
                Err(Error::Unprocessable(detail)) => assert!(detail.contains(names), "{detail}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        assert!(matches!(parse_retention(b"{"), Err(Error::BadRequest(_))));
    }

    #[test]
    fn a_camera_policy_falls_back_to_the_site_field_by_field() {
        let site = Retention {
            images_days: Some(30),
            images_max_bytes: Some(0),
            videos_days: Some(0),
        };
        let own = Retention {
            images_days: Some(0),
            images_max_bytes: Some(1000),
            videos_days: None,
        };
        let effective = own.or(site);
        assert_eq!(effective.images_age_limit(), None, "0 is no limit");
        assert_eq!(effective.images_size_cap(), Some(1000));
        assert_eq!(effective.videos_age_limit(), None);
        assert_eq!(Retention::default().or(site).images_age_limit(), Some(30));
    }
}
