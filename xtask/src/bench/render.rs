//! Video rendering: a timelapse rendered through the origin, against the same ffmpeg command
//! typed by hand on the same frames.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::report::{self, Run};
use super::{create_camera, frames, origin, ADMIN};
use crate::{run, step};

/// The section of BENCHMARKS.md.
pub const HEADING: &str = "Video rendering";

/// Frames of the timelapse.
const FRAMES: usize = 120;

/// How long the origin may take to render them (about 10 s on two cores).
const RENDER_WITHIN: Duration = Duration::from_secs(600);

/// Seconds each way.
pub struct RenderResults {
    frames: usize,
    origin_s: f64,
    overlay_s: f64,
    by_hand_s: f64,
}

/// Renders a timelapse through the origin (`body` as the request): seconds from the request
/// to the video reported ready.
async fn render_through(
    client: &reqwest::Client,
    base: &str,
    timelapse: i64,
    body: serde_json::Value,
) -> Result<f64> {
    let started = Instant::now();
    let video: serde_json::Value = client
        .post(format!("{base}/api/timelapses/{timelapse}/videos"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = video["id"].as_i64().context("video id")?;
    let deadline = Instant::now() + RENDER_WITHIN;
    loop {
        let v: serde_json::Value = client
            .get(format!("{base}/api/videos/{id}"))
            .send()
            .await?
            .json()
            .await?;
        match v["status"].as_str() {
            Some("ready") => break,
            Some("failed") => bail!("the render failed: {}", v["error"]),
            _ if Instant::now() >= deadline => {
                bail!("video {id} not ready within {RENDER_WITHIN:?}; last seen: {v}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Renders a timelapse through the origin (plain, then with overlays), then the same ffmpeg
/// command as the plain one by hand.
pub async fn measure(origin_bin: &Path, work: &Path) -> Result<RenderResults> {
    let data = work.join("render-data");
    let origin = origin(origin_bin, &data)?.start().await?;
    let base = origin.base();
    let client = reqwest::Client::new();
    let (camera, token) = create_camera(&base).await?;
    let timelapse: serde_json::Value = client
        .post(format!("{base}/api/cameras/{camera}/timelapses"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "bench"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let timelapse = timelapse["id"].as_i64().context("timelapse id")?;
    step(&format!("render: uploading {FRAMES} 1920x1080 frames"));
    let mut shas = Vec::new();
    for seed in 0..FRAMES as u32 {
        let jpeg =
            tokio::task::spawn_blocking(move || frames::jpeg(1920, 1080, 7000 + seed, 12, 85))
                .await??;
        let image: serde_json::Value = client
            .post(format!("{base}/api/cameras/{camera}/captures"))
            .bearer_auth(&token)
            .header("content-type", "image/jpeg")
            .body(jpeg)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        shas.push(image["sha256"].as_str().context("sha256")?.to_owned());
    }
    step("render: through the origin (standard preset)");
    let origin_s =
        render_through(&client, &base, timelapse, serde_json::json!({"fps": 24})).await?;
    step("render: through the origin with the time and the camera's name drawn");
    let overlay_s = render_through(
        &client,
        &base,
        timelapse,
        serde_json::json!({"fps": 24, "overlay": ["time", "camera"]}),
    )
    .await?;
    drop(origin);
    step("render: the same ffmpeg command by hand");
    let list = work.join("render-by-hand.txt");
    let lines: String = shas
        .iter()
        .map(|sha| {
            format!(
                "file '{}'\n",
                data.join(format!("media/images/{sha}.jpg")).display()
            )
        })
        .collect();
    std::fs::write(&list, lines)?;
    let out = work.join("render-by-hand.mp4");
    let started = Instant::now();
    run(Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "concat",
            "-safe",
            "0",
            "-r",
            "24",
            "-i",
        ])
        .arg(&list)
        .args([
            "-vf",
            "scale=1280:720,format=yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-r",
            "24",
        ])
        .args(["-movflags", "+faststart", "-y"])
        .arg(&out))?;
    let by_hand_s = started.elapsed().as_secs_f64();
    Ok(RenderResults {
        frames: FRAMES,
        origin_s,
        overlay_s,
        by_hand_s,
    })
}

/// The section's body.
pub fn report(r: &RenderResults, run: &Run) -> String {
    let (origin_fps, hand_fps) = (r.frames as f64 / r.origin_s, r.frames as f64 / r.by_hand_s);
    format!(
        "{today}, {host}. {ffmpeg}.\n\n\
         {frames} distinct 1920x1080 captures of one timelapse rendered at 24 fps with the \
         `standard` preset (scaled to 1280x720, libx264 `-preset veryfast -crf 23`, yuv420p, \
         `+faststart`). The origin: from `POST /api/timelapses/{{id}}/videos` to the video \
         reported ready (queueing, the ffmpeg child, progress events, hashing and the atomic move \
         included); then the same with `overlay: [\"time\", \"camera\"]` (drawtext expanding each \
         frame's capture time from the concat list's packet metadata, the name from one text \
         file). By hand: the plain command on the same frame list, timed alone. Ratios are \
         frames per second against the hand-typed command.\n\n\
         | | seconds | frames/s | ratio |\n|---|---:|---:|---:|\n\
         | origin | {origin_s:.2} | {origin_fps:.1} | **{ratio:.2}x** |\n\
         | origin, time and name drawn | {overlay_s:.2} | {overlay_fps:.1} | **{overlay_ratio:.2}x** |\n\
         | ffmpeg by hand | {hand_s:.2} | {hand_fps:.1} | 1.00x |\n",
        today = run.date,
        host = run.host,
        ffmpeg = report::version("ffmpeg", "-version"),
        frames = r.frames,
        origin_s = r.origin_s,
        hand_s = r.by_hand_s,
        ratio = origin_fps / hand_fps,
        overlay_s = r.overlay_s,
        overlay_fps = r.frames as f64 / r.overlay_s,
        overlay_ratio = (r.frames as f64 / r.overlay_s) / hand_fps,
    )
}
