//! `/api/timelapses/...` and `/api/videos/...`.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use timelapser_core::policy::ContentKind;

use super::respond::{self, JSON};
use super::Path;
use crate::cache::Representation;
use crate::error::Result;
use crate::services::timelapses;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/timelapses/{id}", get(show))
        .route("/api/timelapses/{id}/stop", post(stop))
        .route("/api/timelapses/{id}/videos", get(videos))
        .route("/api/videos/{id}", get(video))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = timelapses::get(&state, id).await?;
    Ok(respond::representation(
        &method,
        &headers,
        ContentKind::EntityMetadata,
        &rep,
        JSON,
    ))
}

async fn stop(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response> {
    state.admin.require(&headers)?;
    let timelapse = timelapses::stop(&state, id).await?;
    let rep = Representation::json(&timelapse, timelapses::timelapse_etag(&timelapse))?;
    Ok(respond::written(StatusCode::OK, &rep))
}

async fn videos(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = timelapses::videos(&state, id).await?;
    Ok(respond::representation(
        &method,
        &headers,
        ContentKind::Collection,
        &rep,
        JSON,
    ))
}

async fn video(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = timelapses::video(&state, id).await?;
    Ok(respond::representation(
        &method,
        &headers,
        ContentKind::EntityMetadata,
        &rep,
        JSON,
    ))
}
