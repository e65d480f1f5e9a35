//! `GET /api/events`: the live stream, through hyper. Most streams never get here: the server
//! loop hands plain event-stream requests out of hyper (see `serve`); this route answers the
//! rest (HEAD, HTTP/1.0, a request with a body) and every error as a problem document.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use timelapser_core::paths::EVENTS;

use super::auth::StreamViewer;
use crate::error::Result;
use crate::services::event_stream::{EventStream, StreamRequest};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(EVENTS, get(events))
}

async fn events(
    State(state): State<AppState>,
    StreamViewer { audience, camera }: StreamViewer,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    let mut request = StreamRequest::new(
        uri.query().unwrap_or(""),
        headers.get("last-event-id").map(|v| v.as_bytes()),
    )?;
    request.audience = audience;
    request.own_camera = camera;
    let stream = EventStream::open(state, request).await?;
    let unfolded = futures::stream::unfold(stream, |mut s| async move {
        s.next()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), s))
    });
    let mut response = Response::new(Body::from_stream(unfolded));
    response
        .headers_mut()
        .extend(timelapser_core::events::stream_fields());
    Ok(response)
}
