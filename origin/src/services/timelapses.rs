//! Timelapses: start (stopping the running one), stop, read; and their videos' metadata.

use std::sync::Arc;

use timelapser_core::etag::CollectionTag;
use timelapser_core::events::Event;
use timelapser_core::resources::{Timelapse, Video};
use timelapser_core::EntityTag;

use timelapser_core::keys;

use super::CACHE_TTL;
use crate::auth::Audience;
use crate::cache::Represented;
use crate::db::{self, to_micros};
use crate::error::{Error, Result};
use crate::event_log::log_event;
use crate::state::AppState;

/// The composite tag of a timelapse.
pub fn timelapse_etag(t: &Timelapse) -> EntityTag {
    EntityTag::composite_with_timestamp(t.id, t.updated_at)
}

/// The composite tag of a video.
pub fn video_etag(v: &Video) -> EntityTag {
    EntityTag::composite_with_timestamp(v.id, v.updated_at)
}

/// Starts a timelapse for a camera, stopping any running one.
pub async fn start(state: &AppState, camera_id: i64, name: &str) -> Result<Timelapse> {
    let name = super::cameras::validate_name(name)?;
    let now = to_micros(db::now());
    let mut tx = state.db.begin_write().await?;
    if !db::cameras::exists(&mut tx, camera_id).await? {
        return Err(Error::not_found("camera", camera_id));
    }
    let mut logged = Vec::new();
    if let Some(running) = db::timelapses::running_for_camera(&mut tx, camera_id).await? {
        if let Some(stopped) = db::timelapses::stop(&mut tx, running.id, now).await? {
            logged.push(
                log_event(
                    &mut tx,
                    Event::TimelapseStopped {
                        timelapse: stopped.to_resource(),
                    },
                    now,
                )
                .await?,
            );
        }
    }
    let started = db::timelapses::insert(&mut tx, camera_id, &name, now)
        .await?
        .to_resource();
    logged.push(
        log_event(
            &mut tx,
            Event::TimelapseStarted {
                timelapse: started.clone(),
            },
            now,
        )
        .await?,
    );
    state.events.commit(tx, logged).await?;
    Ok(started)
}

/// Stops a timelapse; stopping a stopped one returns it unchanged.
pub async fn stop(state: &AppState, id: i64) -> Result<Timelapse> {
    let now = to_micros(db::now());
    let mut tx = state.db.begin_write().await?;
    let Some(stopped) = db::timelapses::stop(&mut tx, id, now).await? else {
        return db::timelapses::get(&mut tx, id)
            .await?
            .map(|t| t.to_resource())
            .ok_or_else(|| Error::not_found("timelapse", id));
    };
    let timelapse = stopped.to_resource();
    let logged = log_event(
        &mut tx,
        Event::TimelapseStopped {
            timelapse: timelapse.clone(),
        },
        now,
    )
    .await?;
    state.events.commit(tx, vec![logged]).await?;
    Ok(timelapse)
}

/// One timelapse, if `audience` may see its camera (404 otherwise, as for none).
pub async fn get(
    state: &AppState,
    id: i64,
    audience: Audience,
) -> Result<Arc<Represented<Timelapse>>> {
    let timelapse = get_any(state, id).await?;
    super::cameras::is_visible(state, timelapse.value.camera_id, audience)
        .await?
        .then_some(timelapse)
        .ok_or_else(|| Error::not_found("timelapse", id))
}

/// One timelapse, whoever may see it, from the cache.
pub async fn get_any(state: &AppState, id: i64) -> Result<Arc<Represented<Timelapse>>> {
    state
        .cache
        .get_or_load(&keys::timelapse(id), CACHE_TTL, || async move {
            let mut conn = state.db.pool().acquire().await?;
            let timelapse = db::timelapses::get(&mut conn, id)
                .await?
                .ok_or_else(|| Error::not_found("timelapse", id))?
                .to_resource();
            let etag = timelapse_etag(&timelapse);
            Represented::json(timelapse, etag)
        })
        .await
}

/// A camera's timelapses, newest first.
pub async fn for_camera(
    state: &AppState,
    camera_id: i64,
    audience: Audience,
) -> Result<Represented<Vec<Timelapse>>> {
    // 404 for a camera that does not exist, too.
    super::cameras::require_visible(state, camera_id, audience).await?;
    let mut conn = state.db.pool().acquire().await?;
    let timelapses: Vec<Timelapse> = db::timelapses::for_camera(&mut conn, camera_id)
        .await?
        .iter()
        .map(db::timelapses::TimelapseRow::to_resource)
        .collect();
    let etag = timelapses
        .iter()
        .fold(CollectionTag::new(), |tag, t| {
            tag.member_at(t.id, t.updated_at)
        })
        .finish();
    Represented::json(timelapses, etag)
}

/// The videos of a timelapse.
pub async fn videos(
    state: &AppState,
    timelapse_id: i64,
    audience: Audience,
) -> Result<Represented<Vec<Video>>> {
    get(state, timelapse_id, audience).await?;
    let mut conn = state.db.pool().acquire().await?;
    let videos: Vec<Video> = db::videos::for_timelapse(&mut conn, timelapse_id)
        .await?
        .iter()
        .map(db::videos::VideoRow::to_resource)
        .collect();
    let etag = videos
        .iter()
        .fold(CollectionTag::new(), |tag, v| {
            tag.member_at(v.id, v.updated_at)
        })
        .finish();
    Represented::json(videos, etag)
}

/// One video.
pub async fn video(state: &AppState, id: i64, audience: Audience) -> Result<Represented<Video>> {
    let mut conn = state.db.pool().acquire().await?;
    let video = db::videos::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found("video", id))?
        .to_resource();
    drop(conn);
    if !super::cameras::is_visible(state, video.camera_id, audience).await? {
        return Err(Error::not_found("video", id));
    }
    let etag = video_etag(&video);
    Represented::json(video, etag)
}

/// Renders queued or rendering, oldest first (the dashboard's list).
pub async fn renders_in_flight(state: &AppState, audience: Audience) -> Result<Vec<Video>> {
    let mut conn = state.db.pool().acquire().await?;
    let rows = db::videos::in_flight(&mut conn).await?;
    drop(conn);
    let mut videos = Vec::with_capacity(rows.len());
    for row in rows {
        if super::cameras::is_visible(state, row.camera_id, audience).await? {
            videos.push(row.to_resource());
        }
    }
    Ok(videos)
}
