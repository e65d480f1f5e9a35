//! The origin's purge (`timelapser_core::purge`): stored responses of paths that stopped being
//! public are deleted from the Cache API, so they are never served from storage again. Only
//! the holder of the purge token may ask (the edge keeps its SHA-256, `PURGE_TOKEN_SHA256`);
//! without that variable purging is off and the path is a 404.
//!
//! The Cache API is per location: this deletes what the location that receives the purge
//! holds (all of it under `wrangler dev` and on a single-location deployment).

use http::StatusCode;
use timelapser_core::credentials;
use timelapser_core::purge::{self, PurgeReport, PurgeRequest};
use worker::{Cache, Env, Request, Response};

use crate::error::AppError;
use crate::glue::Incoming;
use crate::storage;

/// The most bytes a purge body may have.
const MAX_BODY: usize = 512 * 1024;

/// Answers a purge.
pub async fn serve(mut req: Request, incoming: &Incoming, env: &Env) -> Result<Response, AppError> {
    let Ok(expected) = env.var("PURGE_TOKEN_SHA256").map(|v| v.to_string()) else {
        return Err(AppError::PurgeRefused(
            StatusCode::NOT_FOUND,
            "purging is not configured on this edge",
        ));
    };
    if incoming.method != http::Method::POST {
        return Err(AppError::PurgeMethod);
    }
    let authorised = credentials::bearer(&incoming.headers)
        .is_some_and(|token| purge::token_matches(token, &expected));
    if !authorised {
        return Err(AppError::PurgeRefused(
            StatusCode::UNAUTHORIZED,
            "a purge needs the purge token",
        ));
    }
    let body = req
        .bytes()
        .await
        .map_err(|e| AppError::BadRequest(format!("could not read the purge: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(AppError::BadRequest(format!(
            "a purge is at most {MAX_BODY} bytes"
        )));
    }
    let request = PurgeRequest::parse(&body).map_err(AppError::BadRequest)?;
    let cache = Cache::default();
    let mut report = PurgeReport::default();
    for path in &request.paths {
        let key = format!("{}{path}", incoming.site);
        match storage::delete(&cache, &key).await {
            Ok(true) => report.purged += 1,
            Ok(false) => {}
            Err(e) => {
                return Err(AppError::Storage(format!(
                    "deleting the stored {path} failed: {e}"
                )))
            }
        }
    }
    let mut response = Response::from_json(&report)
        .map_err(|e| AppError::Storage(format!("answering the purge failed: {e}")))?;
    let _ = response.headers_mut().set(
        "cache-control",
        timelapser_core::policy::ContentKind::Operational
            .cache_control()
            .to_str()
            .unwrap_or("no-store"),
    );
    Ok(response)
}
