//! End to end through the edge Worker (workerd under `wrangler dev`) in front of a real
//! origin: what the edge stores, what it answers itself, what it never stores, and how it
//! behaves when the origin fails or a client misbehaves.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use timelapser_core::events::EventStreamParser;
use timelapser_tests::{Edge, Origin, ADMIN};

const MEDIA: &str = "/media/{folder}/{file}";

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", r.headers()))
        .to_str()
        .unwrap()
        .to_owned()
}

async fn stack() -> (Origin, Edge) {
    let origin = Origin::start().await.unwrap();
    let edge = Edge::start(&origin.base, 3000).await.unwrap();
    (origin, edge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_is_fetched_once_then_served_and_validated_by_the_edge() {
    let (origin, edge) = stack().await;
    let client = Client::new();
    let (camera, token) = origin.create_camera("Roof").await.unwrap();
    let image = origin.capture(camera, &token, 1).await.unwrap();
    let url = edge.url(image["thumbnail_url"].as_str().unwrap());
    let before = origin.requests(MEDIA, "GET", 200).await.unwrap();

    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "x-timelapser-cache"), "MISS");
    assert_eq!(
        header(&first, "cache-control"),
        "public, max-age=31536000, immutable, stale-if-error=86400"
    );
    let etag = header(&first, "etag");
    assert_eq!(
        etag,
        format!("\"{}\"", image["sha256"].as_str().unwrap()),
        "the strong tag survives the edge"
    );
    let bytes = first.bytes().await.unwrap();
    let second = client.get(&url).send().await.unwrap();
    assert_eq!(header(&second, "x-timelapser-cache"), "HIT");
    assert!(second.headers().contains_key("age"));
    assert_eq!(second.bytes().await.unwrap(), bytes);

    // 304 from the edge, for If-None-Match and If-Modified-Since.
    let last_modified = header(&client.head(&url).send().await.unwrap(), "last-modified");
    for (name, value) in [
        ("if-none-match", etag.as_str()),
        ("if-modified-since", last_modified.as_str()),
    ] {
        let r = client.get(&url).header(name, value).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{name}");
        assert_eq!(header(&r, "etag"), etag);
        assert_eq!(header(&r, "x-timelapser-cache"), "HIT");
        assert!(r.bytes().await.unwrap().is_empty());
    }
    // The origin served the file once, whatever the edge answered since.
    assert_eq!(
        origin.requests(MEDIA, "GET", 200).await.unwrap(),
        before + 1
    );
    assert_eq!(origin.requests(MEDIA, "GET", 304).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_on_media_is_neither_a_new_miss_nor_a_new_copy() {
    let (origin, edge) = stack().await;
    let client = Client::new();
    let (camera, token) = origin.create_camera("Roof").await.unwrap();
    let image = origin.capture(camera, &token, 8).await.unwrap();
    let url = edge.url(image["url"].as_str().unwrap());
    let before = origin.requests(MEDIA, "GET", 200).await.unwrap();

    let plain = client.get(&url).send().await.unwrap();
    assert_eq!(header(&plain, "x-timelapser-cache"), "MISS");
    let bytes = plain.bytes().await.unwrap();
    for query in ["?r=1", "?r=2", "?", "?r=1&cache=bust"] {
        let r = client.get(format!("{url}{query}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{query}");
        assert_eq!(header(&r, "x-timelapser-cache"), "HIT", "{query}");
        assert_eq!(r.bytes().await.unwrap(), bytes, "{query}");
    }
    // Ranges and validators on a query variant are answered from the same stored copy.
    let r = client
        .get(format!("{url}?r=3"))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "x-timelapser-cache"), "HIT");
    assert_eq!(r.bytes().await.unwrap(), bytes[..10]);
    let r = client
        .get(format!("{url}?r=4"))
        .header(
            "if-none-match",
            header(&client.head(&url).send().await.unwrap(), "etag"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // A first request with a query fills the copy that plain requests then hit.
    let other = origin.capture(camera, &token, 9).await.unwrap();
    let other_url = edge.url(other["thumbnail_url"].as_str().unwrap());
    let r = client.get(format!("{other_url}?v=1")).send().await.unwrap();
    assert_eq!(header(&r, "x-timelapser-cache"), "MISS");
    let thumbnail = r.bytes().await.unwrap();
    for variant in [other_url.clone(), format!("{other_url}?v=2")] {
        let r = client.get(&variant).send().await.unwrap();
        assert_eq!(header(&r, "x-timelapser-cache"), "HIT", "{variant}");
        assert_eq!(r.bytes().await.unwrap(), thumbnail);
    }

    assert_eq!(
        origin.requests(MEDIA, "GET", 200).await.unwrap(),
        before + 2,
        "one origin fetch per file, whatever the queries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_cost_the_origin_one_fetch() {
    let (origin, edge) = stack().await;
    let (camera, token) = origin.create_camera("Roof").await.unwrap();
    let image = origin.capture(camera, &token, 2).await.unwrap();
    let url = edge.url(image["url"].as_str().unwrap());
    let before = origin.requests(MEDIA, "GET", 200).await.unwrap();
    let client = Client::new();
    let all = futures::future::join_all((0..12).map(|_| client.get(&url).send())).await;
    for r in all {
        let r = r.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.bytes().await.unwrap().len() as u64,
            image["bytes"].as_u64().unwrap()
        );
    }
    assert_eq!(
        origin.requests(MEDIA, "GET", 200).await.unwrap(),
        before + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_and_if_range_are_answered_at_the_edge() {
    let (origin, edge) = stack().await;
    let (camera, token) = origin.create_camera("Roof").await.unwrap();
    let image = origin.capture(camera, &token, 3).await.unwrap();
    let url = edge.url(image["url"].as_str().unwrap());
    let client = Client::new();
    let whole = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let len = whole.len();
    let etag = format!("\"{}\"", image["sha256"].as_str().unwrap());
    let before = origin.requests(MEDIA, "GET", 206).await.unwrap();

    let r = client
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-range"), format!("bytes 10-19/{len}"));
    assert_eq!(header(&r, "x-timelapser-cache"), "HIT");
    assert_eq!(r.bytes().await.unwrap(), whole[10..20]);

    let r = client
        .get(&url)
        .header("range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), whole[len - 5..]);

    let r = client
        .get(&url)
        .header("range", format!("bytes={len}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), format!("bytes */{len}"));

    let r = client
        .get(&url)
        .header("range", "bytes=0-3")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    let r = client
        .get(&url)
        .header("range", "bytes=0-3")
        .header("if-range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), len);
    assert_eq!(
        origin.requests(MEDIA, "GET", 206).await.unwrap(),
        before,
        "no range reached the origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_authorized_responses_are_never_served_from_the_edge() {
    let (origin, edge) = stack().await;
    let client = Client::new();
    let before = origin.requests("/api/settings", "GET", 200).await.unwrap();
    for _ in 0..3 {
        let r = client.get(edge.url("/api/settings")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "cache-control"), "private, max-age=300");
        assert_eq!(
            header(&r, "x-timelapser-cache"),
            "MISS",
            "private responses are never stored"
        );
    }
    assert_eq!(
        origin.requests("/api/settings", "GET", 200).await.unwrap(),
        before + 3
    );
    // The operator's preferences: with credentials, from the origin (RFC 9111 §3.5: through
    // the cache, whose stored copies never answer it), `private`, so stored for nobody else.
    let r = client
        .get(edge.url("/api/preferences"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "x-timelapser-cache"), "MISS");
    assert!(header(&r, "cache-control").starts_with("private"));
    let r = client
        .get(edge.url("/api/preferences"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "another client gets nothing stored"
    );

    // A site's analytics cookie makes no public response anyone's: stored and served from
    // storage as without it. The console's session cookie: straight through, never from
    // storage, not even what is stored.
    let (camera, token) = origin.create_camera("Roof").await.unwrap();
    let image = origin.capture(camera, &token, 1).await.unwrap();
    let thumbnail = edge.url(image["thumbnail_url"].as_str().unwrap());
    let get = |url: String, cookie: &'static str| client.get(url).header("cookie", cookie).send();
    let analytics = "_ga=GA1.1.5; theme=dark";
    let r = get(thumbnail.clone(), analytics).await.unwrap();
    assert_eq!(header(&r, "x-timelapser-cache"), "MISS");
    let r = get(thumbnail.clone(), analytics).await.unwrap();
    assert_eq!(header(&r, "x-timelapser-cache"), "HIT");
    let r = get(edge.url("/api/cameras"), analytics).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = get(edge.url("/api/cameras"), analytics).await.unwrap();
    assert_eq!(header(&r, "x-timelapser-cache"), "REVALIDATED");
    for url in [thumbnail, edge.url("/api/cameras"), edge.url("/")] {
        let r = get(url.clone(), "_ga=GA1.1.5; tl_session=abc")
            .await
            .unwrap();
        assert_eq!(header(&r, "x-timelapser-cache"), "BYPASS", "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_is_revalidated_and_fresh_after_a_capture() {
    let (origin, edge) = stack().await;
    let client = Client::new();
    let (camera, token) = origin.create_camera("Roof").await.unwrap();
    let path = format!("/api/cameras/{camera}");
    let first = client.get(edge.url(&path)).send().await.unwrap();
    assert_eq!(header(&first, "x-timelapser-cache"), "MISS");
    let etag = header(&first, "etag");
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["image_count"], 0);
    // Stored, but no-cache: every later read is validated with the origin, which answers 304.
    let before_304 = origin
        .requests("/api/cameras/{id}", "GET", 304)
        .await
        .unwrap();
    let second = client.get(edge.url(&path)).send().await.unwrap();
    assert_eq!(header(&second, "x-timelapser-cache"), "REVALIDATED");
    assert_eq!(second.json::<Value>().await.unwrap(), body);
    assert_eq!(
        origin
            .requests("/api/cameras/{id}", "GET", 304)
            .await
            .unwrap(),
        before_304 + 1
    );
    // The client's own validator: 304 from the edge after the origin's 304.
    let r = client
        .get(edge.url(&path))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    // A capture changes the camera: the next read through the edge is the new one.
    origin.capture(camera, &token, 4).await.unwrap();
    let r = client
        .get(edge.url(&path))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_ne!(header(&r, "etag"), etag);
    let fresh: Value = r.json().await.unwrap();
    assert_eq!(fresh["image_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_through_the_edge_as_they_happen() {
    let (origin, edge) = stack().await;
    let (camera, token) = origin.create_camera("Roof").await.unwrap();
    let response = Client::new()
        .get(edge.url("/api/events?types=image_captured"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    assert_eq!(header(&response, "cache-control"), "no-cache, no-transform");
    assert_eq!(header(&response, "x-timelapser-cache"), "BYPASS");
    let mut stream = response.bytes_stream();
    // The retry line arrives before any event: nothing is buffered.
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("retry:"));
    let image = origin.capture(camera, &token, 5).await.unwrap();
    let sent = std::time::Instant::now();
    let mut parser = EventStreamParser::new();
    let event = loop {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("the event arrives through the edge within 5 s")
            .unwrap()
            .unwrap();
        if let Some(event) = parser.push(&chunk).into_iter().next() {
            break event;
        }
    };
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "streamed, not buffered: {:?}",
        sent.elapsed()
    );
    assert_eq!(event.event, "image_captured");
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["image"], image);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_pass_through_with_their_bodies() {
    let (origin, edge) = stack().await;
    let client = Client::new();
    let r = client
        .post(edge.url("/api/cameras"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "Via edge"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "x-timelapser-cache"), "BYPASS");
    let created: Value = r.json().await.unwrap();
    let id = created["camera"]["id"].as_i64().unwrap();
    let token = created["token"].as_str().unwrap();
    let frame = timelapser_tests::frame(6);
    let r = client
        .post(edge.url(&format!("/api/cameras/{id}/captures")))
        .bearer_auth(token)
        .header("content-type", "image/jpeg")
        .body(frame.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let image: Value = r.json().await.unwrap();
    assert_eq!(image["bytes"], frame.len());
    let stored = std::fs::read(origin.dir.path().join(format!(
        "media/images/{}.jpg",
        image["sha256"].as_str().unwrap()
    )))
    .unwrap();
    assert_eq!(stored, frame, "the body arrived whole");
    // An unauthorised write is answered by the origin, through the edge.
    let r = client
        .post(edge.url("/api/cameras"))
        .json(&serde_json::json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&r, "content-type"), "application/problem+json");
}

/// Sends `GET <target>` to `base` as written (no URL normalisation by the client) with the
/// admin token; returns the status and the whole response as text.
async fn raw_get(base: &str, target: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Read until the response is complete (by Content-Length or the last chunk): the server
    // may keep the connection open a while after it.
    let mut answer = Vec::new();
    let complete = |answer: &[u8]| {
        let text = String::from_utf8_lossy(answer).to_ascii_lowercase();
        let Some(end) = text.find("\r\n\r\n") else {
            return false;
        };
        let length = text[..end]
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        match length {
            Some(length) => answer.len() >= end + 4 + length,
            None => text.ends_with("0\r\n\r\n"),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while !complete(&answer) {
            match stream.read(&mut buf).await.unwrap() {
                0 => break,
                n => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the edge answers within 10 s");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    (status, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_endpoints_are_never_served_through_the_edge() {
    let (origin, edge) = stack().await;
    let client = Client::new();
    let stats_before = origin
        .requests("/api/cache/stats", "GET", 200)
        .await
        .unwrap();
    // Reading the counters is itself one authorised /metrics request to the origin, counted
    // once it is answered: this read is the one the count below allows for.
    let metrics_before = origin.requests("/metrics", "GET", 200).await.unwrap();
    for path in ["/metrics", "/api/cache/stats", "/metrics?format=text"] {
        for token in [None, Some(ADMIN)] {
            let mut request = client.get(edge.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path} {token:?}");
            assert_eq!(header(&r, "content-type"), "application/problem+json");
            assert_eq!(header(&r, "cache-control"), "no-store");
            assert_eq!(header(&r, "x-timelapser-cache"), "BYPASS");
            let problem: Value = r.json().await.unwrap();
            assert_eq!(problem["status"], 404);
        }
        let r = client
            .head(edge.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "HEAD {path}");
    }
    // Other spellings reach nothing either: dot segments are resolved before the edge sees
    // the path, so the edge refuses those itself; the origin routes only the exact path, so it
    // has nothing at the others.
    for (target, refused_by_edge) in [
        ("/api/../metrics", true),
        ("/api/./cache/stats", true),
        ("/metrics/", false),
        ("//metrics", false),
        ("/%6Detrics", false),
        ("/METRICS", false),
    ] {
        let (status, answer) = raw_get(&edge.base, target).await;
        assert_eq!(status, 404, "{target}: {answer}");
        assert!(
            !answer.contains("http_requests_total") && !answer.contains("\"hits\""),
            "{target}: {answer}"
        );
        assert_eq!(
            answer.contains("is not served through the edge"),
            refused_by_edge,
            "{target}: {answer}"
        );
    }
    assert_eq!(
        origin.requests("/metrics", "GET", 200).await.unwrap(),
        metrics_before + 1,
        "no /metrics request but the test's own reached the origin"
    );
    assert_eq!(
        origin
            .requests("/api/cache/stats", "GET", 200)
            .await
            .unwrap(),
        stats_before
    );
    for (route, status) in [("/metrics", 401), ("/api/cache/stats", 401)] {
        assert_eq!(
            origin.requests(route, "GET", status).await.unwrap(),
            0,
            "{route} {status}"
        );
    }
    // Health passes through: it is how anyone (and this harness) knows the edge is up.
    let r = client.get(edge.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_origin_is_a_clear_problem() {
    let (mut origin, edge) = stack().await;
    origin.stop().await.unwrap();
    let r = Client::new()
        .get(edge.url("/api/cameras"))
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == StatusCode::BAD_GATEWAY || r.status() == StatusCode::GATEWAY_TIMEOUT,
        "{}",
        r.status()
    );
    assert_eq!(header(&r, "content-type"), "application/problem+json");
    let problem: Value = r.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("origin"));
}

/// The requests the origin refused as no media or no route at all (400 or 404).
async fn media_refusals(origin: &Origin) -> u64 {
    let mut refused = 0;
    for route in ["/media/{folder}/{file}", "unmatched"] {
        for status in [400, 404] {
            refused += origin.requests(route, "GET", status).await.unwrap();
        }
    }
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_answers_not_errors() {
    let (origin, edge) = stack().await;
    let client = Client::new();
    let (camera, token) = origin.create_camera("Roof").await.unwrap();
    let image = origin.capture(camera, &token, 7).await.unwrap();
    let url = edge.url(image["url"].as_str().unwrap());
    for (name, value) in [
        ("range", "bytes=abc"),
        ("range", "bytes=5-1"),
        ("range", "items=0-1"),
        ("range", "bytes=0-1,3-4,6-7"),
        ("if-none-match", "garbage"),
        ("if-none-match", "\"unterminated"),
        ("if-modified-since", "yesterday"),
        ("if-range", "W/\"weak\""),
    ] {
        let r = client.get(&url).header(name, value).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{name}: {value}");
    }
    for path in [
        "/media/images/../../etc/passwd",
        "/media/images/..%2F..%2Fetc%2Fpasswd",
        "/media/images/%00.jpg",
        "/media/nothing",
        "/api/cameras/abc",
    ] {
        let r = client.get(edge.url(path)).send().await.unwrap();
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
    }
    // Media paths that name no media file are the edge's own 404s: none reaches the origin.
    let before = media_refusals(&origin).await;
    for path in [
        "/media/nothing",
        "/media/images/x.jpg",
        "/media/images/..%2F..%2Fetc%2Fpasswd",
        "/media/videos/0000000000000000000000000000000000000000000000000000000000000000.jpg",
    ] {
        let r = client.get(edge.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    assert_eq!(
        media_refusals(&origin).await,
        before,
        "no request reached the origin"
    );
    // A huge header is refused by someone with a 4xx, never a 5xx.
    let r = client
        .get(edge.url("/api/cameras"))
        .header("x-huge", "a".repeat(200_000))
        .send()
        .await;
    if let Ok(r) = r {
        assert!(!r.status().is_server_error(), "{}", r.status());
    }
    // The edge still serves afterwards.
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_served_stale_within_stale_if_error_when_the_origin_is_down() {
    let (mut origin, edge) = stack().await;
    origin.create_camera("Roof").await.unwrap();
    let client = Client::new();
    let first = client.get(edge.url("/")).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        header(&first, "cache-control"),
        "max-age=0, stale-if-error=86400"
    );
    assert_eq!(header(&first, "x-timelapser-cache"), "MISS");
    let html = first.text().await.unwrap();
    assert!(html.contains("Roof"));
    let again = client.get(edge.url("/")).send().await.unwrap();
    assert_eq!(header(&again, "x-timelapser-cache"), "REVALIDATED");
    // The origin goes away: the stored page is served, marked stale.
    origin.stop().await.unwrap();
    let stale = client.get(edge.url("/")).send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(header(&stale, "x-timelapser-cache"), "STALE");
    assert_eq!(stale.text().await.unwrap(), html);
    // JSON says no-cache: never served stale, a clear problem instead.
    let json = client.get(edge.url("/api/cameras")).send().await.unwrap();
    assert!(json.status().is_server_error());
    assert_eq!(header(&json, "content-type"), "application/problem+json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_seeking_a_video_gets_ranges_from_the_edge() {
    let (origin, edge) = stack().await;
    let client = Client::new();
    let (camera, token) = origin.create_camera("Roof").await.unwrap();
    let timelapse: Value = client
        .post(origin.url(&format!("/api/cameras/{camera}/timelapses")))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "Spring"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for seed in 0..8 {
        origin.capture(camera, &token, 900 + seed).await.unwrap();
    }
    let queued: Value = client
        .post(origin.url(&format!("/api/timelapses/{}/videos", timelapse["id"])))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"fps": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let video = loop {
        let v: Value = client
            .get(origin.url(&format!("/api/videos/{}", queued["id"])))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match v["status"].as_str().unwrap() {
            "ready" => break v,
            "failed" => panic!("render failed: {v}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let url = edge.url(video["url"].as_str().unwrap());
    let len = video["bytes"].as_u64().unwrap();
    // A video element's first request, then a seek.
    let r = client
        .get(&url)
        .header("range", "bytes=0-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-type"), "video/mp4");
    assert_eq!(
        header(&r, "content-range"),
        format!("bytes 0-{}/{len}", len - 1)
    );
    let whole = r.bytes().await.unwrap();
    let r = client
        .get(&url)
        .header("range", format!("bytes={}-{}", len / 2, len / 2 + 99))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "x-timelapser-cache"), "HIT");
    let part = r.bytes().await.unwrap();
    assert_eq!(part, whole[(len / 2) as usize..(len / 2 + 100) as usize]);
}

/// The purge token of the privacy test's stack.
const PURGE_TOKEN: &str = "e2e-purge-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_turned_private_is_purged_and_never_stored_again() {
    use timelapser_core::purge;
    // The origin must know the edge's URL to purge it: the edge's port first.
    let port = timelapser_support::free_port().unwrap();
    let edge_base = format!("http://127.0.0.1:{port}");
    let target = edge_base.clone();
    let origin = Origin::start_with(|options| {
        options.edge_purge = Some(timelapser_origin::state::EdgePurgeTarget {
            url: target,
            token: PURGE_TOKEN.to_owned(),
        });
    })
    .await
    .unwrap();
    let hash = purge::token_sha256(PURGE_TOKEN);
    let edge = Edge::start_on(&origin.base, 3000, port, &[("PURGE_TOKEN_SHA256", &hash)])
        .await
        .unwrap();
    let client = Client::new();
    let (camera, token) = origin.create_camera("Bedroom").await.unwrap();
    let image = origin.capture(camera, &token, 1).await.unwrap();
    let media = [
        edge.url(image["url"].as_str().unwrap()),
        edge.url(image["thumbnail_url"].as_str().unwrap()),
    ];
    // Public: stored by the edge and served from storage.
    for url in &media {
        client.get(url).send().await.unwrap();
        let r = client.get(url).send().await.unwrap();
        assert_eq!(header(&r, "x-timelapser-cache"), "HIT", "{url}");
    }
    let page = edge.url(&format!("/cameras/{camera}"));
    assert_eq!(
        client.get(&page).send().await.unwrap().status(),
        StatusCode::OK
    );

    // Private, through the edge (a write passes through).
    let r = client
        .patch(edge.url(&format!("/api/cameras/{camera}")))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "public": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The stored copies are purged: the public gets 404s from the origin, never the copy.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for url in &media {
        loop {
            let r = client.get(url).send().await.unwrap();
            if r.status() == StatusCode::NOT_FOUND {
                assert_ne!(header(&r, "x-timelapser-cache"), "HIT");
                break;
            }
            assert_eq!(header(&r, "x-timelapser-cache"), "HIT", "{url}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "{url} is still served from the edge's storage"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        client.get(&page).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let list: Value = client
        .get(edge.url("/api/cameras"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");

    // Signed in, straight through and `private`; nothing of it is stored on the way.
    for url in &media {
        let r = client.get(url).bearer_auth(ADMIN).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "x-timelapser-cache"), "BYPASS");
        assert_eq!(
            header(&r, "cache-control"),
            "private, max-age=31536000, immutable"
        );
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{url}");
    }
    // New frames of the private camera: never stored either.
    let later = origin.capture(camera, &token, 2).await.unwrap();
    let url = edge.url(later["thumbnail_url"].as_str().unwrap());
    for _ in 0..2 {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    // Only the origin's token purges; purging is a POST.
    let purge_url = edge.url(purge::PATH);
    let body = serde_json::json!({ "paths": ["/"] });
    for token in [None, Some("not-the-purge-token-0000")] {
        let mut request = client.post(&purge_url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&r, "content-type"), "application/problem+json");
    }
    let r = client.get(&purge_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = client
        .post(&purge_url)
        .bearer_auth(PURGE_TOKEN)
        .json(&serde_json::json!({ "paths": ["https://elsewhere.example/"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_without_a_purge_token_takes_no_purges() {
    let (_origin, edge) = stack().await;
    let r = Client::new()
        .post(edge.url(timelapser_core::purge::PATH))
        .bearer_auth("anything-at-all-0000")
        .json(&serde_json::json!({ "paths": ["/"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
