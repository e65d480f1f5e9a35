//! The HTTP/1.1 server loop, and the hand-off of event streams out of hyper.
//!
//! Not `axum::serve`: its HTTP/1-or-2 connection builder made every open connection cost
//! over 40 KiB, which matters with thousands of idle SSE clients; the origin speaks HTTP/1.1
//! to the edge and to camera hosts, so a plain hyper HTTP/1 connection is all it needs.
//!
//! Around hyper, this loop:
//! - caps open connections below the file-descriptor limit (further clients wait in the
//!   listen backlog) and says so in the log once a minute, not once per attempt;
//! - reads each connection's first request head itself (then gives those bytes to hyper), so
//!   a head that is malformed, carries conflicting Content-Lengths or is too large gets a
//!   problem document rather than hyper's empty 400/431;
//! - serves event streams without hyper's read and write buffers (two 8 KiB allocations) held
//!   for the stream's whole life: a connection that opens with a plain `GET /api/events`
//!   never meets hyper; on a kept-alive connection (as browsers and the edge keep them) the
//!   request is opened by the service, then the connection is taken back from hyper
//!   (`into_parts`) and the stream written here. A stream opened either way costs the same;
//! - drops an event-stream client that stops reading (its writes stall for
//!   `sse_write_timeout`, with a small kernel send buffer), so it cannot pin memory; it
//!   resumes with Last-Event-ID when it comes back;
//! - on shutdown, lets requests in flight finish and streams end cleanly, then after
//!   `shutdown_grace` closes whatever is left (a client that never reads, a stalled upload).

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::http::{header, Method, StatusCode, Version};
use bytes::{Buf, Bytes};
use futures::FutureExt;
use hyper::body::Incoming;
use timelapser_core::paths::EVENTS;
use timelapser_core::Problem;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::services::event_stream::{EventStream, StreamRequest};
use crate::state::AppState;

/// How long a new connection may take to send its first request head (and hyper, later ones).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request head accepted (431 beyond).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The most header fields a request may have (431 beyond): hyper's own limit.
const MAX_HEADERS: usize = 100;

/// The kernel send buffer of an event stream's socket: room for a few hundred events, not
/// megabytes of them for a client that stopped reading.
const EVENT_STREAM_SEND_BUFFER: usize = 64 * 1024;

/// How often a condition (connection limit, accept errors) is logged at most.
const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The server loop's settings.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// How long shutdown waits for connections before closing them.
    pub shutdown_grace: Duration,
    /// How long an event-stream write may stall before the client is dropped.
    pub sse_write_timeout: Duration,
}

/// Serves HTTP/1.1 until `shutdown`, then waits up to the grace period for open connections
/// to finish (SSE streams end on the same signal; other connections finish their request in
/// flight), and closes the rest.
pub(crate) async fn serve_http1(
    listener: TcpListener,
    app: axum::Router,
    state: AppState,
    limits: ServeLimits,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let connections = TaskTracker::new();
    let force = CancellationToken::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let open = state
        .metrics
        .record(|| metrics::gauge!("http_connections_open"));
    let mut limit_logged: Option<Instant> = None;
    let mut accept_error_logged: Option<Instant> = None;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if limit_logged.is_none_or(|at| at.elapsed() >= LOG_INTERVAL) {
                    limit_logged = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached; new connections wait in the listen backlog"
                    );
                }
                state
                    .metrics
                    .record(|| metrics::counter!("connection_limit_waits_total").increment(1));
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    permit = permits.clone().acquire_owned() => permit.expect("never closed"),
                }
            }
        };
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning,
                    // and say so once a minute, not a thousand times.
                    state
                        .metrics
                        .record(|| metrics::counter!("accept_errors_total").increment(1));
                    if accept_error_logged.is_none_or(|at| at.elapsed() >= LOG_INTERVAL) {
                        accept_error_logged = Some(Instant::now());
                        tracing::warn!(error = %e, "accepting connections fails");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            app: app.clone(),
            state: state.clone(),
            builder: builder.clone(),
            limits,
            shutdown: shutdown.clone(),
            force: force.clone(),
        };
        open.increment(1.0);
        let open = open.clone();
        connections.spawn(async move {
            // Boxed: the task holds only what its connection needs now.
            Box::pin(connection.serve(stream)).await;
            open.decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(limits.shutdown_grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            grace_s = limits.shutdown_grace.as_secs(),
            "closing the connections still open after the shutdown grace period"
        );
        force.cancel();
        connections.wait().await;
    }
    Ok(())
}

/// One connection's share of the server.
struct Connection {
    app: axum::Router,
    state: AppState,
    builder: Arc<hyper::server::conn::http1::Builder>,
    limits: ServeLimits,
    shutdown: CancellationToken,
    force: CancellationToken,
}

impl Connection {
    /// Serves the connection: everything until an event stream (boxed, so a long-lived
    /// stream's task holds no room for hyper's connection or the first head's buffer), then
    /// the stream.
    async fn serve(self, stream: TcpStream) {
        let (limits, force) = (self.limits, self.force.clone());
        let metrics = self.state.metrics.clone();
        let Some((stream, events)) = Box::pin(self.until_event_stream(stream)).await else {
            return;
        };
        let served = AssertUnwindSafe(serve_event_stream(stream, events, limits, force, &metrics))
            .catch_unwind()
            .await;
        if served.is_err() {
            // The same containment as the router's: logged and counted, the process goes on.
            tracing::error!(
                route = EVENTS,
                "an event stream panicked; its connection was closed"
            );
            metrics
                .request_counter(EVENTS, &Method::GET, StatusCode::INTERNAL_SERVER_ERROR)
                .increment(1);
        }
    }

    /// Reads the first head, then serves requests until the connection ends (`None`) or
    /// an event stream is opened on it: then the socket and the stream.
    async fn until_event_stream(self, mut stream: TcpStream) -> Option<(TcpStream, EventStream)> {
        // A connection that has not sent a request yet is closed at shutdown, as hyper
        // closes an idle one.
        let head = tokio::select! {
            head = Box::pin(read_first_head(&mut stream)) => head,
            _ = self.shutdown.cancelled() => return None,
        };
        let prefix = match head {
            FirstHead::Complete(prefix) => prefix,
            FirstHead::Invalid(problem) => {
                let _ = tokio::time::timeout(
                    self.limits.sse_write_timeout,
                    Box::pin(write_problem(&mut stream, &problem)),
                )
                .await;
                return None;
            }
            FirstHead::Close => return None,
        };
        let Connection {
            app,
            state,
            builder,
            shutdown,
            force,
            ..
        } = self;
        // A connection that opens with a plain event-stream request never meets hyper.
        let opened = match first_events_request(&prefix) {
            Some(request) => Box::pin(open_stream(&state, request)).await,
            None => None,
        };
        match opened {
            Some(events) => Some((stream, events)),
            None => {
                let hyper = HyperPhase {
                    app,
                    state,
                    builder,
                    shutdown,
                    force,
                };
                hyper.serve(stream, prefix).await
            }
        }
    }
}

/// What serving a connection with hyper needs.
struct HyperPhase {
    app: axum::Router,
    state: AppState,
    builder: Arc<hyper::server::conn::http1::Builder>,
    shutdown: CancellationToken,
    force: CancellationToken,
}

impl HyperPhase {
    /// Serves requests with hyper and the router until the connection ends (`None`), or
    /// until the service hands an event stream out: then the socket, taken back from hyper,
    /// and the stream.
    async fn serve(self, stream: TcpStream, prefix: Bytes) -> Option<(TcpStream, EventStream)> {
        let write_pending = Arc::new(AtomicBool::new(false));
        let handoff = Arc::new(Handoff::default());
        let peer = stream.peer_addr().ok();
        let io = Tracked {
            prefix,
            stream,
            write_pending: write_pending.clone(),
        };
        let service = {
            let (app, state, handoff) = (self.app, self.state, handoff.clone());
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let (app, state, handoff) = (app.clone(), state.clone(), handoff.clone());
                let write_pending = write_pending.clone();
                async move {
                    // Only when nothing of an earlier response waits in hyper's buffer:
                    // taking the socket back would lose it.
                    if let Some(stream_request) = hand_off_request(&request) {
                        if !write_pending.load(Ordering::Acquire) {
                            if let Some(stream) = open_stream(&state, stream_request).await {
                                handoff.give(stream);
                                return std::future::pending().await;
                            }
                        }
                    }
                    let mut request = request.map(axum::body::Body::new);
                    if let Some(peer) = peer {
                        // Who is on the other end, for handlers that ask (sign-in throttling).
                        request
                            .extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                    }
                    app.oneshot(request).await
                }
            })
        };
        let mut connection = self
            .builder
            .serve_connection(hyper_util::rt::TokioIo::new(io), service);
        let mut shutting_down = false;
        loop {
            tokio::select! {
                ended = &mut connection => {
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return None;
                }
                _ = handoff.ready.notified() => break,
                _ = self.shutdown.cancelled(), if !shutting_down => {
                    shutting_down = true;
                    Pin::new(&mut connection).graceful_shutdown();
                }
                _ = self.force.cancelled() => return None,
            }
        }
        let events = handoff.take()?;
        Some((connection.into_parts().io.into_inner().stream, events))
    }
}

/// The stream request of a connection's first head when it is a plain `GET /api/events` (see
/// [`hand_off_request`]), parsed from the bytes already read.
fn first_events_request(head: &[u8]) -> Option<StreamRequest> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let httparse::Status::Complete(_) = request.parse(head).ok()? else {
        return None;
    };
    if request.method? != "GET" || request.version? != 1 {
        return None;
    }
    let (path, query) = request.path?.split_once('?').unwrap_or((request.path?, ""));
    if path != EVENTS {
        return None;
    }
    let mut last_event_id = None;
    for field in request.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("last-event-id") {
            last_event_id = Some(field.value);
        } else if name.eq_ignore_ascii_case("content-length") {
            if field.value.trim_ascii() != b"0" {
                return None;
            }
        } else if [
            "transfer-encoding",
            "expect",
            "upgrade",
            "authorization",
            "cookie",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
        {
            // Credentials decide whose stream it is: the router's extractors read them.
            return None;
        }
    }
    StreamRequest::new(query, last_event_id).ok()
}

/// The stream request of a plain `GET /api/events` over HTTP/1.1 without a body, which can be
/// handed out of hyper; anything else about it (HEAD, HTTP/1.0, a body, an upgrade) stays
/// with the router.
fn hand_off_request(request: &hyper::Request<Incoming>) -> Option<StreamRequest> {
    if request.method() != Method::GET
        || request.uri().path() != EVENTS
        || request.version() != Version::HTTP_11
    {
        return None;
    }
    let headers = request.headers();
    let empty_body = headers
        .get(header::CONTENT_LENGTH)
        .is_none_or(|v| v.as_bytes().trim_ascii() == b"0");
    if !empty_body
        || [
            header::TRANSFER_ENCODING,
            header::EXPECT,
            header::UPGRADE,
            // Credentials decide whose stream it is: the router's extractors read them.
            header::AUTHORIZATION,
            header::COOKIE,
        ]
        .iter()
        .any(|name| headers.contains_key(name))
    {
        return None;
    }
    StreamRequest::new(
        request.uri().query().unwrap_or(""),
        headers.get("last-event-id").map(|v| v.as_bytes()),
    )
    .ok()
}

/// Opens a stream for a hand-off; `None` when it cannot be (a bad filter, which the router
/// then answers with a problem document, or a panic, which it contains).
async fn open_stream(state: &AppState, request: StreamRequest) -> Option<EventStream> {
    match AssertUnwindSafe(EventStream::open(state.clone(), request))
        .catch_unwind()
        .await
    {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(_)) => None,
        Err(_) => {
            tracing::error!(route = EVENTS, "opening an event stream panicked");
            None
        }
    }
}

/// An event stream handed from the service to its connection's task.
#[derive(Default)]
struct Handoff {
    stream: Mutex<Option<EventStream>>,
    ready: Notify,
}

impl Handoff {
    fn give(&self, stream: EventStream) {
        *self.stream.lock().expect("hand-off lock") = Some(stream);
        self.ready.notify_one();
    }

    fn take(&self) -> Option<EventStream> {
        self.stream.lock().expect("hand-off lock").take()
    }
}

/// The connection's socket as hyper sees it: first the head already read, then the socket;
/// and whether hyper's last write found the socket full (so its buffer still holds bytes).
struct Tracked {
    prefix: Bytes,
    stream: TcpStream,
    write_pending: Arc<AtomicBool>,
}

impl Tracked {
    fn note(&self, result: &Poll<std::io::Result<usize>>) {
        self.write_pending
            .store(result.is_pending(), Ordering::Release);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.has_remaining() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.note(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.note(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// What a connection's first request head turned out to be.
enum FirstHead {
    /// A head hyper can take: the bytes read so far.
    Complete(Bytes),
    /// A head no server may accept, answered with this problem.
    Invalid(Problem),
    /// Nothing (in time), or the peer went away.
    Close,
}

/// Reads until the first request head is complete, and checks it as hyper would. The bytes
/// are handed to hyper unchanged.
async fn read_first_head(stream: &mut TcpStream) -> FirstHead {
    let deadline = tokio::time::Instant::now() + HEADER_READ_TIMEOUT;
    let mut buf = Vec::with_capacity(4096);
    loop {
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return FirstHead::Close,
            Ok(Ok(_)) => {}
        }
        match check_head(&buf) {
            HeadCheck::Complete => return FirstHead::Complete(Bytes::from(buf)),
            HeadCheck::Invalid(problem) => return FirstHead::Invalid(problem),
            HeadCheck::Partial if buf.len() >= MAX_HEAD_BYTES => {
                return FirstHead::Invalid(Problem::new(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    format!("the request head is larger than the {MAX_HEAD_BYTES} bytes allowed"),
                ))
            }
            HeadCheck::Partial => {
                if buf.capacity() == buf.len() {
                    buf.reserve(buf.len().min(MAX_HEAD_BYTES - buf.len()).max(1));
                }
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum HeadCheck {
    Complete,
    Partial,
    Invalid(Problem),
}

/// Checks a request head the way hyper's parser (httparse) and RFC 9112 do.
fn check_head(bytes: &[u8]) -> HeadCheck {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let bad = |detail: String| HeadCheck::Invalid(Problem::new(StatusCode::BAD_REQUEST, detail));
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) => HeadCheck::Partial,
        Err(httparse::Error::TooManyHeaders) => HeadCheck::Invalid(Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("a request may have at most {MAX_HEADERS} header fields"),
        )),
        Err(e) => bad(format!("the request head is malformed: {e}")),
        Ok(httparse::Status::Complete(_)) => {
            // RFC 9112 §6.3: differing Content-Length values make the message's length
            // unknowable; a server must reject it rather than guess (request smuggling).
            let mut lengths = request
                .headers
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case("content-length"))
                .flat_map(|f| f.value.split(|&b| b == b','))
                .map(<[u8]>::trim_ascii);
            if let Some(first) = lengths.next() {
                if !first.iter().all(u8::is_ascii_digit)
                    || first.is_empty()
                    || lengths.any(|other| other != first)
                {
                    return bad("the request has an invalid or conflicting Content-Length".into());
                }
            }
            HeadCheck::Complete
        }
    }
}

/// Answers a problem and closes (the connection's state is unknown after a bad head).
async fn write_problem(stream: &mut TcpStream, problem: &Problem) -> std::io::Result<()> {
    let body = problem.to_json();
    let status = problem.status();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("Error")
    );
    for (name, value) in Problem::fields().iter() {
        head.push_str(&format!(
            "{}: {}\r\n",
            name,
            value.to_str().unwrap_or_default()
        ));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\ndate: {}\r\n\r\n",
        body.len(),
        httpdate::fmt_http_date(SystemTime::now())
    ));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

/// Writes the response head and then the stream's chunks (chunked transfer coding) until the
/// stream ends, the client goes away or stops reading, or shutdown's grace runs out.
async fn serve_event_stream(
    mut stream: TcpStream,
    mut events: EventStream,
    limits: ServeLimits,
    force: CancellationToken,
    metrics: &crate::metrics::Metrics,
) {
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(&stream, EVENT_STREAM_SEND_BUFFER);
    metrics
        .request_counter(EVENTS, &Method::GET, StatusCode::OK)
        .increment(1);
    tracing::debug!(route = EVENTS, "event stream");
    let mut head = String::with_capacity(256);
    head.push_str("HTTP/1.1 200 OK\r\n");
    for (name, value) in &timelapser_core::events::stream_fields() {
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value.to_str().unwrap_or_default());
        head.push_str("\r\n");
    }
    head.push_str("transfer-encoding: chunked\r\ndate: ");
    head.push_str(&httpdate::fmt_http_date(SystemTime::now()));
    head.push_str("\r\n\r\n");
    let write_timeout = limits.sse_write_timeout;
    let dropped = || {
        metrics.record(|| {
            metrics::counter!("sse_clients_dropped_total", "reason" => "not_reading").increment(1)
        })
    };
    if !write_within(&mut stream, head.as_bytes(), write_timeout, dropped).await {
        return;
    }
    drop(head);
    loop {
        let chunk = tokio::select! {
            chunk = events.next() => chunk,
            _ = peer_closed(&stream) => return,
            _ = force.cancelled() => return,
        };
        let Some(chunk) = chunk else {
            // The stream ended (shutdown): the last chunk, then close.
            let _ = write_within(&mut stream, b"0\r\n\r\n", write_timeout, dropped).await;
            return;
        };
        if !write_within(&mut stream, &chunked(&chunk), write_timeout, dropped).await {
            return;
        }
    }
}

/// Writes all of `bytes`, or gives up when the client has not taken them within `limit`
/// (it stopped reading; the caller drops it).
async fn write_within(
    stream: &mut TcpStream,
    bytes: &[u8],
    limit: Duration,
    dropped: impl Fn(),
) -> bool {
    match tokio::time::timeout(limit, stream.write_all(bytes)).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            dropped();
            tracing::debug!("dropping an event-stream client that stopped reading");
            false
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
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        // Not held across the await: every idle stream's task would carry it.
        let mut discard = [0u8; 64];
        match stream.try_read(&mut discard) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// The connection cap for a process: its file-descriptor limit (raised to the hard limit)
/// minus room for the database, media files and ffmpeg.
pub fn default_max_connections() -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let current = getrlimit(Resource::Nofile)
        .current
        .unwrap_or(65_536)
        .min(1 << 20) as usize;
    current.saturating_sub(256).max(64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_checked_as_hyper_would() {
        assert_eq!(
            check_head(b"GET /api/events HTTP/1.1\r\nHost: o\r\n\r\n"),
            HeadCheck::Complete
        );
        assert_eq!(
            check_head(b"GET /api/events HTTP/1.1\r\nHost: o\r\n"),
            HeadCheck::Partial
        );
        assert_eq!(
            check_head(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"),
            HeadCheck::Complete
        );
        for bad in [
            &b"GET /a\0b HTTP/1.1\r\nHost: o\r\n\r\n"[..],
            b"GET /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"GET /x HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n",
            b"GET /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GARBAGE\r\n\r\n",
        ] {
            match check_head(bad) {
                HeadCheck::Invalid(problem) => assert_eq!(problem.status, 400),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(check_head(&many), HeadCheck::Invalid(p) if p.status == 431));
    }

    #[test]
    fn a_plain_first_event_stream_request_skips_hyper() {
        let head = b"GET /api/events?camera_id=1,2&types=image_captured HTTP/1.1\r\nHost: o\r\nLast-Event-ID: 41\r\n\r\n";
        assert_eq!(
            first_events_request(head),
            Some(StreamRequest {
                last_event_id: Some("41".into()),
                camera_id: Some("1,2".into()),
                types: Some("image_captured".into()),
                audience: Default::default(),
                own_camera: None,
            })
        );
        // A stream with credentials is the router's (whose stream it is comes from them).
        let signed_in = b"GET /api/events HTTP/1.1\r\nHost: o\r\nCookie: tl_session=x\r\n\r\n";
        assert_eq!(first_events_request(signed_in), None);
        let resume = b"GET /api/events?last_event_id=7 HTTP/1.1\r\nHost: o\r\n\r\nGET /next";
        assert_eq!(
            first_events_request(resume).and_then(|r| r.last_event_id),
            Some("7".into())
        );
        for head in [
            &b"HEAD /api/events HTTP/1.1\r\nHost: o\r\n\r\n"[..],
            b"GET /api/events HTTP/1.0\r\n\r\n",
            b"GET /api/eventsx HTTP/1.1\r\nHost: o\r\n\r\n",
            b"GET /api/cameras HTTP/1.1\r\nHost: o\r\n\r\n",
            b"GET /api/events HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"GET /api/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /api/events?camera_id=1&camera_id=2 HTTP/1.1\r\nHost: o\r\n\r\n",
        ] {
            assert_eq!(
                first_events_request(head),
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
