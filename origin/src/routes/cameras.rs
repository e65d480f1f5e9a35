//! `/api/cameras/...`: cameras, their images, captures and status.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use timelapser_core::policy::ContentKind;

use super::auth::{AdminAuth, CameraAuth, CameraOrAdmin, Viewer};
use super::respond::{self, JSON};
use super::{body_error, declared_length, Json, Path, Query, RawBody};
use crate::cache::Represented;
use crate::error::{Error, Result};
use crate::services::captures::{self, Captured};
use crate::services::{cameras, schedules, storage, timelapses};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/cameras", get(list).post(create))
        .route("/api/cameras/{id}", get(show).patch(update).delete(remove))
        .route("/api/cameras/{id}/latest-image", get(latest_image))
        .route(
            "/api/cameras/{id}/images",
            get(images).delete(delete_images),
        )
        .route("/api/images/{id}", axum::routing::delete(delete_image))
        .route(
            "/api/cameras/{id}/retention",
            get(show_retention).put(update_retention),
        )
        .route("/api/cameras/{id}/captures", post(capture))
        .route("/api/cameras/{id}/status", put(status))
        .route(
            "/api/cameras/{id}/schedule",
            get(show_schedule).put(update_schedule),
        )
        .route(
            "/api/cameras/{id}/timelapses",
            post(start_timelapse).get(list_timelapses),
        )
}

async fn list(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = cameras::list(&state, audience).await?;
    Ok(respond::representation(
        &method,
        &headers,
        audience.kind(ContentKind::Collection),
        &rep,
        JSON,
    ))
}

#[derive(Deserialize)]
struct NewCamera {
    name: String,
}

async fn create(
    State(state): State<AppState>,
    _: AdminAuth,
    Json(body): Json<NewCamera>,
) -> Result<Response> {
    let created = cameras::create(&state, &body.name).await?;
    let mut response = respond::json(StatusCode::CREATED, &created)?;
    respond::location(
        &mut response,
        &format!("/api/cameras/{}", created.camera.id),
    )?;
    Ok(response)
}

async fn show(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = cameras::get(&state, id, audience).await?;
    Ok(respond::representation(
        &method,
        &headers,
        audience.kind(ContentKind::EntityMetadata),
        &rep,
        JSON,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CameraChanges {
    name: Option<String>,
    public: Option<bool>,
}

async fn update(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    Json(changes): Json<CameraChanges>,
) -> Result<Response> {
    if let Some(name) = &changes.name {
        // Checked before anything changes, so a bad name changes nothing.
        cameras::validate_name(name)?;
    }
    let mut camera = None;
    if let Some(name) = changes.name {
        camera = Some(cameras::rename(&state, id, &name).await?);
    }
    if let Some(public) = changes.public {
        camera = Some(cameras::set_public(&state, id, public).await?);
    }
    let Some(camera) = camera else {
        // Nothing to change: answer with the camera as it is.
        let rep = cameras::get_any(&state, id).await?;
        return Ok(respond::written(StatusCode::OK, &rep));
    };
    let etag = cameras::camera_etag(&camera);
    Ok(respond::written(
        StatusCode::OK,
        &Represented::json(camera, etag)?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
) -> Result<Response> {
    cameras::delete(&state, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn latest_image(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = cameras::latest_image(&state, id, audience).await?;
    Ok(respond::representation(
        &method,
        &headers,
        audience.kind(ContentKind::EntityMetadata),
        &rep,
        JSON,
    ))
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<i64>,
    before: Option<i64>,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
}

/// `GET /api/cameras/{id}/images?limit=&before=&from=&to=`: newest first; `from` and `to`
/// (RFC 3339) bound the capture times to `[from, to)`, as the range delete does.
async fn images(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    Path(id): Path<i64>,
    Query(query): Query<PageQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = cameras::images(
        &state,
        id,
        audience,
        cameras::ImagesQuery {
            limit: query.limit.unwrap_or(50),
            before: query.before,
            from: query.from,
            to: query.to,
        },
    )
    .await?;
    Ok(respond::representation(
        &method,
        &headers,
        audience.kind(ContentKind::Collection),
        &rep,
        JSON,
    ))
}

async fn capture(
    State(state): State<AppState>,
    CameraAuth { camera_id }: CameraAuth,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let limit = state.config.max_capture_bytes;
    let rejected = |reason: &'static str| {
        state.metrics.record(|| {
            metrics::counter!("captures_rejected_total", "reason" => reason).increment(1)
        })
    };
    // Who first (the extractor), then how big, then what: nothing is read from a request
    // that may not upload, nor one that says it is too large.
    if declared_length(&headers).is_some_and(|len| len > limit) {
        rejected("too_large");
        return Err(Error::PayloadTooLarge { limit });
    }
    if let Err(e) = captures::check_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    ) {
        rejected("media_type");
        return Err(e);
    }
    let captured_at = captures::parse_capture_time(
        headers
            .get("capture-time")
            .map(|v| v.to_str().unwrap_or("\u{0}")),
    )
    .inspect_err(|_| rejected("capture_time"))?;
    let body = match axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX)).await
    {
        Ok(bytes) => bytes,
        Err(e) => {
            let error = body_error(e, limit);
            rejected(match error {
                Error::PayloadTooLarge { .. } => "too_large",
                Error::RequestTimeout(_) => "timeout",
                _ => "body",
            });
            return Err(error);
        }
    };
    match captures::ingest(&state, camera_id, captured_at, body).await {
        Ok(Captured::Created(image)) => {
            state
                .metrics
                .record(|| metrics::counter!("captures_accepted_total").increment(1));
            let mut response = respond::json(StatusCode::CREATED, &image)?;
            respond::location(&mut response, &image.url)?;
            Ok(response)
        }
        Ok(Captured::Existing(image)) => {
            state
                .metrics
                .record(|| metrics::counter!("captures_duplicate_total").increment(1));
            respond::json(StatusCode::OK, &image)
        }
        Err(e) => {
            rejected(match e {
                Error::Unprocessable(_) => "unprocessable",
                _ => "error",
            });
            Err(e)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusReport {
    status: String,
    message: Option<String>,
}

async fn status(
    State(state): State<AppState>,
    CameraAuth { camera_id }: CameraAuth,
    Json(report): Json<StatusReport>,
) -> Result<Response> {
    let camera =
        cameras::report_status(&state, camera_id, &report.status, report.message.as_deref())
            .await?;
    let etag = cameras::camera_etag(&camera);
    Ok(respond::written(
        StatusCode::OK,
        &Represented::json(camera, etag)?,
    ))
}

#[derive(Deserialize)]
struct NewTimelapse {
    name: String,
}

async fn start_timelapse(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    Json(body): Json<NewTimelapse>,
) -> Result<Response> {
    let timelapse = timelapses::start(&state, id, &body.name).await?;
    let etag = timelapses::timelapse_etag(&timelapse);
    let location = format!("/api/timelapses/{}", timelapse.id);
    let mut response = respond::written(StatusCode::CREATED, &Represented::json(timelapse, etag)?);
    respond::location(&mut response, &location)?;
    Ok(response)
}

async fn list_timelapses(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = timelapses::for_camera(&state, id, audience).await?;
    Ok(respond::representation(
        &method,
        &headers,
        audience.kind(ContentKind::Collection),
        &rep,
        JSON,
    ))
}

async fn show_schedule(
    State(state): State<AppState>,
    CameraOrAdmin { camera_id }: CameraOrAdmin,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = schedules::get(&state, camera_id).await?;
    Ok(respond::private_json(&method, &headers, &rep))
}

async fn update_schedule(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let preconditions = timelapser_core::conditional::Preconditions::from_headers(&headers);
    let rep = schedules::put(&state, id, &preconditions, &body).await?;
    Ok(respond::written(StatusCode::OK, &rep))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureRange {
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
}

/// `DELETE /api/cameras/{id}/images?from=&to=`: 200 with what went (`deleted`, `bytes`).
async fn delete_images(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    Query(range): Query<CaptureRange>,
) -> Result<Response> {
    let deleted = storage::delete_range(&state, id, range.from, range.to).await?;
    respond::json(
        StatusCode::OK,
        &serde_json::json!({ "deleted": deleted.images, "bytes": deleted.bytes }),
    )
}

async fn delete_image(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
) -> Result<Response> {
    storage::delete_image(&state, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn show_retention(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = storage::get_retention(&state, id).await?;
    Ok(respond::private_json(&method, &headers, &rep))
}

async fn update_retention(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let preconditions = timelapser_core::conditional::Preconditions::from_headers(&headers);
    let rep = storage::put_retention(&state, id, &preconditions, &body).await?;
    Ok(respond::written(StatusCode::OK, &rep))
}
