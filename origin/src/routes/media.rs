//! `/media/{images,thumbnails,videos}/<sha256>.<ext>`: immutable media with strong
//! content-hash tags, Last-Modified, 304, 412, 206 and 416, all decided by core.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use timelapser_core::policy::ContentKind;
use timelapser_core::range::ByteRange;
use timelapser_core::response::{answer, Content, Selected};

use super::auth::Viewer;
use super::respond;
use crate::auth::Audience;
use crate::error::{Error, Result};
use crate::media::MediaName;
use crate::media_cache::MediaFile;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/media/{folder}/{file}", get(serve))
}

async fn serve(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    // Only `<64 hex>.<ext>` in a known folder ever becomes a path; the path is read as sent
    // (a valid name needs no percent-decoding, and one that was encoded is not valid).
    let not_found = || Error::NotFound(format!("no media at {}", uri.path()));
    let name = MediaName::from_path(uri.path()).ok_or_else(not_found)?;
    // Only private cameras show it: the public is told there is no such file; signed-in
    // people get it `private` (their browser keeps it, no shared cache does).
    let kind = if state.media_visibility.is_public(&state.db, &name).await? {
        ContentKind::ImmutableMedia
    } else if audience == Audience::SignedIn {
        ContentKind::PrivateMedia
    } else {
        return Err(not_found());
    };
    let media = state
        .media_cache
        .open(&state.media, &name)
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .ok_or_else(not_found)?;
    let selected = Selected::of_kind(kind)
        .etag_with_value(&media.etag, media.etag_header.clone())
        .last_modified_with_value(media.modified, media.last_modified_header.clone())
        .length(media.len)
        .field(
            header::CONTENT_TYPE,
            HeaderValue::from_static(name.kind.content_type()),
        );
    let answer = answer(&method, &headers, selected);
    let body = match &answer.content {
        Content::Whole => body(&state, &name, &media, None).await?,
        Content::Part(part) => body(&state, &name, &media, Some(*part)).await?,
        other => respond::body_in_memory(other, &bytes::Bytes::new()),
    };
    let sent = match answer.content {
        Content::Whole | Content::Part(_) => answer.body_length(media.len),
        _ => 0,
    };
    if sent > 0 && method != Method::HEAD {
        state.metrics.record(|| {
            metrics::counter!("media_bytes_sent_total", "folder" => name.kind.folder())
                .increment(sent)
        });
    }
    Ok(respond::response(answer, body))
}

/// The bytes to send: from memory for small files, streamed from the disk or the object
/// store (a ranged GET) for large ones.
async fn body(
    state: &AppState,
    name: &MediaName,
    media: &MediaFile,
    part: Option<ByteRange>,
) -> Result<Body> {
    if media.len == 0 {
        return Ok(Body::empty());
    }
    let part = part.unwrap_or(ByteRange {
        first: 0,
        last: media.len - 1,
    });
    if let Some(bytes) = &media.bytes {
        let r = part.as_std_range();
        return Ok(Body::from(bytes.slice(r.start as usize..r.end as usize)));
    }
    let stream = state
        .media
        .read_range(name, part.first, part.len())
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    Ok(Body::from_stream(stream))
}
