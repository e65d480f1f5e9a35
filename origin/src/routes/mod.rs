//! HTTP routes: one module per resource, each exposing a `router()`, merged here. Routes set
//! status and headers (every header value from core); services do the work.

mod account;
mod assets;
pub mod auth;
mod cameras;
mod console;
mod dashboard;
pub mod events;
mod media;
pub mod ops;
mod pages;
pub mod respond;
mod settings;
mod timelapses;
mod webhooks;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use serde::de::DeserializeOwned;

use crate::error::{problem_response, Error};
use crate::state::AppState;

/// The whole application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(cameras::router())
        .merge(timelapses::router())
        .merge(webhooks::router())
        .merge(settings::router())
        .merge(dashboard::router())
        .merge(events::router())
        .merge(media::router())
        .merge(ops::router())
        .merge(pages::router())
        .merge(account::router())
        .merge(console::router())
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
            request_body,
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

/// What a request's body owes the connection.
///
/// - Its arrival is bounded: a client that stalls mid-upload gets 408 (from the extractor
///   reading the body) instead of holding memory and a task for as long as it likes. Only
///   the arrival is bounded, not the work after it, so a capture received in time is never
///   answered with an error because storing it took long.
/// - A body the handler did not read (a request refused from its head: 401, 403, 413) is
///   read and discarded when it is small, so the client's kept-alive connection stays usable;
///   a larger one is not read, and the response says `Connection: close`, so the client does
///   not send its next request on a connection the server is closing.
async fn request_body(State(state): State<AppState>, request: Request, next: Next) -> Response {
    use http_body::Body as _;
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let limit = state.config.request_timeout;
    let slot = Arc::new(Mutex::new(BodySlot::default()));
    let request = request.map(|body| {
        slot.lock().expect("body slot").body = Some(body);
        axum::body::Body::new(GuardedBody::new(slot.clone(), limit))
    });
    let mut response = next.run(request).await;
    let unread = {
        let mut slot = slot.lock().expect("body slot");
        (!slot.ended).then(|| slot.body.take()).flatten()
    };
    if let Some(body) = unread {
        let drained = response.status() != StatusCode::REQUEST_TIMEOUT
            && tokio::time::timeout(
                limit.min(DRAIN_WITHIN),
                axum::body::to_bytes(body, DRAIN_LIMIT),
            )
            .await
            .is_ok_and(|read| read.is_ok());
        if !drained {
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
    }
    response
}

/// The most of an unread body discarded to keep its connection (a refused upload's JSON or a
/// small frame); beyond it the connection is closed instead.
const DRAIN_LIMIT: usize = 64 * 1024;

/// How long discarding an unread body may take.
const DRAIN_WITHIN: Duration = Duration::from_secs(5);

/// A request body, and whether it was read to its end.
#[derive(Default)]
struct BodySlot {
    body: Option<axum::body::Body>,
    ended: bool,
}

/// The body handlers see: the client's body, kept in a slot the middleware takes back if the
/// handler did not read it, failing with [`BodyDeadline`] if it has not ended by its deadline.
/// (tower-http's `TimeoutBody` bounds the time between frames; a trickle would reset it.)
struct GuardedBody {
    slot: Arc<Mutex<BodySlot>>,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl GuardedBody {
    fn new(slot: Arc<Mutex<BodySlot>>, limit: Duration) -> Self {
        Self {
            slot,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        }
    }
}

/// The error of a body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the body did not arrive within {} s", .0.as_secs())]
pub struct BodyDeadline(Duration);

impl http_body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        {
            let mut slot = self.slot.lock().expect("body slot");
            let Some(body) = slot.body.as_mut() else {
                return Poll::Ready(None);
            };
            if let Poll::Ready(frame) = std::pin::Pin::new(body).poll_frame(cx) {
                if frame.is_none() {
                    slot.ended = true;
                }
                return Poll::Ready(frame);
            }
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let limit = self.limit;
            return Poll::Ready(Some(Err(axum::Error::new(BodyDeadline(limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.slot.lock().expect("body slot");
        slot.ended || slot.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let slot = self.slot.lock().expect("body slot");
        slot.body
            .as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), |b| b.size_hint())
    }
}

/// The error of reading a body: 413 over `limit`, 408 past its deadline, else 400.
pub fn body_error(error: axum::Error, limit: u64) -> Error {
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return Error::PayloadTooLarge { limit };
        }
        if let Some(deadline) = e.downcast_ref::<BodyDeadline>() {
            return Error::RequestTimeout(deadline.0.as_secs());
        }
        source = e.source();
    }
    Error::BadRequest(format!("could not read the body: {error}"))
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
        axum::body::to_bytes(request.into_body(), JSON_BODY_LIMIT)
            .await
            .map(Self)
            .map_err(|e| body_error(e, JSON_BODY_LIMIT as u64))
    }
}

/// The Content-Length a request declares, if any (and valid).
pub fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Parses a JSON body: 400 when it is not JSON, 422 when it is JSON of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::BadRequest(format!("the body is not JSON: {e}")))?;
    parse_value(value)
}

/// The fields of a PUT or POST body that must be a JSON object (`what` it is, for the 422),
/// without the representation's `read_only` keys, which a client may send back unchanged.
/// Not JSON: 400.
pub fn document_fields(
    bytes: &[u8],
    what: &str,
    read_only: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::BadRequest(format!("the body is not JSON: {e}")))?;
    let serde_json::Value::Object(mut fields) = value else {
        return Err(Error::Unprocessable(format!(
            "the body must be a JSON object: {what}"
        )));
    };
    for key in read_only {
        fields.remove(*key);
    }
    Ok(fields)
}

/// A JSON value as `T`: 422 naming the field at fault (`preset: unknown variant ...`).
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Error::Unprocessable(format!("unexpected JSON: {inner}"))
        } else {
            Error::Unprocessable(format!("{path}: {inner}"))
        }
    })
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
