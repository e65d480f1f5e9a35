//! Requests the edge does not cache (writes, other methods, requests with credentials, the event
//! stream): sent to the origin as they are and its answer streamed back as it comes.

use http::StatusCode;
use timelapser_core::forwarding::CacheStatus;
use worker::{Cache, Request, Response};

use crate::error::AppError;
use crate::glue::{self, header_map, Incoming};
use crate::origin::Origin;
use crate::plan;
use crate::storage;

/// Forwards a request, body and all. Once a successful unsafe request is answered, what the
/// edge stores for its target URI and its Location and Content-Location is forgotten (RFC 9111
/// §4.4), before the client hears back, so its next read is the origin's.
pub async fn serve(
    origin: &Origin,
    req: Request,
    request: &Incoming,
) -> Result<Response, AppError> {
    let body = req.inner().body().map(Into::into);
    let response = forward(origin, request, body, CacheStatus::Bypass).await?;
    let status = StatusCode::from_u16(response.status_code()).unwrap_or(StatusCode::BAD_GATEWAY);
    let keys = plan::invalidated_keys(
        &request.method,
        status,
        &request.url,
        &header_map(response.headers()),
    );
    if !keys.is_empty() {
        let cache = Cache::default();
        for key in keys {
            // A failed deletion leaves an entry that expires by itself; the write succeeded.
            let _ = storage::delete(&cache, &key).await;
        }
    }
    Ok(response)
}

/// Sends the client's request to the origin as is (hop-by-hop fields dropped) and streams its
/// answer back, labelled with `status`.
pub async fn forward(
    origin: &Origin,
    request: &Incoming,
    body: Option<worker::wasm_bindgen::JsValue>,
    status: CacheStatus,
) -> Result<Response, AppError> {
    let (answer, _) = origin
        .fetch(
            &request.method,
            &request.upstream,
            &plan::pass_through_request_headers(&request.headers),
            body,
        )
        .await?;
    let code = StatusCode::from_u16(answer.status_code()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = plan::client_headers(header_map(answer.headers()), status, None);
    let (_, body) = answer.into_parts();
    Ok(glue::response(code, &headers, body))
}
