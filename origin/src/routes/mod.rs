//! HTTP routes: one module per resource, each exposing a `router()`, merged here. Routes set
//! status and headers (every header value from core); services do the work.

mod assets;
mod cameras;
mod dashboard;
pub(crate) mod events;
mod media;
mod ops;
mod pages;
pub mod respond;
mod settings;
mod timelapses;

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::error::{problem_response, Error};
use crate::state::AppState;

/// The whole application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(cameras::router())
        .merge(timelapses::router())
        .merge(settings::router())
        .merge(dashboard::router())
        .merge(events::router())
        .merge(media::router())
        .merge(ops::router())
        .merge(pages::router())
        .merge(assets::router())
        .fallback(|| async { problem_response(StatusCode::NOT_FOUND, "no such resource".into()) })
        .method_not_allowed_fallback(|| async {
            problem_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "this method is not allowed on this resource".into(),
            )
        })
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            problem_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not complete the request; it has been logged".into(),
            )
        }))
        .with_state(state)
}

/// Counts requests by route, method and status (`http_requests_total`).
///
/// Counter handles are looked up once per (route, method, status) and kept: building a
/// labelled metric key per request (three label strings and a key allocation) cost as much
/// as answering a 304.
///
/// It also logs each request at DEBUG (`RUST_LOG=timelapser_origin=debug`); tower-http's
/// TraceLayer cost a tenth of the throughput of a 304 even with its spans disabled.
async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = tracing::enabled!(tracing::Level::DEBUG).then(std::time::Instant::now);
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    request_counter(route, &method, response.status()).increment(1);
    if let Some(started) = started {
        tracing::debug!(%method, route, status = response.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    }
    response
}

type CounterTable = HashMap<Box<str>, Vec<(Method, StatusCode, metrics::Counter)>>;

pub(crate) fn request_counter(
    route: &str,
    method: &Method,
    status: StatusCode,
) -> metrics::Counter {
    static COUNTERS: OnceLock<RwLock<CounterTable>> = OnceLock::new();
    let table = COUNTERS.get_or_init(Default::default);
    let find = |table: &CounterTable| {
        table.get(route).and_then(|row| {
            row.iter()
                .find(|(m, s, _)| m == method && *s == status)
                .map(|(_, _, counter)| counter.clone())
        })
    };
    if let Some(counter) = find(&table.read().expect("metrics table lock")) {
        return counter;
    }
    let counter = metrics::counter!(
        "http_requests_total",
        "route" => route.to_owned(),
        "method" => method.to_string(),
        "status" => status.as_u16().to_string()
    );
    table
        .write()
        .expect("metrics table lock")
        .entry(route.into())
        .or_default()
        .push((method.clone(), status, counter.clone()));
    counter
}

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        Error::BadRequest(format!("invalid path: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Error::BadRequest(format!("invalid query: {}", rejection.body_text()))
    }
}

impl From<BytesRejection> for Error {
    fn from(rejection: BytesRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge {
                limit: JSON_BODY_LIMIT as u64,
            },
            _ => Error::BadRequest(rejection.body_text()),
        }
    }
}

/// Largest JSON body accepted (axum's default body limit).
pub const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// `Path` whose rejection is a problem document.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

/// `Query` whose rejection is a problem document.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

/// A body whose rejection (too large, unreadable) is a problem document.
pub struct RawBody(pub bytes::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(bytes::Bytes::from_request(request, state).await?))
    }
}

/// Parses a JSON body: 400 when it is not JSON, 422 when it is JSON of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::BadRequest(format!("the body is not JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| Error::Unprocessable(format!("unexpected JSON: {e}")))
}

/// A JSON body whose errors are problem documents: 400 for malformed JSON, 422 for JSON of
/// the wrong shape, 413 when too large.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        parse_json(&bytes).map(Json)
    }
}

/// An error response from an error, for handlers that build responses by hand.
pub fn error_response(error: Error) -> Response {
    error.into_response()
}
