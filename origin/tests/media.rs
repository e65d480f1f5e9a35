//! Media: immutable caching, conditional requests and ranges, decided by core, over a real
//! socket; and requests that try to leave the media directory.

mod common;

use common::{header, problem, TestOrigin};
use reqwest::StatusCode;
use serde_json::Value;

async fn thumbnail(origin: &TestOrigin) -> (String, String, Vec<u8>) {
    let (id, token) = origin.create_camera("Roof").await;
    let image: Value = origin
        .capture(id, &token, common::jpeg(1280, 720, 11))
        .await
        .json()
        .await
        .unwrap();
    let sha = image["sha256"].as_str().unwrap().to_owned();
    let url = image["thumbnail_url"].as_str().unwrap().to_owned();
    let bytes = std::fs::read(
        origin
            .dir
            .path()
            .join(format!("media/thumbnails/{sha}.jpg")),
    )
    .unwrap();
    (url, sha, bytes)
}

on_both!(media_is_immutable_with_a_content_hash_tag, |origin| {
    let (url, sha, bytes) = thumbnail(origin).await;
    let r = origin.get(&url).await;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(
        header(&h, "cache-control"),
        "public, max-age=31536000, immutable, stale-if-error=86400"
    );
    assert_eq!(header(&h, "etag"), format!("\"{sha}\""));
    assert_eq!(header(&h, "content-type"), "image/jpeg");
    assert_eq!(header(&h, "accept-ranges"), "bytes");
    assert_eq!(header(&h, "content-length"), bytes.len().to_string());
    assert!(httpdate::parse_http_date(header(&h, "last-modified")).is_ok());
    assert_eq!(r.bytes().await.unwrap(), bytes);

    let head = origin.client.head(origin.url(&url)).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(head.headers(), "etag"), format!("\"{sha}\""));
    assert_eq!(
        header(head.headers(), "content-length"),
        bytes.len().to_string()
    );
    assert!(head.bytes().await.unwrap().is_empty());

    let original = origin.get(&format!("/media/images/{sha}.jpg")).await;
    assert_eq!(original.status(), StatusCode::OK);
    assert_eq!(header(original.headers(), "etag"), format!("\"{sha}\""));
});

on_both!(media_conditional_requests, |origin| {
    let (url, sha, _) = thumbnail(origin).await;
    let etag = format!("\"{sha}\"");
    let last_modified = header(origin.get(&url).await.headers(), "last-modified").to_owned();
    let cases: Vec<(Vec<(&str, String)>, StatusCode)> = vec![
        (
            vec![("if-none-match", etag.clone())],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-none-match", format!("W/{etag}"))],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-none-match", format!("\"other\", {etag}"))],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-none-match", "*".into())],
            StatusCode::NOT_MODIFIED,
        ),
        (vec![("if-none-match", "\"other\"".into())], StatusCode::OK),
        (vec![("if-none-match", "garbage".into())], StatusCode::OK),
        (
            vec![("if-modified-since", last_modified.clone())],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT".into())],
            StatusCode::OK,
        ),
        (
            vec![("if-modified-since", "not a date".into())],
            StatusCode::OK,
        ),
        // If-None-Match wins over If-Modified-Since.
        (
            vec![
                ("if-none-match", "\"other\"".into()),
                ("if-modified-since", last_modified.clone()),
            ],
            StatusCode::OK,
        ),
        (vec![("if-match", etag.clone())], StatusCode::OK),
        (
            vec![("if-match", "\"other\"".into())],
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            vec![("if-match", format!("W/{etag}"))],
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            vec![(
                "if-unmodified-since",
                "Thu, 01 Jan 1970 00:00:00 GMT".into(),
            )],
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            vec![("if-unmodified-since", last_modified.clone())],
            StatusCode::OK,
        ),
    ];
    for (headers, expected) in cases {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = origin.get_with(&url, &pairs).await;
        assert_eq!(r.status(), expected, "{headers:?}");
        if expected == StatusCode::NOT_MODIFIED {
            // A 304 carries what the 200 would have, and no body.
            assert_eq!(header(r.headers(), "etag"), etag);
            assert_eq!(
                header(r.headers(), "cache-control"),
                "public, max-age=31536000, immutable, stale-if-error=86400"
            );
            assert_eq!(header(r.headers(), "last-modified"), last_modified);
            assert!(r.bytes().await.unwrap().is_empty());
        } else if expected == StatusCode::PRECONDITION_FAILED {
            problem(r, expected).await;
        }
    }
});

on_both!(media_ranges, |origin| {
    let (url, sha, bytes) = thumbnail(origin).await;
    let len = bytes.len();
    let etag = format!("\"{sha}\"");
    let r = origin.get_with(&url, &[("range", "bytes=0-99")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(r.headers(), "content-range"),
        format!("bytes 0-99/{len}")
    );
    assert_eq!(header(r.headers(), "content-length"), "100");
    assert_eq!(header(r.headers(), "etag"), etag);
    assert_eq!(r.bytes().await.unwrap(), bytes[..100]);

    let r = origin.get_with(&url, &[("range", "bytes=-10")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), bytes[len - 10..]);

    let r = origin
        .get_with(&url, &[("range", &format!("bytes={}-", len - 5))])
        .await;
    assert_eq!(
        header(r.headers(), "content-range"),
        format!("bytes {}-{}/{len}", len - 5, len - 1)
    );

    let r = origin
        .get_with(&url, &[("range", &format!("bytes={len}-"))])
        .await;
    assert_eq!(
        header(r.headers(), "content-range"),
        format!("bytes */{len}")
    );
    problem(r, StatusCode::RANGE_NOT_SATISFIABLE).await;

    for ignored in ["bytes=5-1", "bytes=abc", "pages=0-1", "bytes=0-1,5-6"] {
        let r = origin.get_with(&url, &[("range", ignored)]).await;
        assert_eq!(r.status(), StatusCode::OK, "{ignored}");
        assert_eq!(r.bytes().await.unwrap().len(), len);
    }
    // If-Range: the current tag gives the part, another tag the whole.
    let r = origin
        .get_with(&url, &[("range", "bytes=0-9"), ("if-range", &etag)])
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    let r = origin
        .get_with(&url, &[("range", "bytes=0-9"), ("if-range", "\"old\"")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), len);
    let last_modified = header(origin.get(&url).await.headers(), "last-modified").to_owned();
    let r = origin
        .get_with(
            &url,
            &[("range", "bytes=0-9"), ("if-range", &last_modified)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    // HEAD ignores Range.
    let r = origin
        .client
        .head(origin.url(&url))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
});

on_both!(hostile_media_paths_never_reach_the_file_system, |origin| {
    let (_, sha, _) = thumbnail(origin).await;
    std::fs::write(origin.dir.path().join("secret.txt"), "TOP-SECRET-CONTENT").unwrap();
    for path in [
        "/media/images/../secret.txt".to_owned(),
        "/media/images/..%2F..%2Fsecret.txt".to_owned(),
        "/media/images/%2e%2e%2fsecret.txt".to_owned(),
        format!("/media/images/{sha}.png"),
        format!("/media/images/{}.jpg", sha.to_uppercase()),
        format!("/media/images/{sha}.jpg.bak"),
        format!("/media/tmp/{sha}.jpg"),
        format!("/media/thumbnails/{}.jpg", &sha[..63]),
        "/media/images/".to_owned(),
        "/media/videos/0000000000000000000000000000000000000000000000000000000000000000.mp4"
            .to_owned(),
        format!("/media/images/{sha}.jpg%00.txt"),
        "/media/images/../../secret.txt".to_owned(),
        "/media/../secret.txt".to_owned(),
        format!("/media/images/./{sha}.jpg"),
    ] {
        // Raw bytes on a socket: an HTTP client would normalise `/../` away before sending.
        let request = format!("GET {path} HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n");
        let response = common::raw_request(origin.addr, request.as_bytes()).await;
        assert!(
            response.status == 404 || response.status == 400,
            "{path}: {}",
            response.head
        );
        response.assert_problem(response.status);
        assert!(
            !String::from_utf8_lossy(&response.body).contains("TOP-SECRET-CONTENT"),
            "{path}"
        );
    }
    // A NUL in the path never reaches the file system either: the head is refused.
    let response = common::raw_request(
        origin.addr,
        format!("GET /media/images/{sha}.jpg\0.txt HTTP/1.1\r\nHost: o\r\n\r\n").as_bytes(),
    )
    .await;
    response.assert_problem(400);
});
