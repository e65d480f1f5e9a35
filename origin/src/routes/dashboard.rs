//! `/api/dashboard/stats`.

use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use timelapser_core::policy::ContentKind;

use super::auth::Viewer;
use super::respond::{self, JSON};
use crate::error::Result;
use crate::services::stats;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/dashboard/stats", get(show))
}

async fn show(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = stats::get(&state, audience).await?;
    Ok(respond::representation(
        &method,
        &headers,
        audience.kind(ContentKind::Aggregate),
        &rep,
        JSON,
    ))
}
