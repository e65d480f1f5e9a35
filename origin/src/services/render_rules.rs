//! Automatic videos: per camera, rules such as "daily at 00:10, yesterday's frames, standard"
//! (`/api/cameras/{id}/render-rules`, `/api/render-rules/{id}`; admin documents) and the
//! runner that makes them.
//!
//! A run is claimed by moving the rule's `last_due` forward in the same write transaction that
//! queues its video (`db::render_rules::claim`, a conditional UPDATE), so a run happens once
//! however many replicas look at it, and never twice after a crash (the claim and the video
//! commit together). The runner looks at start-up, every `--render-rules-interval-seconds`
//! and when a rule changes; a run missed while no origin ran is the latest due one, made up
//! at the next start (only the latest: a week of missed daily runs is one video, yesterday's).
//! Times come from `state.clock` (set by tests), in the site's time zone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use timelapser_core::conditional::{Precondition, Preconditions, Validators};
use timelapser_core::etag::{EntityTag, HashAlgorithm};
use timelapser_core::render::{CameraRenderRule, RenderRule};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::auth::Audience;
use crate::cache::Represented;
use crate::db::{self, from_micros, render_rules::RuleRow, to_micros};
use crate::error::{Error, Result};
use crate::render::{queue_in, Queuing};
use crate::services::{cameras, settings};
use crate::state::AppState;

/// Wakes the runner when a rule changes.
#[derive(Default)]
pub struct RuleRunner {
    changed: Notify,
}

fn parse_rule(body: &[u8]) -> Result<RenderRule> {
    let fields = crate::routes::document_fields(body, "a render rule", &RenderRule::READ_ONLY)?;
    let rule: RenderRule = crate::routes::parse_value(Value::Object(fields))?;
    rule.validate()
        .map_err(|e| Error::Unprocessable(e.to_string()))?;
    Ok(rule)
}

fn represent(row: &RuleRow, now: DateTime<Utc>, tz: Tz) -> Result<CameraRenderRule> {
    let rule: RenderRule =
        serde_json::from_str(&row.document).map_err(|e| Error::Internal(e.into()))?;
    let next_run_at = rule.next_run(now, tz);
    Ok(CameraRenderRule {
        id: row.id,
        camera_id: row.camera_id,
        last_run_at: row.last_due.map(from_micros),
        last_result: row.last_result.clone(),
        next_run_at,
        created_at: from_micros(row.created_at),
        updated_at: from_micros(row.updated_at),
        rule,
    })
}

/// Validators are hashes of the representation: a run changes `last_result` and
/// `next_run_at` without anyone editing the rule.
fn content_etag<T: serde::Serialize>(value: &T) -> Result<EntityTag> {
    let body = serde_json::to_vec(value).map_err(|e| Error::Internal(e.into()))?;
    Ok(EntityTag::from_content(&body, HashAlgorithm::Sha256))
}

/// A camera's rules (`GET /api/cameras/{id}/render-rules`).
pub async fn list(state: &AppState, camera_id: i64) -> Result<Represented<Vec<CameraRenderRule>>> {
    let tz = settings::time_zone(state).await?;
    let now = state.clock.now();
    cameras::require_visible(state, camera_id, Audience::SignedIn).await?;
    let mut conn = state.db.pool().acquire().await?;
    let rows = db::render_rules::for_camera(&mut conn, camera_id).await?;
    let rules = rows
        .iter()
        .map(|row| represent(row, now, tz))
        .collect::<Result<Vec<_>>>()?;
    let etag = content_etag(&rules)?;
    Represented::json(rules, etag)
}

/// One rule (`GET /api/render-rules/{id}`).
pub async fn get(state: &AppState, id: i64) -> Result<Represented<CameraRenderRule>> {
    let tz = settings::time_zone(state).await?;
    let mut conn = state.db.pool().acquire().await?;
    let row = db::render_rules::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found("render rule", id))?;
    let rule = represent(&row, state.clock.now(), tz)?;
    let etag = content_etag(&rule)?;
    Represented::json(rule, etag)
}

/// Adds a rule (`POST /api/cameras/{id}/render-rules`): its first run is the next one due
/// (a new daily rule does not render yesterday at once).
pub async fn create(
    state: &AppState,
    camera_id: i64,
    body: &[u8],
) -> Result<Represented<CameraRenderRule>> {
    let rule = parse_rule(body)?;
    let tz = settings::time_zone(state).await?;
    let now = state.clock.now();
    let document = serde_json::to_string(&rule).map_err(|e| Error::Internal(e.into()))?;
    let last_due = rule.last_run(now, tz).map(|run| to_micros(run.due));
    cameras::require_visible(state, camera_id, Audience::SignedIn).await?;
    let mut tx = state.db.begin_write().await?;
    let row = db::render_rules::insert(
        &mut tx,
        camera_id,
        &document,
        last_due,
        to_micros(db::now()),
    )
    .await?;
    tx.commit().await?;
    state.rules.changed.notify_one();
    let rule = represent(&row, now, tz)?;
    let etag = content_etag(&rule)?;
    Represented::json(rule, etag)
}

/// Replaces a rule (`PUT /api/render-rules/{id}`, If-Match honoured): it runs from its next
/// due time on.
pub async fn put(
    state: &AppState,
    id: i64,
    preconditions: &Preconditions,
    body: &[u8],
) -> Result<Represented<CameraRenderRule>> {
    let rule = parse_rule(body)?;
    let tz = settings::time_zone(state).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin_write().await?;
    let current = db::render_rules::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("render rule", id))?;
    let current = represent(&current, now, tz)?;
    match preconditions.evaluate(
        &axum::http::Method::PUT,
        &Validators::new(Some(&content_etag(&current)?), None),
    ) {
        Precondition::Proceed => {}
        Precondition::NotModified | Precondition::Failed => return Err(Error::PreconditionFailed),
    }
    let document = serde_json::to_string(&rule).map_err(|e| Error::Internal(e.into()))?;
    let last_due = rule.last_run(now, tz).map(|run| to_micros(run.due));
    let row = db::render_rules::update(&mut tx, id, &document, last_due, to_micros(db::now()))
        .await?
        .ok_or_else(|| Error::not_found("render rule", id))?;
    tx.commit().await?;
    state.rules.changed.notify_one();
    let rule = represent(&row, now, tz)?;
    let etag = content_etag(&rule)?;
    Represented::json(rule, etag)
}

/// Deletes a rule (`DELETE /api/render-rules/{id}`); its videos stay.
pub async fn delete(state: &AppState, id: i64) -> Result<()> {
    let mut tx = state.db.begin_write().await?;
    if db::render_rules::get(&mut tx, id).await?.is_none() {
        return Err(Error::not_found("render rule", id));
    }
    db::render_rules::delete(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Runs every rule whose latest run is due and not yet claimed; the ids of the videos it
/// queued.
pub async fn run_due(state: &AppState) -> Result<Vec<i64>> {
    let tz = settings::time_zone(state).await?;
    let now = state.clock.now();
    let rows = {
        let mut conn = state.db.pool().acquire().await?;
        db::render_rules::all(&mut conn).await?
    };
    let mut queued = Vec::new();
    for row in rows {
        let rule: RenderRule = match serde_json::from_str(&row.document) {
            Ok(rule) => rule,
            Err(e) => {
                tracing::warn!(rule = row.id, error = %e, "an unreadable render rule is skipped");
                continue;
            }
        };
        if !rule.enabled {
            continue;
        }
        let Some(run) = rule.last_run(now, tz) else {
            continue;
        };
        let due = to_micros(run.due);
        if row.last_due.is_some_and(|last| last >= due) {
            continue;
        }
        let mut tx = state.db.begin_write().await?;
        if !db::render_rules::claim(&mut tx, row.id, due).await? {
            // Another replica ran it first.
            continue;
        }
        let (from, to) = (to_micros(run.from), to_micros(run.to));
        let window = format!(
            "{} to {}",
            run.from.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z"),
            run.to.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
        );
        let options = rule
            .request(Some(run.from), Some(run.to))
            .validate()
            .map_err(|e| Error::Unprocessable(e.to_string()))?;
        let timelapse =
            db::images::newest_timelapse_between(&mut tx, row.camera_id, from, to).await?;
        let mut logged = Vec::new();
        let mut started = None;
        let result = match timelapse {
            None => format!("no frames in a timelapse from {window}"),
            Some(_) if state.renderer.require_ffmpeg().is_err() => {
                "ffmpeg is not installed on the origin".to_owned()
            }
            Some(timelapse) => {
                match queue_in(
                    &mut tx,
                    timelapse,
                    options,
                    tz.name(),
                    Some(row.id),
                    db::now(),
                )
                .await?
                {
                    Queuing::Queued(video, event) => {
                        logged.push(*event);
                        started = Some(video.id);
                        format!("video {} queued: frames from {window}", video.id)
                    }
                    Queuing::Existing(video) => {
                        format!("video {} already made: frames from {window}", video.id)
                    }
                    Queuing::NoFrames => format!("no frames from {window}"),
                }
            }
        };
        db::render_rules::set_result(&mut tx, row.id, &result).await?;
        state.events.commit(tx, logged).await?;
        tracing::info!(rule = row.id, camera = row.camera_id, %result, "render rule ran");
        if let Some(id) = started {
            state.renderer.start(id);
            queued.push(id);
        }
    }
    Ok(queued)
}

/// Starts the runner: at once (making up a missed run), then every `interval` and whenever a
/// rule changes.
pub fn spawn(state: AppState, interval: Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_due(&state).await {
                tracing::warn!(error = %e, "running render rules failed; retrying");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = state.rules.changed.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}
