//! Answering a client from a full response, stored or just fetched: for a 200, core's
//! `response::answer` decides the status, the fields and which bytes; any other status is
//! answered as it was stored. This module only carries that out (no body for HEAD, a part read
//! from the Cache API or cut from the body).

use std::time::Duration;

use http::header::HeaderMap;
use http::StatusCode;
use timelapser_core::forwarding::CacheStatus;
use timelapser_core::range::ByteRange;
use timelapser_core::response::{self, Content};
use worker::{Cache, Headers, Request, RequestInit, Response, ResponseBody};

use crate::error::AppError;
use crate::glue::{self, now, Incoming};
use crate::plan::{self, Stored};
use crate::storage::{self, Found};

/// Answers a client from a stored entry (fresh, or vouched for by a revalidation).
pub async fn from_storage(
    cache: &Cache,
    found: Found,
    request: &Incoming,
    status: CacheStatus,
) -> Result<Response, AppError> {
    let age = found.entry.age(now());
    let (_, body) = found.response.into_parts();
    from_entry(
        cache,
        request,
        Some(&found.key),
        &found.entry,
        body,
        status,
        Some(age),
    )
    .await
}

/// Answers a client from an entry's status and fields and a body; `key` names the stored copy
/// the body is, when it is one.
pub async fn from_entry(
    cache: &Cache,
    request: &Incoming,
    key: Option<&str>,
    entry: &Stored,
    body: ResponseBody,
    status: CacheStatus,
    age: Option<Duration>,
) -> Result<Response, AppError> {
    if plan::answers_with_representation(entry.status) {
        return from_representation(cache, request, key, &entry.headers, body, status, age).await;
    }
    let fields = plan::client_headers(entry.headers.clone(), status, age);
    let body = if request.is_head() || entry.status == StatusCode::NO_CONTENT {
        ResponseBody::Empty
    } else {
        body
    };
    Ok(glue::response(entry.status, &fields, body))
}

/// Answers a client's preconditions and Range from a 200's fields and body (the copy stored
/// under `key`, or the origin's).
pub async fn from_representation(
    cache: &Cache,
    request: &Incoming,
    key: Option<&str>,
    representation: &HeaderMap,
    body: ResponseBody,
    status: CacheStatus,
    age: Option<Duration>,
) -> Result<Response, AppError> {
    let decided = response::answer(
        &request.method,
        &request.headers,
        plan::representation(representation),
    );
    let answer = plan::client_answer(decided, status, age);
    let body = match &answer.content {
        _ if request.is_head() => ResponseBody::Empty,
        Content::Empty => ResponseBody::Empty,
        Content::Whole => body,
        Content::Part(part) => partial_body(cache, key, body, *part)
            .await
            .map_err(|e| AppError::Storage(format!("reading the stored range failed: {e}")))?,
        Content::Problem(problem) => ResponseBody::Body(problem.to_json()),
    };
    Ok(glue::response(answer.status, &answer.fields, body))
}

/// The bytes of a part: asked of the Cache API with a Range when the body is a stored copy (it
/// slices stored entries without loading them into the Worker), else sliced from the body.
async fn partial_body(
    cache: &Cache,
    key: Option<&str>,
    body: ResponseBody,
    part: ByteRange,
) -> worker::Result<ResponseBody> {
    if let Some(key) = key {
        if let Some(part) = stored_part(cache, key, part).await? {
            return Ok(part);
        }
    }
    let mut whole = Response::builder().body(body);
    let bytes = whole.bytes().await?;
    let range = part.as_std_range();
    let (start, end) = (range.start as usize, (range.end as usize).min(bytes.len()));
    Ok(ResponseBody::Body(
        bytes.get(start..end).unwrap_or_default().to_vec(),
    ))
}

/// A part of the entry stored under `key`, cut by the Cache API.
async fn stored_part(
    cache: &Cache,
    key: &str,
    part: ByteRange,
) -> worker::Result<Option<ResponseBody>> {
    let mut init = RequestInit::new();
    let headers = Headers::new();
    headers.set("range", &format!("bytes={}-{}", part.first, part.last))?;
    init.with_headers(headers);
    let ranged = Request::new_with_init(key, &init)?;
    Ok(storage::get_range(cache, ranged)
        .await
        .filter(|stored| stored.status_code() == 206)
        .map(|stored| stored.into_parts().1))
}
