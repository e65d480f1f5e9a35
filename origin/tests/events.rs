//! `GET /api/events` with a real SSE client over a real socket, on SQLite and PostgreSQL:
//! every event kind from the action that causes it, resume without gaps or repeats (across a
//! reconnect and a restart), resync beyond retention, filters, heartbeats, slow clients,
//! coalescing, shutdown, and replicas sharing PostgreSQL.

mod common;

use std::time::Duration;

use common::{header, problem, Backend, SseClient, TestOrigin, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use timelapser_core::events::{Event, MessageEvent};

const WAIT: Duration = Duration::from_secs(10);

fn data(event: &MessageEvent) -> Value {
    serde_json::from_str(&event.data).unwrap()
}

fn ids(events: &[MessageEvent]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e.last_event_id.parse().unwrap())
        .collect()
}

on_both!(stream_headers_and_retry, |origin| {
    let mut client = SseClient::connect(&origin.url("/api/events"), None).await;
    let h = &client.response_headers;
    assert_eq!(header(h, "content-type"), "text/event-stream");
    assert_eq!(header(h, "cache-control"), "no-cache, no-transform");
    assert_eq!(header(h, "x-accel-buffering"), "no");
    assert!(h.get("etag").is_none());
    origin.create_camera("Roof").await;
    let events = client.until("camera_created", WAIT).await;
    assert_eq!(client.reconnection_time(), Some(2000));
    assert!(client.raw.starts_with(b"retry: 2000\n\n"));
    let created = events.last().unwrap();
    // Its id is the logged camera_created's (a coalesced stats_updated may follow it).
    let logged = origin
        .log_after(0)
        .await
        .into_iter()
        .find(|e| e.1 == "camera_created")
        .unwrap();
    assert_eq!(created.last_event_id, logged.0.to_string());
});

on_both!(
    every_event_kind_comes_from_its_action_with_its_payload,
    |origin| {
        let mut client = SseClient::connect(&origin.url("/api/events"), None).await;
        let (id, token) = origin.create_camera("Roof").await;
        let e = client.until("camera_created", WAIT).await.pop().unwrap();
        assert_eq!(data(&e)["camera"]["name"], "Roof");

        origin
            .client
            .patch(origin.url(&format!("/api/cameras/{id}")))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "Roof 2"}))
            .send()
            .await
            .unwrap();
        let e = client.until("camera_updated", WAIT).await.pop().unwrap();
        assert_eq!(data(&e)["camera"]["name"], "Roof 2");

        let image: Value = origin
            .capture(id, &token, common::jpeg(320, 240, 1))
            .await
            .json()
            .await
            .unwrap();
        let seen = client.until("image_captured", WAIT).await;
        let status = seen
            .iter()
            .find(|e| e.event == "camera_status_changed")
            .expect("came online");
        assert_eq!(data(status)["status"], "online");
        assert_eq!(data(status)["camera_id"], id);
        let captured = data(seen.last().unwrap());
        assert_eq!(captured["image"], image);
        assert_eq!(captured["image_count"], 1);
        assert_eq!(captured["camera_id"], id);
        assert!(captured["timelapse_id"].is_null());

        let stats = client.until("stats_updated", WAIT).await.pop().unwrap();
        assert_eq!(data(&stats)["images_total"], 1);

        let r = origin
            .client
            .post(origin.url(&format!("/api/cameras/{id}/timelapses")))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "T"}))
            .send()
            .await
            .unwrap();
        let timelapse: Value = r.json().await.unwrap();
        let e = client.until("timelapse_started", WAIT).await.pop().unwrap();
        assert_eq!(data(&e)["timelapse"], timelapse);
        origin
            .client
            .post(origin.url(&format!("/api/timelapses/{}/stop", timelapse["id"])))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let e = client.until("timelapse_stopped", WAIT).await.pop().unwrap();
        assert_eq!(data(&e)["timelapse"]["status"], "stopped");

        let r = origin
            .client
            .put(origin.url("/api/settings"))
            .bearer_auth(ADMIN)
            .json(&json!({"site_name": "Farm"}))
            .send()
            .await
            .unwrap();
        let etag = header(r.headers(), "etag").to_owned();
        let e = client.until("settings_updated", WAIT).await.pop().unwrap();
        assert_eq!(data(&e)["keys"], json!(["site_name"]));
        assert_eq!(data(&e)["etag"], etag);

        // A minute later, with a 30 s threshold, the camera is offline.
        let later = timelapser_origin::db::now() + chrono::Duration::seconds(60);
        timelapser_origin::services::cameras::sweep_offline(origin.state(), 30, later)
            .await
            .unwrap();
        let e = client
            .until("camera_status_changed", WAIT)
            .await
            .pop()
            .unwrap();
        assert_eq!(data(&e)["status"], "offline");

        origin
            .client
            .delete(origin.url(&format!("/api/cameras/{id}")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let e = client.until("camera_deleted", WAIT).await.pop().unwrap();
        assert_eq!(data(&e), json!({"camera_id": id}));

        // Every id came from the log and increased.
        let log: Vec<i64> = origin.log_after(0).await.iter().map(|e| e.0).collect();
        assert!(log.contains(&e.last_event_id.parse().unwrap()));
    }
);

on_both!(
    resume_after_a_reconnect_has_no_gap_and_no_repeat,
    |origin| {
        let (id, token) = origin.create_camera("Roof").await;
        let mut first = SseClient::connect(&origin.url("/api/events"), None).await;
        origin.capture(id, &token, common::jpeg(64, 48, 1)).await;
        let seen = first.until("image_captured", WAIT).await;
        let last = seen.last().unwrap().last_event_id.clone();
        drop(first);
        // While away: more happens.
        for seed in 2..5 {
            origin.capture(id, &token, common::jpeg(64, 48, seed)).await;
        }
        let mut second = SseClient::connect(&origin.url("/api/events"), Some(&last)).await;
        // Then more, live.
        origin.capture(id, &token, common::jpeg(64, 48, 9)).await;
        let log: Vec<i64> = origin.log_after(0).await.iter().map(|e| e.0).collect();
        let newest = *log.last().unwrap();
        let mut resumed = Vec::new();
        while resumed
            .last()
            .map(|e: &MessageEvent| e.last_event_id.parse::<i64>().unwrap())
            != Some(newest)
        {
            resumed.push(
                second
                    .next_event(WAIT)
                    .await
                    .expect("the resumed stream continues"),
            );
        }
        let expected: Vec<i64> = log
            .into_iter()
            .filter(|i| *i > last.parse::<i64>().unwrap())
            .collect();
        assert_eq!(
            ids(&resumed),
            expected,
            "exactly the events after Last-Event-ID, in order"
        );
        // Also with ?last_event_id= (for clients that cannot set headers).
        let mut third = SseClient::connect(
            &origin.url(&format!("/api/events?last_event_id={last}")),
            None,
        )
        .await;
        let first_replayed = third.next_event(WAIT).await.unwrap();
        assert_eq!(
            first_replayed.last_event_id.parse::<i64>().unwrap(),
            expected[0]
        );
    }
);

mod resume_across_a_restart {
    use super::*;

    async fn run(backend: Backend) {
        let origin = TestOrigin::start(backend).await;
        let (id, token) = origin.create_camera("Roof").await;
        let mut client = SseClient::connect(&origin.url("/api/events"), None).await;
        origin.capture(id, &token, common::jpeg(64, 48, 1)).await;
        let mut seen = client.until("image_captured", WAIT).await;
        let origin = origin.restart().await;
        // The stream ended cleanly with the shutdown.
        seen.extend(client.drain(Duration::from_millis(500)).await);
        assert!(client.ended, "shutdown ends the stream");
        assert!(client.raw.ends_with(b"\n\n"), "no half frame at the end");
        let token = {
            // The camera token survived (hashed in the database).
            token
        };
        origin.capture(id, &token, common::jpeg(64, 48, 2)).await;
        let last = seen
            .iter()
            .rev()
            .find(|e| !e.last_event_id.is_empty())
            .unwrap()
            .last_event_id
            .clone();
        let mut again = SseClient::connect(&origin.url("/api/events"), Some(&last)).await;
        let newest = origin.log_newest().await;
        while seen.last().unwrap().last_event_id.parse::<i64>().unwrap() != newest {
            seen.push(again.next_event(WAIT).await.expect("resumed after restart"));
        }
        let log: Vec<i64> = origin.log_after(0).await.iter().map(|e| e.0).collect();
        let union = ids(&seen);
        let from = union[0];
        let expected: Vec<i64> = log
            .into_iter()
            .filter(|i| *i >= from && *i <= newest)
            .collect();
        assert_eq!(
            union, expected,
            "what the client saw is the log, in order, once"
        );
        origin.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

on_both!(resume_beyond_retention_is_a_resync, |origin| {
    for n in 0..5 {
        origin.create_camera(&format!("C{n}")).await;
    }
    // The coalesced stats_updated for the five cameras lands; then the log is quiet.
    origin
        .wait_for_log("stats for five cameras", |log| {
            log.iter()
                .any(|(_, name, data)| name == "stats_updated" && data["cameras"]["total"] == 5)
        })
        .await;
    let logged = origin.log_after(0).await.len() as u64;
    let newest = origin.log_newest().await;
    let pruned = origin
        .state()
        .events
        .prune(2, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(pruned, logged - 2);
    assert_eq!(origin.log_after(0).await.len(), 2);
    let mut client = SseClient::connect(&origin.url("/api/events"), Some("1")).await;
    let resync = client.next_event(WAIT).await.unwrap();
    assert_eq!(resync.event, "resync");
    assert_eq!(
        resync.last_event_id,
        newest.to_string(),
        "resumes from the present"
    );
    assert!(data(&resync)["reason"].is_string());
    // Within retention: a plain replay.
    let mut client =
        SseClient::connect(&origin.url("/api/events"), Some(&(newest - 1).to_string())).await;
    let replayed = client.next_event(WAIT).await.unwrap();
    assert_eq!(replayed.last_event_id, newest.to_string());
    // Ids that were never ours, or garbage: resync.
    for bad in ["999999", "abc", "-5"] {
        let mut client = SseClient::connect(&origin.url("/api/events"), Some(bad)).await;
        assert_eq!(
            client.next_event(WAIT).await.unwrap().event,
            "resync",
            "{bad}"
        );
    }
});

on_both!(filters_by_camera_and_type, |origin| {
    let (a, token_a) = origin.create_camera("A").await;
    let (b, token_b) = origin.create_camera("B").await;
    problem(
        origin.get("/api/events?camera_id=x").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        origin
            .get("/api/events?types=image_captured,nonsense")
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let mut only_a =
        SseClient::connect(&origin.url(&format!("/api/events?camera_id={a}")), None).await;
    let mut only_captures =
        SseClient::connect(&origin.url("/api/events?types=image_captured"), None).await;
    origin.capture(b, &token_b, common::jpeg(64, 48, 1)).await;
    origin.capture(a, &token_a, common::jpeg(64, 48, 2)).await;
    let seen = only_a.until("image_captured", WAIT).await;
    for e in &seen {
        if let Some(camera) = data(e).get("camera_id") {
            assert_eq!(camera, &json!(a), "{e:?}");
        }
    }
    let captures = only_captures.drain(Duration::from_millis(1500)).await;
    assert_eq!(captures.len(), 2);
    assert!(captures.iter().all(|e| e.event == "image_captured"));
    let mut both = SseClient::connect(
        &origin.url(&format!(
            "/api/events?camera_id={a},{b}&types=camera_deleted"
        )),
        None,
    )
    .await;
    origin
        .client
        .delete(origin.url(&format!("/api/cameras/{b}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(both.next_event(WAIT).await.unwrap().event, "camera_deleted");
});

mod heartbeats {
    use super::*;

    #[tokio::test]
    async fn idle_streams_get_comments() {
        let origin = TestOrigin::start_with(Backend::Sqlite, |o| {
            o.sse_heartbeat = Duration::from_millis(200)
        })
        .await;
        let mut client = SseClient::connect(&origin.url("/api/events"), None).await;
        assert!(client
            .next_event(Duration::from_millis(700))
            .await
            .is_none());
        let comments = String::from_utf8_lossy(&client.raw)
            .matches(":\n\n")
            .count();
        assert!(comments >= 2, "{:?}", String::from_utf8_lossy(&client.raw));
        origin.finish().await;
    }
}

mod slow_clients {
    use super::*;
    use std::io::{Read, Write};

    async fn run(backend: Backend) {
        let origin = TestOrigin::start_with(backend, |o| o.event_buffer = 16).await;
        // A client that sends its request and then reads nothing.
        let streams = origin.state().bus.receiver_count();
        let mut stalled = std::net::TcpStream::connect(origin.addr).unwrap();
        write!(stalled, "GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut reader = SseClient::connect(&origin.url("/api/events"), None).await;
        origin.wait_for_streams(streams + 2).await;
        let big = "x".repeat(4000);
        let started = tokio::time::Instant::now();
        for n in 0..400 {
            origin
                .state()
                .events
                .append(Event::Resync {
                    reason: format!("{n} {big}"),
                })
                .await
                .unwrap();
        }
        let newest = origin.log_newest().await;
        let mut got = Vec::new();
        while got
            .last()
            .map(|e: &MessageEvent| e.last_event_id.parse::<i64>().unwrap())
            != Some(newest)
        {
            got.push(
                reader
                    .next_event(WAIT)
                    .await
                    .expect("the reading client is not held up"),
            );
        }
        assert!(started.elapsed() < WAIT);
        assert_eq!(got.len(), 400, "no loss, no repeat for the reading client");
        // The stalled client, once it reads, gets everything in order: what the shared buffer
        // no longer held came from the log.
        stalled
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let stalled_events = tokio::task::spawn_blocking(move || {
            let mut parser = timelapser_core::events::EventStreamParser::new();
            let mut events = Vec::new();
            let mut buf = [0u8; 65536];
            let mut head = Vec::new();
            let mut in_body = false;
            while events.len() < 400 {
                let n = stalled.read(&mut buf).expect("stalled client reads");
                assert!(n > 0);
                let mut chunk = &buf[..n];
                if !in_body {
                    head.extend_from_slice(chunk);
                    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    in_body = true;
                    let rest = head.split_off(end + 4);
                    events.extend(parser.push(&dechunk(&rest)));
                    chunk = &[];
                }
                events.extend(parser.push(&dechunk(chunk)));
            }
            events
        })
        .await
        .unwrap();
        let stalled_ids = ids(&stalled_events);
        let reader_ids = ids(&got);
        assert_eq!(stalled_ids, reader_ids);
        origin.finish().await;
    }

    /// Strips chunked-encoding size lines well enough for SSE text (frames never contain
    /// lines that are bare hex numbers followed by CRLF).
    fn dechunk(bytes: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(bytes);
        let mut out = String::new();
        for piece in text.split("\r\n") {
            if !piece.is_empty() && piece.chars().all(|c| c.is_ascii_hexdigit()) {
                continue;
            }
            out.push_str(piece);
        }
        out.into_bytes()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

on_both!(
    stats_updates_are_coalesced_and_the_last_one_wins,
    |origin| {
        let (id, token) = origin.create_camera("Roof").await;
        let mut client =
            SseClient::connect(&origin.url("/api/events?types=stats_updated"), None).await;
        let started = tokio::time::Instant::now();
        for seed in 0..12 {
            origin
                .capture(id, &token, common::jpeg(64, 48, 100 + seed))
                .await;
        }
        let burst = started.elapsed();
        let mut updates = Vec::new();
        loop {
            let e = client
                .next_event(Duration::from_secs(3))
                .await
                .expect("a final stats_updated");
            let done = data(&e)["images_total"] == 12;
            updates.push(e);
            if done {
                break;
            }
        }
        let allowed = burst.as_secs() as usize + 2;
        assert!(
            updates.len() <= allowed,
            "{} updates in {burst:?}",
            updates.len()
        );
        // Nothing after the final value.
        assert!(client
            .next_event(Duration::from_millis(1500))
            .await
            .is_none());
    }
);

mod replicas {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_on_one_replica_reaches_a_client_of_the_other_and_its_cache() {
        let a = TestOrigin::start(Backend::Postgres).await;
        let b = a.replica().await;
        let b_url = format!("http://{}", b.addr);
        let (id, token) = a.create_camera("Roof").await;
        // B has published A's camera_created (whose invalidation would otherwise race the
        // read below)...
        let created = a.last_event_id().await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let published = b.state.events.last_published().await;
            if published >= created {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "replica B published up to {published}, not A's camera_created {created}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // ...then caches the camera.
        let client = reqwest::Client::new();
        let before: Value = client
            .get(format!("{b_url}/api/cameras/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(before["image_count"], 0);
        assert!(
            b.state
                .cache
                .contains(&timelapser_core::keys::camera(id))
                .await
        );
        let mut on_b = SseClient::connect(&format!("{b_url}/api/events"), None).await;
        let image: Value = a
            .capture(id, &token, common::jpeg(64, 48, 1))
            .await
            .json()
            .await
            .unwrap();
        let seen = on_b.until("image_captured", WAIT).await;
        assert_eq!(data(seen.last().unwrap())["image"], image);
        // B's cached read is fresh after the event.
        let after: Value = client
            .get(format!("{b_url}/api/cameras/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(after["image_count"], 1);
        // And B's own writes reach A's clients, in one order for both.
        let mut on_a = SseClient::connect(&a.url("/api/events"), None).await;
        let r = client
            .post(format!("{b_url}/api/cameras"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "From B"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let e = on_a.until("camera_created", WAIT).await.pop().unwrap();
        assert_eq!(data(&e)["camera"]["name"], "From B");
        b.shutdown().await.unwrap();
        a.finish().await;
    }
}

/// A stream is the same whether it is the first request of its connection (served without
/// hyper's buffers) or follows another request on a kept-alive connection (served by hyper).
mod both_connection_paths {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Reads until `needle` has arrived; everything read so far.
    async fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !String::from_utf8_lossy(seen).contains(needle) {
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no {needle:?} in time; got {:?}",
                        String::from_utf8_lossy(seen)
                    )
                })
                .unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {:?}",
                String::from_utf8_lossy(seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(seen).into_owned()
    }

    /// The response head, lower-cased, with its Date removed.
    fn head_fields(response: &str) -> Vec<String> {
        let head = response.split("\r\n\r\n").next().unwrap();
        let mut fields: Vec<String> = head
            .lines()
            .map(str::to_ascii_lowercase)
            .filter(|line| !line.starts_with("date:"))
            .collect();
        fields.sort();
        fields
    }

    const REQUEST: &str =
        "GET /api/events?types=camera_created HTTP/1.1\r\nHost: origin\r\nAccept: text/event-stream\r\n\r\n";

    #[tokio::test]
    async fn first_request_and_kept_alive_streams_match() {
        let origin = TestOrigin::start(Backend::Sqlite).await;
        let bus = origin.state().events.bus().clone();
        let before = bus.receiver_count();

        let mut fresh = TcpStream::connect(origin.addr).await.unwrap();
        fresh.write_all(REQUEST.as_bytes()).await.unwrap();
        let mut fresh_seen = Vec::new();
        let fresh_head = read_until(&mut fresh, &mut fresh_seen, "retry: 2000").await;

        let mut reused = TcpStream::connect(origin.addr).await.unwrap();
        reused
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: origin\r\n\r\n")
            .await
            .unwrap();
        let mut health = Vec::new();
        read_until(&mut reused, &mut health, "\r\n\r\n").await;
        assert!(
            health.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&health)
        );
        // Drain the health body, then ask for the stream on the same connection.
        let text = String::from_utf8_lossy(&health).into_owned();
        let length: usize = text
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .expect("health has a length");
        let have = health.len() - (text.find("\r\n\r\n").unwrap() + 4);
        let mut rest = vec![0u8; length - have];
        reused.read_exact(&mut rest).await.unwrap();
        reused.write_all(REQUEST.as_bytes()).await.unwrap();
        let mut reused_seen = Vec::new();
        let reused_head = read_until(&mut reused, &mut reused_seen, "retry: 2000").await;

        assert!(
            fresh_head.starts_with("HTTP/1.1 200 OK\r\n"),
            "{fresh_head}"
        );
        assert_eq!(head_fields(&fresh_head), head_fields(&reused_head));
        for expected in [
            "content-type: text/event-stream",
            "cache-control: no-cache, no-transform",
            "x-accel-buffering: no",
            "transfer-encoding: chunked",
        ] {
            assert!(
                head_fields(&fresh_head).iter().any(|f| f == expected),
                "{expected} in {fresh_head}"
            );
        }
        assert_eq!(bus.receiver_count(), before + 2);

        origin.create_camera("Roof").await;
        // Other events (stats, health) may be logged after it: find the camera's own id.
        let id = origin
            .events_after(0)
            .await
            .into_iter()
            .find(|e| e.1 == "camera_created")
            .expect("camera_created is logged")
            .0;
        let frame = format!("id: {id}\nevent: camera_created\n");
        read_until(&mut fresh, &mut fresh_seen, &frame).await;
        read_until(&mut reused, &mut reused_seen, &frame).await;

        // A client that goes away stops its stream: its bus subscription is dropped.
        drop(fresh);
        drop(reused);
        let deadline = tokio::time::Instant::now() + WAIT;
        while bus.receiver_count() > before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} streams still subscribed after their clients left",
                bus.receiver_count() - before
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        origin.finish().await;
    }

    #[tokio::test]
    async fn a_bad_filter_as_first_request_is_a_problem() {
        let origin = TestOrigin::start(Backend::Sqlite).await;
        let mut stream = TcpStream::connect(origin.addr).await.unwrap();
        stream
            .write_all(
                b"GET /api/events?types=nope HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{response}"
        );
        assert!(response.contains("unknown event type"), "{response}");
        origin.finish().await;
    }

    #[tokio::test]
    async fn a_connection_that_sent_nothing_does_not_hold_up_shutdown() {
        let origin = TestOrigin::start(Backend::Sqlite).await;
        let silent = TcpStream::connect(origin.addr).await.unwrap();
        origin.wait_for_gauge("http_connections_open", 1.0).await;
        // Well under the 30 s a request head may take to arrive.
        tokio::time::timeout(WAIT, origin.finish())
            .await
            .expect("shutdown does not wait for a silent connection");
        drop(silent);
    }

    #[tokio::test]
    async fn shutdown_ends_a_first_request_stream_with_the_last_chunk() {
        let origin = TestOrigin::start(Backend::Sqlite).await;
        let mut stream = TcpStream::connect(origin.addr).await.unwrap();
        stream.write_all(REQUEST.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        read_until(&mut stream, &mut seen, "retry: 2000").await;
        let finishing = tokio::spawn(origin.finish());
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
            .await
            .expect("the stream ends")
            .unwrap();
        seen.extend_from_slice(&rest);
        let text = String::from_utf8_lossy(&seen);
        assert!(text.contains(": server shutting down; reconnect"), "{text}");
        assert!(text.ends_with("\r\n0\r\n\r\n"), "{text:?}");
        finishing.await.unwrap();
    }
}

// API.md: health_changed covers the database, the media disk, ffmpeg and the event log.
on_both!(
    health_changes_are_published_once,
    |options| {
        options.ffmpeg = Some("/nonexistent/ffmpeg".into());
        options.health_interval = Duration::from_millis(100);
    },
    |origin| {
        // From the start of the log: the first check may run before the client connects.
        let mut client =
            SseClient::connect(&origin.url("/api/events?types=health_changed"), Some("0")).await;
        let event = client.until("health_changed", WAIT).await.pop().unwrap();
        assert_eq!(
            data(&event),
            json!({
                "component": "ffmpeg",
                "status": "down",
                "message": "ffmpeg is not installed; videos cannot be rendered",
            })
        );
        // Only on change: the next checks find it the same and say nothing.
        let more = client.drain(Duration::from_millis(500)).await;
        assert!(more.is_empty(), "{more:?}");
    }
);
