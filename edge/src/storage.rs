//! What the edge keeps in the Cache API, and every call to it bounded in time.
//!
//! A response that varies on nothing is stored under its URL's key (the primary key, RFC 9111
//! §4). One that varies (§4.1) is stored under a key of its own per combination of its selecting
//! request fields, and the primary key holds a [`VaryIndex`] naming those fields; forgetting the
//! primary key (invalidation, purge) forgets every variant. Entries carry the storage headers of
//! [`plan::storage_headers`] (retention, and the origin's own fields kept aside for core).

use std::future::Future;
use std::time::Duration;

use http::header::HeaderMap;
use http::StatusCode;
use timelapser_core::cache_control::ResponseTiming;
use timelapser_core::vary::Vary;
use worker::{Cache, Date, Response, ResponseBody};

use crate::glue::{self, header_map};
use crate::plan::{self, Stored, VaryIndex};

/// How long a Cache API call may take before the edge gives up on it (a read is then a miss,
/// a write is skipped): no request waits on a stuck cache.
pub const CACHE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs a Cache API call with [`CACHE_TIMEOUT`].
async fn bounded<T>(call: impl Future<Output = worker::Result<T>>) -> worker::Result<T> {
    glue::within(CACHE_TIMEOUT, call).await.unwrap_or_else(|| {
        Err(worker::Error::RustError(format!(
            "the Cache API did not answer within {} s",
            CACHE_TIMEOUT.as_secs()
        )))
    })
}

/// The entry under `key`, if any (a failed or slow read is no entry).
pub async fn get(cache: &Cache, key: &str) -> Option<Response> {
    bounded(cache.get(key, false)).await.ok().flatten()
}

/// A ranged read of the entry under `key` (the Cache API slices stored bodies itself).
pub async fn get_range(cache: &Cache, request: worker::Request) -> Option<Response> {
    bounded(cache.get(&request, false)).await.ok().flatten()
}

/// Forgets the entry under `key`; whether there was one.
pub async fn delete(cache: &Cache, key: &str) -> worker::Result<bool> {
    Ok(matches!(
        bounded(cache.delete(key, false)).await?,
        worker::CacheDeletionOutcome::Success
    ))
}

async fn put(
    cache: &Cache,
    key: &str,
    headers: &HeaderMap,
    body: ResponseBody,
) -> worker::Result<()> {
    bounded(cache.put(key, glue::response(StatusCode::OK, headers, body))).await
}

/// A stored response that may answer a request.
pub struct Found {
    /// The entry as the Cache API returned it (body and storage headers).
    pub response: Response,
    /// Its headers read back.
    pub entry: Stored,
    /// The key it is stored under (the primary key, or its variant's).
    pub key: String,
}

/// The stored response for a request: under `primary`, or, when the URL's responses vary,
/// the variant its `fill` headers ([`plan::fill_request_headers`]) select.
pub async fn lookup(cache: &Cache, primary: &str, fill: &HeaderMap) -> Option<Found> {
    let first = get(cache, primary).await?;
    let headers = header_map(first.headers());
    if let Some(index) = VaryIndex::from_storage(&headers) {
        let key = index.variant_key(primary, fill)?;
        let response = get(cache, &key).await?;
        let entry = Stored::from_storage(&header_map(response.headers()))?;
        return Some(Found {
            response,
            entry,
            key,
        });
    }
    let entry = Stored::from_storage(&headers)?;
    Some(Found {
        response: first,
        entry,
        key: primary.to_owned(),
    })
}

/// A generation for a new [`VaryIndex`]: the time and a random number.
fn new_generation() -> String {
    let random = (worker::js_sys::Math::random() * 1e12) as u64;
    format!("{}-{random}", Date::now().as_millis())
}

/// What a response to a request is stored as.
pub struct Entry<'a> {
    /// The origin's status.
    pub status: StatusCode,
    /// The origin's headers.
    pub headers: &'a HeaderMap,
    /// When it was asked for and received.
    pub timing: ResponseTiming,
    /// Whether the request carried Authorization.
    pub authorized: bool,
}

/// Stores a response for the request whose primary key is `primary` and whose origin request
/// carried `fill`.
pub async fn store(
    cache: &Cache,
    primary: &str,
    fill: &HeaderMap,
    entry: Entry<'_>,
    body: ResponseBody,
) -> worker::Result<()> {
    let stored = plan::storage_headers(entry.status, entry.headers, entry.timing, entry.authorized);
    let vary = Vary::of(entry.headers);
    if vary == Vary::Nothing {
        return put(cache, primary, &stored, body).await;
    }
    // Keep the index (and so the other variants) while the URL varies on the same fields.
    let existing = match get(cache, primary).await {
        Some(r) => VaryIndex::from_storage(&header_map(r.headers())),
        None => None,
    };
    let index = match existing {
        Some(index) if index.vary == vary => index,
        _ => {
            let index = VaryIndex {
                vary,
                generation: new_generation(),
            };
            put(
                cache,
                primary,
                &index.storage_headers(),
                ResponseBody::Empty,
            )
            .await?;
            index
        }
    };
    let key = index.variant_key(primary, fill).ok_or_else(|| {
        worker::Error::RustError("a response with Vary: * is never stored".into())
    })?;
    put(cache, &key, &stored, body).await
}
