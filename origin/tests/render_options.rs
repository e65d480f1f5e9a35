//! Render options and automatic videos, checked on real renders with ffprobe: presets set the
//! size, a duration sets the length within a frame, every n-th frame and capture-time ranges
//! choose the frames, overlays draw the capture time in the site's time zone (compared pixel
//! by pixel with ffmpeg drawing the expected text), the same request twice is one ffmpeg run,
//! and a daily rule runs once (not once per replica), made up after a restart that missed it.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeZone, Utc};
use common::{problem, Backend, SseClient, TestOrigin, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use timelapser_origin::render::ffmpeg::{concat_list, default_font, Invocation};

const WAIT: Duration = Duration::from_secs(90);

/// An ffmpeg that notes each render it runs (then runs Debian's): how a test counts renders.
fn counting_ffmpeg(dir: &Path) -> PathBuf {
    let script = dir.join("ffmpeg");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$*\" in *-progress*) echo run >> '{}';; esac\nexec ffmpeg \"$@\"\n",
            dir.join("runs").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn probe(path: &Path) -> Value {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=width,height,nb_read_frames:format=duration",
        ])
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

/// A video's first frame as 8-bit grey pixels.
fn first_frame_grey(video: &Path) -> Vec<u8> {
    let output = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(video)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Mean absolute difference of two grey frames of `width` inside the rectangle.
fn difference(
    a: &[u8],
    b: &[u8],
    width: usize,
    (x0, y0, x1, y1): (usize, usize, usize, usize),
) -> f64 {
    assert_eq!(a.len(), b.len());
    let mut sum = 0u64;
    for y in y0..y1 {
        for x in x0..x1 {
            sum += u64::from(a[y * width + x].abs_diff(b[y * width + x]));
        }
    }
    sum as f64 / ((x1 - x0) * (y1 - y0)) as f64
}

/// A frame made distinct by a JPEG comment (encoding a new picture per frame is slow in a
/// debug build).
fn distinct(jpeg: &[u8], n: u32) -> Vec<u8> {
    let text = format!("frame {n}");
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((text.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

struct Footage {
    camera: i64,
    timelapse: i64,
    times: Vec<DateTime<Utc>>,
    frame: Vec<u8>,
}

/// A camera with a running timelapse of `count` 1280x720 frames, 10 s apart from a minute
/// from now (capture times a little ahead of the clock are accepted).
async fn footage(origin: &TestOrigin, count: u32) -> Footage {
    let (camera, token) = origin.create_camera("Roof").await;
    let t: Value = origin
        .client
        .post(origin.url(&format!("/api/cameras/{camera}/timelapses")))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "Spring"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let frame = timelapser_origin::demo::synthetic_frame(1280, 720, 1, 1);
    let start = Utc::now()
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap()
        + chrono::Duration::seconds(60);
    let mut times = Vec::new();
    for n in 0..count {
        let at = start + chrono::Duration::seconds(10 * i64::from(n));
        let r = origin
            .client
            .post(origin.url(&format!("/api/cameras/{camera}/captures")))
            .bearer_auth(&token)
            .header("content-type", "image/jpeg")
            .header("capture-time", at.to_rfc3339())
            .body(distinct(&frame, n))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        times.push(at);
    }
    Footage {
        camera,
        timelapse: t["id"].as_i64().unwrap(),
        times,
        frame,
    }
}

/// `POST path` with the admin token and a JSON body.
async fn post(origin: &TestOrigin, path: &str, body: &Value) -> reqwest::Response {
    origin
        .client
        .post(origin.url(path))
        .bearer_auth(ADMIN)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `GET path` with the admin token, as JSON.
async fn get_json<T: serde::de::DeserializeOwned>(origin: &TestOrigin, path: &str) -> T {
    origin
        .client
        .get(origin.url(path))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn render(origin: &TestOrigin, timelapse: i64, body: Value) -> (StatusCode, Value) {
    let r = post(
        origin,
        &format!("/api/timelapses/{timelapse}/videos"),
        &body,
    )
    .await;
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// Waits until the video is ready; its file.
async fn ready(origin: &TestOrigin, id: i64) -> (Value, PathBuf) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let video: Value = origin
            .get(&format!("/api/videos/{id}"))
            .await
            .json()
            .await
            .unwrap();
        match video["status"].as_str() {
            Some("ready") => {
                let path = origin.dir.path().join(format!(
                    "media/videos/{}.mp4",
                    video["sha256"].as_str().unwrap()
                ));
                return (video, path);
            }
            Some("failed") => panic!("render failed: {video}"),
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "video {id} not ready: {video}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn frames_of(probe: &Value) -> u64 {
    probe["streams"][0]["nb_read_frames"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn seconds_of(probe: &Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn size_of(probe: &Value) -> (u64, u64) {
    let s = &probe["streams"][0];
    (s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap())
}

fn shim_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("timelapser-ffmpeg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

macro_rules! with_counting_ffmpeg {
    ($name:ident, |$origin:ident, $shim:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn run($origin: &TestOrigin, $shim: &Path) $body

            async fn on(backend: Backend, label: &str) {
                let shim = shim_dir(&format!("{}-{label}", stringify!($name)));
                let script = counting_ffmpeg(&shim);
                let origin = TestOrigin::start_with(backend, |o| o.ffmpeg = Some(script)).await;
                run(&origin, &shim).await;
                origin.finish().await;
                let _ = std::fs::remove_dir_all(&shim);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                on(Backend::Sqlite, "sqlite").await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                on(Backend::Postgres, "postgres").await;
            }
        }
    };
}

with_counting_ffmpeg!(
    options_shape_the_video_and_the_same_request_is_one_render,
    |origin, shim| {
        let footage = footage(origin, 12).await;
        let t = footage.timelapse;

        // A preset and a length: 480 lines, 12 frames in 3 s (4 fps), within a frame.
        let (status, draft) =
            render(origin, t, json!({"preset": "draft", "duration_seconds": 3})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{draft}");
        assert_eq!(draft["frame_rate"], 4.0);
        assert_eq!(draft["options"]["preset"], "draft");
        let (_, path) = ready(origin, draft["id"].as_i64().unwrap()).await;
        let p = probe(&path);
        assert_eq!(size_of(&p), (852, 480));
        assert_eq!(frames_of(&p), 12);
        assert!((seconds_of(&p) - 3.0).abs() <= 1.0 / 4.0, "{p}");

        // An odd length: 12 frames in 7 s is 1.714 fps; the length still within a frame.
        let (_, odd) = render(origin, t, json!({"preset": "draft", "duration_seconds": 7})).await;
        assert_eq!(odd["frame_rate"], 1.714);
        let (_, path) = ready(origin, odd["id"].as_i64().unwrap()).await;
        let p = probe(&path);
        assert!((seconds_of(&p) - 7.0).abs() <= 1.0 / 1.714, "{p}");

        // Every 3rd frame, deflickered: 4 frames; the standard preset keeps 720 lines.
        let (_, nth) = render(
            origin,
            t,
            json!({"every_nth": 3, "fps": 2, "deflicker": true}),
        )
        .await;
        assert_eq!(nth["frame_count"], 4);
        let (_, path) = ready(origin, nth["id"].as_i64().unwrap()).await;
        let p = probe(&path);
        assert_eq!(frames_of(&p), 4);
        assert_eq!(size_of(&p), (1280, 720));

        // A capture-time range [times[2], times[8]): 6 frames; the high preset never scales up.
        let (from, to) = (footage.times[2], footage.times[8]);
        let (_, ranged) = render(
            origin,
            t,
            json!({"preset": "high", "fps": 6, "from": from.to_rfc3339(), "to": to.to_rfc3339()}),
        )
        .await;
        assert_eq!(ranged["frame_count"], 6);
        assert_eq!(ranged["options"]["from"], json!(from));
        let (_, path) = ready(origin, ranged["id"].as_i64().unwrap()).await;
        let p = probe(&path);
        assert_eq!(frames_of(&p), 6);
        assert_eq!(size_of(&p), (1280, 720));
        assert!((seconds_of(&p) - 1.0).abs() <= 1.0 / 6.0, "{p}");

        // The same request again: the same video (200), no ffmpeg run.
        let before = runs(shim);
        assert_eq!(before, 4);
        let (status, again) =
            render(origin, t, json!({"duration_seconds": 3, "preset": "draft"})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again["id"], draft["id"]);
        assert_eq!(again["status"], "ready");
        assert_eq!(runs(shim), before);
        let listed: Vec<Value> = origin
            .get(&format!("/api/timelapses/{t}/videos"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed.len(), 4);

        // Wrong requests name their field and change nothing.
        for (body, field) in [
            (
                json!({"fps": 24, "duration_seconds": 10}),
                "duration_seconds",
            ),
            (json!({"preset": "ultra"}), "preset"),
            (json!({"every_nth": 0}), "every_nth"),
            (json!({"overlay": ["logo"]}), "overlay"),
            (
                json!({"from": to.to_rfc3339(), "to": from.to_rfc3339()}),
                "to",
            ),
            (json!({"fps": 500}), "fps"),
        ] {
            let r = post(origin, &format!("/api/timelapses/{t}/videos"), &body).await;
            let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert!(
                p["detail"].as_str().unwrap().starts_with(field),
                "{body}: {p}"
            );
        }
        let far = footage.times[11] + chrono::Duration::hours(1);
        let r = post(
            origin,
            &format!("/api/timelapses/{t}/videos"),
            &json!({"from": far.to_rfc3339()}),
        )
        .await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        let listed: Vec<Value> = origin
            .get(&format!("/api/timelapses/{t}/videos"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed.len(), 4);
        assert_eq!(runs(shim), before);
    }
);

with_counting_ffmpeg!(
    the_time_overlay_shows_the_local_capture_time,
    |origin, _shim| {
        assert_eq!(
            origin
                .put_settings(json!({"timezone": "America/New_York"}))
                .await
                .status(),
            StatusCode::OK
        );
        let footage = footage(origin, 2).await;
        let t = footage.timelapse;
        let one = |overlay: Value| {
            json!({
                "preset": "draft", "fps": 1, "overlay": overlay,
                "from": footage.times[0].to_rfc3339(), "to": footage.times[1].to_rfc3339(),
            })
        };
        let (_, plain) = render(origin, t, one(json!([]))).await;
        let (_, timed) = render(origin, t, one(json!(["time"]))).await;
        assert_eq!(timed["options"]["timezone"], "America/New_York", "{timed}");
        let (_, plain) = ready(origin, plain["id"].as_i64().unwrap()).await;
        let (_, timed) = ready(origin, timed["id"].as_i64().unwrap()).await;
        let (plain, timed) = (first_frame_grey(&plain), first_frame_grey(&timed));
        let (w, h) = (852usize, 480usize);
        assert_eq!(timed.len(), w * h);
        // The text sits in the bottom-right corner; the rest of the picture is the same.
        let corner = (w / 2, h * 8 / 10, w, h);
        let top = (0, 0, w, h / 2);
        assert!(difference(&plain, &timed, w, corner) > 5.0);
        assert!(difference(&plain, &timed, w, top) < 2.0);

        // ffmpeg drawing the expected text (the capture time in New York) on the same frame gives
        // the same pixels; another time (UTC's) does not.
        let expected = footage.times[0]
            .with_timezone(&chrono_tz::America::New_York)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string();
        let utc = footage.times[0].format("%Y-%m-%d %H:%M:%S UTC").to_string();
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("frame.jpg");
        std::fs::write(&original, distinct(&footage.frame, 0)).unwrap();
        let reference = |text: &str, name: &str| {
            let list = dir.path().join(format!("{name}.txt"));
            std::fs::write(&list, concat_list([(original.as_path(), Some(text))])).unwrap();
            let output = dir.path().join(format!("{name}.mp4"));
            let invocation = Invocation {
                list,
                output: output.clone(),
                frame_rate: 1.0,
                preset: timelapser_core::render::Preset::Draft,
                width: w as u32,
                height: h as u32,
                deflicker: false,
                time_overlay: true,
                name_overlay: None,
                font: default_font(),
            };
            let status = std::process::Command::new("ffmpeg")
                .args(invocation.arguments())
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            first_frame_grey(&output)
        };
        let right = reference(&expected, "right");
        let wrong = reference(&utc, "wrong");
        let right_diff = difference(&right, &timed, w, corner);
        let wrong_diff = difference(&wrong, &timed, w, corner);
        assert!(
            right_diff < 1.0 && wrong_diff > 3.0 * right_diff.max(0.5),
            "expected {expected:?}: {right_diff}, {utc:?}: {wrong_diff}"
        );
    }
);

/// A fixed instant of `day` (days after `base`'s day) at `hh:mm` UTC.
fn at(base: DateTime<Utc>, day: i64, hh: u32, mm: u32) -> DateTime<Utc> {
    let date = base.date_naive() + chrono::Duration::days(day);
    Utc.from_utc_datetime(&date.and_hms_opt(hh, mm, 0).unwrap())
}

async fn create_rule(origin: &TestOrigin, camera: i64, body: Value) -> Value {
    let r = post(
        origin,
        &format!("/api/cameras/{camera}/render-rules"),
        &body,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn rule_videos(origin: &TestOrigin, timelapse: i64) -> Vec<Value> {
    let all: Vec<Value> = origin
        .get(&format!("/api/timelapses/{timelapse}/videos"))
        .await
        .json()
        .await
        .unwrap();
    all.into_iter()
        .filter(|v| !v["rule_id"].is_null())
        .collect()
}

async fn daily_rule_runs_once_and_is_made_up_after_a_restart(backend: Backend) {
    let clock = timelapser_origin::state::Clock::default();
    let origin = TestOrigin::start_with(backend, |o| {
        o.clock = clock.clone();
        o.render_rules_interval = Duration::from_millis(200);
    })
    .await;
    let footage = footage(&origin, 3).await;
    let day = footage.times[0];
    assert_eq!(
        footage.times[2].date_naive(),
        day.date_naive(),
        "frames of one UTC day"
    );
    // Noon of the frames' day: the rule's first run is the next night's, for this day.
    clock.set(at(day, 0, 12, 0));
    let rule = create_rule(
        &origin,
        footage.camera,
        json!({"period": "daily", "at": "00:10", "preset": "draft", "fps": 3}),
    )
    .await;
    assert_eq!(rule["next_run_at"], json!(at(day, 1, 0, 10)));
    assert_eq!(rule["last_run_at"], json!(at(day, 0, 0, 10)));
    // Bad rules: 422 naming the field, nothing stored.
    for (body, field) in [
        (json!({"period": "daily", "at": "24:10"}), "at:"),
        (json!({"period": "weekly", "at": "00:10"}), "weekday:"),
        (json!({"period": "hourly", "at": "00:10"}), "period:"),
        (
            json!({"period": "daily", "at": "00:10", "colour": true}),
            "colour: unknown field",
        ),
    ] {
        let r = post(
            &origin,
            &format!("/api/cameras/{}/render-rules", footage.camera),
            &body,
        )
        .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            p["detail"].as_str().unwrap().starts_with(field),
            "{body}: {p}"
        );
    }
    let r = origin
        .client
        .get(origin.url(&format!("/api/cameras/{}/render-rules", footage.camera)))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED).await;
    let rules: Vec<Value> = get_json(
        &origin,
        &format!("/api/cameras/{}/render-rules", footage.camera),
    )
    .await;
    assert_eq!(rules.len(), 1);
    let state = origin.state().clone();
    assert!(timelapser_origin::services::render_rules::run_due(&state)
        .await
        .unwrap()
        .is_empty());

    // The origin is down over the night's 00:10: the next start makes the run up.
    clock.set(at(day, 1, 0, 11));
    let origin = origin
        .restart_with(|o| {
            o.clock = clock.clone();
            o.render_rules_interval = Duration::from_millis(200);
        })
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let made = loop {
        let videos = rule_videos(&origin, footage.timelapse).await;
        if let Some(video) = videos.first() {
            assert_eq!(videos.len(), 1);
            break video.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the missed run was not made up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(made["rule_id"], rule["id"]);
    assert_eq!(made["frame_count"], 3);
    assert_eq!(made["options"]["from"], json!(at(day, 0, 0, 0)));
    assert_eq!(made["options"]["to"], json!(at(day, 1, 0, 0)));
    let (_, path) = ready(&origin, made["id"].as_i64().unwrap()).await;
    assert_eq!(frames_of(&probe(&path)), 3);
    let shown: Value = get_json(&origin, &format!("/api/render-rules/{}", rule["id"])).await;
    assert_eq!(shown["last_run_at"], json!(at(day, 1, 0, 10)));
    assert!(
        shown["last_result"].as_str().unwrap().contains("queued"),
        "{shown}"
    );
    // Once: looking again (on every replica) makes nothing more.
    let state = origin.state().clone();
    assert!(timelapser_origin::services::render_rules::run_due(&state)
        .await
        .unwrap()
        .is_empty());
    if backend == Backend::Postgres {
        // Two replicas reach the next night's run together: one video between them. A frame
        // of the night's day is dated from the clock's day onwards, so the run has frames.
        let replica = origin.replica().await;
        replica.state.clock.set(at(day, 0, 12, 0));
        // A second rule, weekly, due on both replicas at once.
        let weekday = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ][at(day, 1, 0, 0)
            .format("%u")
            .to_string()
            .parse::<usize>()
            .unwrap()
            - 1];
        clock.set(at(day, 0, 12, 0));
        let weekly = create_rule(
            &origin,
            footage.camera,
            json!({"period": "weekly", "weekday": weekday, "at": "06:00", "preset": "draft"}),
        )
        .await;
        clock.set(at(day, 1, 6, 1));
        replica.state.clock.set(at(day, 1, 6, 1));
        let (a, b) = tokio::join!(
            timelapser_origin::services::render_rules::run_due(origin.state()),
            timelapser_origin::services::render_rules::run_due(&replica.state),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let deadline = tokio::time::Instant::now() + WAIT;
        let weekly_videos = loop {
            let videos: Vec<Value> = rule_videos(&origin, footage.timelapse)
                .await
                .into_iter()
                .filter(|v| v["rule_id"] == weekly["id"])
                .collect();
            if !videos.is_empty() {
                break videos;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the weekly rule did not run"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            weekly_videos.len(),
            1,
            "one run across replicas: {a:?} {b:?}"
        );
        assert!(a.len() + b.len() <= 1, "{a:?} {b:?}");
        replica.shutdown().await.unwrap();
    }
    origin.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_rule_runs_once_and_is_made_up_after_a_restart_sqlite() {
    daily_rule_runs_once_and_is_made_up_after_a_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_rule_runs_once_and_is_made_up_after_a_restart_postgres() {
    daily_rule_runs_once_and_is_made_up_after_a_restart(Backend::Postgres).await;
}

/// A newcomer's demo: each demo camera runs a timelapse, has a daily rule, and renders a short
/// video with the time and its name drawn, on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_renders_a_video_on_its_own() {
    let origin = TestOrigin::start_with(Backend::Sqlite, |o| {
        o.demo = true;
        o.demo_interval = Duration::from_millis(300);
    })
    .await;
    let mut events = SseClient::connect(&origin.url("/api/events?types=video_ready"), None).await;
    let mut cameras = std::collections::BTreeSet::new();
    while cameras.len() < timelapser_origin::demo::CAMERAS.len() {
        let ready = events.until("video_ready", WAIT).await.pop().unwrap();
        let video = serde_json::from_str::<Value>(&ready.data).unwrap()["video"].clone();
        assert_eq!(video["options"]["preset"], "draft");
        assert_eq!(video["options"]["overlay"], json!(["time", "camera"]));
        assert!(video["frame_count"].as_u64().unwrap() >= 6, "{video}");
        cameras.insert(video["camera_id"].as_i64().unwrap());
    }
    for camera in cameras {
        let rules: Vec<Value> =
            get_json(&origin, &format!("/api/cameras/{camera}/render-rules")).await;
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0]["period"], "daily");
    }
    origin.finish().await;
}
