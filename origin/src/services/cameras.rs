//! Cameras: create, rename, delete, read (cached), status and the offline sweep.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use timelapser_core::etag::CollectionTag;
use timelapser_core::events::Event;
use timelapser_core::resources::{Camera, CameraStatus, Image};
use timelapser_core::EntityTag;

use timelapser_core::keys;

use super::CACHE_TTL;
use crate::auth::{self, Audience};
use crate::bus::Readers;
use crate::cache::Represented;
use crate::db::{self, to_micros};
use crate::error::{Error, Result};
use crate::event_log::{log_event, log_event_for};
use crate::state::AppState;

/// Longest camera name accepted.
pub const MAX_NAME_LEN: usize = 100;

/// What `POST /api/cameras` answers: the camera and its token, shown this once.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct CreatedCamera {
    /// The camera.
    pub camera: Camera,
    /// Its upload token; only its hash is stored.
    pub token: String,
}

/// Checks a camera name: 1..=100 characters after trimming, no control characters.
pub fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(Error::Unprocessable(format!(
            "name must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::Unprocessable(
            "name may not contain control characters".into(),
        ));
    }
    Ok(name.to_owned())
}

/// The composite tag of a camera: id and `updated_at` (every change to what the representation
/// shows, latest image included, bumps `updated_at`).
pub fn camera_etag(camera: &Camera) -> EntityTag {
    EntityTag::composite_with_timestamp(camera.id, camera.updated_at)
}

/// Creates a camera and its token.
pub async fn create(state: &AppState, name: &str) -> Result<CreatedCamera> {
    let name = validate_name(name)?;
    let token = auth::generate_token("tl_cam");
    let schedule = serde_json::to_string(&super::schedules::default_for_new_camera(state).await?)
        .map_err(|e| Error::Internal(e.into()))?;
    let now = db::now();
    let mut tx = state.db.begin_write().await?;
    let id = db::cameras::insert(&mut tx, &name, &auth::hash_token(&token), to_micros(now)).await?;
    db::camera_documents::put(
        &mut tx,
        db::camera_documents::Table::Schedules,
        id,
        &schedule,
        to_micros(now),
    )
    .await?;
    let camera = db::cameras::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("camera {id} vanished")))?
        .to_resource();
    let logged = log_event(
        &mut tx,
        Event::CameraCreated {
            camera: camera.clone(),
        },
        to_micros(now),
    )
    .await?;
    state.events.commit(tx, vec![logged]).await?;
    Ok(CreatedCamera { camera, token })
}

/// One camera, as `audience` may see it: a private camera is, to the public, a camera that
/// does not exist (404, the same document as for a deleted one).
pub async fn get(
    state: &AppState,
    id: i64,
    audience: Audience,
) -> Result<Arc<Represented<Camera>>> {
    let camera = get_any(state, id).await?;
    if audience.sees(camera.value.public) {
        Ok(camera)
    } else {
        Err(Error::not_found("camera", id))
    }
}

/// Whether `audience` may see camera `id` (404 otherwise, as for a camera that does not
/// exist): the check before reading anything of a camera.
pub async fn require_visible(state: &AppState, id: i64, audience: Audience) -> Result<()> {
    get(state, id, audience).await.map(|_| ())
}

/// Whether `audience` may see camera `id`; false also when it does not exist.
pub async fn is_visible(state: &AppState, id: i64, audience: Audience) -> Result<bool> {
    match require_visible(state, id, audience).await {
        Ok(()) => Ok(true),
        Err(Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One camera, whoever may see it, from the cache.
pub async fn get_any(state: &AppState, id: i64) -> Result<Arc<Represented<Camera>>> {
    state
        .cache
        .get_or_load(&keys::camera(id), CACHE_TTL, || async move {
            let mut conn = state.db.pool().acquire().await?;
            let camera = db::cameras::get(&mut conn, id)
                .await?
                .ok_or_else(|| Error::not_found("camera", id))?
                .to_resource();
            let etag = camera_etag(&camera);
            Represented::json(camera, etag)
        })
        .await
}

/// The cameras `audience` may see, from the cache (the public list and the whole list are
/// two entries, with their own tags: nothing of a private camera reaches the public's).
pub async fn list(state: &AppState, audience: Audience) -> Result<Arc<Represented<Vec<Camera>>>> {
    let key = match audience {
        Audience::Public => keys::public_camera_list(),
        Audience::SignedIn => keys::camera_list(),
    };
    state
        .cache
        .get_or_load(&key, CACHE_TTL, || async move {
            let mut conn = state.db.pool().acquire().await?;
            let cameras: Vec<Camera> = db::cameras::list(&mut conn)
                .await?
                .iter()
                .filter(|row| audience.sees(row.public))
                .map(db::cameras::CameraRow::to_resource)
                .collect();
            let etag = cameras
                .iter()
                .fold(CollectionTag::new(), |tag, c| {
                    tag.member_at(c.id, c.updated_at)
                })
                .finish();
            Represented::json(cameras, etag)
        })
        .await
}

/// A camera's latest image, from the cache; 404 when the camera has none.
pub async fn latest_image(
    state: &AppState,
    camera_id: i64,
    audience: Audience,
) -> Result<Arc<Represented<Image>>> {
    require_visible(state, camera_id, audience).await?;
    state
        .cache
        .get_or_load(&keys::latest_image(camera_id), CACHE_TTL, || async move {
            let mut conn = state.db.pool().acquire().await?;
            if !db::cameras::exists(&mut conn, camera_id).await? {
                return Err(Error::not_found("camera", camera_id));
            }
            let image = db::images::latest_for_camera(&mut conn, camera_id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("camera {camera_id} has no images yet")))?
                .to_resource();
            let etag = EntityTag::composite_with_version(image.id, &image.sha256[..16]);
            Represented::json(image, etag)
        })
        .await
}

/// A page of images, newest first.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ImagePage {
    /// The images.
    pub items: Vec<Image>,
    /// The `before` of the next page, when there may be one.
    pub next_before: Option<i64>,
}

/// Largest page.
pub const MAX_PAGE: i64 = 200;

/// Which of a camera's images a page holds: those captured in `[from, to)` (either end
/// open), newest first, at most `limit` of them, strictly before the image `before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImagesQuery {
    /// Largest number of images, 1..=[`MAX_PAGE`].
    pub limit: i64,
    /// The cursor: an image id of this camera (a page's `next_before`).
    pub before: Option<i64>,
    /// First capture time included.
    pub from: Option<DateTime<Utc>>,
    /// First capture time excluded.
    pub to: Option<DateTime<Utc>>,
}

impl ImagesQuery {
    /// The newest `limit` images.
    pub fn newest(limit: i64) -> Self {
        Self {
            limit,
            before: None,
            from: None,
            to: None,
        }
    }
}

/// A page of a camera's images (see [`ImagesQuery`]). Not cached: pages are many and each is
/// one indexed query.
pub async fn images(
    state: &AppState,
    camera_id: i64,
    audience: Audience,
    query: ImagesQuery,
) -> Result<Represented<ImagePage>> {
    let ImagesQuery {
        limit,
        before,
        from,
        to,
    } = query;
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
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
    // 404 for a camera that does not exist, too.
    require_visible(state, camera_id, audience).await?;
    let mut conn = state.db.pool().acquire().await?;
    let cursor = match before {
        None => None,
        Some(image_id) => {
            let image = db::images::get(&mut conn, image_id)
                .await?
                .filter(|i| i.camera_id == camera_id)
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "before={image_id} is not an image of camera {camera_id}"
                    ))
                })?;
            Some((image.captured_at, image.id))
        }
    };
    let captured = from.map_or(i64::MIN, to_micros)..to.map_or(i64::MAX, to_micros);
    let rows = db::images::page(&mut conn, camera_id, captured, limit, cursor).await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let items: Vec<Image> = rows.iter().map(db::images::ImageRow::to_resource).collect();
    // Images never change, so ids are their versions; the cursor is part of the page.
    let etag = items
        .iter()
        .fold(CollectionTag::new(), |tag, i| {
            tag.member(i.id, &i.sha256[..16])
        })
        .context(
            "next_before",
            next_before.map_or(String::new(), |b| b.to_string()),
        )
        .finish();
    Represented::json(ImagePage { items, next_before }, etag)
}

/// Renames a camera.
pub async fn rename(state: &AppState, id: i64, name: &str) -> Result<Camera> {
    let name = validate_name(name)?;
    let now = db::now();
    let mut tx = state.db.begin_write().await?;
    if !db::cameras::rename(&mut tx, id, &name, to_micros(now)).await? {
        return Err(Error::not_found("camera", id));
    }
    let camera = db::cameras::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("camera", id))?
        .to_resource();
    let logged = log_event(
        &mut tx,
        Event::CameraUpdated {
            camera: camera.clone(),
        },
        to_micros(now),
    )
    .await?;
    state.events.commit(tx, vec![logged]).await?;
    Ok(camera)
}

/// Makes a camera public or private. To signed-in people it is `camera_updated`; to the
/// public, a camera turning private is `camera_deleted` (it leaves the gallery) and one
/// turning public is `camera_created`. From then on its media is refused to the public and
/// sent as `private` ([`super::media_visibility`]), and what the edge stored of it while it
/// was public is purged ([`super::edge_purge`]).
pub async fn set_public(state: &AppState, id: i64, public: bool) -> Result<Camera> {
    let now = db::now();
    let mut tx = state.db.begin_write().await?;
    let before = db::cameras::is_public(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("camera", id))?;
    db::cameras::set_public(&mut tx, id, public, to_micros(now)).await?;
    let camera = db::cameras::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("camera", id))?
        .to_resource();
    // Unchanged: an update for whoever sees the camera. Changed: the update is signed-in
    // people's, and the public gets its own view of the change below.
    let readers = if before == public {
        Readers::of_camera(public)
    } else {
        Readers::SignedIn
    };
    let mut logged = vec![
        log_event_for(
            &mut tx,
            Event::CameraUpdated {
                camera: camera.clone(),
            },
            readers,
            to_micros(now),
        )
        .await?,
    ];
    if before != public {
        let for_the_public = if public {
            Event::CameraCreated {
                camera: camera.clone(),
            }
        } else {
            Event::CameraDeleted { camera_id: id }
        };
        logged.push(
            log_event_for(&mut tx, for_the_public, Readers::Anonymous, to_micros(now)).await?,
        );
        if !public {
            super::edge_purge::enqueue_camera(state, &mut tx, id, to_micros(now)).await?;
        }
    }
    state.events.commit(tx, logged).await?;
    if before && !public {
        super::edge_purge::wake();
    }
    Ok(camera)
}

/// Deletes a camera: gone at once from every read, its media removed in the background
/// ([`super::storage::delete_camera`]).
pub async fn delete(state: &AppState, id: i64) -> Result<()> {
    super::storage::delete_camera(state, id).await
}

/// A status report from a camera host (`PUT /api/cameras/{id}/status`); logs
/// `camera_status_changed` only when the status really changes.
pub async fn report_status(
    state: &AppState,
    id: i64,
    status: &str,
    message: Option<&str>,
) -> Result<Camera> {
    let status = match CameraStatus::parse(status) {
        Some(s @ (CameraStatus::Online | CameraStatus::Offline | CameraStatus::Error)) => s,
        _ => {
            return Err(Error::Unprocessable(
                "status must be one of \"online\", \"offline\", \"error\"".into(),
            ))
        }
    };
    if let Some(m) = message {
        if m.chars().count() > 500 {
            return Err(Error::Unprocessable(
                "message must be at most 500 characters".into(),
            ));
        }
    }
    let now = db::now();
    let mut tx = state.db.begin_write().await?;
    let before = db::cameras::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("camera", id))?;
    db::cameras::set_status(
        &mut tx,
        id,
        status.as_str(),
        message,
        Some(to_micros(now)),
        to_micros(now),
    )
    .await?;
    let mut logged = Vec::new();
    if before.status() != status {
        logged.push(
            log_event(
                &mut tx,
                Event::CameraStatusChanged {
                    camera_id: id,
                    status,
                    message: message.map(str::to_owned),
                    at: now,
                },
                to_micros(now),
            )
            .await?,
        );
    }
    let camera = db::cameras::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("camera", id))?
        .to_resource();
    if logged.is_empty() && before.status_message.as_deref() != message {
        // The message changed but not the status: still a change to the representation.
        logged.push(
            log_event(
                &mut tx,
                Event::CameraUpdated {
                    camera: camera.clone(),
                },
                to_micros(now),
            )
            .await?,
        );
    }
    state.events.commit(tx, logged).await?;
    Ok(camera)
}

/// Marks offline every online camera silent for longer than `offline_after` seconds at
/// `now`. Returns the ids that changed.
pub async fn sweep_offline(
    state: &AppState,
    offline_after_seconds: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<i64>> {
    let cutoff = to_micros(now) - offline_after_seconds.saturating_mul(1_000_000);
    let mut tx = state.db.begin_write().await?;
    let silent = db::cameras::silent_since(&mut tx, cutoff).await?;
    let mut logged = Vec::new();
    for &id in &silent {
        let message = format!("no capture or heartbeat for more than {offline_after_seconds} s");
        db::cameras::set_status(
            &mut tx,
            id,
            CameraStatus::Offline.as_str(),
            Some(&message),
            None,
            to_micros(now),
        )
        .await?;
        logged.push(
            log_event(
                &mut tx,
                Event::CameraStatusChanged {
                    camera_id: id,
                    status: CameraStatus::Offline,
                    message: Some(message),
                    at: now,
                },
                to_micros(now),
            )
            .await?,
        );
    }
    state.events.commit(tx, logged).await?;
    Ok(silent)
}
