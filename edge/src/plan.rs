//! The edge's decisions, as plain functions over `http` types: which exchanges are cached,
//! what is stored, whether a stored response may be reused and how to revalidate it. Every rule
//! comes from `timelapser_core`; this module only arranges them, so it is tested natively and
//! on wasm32 without a Worker runtime. What to answer a client from a representation (200, 206,
//! 304, 412, 416) is core's [`timelapser_core::response::answer`], the same decision the
//! origin carries out.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use timelapser_core::cache_control::{
    self, may_serve_stale_if_error, may_serve_stale_while_revalidate, shared_reuse, CacheControl,
    ResponseTiming, Reuse, SharedDirectives, Storability,
};
use timelapser_core::credentials;
use timelapser_core::forwarding::{self, CacheStatus};
use timelapser_core::paths;
use timelapser_core::response::{Answer, Content, Selected};
use timelapser_core::vary::Vary;
use timelapser_core::Problem;

/// How the edge treats a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/media/**` GET/HEAD: immutable, stored, concurrent misses coalesced.
    Media,
    /// `/api/events`: never buffered or stored; the public's streams are fanned out at the edge
    /// ([`shares_event_stream`]), the rest streamed through.
    Events,
    /// Any other GET/HEAD (Authorization included): stored when a shared cache may store it
    /// (RFC 9111), per its `Vary` secondary key, served while fresh, revalidated when stale.
    Cacheable,
    /// Writes, other methods, media with credentials and requests with the console's session:
    /// forwarded untouched (a successful unsafe request invalidates what is stored, §4.4).
    PassThrough,
    /// `/metrics`, `/api/cache/stats`: never served through the edge, never forwarded.
    Operational,
    /// The origin's purge (`core::purge::PATH`): answered by the edge, never forwarded.
    Purge,
    /// A `/media/` path that is no media name (`<64 hex>.<ext>` in a known folder): a 404
    /// from the edge, so garbage names cost the origin nothing.
    NoSuchMedia,
}

/// Classifies a request.
pub fn route(method: &Method, path: &str, headers: &HeaderMap) -> Route {
    // Whatever the method or credentials: operators read these from the origin itself.
    if paths::is_operational(path) {
        return Route::Operational;
    }
    if path == timelapser_core::purge::PATH {
        return Route::Purge;
    }
    if method != Method::GET && method != Method::HEAD {
        return Route::PassThrough;
    }
    if path == paths::EVENTS {
        return Route::Events;
    }
    // The console's session makes a request someone's: straight through, never stored nor
    // answered from storage. Other cookies (a site's analytics) do not make a public response
    // anyone's.
    if credentials::carries_session(headers) {
        return Route::PassThrough;
    }
    let authorized = headers.contains_key(header::AUTHORIZATION);
    if !paths::is_media_path(path) {
        // RFC 9111 §3.5: with Authorization too; its answer is stored only when the response
        // says it may be shared (public, s-maxage, must-revalidate).
        Route::Cacheable
    } else if paths::MediaName::from_path(path).is_none() {
        Route::NoSuchMedia
    } else if authorized {
        // A private camera's media is asked for with credentials: from the origin, which
        // answers it `private`.
        Route::PassThrough
    } else {
        Route::Media
    }
}

/// Whether an event-stream request may be served from the edge's shared stream of its filter: a
/// GET without Authorization (an admin's or a camera's token) and without the system's session.
/// Those see private cameras' events, which must never reach a stream shared with the public;
/// the shared stream's own request to the origin carries no credentials, so the origin sends it
/// public events only. Other cookies (a site's analytics) say nothing about who is listening.
pub fn shares_event_stream(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::GET
        && !headers.contains_key(header::AUTHORIZATION)
        && !credentials::carries_session(headers)
}

/// The path and query the edge stores a request's answer under and asks the origin for.
///
/// Immutable media is named by its path alone (the content hash is the name), so a query can
/// neither select another representation nor be allowed to make another stored copy: it is
/// dropped, and `?r=1` and `?r=2` are the stored file, not two more origin fetches.
pub fn target(route: Route, path: &str, query: Option<&str>) -> String {
    match (route, query) {
        (Route::Media, _) | (_, None) => path.to_owned(),
        (_, Some(query)) => format!("{path}?{query}"),
    }
}

/// Request fields the edge drops before asking the origin for a full representation to store:
/// the client's own validators and ranges are answered by the edge.
const CLIENT_ONLY: [HeaderName; 6] = [
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::RANGE,
    header::IF_RANGE,
];

/// The headers of the edge's request to the origin for a representation it may store. They
/// are also what a stored response's `Vary` is matched against (RFC 9111 §4.1), so the
/// selecting fields the origin saw are the ones the entry is keyed by.
pub fn fill_request_headers(client: &HeaderMap) -> HeaderMap {
    let mut headers = client.clone();
    forwarding::strip_hop_by_hop(&mut headers);
    for name in CLIENT_ONLY {
        headers.remove(name);
    }
    headers.remove(header::HOST);
    // What is stored is for everyone: never computed from one client's cookies.
    headers.remove(header::COOKIE);
    headers
}

/// The headers of the edge's request to the origin on a miss: the fill's, and for a request
/// with Authorization also the client's validators. Such an answer is almost never stored (only
/// when the origin declares it shareable, RFC 9111 §3.5), so the origin's 304 spares sending a
/// body the edge would only pass on.
pub fn miss_request_headers(fill: &HeaderMap, client: &HeaderMap) -> HeaderMap {
    let mut headers = fill.clone();
    if client.contains_key(header::AUTHORIZATION) {
        for name in [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE] {
            for value in client.get_all(&name) {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    headers
}

/// The headers of a request forwarded as is (writes, events, credentials).
pub fn pass_through_request_headers(client: &HeaderMap) -> HeaderMap {
    let mut headers = client.clone();
    forwarding::strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    headers
}

/// Internal fields of stored entries (never sent to clients).
const ORIGINAL_CACHE_CONTROL: &str = "x-timelapser-origin-cache-control";
const ORIGINAL_AGE: &str = "x-timelapser-origin-age";
const ORIGINAL_VARY: &str = "x-timelapser-origin-vary";
const ORIGINAL_DATE: &str = "x-timelapser-origin-date";
const ORIGINAL_WARNING: &str = "x-timelapser-origin-warning";
const REQUEST_TIME: &str = "x-timelapser-request-time";
const RESPONSE_TIME: &str = "x-timelapser-response-time";
/// Written by earlier versions (whether the origin sent Cache-Control, which the stored fields
/// already say); dropped on read so that it never reaches a client.
const HAD_CACHE_CONTROL: &str = "x-timelapser-had-cache-control";
const STATUS: &str = "x-timelapser-status";
const AUTHORIZED: &str = "x-timelapser-authorized";
const VARY_FIELDS: &str = "x-timelapser-vary";
const VARY_GENERATION: &str = "x-timelapser-vary-generation";

/// How long the edge keeps an entry that must be revalidated anyway: the stored validator
/// turns a full download into a 304.
pub const REVALIDATION_RETENTION: Duration = Duration::from_secs(86_400);

/// Whether the edge may store this response to this request, by core's shared-cache rules.
pub fn storability(
    method: &Method,
    request: &HeaderMap,
    status: StatusCode,
    response: &HeaderMap,
) -> Storability {
    // The edge asks with GET for HEAD requests too, so it judges the GET it made.
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    cache_control::shared_storability(method, request, status, response)
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn from_millis(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// Moves every line of field `from` to field `to` (either may be an internal name).
fn set_aside(map: &mut HeaderMap, from: &str, to: &'static str) {
    let values: Vec<HeaderValue> = map.get_all(from).iter().cloned().collect();
    map.remove(from);
    map.remove(to);
    let to = HeaderName::from_static(to);
    for value in values {
        map.append(to.clone(), value);
    }
}

fn retention(directives: &SharedDirectives, lifetime: Duration) -> HeaderValue {
    let stale = directives
        .cc
        .stale_if_error
        .unwrap_or_default()
        .max(directives.cc.stale_while_revalidate.unwrap_or_default());
    let keep = lifetime.saturating_add(stale).max(REVALIDATION_RETENTION);
    CacheControl::new().public().max_age(keep).to_header_value()
}

/// The headers a response is stored with: the fields a shared cache keeps (core's
/// `stored_fields`: no hop-by-hop fields, no Set-Cookie, none that `no-cache="…"` or
/// `private="…"` name), Date added when missing (RFC 9110 §6.6.1), and the entry's own facts
/// (status, timing, whether it answered a request with Authorization). The Cache API keeps an
/// entry as long as its Cache-Control says, and rewrites Age, Date and Warning on every read
/// (miniflare's does; it may act on Vary too): the origin's Cache-Control, Age, Date, Warning
/// and Vary are kept aside and restored on every read, so core judges freshness and variants
/// from the originals; the stored Cache-Control is the edge's retention (fresh, then
/// revalidation and the stale windows).
pub fn storage_headers(
    status: StatusCode,
    response: &HeaderMap,
    timing: ResponseTiming,
    authorized: bool,
) -> HeaderMap {
    let mut stored = cache_control::stored_fields(response);
    let date = stored
        .get(header::DATE)
        .and_then(|v| timelapser_core::parse_http_date(v.as_bytes()));
    if date.is_none() {
        // RFC 9110 §6.6.1: a missing or invalid Date is replaced with the time of receipt.
        stored.insert(
            header::DATE,
            timelapser_core::conditional::last_modified_value(timing.response_time),
        );
    }
    let directives = SharedDirectives::of(&stored);
    let lifetime = directives.freshness_lifetime(status, &stored);
    set_aside(&mut stored, "cache-control", ORIGINAL_CACHE_CONTROL);
    set_aside(&mut stored, "age", ORIGINAL_AGE);
    set_aside(&mut stored, "vary", ORIGINAL_VARY);
    set_aside(&mut stored, "date", ORIGINAL_DATE);
    set_aside(&mut stored, "warning", ORIGINAL_WARNING);
    stored.insert(header::CACHE_CONTROL, retention(&directives, lifetime));
    stored.insert(
        HeaderName::from_static(REQUEST_TIME),
        HeaderValue::from(millis(timing.request_time)),
    );
    stored.insert(
        HeaderName::from_static(RESPONSE_TIME),
        HeaderValue::from(millis(timing.response_time)),
    );
    stored.insert(
        HeaderName::from_static(STATUS),
        HeaderValue::from(status.as_u16()),
    );
    if authorized {
        stored.insert(
            HeaderName::from_static(AUTHORIZED),
            HeaderValue::from_static("1"),
        );
    }
    stored
}

/// A stored entry read back: the origin's status and headers as they were, and when they were
/// obtained.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The origin's status.
    pub status: StatusCode,
    /// The origin's response headers (with its own Cache-Control and Age).
    pub headers: HeaderMap,
    /// When the edge asked and was answered.
    pub timing: ResponseTiming,
    /// Whether it answers a request that carried Authorization (RFC 9111 §3.5: stored only
    /// because the response allowed sharing).
    pub authorized: bool,
}

impl Stored {
    /// Reads an entry's headers; `None` when they are not an entry this edge wrote.
    pub fn from_storage(stored: &HeaderMap) -> Option<Self> {
        let number = |name: &str| {
            stored
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let timing = ResponseTiming {
            request_time: from_millis(number(REQUEST_TIME)?),
            response_time: from_millis(number(RESPONSE_TIME)?),
        };
        // Entries written before statuses were kept are 200s.
        let status = match number(STATUS) {
            Some(code) => StatusCode::from_u16(u16::try_from(code).ok()?).ok()?,
            None => StatusCode::OK,
        };
        let mut headers = stored.clone();
        set_aside(&mut headers, ORIGINAL_CACHE_CONTROL, "cache-control");
        set_aside(&mut headers, ORIGINAL_AGE, "age");
        set_aside(&mut headers, ORIGINAL_VARY, "vary");
        set_aside(&mut headers, ORIGINAL_DATE, "date");
        set_aside(&mut headers, ORIGINAL_WARNING, "warning");
        let authorized = headers.remove(AUTHORIZED).is_some();
        // The Cache API's own report of where the copy came from, not the origin's.
        headers.remove("cf-cache-status");
        for name in [REQUEST_TIME, RESPONSE_TIME, HAD_CACHE_CONTROL, STATUS] {
            headers.remove(name);
        }
        Some(Self {
            status,
            headers,
            timing,
            authorized,
        })
    }

    /// Its current age (RFC 9111 §4.2.3).
    pub fn age(&self, now: SystemTime) -> Duration {
        cache_control::current_age(&self.headers, self.timing, now)
    }

    /// Whether it may be served without asking the origin (RFC 9111 §4.2).
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        shared_reuse(self.status, &self.headers, self.age(now)) == Reuse::Fresh
    }

    /// Whether it may be served stale while it is revalidated in the background (RFC 5861 §3).
    pub fn may_serve_while_revalidating(&self, now: SystemTime) -> bool {
        may_serve_stale_while_revalidate(self.status, &self.headers, self.age(now))
    }

    /// Whether it may be served while the origin fails (RFC 5861 §4).
    pub fn may_serve_on_error(&self, now: SystemTime) -> bool {
        may_serve_stale_if_error(self.status, &self.headers, self.age(now))
    }

    /// Whether it may answer this request: a request with Authorization only from a response
    /// stored for one (which RFC 9111 §3.5 let the origin declare shareable); anything stored
    /// for a request without it could be less than the credentials would be shown.
    pub fn may_answer(&self, request_authorized: bool) -> bool {
        self.authorized || !request_authorized
    }

    /// The conditional request fields that validate it (RFC 9111 §4.3.1): its entity tag and
    /// its modification date, as stored (whatever their form: the origin wrote them).
    pub fn validation_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(etag) = self.headers.get(header::ETAG) {
            h.insert(header::IF_NONE_MATCH, etag.clone());
        }
        if let Some(lm) = self.headers.get(header::LAST_MODIFIED) {
            h.insert(header::IF_MODIFIED_SINCE, lm.clone());
        }
        h
    }

    /// The entry after a 304 (RFC 9111 §4.3.4, §3.2, core's `freshened_fields`): the 304's
    /// fields replace the stored ones, except those describing the body.
    pub fn refreshed(&self, not_modified: &HeaderMap, timing: ResponseTiming) -> Stored {
        Stored {
            status: self.status,
            headers: cache_control::freshened_fields(
                &self.headers,
                not_modified,
                timing.response_time,
            ),
            timing,
            authorized: self.authorized,
        }
    }
}

/// What the Cache API holds under a URL's primary key when the response varies (RFC 9111
/// §4.1): the fields it varies on and the generation of its variants, each of which is stored
/// under [`VaryIndex::variant_key`]. Deleting the index (invalidation, purge) makes every
/// variant unreachable: a new index has a new generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaryIndex {
    /// What the responses vary on.
    pub vary: Vary,
    /// Distinguishes these variants from those of an earlier, deleted index.
    pub generation: String,
}

impl VaryIndex {
    /// The headers of the index entry.
    pub fn storage_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(fields) = self.vary.to_header_value() {
            h.insert(HeaderName::from_static(VARY_FIELDS), fields);
        }
        if let Ok(generation) = HeaderValue::from_str(&self.generation) {
            h.insert(HeaderName::from_static(VARY_GENERATION), generation);
        }
        h.insert(
            header::CACHE_CONTROL,
            CacheControl::new()
                .public()
                .max_age(REVALIDATION_RETENTION)
                .to_header_value(),
        );
        h
    }

    /// Reads an index entry; `None` when the entry is a response.
    pub fn from_storage(stored: &HeaderMap) -> Option<Self> {
        let generation = stored.get(VARY_GENERATION)?.to_str().ok()?.to_owned();
        let mut fields = HeaderMap::new();
        if let Some(value) = stored.get(VARY_FIELDS) {
            fields.insert(header::VARY, value.clone());
        }
        Some(Self {
            vary: Vary::of(&fields),
            generation,
        })
    }

    /// The Cache API key of the variant of `primary` that a request with `fill` headers (see
    /// [`fill_request_headers`]) selects; `None` when nothing can match (`Vary: *`).
    pub fn variant_key(&self, primary: &str, fill: &HeaderMap) -> Option<String> {
        let name = self.vary.variant_name(primary, &self.generation, fill)?;
        Some(format!("{VARIANT_KEY_BASE}{name}"))
    }
}

/// Where variants are keyed: a reserved name no client request's key can have (every
/// request's key begins with the site the client named, and `.invalid` names no site).
const VARIANT_KEY_BASE: &str = "https://variants.timelapser.invalid/";

/// The Cache API keys a request invalidates once the origin answered it (RFC 9111 §4.4): for
/// an unsafe method answered with a non-error status, its target URI and the URIs of its
/// Location and Content-Location when they are on the same site (another site's entries are not
/// this request's to drop). `request_url` is the client's URL; keys are named as
/// [`target`] names them.
pub fn invalidated_keys(
    method: &Method,
    status: StatusCode,
    request_url: &url::Url,
    response: &HeaderMap,
) -> Vec<String> {
    if !cache_control::invalidates(method, status) {
        return Vec::new();
    }
    let mut urls = vec![request_url.clone()];
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        let Some(value) = response.get(&name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Ok(url) = request_url.join(value.trim()) {
            if url.origin() == request_url.origin() {
                urls.push(url);
            }
        }
    }
    let mut keys: Vec<String> = urls
        .iter()
        .map(|url| {
            let site = url.origin().ascii_serialization();
            let route = route(&Method::GET, url.path(), &HeaderMap::new());
            format!("{site}{}", target(route, url.path(), url.query()))
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The representation a stored entry (or the origin's 200) holds, for core's
/// [`timelapser_core::response::answer`]: its fields and validators, and its length when
/// Content-Length says, so that byte ranges are answered from it.
pub fn representation(fields: &HeaderMap) -> Selected<'static> {
    Selected::from_fields(fields.clone(), content_length(fields))
}

/// The body length a response's Content-Length says, if it says one.
pub fn content_length(fields: &HeaderMap) -> Option<u64> {
    fields
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Whether an answer from a response with this status is core's to decide (preconditions,
/// ranges): only a 200 is a representation (RFC 9110 §13.2.1: conditionals are ignored when
/// the response would be anything but 2xx; §14.2: ranges apply to a 200). Every other stored
/// status is answered as it was stored.
pub fn answers_with_representation(status: StatusCode) -> bool {
    status == StatusCode::OK
}

/// Finishes a response's headers for the client: no hop-by-hop fields, and the cache status.
/// From storage, `Age` is the entry's current age (RFC 9111 §4.2.3, §5.1: the origin's Age plus
/// the time it spent on the way and here); otherwise the origin's Age, if any, is passed on.
pub fn client_headers(
    mut headers: HeaderMap,
    status: CacheStatus,
    age: Option<Duration>,
) -> HeaderMap {
    forwarding::strip_hop_by_hop(&mut headers);
    if let Some(age) = age {
        headers.insert(header::AGE, HeaderValue::from(age.as_secs()));
    }
    status.apply(&mut headers);
    headers
}

/// Finishes core's answer for the client: the cache status of the entry it was decided from,
/// and `Age` when the fields are the stored response's (a 200, 206 or 304); a problem document
/// (412, 416) is the edge's own and carries none.
pub fn client_answer(mut answer: Answer, status: CacheStatus, age: Option<Duration>) -> Answer {
    if let Content::Problem(_) = answer.content {
        answer.fields.remove(header::AGE);
        answer.fields = client_headers(answer.fields, status, None);
        return answer;
    }
    answer.fields = client_headers(answer.fields, status, age);
    answer
}

/// A problem the edge answers with itself (the origin failed, the path is not served here):
/// core's problem document, reported as not from the cache.
pub fn problem_answer(problem: Problem) -> Answer {
    let mut answer = Answer::problem(problem);
    CacheStatus::Bypass.apply(&mut answer.fields);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use timelapser_core::range::ByteRange;
    use timelapser_core::response;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    const IMAGE: &str =
        "/media/images/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.jpg";
    const VIDEO: &str =
        "/media/videos/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.mp4";

    #[test]
    fn routes() {
        let none = HeaderMap::new();
        assert_eq!(route(&Method::GET, IMAGE, &none), Route::Media);
        assert_eq!(route(&Method::HEAD, VIDEO, &none), Route::Media);
        // A media path that names no media file is the edge's own 404.
        for path in [
            "/media/images/x.jpg",
            "/media/nothing",
            "/media/images/../secret",
            "/media/videos/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.jpg",
        ] {
            assert_eq!(
                route(&Method::GET, path, &none),
                Route::NoSuchMedia,
                "{path}"
            );
        }
        assert_eq!(route(&Method::GET, "/api/events", &none), Route::Events);
        assert_eq!(route(&Method::GET, "/api/cameras", &none), Route::Cacheable);
        assert_eq!(route(&Method::GET, "/", &none), Route::Cacheable);
        assert_eq!(
            route(&Method::POST, "/api/cameras/1/captures", &none),
            Route::PassThrough
        );
        assert_eq!(
            route(&Method::PUT, "/api/settings", &none),
            Route::PassThrough
        );
        // RFC 9111 §3.5: with Authorization, through the cache (stored only when shareable);
        // media with credentials is a private camera's, straight through.
        let auth = headers(&[("authorization", "Bearer x")]);
        assert_eq!(
            route(&Method::GET, "/api/preferences", &auth),
            Route::Cacheable
        );
        assert_eq!(route(&Method::GET, IMAGE, &auth), Route::PassThrough);
        // The console's session makes a request someone's; an analytics cookie does not.
        let session = headers(&[("cookie", "_ga=GA1.1.5; tl_session=abc")]);
        assert_eq!(route(&Method::GET, "/", &session), Route::PassThrough);
        assert_eq!(route(&Method::GET, IMAGE, &session), Route::PassThrough);
        let analytics = headers(&[("cookie", "_ga=GA1.1.5; theme=dark")]);
        assert_eq!(route(&Method::GET, "/", &analytics), Route::Cacheable);
        assert_eq!(route(&Method::GET, IMAGE, &analytics), Route::Media);
        // Operational endpoints, for any method, with or without credentials.
        for path in ["/metrics", "/api/cache/stats"] {
            for method in [Method::GET, Method::HEAD, Method::POST] {
                assert_eq!(route(&method, path, &none), Route::Operational);
                assert_eq!(route(&method, path, &auth), Route::Operational);
                assert_eq!(
                    route(&method, timelapser_core::purge::PATH, &auth),
                    Route::Purge
                );
            }
        }
        assert_eq!(route(&Method::GET, "/healthz", &none), Route::Cacheable);
    }

    #[test]
    fn only_the_publics_event_streams_are_shared() {
        let none = HeaderMap::new();
        assert!(shares_event_stream(&Method::GET, &none));
        assert!(shares_event_stream(
            &Method::GET,
            &headers(&[("cookie", "_ga=GA1.1.5; theme=dark")])
        ));
        assert!(!shares_event_stream(&Method::HEAD, &none));
        for private in [
            ("authorization", "Bearer camera-token"),
            ("authorization", "Basic eDp5"),
            ("cookie", "_ga=1; tl_session=abc"),
            ("cookie", "tl_sign_in=xyz"),
        ] {
            assert!(
                !shares_event_stream(&Method::GET, &headers(&[private])),
                "{private:?}"
            );
        }
    }

    #[test]
    fn media_is_asked_for_and_stored_by_its_path_alone() {
        let image = "/media/images/x.jpg";
        assert_eq!(target(Route::Media, image, Some("r=1")), image);
        assert_eq!(target(Route::Media, image, Some("")), image);
        assert_eq!(target(Route::Media, image, None), image);
        // Elsewhere the query selects the representation (or is the client's business).
        assert_eq!(
            target(Route::Cacheable, "/api/cameras/1/images", Some("limit=5")),
            "/api/cameras/1/images?limit=5"
        );
        assert_eq!(
            target(Route::Events, "/api/events", Some("types=image_captured")),
            "/api/events?types=image_captured"
        );
        assert_eq!(
            target(Route::PassThrough, image, Some("r=1")),
            "/media/images/x.jpg?r=1"
        );
        assert_eq!(target(Route::Cacheable, "/", None), "/");
    }

    #[test]
    fn fills_ask_for_the_whole_representation() {
        let client = headers(&[
            ("if-none-match", "\"a\""),
            ("range", "bytes=0-1"),
            ("if-range", "\"a\""),
            ("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("accept", "application/json"),
            ("host", "edge"),
            ("cookie", "_ga=GA1.1.5"),
        ]);
        let fill = fill_request_headers(&client);
        assert_eq!(
            fill.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["accept"]
        );
        let through = pass_through_request_headers(&client);
        assert!(through.contains_key("if-none-match") && through.contains_key("range"));
        assert!(through.contains_key("cookie"));
        assert!(!through.contains_key("x-hop") && !through.contains_key("host"));
    }

    #[test]
    fn storage_keeps_the_origin_cache_control_aside() {
        let origin = headers(&[
            ("cache-control", "no-cache"),
            ("etag", "\"v1\""),
            ("content-type", "application/json"),
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ]);
        let timing = ResponseTiming {
            request_time: at(0),
            response_time: at(1),
        };
        let stored = storage_headers(StatusCode::OK, &origin, timing, false);
        assert_eq!(stored["cache-control"], "public, max-age=86400");
        let back = Stored::from_storage(&stored).unwrap();
        assert_eq!(back.headers, origin);
        assert_eq!(back.timing, timing);
        // An immutable file is kept a year plus its stale-if-error.
        let media = headers(&[(
            "cache-control",
            "public, max-age=31536000, immutable, stale-if-error=86400",
        )]);
        let stored = storage_headers(StatusCode::OK, &media, timing, false);
        assert_eq!(stored["cache-control"], "public, max-age=31622400");
        assert!(Stored::from_storage(&headers(&[("etag", "\"x\"")])).is_none());
    }

    #[test]
    fn a_response_without_cache_control_is_restored_without_one() {
        let origin = headers(&[("etag", "\"v1\"")]);
        let timing = ResponseTiming {
            request_time: at(0),
            response_time: at(0),
        };
        let back =
            Stored::from_storage(&storage_headers(StatusCode::OK, &origin, timing, false)).unwrap();
        assert!(back.headers.get("cache-control").is_none());
        assert!(back.headers.get("date").is_some(), "Date added on receipt");
    }

    #[test]
    fn freshness_and_stale_if_error_come_from_the_original() {
        let timing = ResponseTiming {
            request_time: at(0),
            response_time: at(0),
        };
        let page = Stored::from_storage(&storage_headers(
            StatusCode::OK,
            &headers(&[
                ("cache-control", "max-age=0, stale-if-error=86400"),
                ("etag", "\"p\""),
            ]),
            timing,
            false,
        ))
        .unwrap();
        assert!(!page.is_fresh(at(1)));
        assert!(page.may_serve_on_error(at(3600)));
        assert!(!page.may_serve_on_error(at(86_401)));
        let json = Stored::from_storage(&storage_headers(
            StatusCode::OK,
            &headers(&[("cache-control", "no-cache"), ("etag", "\"j\"")]),
            timing,
            false,
        ))
        .unwrap();
        assert!(!json.is_fresh(at(0)));
        assert!(
            !json.may_serve_on_error(at(1)),
            "no-cache forbids stale (RFC 9111 §4.2.4)"
        );
        let media = Stored::from_storage(&storage_headers(
            StatusCode::OK,
            &headers(&[("cache-control", "public, max-age=31536000, immutable")]),
            timing,
            false,
        ))
        .unwrap();
        assert!(media.is_fresh(at(30 * 86_400)));
        assert_eq!(media.age(at(10)), Duration::from_secs(10));
    }

    #[test]
    fn revalidation_uses_the_stored_validators_and_a_304_refreshes_the_entry() {
        let timing = ResponseTiming {
            request_time: at(0),
            response_time: at(0),
        };
        let stored = Stored::from_storage(&storage_headers(
            StatusCode::OK,
            &headers(&[
                ("cache-control", "no-cache"),
                ("etag", "\"v1\""),
                ("content-type", "application/json"),
                ("content-length", "10"),
                ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ]),
            timing,
            false,
        ))
        .unwrap();
        assert_eq!(
            stored.validation_headers(),
            headers(&[("if-none-match", "\"v1\"")])
        );
        let later = ResponseTiming {
            request_time: at(100),
            response_time: at(101),
        };
        let refreshed = stored.refreshed(
            &headers(&[
                ("etag", "\"v1\""),
                ("date", "Tue, 14 Nov 2023 22:15:00 GMT"),
                ("content-length", "0"),
                ("cache-control", "no-cache"),
            ]),
            later,
        );
        assert_eq!(refreshed.headers["date"], "Tue, 14 Nov 2023 22:15:00 GMT");
        assert_eq!(
            refreshed.headers["content-length"], "10",
            "the body's fields are kept"
        );
        assert_eq!(refreshed.headers["content-type"], "application/json");
        assert_eq!(refreshed.timing, later);
        let by_date = Stored::from_storage(&storage_headers(
            StatusCode::OK,
            &headers(&[("last-modified", "Tue, 14 Nov 2023 22:13:20 GMT")]),
            timing,
            false,
        ))
        .unwrap();
        assert_eq!(
            by_date.validation_headers(),
            headers(&[("if-modified-since", "Tue, 14 Nov 2023 22:13:20 GMT")])
        );
    }

    /// Core's answer to `method` with `request` from a representation the edge holds.
    fn answer_from(method: Method, request: &[(&str, &str)], fields: &HeaderMap) -> Answer {
        response::answer(&method, &headers(request), representation(fields))
    }

    #[test]
    fn answers_follow_core() {
        let rep = headers(&[
            ("etag", "\"abc\""),
            ("last-modified", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("accept-ranges", "bytes"),
            ("cache-control", "public, max-age=31536000, immutable"),
            ("content-length", "100"),
        ]);
        let ask = |pairs: &[(&str, &str)]| {
            let got = answer_from(Method::GET, pairs, &rep);
            (got.status.as_u16(), got.content)
        };
        assert_eq!(ask(&[]), (200, Content::Whole));
        assert_eq!(ask(&[("if-none-match", "\"abc\"")]), (304, Content::Empty));
        assert_eq!(
            ask(&[("if-none-match", "W/\"abc\"")]),
            (304, Content::Empty)
        );
        assert_eq!(
            ask(&[("if-modified-since", "Tue, 14 Nov 2023 22:13:20 GMT")]),
            (304, Content::Empty)
        );
        assert_eq!(ask(&[("if-match", "\"zzz\"")]).0, 412);
        assert_eq!(
            ask(&[("range", "bytes=0-9")]),
            (206, Content::Part(ByteRange { first: 0, last: 9 }))
        );
        assert_eq!(ask(&[("range", "bytes=100-")]).0, 416);
        assert_eq!(
            ask(&[("range", "bytes=0-9"), ("if-range", "\"old\"")]),
            (200, Content::Whole)
        );
        assert_eq!(ask(&[("range", "bytes=9-0")]), (200, Content::Whole));
        // The length a part is cut from is the stored Content-Length.
        let part = answer_from(Method::GET, &[("range", "bytes=-10")], &rep);
        assert_eq!(part.fields["content-range"], "bytes 90-99/100");
        assert_eq!(part.fields["content-length"], "10");
        // Ranges from any stored representation of known length (RFC 9110 §14.2).
        let json = headers(&[("etag", "\"j\""), ("content-length", "10")]);
        let got = answer_from(Method::GET, &[("range", "bytes=0-1")], &json);
        assert_eq!(
            (got.status, got.content),
            (
                StatusCode::PARTIAL_CONTENT,
                Content::Part(ByteRange { first: 0, last: 1 })
            )
        );
        assert_eq!(got.fields["content-range"], "bytes 0-1/10");
        let got = answer_from(Method::HEAD, &[("if-none-match", "\"j\"")], &json);
        assert_eq!(got.status, StatusCode::NOT_MODIFIED);
        let got = answer_from(Method::GET, &[("if-none-match", "garbage")], &json);
        assert_eq!(got.status, StatusCode::OK);
        // Without Content-Length (a streamed page) the whole body, with no length claimed.
        let page = headers(&[("etag", "\"p\""), ("accept-ranges", "bytes")]);
        let got = answer_from(Method::GET, &[("range", "bytes=0-1")], &page);
        assert_eq!((got.status, got.content), (StatusCode::OK, Content::Whole));
        assert!(got.fields.get("content-length").is_none());
    }

    #[test]
    fn a_304_carries_what_the_200_would() {
        let rep = headers(&[
            ("etag", "\"abc\""),
            ("cache-control", "no-cache"),
            ("content-type", "application/json"),
            ("content-length", "12"),
            ("last-modified", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ]);
        let h = answer_from(Method::GET, &[("if-none-match", "\"abc\"")], &rep).fields;
        assert_eq!(h.len(), 3);
        assert!(h.get("content-type").is_none() && h.get("content-length").is_none());
    }

    #[test]
    fn a_stored_entry_answers_with_the_origin_fields_not_the_storage_ones() {
        let timing = ResponseTiming {
            request_time: at(0),
            response_time: at(0),
        };
        let origin = headers(&[
            ("cache-control", "no-cache"),
            ("etag", "\"v1\""),
            ("content-type", "application/json"),
            ("content-length", "12"),
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ]);
        let entry =
            Stored::from_storage(&storage_headers(StatusCode::OK, &origin, timing, false)).unwrap();
        let whole = answer_from(Method::GET, &[], &entry.headers);
        assert_eq!(whole.fields["cache-control"], "no-cache");
        assert_eq!(whole.fields["content-length"], "12");
        assert!(whole
            .fields
            .keys()
            .all(|k| !k.as_str().starts_with("x-timelapser")));
        let not_modified = answer_from(Method::GET, &[("if-none-match", "\"v1\"")], &entry.headers);
        assert_eq!(not_modified.fields["cache-control"], "no-cache");
        assert_eq!(not_modified.fields["date"], "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    #[test]
    fn answers_to_clients_say_where_they_came_from() {
        let rep = headers(&[
            ("etag", "\"abc\""),
            ("accept-ranges", "bytes"),
            ("content-length", "100"),
            ("connection", "close"),
        ]);
        let five = Some(Duration::from_secs(5));
        let hit = client_answer(
            answer_from(Method::GET, &[("if-none-match", "\"abc\"")], &rep),
            CacheStatus::Hit,
            five,
        );
        assert_eq!(hit.status, StatusCode::NOT_MODIFIED);
        assert_eq!(hit.fields["x-timelapser-cache"], "HIT");
        assert_eq!(hit.fields["age"], "5");
        let part = client_answer(
            answer_from(Method::GET, &[("range", "bytes=0-0")], &rep),
            CacheStatus::Hit,
            five,
        );
        assert_eq!(part.fields["age"], "5");
        assert!(part.fields.get("connection").is_none());
        // A 416 is the edge's own problem document: no Age, but where the range fell.
        let unsatisfiable = client_answer(
            answer_from(Method::GET, &[("range", "bytes=100-")], &rep),
            CacheStatus::Hit,
            five,
        );
        assert_eq!(unsatisfiable.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert!(unsatisfiable.fields.get("age").is_none());
        assert_eq!(unsatisfiable.fields["content-range"], "bytes */100");
        assert_eq!(
            unsatisfiable.fields["content-type"],
            "application/problem+json"
        );
        assert_eq!(unsatisfiable.fields["x-timelapser-cache"], "HIT");
    }

    #[test]
    fn client_headers_report_status_and_age() {
        let h = client_headers(
            headers(&[("etag", "\"a\""), ("connection", "close"), ("age", "99")]),
            CacheStatus::Hit,
            Some(Duration::from_secs(5)),
        );
        assert_eq!(h["x-timelapser-cache"], "HIT");
        assert_eq!(h["age"], "5");
        assert!(h.get("connection").is_none());
        // RFC 9111 §5.1: the origin's (an upstream cache's) Age is passed on.
        let h = client_headers(headers(&[("age", "3")]), CacheStatus::Miss, None);
        assert_eq!(h["age"], "3");
    }

    #[test]
    fn storability_uses_core() {
        let ok = headers(&[("cache-control", "public, max-age=60")]);
        assert_eq!(
            storability(&Method::HEAD, &HeaderMap::new(), StatusCode::OK, &ok),
            Storability::Storable
        );
        let private = headers(&[("cache-control", "private, max-age=300")]);
        assert_eq!(
            storability(&Method::GET, &HeaderMap::new(), StatusCode::OK, &private),
            Storability::Private
        );
        let cookie = headers(&[("cache-control", "max-age=60"), ("set-cookie", "a=b")]);
        assert_eq!(
            storability(&Method::GET, &HeaderMap::new(), StatusCode::OK, &cookie),
            Storability::SetCookie
        );
    }

    #[test]
    fn problems_are_problem_documents() {
        let answer = problem_answer(Problem::new(
            StatusCode::BAD_GATEWAY,
            "the origin cannot be reached",
        ));
        let h = &answer.fields;
        assert_eq!(h["content-type"], "application/problem+json");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-timelapser-cache"], "BYPASS");
        let Content::Problem(problem) = &answer.content else {
            panic!("{:?}", answer.content);
        };
        let body = problem.to_json();
        assert_eq!(h["content-length"], body.len().to_string().as_str());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], 502);
        assert_eq!(v["title"], "Bad Gateway");
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    }
    fn stored(status: u16, pairs: &[(&str, &str)], authorized: bool) -> Stored {
        let timing = ResponseTiming {
            request_time: at(0),
            response_time: at(0),
        };
        let status = StatusCode::from_u16(status).unwrap();
        Stored::from_storage(&storage_headers(
            status,
            &headers(pairs),
            timing,
            authorized,
        ))
        .unwrap()
    }

    #[test]
    fn rfc9111_3_every_status_is_stored_with_its_status() {
        for status in [200, 203, 204, 301, 404, 410, 500, 503] {
            let entry = stored(status, &[("cache-control", "max-age=60")], false);
            assert_eq!(entry.status.as_u16(), status);
            assert!(entry.is_fresh(at(59)), "{status}");
            assert!(!entry.is_fresh(at(60)), "{status}");
            assert_eq!(
                answers_with_representation(entry.status),
                status == 200,
                "{status}"
            );
        }
        // Entries from before statuses were kept read back as 200s.
        let mut old = storage_headers(
            StatusCode::OK,
            &headers(&[("etag", "\"x\"")]),
            ResponseTiming {
                request_time: at(0),
                response_time: at(0),
            },
            false,
        );
        old.remove(STATUS);
        assert_eq!(Stored::from_storage(&old).unwrap().status, StatusCode::OK);
    }

    #[test]
    fn rfc9111_4_2_2_heuristic_freshness_of_a_stored_response() {
        // Modified 10,000 s before it was sent: fresh for 1,000 s.
        let entry = stored(
            404,
            &[
                ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
                ("last-modified", "Tue, 14 Nov 2023 19:26:40 GMT"),
            ],
            false,
        );
        assert!(entry.is_fresh(at(999)));
        assert!(!entry.is_fresh(at(1000)));
        // Kept for revalidation at least a day.
        let h = storage_headers(
            StatusCode::OK,
            &headers(&[("last-modified", "Tue, 14 Nov 2023 19:26:40 GMT")]),
            ResponseTiming {
                request_time: at(0),
                response_time: at(0),
            },
            false,
        );
        assert_eq!(h["cache-control"], "public, max-age=86400");
        assert_eq!(
            Stored::from_storage(&h).unwrap().headers["date"],
            "Tue, 14 Nov 2023 22:13:20 GMT",
            "Date added on receipt"
        );
    }

    #[test]
    fn rfc9110_6_6_1_an_invalid_date_is_the_time_of_receipt() {
        // With Date replaced, Expires counts from receipt: fresh for its 100 s.
        let entry = stored(
            200,
            &[
                ("date", "foo"),
                ("expires", "Tue, 14 Nov 2023 22:15:00 GMT"),
            ],
            false,
        );
        assert_eq!(entry.headers["date"], "Tue, 14 Nov 2023 22:13:20 GMT");
        assert!(entry.is_fresh(at(99)));
        assert!(!entry.is_fresh(at(100)));
    }

    #[test]
    fn rfc9111_4_2_3_the_origin_age_is_kept_and_counts() {
        let entry = stored(
            200,
            &[("cache-control", "max-age=100"), ("age", "40")],
            false,
        );
        assert_eq!(entry.headers["age"], "40");
        assert_eq!(entry.age(at(10)), Duration::from_secs(50));
        assert!(entry.is_fresh(at(59)));
        assert!(!entry.is_fresh(at(60)));
        // An Age the Cache API might add to its copy is not the origin's.
        let mut h = storage_headers(
            StatusCode::OK,
            &headers(&[("cache-control", "max-age=100")]),
            ResponseTiming {
                request_time: at(0),
                response_time: at(0),
            },
            false,
        );
        h.insert(header::AGE, HeaderValue::from_static("77"));
        h.insert(
            header::DATE,
            HeaderValue::from_static("Wed, 15 Nov 2023 00:00:00 GMT"),
        );
        h.insert(
            header::WARNING,
            HeaderValue::from_static("113 - \"rfc7234 5.5.4\""),
        );
        h.insert("cf-cache-status", HeaderValue::from_static("HIT"));
        let back = Stored::from_storage(&h).unwrap();
        assert!(back.headers.get("age").is_none() && back.headers.get("warning").is_none());
        assert!(back.headers.get("cf-cache-status").is_none());
        assert_eq!(
            back.headers["date"], "Tue, 14 Nov 2023 22:13:20 GMT",
            "the origin's Date"
        );
        let stale = stored(
            200,
            &[("cache-control", "max-age=10"), ("age", "15")],
            false,
        );
        assert!(!stale.is_fresh(at(0)), "older than its lifetime on arrival");
    }

    #[test]
    fn rfc9213_cdn_cache_control_decides_for_the_edge() {
        let entry = stored(
            200,
            &[
                ("cache-control", "no-cache"),
                ("cdn-cache-control", "max-age=600"),
            ],
            false,
        );
        assert!(entry.is_fresh(at(599)));
        // The client is told what the origin told it.
        assert_eq!(entry.headers["cache-control"], "no-cache");
        assert_eq!(
            storability(
                &Method::GET,
                &HeaderMap::new(),
                StatusCode::OK,
                &headers(&[
                    ("cache-control", "public, max-age=600"),
                    ("cdn-cache-control", "private")
                ])
            ),
            Storability::Private
        );
    }

    #[test]
    fn rfc5861_3_stale_while_revalidate_window() {
        let entry = stored(
            200,
            &[("cache-control", "max-age=10, stale-while-revalidate=20")],
            false,
        );
        assert!(!entry.is_fresh(at(10)));
        assert!(entry.may_serve_while_revalidating(at(30)));
        assert!(!entry.may_serve_while_revalidating(at(31)));
        let h = storage_headers(
            StatusCode::OK,
            &headers(&[("cache-control", "max-age=86400, stale-while-revalidate=600")]),
            ResponseTiming {
                request_time: at(0),
                response_time: at(0),
            },
            false,
        );
        assert_eq!(
            h["cache-control"], "public, max-age=87000",
            "kept for the window"
        );
    }

    #[test]
    fn rfc9111_3_5_authorized_entries_answer_authorized_requests_only_from_their_own() {
        let shared = stored(200, &[("cache-control", "public, max-age=60")], true);
        assert!(shared.authorized);
        assert!(shared.may_answer(true) && shared.may_answer(false));
        let anonymous = stored(200, &[("cache-control", "public, max-age=60")], false);
        assert!(!anonymous.authorized);
        assert!(anonymous.may_answer(false) && !anonymous.may_answer(true));
        assert!(!anonymous.headers.contains_key(AUTHORIZED));
        let auth = headers(&[("authorization", "Bearer t")]);
        for (cc, expected) in [
            ("max-age=60", Storability::Authorization),
            ("public, max-age=60", Storability::Storable),
            ("s-maxage=60", Storability::Storable),
            ("must-revalidate, max-age=60", Storability::Storable),
        ] {
            assert_eq!(
                storability(
                    &Method::GET,
                    &auth,
                    StatusCode::OK,
                    &headers(&[("cache-control", cc)])
                ),
                expected,
                "{cc}"
            );
        }
    }

    #[test]
    fn rfc9111_3_5_a_miss_with_credentials_carries_the_clients_validators() {
        let client = headers(&[
            ("authorization", "Bearer t"),
            ("if-none-match", "\"s1\""),
            ("range", "bytes=0-1"),
        ]);
        let ask = miss_request_headers(&fill_request_headers(&client), &client);
        assert_eq!(ask["if-none-match"], "\"s1\"");
        assert!(!ask.contains_key("range"));
        let anonymous = headers(&[("if-none-match", "\"s1\"")]);
        let ask = miss_request_headers(&fill_request_headers(&anonymous), &anonymous);
        assert!(
            !ask.contains_key("if-none-match"),
            "a fill asks for what it stores"
        );
    }

    #[test]
    fn rfc9111_3_2_a_304_refreshes_and_dates_the_entry() {
        let entry = stored(
            200,
            &[
                ("cache-control", "max-age=10"),
                ("etag", "\"v\""),
                ("last-modified", "Tue, 14 Nov 2023 22:13:20 GMT"),
                ("content-length", "4"),
                ("age", "5"),
            ],
            false,
        );
        assert_eq!(
            entry.validation_headers(),
            headers(&[
                ("if-none-match", "\"v\""),
                ("if-modified-since", "Tue, 14 Nov 2023 22:13:20 GMT")
            ])
        );
        let later = ResponseTiming {
            request_time: at(100),
            response_time: at(100),
        };
        let refreshed = entry.refreshed(
            &headers(&[("cache-control", "max-age=30"), ("content-length", "0")]),
            later,
        );
        assert_eq!(refreshed.headers["content-length"], "4");
        assert_eq!(refreshed.headers["cache-control"], "max-age=30");
        assert!(refreshed.headers.get("age").is_none());
        assert!(refreshed.is_fresh(at(129)), "dated on receipt: fresh again");
        assert!(!refreshed.is_fresh(at(130)));
    }

    #[test]
    fn rfc9111_4_1_variants_are_found_through_the_index() {
        let index = VaryIndex {
            vary: Vary::of(&headers(&[("vary", "Accept-Language")])),
            generation: "1-2".into(),
        };
        let back = VaryIndex::from_storage(&index.storage_headers()).unwrap();
        assert_eq!(back, index);
        assert!(VaryIndex::from_storage(&storage_headers(
            StatusCode::OK,
            &headers(&[("vary", "accept")]),
            ResponseTiming {
                request_time: at(0),
                response_time: at(0),
            },
            false
        ))
        .is_none());
        let primary = "https://edge/api/x";
        let fr = index
            .variant_key(primary, &headers(&[("accept-language", "fr")]))
            .unwrap();
        assert!(fr.starts_with(VARIANT_KEY_BASE));
        assert_eq!(
            Some(fr.clone()),
            index.variant_key(
                primary,
                &headers(&[("accept-language", "fr"), ("accept", "x")])
            )
        );
        assert_ne!(
            Some(fr.clone()),
            index.variant_key(primary, &headers(&[("accept-language", "de")]))
        );
        let renewed = VaryIndex {
            generation: "3-4".into(),
            ..index.clone()
        };
        assert_ne!(
            Some(fr),
            renewed.variant_key(primary, &headers(&[("accept-language", "fr")]))
        );
        // The origin's Vary is kept aside in the entry and restored for the client.
        let entry = stored(
            200,
            &[("vary", "Accept-Language"), ("cache-control", "max-age=5")],
            false,
        );
        assert_eq!(entry.headers["vary"], "Accept-Language");
        // The fills the entries are keyed by carry the selecting fields, not the cookies.
        let fill = fill_request_headers(&headers(&[
            ("accept-language", "fr"),
            ("cookie", "a=b"),
            ("authorization", "Bearer t"),
        ]));
        assert!(fill.contains_key("accept-language") && fill.contains_key("authorization"));
        assert!(!fill.contains_key("cookie"));
    }

    #[test]
    fn rfc9111_4_4_unsafe_requests_invalidate_the_target_and_its_locations() {
        let url = url::Url::parse("https://edge.example/api/things/1?x=1").unwrap();
        let keys = |method: &str, status: u16, pairs: &[(&str, &str)]| {
            invalidated_keys(
                &Method::from_bytes(method.as_bytes()).unwrap(),
                StatusCode::from_u16(status).unwrap(),
                &url,
                &headers(pairs),
            )
        };
        assert_eq!(
            keys("POST", 200, &[]),
            ["https://edge.example/api/things/1?x=1"]
        );
        assert_eq!(
            keys(
                "PUT",
                201,
                &[
                    ("location", "/api/things/2"),
                    ("content-location", "https://edge.example/api/things/3"),
                ]
            ),
            [
                "https://edge.example/api/things/1?x=1",
                "https://edge.example/api/things/2",
                "https://edge.example/api/things/3",
            ]
        );
        // Relative references resolve against the request's URL.
        assert!(keys("DELETE", 204, &[("location", "../list")])
            .contains(&"https://edge.example/api/list".to_owned()));
        // Another site's entries are not this request's to drop.
        assert_eq!(
            keys("POST", 303, &[("location", "https://elsewhere.example/x")]),
            ["https://edge.example/api/things/1?x=1"]
        );
        // Media are keyed by path alone.
        let media = format!("https://edge.example{IMAGE}?v=1");
        assert!(keys("PATCH", 200, &[("content-location", media.as_str())])
            .contains(&format!("https://edge.example{IMAGE}")));
        assert!(
            keys("FROB", 200, &[]).len() == 1,
            "unknown methods are unsafe"
        );
        assert!(keys("POST", 404, &[]).is_empty());
        assert!(keys("POST", 500, &[]).is_empty());
        assert!(keys("GET", 200, &[]).is_empty());
        assert!(keys("OPTIONS", 200, &[]).is_empty());
    }
}
