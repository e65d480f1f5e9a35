//! `/api/settings` and `/api/preferences`.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use timelapser_core::policy::ContentKind;

use timelapser_core::conditional::Preconditions;

use super::auth::AdminAuth;
use super::respond::{self, JSON};
use super::RawBody;
use crate::error::Result;
use crate::services::settings;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/settings", get(show).put(update))
        .route(
            "/api/preferences",
            get(show_preferences).put(update_preferences),
        )
}

async fn show(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = settings::get(&state).await?;
    Ok(respond::representation(
        &method,
        &headers,
        ContentKind::Settings,
        &rep,
        JSON,
    ))
}

async fn update(
    State(state): State<AppState>,
    _: AdminAuth,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let rep = settings::put(&state, &Preconditions::from_headers(&headers), &body).await?;
    Ok(respond::written(StatusCode::OK, &rep))
}

async fn show_preferences(
    State(state): State<AppState>,
    _: AdminAuth,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = settings::get_preferences(&state).await?;
    Ok(respond::representation(
        &method,
        &headers,
        ContentKind::Settings,
        &rep,
        JSON,
    ))
}

async fn update_preferences(
    State(state): State<AppState>,
    _: AdminAuth,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let rep =
        settings::put_preferences(&state, &Preconditions::from_headers(&headers), &body).await?;
    Ok(respond::written(StatusCode::OK, &rep))
}
