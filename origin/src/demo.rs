//! Demo mode: two cameras fed by a synthetic camera, so a newcomer sees a living system.
//!
//! Frames are 1280x720 JPEGs of a sky whose light follows the clock, with a sun crossing it
//! and a horizon; every frame differs. They go through the same ingestion as uploads.

use std::time::Duration;

use bytes::Bytes;
use chrono::{Timelike, Utc};
use timelapser_core::render::{Overlay, Preset, RenderRequest};
use tokio_util::sync::CancellationToken;

use crate::db;
use crate::services::{cameras, captures, render_rules, settings, timelapses};
use crate::state::AppState;
use crate::thumbnail::encode_jpeg;

/// The demo cameras' names.
pub const CAMERAS: [&str; 2] = ["Rooftop (demo)", "Garden (demo)"];

/// The demo renders a short video of each camera after this many frames of the run, so a
/// newcomer sees one within a minute of `cargo xtask dev` (at the default 5 s interval).
pub const RENDER_AFTER_FRAMES: u32 = 6;

/// The demo's timelapse (one per camera, started when none runs).
pub const TIMELAPSE: &str = "Demo timelapse";

/// Each demo camera's automatic rule: yesterday's frames every night, with the time drawn.
const DAILY_RULE: &str =
    r#"{"period": "daily", "at": "00:10", "preset": "standard", "overlay": ["time"]}"#;

/// Creates the demo cameras if missing and starts feeding them.
pub async fn start(
    state: AppState,
    interval: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let existing = {
        let mut conn = state.db.pool().acquire().await?;
        db::cameras::list(&mut conn).await?
    };
    let mut ids = Vec::new();
    for (index, name) in CAMERAS.iter().enumerate() {
        let id = match existing.iter().find(|c| c.name == *name) {
            Some(c) => c.id,
            None => {
                cameras::create(&state, name)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .camera
                    .id
            }
        };
        ids.push((id, index as u32));
        prepare_camera(&state, id).await?;
    }
    tracing::info!(cameras = ?ids, "demo cameras capturing every {:?}", interval);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        let mut frame = 0u32;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            for &(id, seed) in &ids {
                let jpeg =
                    tokio::task::spawn_blocking(move || synthetic_frame(1280, 720, seed, frame))
                        .await;
                let Ok(jpeg) = jpeg else { continue };
                if let Err(e) = captures::ingest(&state, id, None, Bytes::from(jpeg)).await {
                    tracing::warn!(camera = id, error = %e, "demo capture failed");
                }
            }
            frame = frame.wrapping_add(1);
            if frame == RENDER_AFTER_FRAMES {
                for &(id, _) in &ids {
                    if let Err(e) = render_demo_video(&state, id).await {
                        tracing::warn!(camera = id, error = %e, "the demo video could not be queued");
                    }
                }
            }
        }
    });
    Ok(())
}

/// A running timelapse and a daily rule for a demo camera, if it has none.
async fn prepare_camera(state: &AppState, camera_id: i64) -> anyhow::Result<()> {
    let (running, rules) = {
        let mut conn = state.db.pool().acquire().await?;
        (
            db::timelapses::running_for_camera(&mut conn, camera_id).await?,
            db::render_rules::for_camera(&mut conn, camera_id).await?,
        )
    };
    if running.is_none() {
        timelapses::start(state, camera_id, TIMELAPSE)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if rules.is_empty() {
        render_rules::create(state, camera_id, DAILY_RULE.as_bytes())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// A short draft video of the camera's running timelapse: the frames of the last minute,
/// with the capture time and the camera's name drawn.
async fn render_demo_video(state: &AppState, camera_id: i64) -> anyhow::Result<()> {
    let running = {
        let mut conn = state.db.pool().acquire().await?;
        db::timelapses::running_for_camera(&mut conn, camera_id).await?
    };
    let Some(timelapse) = running else {
        return Ok(());
    };
    let request = RenderRequest {
        preset: Some(Preset::Draft),
        fps: Some(4),
        from: Some(Utc::now() - chrono::Duration::minutes(1)),
        overlay: Some(vec![Overlay::Time, Overlay::Camera]),
        ..RenderRequest::default()
    };
    let zone = settings::time_zone(state)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let queued = state
        .renderer
        .queue(timelapse.id, request, zone.name())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(
        camera = camera_id,
        video = queued.video.id,
        "demo video queued"
    );
    Ok(())
}

/// A synthetic frame: sky by time of day, a moving sun, a horizon, and noise so no two
/// frames are alike.
pub fn synthetic_frame(width: u32, height: u32, seed: u32, frame: u32) -> Vec<u8> {
    let now = Utc::now();
    let day = (now.num_seconds_from_midnight() as f32 / 86_400.0 + seed as f32 * 0.13) % 1.0;
    let light = (std::f32::consts::PI * day).sin().max(0.15);
    let sun_x = (frame as f32 * 7.0 + seed as f32 * 300.0) % width as f32;
    let sun_y = height as f32 * (0.6 - 0.4 * light);
    let horizon = height as f32 * (0.7 + 0.05 * (seed as f32));
    let mut rng = frame
        .wrapping_mul(2_654_435_761)
        .wrapping_add(seed.wrapping_mul(40_503))
        | 1;
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let noise = (rng & 0x0f) as f32 - 8.0;
            let (fx, fy) = (x as f32, y as f32);
            let pixel = if fy > horizon + 12.0 * ((fx / 90.0 + seed as f32).sin()) {
                let g = 60.0 + 80.0 * light;
                [g * 0.5, g, g * 0.4]
            } else {
                let t = fy / horizon;
                let mut p = [
                    40.0 + 120.0 * light * (1.0 - t),
                    90.0 + 120.0 * light,
                    160.0 + 90.0 * light,
                ];
                let d = ((fx - sun_x).powi(2) + (fy - sun_y).powi(2)).sqrt();
                if d < 40.0 {
                    p = [255.0, 230.0, 120.0];
                }
                p
            };
            rgb.extend(pixel.map(|c| (c + noise).clamp(0.0, 255.0) as u8));
        }
    }
    encode_jpeg(width, height, &rgb, 85)
}
