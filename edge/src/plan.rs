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
    self, may_serve_stale_if_error, shared_freshness_lifetime, shared_reuse, CacheControl,
    ResponseTiming, Reuse, Storability,
};
use timelapser_core::credentials;
use timelapser_core::forwarding::{self, CacheStatus};
use timelapser_core::paths;
use timelapser_core::response::{Answer, Content, Selected};
use timelapser_core::Problem;

/// How the edge treats a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/media/**` GET/HEAD: immutable, stored, concurrent misses coalesced.
    Media,
    /// `/api/events`: streamed through, never buffered or stored.
    Events,
    /// Any other GET/HEAD: stored when storable, revalidated when stale.
    Cacheable,
    /// Writes, other methods and requests with credentials: forwarded untouched.
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
    // RFC 9111 §3.5: a response to a request with Authorization is someone's; so is one to a
    // request with the console's session. This cache never stores one nor answers one from
    // storage. Other cookies (a site's analytics) do not make a public response anyone's.
    if credentials::carries_credentials(headers) {
        return Route::PassThrough;
    }
    if !paths::is_media_path(path) {
        Route::Cacheable
    } else if paths::MediaName::from_path(path).is_some() {
        Route::Media
    } else {
        Route::NoSuchMedia
    }
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

/// The headers of the edge's request to the origin for a representation it may store.
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

/// The headers of a request forwarded as is (writes, events, credentials).
pub fn pass_through_request_headers(client: &HeaderMap) -> HeaderMap {
    let mut headers = client.clone();
    forwarding::strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    headers
}

/// Internal fields of stored entries (never sent to clients).
const ORIGINAL_CACHE_CONTROL: &str = "x-timelapser-origin-cache-control";
const REQUEST_TIME: &str = "x-timelapser-request-time";
const RESPONSE_TIME: &str = "x-timelapser-response-time";
const HAD_CACHE_CONTROL: &str = "x-timelapser-had-cache-control";

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

/// The headers a response is stored with. The Cache API keeps an entry as long as its
/// Cache-Control says; that is the edge's retention decision (how long the entry stays useful,
/// fresh or for revalidation and stale-if-error), so the origin's Cache-Control is kept aside
/// and restored on every read, and freshness is always decided by core from the original.
pub fn storage_headers(response: &HeaderMap, timing: ResponseTiming) -> HeaderMap {
    let mut stored = response.clone();
    forwarding::strip_hop_by_hop(&mut stored);
    stored.remove(header::SET_COOKIE);
    let original = response.get(header::CACHE_CONTROL).cloned();
    let cc = CacheControl::from_headers(response).unwrap_or_default();
    let lifetime = shared_freshness_lifetime(response);
    let retention = (lifetime + cc.stale_if_error.unwrap_or_default()).max(REVALIDATION_RETENTION);
    stored.insert(
        header::CACHE_CONTROL,
        CacheControl::new()
            .public()
            .max_age(retention)
            .to_header_value(),
    );
    match original {
        Some(value) => {
            stored.insert(HeaderName::from_static(ORIGINAL_CACHE_CONTROL), value);
            stored.insert(
                HeaderName::from_static(HAD_CACHE_CONTROL),
                HeaderValue::from_static("1"),
            );
        }
        None => {
            stored.insert(
                HeaderName::from_static(HAD_CACHE_CONTROL),
                HeaderValue::from_static("0"),
            );
        }
    }
    stored.insert(
        HeaderName::from_static(REQUEST_TIME),
        HeaderValue::from(millis(timing.request_time)),
    );
    stored.insert(
        HeaderName::from_static(RESPONSE_TIME),
        HeaderValue::from(millis(timing.response_time)),
    );
    if !stored.contains_key(header::DATE) {
        // RFC 9110 §6.6.1: a recipient with a clock adds Date when it is missing.
        stored.insert(
            header::DATE,
            timelapser_core::conditional::last_modified_value(timing.response_time),
        );
    }
    stored
}

/// A stored entry read back: the origin's headers as they were, and when they were obtained.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The origin's response headers (with its own Cache-Control).
    pub headers: HeaderMap,
    /// When the edge asked and was answered.
    pub timing: ResponseTiming,
}

impl Stored {
    /// Reads an entry's headers; `None` when they are not an entry this edge wrote.
    pub fn from_storage(stored: &HeaderMap) -> Option<Self> {
        let time = |name: &str| {
            stored
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(from_millis)
        };
        let timing = ResponseTiming {
            request_time: time(REQUEST_TIME)?,
            response_time: time(RESPONSE_TIME)?,
        };
        let mut headers = stored.clone();
        headers.remove(header::CACHE_CONTROL);
        if let Some(original) = headers.remove(ORIGINAL_CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, original);
        }
        for name in [REQUEST_TIME, RESPONSE_TIME, HAD_CACHE_CONTROL] {
            headers.remove(name);
        }
        Some(Self { headers, timing })
    }

    /// Its current age (RFC 9111 §4.2.3).
    pub fn age(&self, now: SystemTime) -> Duration {
        cache_control::current_age(&self.headers, self.timing, now)
    }

    /// Whether it may be served without asking the origin (RFC 9111 §4.2).
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        shared_reuse(&self.headers, self.age(now)) == Reuse::Fresh
    }

    /// Whether it may be served while the origin fails (RFC 5861 §4).
    pub fn may_serve_on_error(&self, now: SystemTime) -> bool {
        may_serve_stale_if_error(&self.headers, self.age(now))
    }

    /// The conditional request fields that validate it (RFC 9111 §4.3.1).
    pub fn validation_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(etag) = self.headers.get(header::ETAG) {
            h.insert(header::IF_NONE_MATCH, etag.clone());
        } else if let Some(lm) = self.headers.get(header::LAST_MODIFIED) {
            h.insert(header::IF_MODIFIED_SINCE, lm.clone());
        }
        h
    }

    /// The entry after a 304 (RFC 9111 §4.3.4): the 304's fields replace the stored ones,
    /// except those describing the body, which the 304 does not have.
    pub fn refreshed(&self, not_modified: &HeaderMap, timing: ResponseTiming) -> Stored {
        let mut headers = self.headers.clone();
        let mut fresh = not_modified.clone();
        forwarding::strip_hop_by_hop(&mut fresh);
        for name in [
            header::CONTENT_LENGTH,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::CONTENT_RANGE,
        ] {
            fresh.remove(name);
        }
        for name in fresh.keys() {
            headers.remove(name);
        }
        for (name, value) in fresh.iter() {
            headers.append(name.clone(), value.clone());
        }
        Stored { headers, timing }
    }
}

/// The representation a stored entry (or the origin's 200) holds, for core's
/// [`timelapser_core::response::answer`]: its fields and validators, and its length when
/// Content-Length says, so that byte ranges are answered where it offers them.
pub fn representation(fields: &HeaderMap) -> Selected<'static> {
    let length = fields
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    Selected::from_fields(fields.clone(), length)
}

/// Finishes a response's headers for the client: no hop-by-hop fields, `Age` when served
/// from storage (RFC 9111 §5.1), and the cache status.
pub fn client_headers(
    mut headers: HeaderMap,
    status: CacheStatus,
    age: Option<Duration>,
) -> HeaderMap {
    forwarding::strip_hop_by_hop(&mut headers);
    match age {
        Some(age) => {
            headers.insert(header::AGE, HeaderValue::from(age.as_secs()));
        }
        None => {
            headers.remove(header::AGE);
        }
    }
    status.apply(&mut headers);
    headers
}

/// Finishes core's answer for the client: the cache status of the entry it was decided from,
/// and `Age` when the fields are the stored response's (a 200, 206 or 304); a problem document
/// (412, 416) is the edge's own and carries none.
pub fn client_answer(mut answer: Answer, status: CacheStatus, age: Option<Duration>) -> Answer {
    let age = match answer.content {
        Content::Problem(_) => None,
        Content::Empty | Content::Whole | Content::Part(_) => age,
    };
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
        let auth = headers(&[("authorization", "Bearer x")]);
        assert_eq!(
            route(&Method::GET, "/api/preferences", &auth),
            Route::PassThrough
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
        let stored = storage_headers(&origin, timing);
        assert_eq!(stored["cache-control"], "public, max-age=86400");
        let back = Stored::from_storage(&stored).unwrap();
        assert_eq!(back.headers, origin);
        assert_eq!(back.timing, timing);
        // An immutable file is kept a year plus its stale-if-error.
        let media = headers(&[(
            "cache-control",
            "public, max-age=31536000, immutable, stale-if-error=86400",
        )]);
        let stored = storage_headers(&media, timing);
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
        let back = Stored::from_storage(&storage_headers(&origin, timing)).unwrap();
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
            &headers(&[
                ("cache-control", "max-age=0, stale-if-error=86400"),
                ("etag", "\"p\""),
            ]),
            timing,
        ))
        .unwrap();
        assert!(!page.is_fresh(at(1)));
        assert!(page.may_serve_on_error(at(3600)));
        assert!(!page.may_serve_on_error(at(86_401)));
        let json = Stored::from_storage(&storage_headers(
            &headers(&[("cache-control", "no-cache"), ("etag", "\"j\"")]),
            timing,
        ))
        .unwrap();
        assert!(!json.is_fresh(at(0)));
        assert!(
            !json.may_serve_on_error(at(1)),
            "no-cache forbids stale (RFC 9111 §4.2.4)"
        );
        let media = Stored::from_storage(&storage_headers(
            &headers(&[("cache-control", "public, max-age=31536000, immutable")]),
            timing,
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
            &headers(&[
                ("cache-control", "no-cache"),
                ("etag", "\"v1\""),
                ("content-type", "application/json"),
                ("content-length", "10"),
                ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ]),
            timing,
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
            &headers(&[("last-modified", "Tue, 14 Nov 2023 22:13:20 GMT")]),
            timing,
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
        // Ranges only where the representation offers them.
        let json = headers(&[("etag", "\"j\""), ("content-length", "10")]);
        let got = answer_from(Method::GET, &[("range", "bytes=0-1")], &json);
        assert_eq!((got.status, got.content), (StatusCode::OK, Content::Whole));
        assert_eq!(got.fields["content-length"], "10");
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
        let entry = Stored::from_storage(&storage_headers(&origin, timing)).unwrap();
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
        let h = client_headers(headers(&[("age", "3")]), CacheStatus::Miss, None);
        assert!(h.get("age").is_none());
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
}
