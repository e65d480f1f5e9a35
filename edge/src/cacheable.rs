//! JSON, pages and assets: stored when core says a shared cache may, served while fresh,
//! revalidated with the stored validators when stale, and served stale within
//! `stale-if-error` while the origin fails.

use std::time::Duration;

use http::header::HeaderMap;
use http::StatusCode;
use timelapser_core::cache_control::{ResponseTiming, Storability};
use timelapser_core::forwarding::CacheStatus;
use worker::{Cache, Context, Response, ResponseBody};

use crate::answer;
use crate::error::AppError;
use crate::glue::{self, header_map, now, Incoming};
use crate::origin::Origin;
use crate::plan;
use crate::storage;

/// Serves a cacheable GET or HEAD.
pub async fn serve(
    origin: &Origin,
    request: &Incoming,
    ctx: &Context,
) -> Result<Response, AppError> {
    let cache = Cache::default();
    let fill_headers = plan::fill_request_headers(&request.headers);
    let Some((mut stored_response, entry)) = storage::lookup(&cache, &request.key).await else {
        // Miss: the whole representation, stored if allowed, then the client's own
        // preconditions answered from it.
        let (answer, timing) = origin
            .fetch(&http::Method::GET, &request.upstream, &fill_headers, None)
            .await?;
        return from_origin(&cache, request, answer, timing, &fill_headers, ctx).await;
    };
    let at = now();
    if entry.is_fresh(at) {
        return answer::from_storage(&cache, stored_response, request, CacheStatus::Hit).await;
    }
    // Stale: validate with the stored validators.
    let mut validate = fill_headers.clone();
    validate.extend(entry.validation_headers());
    match origin
        .fetch(&http::Method::GET, &request.upstream, &validate, None)
        .await
    {
        Ok((answer, timing)) if answer.status_code() == 304 => {
            let refreshed = entry.refreshed(&header_map(answer.headers()), timing);
            let for_cache = stored_response
                .cloned()
                .map_err(|e| AppError::Storage(e.to_string()))?;
            let representation = refreshed.headers.clone();
            let (_, cache_body) = for_cache.into_parts();
            let put_key = request.key.clone();
            ctx.wait_until(async move {
                let _ = storage::store(
                    &Cache::default(),
                    &put_key,
                    &refreshed.headers,
                    refreshed.timing,
                    cache_body,
                )
                .await;
            });
            let (_, body) = stored_response.into_parts();
            answer::from_representation(
                &cache,
                request,
                &representation,
                body,
                CacheStatus::Revalidated,
                Some(Duration::ZERO),
            )
            .await
        }
        Ok((answer, _)) if answer.status_code() >= 500 && entry.may_serve_on_error(at) => {
            answer::from_storage(&cache, stored_response, request, CacheStatus::Stale).await
        }
        Ok((answer, timing)) => {
            from_origin(&cache, request, answer, timing, &fill_headers, ctx).await
        }
        Err(_) if entry.may_serve_on_error(at) => {
            answer::from_storage(&cache, stored_response, request, CacheStatus::Stale).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Answers from a fresh origin response, storing it when a shared cache may.
async fn from_origin(
    cache: &Cache,
    request: &Incoming,
    mut answer: Response,
    timing: ResponseTiming,
    fill_headers: &HeaderMap,
    ctx: &Context,
) -> Result<Response, AppError> {
    let status = StatusCode::from_u16(answer.status_code()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = header_map(answer.headers());
    if status == StatusCode::OK
        && plan::storability(&http::Method::GET, fill_headers, status, &headers)
            == Storability::Storable
    {
        if let Ok(copy) = answer.cloned() {
            let (_, body) = copy.into_parts();
            let (put_key, put_headers) = (request.key.clone(), headers.clone());
            ctx.wait_until(async move {
                let _ =
                    storage::store(&Cache::default(), &put_key, &put_headers, timing, body).await;
            });
        }
    } else {
        // Whatever was stored is no longer the representation.
        let _ = cache.delete(request.key.as_str(), false).await;
    }
    let (_, body) = answer.into_parts();
    if status == StatusCode::OK {
        answer::from_representation(cache, request, &headers, body, CacheStatus::Miss, None).await
    } else {
        let out = plan::client_headers(headers, CacheStatus::Miss, None);
        let body = if request.is_head() {
            ResponseBody::Empty
        } else {
            body
        };
        Ok(glue::response(status, &out, body))
    }
}
