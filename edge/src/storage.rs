//! What the edge keeps in the Cache API: the origin's full 200 under the request's key, with
//! the storage headers of [`plan::storage_headers`] (retention, and the origin's own fields
//! kept aside for core to judge freshness by).

use http::header::HeaderMap;
use http::StatusCode;
use timelapser_core::cache_control::ResponseTiming;
use worker::{Cache, Response, ResponseBody};

use crate::glue::{self, header_map};
use crate::plan::{self, Stored};

/// Stores a response under `key` with the edge's storage headers.
pub async fn store(
    cache: &Cache,
    key: &str,
    headers: &HeaderMap,
    timing: ResponseTiming,
    body: ResponseBody,
) -> worker::Result<()> {
    let stored = plan::storage_headers(headers, timing);
    cache
        .put(key, glue::response(StatusCode::OK, &stored, body))
        .await
}

/// The entry under `key` with its headers read back, if there is one this edge wrote.
pub async fn lookup(cache: &Cache, key: &str) -> Option<(Response, Stored)> {
    match cache.get(key, false).await {
        Ok(Some(stored)) => {
            Stored::from_storage(&header_map(stored.headers())).map(|entry| (stored, entry))
        }
        _ => None,
    }
}
