//! Every GET and HEAD that is not media, the event stream or someone's session: stored when
//! core says a shared cache may (any status with explicit or heuristic freshness, per `Vary`
//! variant, RFC 9111 §3, §4.1), served while fresh, served stale while it is revalidated in the
//! background within `stale-while-revalidate` (RFC 5861 §3), revalidated with the stored
//! validators when stale (§4.3), and served stale within `stale-if-error` while the origin
//! fails (RFC 5861 §4).

use std::future::Future;

use http::header::HeaderMap;
use http::StatusCode;
use timelapser_core::cache_control::{ResponseTiming, Storability};
use timelapser_core::forwarding::CacheStatus;
use worker::{Cache, Context, Response, ResponseBody};

use crate::answer;
use crate::error::AppError;
use crate::glue::{header_map, now, Incoming};
use crate::origin::{Origin, OriginError};
use crate::plan::{self, Stored};
use crate::storage::{self, Entry};

/// Bodies up to this size are stored before the client is answered, so that its next request
/// finds them; larger ones are written after the answer starts (nobody waits for the write).
const STORE_BEFORE_ANSWERING: u64 = 1 << 20;

/// Whether a response's body is small enough to be stored before answering.
fn small(headers: &HeaderMap) -> bool {
    plan::content_length(headers).is_some_and(|length| length <= STORE_BEFORE_ANSWERING)
}

/// Does cache work now, or after the answer is sent.
async fn settle(ctx: &Context, now: bool, work: impl Future<Output = ()> + 'static) {
    if now {
        work.await;
    } else {
        ctx.wait_until(work);
    }
}

/// Serves a cacheable GET or HEAD.
pub async fn serve(
    origin: &Origin,
    request: &Incoming,
    ctx: &Context,
) -> Result<Response, AppError> {
    let cache = Cache::default();
    let fill = plan::fill_request_headers(&request.headers);
    let found = storage::lookup(&cache, &request.key, &fill)
        .await
        .filter(|found| found.entry.may_answer(request.is_authorized()));
    let Some(mut found) = found else {
        // Miss: the whole representation, stored if allowed, then the client's own
        // preconditions answered from it (with credentials, the origin answers those itself).
        let ask = plan::miss_request_headers(&fill, &request.headers);
        let (answer, timing) = origin
            .fetch(&http::Method::GET, &request.upstream, &ask, None)
            .await?;
        return from_origin(&cache, request, answer, timing, &fill, ctx).await;
    };
    let at = now();
    if found.entry.is_fresh(at) {
        return answer::from_storage(&cache, found, request, CacheStatus::Hit).await;
    }
    if found.entry.may_serve_while_revalidating(at) {
        // RFC 5861 §3: answer now, revalidate after; the copy is what a 304 keeps.
        if let Ok(copy) = found.response.cloned() {
            let (_, body) = copy.into_parts();
            let (upstream, incoming, selecting) = (origin.clone(), request.clone(), fill.clone());
            let entry = found.entry.clone();
            ctx.wait_until(async move {
                refresh(&upstream, &incoming, &selecting, &entry, body).await;
            });
            return answer::from_storage(&cache, found, request, CacheStatus::Updating).await;
        }
    }
    // Stale: validate with the stored validators (and the request's selecting fields, which
    // `fill` carries).
    match validate(origin, request, &fill, &found.entry).await {
        Ok((answer, timing)) if answer.status_code() == 304 => {
            let refreshed = found.entry.refreshed(&header_map(answer.headers()), timing);
            let copy = found
                .response
                .cloned()
                .map_err(|e| AppError::Storage(e.to_string()))?;
            let (_, copy) = copy.into_parts();
            keep(ctx, request, &fill, &refreshed, copy).await;
            let (_, body) = found.response.into_parts();
            let age = refreshed.age(now());
            answer::from_entry(
                &cache,
                request,
                Some(&found.key),
                &refreshed,
                body,
                CacheStatus::Revalidated,
                Some(age),
            )
            .await
        }
        Ok((answer, _)) if answer.status_code() >= 500 && found.entry.may_serve_on_error(at) => {
            answer::from_storage(&cache, found, request, CacheStatus::Stale).await
        }
        Ok((answer, timing)) => from_origin(&cache, request, answer, timing, &fill, ctx).await,
        Err(_) if found.entry.may_serve_on_error(at) => {
            answer::from_storage(&cache, found, request, CacheStatus::Stale).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Asks the origin whether a stored entry is still current (RFC 9111 §4.3.1).
async fn validate(
    origin: &Origin,
    request: &Incoming,
    fill: &HeaderMap,
    entry: &Stored,
) -> Result<(Response, ResponseTiming), OriginError> {
    let mut headers = fill.clone();
    headers.extend(entry.validation_headers());
    origin
        .fetch(&http::Method::GET, &request.upstream, &headers, None)
        .await
}

/// Stores an entry a 304 refreshed, with the stored body: before answering when it is small.
async fn keep(
    ctx: &Context,
    request: &Incoming,
    fill: &HeaderMap,
    entry: &Stored,
    body: ResponseBody,
) {
    let now = small(&entry.headers);
    let (primary, fill, entry) = (request.key.clone(), fill.clone(), entry.clone());
    settle(ctx, now, async move {
        let _ = store_refreshed(&Cache::default(), &primary, &fill, &entry, body).await;
    })
    .await;
}

/// Stores an entry a 304 refreshed under the request's primary key, with the stored body.
/// (A request with Authorization only ever reaches an entry stored for one, so the entry's own
/// `authorized` is the request's.)
async fn store_refreshed(
    cache: &Cache,
    primary: &str,
    fill: &HeaderMap,
    entry: &Stored,
    body: ResponseBody,
) -> worker::Result<()> {
    let stored = Entry {
        status: entry.status,
        headers: &entry.headers,
        timing: entry.timing,
        authorized: entry.authorized,
    };
    storage::store(cache, primary, fill, stored, body).await
}

/// Revalidates a stale entry in the background (stale-while-revalidate): a 304 refreshes it,
/// a full response replaces it when storable and removes it when not; a failure leaves it.
async fn refresh(
    origin: &Origin,
    request: &Incoming,
    fill: &HeaderMap,
    entry: &Stored,
    stored_body: ResponseBody,
) {
    let cache = Cache::default();
    let Ok((answer, timing)) = validate(origin, request, fill, entry).await else {
        return;
    };
    let status = StatusCode::from_u16(answer.status_code()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = header_map(answer.headers());
    if status == StatusCode::NOT_MODIFIED {
        let refreshed = entry.refreshed(&headers, timing);
        let _ = store_refreshed(&cache, &request.key, fill, &refreshed, stored_body).await;
        return;
    }
    let disposition = disposition(request, fill, status, &headers);
    let (_, body) = answer.into_parts();
    let entry = Entry {
        status,
        headers: &headers,
        timing,
        authorized: request.is_authorized(),
    };
    let _ = replace(&cache, &request.key, fill, disposition, entry, body).await;
}

/// What becomes of what is stored for a request once the origin sent a full response.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Stored in place of it: a shared cache may store the response.
    Store,
    /// Forgotten: it is no longer the representation.
    Forget,
    /// Kept: the origin failed (a stored copy may still serve within stale-if-error), or the
    /// request carried Authorization (its answer says nothing of what others are served).
    Keep,
}

fn disposition(
    request: &Incoming,
    fill: &HeaderMap,
    status: StatusCode,
    headers: &HeaderMap,
) -> Disposition {
    if plan::storability(&http::Method::GET, fill, status, headers) == Storability::Storable {
        Disposition::Store
    } else if status.is_server_error() || request.is_authorized() {
        Disposition::Keep
    } else {
        Disposition::Forget
    }
}

/// Carries out a [`Disposition`] for the origin's full response to the request whose primary
/// key is `primary`.
async fn replace(
    cache: &Cache,
    primary: &str,
    fill: &HeaderMap,
    disposition: Disposition,
    entry: Entry<'_>,
    body: ResponseBody,
) -> worker::Result<()> {
    match disposition {
        Disposition::Store => storage::store(cache, primary, fill, entry, body).await,
        Disposition::Forget => storage::delete(cache, primary).await.map(|_| ()),
        Disposition::Keep => Ok(()),
    }
}

/// Answers from a full origin response, storing it (after the answer is sent) when a shared
/// cache may.
async fn from_origin(
    cache: &Cache,
    request: &Incoming,
    mut answer: Response,
    timing: ResponseTiming,
    fill: &HeaderMap,
    ctx: &Context,
) -> Result<Response, AppError> {
    let status = StatusCode::from_u16(answer.status_code()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = header_map(answer.headers());
    // Only a body that is stored is copied (a copy nobody reads would be held in memory).
    let disposition = disposition(request, fill, status, &headers);
    let (copy, now) = match disposition {
        Disposition::Store => (
            answer.cloned().ok().map(|copy| copy.into_parts().1),
            small(&headers),
        ),
        Disposition::Forget => (Some(ResponseBody::Empty), true),
        Disposition::Keep => (None, false),
    };
    if let Some(copy) = copy {
        let (primary, fill, headers) = (request.key.clone(), fill.clone(), headers.clone());
        let authorized = request.is_authorized();
        settle(ctx, now, async move {
            let entry = Entry {
                status,
                headers: &headers,
                timing,
                authorized,
            };
            let _ = replace(&Cache::default(), &primary, &fill, disposition, entry, copy).await;
        })
        .await;
    }
    let (_, body) = answer.into_parts();
    let entry = Stored {
        status,
        headers,
        timing,
        authorized: request.is_authorized(),
    };
    answer::from_entry(cache, request, None, &entry, body, CacheStatus::Miss, None).await
}
