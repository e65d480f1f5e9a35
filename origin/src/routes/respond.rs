//! Carrying out core's answers: a representation's status, fields and bytes exactly as
//! `timelapser_core::response::answer` decided them, so a 304 always carries what the 200
//! would and the origin and the edge never disagree.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use timelapser_core::policy::ContentKind;
use timelapser_core::response::{answer, Answer, Content, Selected};

use crate::cache::Represented;
use crate::error::Error;

/// `application/json`.
pub const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The response of an answer whose bytes are `body` (already chosen for its content).
pub fn response(answer: Answer, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.fields;
    response
}

/// The body of an answer from a representation held in memory.
pub fn body_in_memory(content: &Content, whole: &Bytes) -> Body {
    match content {
        Content::Empty => Body::empty(),
        Content::Whole => Body::from(whole.clone()),
        Content::Part(part) => {
            let range = part.as_std_range();
            Body::from(whole.slice(range.start as usize..range.end as usize))
        }
        Content::Problem(problem) => Body::from(problem.to_json()),
    }
}

/// Answers a GET/HEAD of a private JSON document (an admin's or a camera's own: `private,
/// no-cache`, validated by its entity tag).
pub fn private_json<T>(method: &Method, headers: &HeaderMap, rep: &Represented<T>) -> Response {
    representation(method, headers, ContentKind::PrivateMetadata, rep, JSON)
}

/// Answers a GET/HEAD of a representation held in memory (core decides 200, 304 or 412).
pub fn representation<T>(
    method: &Method,
    headers: &HeaderMap,
    kind: ContentKind,
    rep: &Represented<T>,
    content_type: HeaderValue,
) -> Response {
    let selected = Selected::of_kind(kind)
        .etag(&rep.etag)
        .length(rep.body.len() as u64)
        .field(header::CONTENT_TYPE, content_type);
    let answer = answer(method, headers, selected);
    let body = body_in_memory(&answer.content, &rep.body);
    response(answer, body)
}

/// A write's answer: the new representation with its tag (so the client can send If-Match
/// next time) and the status given.
pub fn written<T>(status: StatusCode, rep: &Represented<T>) -> Response {
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

/// `Location` for a path built from ids.
pub fn location(response: &mut Response, path: &str) -> Result<(), Error> {
    let value = HeaderValue::from_str(path).map_err(|e| Error::Internal(e.into()))?;
    response.headers_mut().insert(header::LOCATION, value);
    Ok(())
}
