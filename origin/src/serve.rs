//! The HTTP/1.1 server loop, and its lean path for event streams.
//!
//! Not `axum::serve`: its HTTP/1-or-2 connection builder made every open connection cost
//! over 40 KiB, which matters with thousands of idle SSE clients; the origin speaks HTTP/1.1
//! to the edge and to camera hosts, so a plain hyper HTTP/1 connection is all it needs.
//!
//! An event stream outlives everything else on its connection, so it gets one more step: a
//! new connection whose first request is a plain `GET /api/events` (read with `peek`, so
//! nothing is consumed when it is not) is answered here, by the same [`EventStream`] the
//! route uses, without hyper's per-connection read and write buffers (two 8 KiB
//! allocations held for the stream's whole life). Anything else about the request — another
//! method or path, HTTP/1.0, a body, a head that did not arrive in one piece, a filter that
//! does not parse — goes to hyper and the router unchanged, which also answers the errors.
//! Request heads are parsed by httparse, the parser hyper itself uses.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::routes::events::{EventStream, EventsQuery, EVENTS_PATH};
use crate::state::AppState;

/// How long a new connection may take to send its first request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a first request head looked at for the lean path; a longer head goes to
/// hyper (which accepts up to its own limit).
const PEEK_BYTES: usize = 4096;

/// Serves HTTP/1.1 until `shutdown`, then waits for open connections to finish (SSE streams
/// end on the same signal; other connections finish their request in flight).
pub(crate) async fn serve_http1(
    listener: TcpListener,
    app: axum::Router,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let connections = TaskTracker::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let builder = Arc::new(builder);
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let app = app.clone();
        let state = state.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            // Each path boxed: an event stream's task then holds no room for a hyper
            // connection, and the other way round.
            // A connection that has not sent a request yet is closed at shutdown, as hyper
            // closes an idle one.
            let first = tokio::select! {
                first = Box::pin(first_request(&stream, &state)) => first,
                _ = shutdown.cancelled() => First::Close,
            };
            match first {
                First::Events(events) => Box::pin(serve_event_stream(stream, events)).await,
                First::Other => Box::pin(serve_with_hyper(stream, app, &builder, shutdown)).await,
                First::Close => {}
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Serves a connection with hyper and the router; on shutdown, the request in flight is
/// finished and the connection closed.
async fn serve_with_hyper(
    stream: TcpStream,
    app: axum::Router,
    builder: &hyper::server::conn::http1::Builder,
    shutdown: CancellationToken,
) {
    let service = hyper_util::service::TowerToHyperService::new(app);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// What a new connection's first request is.
enum First {
    /// `GET /api/events` that the lean path serves (its head already consumed).
    Events(EventStream),
    /// Anything else: hyper reads it from the start.
    Other,
    /// Nothing arrived in time, or the peer went away.
    Close,
}

async fn first_request(stream: &TcpStream, state: &AppState) -> First {
    let mut head = vec![0u8; PEEK_BYTES];
    let peeked = match tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut head)).await {
        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return First::Close,
        Ok(Ok(n)) => n,
    };
    let Some(request) = EventsRequest::parse(&head[..peeked]) else {
        return First::Other;
    };
    let Ok(events) = EventStream::open(
        state.clone(),
        request.last_event_id,
        request.camera_id.as_deref(),
        request.types.as_deref(),
    )
    .await
    else {
        // A bad filter: the route answers it with a problem document.
        return First::Other;
    };
    // The head is in the socket's buffer already: take exactly it off.
    let mut consumed = 0;
    while consumed < request.head_len {
        match stream.try_read(&mut head[consumed..request.head_len]) {
            Ok(0) => return First::Close,
            Ok(n) => consumed += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if stream.readable().await.is_err() {
                    return First::Close;
                }
            }
            Err(_) => return First::Close,
        }
    }
    First::Events(events)
}

/// A first request the lean path takes: `GET /api/events` over HTTP/1.1, without a body
/// or anything else that needs hyper.
#[derive(Debug, PartialEq)]
struct EventsRequest {
    head_len: usize,
    last_event_id: Option<String>,
    camera_id: Option<String>,
    types: Option<String>,
}

impl EventsRequest {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut fields);
        let httparse::Status::Complete(head_len) = request.parse(bytes).ok()? else {
            return None;
        };
        if request.method? != "GET" || request.version? != 1 {
            return None;
        }
        let (path, query) = match request.path?.split_once('?') {
            Some((path, query)) => (path, query),
            None => (request.path?, ""),
        };
        if path != EVENTS_PATH {
            return None;
        }
        let query: EventsQuery = serde_urlencoded::from_str(query).ok()?;
        let mut last_event_id = query.last_event_id;
        for field in request.headers.iter() {
            let name = field.name;
            if name.eq_ignore_ascii_case("last-event-id") {
                // The header wins over the query, as on the route.
                last_event_id = Some(String::from_utf8_lossy(field.value).into_owned());
            } else if name.eq_ignore_ascii_case("content-length") {
                if field.value.trim_ascii() != b"0" {
                    return None;
                }
            } else if ["transfer-encoding", "expect", "upgrade"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
            {
                return None;
            }
        }
        Some(Self {
            head_len,
            last_event_id,
            camera_id: query.camera_id,
            types: query.types,
        })
    }
}

/// Writes the response head and then the stream's chunks (chunked transfer coding) until the
/// stream ends or the client goes away.
async fn serve_event_stream(mut stream: TcpStream, mut events: EventStream) {
    crate::routes::request_counter(EVENTS_PATH, &Method::GET, StatusCode::OK).increment(1);
    tracing::debug!(route = EVENTS_PATH, "event stream (lean path)");
    let mut head = String::with_capacity(256);
    head.push_str("HTTP/1.1 200 OK\r\n");
    for (name, value) in EventStream::response_fields() {
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value.to_str().unwrap_or_default());
        head.push_str("\r\n");
    }
    head.push_str("transfer-encoding: chunked\r\ndate: ");
    head.push_str(&httpdate::fmt_http_date(SystemTime::now()));
    head.push_str("\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    drop(head);
    loop {
        let chunk = tokio::select! {
            chunk = events.next() => chunk,
            _ = peer_closed(&stream) => return,
        };
        let Some(chunk) = chunk else {
            // The stream ended (shutdown): the last chunk, then close.
            let _ = stream.write_all(b"0\r\n\r\n").await;
            return;
        };
        if stream.write_all(&chunked(&chunk)).await.is_err() {
            return;
        }
    }
}

/// One chunk of the chunked transfer coding (RFC 9112 §7.1).
fn chunked(data: &Bytes) -> Vec<u8> {
    let size = format!("{:x}\r\n", data.len());
    let mut out = Vec::with_capacity(size.len() + data.len() + 2);
    out.extend_from_slice(size.as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Resolves when the client closes its side (or the socket fails). Anything it sends on an
/// event stream's connection is discarded: the response never ends, so no other request on
/// this connection could be answered.
async fn peer_closed(stream: &TcpStream) {
    let mut discard = [0u8; 64];
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        match stream.try_read(&mut discard) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_event_stream_request_takes_the_lean_path() {
        let head = b"GET /api/events?camera_id=1,2&types=image_captured HTTP/1.1\r\nHost: o\r\nLast-Event-ID: 41\r\n\r\n";
        assert_eq!(
            EventsRequest::parse(head),
            Some(EventsRequest {
                head_len: head.len(),
                last_event_id: Some("41".into()),
                camera_id: Some("1,2".into()),
                types: Some("image_captured".into()),
            })
        );
        let query_resume = b"GET /api/events?last_event_id=7 HTTP/1.1\r\nHost: o\r\n\r\nGET /next";
        let parsed = EventsRequest::parse(query_resume).expect("lean path");
        assert_eq!(parsed.last_event_id.as_deref(), Some("7"));
        assert_eq!(parsed.head_len, query_resume.len() - b"GET /next".len());
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for head in [
            &b"HEAD /api/events HTTP/1.1\r\nHost: o\r\n\r\n"[..],
            b"GET /api/events HTTP/1.0\r\n\r\n",
            b"GET /api/eventsx HTTP/1.1\r\nHost: o\r\n\r\n",
            b"GET /api/cameras HTTP/1.1\r\nHost: o\r\n\r\n",
            b"GET /api/events HTTP/1.1\r\nHost: o\r\n",
            b"GET /api/events HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"GET /api/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GARBAGE\r\n\r\n",
        ] {
            assert_eq!(
                EventsRequest::parse(head),
                None,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn chunks_are_framed_with_their_hex_size() {
        assert_eq!(
            chunked(&Bytes::from_static(b":\n\n")),
            b"3\r\n:\n\n\r\n".to_vec()
        );
        let frame = Bytes::from(vec![b'a'; 300]);
        assert!(chunked(&frame).starts_with(b"12c\r\naaa"));
    }
}
