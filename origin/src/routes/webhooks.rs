//! `/api/webhooks/...`: operators' webhooks and their delivery log (admin token or an
//! operator's session; never public). Reads are `private, no-cache` with a content-hash ETag;
//! the answer that carries a new webhook's secret is `private, no-store`.

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use timelapser_core::policy::ContentKind;

use super::auth::AdminAuth;
use super::respond::{self, JSON};
use super::{Json, Path, Query};
use crate::error::{Error, Result};
use crate::services::webhooks::{self, NewWebhook, WebhookChanges};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/webhooks", get(list).post(create))
        .route("/api/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/api/webhooks/{id}/deliveries", get(deliveries))
}

/// `POST /api/webhooks {url, secret?, events, enabled?}`: 201 with the webhook and its
/// secret (shown this once).
async fn create(
    State(state): State<AppState>,
    _: AdminAuth,
    Json(body): Json<serde_json::Value>,
) -> Result<Response> {
    let created = webhooks::create(&state, NewWebhook::from_json(body)?).await?;
    let body = serde_json::to_vec(&created).map_err(|e| Error::Internal(e.into()))?;
    let mut response = (StatusCode::CREATED, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, JSON);
    // It carries the secret: kept by no cache, the browser's included.
    h.insert(
        header::CACHE_CONTROL,
        ContentKind::Credentials.cache_control(),
    );
    respond::location(
        &mut response,
        &format!("/api/webhooks/{}", created.webhook.id),
    )?;
    Ok(response)
}

async fn list(
    State(state): State<AppState>,
    _: AdminAuth,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = webhooks::list(&state).await?;
    Ok(respond::private_json(&method, &headers, &rep))
}

async fn show(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = webhooks::get(&state, id).await?;
    Ok(respond::private_json(&method, &headers, &rep))
}

/// `PATCH /api/webhooks/{id} {url?, secret?, events?, enabled?}`.
async fn update(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response> {
    let rep = webhooks::update(&state, id, WebhookChanges::from_json(body)?).await?;
    Ok(respond::written(StatusCode::OK, &rep))
}

async fn remove(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
) -> Result<Response> {
    webhooks::delete(&state, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    limit: Option<i64>,
}

/// `GET /api/webhooks/{id}/deliveries?limit=` (default 50, at most 200): newest first.
async fn deliveries(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<i64>,
    Query(query): Query<LogQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let rep = webhooks::deliveries(&state, id, query.limit).await?;
    Ok(respond::private_json(&method, &headers, &rep))
}
