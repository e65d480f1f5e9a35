//! Building cacheable responses: Cache-Control from the policy, the entity tag, and the
//! conditional-request evaluation of core, so that a 304 always carries what the 200 would.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use timelapser_core::conditional::{Precondition, Preconditions, Validators};
use timelapser_core::policy::ContentKind;

use crate::cache::Representation;
use crate::error::Error;

/// `application/json`.
pub const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Answers a GET/HEAD of a representation: 304 when the client's validator is current, 412
/// when a precondition fails, else 200 with the body. ETag and Cache-Control on all of them.
pub fn representation(
    method: &Method,
    headers: &HeaderMap,
    kind: ContentKind,
    rep: &Representation,
    content_type: HeaderValue,
) -> Response {
    let validators = Validators::new(Some(&rep.etag), None);
    let status = match Preconditions::from_headers(headers).evaluate(method, &validators) {
        Precondition::Proceed => StatusCode::OK,
        Precondition::NotModified => StatusCode::NOT_MODIFIED,
        Precondition::Failed => return crate::routes::error_response(Error::PreconditionFailed),
    };
    let body = if status == StatusCode::OK {
        Body::from(rep.body.clone())
    } else {
        Body::empty()
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, kind.cache_control());
    h.insert(header::ETAG, rep.etag.to_header_value());
    if status == StatusCode::OK {
        h.insert(header::CONTENT_TYPE, content_type);
    }
    response
}

/// A write's answer: the new representation with its tag (so the client can send If-Match
/// next time) and the status given.
pub fn written(status: StatusCode, rep: &Representation) -> Response {
    let mut response = Response::new(Body::from(rep.body.clone()));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, JSON);
    h.insert(header::ETAG, rep.etag.to_header_value());
    h.insert(
        header::CACHE_CONTROL,
        ContentKind::Operational.cache_control(),
    );
    response
}

/// A JSON answer to a write, without a validator.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Result<Response, Error> {
    let body = serde_json::to_vec(value).map_err(|e| Error::Internal(e.into()))?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, JSON);
    h.insert(
        header::CACHE_CONTROL,
        ContentKind::Operational.cache_control(),
    );
    Ok(response)
}
