//! The Worker: moves requests and bytes between the client, the Cache API and the origin, and
//! asks [`crate::plan`] (and through it `timelapser_core`) what to do at every step.
//!
//! `#[event(fetch)]` dispatches on [`plan::route`]:
//! - media: answered from the Cache API; a miss fills it with one origin fetch however many
//!   requests are waiting for the same object (per isolate, which is what the platform
//!   allows), then every waiter answers from the stored copy;
//! - other GET/HEAD: stored when core says a shared cache may store it, served while fresh,
//!   revalidated with the stored validators when stale, served stale within `stale-if-error`
//!   when the origin fails;
//! - `/api/events`: streamed through as the origin writes it;
//! - everything else: forwarded untouched, body and all.

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use http::header::HeaderMap;
use http::StatusCode;
use timelapser_core::cache_control::{ResponseTiming, Storability};
use timelapser_core::forwarding::CacheStatus;
use timelapser_core::response::{self, Content};
use timelapser_core::Problem;
use worker::{
    event, AbortController, Cache, Context, Date, Delay, Env, Fetch, Headers, Request, RequestInit,
    RequestRedirect, Response, ResponseBody,
};

use crate::plan::{self, Route, Stored};

/// Where the origin is when the `ORIGIN` variable is not set.
const DEFAULT_ORIGIN: &str = "http://127.0.0.1:8000";

/// How long the edge waits for the origin's response headers (`ORIGIN_TIMEOUT_MS`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(Date::now().as_millis())
}

fn http_method(req: &Request) -> http::Method {
    http::Method::from_bytes(req.inner().method().as_bytes()).unwrap_or(http::Method::GET)
}

fn header_map(headers: &Headers) -> HeaderMap {
    HeaderMap::from(headers)
}

fn response(status: StatusCode, headers: &HeaderMap, body: ResponseBody) -> Response {
    Response::builder()
        .with_status(status.as_u16())
        .with_headers(Headers::from(headers))
        .body(body)
}

fn problem(status: StatusCode, detail: &str) -> Response {
    let answer = plan::problem_answer(Problem::new(status, detail));
    let body = match answer.content {
        Content::Problem(problem) => problem.to_json(),
        _ => Vec::new(),
    };
    response(answer.status, &answer.fields, ResponseBody::Body(body))
}

/// What the origin did.
enum OriginError {
    /// It did not answer in time.
    Timeout,
    /// It could not be reached.
    Unreachable(String),
}

impl OriginError {
    fn into_response(self) -> Response {
        match self {
            OriginError::Timeout => problem(
                StatusCode::GATEWAY_TIMEOUT,
                "the origin did not answer in time",
            ),
            OriginError::Unreachable(why) => problem(
                StatusCode::BAD_GATEWAY,
                &format!("the origin cannot be reached: {why}"),
            ),
        }
    }
}

/// The configuration of one request.
#[derive(Clone)]
struct Edge {
    origin: String,
    timeout: Duration,
}

impl Edge {
    fn from_env(env: &Env) -> Self {
        let origin = env
            .var("ORIGIN")
            .map(|v| v.to_string())
            .unwrap_or_else(|_| DEFAULT_ORIGIN.to_owned());
        let timeout = env
            .var("ORIGIN_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.to_string().parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_TIMEOUT);
        Self {
            origin: origin.trim_end_matches('/').to_owned(),
            timeout,
        }
    }

    /// The origin's URL for a request's path and query.
    fn origin_url(&self, req: &Request) -> worker::Result<String> {
        let url = req.url()?;
        Ok(match url.query() {
            Some(q) => format!("{}{}?{q}", self.origin, url.path()),
            None => format!("{}{}", self.origin, url.path()),
        })
    }

    /// Sends a request to the origin; waits at most the timeout for its response headers
    /// (the body then streams for as long as it takes).
    async fn fetch(
        &self,
        method: &http::Method,
        url: &str,
        headers: &HeaderMap,
        body: Option<worker::wasm_bindgen::JsValue>,
    ) -> Result<(Response, ResponseTiming), OriginError> {
        let mut init = RequestInit::new();
        init.with_method(worker::Method::from(method.as_str().to_owned()))
            .with_headers(Headers::from(headers))
            .with_redirect(RequestRedirect::Manual);
        if body.is_some() {
            init.with_body(body);
        }
        let request = Request::new_with_init(url, &init)
            .map_err(|e| OriginError::Unreachable(e.to_string()))?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let request_time = now();
        let fetch = Fetch::Request(request);
        let send = fetch.send_with_signal(&signal).fuse();
        let timeout = Delay::from(self.timeout).fuse();
        futures::pin_mut!(send, timeout);
        futures::select! {
            sent = send => match sent {
                Ok(response) => Ok((response, ResponseTiming { request_time, response_time: now() })),
                Err(e) => Err(OriginError::Unreachable(e.to_string())),
            },
            _ = timeout => {
                controller.abort();
                Err(OriginError::Timeout)
            }
        }
    }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let edge = Edge::from_env(&env);
    let method = http_method(&req);
    let headers = header_map(req.headers());
    let path = req.path();
    Ok(match plan::route(&method, &path, &headers) {
        Route::PassThrough | Route::Events => pass_through(&edge, req, &method, &headers).await,
        Route::Media => media(&edge, &req, &method, &headers).await,
        Route::Cacheable => cacheable(&edge, &req, &method, &headers, &ctx).await,
    })
}

/// Forwards a request as is and streams the answer back (writes, credentials, SSE).
async fn pass_through(
    edge: &Edge,
    req: Request,
    method: &http::Method,
    headers: &HeaderMap,
) -> Response {
    let body = req.inner().body().map(Into::into);
    forward(edge, &req, method, headers, body, CacheStatus::Bypass).await
}

/// Sends the client's request to the origin as is (hop-by-hop fields dropped) and streams
/// its answer back, labelled with `status`.
async fn forward(
    edge: &Edge,
    req: &Request,
    method: &http::Method,
    headers: &HeaderMap,
    body: Option<worker::wasm_bindgen::JsValue>,
    status: CacheStatus,
) -> Response {
    let url = match edge.origin_url(req) {
        Ok(url) => url,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match edge
        .fetch(
            method,
            &url,
            &plan::pass_through_request_headers(headers),
            body,
        )
        .await
    {
        Ok((origin, _)) => {
            let code =
                StatusCode::from_u16(origin.status_code()).unwrap_or(StatusCode::BAD_GATEWAY);
            let out = plan::client_headers(header_map(origin.headers()), status, None);
            let (_, body) = origin.into_parts();
            response(code, &out, body)
        }
        Err(e) => e.into_response(),
    }
}

/// The Cache API key of a request: its URL, path and query (the representation does not vary
/// on any request field; responses that say otherwise are not stored).
fn cache_key(req: &Request) -> worker::Result<String> {
    Ok(req.url()?.to_string())
}

/// Stores a response under `key` with the edge's storage headers.
async fn store(
    cache: &Cache,
    key: &str,
    headers: &HeaderMap,
    timing: ResponseTiming,
    body: ResponseBody,
) -> worker::Result<()> {
    let stored = plan::storage_headers(headers, timing);
    cache
        .put(key, response(StatusCode::OK, &stored, body))
        .await
}

/// Media: from the Cache API, filled once per object however many requests miss together.
async fn media(edge: &Edge, req: &Request, method: &http::Method, headers: &HeaderMap) -> Response {
    let cache = Cache::default();
    let key = match cache_key(req) {
        Ok(k) => k,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let mut status = CacheStatus::Hit;
    for attempt in 0..2 {
        if let Ok(Some(stored)) = cache.get(key.as_str(), false).await {
            return answer_from_storage(&cache, &key, stored, method, headers, status).await;
        }
        if attempt == 1 {
            break;
        }
        status = CacheStatus::Miss;
        match fill_once(edge.clone(), req, key.clone(), headers).await {
            Fill::Stored => continue,
            Fill::NotStored => break,
            Fill::Failed(message, timeout) => {
                return if timeout {
                    OriginError::Timeout.into_response()
                } else {
                    OriginError::Unreachable(message).into_response()
                };
            }
        }
    }
    // Not storable (a 404, say): forward this request to the origin as is.
    forward(edge, req, method, headers, None, CacheStatus::Miss).await
}

/// The outcome of filling the cache with one object.
#[derive(Debug)]
enum Fill {
    /// Stored: read it from the cache.
    Stored,
    /// The origin's answer may not be stored.
    NotStored,
    /// The origin failed (message, whether it timed out).
    Failed(String, bool),
}

thread_local! {
    /// Cache keys being filled in this isolate.
    static FILLING: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// How often a request waiting for another request's fill looks at the cache again.
const FILL_POLL: Duration = Duration::from_millis(20);

/// Fills the cache for `key`, or waits for the fill another request of this isolate has
/// under way. Workers forbid awaiting another request's I/O (the runtime cancels such a wait
/// as hung), so waiters share no future: they sleep in their own context and look again.
async fn fill_once(edge: Edge, req: &Request, key: String, headers: &HeaderMap) -> Fill {
    let url = match edge.origin_url(req) {
        Ok(url) => url,
        Err(e) => return Fill::Failed(e.to_string(), false),
    };
    let leader = FILLING.with(|filling| filling.borrow_mut().insert(key.clone()));
    if leader {
        let outcome = fill(&edge, &url, &key, &plan::fill_request_headers(headers)).await;
        FILLING.with(|filling| filling.borrow_mut().remove(&key));
        return outcome;
    }
    let started = now();
    while FILLING.with(|filling| filling.borrow().contains(&key)) {
        if now().duration_since(started).unwrap_or_default() > edge.timeout {
            return Fill::Failed("waiting for another request's fill timed out".into(), true);
        }
        Delay::from(FILL_POLL).await;
    }
    // The leader is done: what it stored is in the cache (or it was not storable, and this
    // request asks the origin itself).
    Fill::Stored
}

async fn fill(edge: &Edge, url: &str, key: &str, headers: &HeaderMap) -> Fill {
    let (origin, timing) = match edge.fetch(&http::Method::GET, url, headers, None).await {
        Ok(answer) => answer,
        Err(OriginError::Timeout) => return Fill::Failed("timeout".into(), true),
        Err(OriginError::Unreachable(why)) => return Fill::Failed(why, false),
    };
    let origin_headers = header_map(origin.headers());
    let status = StatusCode::from_u16(origin.status_code()).unwrap_or(StatusCode::BAD_GATEWAY);
    if status != StatusCode::OK
        || plan::storability(&http::Method::GET, headers, status, &origin_headers)
            != Storability::Storable
    {
        return Fill::NotStored;
    }
    let (_, body) = origin.into_parts();
    match store(&Cache::default(), key, &origin_headers, timing, body).await {
        Ok(()) => Fill::Stored,
        Err(e) => Fill::Failed(format!("storing failed: {e}"), false),
    }
}

/// Answers a client from a stored entry (fresh, or vouched for by a revalidation).
async fn answer_from_storage(
    cache: &Cache,
    key: &str,
    stored: Response,
    method: &http::Method,
    client: &HeaderMap,
    status: CacheStatus,
) -> Response {
    let Some(entry) = Stored::from_storage(&header_map(stored.headers())) else {
        let _ = cache.delete(key, false).await;
        return problem(
            StatusCode::BAD_GATEWAY,
            "an unreadable cache entry was dropped; retry",
        );
    };
    let age = entry.age(now());
    let (_, body) = stored.into_parts();
    answer_with(
        cache,
        key,
        &entry.headers,
        body,
        method,
        client,
        status,
        Some(age),
    )
    .await
}

/// Answers a client from a full representation by carrying out core's answer: its status and
/// fields, and the bytes it names (none for HEAD).
#[allow(clippy::too_many_arguments)]
async fn answer_with(
    cache: &Cache,
    key: &str,
    representation: &HeaderMap,
    body: ResponseBody,
    method: &http::Method,
    client: &HeaderMap,
    status: CacheStatus,
    age: Option<Duration>,
) -> Response {
    let answer = plan::client_answer(
        response::answer(method, client, plan::representation(representation)),
        status,
        age,
    );
    let body = match &answer.content {
        _ if method == http::Method::HEAD => ResponseBody::Empty,
        Content::Empty => ResponseBody::Empty,
        Content::Whole => body,
        Content::Part(part) => match partial_body(cache, key, body, *part).await {
            Ok(body) => body,
            Err(e) => {
                return problem(
                    StatusCode::BAD_GATEWAY,
                    &format!("reading the stored range failed: {e}"),
                )
            }
        },
        Content::Problem(problem) => ResponseBody::Body(problem.to_json()),
    };
    response(answer.status, &answer.fields, body)
}

/// The bytes of a part: asked of the Cache API with a Range (it slices stored entries without
/// loading them into the Worker), else sliced from the body.
async fn partial_body(
    cache: &Cache,
    key: &str,
    body: ResponseBody,
    part: timelapser_core::range::ByteRange,
) -> worker::Result<ResponseBody> {
    let mut init = RequestInit::new();
    let headers = Headers::new();
    headers.set("range", &format!("bytes={}-{}", part.first, part.last))?;
    init.with_headers(headers);
    let ranged = Request::new_with_init(key, &init)?;
    if let Some(stored) = cache.get(&ranged, false).await? {
        if stored.status_code() == 206 {
            return Ok(stored.into_parts().1);
        }
    }
    let mut whole = Response::builder().body(body);
    let bytes = whole.bytes().await?;
    let range = part.as_std_range();
    let (start, end) = (range.start as usize, (range.end as usize).min(bytes.len()));
    Ok(ResponseBody::Body(
        bytes.get(start..end).unwrap_or_default().to_vec(),
    ))
}

/// JSON, pages, assets: stored when storable, revalidated when stale, stale on error.
async fn cacheable(
    edge: &Edge,
    req: &Request,
    method: &http::Method,
    client: &HeaderMap,
    ctx: &Context,
) -> Response {
    let cache = Cache::default();
    let (key, url) = match (cache_key(req), edge.origin_url(req)) {
        (Ok(k), Ok(u)) => (k, u),
        (Err(e), _) | (_, Err(e)) => return problem(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let fill_headers = plan::fill_request_headers(client);
    let stored = match cache.get(key.as_str(), false).await {
        Ok(Some(stored)) => {
            Stored::from_storage(&header_map(stored.headers())).map(|entry| (stored, entry))
        }
        _ => None,
    };
    let Some((mut stored_response, entry)) = stored else {
        // Miss: the whole representation, stored if allowed, then the client's own
        // preconditions answered from it.
        return match edge
            .fetch(&http::Method::GET, &url, &fill_headers, None)
            .await
        {
            Ok((origin, timing)) => {
                from_origin(
                    &cache,
                    &key,
                    origin,
                    timing,
                    method,
                    client,
                    &fill_headers,
                    ctx,
                )
                .await
            }
            Err(e) => e.into_response(),
        };
    };
    let at = now();
    if entry.is_fresh(at) {
        return answer_from_storage(
            &cache,
            &key,
            stored_response,
            method,
            client,
            CacheStatus::Hit,
        )
        .await;
    }
    // Stale: validate with the stored validators.
    let mut validate = fill_headers.clone();
    validate.extend(entry.validation_headers());
    match edge.fetch(&http::Method::GET, &url, &validate, None).await {
        Ok((origin, timing)) if origin.status_code() == 304 => {
            let refreshed = entry.refreshed(&header_map(origin.headers()), timing);
            let for_cache = match stored_response.cloned() {
                Ok(copy) => copy,
                Err(e) => return problem(StatusCode::BAD_GATEWAY, &e.to_string()),
            };
            let representation = refreshed.headers.clone();
            let (_, cache_body) = for_cache.into_parts();
            let put_key = key.clone();
            ctx.wait_until(async move {
                let _ = store(
                    &Cache::default(),
                    &put_key,
                    &refreshed.headers,
                    refreshed.timing,
                    cache_body,
                )
                .await;
            });
            let (_, body) = stored_response.into_parts();
            answer_with(
                &cache,
                &key,
                &representation,
                body,
                method,
                client,
                CacheStatus::Revalidated,
                Some(Duration::ZERO),
            )
            .await
        }
        Ok((origin, _)) if origin.status_code() >= 500 && entry.may_serve_on_error(at) => {
            answer_from_storage(
                &cache,
                &key,
                stored_response,
                method,
                client,
                CacheStatus::Stale,
            )
            .await
        }
        Ok((origin, timing)) => {
            from_origin(
                &cache,
                &key,
                origin,
                timing,
                method,
                client,
                &fill_headers,
                ctx,
            )
            .await
        }
        Err(_) if entry.may_serve_on_error(at) => {
            answer_from_storage(
                &cache,
                &key,
                stored_response,
                method,
                client,
                CacheStatus::Stale,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// Answers from a fresh origin response, storing it when a shared cache may.
#[allow(clippy::too_many_arguments)]
async fn from_origin(
    cache: &Cache,
    key: &str,
    mut origin: Response,
    timing: ResponseTiming,
    method: &http::Method,
    client: &HeaderMap,
    request_headers: &HeaderMap,
    ctx: &Context,
) -> Response {
    let status = StatusCode::from_u16(origin.status_code()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = header_map(origin.headers());
    if status == StatusCode::OK
        && plan::storability(&http::Method::GET, request_headers, status, &headers)
            == Storability::Storable
    {
        if let Ok(copy) = origin.cloned() {
            let (_, body) = copy.into_parts();
            let (put_cache, put_key, put_headers) =
                (Cache::default(), key.to_owned(), headers.clone());
            ctx.wait_until(async move {
                let _ = store(&put_cache, &put_key, &put_headers, timing, body).await;
            });
        }
    } else {
        // Whatever was stored is no longer the representation.
        let _ = cache.delete(key, false).await;
    }
    let (_, body) = origin.into_parts();
    if status == StatusCode::OK {
        answer_with(
            cache,
            key,
            &headers,
            body,
            method,
            client,
            CacheStatus::Miss,
            None,
        )
        .await
    } else {
        let out = plan::client_headers(headers, CacheStatus::Miss, None);
        response(
            status,
            &out,
            if method == http::Method::HEAD {
                ResponseBody::Empty
            } else {
                body
            },
        )
    }
}
