//! `/healthz`, `/metrics` and `/api/cache/stats`: operational, never cached.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use timelapser_core::policy::ContentKind;

use super::respond;
use crate::error::{Error, Result};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/api/cache/stats", get(cache_stats))
}

async fn health(State(state): State<AppState>) -> Result<Response> {
    if !state.db.ping().await {
        return Err(Error::Unavailable("the database does not answer".into()));
    }
    respond::json(
        StatusCode::OK,
        &serde_json::json!({ "status": "ok", "database": "ok" }),
    )
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    h.insert(
        header::CACHE_CONTROL,
        ContentKind::Operational.cache_control(),
    );
    response
}

async fn cache_stats(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    state.admin.require(&headers)?;
    respond::json(StatusCode::OK, &state.cache.stats().await)
}
