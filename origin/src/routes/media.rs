//! `/media/{images,thumbnails,videos}/<sha256>.<ext>`: immutable media with strong
//! content-hash tags, Last-Modified, 304, 412, 206 and 416, all decided by core.

use std::io::SeekFrom;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use timelapser_core::conditional::{Precondition, Preconditions, Validators};
use timelapser_core::policy::ContentKind;
use timelapser_core::range::{self, ByteRange, RangeResponse};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::{problem_response, Error, Result};
use crate::media::MediaName;
use crate::media_cache::MediaFile;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/media/{folder}/{file}", get(serve))
}

/// The media file a path names: `/media/<folder>/<file>`, read from the URI itself (a valid
/// name needs no percent-decoding, and one that was encoded is not a valid name).
fn media_name(uri: &Uri) -> Option<MediaName> {
    let rest = uri.path().strip_prefix("/media/")?;
    let (folder, file) = rest.split_once('/')?;
    MediaName::parse(folder, file)
}

const ACCEPT_RANGES: HeaderValue = HeaderValue::from_static("bytes");

async fn serve(
    State(state): State<AppState>,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    // Only `<64 hex>.<ext>` in a known folder ever becomes a path.
    let not_found = || Error::NotFound(format!("no media at {}", uri.path()));
    let name = media_name(&uri).ok_or_else(not_found)?;
    let media = state
        .media_cache
        .open(&state.media, &name)
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .ok_or_else(not_found)?;
    let validators = Validators::new(Some(&media.etag), Some(media.modified));
    let outcome = Preconditions::from_headers(&headers).evaluate(&method, &validators);
    let range = match outcome {
        Precondition::Failed => return Err(Error::PreconditionFailed),
        Precondition::NotModified => None,
        Precondition::Proceed => Some(range::evaluate(&method, &headers, media.len, &validators)),
    };
    let (status, body) = match range {
        None => (StatusCode::NOT_MODIFIED, Body::empty()),
        Some(RangeResponse::Unsatisfiable) => {
            let mut response = problem_response(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the representation is {} bytes long", media.len),
            );
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                range::unsatisfied_content_range(media.len),
            );
            return Ok(response);
        }
        Some(RangeResponse::Full) => (StatusCode::OK, body(&state, &name, &media, None).await?),
        Some(RangeResponse::Partial(part)) => (
            StatusCode::PARTIAL_CONTENT,
            body(&state, &name, &media, Some(part)).await?,
        ),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        ContentKind::ImmutableMedia.cache_control(),
    );
    h.insert(header::ETAG, media.etag_header.clone());
    h.insert(header::LAST_MODIFIED, media.last_modified_header.clone());
    h.insert(header::ACCEPT_RANGES, ACCEPT_RANGES);
    let sent = match (status, range) {
        (StatusCode::OK, _) => media.len,
        (StatusCode::PARTIAL_CONTENT, Some(RangeResponse::Partial(part))) => part.len(),
        _ => 0,
    };
    if sent > 0 && method != Method::HEAD {
        metrics::counter!("media_bytes_sent_total", "folder" => name.kind.folder()).increment(sent);
    }
    match (status, range) {
        (StatusCode::OK, _) => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(name.kind.content_type()),
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(media.len));
        }
        (StatusCode::PARTIAL_CONTENT, Some(RangeResponse::Partial(part))) => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(name.kind.content_type()),
            );
            h.insert(header::CONTENT_RANGE, part.content_range(media.len));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(part.len()));
        }
        _ => {}
    }
    Ok(response)
}

/// The bytes to send: from memory for small files, streamed from disk for large ones.
async fn body(
    state: &AppState,
    name: &MediaName,
    media: &MediaFile,
    part: Option<ByteRange>,
) -> Result<Body> {
    let whole = ByteRange {
        first: 0,
        last: media.len.saturating_sub(1),
    };
    let part = part.unwrap_or(whole);
    if media.len == 0 {
        return Ok(Body::empty());
    }
    if let Some(bytes) = &media.bytes {
        let r = part.as_std_range();
        return Ok(Body::from(bytes.slice(r.start as usize..r.end as usize)));
    }
    let mut file = tokio::fs::File::open(state.media.path(name))
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    file.seek(SeekFrom::Start(part.first))
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(part.len()), 64 * 1024);
    Ok(Body::from_stream(stream))
}
