//! Immutable media (`/media/**`): answered from the Cache API, which is filled with one origin
//! fetch per object however many requests miss it together (within this isolate, which is as
//! far as a Worker can see).

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Duration;

use http::StatusCode;
use timelapser_core::cache_control::Storability;
use timelapser_core::forwarding::CacheStatus;
use worker::{Cache, Delay, Response};

use crate::answer;
use crate::error::AppError;
use crate::glue::{header_map, now, Incoming};
use crate::origin::{Origin, OriginError};
use crate::pass_through;
use crate::plan;
use crate::storage::{self, Entry};

/// Serves a media request.
pub async fn serve(origin: &Origin, request: &Incoming) -> Result<Response, AppError> {
    let cache = Cache::default();
    let mut status = CacheStatus::Hit;
    let fill = plan::fill_request_headers(&request.headers);
    for attempt in 0..2 {
        if let Some(found) = storage::lookup(&cache, &request.key, &fill).await {
            return answer::from_storage(&cache, found, request, status).await;
        }
        if attempt == 1 {
            break;
        }
        status = CacheStatus::Miss;
        match fill_once(origin, request).await {
            Fill::Stored => continue,
            Fill::NotStored => break,
            Fill::Failed(e) => return Err(e),
        }
    }
    // Not storable (a 404, say): forward this request to the origin as is.
    pass_through::forward(origin, request, None, CacheStatus::Miss).await
}

/// The outcome of filling the cache with one object.
#[derive(Debug)]
enum Fill {
    /// Stored: read it from the cache.
    Stored,
    /// The origin's answer may not be stored.
    NotStored,
    /// The origin (or the Cache API) failed.
    Failed(AppError),
}

thread_local! {
    /// Cache keys being filled in this isolate.
    static FILLING: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// How often a request waiting for another request's fill looks at the cache again.
const FILL_POLL: Duration = Duration::from_millis(20);

/// Fills the cache for the request's key, or waits for the fill another request of this
/// isolate has under way. Workers forbid awaiting another request's I/O (the runtime cancels
/// such a wait as hung), so waiters share no future: they sleep in their own context and look
/// again.
async fn fill_once(origin: &Origin, request: &Incoming) -> Fill {
    let key = &request.key;
    let leader = FILLING.with(|filling| filling.borrow_mut().insert(key.clone()));
    if leader {
        let outcome = fill(origin, request).await;
        FILLING.with(|filling| filling.borrow_mut().remove(key));
        return outcome;
    }
    let started = now();
    while FILLING.with(|filling| filling.borrow().contains(key)) {
        if now().duration_since(started).unwrap_or_default() > origin.timeout {
            // Waiting for another request's fill took longer than the origin may.
            return Fill::Failed(OriginError::Timeout.into());
        }
        Delay::from(FILL_POLL).await;
    }
    // The leader is done: what it stored is in the cache (or it was not storable, and this
    // request asks the origin itself).
    Fill::Stored
}

/// Asks the origin for the whole object and stores it when a shared cache may.
async fn fill(origin: &Origin, request: &Incoming) -> Fill {
    let headers = plan::fill_request_headers(&request.headers);
    let (answer, timing) = match origin
        .fetch(&http::Method::GET, &request.upstream, &headers, None)
        .await
    {
        Ok(answer) => answer,
        Err(e) => return Fill::Failed(e.into()),
    };
    let answer_headers = header_map(answer.headers());
    let status = StatusCode::from_u16(answer.status_code()).unwrap_or(StatusCode::BAD_GATEWAY);
    if status != StatusCode::OK
        || plan::storability(&http::Method::GET, &headers, status, &answer_headers)
            != Storability::Storable
    {
        return Fill::NotStored;
    }
    let (_, body) = answer.into_parts();
    let entry = Entry {
        status,
        headers: &answer_headers,
        timing,
        authorized: false,
    };
    match storage::store(&Cache::default(), &request.key, &headers, entry, body).await {
        Ok(()) => Fill::Stored,
        Err(e) => Fill::Failed(AppError::Storage(format!(
            "storing the origin's answer failed: {e}"
        ))),
    }
}
