//! Cameras' capture schedules: read by each camera's agent (with If-None-Match, and again on
//! `schedule_updated`), changed by operators with If-Match. The rules of a schedule are
//! core's (`timelapser_core::schedule`); this keeps, validates and announces them.

use serde_json::Value;
use timelapser_core::conditional::{Precondition, Preconditions, Validators};
use timelapser_core::events::Event;
use timelapser_core::resources::CameraSchedule;
use timelapser_core::schedule::Schedule;
use timelapser_core::EntityTag;

use crate::cache::Represented;
use crate::db::{self, from_micros, to_micros};
use crate::error::{Error, Result};
use crate::event_log::log_event;
use crate::state::AppState;

/// Where schedules are kept.
const SCHEDULES: db::camera_documents::Table = db::camera_documents::Table::Schedules;

/// The composite tag of a camera's schedule: the camera and the schedule's modification time.
pub fn schedule_etag(schedule: &CameraSchedule) -> EntityTag {
    EntityTag::composite_with_timestamp(schedule.camera_id, schedule.updated_at)
}

/// The schedule a new camera starts with: the site's capture interval and time zone, all
/// day, not paused.
pub async fn default_for_new_camera(state: &AppState) -> Result<Schedule> {
    let interval = super::settings::integer(state, "capture_interval_seconds").await?;
    let timezone = super::settings::text(state, "timezone").await?;
    Ok(Schedule::every(
        u32::try_from(interval).unwrap_or(10),
        &timezone,
    ))
}

fn decode(camera_id: i64, row: db::camera_documents::CameraDocument) -> Result<CameraSchedule> {
    let schedule: Schedule = serde_json::from_str(&row.document).map_err(|e| {
        Error::Internal(anyhow::anyhow!("camera {camera_id}'s stored schedule: {e}"))
    })?;
    Ok(CameraSchedule {
        camera_id,
        schedule,
        updated_at: from_micros(row.updated_at),
    })
}

/// A camera's schedule.
pub async fn get(state: &AppState, camera_id: i64) -> Result<Represented<CameraSchedule>> {
    let mut conn = state.db.pool().acquire().await?;
    let row = db::camera_documents::get(&mut conn, SCHEDULES, camera_id)
        .await?
        .ok_or_else(|| Error::not_found("camera", camera_id))?;
    let schedule = decode(camera_id, row)?;
    let etag = schedule_etag(&schedule);
    Represented::json(schedule, etag)
}

/// Parses a PUT body: a schedule's fields (`camera_id` and `updated_at`, read-only, are
/// ignored); an unknown key or a bad value is a 422 naming it.
fn parse(body: &[u8]) -> Result<Schedule> {
    let fields = crate::routes::document_fields(body, "a schedule", &["camera_id", "updated_at"])?;
    if let Some(unknown) = fields
        .keys()
        .find(|k| !Schedule::FIELDS.contains(&k.as_str()))
    {
        return Err(Error::Unprocessable(format!(
            "{unknown}: not a schedule field; fields are {}",
            Schedule::FIELDS.join(", ")
        )));
    }
    let schedule: Schedule = serde_json::from_value(Value::Object(fields))
        .map_err(|e| Error::Unprocessable(format!("not a schedule: {e}")))?;
    schedule
        .validate()
        .map_err(|e| Error::Unprocessable(e.to_string()))?;
    Ok(schedule)
}

/// `PUT /api/cameras/{id}/schedule`: validates, honours If-Match, stores and logs
/// `schedule_updated` (only when something changed).
pub async fn put(
    state: &AppState,
    camera_id: i64,
    preconditions: &Preconditions,
    body: &[u8],
) -> Result<Represented<CameraSchedule>> {
    let schedule = parse(body)?;
    let now = db::now();
    let mut tx = state.db.begin_write().await?;
    // Read inside the write lock, so the precondition holds until the commit.
    let current = db::camera_documents::get(&mut tx, SCHEDULES, camera_id)
        .await?
        .ok_or_else(|| Error::not_found("camera", camera_id))?;
    let current = decode(camera_id, current)?;
    let etag = schedule_etag(&current);
    match preconditions.evaluate(
        &axum::http::Method::PUT,
        &Validators::new(Some(&etag), None),
    ) {
        Precondition::Proceed => {}
        Precondition::NotModified | Precondition::Failed => return Err(Error::PreconditionFailed),
    }
    if current.schedule == schedule {
        tx.commit().await?;
        return Represented::json(current, etag);
    }
    let document = serde_json::to_string(&schedule).map_err(|e| Error::Internal(e.into()))?;
    db::camera_documents::put(&mut tx, SCHEDULES, camera_id, &document, to_micros(now)).await?;
    let updated = CameraSchedule {
        camera_id,
        schedule,
        updated_at: now,
    };
    let logged = log_event(
        &mut tx,
        Event::ScheduleUpdated {
            camera_id,
            schedule: updated.clone(),
        },
        to_micros(now),
    )
    .await?;
    state.events.commit(tx, vec![logged]).await?;
    let etag = schedule_etag(&updated);
    Represented::json(updated, etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_what_is_wrong() {
        let ok = parse(br#"{"interval_seconds": 5, "timezone": "UTC", "updated_at": "x"}"#);
        assert_eq!(ok.unwrap(), Schedule::every(5, "UTC"));
        for (body, names) in [
            (&br#"{"interval_seconds": 5, "timezone": "UTC", "color": 1}"#[..], "color"),
            (br#"{"interval_seconds": 0, "timezone": "UTC"}"#, "interval_seconds"),
            (br#"{"interval_seconds": 5, "timezone": "Mars/Base"}"#, "timezone"),
            (
                br#"{"interval_seconds": 5, "timezone": "UTC", "sun": {"latitude": 95, "longitude": 0}}"#,
                "sun.latitude",
            ),
            (
                br#"{"interval_seconds": 5, "timezone": "UTC", "windows": [{"start": "9", "end": "10:00"}]}"#,
                "HH:MM",
            ),
        ] {
            match parse(body) {
                Err(Error::Unprocessable(detail)) => assert!(detail.contains(names), "{detail}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        assert!(matches!(parse(b"{nope"), Err(Error::BadRequest(_))));
    }
}
