//! Rendering: a real timelapse of synthetic captures becomes an MP4 that plays (checked with
//! ffprobe), with live progress; failures, cancellation and restarts leave no stray process or
//! file; a missing ffmpeg is a clear 503.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{header, problem, Backend, SseClient, TestOrigin, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

fn ffprobe(path: &Path) -> Value {
    let output = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
        ])
        .arg("stream=codec_name,pix_fmt,width,height,nb_read_frames:format=duration")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe is installed (cargo xtask test installs Debian's ffmpeg)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Starts a timelapse of `camera`; its representation.
async fn start_timelapse(origin: &TestOrigin, camera: i64, name: &str) -> Value {
    origin
        .client
        .post(origin.url(&format!("/api/cameras/{camera}/timelapses")))
        .bearer_auth(ADMIN)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A camera with a timelapse of `frames` captures of `width`x`height`.
async fn timelapse(origin: &TestOrigin, frames: u32, width: u32, height: u32) -> (i64, i64) {
    let (camera, token) = origin.create_camera("Roof").await;
    let t = start_timelapse(origin, camera, "Spring").await;
    for seed in 0..frames {
        let jpeg = timelapser_origin::demo::synthetic_frame(width, height, seed % 2, seed);
        assert_eq!(
            origin.capture(camera, &token, jpeg).await.status(),
            StatusCode::CREATED
        );
    }
    (camera, t["id"].as_i64().unwrap())
}

async fn render(origin: &TestOrigin, timelapse: i64, body: Value) -> reqwest::Response {
    origin
        .client
        .post(origin.url(&format!("/api/timelapses/{timelapse}/videos")))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn ffmpeg_running_for(dir: &Path) -> bool {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|c| {
                let cmd = String::from_utf8_lossy(&c).replace('\0', " ");
                cmd.contains("ffmpeg") && cmd.contains(&needle)
            })
            .unwrap_or(false)
    })
}

on_both!(
    a_timelapse_renders_into_a_playable_mp4_with_live_progress,
    |origin| {
        let (_, timelapse) = timelapse(origin, 12, 640, 360).await;
        let mut events = SseClient::connect(
            &origin.url("/api/events?types=video_queued,video_progress,video_ready,video_failed"),
            None,
        )
        .await;
        let r = render(origin, timelapse, json!({"fps": 6})).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let location = header(r.headers(), "location").to_owned();
        let queued: Value = r.json().await.unwrap();
        assert_eq!(queued["status"], "queued");
        assert_eq!(queued["frame_count"], 12);
        assert_eq!(queued["fps"], 6);
        assert_eq!(location, format!("/api/videos/{}", queued["id"]));
        let seen = events.until("video_ready", WAIT).await;
        assert_eq!(seen[0].event, "video_queued");
        let progress: Vec<f64> = seen
            .iter()
            .filter(|e| e.event == "video_progress")
            .map(|e| {
                serde_json::from_str::<Value>(&e.data).unwrap()["video"]["progress"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        assert!(!progress.is_empty());
        assert!(
            progress.windows(2).all(|w| w[0] <= w[1]),
            "monotonic: {progress:?}"
        );
        assert!(seen.iter().all(|e| e.event != "video_failed"));
        let ready: Value = serde_json::from_str(&seen.last().unwrap().data).unwrap();
        let video = &ready["video"];
        assert_eq!(video["status"], "ready");
        assert_eq!(video["progress"], 1.0);
        let sha = video["sha256"].as_str().unwrap();
        assert_eq!(video["url"], format!("/media/videos/{sha}.mp4"));
        let path = origin.dir.path().join(format!("media/videos/{sha}.mp4"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            video["bytes"].as_u64().unwrap()
        );
        let probe = ffprobe(&path);
        let stream = &probe["streams"][0];
        assert_eq!(stream["codec_name"], "h264");
        assert_eq!(stream["pix_fmt"], "yuv420p");
        assert_eq!(stream["nb_read_frames"], "12");
        assert_eq!(
            (stream["width"].as_u64(), stream["height"].as_u64()),
            (Some(640), Some(360))
        );
        let duration: f64 = probe["format"]["duration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (duration - 2.0).abs() < 0.1,
            "12 frames at 6 fps: {duration} s"
        );
        assert!(origin.temp_files().is_empty(), "{:?}", origin.temp_files());
        // The video is immutable media: ranges for seeking, and its own listing.
        let r = origin
            .get_with(video["url"].as_str().unwrap(), &[("range", "bytes=0-99")])
            .await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(header(r.headers(), "content-type"), "video/mp4");
        assert_eq!(r.bytes().await.unwrap().len(), 100);
        let listed: Vec<Value> = origin
            .get(&format!("/api/timelapses/{timelapse}/videos"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed[0]["status"], "ready");
    }
);

on_both!(
    a_render_whose_frame_is_gone_fails_and_leaves_no_file,
    |origin| {
        let (camera, timelapse) = timelapse(origin, 4, 320, 240).await;
        let page: Value = origin
            .get(&format!("/api/cameras/{camera}/images?limit=1"))
            .await
            .json()
            .await
            .unwrap();
        let sha = page["items"][0]["sha256"].as_str().unwrap();
        std::fs::remove_file(origin.dir.path().join(format!("media/images/{sha}.jpg"))).unwrap();
        let mut events = SseClient::connect(
            &origin.url("/api/events?types=video_failed,video_ready"),
            None,
        )
        .await;
        let queued: Value = render(origin, timelapse, json!({}))
            .await
            .json()
            .await
            .unwrap();
        let failed = events.until("video_failed", WAIT).await.pop().unwrap();
        let video: Value = serde_json::from_str::<Value>(&failed.data).unwrap()["video"].clone();
        assert_eq!(video["id"], queued["id"]);
        assert_eq!(video["status"], "failed");
        assert!(
            video["error"].as_str().unwrap().contains(sha),
            "names the missing frame: {}",
            video["error"]
        );
        assert!(
            origin.media_files("videos").is_empty(),
            "{:?}",
            origin.media_files("videos")
        );
        assert!(origin.temp_files().is_empty(), "{:?}", origin.temp_files());
    }
);

on_both!(render_requests_are_checked, |origin| {
    let (_, timelapse) = timelapse(origin, 1, 320, 240).await;
    let r = origin
        .client
        .post(origin.url(&format!("/api/timelapses/{timelapse}/videos")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED).await;
    problem(
        render(origin, timelapse, json!({"fps": 0})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        render(origin, timelapse, json!({"fps": "fast"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // Malformed JSON: 400 (its own connection: the server closes one whose body it did not
    // read).
    let r = reqwest::Client::new()
        .post(origin.url(&format!("/api/timelapses/{timelapse}/videos")))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{\"fps\":")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST).await;
    // 3 MiB declared: 413 from the head, before the body is read. Only the head and the body's
    // first bytes are sent: a client still writing 3 MiB when the server answers and closes
    // may get a broken pipe instead of reading the answer (as it did here, now and then).
    let head = format!(
        "POST /api/timelapses/{timelapse}/videos HTTP/1.1\r\nHost: o\r\n\
         Authorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{{\"fps\": 24, \"pad\": \"xxxx",
        3 << 20
    );
    let r = common::raw_request(origin.addr, head.as_bytes()).await;
    assert_eq!(r.status, 413, "{}", r.head);
    assert!(
        r.head
            .to_ascii_lowercase()
            .contains("application/problem+json"),
        "{}",
        r.head
    );
    problem(render(origin, 999, json!({})).await, StatusCode::NOT_FOUND).await;
    let (camera, _) = origin.create_camera("Empty").await;
    let empty = start_timelapse(origin, camera, "none").await;
    problem(
        render(origin, empty["id"].as_i64().unwrap(), json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(origin
        .events_after(0)
        .await
        .iter()
        .all(|e| e.1 != "video_queued"));
    let videos: Value = origin
        .get(&format!("/api/timelapses/{timelapse}/videos"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(videos.as_array().map(Vec::len), Some(0), "{videos}");
});

on_both!(
    cancelling_a_render_kills_ffmpeg_and_leaves_nothing,
    |origin| {
        let (_, timelapse) = timelapse(origin, 80, 1280, 720).await;
        let mut events = SseClient::connect(
            &origin.url("/api/events?types=video_progress,video_failed,video_ready"),
            None,
        )
        .await;
        let queued: Value = render(origin, timelapse, json!({"fps": 1}))
            .await
            .json()
            .await
            .unwrap();
        let id = queued["id"].as_i64().unwrap();
        events.until("video_progress", WAIT).await;
        let r = origin
            .client
            .delete(origin.url(&format!("/api/videos/{id}")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert!(
            !ffmpeg_running_for(origin.dir.path()),
            "no ffmpeg left running"
        );
        let failed = events.until("video_failed", WAIT).await.pop().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&failed.data).unwrap()["video"]["error"],
            "cancelled"
        );
        problem(
            origin.get(&format!("/api/videos/{id}")).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert!(
            origin.media_files("videos").is_empty(),
            "{:?}",
            origin.media_files("videos")
        );
        assert!(origin.temp_files().is_empty(), "{:?}", origin.temp_files());
    }
);

mod restart {
    use super::*;

    async fn run(backend: Backend) {
        let origin = TestOrigin::start(backend).await;
        let (_, timelapse) = timelapse(&origin, 60, 1280, 720).await;
        let mut events =
            SseClient::connect(&origin.url("/api/events?types=video_progress"), None).await;
        let queued: Value = render(&origin, timelapse, json!({"fps": 2}))
            .await
            .json()
            .await
            .unwrap();
        let id = queued["id"].as_i64().unwrap();
        events.until("video_progress", WAIT).await;
        // Stopped mid-render: queued again at the next start, and completed.
        let origin = origin.restart().await;
        let deadline = tokio::time::Instant::now() + WAIT;
        let video = loop {
            let video: Value = origin
                .get(&format!("/api/videos/{id}"))
                .await
                .json()
                .await
                .unwrap();
            if video["status"] == "ready" || video["status"] == "failed" {
                break video;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not finished: {video}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(video["status"], "ready", "{video}");
        let path = origin.dir.path().join(format!(
            "media/videos/{}.mp4",
            video["sha256"].as_str().unwrap()
        ));
        assert_eq!(ffprobe(&path)["streams"][0]["nb_read_frames"], "60");
        assert!(origin.temp_files().is_empty(), "{:?}", origin.temp_files());
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

#[tokio::test]
async fn without_ffmpeg_renders_are_refused_clearly() {
    let origin = TestOrigin::start_with(Backend::Sqlite, |o| {
        o.ffmpeg = Some("/nonexistent/ffmpeg".into())
    })
    .await;
    let (_, timelapse) = timelapse(&origin, 1, 320, 240).await;
    let body = problem(
        render(&origin, timelapse, json!({})).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("ffmpeg"));
    origin.finish().await;
}
