//! Capture ingestion: a camera host's frame becomes an original, a thumbnail, an image row,
//! updated counts and an `image_captured` event — all of it or none of it.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use timelapser_core::events::Event;
use timelapser_core::resources::{CameraStatus, Image};

use crate::db::{self, to_micros};
use crate::error::{Error, Result};
use crate::event_log::log_event;
use crate::media::{MediaKind, MediaName};
use crate::services::media_sweep::MediaFiles;
use crate::state::AppState;
use crate::thumbnail::{self, DecodeError};

/// The outcome of a capture.
#[derive(Debug)]
pub enum Captured {
    /// A new image (201).
    Created(Image),
    /// The same bytes were already stored for this camera (200).
    Existing(Image),
}

/// Media types accepted as captures.
pub const ACCEPTED_TYPES: &[&str] = &["image/jpeg"];

/// Checks the declared media type (parameters such as `; charset` are ignored).
pub fn check_content_type(content_type: Option<&str>) -> Result<()> {
    let essence = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|ct| ct.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some(ct) if ACCEPTED_TYPES.contains(&ct) => Ok(()),
        Some(ct) => Err(Error::UnsupportedMediaType(format!(
            "captures must be image/jpeg, not {ct}"
        ))),
        None => Err(Error::UnsupportedMediaType(
            "captures must be sent with Content-Type: image/jpeg".into(),
        )),
    }
}

/// Parses the optional `Capture-Time` header (RFC 3339).
pub fn parse_capture_time(value: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    Error::BadRequest(format!("Capture-Time must be an RFC 3339 time: {e}"))
                })
        })
        .transpose()
}

/// Stores a capture for `camera_id` (already authorized, type and size already checked).
pub async fn ingest(
    state: &AppState,
    camera_id: i64,
    captured_at: Option<DateTime<Utc>>,
    body: Bytes,
) -> Result<Captured> {
    if body.is_empty() {
        return Err(Error::Unprocessable("the capture is empty".into()));
    }
    let now = db::now();
    let captured_at = captured_at.unwrap_or(now);
    state.config.capture_window.check(captured_at, now)?;
    let sha256 = hex::encode(Sha256::digest(&body));
    {
        let mut conn = state.db.pool().acquire().await?;
        if let Some(existing) = db::images::find_by_sha256(&mut conn, camera_id, &sha256).await? {
            return Ok(Captured::Existing(existing.to_resource()));
        }
    }
    let decode_input = body.clone();
    let decoded = tokio::task::spawn_blocking(move || thumbnail::decode_jpeg(&decode_input))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(|e| match e {
            DecodeError::Invalid(_) | DecodeError::TooLarge { .. } => {
                Error::Unprocessable(e.to_string())
            }
        })?;

    // Files first, durable; the row second. See crate::media.
    let original = MediaName::new(MediaKind::Image, sha256.clone()).expect("a SHA-256 in hex");
    let thumb = MediaName::new(MediaKind::Thumbnail, sha256.clone()).expect("a SHA-256 in hex");
    let size = (i64::from(decoded.width), i64::from(decoded.height));
    let thumbnail = Bytes::from(decoded.thumbnail);
    // The media disk keeps its free-space threshold: the oldest unprotected frames make
    // room, or nothing is written (507).
    super::storage::make_room(state, (body.len() + thumbnail.len()) as u64).await?;
    let stored = store(
        state,
        camera_id,
        captured_at,
        now,
        &sha256,
        size,
        body,
        thumbnail,
    )
    .await;
    if stored.is_err() {
        // A file this capture wrote, unreferenced now, goes (one another row shares stays).
        let _ = MediaFiles::of(state)
            .remove_unreferenced(&[original, thumb])
            .await;
    }
    stored.map_err(Error::or_insufficient_storage)
}

/// Writes a decoded capture's files and commits its row (see [`ingest`]).
#[allow(clippy::too_many_arguments)]
async fn store(
    state: &AppState,
    camera_id: i64,
    captured_at: DateTime<Utc>,
    now: DateTime<Utc>,
    sha256: &str,
    (width, height): (i64, i64),
    body: Bytes,
    thumbnail: Bytes,
) -> Result<Captured> {
    let original = MediaName::new(MediaKind::Image, sha256).expect("a SHA-256 in hex");
    let thumb = MediaName::new(MediaKind::Thumbnail, sha256).expect("a SHA-256 in hex");
    let thumbnail_bytes = thumbnail.len() as i64;
    state.media.write(&original, body.clone()).await?;
    state.media.write(&thumb, thumbnail.clone()).await?;

    let mut tx = state.db.begin_write().await?;
    // Under the writer lock, where files are removed (services::media_sweep): a delete that
    // removed these bytes' files after they were written above is undone before the row
    // that needs them commits.
    for (name, bytes) in [(&original, &body), (&thumb, &thumbnail)] {
        if !state.media.exists(name).await {
            tracing::info!(file = %name, "a concurrent delete removed a capture's file; writing it again");
            state.media.write(name, bytes.clone()).await?;
        }
    }
    let camera = db::cameras::get(&mut tx, camera_id)
        .await?
        .ok_or_else(|| Error::not_found("camera", camera_id))?;
    // Filed by capture time: a backfilled frame joins the timelapse that ran when it was taken.
    let timelapse = db::timelapses::running_at(&mut tx, camera_id, to_micros(captured_at)).await?;
    let new = db::images::NewImage {
        camera_id,
        timelapse_id: timelapse.as_ref().map(|t| t.id),
        captured_at: to_micros(captured_at),
        width,
        height,
        bytes: body.len() as i64,
        thumbnail_bytes,
        sha256: sha256.to_owned(),
        created_at: to_micros(now),
    };
    let Some(row) = db::images::insert(&mut tx, &new).await? else {
        // A concurrent upload of the same bytes won the race.
        drop(tx);
        let mut conn = state.db.pool().acquire().await?;
        let existing = db::images::find_by_sha256(&mut conn, camera_id, sha256)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("duplicate image vanished")))?;
        return Ok(Captured::Existing(existing.to_resource()));
    };
    let image_count = db::cameras::record_capture(
        &mut tx,
        camera_id,
        row.id,
        row.captured_at,
        new.bytes + new.thumbnail_bytes,
        to_micros(now),
    )
    .await?;
    if let Some(t) = &timelapse {
        db::timelapses::record_capture(&mut tx, t.id, to_micros(now)).await?;
    }
    let mut logged = Vec::new();
    // A capture is a heartbeat: the camera is online from now on.
    if camera.status() != CameraStatus::Online {
        db::cameras::set_status(
            &mut tx,
            camera_id,
            CameraStatus::Online.as_str(),
            None,
            None,
            to_micros(now),
        )
        .await?;
        logged.push(
            log_event(
                &mut tx,
                Event::CameraStatusChanged {
                    camera_id,
                    status: CameraStatus::Online,
                    message: None,
                    at: now,
                },
                to_micros(now),
            )
            .await?,
        );
    }
    let image = row.to_resource();
    logged.push(
        log_event(
            &mut tx,
            Event::ImageCaptured {
                camera_id,
                timelapse_id: image.timelapse_id,
                image: image.clone(),
                image_count: image_count as u64,
            },
            to_micros(now),
        )
        .await?,
    );
    state.events.commit(tx, logged).await?;
    Ok(Captured::Created(image))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::CaptureWindow;

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("image/jpeg")).is_ok());
        assert!(check_content_type(Some("Image/JPEG; q=1")).is_ok());
        assert!(matches!(
            check_content_type(Some("image/png")),
            Err(Error::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            check_content_type(None),
            Err(Error::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn capture_times_outside_the_window_are_refused() {
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        let window = CaptureWindow::default();
        for accepted in [
            "2026-11-25T12:00:00Z",
            "2026-11-25T12:09:59Z",
            "2025-11-26T12:00:00Z",
        ] {
            assert!(
                window.check(accepted.parse().unwrap(), now).is_ok(),
                "{accepted}"
            );
        }
        for refused in [
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "2026-11-25T12:10:01Z",
            "2025-11-25T11:59:59Z",
        ] {
            let at: DateTime<Utc> = refused.parse().unwrap();
            assert!(
                matches!(window.check(at, now), Err(Error::Unprocessable(_))),
                "{refused}"
            );
        }
    }

    #[test]
    fn capture_times() {
        assert!(parse_capture_time(None).unwrap().is_none());
        let t = parse_capture_time(Some("2026-11-24T10:00:00+01:00"))
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-24T09:00:00+00:00");
        assert!(matches!(
            parse_capture_time(Some("yesterday")),
            Err(Error::BadRequest(_))
        ));
    }
}
