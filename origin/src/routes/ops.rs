//! `/healthz`, `/metrics` and `/api/cache/stats`: operational, never cached, never public.
//!
//! On the main listener `/metrics` and `/api/cache/stats` need the admin token; the
//! operations listener (`--ops-listen`, loopback by default) serves them to whoever can reach
//! it, for a Prometheus scraper on the same host or network. The edge refuses these paths.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use timelapser_core::paths::{CACHE_STATS, METRICS};
use timelapser_core::policy::ContentKind;

use super::auth::AdminAuth;
use super::respond;
use crate::error::{problem_response, Error, Result};
use crate::state::AppState;

/// The operational routes of the main listener.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route(
            METRICS,
            get(|_: AdminAuth, state: State<AppState>| metrics(state)),
        )
        .route(
            CACHE_STATS,
            get(|_: AdminAuth, state: State<AppState>| cache_stats(state)),
        )
}

/// The operations listener's whole application: the same endpoints, without a token.
pub fn operations_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route(METRICS, get(metrics))
        .route(CACHE_STATS, get(cache_stats))
        .fallback(|| async {
            problem_response(
                StatusCode::NOT_FOUND,
                "the operations listener serves /healthz, /metrics and /api/cache/stats".into(),
            )
        })
        .with_state(state)
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

async fn cache_stats(State(state): State<AppState>) -> Result<Response> {
    respond::json(StatusCode::OK, &state.cache.stats().await)
}
