//! `/api/timelapses/...` and `/api/videos/...`.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use timelapser_core::policy::ContentKind;
use timelapser_core::render::RenderRequest;

use super::auth::{AdminAuth, Viewer};
use super::respond::{self, JSON};
use super::{parse_json, Json, Path, Query, RawBody};
use crate::cache::Represented;
use crate::error::Result;
use crate::services::{render_rules, settings, storage, timelapses};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/timelapses/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/api/timelapses/{id}/stop", post(stop))
        .route("/api/timelapses/{id}/videos", get(videos).post(render))
        .route("/api/videos/{id}", get(video).delete(delete_video))
        .route(
            "/api/cameras/{id}/render-rules",
            get(list_rules).post(create_rule),
        )
        .route(
            "/api/render-rules/{id}",
            get(show_rule).put(update_rule).delete(delete_rule),
        )
}

async fn show(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = timelapses::get(&state, id, audience).await?;
    Ok(respond::representation(
        &method,
        &headers,
        audience.kind(ContentKind::EntityMetadata),
        &rep,
        JSON,
    ))
}

async fn stop(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
) -> Result<Response> {
    let timelapse = timelapses::stop(&state, id).await?;
    let etag = timelapses::timelapse_etag(&timelapse);
    Ok(respond::written(
        StatusCode::OK,
        &Represented::json(timelapse, etag)?,
    ))
}

async fn videos(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = timelapses::videos(&state, id, audience).await?;
    Ok(respond::representation(
        &method,
        &headers,
        audience.kind(ContentKind::Collection),
        &rep,
        JSON,
    ))
}

async fn video(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = timelapses::video(&state, id, audience).await?;
    Ok(respond::representation(
        &method,
        &headers,
        audience.kind(ContentKind::EntityMetadata),
        &rep,
        JSON,
    ))
}

/// `POST /api/timelapses/{id}/videos` with core's render options (all optional; no body: the
/// defaults): 202 and a new video, or 200 and the video the same request made before.
async fn render(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let request: RenderRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RenderRequest::default()
    } else {
        parse_json(&body)?
    };
    let zone = settings::time_zone(&state).await?;
    let queued = state.renderer.queue(id, request, zone.name()).await?;
    let status = if queued.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let etag = timelapses::video_etag(&queued.video);
    let location = format!("/api/videos/{}", queued.video.id);
    let mut response = respond::written(status, &Represented::json(queued.video, etag)?);
    respond::location(&mut response, &location)?;
    Ok(response)
}

async fn delete_video(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
) -> Result<Response> {
    state.renderer.delete(id).await?;
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelapseChanges {
    name: Option<String>,
    protected: Option<bool>,
}

/// `PATCH /api/timelapses/{id}` `{name?, protected?}`.
async fn update(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    Json(changes): Json<TimelapseChanges>,
) -> Result<Response> {
    let timelapse =
        storage::update_timelapse(&state, id, changes.name.as_deref(), changes.protected).await?;
    let etag = timelapses::timelapse_etag(&timelapse);
    Ok(respond::written(
        StatusCode::OK,
        &Represented::json(timelapse, etag)?,
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteTimelapse {
    frames: Option<Frames>,
}

#[derive(serde::Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Frames {
    Keep,
    Delete,
}

/// `DELETE /api/timelapses/{id}?frames=keep|delete` (default keep): 204.
async fn remove(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    Query(query): Query<DeleteTimelapse>,
) -> Result<Response> {
    storage::delete_timelapse(&state, id, query.frames == Some(Frames::Delete)).await?;
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

/// `GET /api/cameras/{id}/render-rules`: the camera's automatic render rules (admin).
async fn list_rules(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = render_rules::list(&state, id).await?;
    Ok(respond::private_json(&method, &headers, &rep))
}

/// `POST /api/cameras/{id}/render-rules` with core's `RenderRule`: 201.
async fn create_rule(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let rep = render_rules::create(&state, id, &body).await?;
    let location = format!("/api/render-rules/{}", rep.value.id);
    let mut response = respond::written(StatusCode::CREATED, &rep);
    respond::location(&mut response, &location)?;
    Ok(response)
}

async fn show_rule(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = render_rules::get(&state, id).await?;
    Ok(respond::private_json(&method, &headers, &rep))
}

/// `PUT /api/render-rules/{id}` (If-Match honoured).
async fn update_rule(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let preconditions = timelapser_core::conditional::Preconditions::from_headers(&headers);
    let rep = render_rules::put(&state, id, &preconditions, &body).await?;
    Ok(respond::written(StatusCode::OK, &rep))
}

async fn delete_rule(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
) -> Result<Response> {
    render_rules::delete(&state, id).await?;
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}
