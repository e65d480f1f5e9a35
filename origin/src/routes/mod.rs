//! HTTP routes: one module per resource, each exposing a `router()`, merged here. Routes set
//! status and headers (every header value from core); services do the work.

mod assets;
pub mod auth;
mod cameras;
mod dashboard;
pub mod events;
mod media;
pub mod ops;
mod pages;
pub mod respond;
mod settings;
mod timelapses;

use std::time::Duration;

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{header, StatusCode};
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
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::record,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            problem_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not complete the request; it has been logged".into(),
            )
        }))
        .with_state(state)
}

/// Bounds the time from a request's head to its response's head (the body's arrival
/// included): a client that stalls mid-upload gets 408 and its connection is closed,
/// instead of holding memory and a task for as long as it likes. The bodies of responses
/// (event streams, large files) are not bounded by this.
async fn request_deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = Error::RequestTimeout(limit.as_secs()).into_response();
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            response
        }
    }
}

/// The longest a request may take to arrive, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

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

/// Largest JSON body accepted: what the largest document (preferences, 64 KiB) needs.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// `Path` whose rejection is a problem document.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

/// `Query` whose rejection is a problem document.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

/// A body of at most [`JSON_BODY_LIMIT`] bytes whose rejection (too large, unreadable) is a
/// problem document. A declared Content-Length over the limit is refused before anything is
/// read.
pub struct RawBody(pub bytes::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Error;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let too_large = Error::PayloadTooLarge {
            limit: JSON_BODY_LIMIT as u64,
        };
        if declared_length(request.headers()).is_some_and(|n| n > JSON_BODY_LIMIT as u64) {
            return Err(too_large);
        }
        match axum::body::to_bytes(request.into_body(), JSON_BODY_LIMIT).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(e) if is_length_limit(&e) => Err(too_large),
            Err(e) => Err(Error::BadRequest(format!("could not read the body: {e}"))),
        }
    }
}

/// The Content-Length a request declares, if any (and valid).
pub fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Whether a body error is its length limit.
pub fn is_length_limit(error: &axum::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
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
