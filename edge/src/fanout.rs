//! The public event stream, fanned out at the edge: one Durable Object per location and filter
//! ([`EventFanout`], named by the data center and core's canonical form of the filter, so
//! `camera_id=2,1` and `camera_id=1,2` share it) holds one stream from the origin while it has
//! viewers and writes each event to every viewer's stream, in order, once.
//!
//! - Who shares it: a GET without credentials (`plan::shares_event_stream`) whose query core
//!   puts in canonical form. Anyone else is forwarded as before: a camera's host or a signed-in
//!   person sees private cameras' events, which must never reach a shared stream (the fan-out's
//!   own request carries no credentials, so the origin sends it public events only), and a
//!   query the origin refuses gets the origin's own 400.
//! - Resumes: a viewer's `Last-Event-ID` is answered from the fan-out's ring
//!   ([`ring::EventRing`]) when it can prove it holds every event after that id; otherwise the
//!   viewer is forwarded to the origin, which replays from its log or sends `resync`.
//! - The upstream: opened by the first viewer (from its `Last-Event-ID`, if any), which waits
//!   for it, so a viewer that has its response headers receives every event after them, as from
//!   the origin. When it ends or fails it is opened again after a bounded backoff with the last
//!   id received, so viewers stay connected and miss nothing through an origin's restart. It is
//!   closed when no viewer has been left for [`IDLE_GRACE`].
//! - Each viewer: `retry:` first (the origin's value), the replayed events, then the live ones;
//!   a heartbeat comment when nothing was written for the heartbeat interval
//!   (`EVENTS_HEARTBEAT_MS`, 15 s as the origin's); `resync` passed on. A viewer whose buffer is
//!   full (it stopped reading) is dropped, and resumes from the ring when it reconnects.
//!
//! [`ring`] (what is kept, and where each viewer's stream comes from) and [`relay`] (the
//! origin's bytes as frames) are plain Rust, tested natively and on wasm32; this module is the
//! Worker's part.

pub mod relay;
pub mod ring;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::Method;
use timelapser_core::events::{encode_retry, stream_fields, HEARTBEAT};
use timelapser_core::forwarding::CacheStatus;
use timelapser_core::paths;
use timelapser_core::stream_query::{StreamQuery, LAST_EVENT_ID};
use worker::{durable_object, Delay, DurableObject, Env, Request, Response, State};

use crate::error::AppError;
use crate::glue::{self, now, Incoming};
use crate::origin::Origin;
use crate::pass_through;
use crate::plan;

use self::relay::Relay;
use self::ring::{admit, Admission, EventRing, Upstream};

/// The Durable Object binding of the fan-outs (wrangler.toml).
pub const BINDING: &str = "EVENT_FANOUT";

/// How a fan-out tells the Worker to forward a viewer to the origin (never sent to clients).
const FORWARD: &str = "x-timelapser-fanout-forward";

/// The URL the Worker addresses its fan-outs with: only its path and query are read.
const FANOUT_BASE: &str = "https://fanout.internal";

/// The heartbeat interval when `EVENTS_HEARTBEAT_MS` is not set: the origin's.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

/// The `retry:` sent before the origin has said its own: the origin's default.
const DEFAULT_RETRY_MS: u64 = 2000;

/// Frames a viewer may fall behind by before it is dropped.
const VIEWER_BUFFER: usize = 256;

/// How long the upstream stays open after its last viewer left (a page reload comes back).
pub const IDLE_GRACE: Duration = Duration::from_secs(10);

/// The first and the longest wait before opening the upstream again (the longest is the
/// origin's `retry:`, what a browser would wait before reconnecting to it).
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Serves `GET /api/events` (and anything else on that path): from the fan-out of its filter
/// when it may be shared and the fan-out takes it, else from the origin as is.
pub async fn serve(
    origin: &Origin,
    req: Request,
    incoming: &Incoming,
    env: &Env,
) -> Result<Response, AppError> {
    if let Some(answer) = from_fanout(incoming, location(&req), env).await {
        return Ok(answer);
    }
    pass_through::serve(origin, req, incoming).await
}

/// The data center that received the request (`request.cf.colo`), when the runtime says.
fn location(req: &Request) -> Option<String> {
    use worker::js_sys::Reflect;
    let cf = Reflect::get(req.inner(), &"cf".into()).ok()?;
    Reflect::get(&cf, &"colo".into()).ok()?.as_string()
}

/// The fan-out's answer, or `None` when the request goes to the origin. Fan-outs are named by
/// the location and the canonical filter: a Durable Object runs where it was first asked for,
/// so each location's viewers share one near them, which holds one stream from the origin.
async fn from_fanout(incoming: &Incoming, location: Option<String>, env: &Env) -> Option<Response> {
    if !plan::shares_event_stream(&incoming.method, &incoming.headers) {
        return None;
    }
    let query = StreamQuery::parse(incoming.url.query().unwrap_or("")).ok()?;
    let field = match incoming.headers.get(LAST_EVENT_ID) {
        Some(value) => Some(value.to_str().ok()?),
        None => None,
    };
    let resume = query.resume_point(field);
    let filter = query.canonical_filter();
    let target = if filter.is_empty() {
        paths::EVENTS.to_owned()
    } else {
        format!("{}?{filter}", paths::EVENTS)
    };
    // Without the binding (an older configuration) the edge streams through as it used to.
    let namespace = env.durable_object(BINDING).ok()?;
    let name = format!("{} {target}", location.as_deref().unwrap_or("-"));
    let stub = namespace.id_from_name(&name).ok()?.get_stub().ok()?;
    let headers = worker::Headers::new();
    if let Some(resume) = resume {
        headers.set(LAST_EVENT_ID, resume).ok()?;
    }
    let mut init = worker::RequestInit::new();
    init.with_headers(headers);
    let request = Request::new_with_init(&format!("{FANOUT_BASE}{target}"), &init).ok()?;
    let answer = stub.fetch_with_request(request).await.ok()?;
    match answer.headers().has(FORWARD) {
        Ok(false) => Some(answer),
        _ => None,
    }
}

/// One filter's shared stream.
#[durable_object]
pub struct EventFanout {
    hub: Rc<RefCell<Hub>>,
    origin: Origin,
}

impl DurableObject for EventFanout {
    fn new(_state: State, env: Env) -> Self {
        let heartbeat = env
            .var("EVENTS_HEARTBEAT_MS")
            .ok()
            .and_then(|v| v.to_string().parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_HEARTBEAT);
        Self {
            hub: Rc::new(RefCell::new(Hub::new(heartbeat))),
            origin: Origin::from_env(&env),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let resume = req.headers().get(LAST_EVENT_ID)?;
        Ok(self.viewer(target, resume.as_deref()).await)
    }
}

impl EventFanout {
    /// A viewer's stream: joined at once, after the upstream is open, or forwarded.
    async fn viewer(&self, target: String, resume: Option<&str>) -> Response {
        let (frames, ready) = {
            let mut hub = self.hub.borrow_mut();
            let hub = &mut *hub;
            let admission = match admit(hub.upstream, &hub.ring, resume) {
                Admission::Join(frames) => {
                    let mut all = vec![encode_retry(hub.retry_ms)];
                    all.extend(frames.into_iter().map(str::to_owned));
                    Ok(all)
                }
                other => Err(match other {
                    Admission::Start(from) => Some(Some(from)),
                    Admission::Wait => Some(None),
                    _ => None,
                }),
            };
            match admission {
                Ok(frames) => {
                    let (viewer, frames) = viewer_channel(frames);
                    hub.viewers.push(viewer);
                    return stream_response(frames);
                }
                Err(None) => return forward(),
                Err(Some(start)) => {
                    if let Some(from) = start {
                        self.start(hub, target, from);
                    }
                    let (viewer, frames) = viewer_channel(Vec::new());
                    let (ready, is_ready) = oneshot::channel();
                    hub.pending.push((viewer, ready));
                    (frames, is_ready)
                }
            }
        };
        match glue::within(self.origin.timeout, ready).await {
            Some(Ok(true)) => stream_response(frames),
            _ => forward(),
        }
    }

    /// Opens the upstream from `from`, with its heartbeat.
    fn start(&self, hub: &mut Hub, target: String, from: Option<u64>) {
        hub.generation += 1;
        hub.target = target;
        hub.upstream = Upstream::Connecting(from);
        hub.ring.restart(from);
        hub.alone_since = None;
        let (stop, stopped) = oneshot::channel();
        hub.stop = Some(stop);
        let generation = hub.generation;
        worker::wasm_bindgen_futures::spawn_local(pump(
            self.hub.clone(),
            self.origin.clone(),
            generation,
            stopped,
        ));
        worker::wasm_bindgen_futures::spawn_local(heartbeat(self.hub.clone(), generation));
    }
}

/// A viewer's channel, holding `frames` first; its receiving end is the response body.
fn viewer_channel(frames: Vec<String>) -> (mpsc::Sender<String>, mpsc::Receiver<String>) {
    let (mut viewer, body) = mpsc::channel(VIEWER_BUFFER.max(frames.len()));
    for frame in frames {
        // Room was made for them all.
        let _ = viewer.try_send(frame);
    }
    (viewer, body)
}

/// The stream's response: the origin's fields for an event stream, the body as it is written.
fn stream_response(frames: mpsc::Receiver<String>) -> Response {
    let mut fields = stream_fields();
    CacheStatus::Bypass.apply(&mut fields);
    match Response::from_stream(frames.map(Ok::<String, worker::Error>)) {
        Ok(response) => response.with_headers(glue::headers(&fields)),
        Err(_) => forward(),
    }
}

/// Tells the Worker to forward the viewer to the origin.
fn forward() -> Response {
    let headers = worker::Headers::new();
    let _ = headers.set(FORWARD, "1");
    Response::empty()
        .map(|r| r.with_status(204).with_headers(headers))
        .unwrap_or_else(|_| Response::from(AppError::BadRequest("forward".into())))
}

/// A fan-out's state, shared by its viewers' requests and its upstream.
struct Hub {
    /// The path and query the upstream asks the origin for.
    target: String,
    upstream: Upstream,
    ring: EventRing,
    /// Viewers with their response, receiving every event.
    viewers: Vec<mpsc::Sender<String>>,
    /// Viewers waiting for the upstream to open: told whether it did.
    pending: Vec<(mpsc::Sender<String>, oneshot::Sender<bool>)>,
    /// The origin's `retry:`.
    retry_ms: u64,
    heartbeat: Duration,
    last_write: SystemTime,
    /// Since when no viewer is left.
    alone_since: Option<SystemTime>,
    /// Closes the upstream.
    stop: Option<oneshot::Sender<()>>,
    /// Which upstream (and heartbeat) is this fan-out's: an older one stops at its next step.
    generation: u64,
}

impl Hub {
    fn new(heartbeat: Duration) -> Self {
        Self {
            target: paths::EVENTS.to_owned(),
            upstream: Upstream::Idle,
            ring: EventRing::new(ring::CAPACITY),
            viewers: Vec::new(),
            pending: Vec::new(),
            retry_ms: DEFAULT_RETRY_MS,
            heartbeat,
            last_write: SystemTime::UNIX_EPOCH,
            alone_since: None,
            stop: None,
            generation: 0,
        }
    }

    /// Writes a frame to every viewer; drops those that left or stopped reading.
    fn broadcast(&mut self, frame: &str, at: SystemTime) {
        self.viewers
            .retain_mut(|viewer| viewer.try_send(frame.to_owned()).is_ok());
        self.last_write = at;
    }

    /// What one chunk from upstream completed. The first opens the upstream for the viewers
    /// waiting for it, with the origin's `retry:`, before any event.
    fn deliver(&mut self, relayed: Vec<relay::Relayed>, retry: Option<u64>, at: SystemTime) {
        if let Some(retry) = retry {
            self.retry_ms = retry;
        }
        if let Upstream::Connecting(_) = self.upstream {
            self.upstream = Upstream::Open;
            let retry = encode_retry(self.retry_ms);
            for (mut viewer, ready) in self.pending.drain(..) {
                if viewer.try_send(retry.clone()).is_ok() && ready.send(true).is_ok() {
                    self.viewers.push(viewer);
                }
            }
            self.last_write = at;
        }
        for event in relayed {
            let send = if event.resync {
                self.ring.resync(event.id);
                true
            } else {
                self.ring.push(event.id, &event.frame)
            };
            if send {
                self.broadcast(&event.frame, at);
            }
        }
    }

    /// The first connection failed: waiting viewers go to the origin.
    fn fail_pending(&mut self) {
        for (_, ready) in self.pending.drain(..) {
            let _ = ready.send(false);
        }
        self.upstream = Upstream::Idle;
        self.stop = None;
    }

    /// A heartbeat step: viewers that left are dropped, a comment is written when nothing was
    /// for the interval, and the upstream is closed once alone for the grace. Returns whether
    /// to keep stepping.
    fn step(&mut self, at: SystemTime) -> bool {
        self.viewers.retain(|viewer| !viewer.is_closed());
        if elapsed(self.last_write, at) >= self.heartbeat {
            self.broadcast(HEARTBEAT, at);
        }
        if !self.viewers.is_empty() || !self.pending.is_empty() {
            self.alone_since = None;
            return true;
        }
        let alone_since = *self.alone_since.get_or_insert(at);
        if elapsed(alone_since, at) < IDLE_GRACE {
            return true;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.upstream = Upstream::Idle;
        self.generation += 1;
        false
    }
}

fn elapsed(since: SystemTime, at: SystemTime) -> Duration {
    at.duration_since(since).unwrap_or_default()
}

/// Whether the origin answered with an event stream.
fn is_event_stream(response: &Response) -> bool {
    response.status_code() == 200
        && response
            .headers()
            .get(header::CONTENT_TYPE.as_str())
            .ok()
            .flatten()
            .is_some_and(|t| t.starts_with("text/event-stream"))
}

/// Holds the upstream: reads it into the hub, and opens it again when it ends or fails, from
/// the last id received. Ends when stopped, when its generation is over, or when the first
/// connection fails.
async fn pump(
    hub: Rc<RefCell<Hub>>,
    origin: Origin,
    generation: u64,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let (url, resume) = {
            let hub = hub.borrow();
            if hub.generation != generation {
                return;
            }
            (origin.url(&hub.target), hub.ring.newest())
        };
        let mut fields = HeaderMap::new();
        fields.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        if let Some(id) = resume {
            fields.insert(LAST_EVENT_ID, HeaderValue::from(id));
        }
        let sent = {
            let send = origin.fetch(&Method::GET, &url, &fields, None).fuse();
            futures::pin_mut!(send);
            futures::select! {
                sent = send => sent,
                _ = stopped => return,
            }
        };
        if let Ok((mut response, _)) = sent {
            if is_event_stream(&response) {
                if let Ok(body) = response.stream() {
                    let mut body = body.fuse();
                    let mut relay = Relay::new();
                    loop {
                        futures::select! {
                            chunk = body.next() => match chunk {
                                Some(Ok(bytes)) => {
                                    let relayed = relay.push(&bytes);
                                    let mut hub = hub.borrow_mut();
                                    if hub.generation != generation {
                                        return;
                                    }
                                    hub.deliver(relayed, relay.retry(), now());
                                    backoff = BACKOFF_MIN;
                                }
                                _ => break,
                            },
                            _ = stopped => return,
                        }
                    }
                }
            }
        }
        {
            let mut hub = hub.borrow_mut();
            if hub.generation != generation {
                return;
            }
            if let Upstream::Connecting(_) = hub.upstream {
                hub.fail_pending();
                return;
            }
        }
        let wait = Delay::from(backoff).fuse();
        futures::pin_mut!(wait);
        futures::select! {
            _ = wait => {}
            _ = stopped => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Steps the hub ([`Hub::step`]) several times per heartbeat interval.
async fn heartbeat(hub: Rc<RefCell<Hub>>, generation: u64) {
    let period = {
        let hub = hub.borrow();
        (hub.heartbeat / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
    };
    loop {
        Delay::from(period).await;
        let mut hub = hub.borrow_mut();
        if hub.generation != generation || !hub.step(now()) {
            return;
        }
    }
}
