//! Hardening: each test reproduces what an attacker or a busy site did to the origin, and
//! holds it to what it must do instead.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::{problem, read_response, Backend, SseClient, TestOrigin, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use timelapser_core::events::Event;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

/// Distinct small JPEGs (distinct bytes, so none is a duplicate of another).
fn distinct_frames(count: u32, seed: u32) -> Vec<Vec<u8>> {
    let frames: Vec<Vec<u8>> = (0..count).map(|i| common::jpeg(96, 72, seed + i)).collect();
    let distinct: HashSet<&Vec<u8>> = frames.iter().collect();
    assert_eq!(distinct.len(), frames.len(), "the frames differ");
    frames
}

// PostgreSQL stalled above 16 concurrent writes (writers held pool connections while queueing
// for the event-log lock, starving the committer), and answered 500 for captures it stored.
on_both!(
    two_hundred_concurrent_uploads_all_succeed_in_event_order,
    |origin| {
        let (id, token) = origin.create_camera("Busy").await;
        let mut client =
            SseClient::connect(&origin.url("/api/events?types=image_captured"), None).await;
        let frames = distinct_frames(200, 10_000);
        let uploads: Vec<_> = frames
            .into_iter()
            .map(|jpeg| {
                let (client, base, token) =
                    (origin.client.clone(), origin.base.clone(), token.clone());
                tokio::spawn(async move {
                    common::capture(&client, &base, id, &token, jpeg)
                        .await
                        .status()
                })
            })
            .collect();
        for upload in uploads {
            assert_eq!(upload.await.unwrap(), StatusCode::CREATED);
        }
        let camera: Value = origin
            .get(&format!("/api/cameras/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(camera["image_count"], 200);
        // Every event reaches a client once, in the log's (increasing) id order.
        let logged: Vec<String> = origin
            .events_after(0)
            .await
            .into_iter()
            .filter(|e| e.1 == "image_captured")
            .map(|e| e.0.to_string())
            .collect();
        assert_eq!(logged.len(), 200);
        let mut received = Vec::new();
        while received.len() < 200 {
            let event = client
                .next_event(WAIT)
                .await
                .unwrap_or_else(|| panic!("{} of 200 events arrived", received.len()));
            received.push(event.last_event_id);
        }
        assert_eq!(received, logged);
    }
);

// Bodies were read before authorisation, with no time limit: 100 connections each sending
// most of a declared 2,000,000 bytes without a token held 200 MB until they left.
on_both!(writes_are_refused_from_the_head_before_any_body, |origin| {
    let (_, camera_token) = origin.create_camera("Roof").await;
    // Without a token: 401 as soon as the head is in, while the body is still owed.
    let mut socket = TcpStream::connect(origin.addr).await.unwrap();
    socket
        .write_all(
            b"POST /api/cameras HTTP/1.1\r\nHost: o\r\nContent-Type: application/json\r\n\
              Content-Length: 2000000\r\n\r\n",
        )
        .await
        .unwrap();
    socket.write_all(&[b' '; 1000]).await.unwrap();
    let response = read_response(&mut socket).await;
    response.assert_problem(401);
    assert!(response.header("www-authenticate").is_some());
    // Malformed JSON without a token is 401 too, not a complaint about the JSON.
    let r = origin
        .client
        .post(origin.url("/api/cameras"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED).await;
    // A camera's token on an admin route: authenticated, not allowed.
    let r = origin
        .client
        .post(origin.url("/api/cameras"))
        .bearer_auth(&camera_token)
        .json(&json!({"name": "Mine"}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::FORBIDDEN).await;
    // The admin, declaring more than a JSON body may be: 413 from the head alone.
    let mut socket = TcpStream::connect(origin.addr).await.unwrap();
    let head = format!(
        "POST /api/cameras HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    read_response(&mut socket).await.assert_problem(413);
    let cameras: Value = origin.get("/api/cameras").await.json().await.unwrap();
    assert_eq!(cameras.as_array().unwrap().len(), 1, "nothing was created");
});

// A request refused from its head left its small body unread, and hyper closed the
// connection after a response that did not say so: the client's next request on it failed.
on_both!(a_refused_upload_leaves_its_connection_usable, |origin| {
    let (id, _) = origin.create_camera("Roof").await;
    let mut socket = TcpStream::connect(origin.addr).await.unwrap();
    let body = common::jpeg(320, 240, 9);
    for _ in 0..3 {
        let head = format!(
            "POST /api/cameras/{id}/captures HTTP/1.1\r\nHost: o\r\n\
             Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&body).await.unwrap();
        let refused = read_response(&mut socket).await;
        refused.assert_problem(401);
        assert_eq!(refused.header("connection"), None, "{}", refused.head);
        socket
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: o\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_response(&mut socket).await.status, 200);
    }
    // A large body is not read: the response says the connection closes.
    socket
        .write_all(
            format!(
                "POST /api/cameras/{id}/captures HTTP/1.1\r\nHost: o\r\n\
                 Content-Type: image/jpeg\r\nContent-Length: 2000000\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let refused = read_response(&mut socket).await;
    refused.assert_problem(401);
    assert_eq!(refused.header("connection").as_deref(), Some("close"));
});

#[tokio::test]
async fn a_request_that_stalls_mid_body_gets_408() {
    let origin = TestOrigin::start_with(Backend::Sqlite, |o| {
        o.request_timeout = Duration::from_secs(1);
    })
    .await;
    let (id, token) = origin.create_camera("Roof").await;
    let mut socket = TcpStream::connect(origin.addr).await.unwrap();
    let head = format!(
        "POST /api/cameras/{id}/captures HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: 500000\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&[0xFF; 1000]).await.unwrap();
    let response = read_response(&mut socket).await;
    response.assert_problem(408);
    assert!(origin.media_files("images").is_empty());
    assert!(origin.temp_files().is_empty());
    origin.finish().await;
}

// SIGTERM with clients that never read (or a stalled upload) exited only when they left.
mod shutdown {
    use super::*;

    // Shutdown takes the origin by value, so this test owns it (on_both lends it).
    async fn run(backend: Backend) {
        let origin = TestOrigin::start_with(backend, |o| {
            o.shutdown_grace = Duration::from_secs(1);
        })
        .await;
        let (id, token) = origin.create_camera("Roof").await;
        let open = origin.metric("http_connections_open");
        // An upload stalled mid-body (the request deadline is a minute away)...
        let mut stalled = TcpStream::connect(origin.addr).await.unwrap();
        let head = format!(
            "POST /api/cameras/{id}/captures HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: image/jpeg\r\nContent-Length: 500000\r\n\r\n"
        );
        stalled.write_all(head.as_bytes()).await.unwrap();
        stalled.write_all(&[0xFF; 1000]).await.unwrap();
        // ...and an event-stream client that never reads.
        let streams = origin.state().bus.receiver_count();
        let mut reader = TcpStream::connect(origin.addr).await.unwrap();
        reader
            .write_all(b"GET /api/events HTTP/1.1\r\nHost: o\r\n\r\n")
            .await
            .unwrap();
        origin.wait_for_streams(streams + 1).await;
        origin
            .wait_for_gauge("http_connections_open", open + 2.0)
            .await;
        tokio::time::timeout(WAIT, origin.finish())
            .await
            .expect("shutdown closes what is left after its grace period");
        drop((stalled, reader));
    }

    #[tokio::test]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

// DELETE of camera A while camera B uploaded bytes A had: B got 201 and its files 404 forever.
on_both!(
    a_delete_racing_an_upload_of_the_same_bytes_never_leaves_a_row_without_its_file,
    |origin| {
        for trial in 0..15 {
            let (a, token_a) = origin.create_camera("A").await;
            let (b, token_b) = origin.create_camera("B").await;
            let jpeg = common::jpeg(96, 72, 50_000 + trial);
            let r = common::capture(&origin.client, &origin.base, a, &token_a, jpeg.clone()).await;
            assert_eq!(r.status(), StatusCode::CREATED);
            let delete = origin
                .client
                .delete(origin.url(&format!("/api/cameras/{a}")))
                .bearer_auth(ADMIN)
                .send();
            let capture = common::capture(&origin.client, &origin.base, b, &token_b, jpeg.clone());
            let (deleted, captured) = tokio::join!(delete, capture);
            assert_eq!(deleted.unwrap().status(), StatusCode::NO_CONTENT);
            assert_eq!(captured.status(), StatusCode::CREATED, "trial {trial}");
            let image: Value = captured.json().await.unwrap();
            for key in ["url", "thumbnail_url"] {
                let path = image[key].as_str().unwrap();
                assert_eq!(
                    origin.get(path).await.status(),
                    StatusCode::OK,
                    "trial {trial}: {path}"
                );
            }
            // Sending it again answers the existing image, whose files are there.
            let again = common::capture(&origin.client, &origin.base, b, &token_b, jpeg).await;
            assert_eq!(again.status(), StatusCode::OK);
            let path = image["url"].as_str().unwrap();
            assert_eq!(origin.get(path).await.status(), StatusCode::OK);
            let r = origin
                .client
                .delete(origin.url(&format!("/api/cameras/{b}")))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
            // The camera is gone at once (its media with it, for readers); with the last row
            // gone, so are the files, removed in the background.
            assert_eq!(origin.get(path).await.status(), StatusCode::NOT_FOUND);
            let file = format!("{}.jpg", image["sha256"].as_str().unwrap());
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while origin.media_files("images").contains(&file) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "trial {trial}: {file} still on disk after 20 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
);

// 200 clients that never read held ~1 MB of kernel send buffer each, forever.
on_both!(
    clients_that_never_read_are_dropped,
    |options| {
        options.sse_write_timeout = Duration::from_secs(1);
    },
    |origin| {
        let streams = origin.state().bus.receiver_count();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = socket.connect(origin.addr).await.unwrap();
        client
            .write_all(b"GET /api/events HTTP/1.1\r\nHost: o\r\n\r\n")
            .await
            .unwrap();
        origin.wait_for_streams(streams + 1).await;
        let big = "x".repeat(4000);
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut sent = 0;
        while origin.metric("sse_clients_dropped_total") < 1.0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the client that never reads was not dropped after {sent} events"
            );
            origin
                .state()
                .events
                .append(Event::Resync {
                    reason: format!("{sent} {big}"),
                })
                .await
                .unwrap();
            sent += 1;
        }
        // Its stream is gone from the bus; it resumes with Last-Event-ID when it returns.
        origin.wait_for_streams(streams).await;
        assert_eq!(origin.state().bus.receiver_count(), streams);
        drop(client);
    }
);

// A 63 KB camera_id filter cost ~218 KB per connection.
on_both!(stream_filters_are_bounded, |origin| {
    let many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let r = origin
        .get(&format!("/api/events?camera_id={}", many.join(",")))
        .await;
    let body = problem(r, StatusCode::BAD_REQUEST).await;
    assert!(body["detail"].as_str().unwrap().contains("at most 100"));
    let long = format!("/api/events?camera_id={}", "1,".repeat(1500));
    problem(origin.get(&long).await, StatusCode::BAD_REQUEST).await;
    // A hundred is fine.
    let mut client = SseClient::connect(
        &origin.url(&format!("/api/events?camera_id={}", many[..100].join(","))),
        None,
    )
    .await;
    let (id, _) = origin.create_camera("Roof").await;
    assert!(id <= 100);
    client.until("camera_created", WAIT).await;
});

// `Last-Event-ID: 1` with 78k retained events streamed 48 MB to anyone who asked.
on_both!(
    resumes_beyond_the_replay_bound_resync,
    |options| {
        options.sse_max_replay = 5;
    },
    |origin| {
        for n in 0..10 {
            origin.create_camera(&format!("C{n}")).await;
        }
        // The public stream's ids: its own numbering.
        let (first, newest) = (1, origin.public_newest().await);
        // Further behind than the bound: resync, not the log.
        let mut client =
            SseClient::connect(&origin.url("/api/events"), Some(&first.to_string())).await;
        let resync = client.next_event(WAIT).await.unwrap();
        assert_eq!(resync.event, "resync");
        assert_eq!(resync.last_event_id, newest.to_string());
        // Within it: the events, replayed.
        let mut client =
            SseClient::connect(&origin.url("/api/events"), Some(&(newest - 3).to_string())).await;
        let mut replayed = Vec::new();
        for _ in 0..3 {
            replayed.push(client.next_event(WAIT).await.unwrap().last_event_id);
        }
        let expected: Vec<String> = (newest - 2..=newest).map(|i| i.to_string()).collect();
        assert_eq!(replayed, expected);
    }
);

// `Capture-Time: 9999-12-31T23:59:59Z` was accepted, and that frame stayed "latest" forever.
on_both!(capture_times_far_from_the_clock_are_refused, |origin| {
    let (id, token) = origin.create_camera("Roof").await;
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    for time in [
        "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        future.as_str(),
    ] {
        let r = origin
            .client
            .post(origin.url(&format!("/api/cameras/{id}/captures")))
            .bearer_auth(&token)
            .header("content-type", "image/jpeg")
            .header("capture-time", time)
            .body(common::jpeg(96, 72, 7))
            .send()
            .await
            .unwrap();
        let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            body["detail"].as_str().unwrap().contains("window"),
            "{time}"
        );
    }
    let camera: Value = origin
        .get(&format!("/api/cameras/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(camera["image_count"], 0);
    assert!(origin.media_files("images").is_empty());
    assert!(origin.media_files("thumbnails").is_empty());
});

// Files left by a kill -9 during an upload (moved into place, row never committed) stayed.
mod orphans {
    use super::*;

    async fn run(backend: Backend) {
        let origin = TestOrigin::start(backend).await;
        let (id, token) = origin.create_camera("Roof").await;
        let kept: Value = common::capture(
            &origin.client,
            &origin.base,
            id,
            &token,
            common::jpeg(96, 72, 1),
        )
        .await
        .json()
        .await
        .unwrap();
        let orphan = "ab".repeat(32);
        let media = origin.dir.path().join("media");
        for folder in ["images", "thumbnails"] {
            std::fs::write(
                media.join(folder).join(format!("{orphan}.jpg")),
                b"left behind",
            )
            .unwrap();
        }
        std::fs::write(
            media.join("videos").join(format!("{orphan}.mp4")),
            b"left behind",
        )
        .unwrap();
        let origin = origin.restart().await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left: Vec<String> = ["images", "thumbnails", "videos"]
                .iter()
                .flat_map(|f| origin.media_files(f))
                .filter(|name| name.starts_with(&orphan))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "orphans still there after 20 s: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // What a row refers to stays.
        for key in ["url", "thumbnail_url"] {
            let path = kept[key].as_str().unwrap();
            assert_eq!(origin.get(path).await.status(), StatusCode::OK, "{path}");
        }
        origin.finish().await;
    }

    #[tokio::test]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

// At the file-descriptor limit requests failed and the log flooded with "accept failed".
#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_one() {
    let origin = TestOrigin::start_with(Backend::Sqlite, |o| o.max_connections = 2).await;
    let first = TcpStream::connect(origin.addr).await.unwrap();
    let second = TcpStream::connect(origin.addr).await.unwrap();
    origin.wait_for_gauge("http_connections_open", 2.0).await;
    // The third connection waits in the backlog; its request is answered once one closes.
    let mut third = TcpStream::connect(origin.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while origin.metric("connection_limit_waits_total") < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cap was never reached"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(origin.metric("http_connections_open"), 2.0);
    drop(first);
    let response = read_response(&mut third).await;
    assert_eq!(response.status, 200);
    drop(second);
    origin.finish().await;
}

// A wrong PostgreSQL port failed after 10 s with "pool timed out".
#[tokio::test]
async fn a_database_that_refuses_says_so() {
    let port = timelapser_support::free_port().unwrap();
    let error =
        timelapser_origin::db::Db::connect(&format!("postgres://postgres@127.0.0.1:{port}/test"))
            .await
            .err()
            .expect("nothing listens there");
    let message = format!("{error:#}").to_lowercase();
    assert!(message.contains("refused"), "{message}");
    assert!(!message.contains("timed out"), "{message}");
}

// Preferences grew without bound across PUTs; `timezone` took any string.
on_both!(documents_are_capped_and_time_zones_are_real, |origin| {
    let put = |path: &'static str, body: Value| {
        origin
            .client
            .put(origin.url(path))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    let r = put("/api/preferences", json!({"notes": "n".repeat(40_000)}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let before: Value = r.json().await.unwrap();
    // Each write is small; the document would not be.
    let r = put("/api/preferences", json!({"more": "m".repeat(30_000)}))
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    let r = origin
        .client
        .get(origin.url("/api/preferences"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let after: Value = r.json().await.unwrap();
    assert_eq!(after, before, "nothing changed");
    for path in ["/api/settings", "/api/preferences"] {
        let r = put(path, json!({"timezone": "Mars/Olympus_Mons"}))
            .await
            .unwrap();
        let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(body["detail"].as_str().unwrap().contains("IANA"), "{path}");
        let r = put(path, json!({"timezone": "Europe/Paris"}))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
});

// Protocol-level errors (NUL in a path, conflicting Content-Length, oversized heads) got an
// empty 400/431.
on_both!(protocol_errors_are_problem_documents, |origin| {
    let addr: SocketAddr = origin.addr;
    common::raw_request(addr, b"GET /api/cam\0eras HTTP/1.1\r\nHost: o\r\n\r\n")
        .await
        .assert_problem(400);
    common::raw_request(
        addr,
        b"POST /api/cameras HTTP/1.1\r\nHost: o\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc",
    )
    .await
    .assert_problem(400);
    let mut oversized = b"GET /api/cameras HTTP/1.1\r\nHost: o\r\n".to_vec();
    for i in 0..80 {
        oversized.extend_from_slice(format!("x-filler-{i}: {}\r\n", "f".repeat(1000)).as_bytes());
    }
    oversized.extend_from_slice(b"\r\n");
    common::raw_request(addr, &oversized)
        .await
        .assert_problem(431);
    // A well-formed request on the same kind of connection is served.
    let ok = common::raw_request(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(ok.status, 200);
});
