//! Answering a client from a full representation, stored or just fetched: core's
//! `response::answer` decides the status, the fields and which bytes; this module only carries
//! that out (no body for HEAD, a part read from the Cache API or cut from the body).

use std::time::Duration;

use http::header::HeaderMap;
use timelapser_core::forwarding::CacheStatus;
use timelapser_core::range::ByteRange;
use timelapser_core::response::{self, Content};
use worker::{Cache, Headers, Request, RequestInit, Response, ResponseBody};

use crate::error::AppError;
use crate::glue::{self, header_map, now, Incoming};
use crate::plan::{self, Stored};

/// Answers a client from a stored entry (fresh, or vouched for by a revalidation).
pub async fn from_storage(
    cache: &Cache,
    stored: Response,
    request: &Incoming,
    status: CacheStatus,
) -> Result<Response, AppError> {
    let Some(entry) = Stored::from_storage(&header_map(stored.headers())) else {
        let _ = cache.delete(request.key.as_str(), false).await;
        return Err(AppError::Storage(
            "an unreadable cache entry was dropped; retry".into(),
        ));
    };
    let age = entry.age(now());
    let (_, body) = stored.into_parts();
    from_representation(cache, request, &entry.headers, body, status, Some(age)).await
}

/// Answers a client's preconditions and Range from a representation's fields and body.
pub async fn from_representation(
    cache: &Cache,
    request: &Incoming,
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
        Content::Part(part) => partial_body(cache, &request.key, body, *part)
            .await
            .map_err(|e| AppError::Storage(format!("reading the stored range failed: {e}")))?,
        Content::Problem(problem) => ResponseBody::Body(problem.to_json()),
    };
    Ok(glue::response(answer.status, &answer.fields, body))
}

/// The bytes of a part: asked of the Cache API with a Range (it slices stored entries without
/// loading them into the Worker), else sliced from the body.
async fn partial_body(
    cache: &Cache,
    key: &str,
    body: ResponseBody,
    part: ByteRange,
) -> worker::Result<ResponseBody> {
    let mut init = RequestInit::new();
    let headers = Headers::new();
    headers.set("range", &format!("bytes={}-{}", part.first, part.last))?;
    init.with_headers(headers);
    let ranged = Request::new_with_init(key, &init)?;
    if let Some(stored) = cache.get(&ranged, false).await? {
        if stored.status_code() == 206 {
            return Ok(stored.into_parts().1);
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
