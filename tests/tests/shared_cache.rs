//! The edge as a general shared cache (RFC 9111, RFC 9213, RFC 5861), end to end: the real
//! Worker under `wrangler dev` in front of a scripted origin (`timelapser_tests::scripted`) that
//! sends what Timelapser's own origin never does: any status, Vary, Age, odd dates, targeted
//! fields, interim responses, obs-text, silence.
//!
//! One origin and one `wrangler dev` serve every case (starting workerd is the slow part); each
//! case has its own paths, so cases never see each other's entries. Every case runs, and the
//! test fails naming each case that failed. Nothing waits on a bare sleep: freshness is steered
//! with Date and Age (a response dated 100 s ago is 100 s old on arrival), and background work
//! is waited for with a deadline.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode};
use timelapser_tests::scripted::{Reply, ScriptedOrigin};
use timelapser_tests::Edge;

/// How long the edge waits for the origin's response headers.
const ORIGIN_TIMEOUT_MS: u64 = 3000;

struct Stack {
    origin: ScriptedOrigin,
    edge: Edge,
    client: Client,
}

/// A response as the client saw it.
struct Seen {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn cache(&self) -> &str {
        self.header("x-timelapser-cache").unwrap_or("-")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Stack {
    async fn send(&self, method: &str, path: &str, fields: &[(&str, &str)]) -> Seen {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, self.edge.url(path));
        for (name, value) in fields {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        Seen {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, fields: &[(&str, &str)]) -> Seen {
        self.send("GET", path, fields).await
    }
}

fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

fn ago(secs: u64) -> String {
    http_date(SystemTime::now() - Duration::from_secs(secs))
}

fn from_now(secs: u64) -> String {
    http_date(SystemTime::now() + Duration::from_secs(secs))
}

/// Asks twice; returns the second answer and how many requests reached the origin.
async fn twice(stack: &Stack, path: &str, reply: Reply) -> (Seen, usize) {
    stack.origin.script(path, [reply]);
    let first = stack.get(path, &[]).await;
    assert_eq!(first.cache(), "MISS", "{path}: the first request");
    let second = stack.get(path, &[]).await;
    (second, stack.origin.count(path))
}

async fn rfc9111_3_every_cacheable_status_is_stored(stack: &Stack) {
    for status in [
        200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501, 500, 503, 302, 201,
    ] {
        let path = format!("/status/{status}");
        let mut reply = Reply::new(status, "body").header("cache-control", "max-age=3600");
        if matches!(status, 301 | 302 | 308) {
            reply = reply.header("location", "/elsewhere");
        }
        let (second, count) = twice(stack, &path, reply).await;
        assert_eq!(second.status.as_u16(), status, "{path}");
        assert_eq!(second.cache(), "HIT", "{path}");
        assert_eq!(count, 1, "{path}: answered from storage");
        if status == 204 {
            assert!(second.body.is_empty());
        } else {
            assert_eq!(second.text(), "body", "{path}");
        }
        assert!(second.header("age").is_some(), "{path}");
    }
    // Without freshness information, a status that is not heuristically cacheable is not.
    let (second, count) = twice(
        stack,
        "/status/500-bare",
        Reply::new(500, "x").header("last-modified", ago(86_400)),
    )
    .await;
    assert_eq!((second.cache(), count), ("MISS", 2));
}

async fn rfc9111_4_2_2_heuristic_freshness_from_last_modified(stack: &Stack) {
    for status in [200, 404, 410] {
        let path = format!("/heuristic/{status}");
        let reply = Reply::new(status, "h").header("last-modified", ago(10 * 86_400));
        let (second, count) = twice(stack, &path, reply).await;
        assert_eq!((second.cache(), count), ("HIT", 1), "{path}");
    }
    // Neither explicit freshness nor Last-Modified: asked again.
    let (second, count) = twice(stack, "/heuristic/none", Reply::new(200, "n")).await;
    assert_eq!((second.cache(), count), ("MISS", 2));
}

async fn rfc9111_4_1_responses_are_stored_per_variant(stack: &Stack) {
    let path = "/vary/language";
    stack.origin.script(
        path,
        [Reply::new(200, "lang=")
            .header("cache-control", "max-age=3600")
            .header("vary", "Accept-Language")
            .echo("accept-language")],
    );
    let fr = [("accept-language", "fr")];
    let de = [("accept-language", "de")];
    assert_eq!(stack.get(path, &fr).await.text(), "lang=fr");
    assert_eq!(stack.get(path, &de).await.text(), "lang=de");
    for (fields, text) in [(&fr, "lang=fr"), (&de, "lang=de")] {
        let seen = stack.get(path, fields).await;
        assert_eq!((seen.cache(), seen.text().as_str()), ("HIT", text));
        assert_eq!(seen.header("vary"), Some("Accept-Language"));
    }
    // Absent is a variant of its own; other fields do not matter.
    let none = stack.get(path, &[("accept", "x/y")]).await;
    assert_eq!((none.cache(), none.text().as_str()), ("MISS", "lang=-"));
    let seen = stack
        .get(path, &[("accept-language", "fr"), ("accept", "x/y")])
        .await;
    assert_eq!(seen.cache(), "HIT");
    assert_eq!(stack.origin.count(path), 3);

    // Vary: * matches nothing.
    let (second, count) = twice(
        stack,
        "/vary/star",
        Reply::new(200, "s")
            .header("cache-control", "max-age=3600")
            .header("vary", "*"),
    )
    .await;
    assert_eq!((second.cache(), count), ("MISS", 2));

    // A revalidation carries the selecting fields of the variant it validates.
    let path = "/vary/revalidated";
    stack.origin.script(
        path,
        [
            Reply::new(200, "v1")
                .header("cache-control", "max-age=0")
                .header("etag", "\"v1\"")
                .header("vary", "accept-language"),
            Reply::new(304, "")
                .header("etag", "\"v1\"")
                .header("vary", "accept-language"),
        ],
    );
    stack.get(path, &fr).await;
    let seen = stack.get(path, &fr).await;
    assert_eq!((seen.cache(), seen.text().as_str()), ("REVALIDATED", "v1"));
    let validation = &stack.origin.received(path)[1];
    assert_eq!(validation.header("if-none-match"), Some("\"v1\""));
    assert_eq!(validation.header("accept-language"), Some("fr"));
}

async fn rfc9111_4_2_3_age_is_kept_and_counted(stack: &Stack) {
    let path = "/age/kept";
    stack.origin.script(
        path,
        [Reply::new(200, "a")
            .header("cache-control", "max-age=3600")
            .header("age", "100")],
    );
    let first = stack.get(path, &[]).await;
    assert_eq!(
        first.header("age"),
        Some("100"),
        "the origin's Age on a miss"
    );
    let second = stack.get(path, &[]).await;
    assert_eq!(second.cache(), "HIT");
    let age: u64 = second.header("age").unwrap().parse().unwrap();
    assert!(
        (100..200).contains(&age),
        "{age}: the origin's Age plus resident time"
    );
    // Older than its lifetime on arrival: never reused.
    let (second, count) = twice(
        stack,
        "/age/too-old",
        Reply::new(200, "o")
            .header("date", ago(0))
            .header("cache-control", "max-age=10")
            .header("age", "15"),
    )
    .await;
    assert_eq!((second.cache(), count), ("MISS", 2));
}

async fn rfc9111_5_3_expires_and_rfc9110_5_6_7_dates(stack: &Stack) {
    let later = SystemTime::now() + Duration::from_secs(3600);
    let asctime = {
        // `Sun Nov  6 08:49:37 1994` from the IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`.
        let fixed = http_date(later);
        let parts: Vec<&str> = fixed.split(' ').collect();
        let day: u32 = parts[1].parse().unwrap();
        format!(
            "{} {} {day:>2} {} {}",
            parts[0].trim_end_matches(','),
            parts[2],
            parts[4],
            parts[3]
        )
    };
    let cases = [
        ("/expires/future", from_now(3600), true),
        ("/expires/asctime", asctime, true),
        ("/expires/lower-case", from_now(3600).to_lowercase(), true),
        ("/expires/before-date", ago(60), false),
        ("/expires/invalid", "0".to_owned(), false),
    ];
    for (path, expires, reused) in cases {
        let reply = Reply::new(200, "e")
            .header("date", ago(0))
            .header("expires", &expires);
        let (second, count) = twice(stack, path, reply).await;
        let expected = if reused { ("HIT", 1) } else { ("MISS", 2) };
        assert_eq!(
            (second.cache(), count),
            expected,
            "{path}: Expires {expires}"
        );
    }
}

async fn rfc9213_cdn_cache_control_overrides_cache_control(stack: &Stack) {
    let (second, count) = twice(
        stack,
        "/cdn/max-age",
        Reply::new(200, "c")
            .header("cache-control", "no-store")
            .header("cdn-cache-control", "max-age=3600"),
    )
    .await;
    assert_eq!((second.cache(), count), ("HIT", 1));
    assert_eq!(
        second.header("cache-control"),
        Some("no-store"),
        "for the browser"
    );
    for (path, cdn) in [("/cdn/no-store", "no-store"), ("/cdn/private", "private")] {
        let (second, count) = twice(
            stack,
            path,
            Reply::new(200, "c")
                .header("cache-control", "public, max-age=3600")
                .header("cdn-cache-control", cdn),
        )
        .await;
        assert_eq!((second.cache(), count), ("MISS", 2), "{path}");
    }
    let path = "/cdn/no-cache";
    stack.origin.script(
        path,
        [
            Reply::new(200, "c")
                .header("cache-control", "max-age=3600")
                .header("cdn-cache-control", "no-cache")
                .header("etag", "\"c\""),
            Reply::new(304, "").header("etag", "\"c\""),
        ],
    );
    stack.get(path, &[]).await;
    let seen = stack.get(path, &[]).await;
    assert_eq!((seen.cache(), seen.text().as_str()), ("REVALIDATED", "c"));
    // An invalid targeted field is ignored: Cache-Control decides.
    let (second, count) = twice(
        stack,
        "/cdn/invalid",
        Reply::new(200, "c")
            .header("cache-control", "max-age=3600")
            .header("cdn-cache-control", "max-age=\"3600"),
    )
    .await;
    assert_eq!((second.cache(), count), ("HIT", 1));
}

async fn rfc9111_3_2_a_304_updates_the_stored_fields(stack: &Stack) {
    let path = "/update/304";
    stack.origin.script(
        path,
        [
            Reply::new(200, "12345")
                .header("cache-control", "max-age=0")
                .header("etag", "\"u\"")
                .header("x-version", "1"),
            Reply::new(304, "")
                .header("cache-control", "max-age=3600")
                .header("etag", "\"u\"")
                .header("x-version", "2"),
        ],
    );
    let first = stack.get(path, &[]).await;
    assert_eq!(first.header("x-version"), Some("1"));
    let revalidated = stack.get(path, &[]).await;
    assert_eq!(revalidated.cache(), "REVALIDATED");
    assert_eq!(revalidated.header("x-version"), Some("2"));
    assert_eq!(revalidated.header("content-length"), Some("5"));
    assert_eq!(revalidated.text(), "12345");
    // The refreshed entry is stored: fresh now, for an hour.
    let hit = stack.get(path, &[]).await;
    assert_eq!(hit.cache(), "HIT");
    assert_eq!(hit.header("x-version"), Some("2"));
    assert_eq!(hit.text(), "12345");
    assert_eq!(stack.origin.count(path), 2);
    // HEAD from the stored GET, with its length.
    let head = stack.send("HEAD", path, &[]).await;
    assert_eq!(
        (head.cache(), head.header("content-length")),
        ("HIT", Some("5"))
    );
    assert!(head.body.is_empty());
    assert_eq!(stack.origin.count(path), 2);
    assert!(stack
        .origin
        .received(path)
        .iter()
        .all(|r| r.method == "GET"));
}

/// Asks until the answer has the cache status `status` (an entry stored after the answer that
/// filled it is written in the background); fails after 10 s.
async fn wait_for_cache(stack: &Stack, path: &str, status: &str) -> Seen {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = stack.get(path, &[]).await;
        if seen.cache() == status || std::time::Instant::now() > deadline {
            assert_eq!(seen.cache(), status, "{path}");
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rfc9111_3_1_qualified_private_and_no_cache_fields_are_not_stored(stack: &Stack) {
    let path = "/fields/qualified";
    stack.origin.script(
        path,
        [Reply::new(200, "q")
            .header(
                "cache-control",
                "max-age=3600, private=\"x-user\", no-cache=\"x-session\"",
            )
            .header("x-user", "alice")
            .header("x-session", "s1")
            .header("x-public", "1")],
    );
    let first = stack.get(path, &[]).await;
    assert_eq!(first.header("x-user"), Some("alice"), "the requester's own");
    let second = stack.get(path, &[]).await;
    assert_eq!(second.cache(), "HIT");
    assert_eq!(second.header("x-public"), Some("1"));
    assert!(second.header("x-user").is_none() && second.header("x-session").is_none());
}

async fn rfc9111_4_4_unsafe_requests_invalidate(stack: &Stack) {
    let target = "/invalidate/thing";
    let stored = || Reply::new(200, "t").header("cache-control", "max-age=3600");
    stack.origin.script(target, [stored()]);
    stack.get(target, &[]).await;
    assert_eq!(stack.get(target, &[]).await.cache(), "HIT");
    // A POST to it, answered 200: the next read is the origin's. So for methods this cache
    // does not know (MKCOL, PROPPATCH); workerd itself answers 501 to methods it does not know
    // at all, before any Worker runs.
    for method in ["POST", "PUT", "DELETE", "MKCOL", "PROPPATCH"] {
        stack
            .origin
            .script(target, [Reply::new(200, "written"), stored()]);
        let written = stack.send(method, target, &[]).await;
        assert_eq!(written.status, StatusCode::OK, "{method}");
        assert_eq!(
            stack.get(target, &[]).await.cache(),
            "MISS",
            "after {method}"
        );
        assert_eq!(
            stack.get(target, &[]).await.cache(),
            "HIT",
            "after {method}"
        );
    }
    // A failed write invalidates nothing.
    stack
        .origin
        .script(target, [Reply::new(500, "no"), stored()]);
    stack.send("POST", target, &[]).await;
    assert_eq!(stack.get(target, &[]).await.cache(), "HIT");
    // Location and Content-Location name other entries it changed.
    let other = "/invalidate/other";
    stack.origin.script(other, [stored()]);
    stack.get(other, &[]).await;
    assert_eq!(stack.get(other, &[]).await.cache(), "HIT");
    let form = "/invalidate/form";
    stack.origin.script(
        form,
        [Reply::new(201, "created")
            .header("location", target)
            .header("content-location", format!("{}{other}", stack.edge.base))],
    );
    stack.send("POST", form, &[]).await;
    assert_eq!(stack.get(target, &[]).await.cache(), "MISS");
    assert_eq!(stack.get(other, &[]).await.cache(), "MISS");
    // Variants go with their URL.
    let varied = "/invalidate/varied";
    stack.origin.script(
        varied,
        [Reply::new(200, "v")
            .header("cache-control", "max-age=3600")
            .header("vary", "accept")],
    );
    stack.get(varied, &[("accept", "a/b")]).await;
    assert_eq!(stack.get(varied, &[("accept", "a/b")]).await.cache(), "HIT");
    stack.origin.script(
        varied,
        [
            Reply::new(204, ""),
            Reply::new(200, "v2")
                .header("cache-control", "max-age=3600")
                .header("vary", "accept"),
        ],
    );
    stack.send("DELETE", varied, &[]).await;
    let after = stack.get(varied, &[("accept", "a/b")]).await;
    assert_eq!((after.cache(), after.text().as_str()), ("MISS", "v2"));
}

async fn rfc5861_3_stale_while_revalidate_answers_now_and_refreshes_after(stack: &Stack) {
    let path = "/swr/page";
    stack.origin.script(
        path,
        [
            // Dated 100 s ago with a 10 s lifetime: stale on arrival, within the window.
            Reply::new(200, "old")
                .header("date", ago(100))
                .header("cache-control", "max-age=10, stale-while-revalidate=3600"),
            Reply::new(200, "new").header("cache-control", "max-age=3600"),
        ],
    );
    assert_eq!(stack.get(path, &[]).await.text(), "old");
    let stale = stack.get(path, &[]).await;
    assert_eq!((stale.cache(), stale.text().as_str()), ("UPDATING", "old"));
    stack
        .origin
        .wait_for(path, 2, Duration::from_secs(10))
        .await
        .unwrap();
    // Until the refreshed copy is stored, readers are answered the stale one (and may set off
    // another revalidation): waited for, with a deadline.
    let fresh = wait_for_cache(stack, path, "HIT").await;
    assert_eq!(fresh.text(), "new");
    // Beyond the window: validated before answering.
    let path = "/swr/too-stale";
    stack.origin.script(
        path,
        [
            Reply::new(200, "old")
                .header("date", ago(100))
                .header("cache-control", "max-age=10, stale-while-revalidate=5"),
            Reply::new(200, "new").header("cache-control", "max-age=3600"),
        ],
    );
    stack.get(path, &[]).await;
    let seen = stack.get(path, &[]).await;
    assert_eq!((seen.cache(), seen.text().as_str()), ("MISS", "new"));
}

async fn rfc9110_14_ranges_from_any_stored_response(stack: &Stack) {
    let path = "/ranges/json";
    stack.origin.script(
        path,
        [Reply::new(200, "0123456789")
            .header("cache-control", "max-age=3600")
            .header("content-type", "application/json")],
    );
    stack.get(path, &[]).await;
    let part = stack.get(path, &[("range", "bytes=2-4")]).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.cache(), "HIT");
    assert_eq!(part.text(), "234");
    assert_eq!(part.header("content-range"), Some("bytes 2-4/10"));
    assert_eq!(stack.origin.count(path), 1);
    // A range on a miss is cut from the origin's whole response.
    let path = "/ranges/miss";
    stack.origin.script(
        path,
        [Reply::new(200, "abcdef").header("cache-control", "max-age=3600")],
    );
    let part = stack.get(path, &[("range", "bytes=-2")]).await;
    assert_eq!((part.status.as_u16(), part.text().as_str()), (206, "ef"));
    assert!(stack.origin.received(path)[0].header("range").is_none());
}

async fn rfc9111_3_5_authorization_and_cookies(stack: &Stack) {
    let bearer = [("authorization", "Bearer one")];
    // Not declared shareable: every request with Authorization reaches the origin.
    let path = "/auth/plain";
    stack.origin.script(
        path,
        [Reply::new(200, "mine").header("cache-control", "max-age=3600")],
    );
    stack.get(path, &bearer).await;
    stack.get(path, &bearer).await;
    let anonymous = stack.get(path, &[]).await;
    assert_eq!(anonymous.cache(), "MISS");
    assert_eq!(stack.origin.count(path), 3);
    // public, s-maxage or must-revalidate: stored and reused.
    for (path, cc) in [
        ("/auth/public", "public, max-age=3600"),
        ("/auth/s-maxage", "s-maxage=3600"),
        ("/auth/must-revalidate", "must-revalidate, max-age=3600"),
    ] {
        stack.origin.script(
            path,
            [Reply::new(200, "shared").header("cache-control", cc)],
        );
        stack.get(path, &bearer).await;
        let again = stack.get(path, &[("authorization", "Bearer two")]).await;
        assert_eq!(again.cache(), "HIT", "{path}");
        assert_eq!(stack.get(path, &[]).await.cache(), "HIT", "{path}");
        assert_eq!(stack.origin.count(path), 1, "{path}");
    }
    // A request with Authorization is not answered from what an anonymous one stored.
    let path = "/auth/anonymous-first";
    stack.origin.script(
        path,
        [Reply::new(200, "public").header("cache-control", "max-age=3600")],
    );
    stack.get(path, &[]).await;
    assert_eq!(stack.get(path, &[]).await.cache(), "HIT");
    assert_eq!(stack.get(path, &bearer).await.cache(), "MISS");
    assert_eq!(stack.get(path, &[]).await.cache(), "HIT", "and it stays");
    // With credentials and a validator, the origin judges the validator (its 304 is passed on).
    let path = "/auth/conditional";
    stack.origin.script(
        path,
        [
            Reply::new(200, "mine")
                .header("cache-control", "private")
                .header("etag", "\"m1\""),
            Reply::new(304, "").header("etag", "\"m1\""),
        ],
    );
    stack.get(path, &bearer).await;
    let conditional = [("authorization", "Bearer one"), ("if-none-match", "\"m1\"")];
    let seen = stack.get(path, &conditional).await;
    assert_eq!(seen.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        stack.origin.received(path)[1].header("if-none-match"),
        Some("\"m1\"")
    );
    // A cookie alone does not stop reuse of a public response.
    let path = "/auth/cookie";
    stack.origin.script(
        path,
        [Reply::new(200, "c").header("cache-control", "public, max-age=3600")],
    );
    stack.get(path, &[("cookie", "theme=dark")]).await;
    let seen = stack.get(path, &[("cookie", "theme=light")]).await;
    assert_eq!(seen.cache(), "HIT");
    assert!(stack.origin.received(path)[0].header("cookie").is_none());
    // A response that sets a cookie is never served to another client.
    let path = "/auth/set-cookie";
    stack.origin.script(
        path,
        [Reply::new(200, "s")
            .header("cache-control", "public, max-age=3600")
            .header("set-cookie", "id=alice")],
    );
    stack.get(path, &[]).await;
    let other = stack.get(path, &[]).await;
    assert_eq!(other.cache(), "MISS");
    assert_eq!(stack.origin.count(path), 2);
}

async fn robustness_odd_responses_never_make_a_500(stack: &Stack) {
    // An interim response first.
    let path = "/robust/early-hints";
    stack.origin.script(
        path,
        [Reply::new(200, "final")
            .header("cache-control", "max-age=3600")
            .interim("HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n")],
    );
    let seen = stack.get(path, &[]).await;
    assert_eq!((seen.status.as_u16(), seen.text().as_str()), (200, "final"));
    // obs-text in an entity tag, and odd validators, stored and revalidated.
    for (path, etag) in [
        ("/robust/obs-text", "\"café\"".as_bytes()),
        ("/robust/unquoted", b"abc"),
        ("/robust/weak-odd", b"W/\"\""),
        ("/robust/garbage", b"\"a\"b\","),
    ] {
        stack.origin.script(
            path,
            [
                Reply::new(200, "v")
                    .header("cache-control", "max-age=0")
                    .header("etag", etag),
                Reply::new(304, "").header("etag", etag),
            ],
        );
        let first = stack.get(path, &[]).await;
        assert_eq!(first.status, StatusCode::OK, "{path}");
        assert_eq!(
            first.headers.get("etag").map(|v| v.as_bytes()),
            Some(etag),
            "{path}: the validator as the origin wrote it"
        );
        let second = stack.get(path, &[]).await;
        assert_eq!(second.status, StatusCode::OK, "{path}");
        assert_eq!(second.text(), "v", "{path}");
        let sent = stack.origin.received(path)[1].clone();
        assert_eq!(sent.header_bytes("if-none-match"), Some(etag), "{path}");
        let conditional = stack
            .client
            .get(stack.edge.url(path))
            .header(
                "if-none-match",
                reqwest::header::HeaderValue::from_bytes(etag).unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert!(conditional.status().as_u16() < 500, "{path}");
    }
    // obs-text that is not UTF-8: workerd turns it into U+FFFD before the Worker sees it (its
    // Headers API holds text), so it cannot reach the client as sent; the response still does.
    let path = "/robust/obs-text-latin1";
    stack.origin.script(
        path,
        [
            Reply::new(200, "v")
                .header("cache-control", "max-age=0")
                .header("etag", b"\"caf\xe9\""),
            Reply::new(304, "").header("etag", b"\"caf\xe9\""),
        ],
    );
    for _ in 0..2 {
        let seen = stack.get(path, &[]).await;
        assert_eq!((seen.status.as_u16(), seen.text().as_str()), (200, "v"));
        assert_eq!(
            seen.headers.get("etag").map(|v| v.as_bytes()),
            Some("\"caf\u{fffd}\"".as_bytes())
        );
    }
    // An origin that never answers: a 504 problem within the edge's timeout.
    let path = "/robust/silent";
    stack.origin.script(
        path,
        [Reply::new(200, "late").delay(Duration::from_secs(30))],
    );
    let started = std::time::Instant::now();
    let seen = stack.get(path, &[]).await;
    assert_eq!(seen.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(20));
    // HEAD first: the edge asks for the GET it stores.
    let path = "/robust/head-first";
    stack.origin.script(
        path,
        [Reply::new(200, "abc").header("cache-control", "max-age=3600")],
    );
    let head = stack.send("HEAD", path, &[]).await;
    assert_eq!((head.status.as_u16(), head.body.len()), (200, 0));
    assert_eq!(stack.origin.received(path)[0].method, "GET");
    let get = stack.get(path, &[]).await;
    assert_eq!((get.cache(), get.text().as_str()), ("HIT", "abc"));
}

type Case = for<'a> fn(&'a Stack) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), (|s| Box::pin($name(s))) as Case)),*]
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_is_a_conforming_shared_cache_in_front_of_any_origin() {
    let origin = ScriptedOrigin::start().await.unwrap();
    let edge = Edge::start(&origin.base, ORIGIN_TIMEOUT_MS).await.unwrap();
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let stack = Stack {
        origin,
        edge,
        client,
    };
    let cases = cases![
        rfc9111_3_every_cacheable_status_is_stored,
        rfc9111_4_2_2_heuristic_freshness_from_last_modified,
        rfc9111_4_1_responses_are_stored_per_variant,
        rfc9111_4_2_3_age_is_kept_and_counted,
        rfc9111_5_3_expires_and_rfc9110_5_6_7_dates,
        rfc9213_cdn_cache_control_overrides_cache_control,
        rfc9111_3_2_a_304_updates_the_stored_fields,
        rfc9111_3_1_qualified_private_and_no_cache_fields_are_not_stored,
        rfc9111_4_4_unsafe_requests_invalidate,
        rfc5861_3_stale_while_revalidate_answers_now_and_refreshes_after,
        rfc9110_14_ranges_from_any_stored_response,
        rfc9111_3_5_authorization_and_cookies,
        robustness_odd_responses_never_make_a_500,
    ];
    let mut failed = Vec::new();
    for (name, case) in cases {
        if let Err(panic) = AssertUnwindSafe(case(&stack)).catch_unwind().await {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!("{name}: {message}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}
